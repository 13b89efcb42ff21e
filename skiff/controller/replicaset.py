"""ReplicaSet controller: keeps ``spec.replicas`` pods matching a ReplicaSet's selector.

As Kubernetes' pkg/controller/replicaset:

- Pods are found through the shared pods informer's owner index (pods by controller uid, and
  orphans by namespace), never by listing. Orphans matching the selector are adopted (an owner
  reference {apps/v1 ReplicaSet, controller, blockOwnerDeletion} written with a CAS on the pod's
  resourceVersion, after a live GET of the ReplicaSet); owned pods that no longer match are
  released. Terminating pods (deletionTimestamp) and finished pods do not count.
- Missing pods are created from the template (generateName ``<rs>-``) in slow-start batches
  (1, 2, 4, ...), at most 500 per sync; surplus ones are deleted, unscheduled first, then
  pending, not ready, co-located, recently ready, restarted, youngest (getPodsToDelete).
  Events: Normal SuccessfulCreate ``Created pod: NAME``, SuccessfulDelete ``Deleted pod: NAME``,
  Warning FailedCreate ``Error creating: ...``.
- Expectations: until the pods it created (deleted) are seen in (gone from) the informer's
  cache, a ReplicaSet is not scaled again, so a lagging cache never causes duplicates.
- Pod status changes (readiness) are batched for ``status_batch`` seconds (0.1, longer for
  ReplicaSets of more than 1000 pods, at most 1 s) before the ReplicaSet is looked at
  again; creations, deletions and relabels are handled at once.
- Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (Ready for at least
  minReadySeconds), observedGeneration, the ReplicaFailure condition; written only when it
  changes. A ReplicaSet whose ready pods are not yet available is requeued after minReadySeconds.

:class:`ReplicationManager` runs the same logic for core/v1 ReplicationControllers, as
Kubernetes' pkg/controller/replication does (its selector is a plain map of labels).
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.expectations import PodExpectations
from skiff.controller.workloads.shared import OwnerIndex, OwnerKeys, SharedInformers

__all__ = ["ReplicaSetController", "ReplicationManager", "BURST_REPLICAS"]

log = logging.getLogger("skiff.replicaset")

COMPONENT = "replicaset-controller"
BURST_REPLICAS = 500


class ReplicaSetController(QueueController):
    RESOURCE, KIND, API_VERSION, COMPONENT = "replicasets", "ReplicaSet", "apps/v1", COMPONENT

    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, status_batch: float = 0.1):
        self.client = client
        self.workers = workers
        self.status_batch = status_batch
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue(self.KIND.lower())
        self.pod_index = OwnerIndex()
        self.owners = OwnerKeys()
        self.expectations = PodExpectations()
        self.pods: Informer | None = None
        self.rss: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.rss = await self.shared.acquire(self.client, self.RESOURCE)
        self.pods = await self.shared.acquire(self.client, "pods")
        self.rss.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)
        self.start_workers(f"{self.KIND.lower()}-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res in ((self.pods, "pods"), (self.rss, self.RESOURCE)):
            if inf is not None:
                for h in (self._on_pod, self._on_rs):
                    inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_rs(self, typ: str, rs: dict, old: dict | None) -> None:
        key = self.owners.handle(typ, rs)
        if typ == "DELETED":
            self.expectations.pop(key, None)
        self.queue.add(key)

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        self.pod_index.handle(typ, pod, old)
        ref = L.controller_of(pod)
        old_ref = L.controller_of(old) if old is not None else None
        # a change of status only (readiness, phase) is batched: at 10 000 pods a reconcile per
        # event would keep the loop busy; membership changes are handled at once
        pm, om = L.md(pod), L.md(old)
        status_only = (typ == "MODIFIED" and pm.get("labels") == om.get("labels")
                       and pm.get("ownerReferences") == om.get("ownerReferences")
                       and pm.get("deletionTimestamp") == om.get("deletionTimestamp"))
        for r in (ref, old_ref):
            if r is not None and r.get("kind") == self.KIND:
                k = self.owners.for_uid(r.get("uid"))
                if k is not None:
                    if typ == "ADDED" and self.expectations.observed_creation(k, key_of(pod)):
                        # one of a burst this controller made: the burst's last one syncs at once,
                        # the others only refresh the status (batched as status changes are)
                        status_only = True
                    if status_only and self.status_batch > 0:
                        # large ReplicaSets (an O(pods) reconcile) are looked at less often, <= 1 s
                        n = len(self.pod_index.owned(r.get("uid")))
                        self.queue.add_after(k, min(self.status_batch * max(1.0, n / 1000), 1.0))
                    else:
                        self.queue.add(k)
        if ref is None and typ != "DELETED" and L.is_pod_active(pod):
            # an orphan: every ReplicaSet of its namespace that selects it may adopt it
            labels_changed = old is None or L.md(old).get("labels") != L.md(pod).get("labels") or old_ref is not None
            if labels_changed:
                for k in self.owners.selecting(pod, self.rss, self.selector):
                    self.queue.add(k)

    def selector(self, rs: dict):
        """The owner's selector as a LabelSelector (metav1.LabelSelector in apps/v1)."""
        return L.selector_from((rs.get("spec") or {}).get("selector"))

    def _satisfied(self, key: str) -> bool:
        return self.expectations.satisfied(key, self.pods.cache)

    async def reconcile(self, key: str) -> float | None:
        rs = self.rss.get(key)
        if rs is None:
            self.expectations.pop(key, None)
            return None
        m = rs["metadata"]
        need_sync = self._satisfied(key)
        sel = self.selector(rs)
        pods = await self._claim_pods(rs, sel)
        err, diff = None, 0
        if need_sync and not m.get("deletionTimestamp"):
            diff = len(pods) - L.spec_replicas(rs)
            try:
                await self._manage(rs, key, pods)
            except APIError as e:
                err = e.message
        if diff:    # status from the cache as it is now (creations are counted when observed)
            pods = [p for p in (self.pods.get(k) for k in self.pod_index.owned(m.get("uid")))
                    if p is not None and L.is_pod_active(p)]
        status = L.rs_status(rs, pods, err, diff)
        if status != (rs.get("status") or {}):
            try:
                await self.client.update(self.RESOURCE, {**rs, "status": status}, subresource="status")
            except APIError as e:
                if e.code == 404:
                    return None
                if e.code != 409:
                    raise
                return 0        # stale: retry with the newer object
            log.info("replica set status", extra={"fields": {
                self.KIND.lower(): key, "replicas": status.get("replicas", 0),
                "readyReplicas": status.get("readyReplicas", 0),
                "availableReplicas": status.get("availableReplicas", 0)}})
        if err is not None:
            return 0
        return L.min_ready_requeue(rs, status)

    async def _claim_pods(self, rs: dict, sel) -> list[dict]:
        """ClaimPods: the active pods this RS controls after adopting/releasing."""
        m = rs["metadata"]
        uid, ns = m.get("uid"), m.get("namespace") or ""
        out: list[dict] = []
        cache = self.pods.cache
        release, adopt = [], []
        selects = L.LabelMatch(sel)
        for k in list(self.pod_index.owned(uid)):
            p = cache.get(k)
            if p is None or not L.is_pod_active(p):
                continue
            if selects(p):
                out.append(p)
            elif not m.get("deletionTimestamp"):
                release.append(p)
        if not m.get("deletionTimestamp") and sel is not None and not sel.empty():
            for k in list(self.pod_index.orphans_in(ns)):
                p = cache.get(k)
                if p is not None and L.is_pod_active(p) and selects(p):
                    adopt.append(p)
        for p in release:
            await self._set_owner(p, rs, False)
        if adopt:
            try:
                fresh = await self.client.get(self.RESOURCE, m["name"], ns)
            except APIError as e:
                if e.code == 404:
                    return out
                raise
            if fresh["metadata"].get("uid") != uid or fresh["metadata"].get("deletionTimestamp"):
                return out
            for p in adopt:
                if await self._set_owner(p, rs, True):
                    out.append(p)
        return out

    async def _set_owner(self, pod: dict, rs: dict, adopt: bool) -> bool:
        pm = pod["metadata"]
        uid = rs["metadata"]["uid"]
        refs = [r for r in pm.get("ownerReferences") or () if r.get("uid") != uid]
        if adopt:
            refs.append(L.controller_ref(rs, self.API_VERSION, self.KIND))
        try:
            await self.client.patch("pods", pm["name"], {"metadata": {
                "resourceVersion": pm.get("resourceVersion"), "ownerReferences": refs or None}},
                pm.get("namespace"))
        except APIError as e:
            if e.code in (404, 409):
                return False
            raise
        log.info("adopted pod" if adopt else "released pod", extra={"fields": {
            self.KIND.lower(): key_of(rs), "pod": pm["name"]}})
        return True

    async def _manage(self, rs: dict, key: str, pods: list[dict]) -> None:
        want = L.spec_replicas(rs)
        diff = len(pods) - want
        if diff < 0:
            await self._create(rs, key, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            n = min(diff, BURST_REPLICAS)
            ref = L.controller_of(rs)
            related = pods
            if ref is not None:     # pods of the sibling ReplicaSets of the same Deployment
                related = list(pods)
                for k in self.owners.by_ns.get(rs["metadata"].get("namespace") or "", ()):
                    other = self.rss.get(k)
                    oref = L.controller_of(other)
                    if other is not None and other is not rs and oref is not None and oref.get("uid") == ref.get("uid"):
                        related.extend(p for p in (self.pods.get(pk) for pk in
                                                   self.pod_index.owned(other["metadata"]["uid"])) if p)
            victims = L.pods_to_delete(pods, related, n)
            await self._delete(rs, key, victims)

    async def _create(self, rs: dict, key: str, n: int) -> None:
        e = self.expectations.expect(key)
        template = L.pod_from_template(rs, self.API_VERSION, self.KIND)
        ns = rs["metadata"].get("namespace")
        log.info("creating pods", extra={"fields": {self.KIND.lower(): key, "count": n,
                                                    "replicas": L.spec_replicas(rs)}})
        batch, done = 1, 0
        first_error: APIError | None = None
        while done < n:
            size = min(batch, n - done)
            # a new top level is enough: creating replaces the body's metadata and copies the
            # rest before defaulting (admission), and nothing nested is written before that
            results = await asyncio.gather(*(self.client.create("pods", dict(template), ns)
                                             for _ in range(size)), return_exceptions=True)
            ok = 0
            for r in results:
                if isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    if not isinstance(r, APIError):
                        raise r
                    msg = r.message
                    if first_error is None:
                        first_error = r
                    self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {msg}")
                    log.warning("pod creation failed", extra={"fields": {self.KIND.lower(): key, "error": msg}})
                else:
                    ok += 1
                    e.creates.add(key_of(r))
                    self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            done += size
            # pods whose ADDED came before their create returned are observed already
            cache = self.pods.cache
            e.creates = {k for k in e.creates if k not in cache}
            if ok < size:
                break       # like slowStartBatch: stop on the first failing batch
            batch *= 2
        if not e.creates and not e.deletes:
            self.queue.add(key)     # every one observed: the sync their events skipped
        if first_error is not None:
            raise first_error

    async def _delete(self, rs: dict, key: str, victims: list[dict]) -> None:
        e = self.expectations.expect(key)
        log.info("deleting pods", extra={"fields": {self.KIND.lower(): key, "count": len(victims),
                                                    "replicas": L.spec_replicas(rs)}})
        for p in victims:
            e.deletes.add(key_of(p))

        async def one(p):
            pm = p["metadata"]
            try:
                await self.client.delete("pods", pm["name"], pm.get("namespace"),
                                         preconditions={"uid": pm.get("uid")})
            except APIError as err:
                if err.code in (404, 409):
                    e.deletes.discard(key_of(p))
                    return None
                e.deletes.discard(key_of(p))
                self.recorder.record(rs, "Warning", "FailedDelete", f"Error deleting: {err.message}")
                return err
            self.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pm['name']}")
            return None
        errs = [x for x in await asyncio.gather(*(one(p) for p in victims)) if x is not None]
        if errs:
            raise errs[0]


class ReplicationManager(ReplicaSetController):
    """core/v1 ReplicationControllers: the ReplicaSet logic over a map selector."""
    RESOURCE, KIND, API_VERSION, COMPONENT = "replicationcontrollers", "ReplicationController", "v1", \
        "replication-controller"

    async def start(self) -> None:
        # the pods handler (an owner index over every pod) is attached only while some
        # ReplicationController exists: most clusters have none, and the handler costs every pod event
        self._pods_attached = False
        self.pods = await self.shared.acquire(self.client, "pods")
        self.rss = await self.shared.acquire(self.client, self.RESOURCE)
        self.rss.add_handler(self._on_rs)
        self.start_workers(f"{self.KIND.lower()}-workers")

    async def stop(self) -> None:
        self._pods_attached = True      # never attach again
        await super().stop()

    def _on_rs(self, typ: str, rs: dict, old: dict | None) -> None:
        if typ != "DELETED" and not self._pods_attached:
            self._pods_attached = True
            self.pods.add_handler(self._on_pod)         # replays the cached pods into the index
        super()._on_rs(typ, rs, old)
        if typ == "DELETED" and not self.rss.cache and self._pods_attached:
            self.pods.remove_handler(self._on_pod)
            self.pod_index = OwnerIndex()
            self._pods_attached = False

    def selector(self, rc: dict):
        sel = (rc.get("spec") or {}).get("selector")
        # labels.SelectorFromSet: a nil or empty map selects nothing for a controller
        return L.selector_from({"matchLabels": sel}) if isinstance(sel, dict) and sel else None
