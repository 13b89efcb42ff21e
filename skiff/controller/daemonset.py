"""DaemonSet controller: one daemon pod on every node that qualifies.

As Kubernetes' pkg/controller/daemon (1.32), over the shared daemonsets, pods, nodes and
controllerrevisions informers; the decisions are :mod:`skiff.controller.workloads.daemonlogic`'s:

- Revisions: the current template is a ControllerRevision ``<name>-<hash>`` (its data the
  strategic merge patch that restores the template, as ``kubectl rollout undo`` applies it) with
  the next revision number; a template that matches an older revision takes that one back with a
  new number; revisions beyond revisionHistoryLimit that no pod runs are deleted. A name taken by
  another template (a hash collision) bumps status.collisionCount.
- Pods are found through the owner index (orphans the selector matches are adopted, owned ones
  it no longer matches are released). Each node that should run the daemon pod and has none gets
  one, made for it through the scheduler (required node affinity on its name) with the revision
  hash and template generation labels; extra pods on a node, pods on nodes that no longer
  qualify (unless they may keep running) and succeeded ones (Normal SucceededDaemonPod) are
  deleted; failed ones are deleted and replaced, with a back-off per node (Warning
  FailedDaemonPod).
- RollingUpdate: old pods are replaced node by node within maxUnavailable (delete, then the
  next sync creates) or maxSurge (create next to it, delete once the new one is available),
  minReadySeconds counting; OnDelete: only pods that are deleted get the new template.
- Creations and deletions at most 250 a sync, creations in slow-start batches; expectations keep
  a lagging cache from causing duplicates. Events: SuccessfulCreate ``Created pod: NAME``,
  SuccessfulDelete ``Deleted pod: NAME``, FailedCreate, FailedDelete.
- Status: desired/current/ready/available/unavailable/updated/misscheduled node counts and
  observedGeneration (not advanced while expectations are pending), written when it changes; a
  DaemonSet whose ready pods are not yet available is looked at again after minReadySeconds.
  A DaemonSet being deleted is left alone (the garbage collector removes what it owns).
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.events import EventRecorder
from skiff.controller.scheduler.filters import node_taints
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import daemonlogic as D
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.claiming import claim
from skiff.controller.workloads.expectations import Pending, PodExpectations
from skiff.controller.workloads.shared import OwnerIndex, OwnerKeys, SharedInformers

__all__ = ["DaemonSetController"]

log = logging.getLogger("skiff.daemonset")

COMPONENT = "daemonset-controller"


class _Retry(Exception):
    """The sync cannot go on now (a stale collision count, a revision taken): requeue."""


def _is_daemonset(ref: dict | None) -> bool:
    return ref is not None and ref.get("kind") == "DaemonSet" and ref.get("apiVersion") == "apps/v1"


def _node_view(node: dict) -> tuple:
    """What decides whether a node should run daemon pods (heartbeats do not)."""
    return L.md(node).get("labels"), node_taints(node)


class DaemonSetController(QueueController):
    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, status_batch: float = 0.1):
        self.client = client
        self.workers = workers
        self.status_batch = status_batch
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue("daemonset")
        self.pod_index = OwnerIndex()
        self.rev_index = OwnerIndex()
        self.owners = OwnerKeys()
        self.expectations = PodExpectations()
        self.backoff = D.Backoff()
        self.dss: Informer | None = None
        self.pods: Informer | None = None
        self.nodes: Informer | None = None
        self.revisions: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        # the DaemonSets first: the other handlers look their owners up
        self.dss = await self.shared.acquire(self.client, "daemonsets")
        self.revisions = await self.shared.acquire(self.client, "controllerrevisions")
        self.nodes = await self.shared.acquire(self.client, "nodes")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.dss.add_handler(self._on_ds)
        self.revisions.add_handler(self._on_revision)
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)
        self.start_workers("daemonset-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res, h in ((self.pods, "pods", self._on_pod), (self.nodes, "nodes", self._on_node),
                            (self.revisions, "controllerrevisions", self._on_revision),
                            (self.dss, "daemonsets", self._on_ds)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_ds(self, typ: str, ds: dict, old: dict | None) -> None:
        key = self.owners.handle(typ, ds)
        if typ == "DELETED":
            self.expectations.pop(key, None)
            self.backoff.forget(L.md(ds).get("uid"))
        self.queue.add(key)

    def _owner_key(self, obj: dict | None) -> str | None:
        ref = L.controller_of(obj)
        return self.owners.for_uid(ref.get("uid")) if _is_daemonset(ref) else None

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        self.pod_index.handle(typ, pod, old)
        pm, om = L.md(pod), L.md(old)
        # a change of status only (readiness, phase) is batched; membership changes are handled at once
        status_only = (typ == "MODIFIED" and pm.get("labels") == om.get("labels")
                       and pm.get("ownerReferences") == om.get("ownerReferences")
                       and pm.get("deletionTimestamp") == om.get("deletionTimestamp"))
        for k in {self._owner_key(pod), self._owner_key(old)} - {None}:
            if typ == "ADDED" and self.expectations.observed_creation(k, key_of(pod)):
                status_only = True      # one of a burst: the burst's last one syncs
            if status_only and self.status_batch > 0:
                self.queue.add_after(k, self.status_batch)
            else:
                self.queue.add(k)
        if L.controller_of(pod) is None and typ != "DELETED" and not pm.get("deletionTimestamp") \
                and (old is None or om.get("labels") != pm.get("labels") or L.controller_of(old) is not None):
            for k in self.owners.selecting(pod, self.dss):
                self.queue.add(k)

    def _on_revision(self, typ: str, rev: dict, old: dict | None) -> None:
        self.rev_index.handle(typ, rev, old)
        for k in {self._owner_key(rev), self._owner_key(old)} - {None}:
            self.queue.add(k)
        if L.controller_of(rev) is None and typ != "DELETED":
            for k in self.owners.selecting(rev, self.dss):
                self.queue.add(k)

    def _on_node(self, typ: str, node: dict, old: dict | None) -> None:
        if typ == "MODIFIED" and old is not None and _node_view(old) == _node_view(node):
            return
        for k in list(self.owners.by_uid.values()):
            ds = self.dss.get(k)
            if ds is None:
                continue
            fit = D.NodeFit(ds)
            if typ == "ADDED" and not fit(node)[0]:
                continue
            if typ == "MODIFIED" and old is not None and fit(old) == fit(node):
                continue
            self.queue.add(k)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        ds = self.dss.get(key)
        if ds is None:
            self.expectations.pop(key, None)
            return None
        m = ds["metadata"]
        if m.get("deletionTimestamp"):
            # what it owns may be going already (the garbage collector): no status to trust
            return None
        sel = L.selector_from((ds.get("spec") or {}).get("selector"))
        nodes = self.nodes.list()
        fit = D.NodeFit(ds)
        try:
            cur, old = await self._history(ds, sel)
        except _Retry as e:
            log.info("daemon set revision retry", extra={"fields": {"daemonset": key, "reason": str(e)}})
            return 0
        except APIError as e:
            if e.code != 409:
                raise
            return 0        # a revision changed meanwhile: again, with the newer one
        hash_ = L.md(cur)["labels"][D.REVISION_HASH_LABEL]
        pods = await self._claim("pods", self.pods, self.pod_index, ds, sel)
        by_node = D.pods_by_node(pods)
        satisfied = self.expectations.satisfied(key, self.pods.cache)
        err: APIError | None = None
        retry = None
        if satisfied:
            now = time.time()
            plan = D.manage(ds, nodes, fit, by_node, hash_, self.backoff, now)
            retry = plan.retry
            for p, node in plan.failed:
                self.recorder.record(ds, "Warning", "FailedDaemonPod",
                                     f"Found failed daemon pod {L.md(p).get('namespace')}/{L.md(p).get('name')} on "
                                     f"node {node}, will try to kill it")
            for p, node in plan.succeeded:
                self.recorder.record(ds, "Normal", "SucceededDaemonPod",
                                     f"Found succeeded daemon pod {L.md(p).get('namespace')}/{L.md(p).get('name')} "
                                     f"on node {node}, will try to delete it")
            try:
                await self._sync_nodes(ds, key, plan.delete, plan.create, hash_)
                rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") == "RollingUpdate"
                if rolling and self.expectations.satisfied(key, self.pods.cache):
                    delete, create = D.rolling_update(ds, nodes, fit, by_node, hash_, now)
                    await self._sync_nodes(ds, key, delete, create, hash_)
                await self._prune_history(ds, old, pods)
            except APIError as e:
                err = e
        # status from the cache as it is now (creations are counted when observed)
        pods = [p for p in (self.pods.get(k) for k in self.pod_index.owned(m.get("uid"))) if p is not None]
        observed = int(m.get("generation") or 0) if satisfied else int((ds.get("status") or {}).get(
            "observedGeneration") or 0)
        status = D.daemon_status(ds, nodes, fit, D.pods_by_node(pods), hash_, time.time(), observed)
        if status != (ds.get("status") or {}):
            try:
                await self.client.update("daemonsets", {**ds, "status": status}, subresource="status")
            except APIError as e:
                if e.code == 404:
                    return None
                if e.code != 409:
                    raise
                return 0        # stale: retry with the newer object
            log.info("daemon set status", extra={"fields": {
                "daemonset": key, "desired": status["desiredNumberScheduled"],
                "current": status["currentNumberScheduled"], "ready": status["numberReady"],
                "updated": status.get("updatedNumberScheduled", 0), "available": status.get("numberAvailable", 0)}})
        if err is not None:
            return 0
        after = [t for t in (D.min_ready_requeue(ds, status), retry) if t is not None]
        return min(after) if after else None

    # -- revisions ----------------------------------------------------------------------------
    async def _history(self, ds: dict, sel) -> tuple[dict, list[dict]]:
        """constructHistory: (the current revision, the old ones), the current one made or
        renumbered as needed."""
        revs = await self._claim("controllerrevisions", self.revisions, self.rev_index, ds, sel)
        revs = [await self._with_hash_label(r) for r in revs]
        cur, old = D.split_revisions(ds, revs)
        want = D.next_revision(old)
        if not cur:
            return await self._snapshot(ds, want), old
        keep = await self._dedup(ds, cur)
        if int(keep.get("revision") or 0) < want:
            keep = await self.client.update("controllerrevisions", {**keep, "revision": want})
        return keep, old

    async def _with_hash_label(self, rev: dict) -> dict:
        """A revision adopted without the hash label gets its name as one (as Kubernetes does)."""
        if D.REVISION_HASH_LABEL in (L.md(rev).get("labels") or {}):
            return rev
        m = L.md(rev)
        return await self.client.patch("controllerrevisions", m["name"], {"metadata": {
            "labels": {D.REVISION_HASH_LABEL: m["name"]}}}, m.get("namespace"))

    async def _snapshot(self, ds: dict, revision: int) -> dict:
        rev = D.new_revision(ds, revision)
        name, ns = rev["metadata"]["name"], L.md(ds).get("namespace")
        try:
            return await self.client.create("controllerrevisions", rev, ns)
        except APIError as e:
            if e.code != 409:
                raise
        existing = await self.client.get("controllerrevisions", name, ns)
        if existing.get("data") == rev["data"]:
            return await self._with_hash_label(existing)     # made by an earlier sync, not in the cache yet
        # a hash collision: the next hash takes the collision count into account
        live = await self.client.get("daemonsets", L.md(ds)["name"], ns)
        count = (live.get("status") or {}).get("collisionCount")
        if count != (ds.get("status") or {}).get("collisionCount"):
            raise _Retry("stale collision count")
        await self.client.update("daemonsets", {**live, "status": {**(live.get("status") or {}),
                                                                   "collisionCount": (count or 0) + 1}},
                                 subresource="status")
        log.info("hash collision, collisionCount bumped", extra={"fields": {"daemonset": key_of(ds),
                                                                            "revision": name}})
        raise _Retry(f"revision {name} exists with another template")

    async def _dedup(self, ds: dict, cur: list[dict]) -> dict:
        """Of several revisions of the current template, the highest stays; pods labelled with the
        others' hashes are relabelled with its, then the others are deleted."""
        keep = max(cur, key=lambda r: (int(r.get("revision") or 0), L.md(r).get("name") or ""))
        keep_hash = L.md(keep)["labels"][D.REVISION_HASH_LABEL]
        for dup in cur:
            if dup is keep:
                continue
            dup_hash = L.md(dup)["labels"][D.REVISION_HASH_LABEL]
            for k in list(self.pod_index.owned(L.md(ds).get("uid"))):
                p = self.pods.get(k)
                if p is not None and (L.md(p).get("labels") or {}).get(D.REVISION_HASH_LABEL) == dup_hash:
                    await self.client.patch("pods", L.md(p)["name"], {"metadata": {
                        "labels": {D.REVISION_HASH_LABEL: keep_hash}}}, L.md(p).get("namespace"))
            await self._delete_quietly("controllerrevisions", dup)
        return keep

    async def _prune_history(self, ds: dict, old: list[dict], pods: list[dict]) -> None:
        """cleanupHistory: old revisions beyond the limit go, unless a pod (even a finished one
        being deleted) still carries their hash."""
        live = {(L.md(p).get("labels") or {}).get(D.REVISION_HASH_LABEL) for p in pods}
        for rev in D.revisions_to_prune(ds, old, live):
            await self._delete_quietly("controllerrevisions", rev)

    async def _delete_quietly(self, res: str, obj: dict) -> None:
        m = L.md(obj)
        try:
            await self.client.delete(res, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid")})
        except APIError as e:
            if e.code not in (404, 409):
                raise

    # -- ownership ----------------------------------------------------------------------------
    async def _claim(self, res: str, inf: Informer, index: OwnerIndex, ds: dict, sel) -> list[dict]:
        """ClaimPods / ClaimControllerRevisions (skiff.controller.workloads.claiming)."""
        return await claim(self.client, "daemonsets", "DaemonSet", res, inf, index, ds, sel)

    # -- pods ---------------------------------------------------------------------------------
    async def _sync_nodes(self, ds: dict, key: str, delete: list[dict], create: list[str], hash_: str) -> None:
        """syncNodes: create a daemon pod on each of ``create`` (slow-start batches), then delete
        ``delete``; at most BURST of each."""
        create, delete = create[:D.BURST], delete[:D.BURST]
        if not create and not delete:
            return
        e = self.expectations.expect(key)
        e.deletes.update(key_of(p) for p in delete)
        log.info("syncing daemon pods", extra={"fields": {"daemonset": key, "create": len(create),
                                                          "delete": len(delete)}})
        first_error = await self._create(ds, e, create, hash_)
        errs = [x for x in await asyncio.gather(*(self._delete(ds, e, p) for p in delete)) if x is not None]
        cache = self.pods.cache
        e.creates = {k for k in e.creates if k not in cache}
        if not e.creates and not e.deletes:
            self.queue.add(key)     # every one observed already: the sync their events skipped
        if first_error is not None or errs:
            raise first_error or errs[0]

    async def _create(self, ds: dict, e: Pending, nodes: list[str], hash_: str) -> APIError | None:
        template = D.pod_template(ds, hash_)
        ns = L.md(ds).get("namespace")
        batch, done = 1, 0
        first_error: APIError | None = None
        while done < len(nodes):
            part = nodes[done:done + batch]
            results = await asyncio.gather(*(self.client.create("pods", D.pod_for_node(template, n), ns)
                                             for n in part), return_exceptions=True)
            ok = 0
            for r in results:
                if isinstance(r, BaseException):
                    if not isinstance(r, APIError):
                        raise r
                    first_error = first_error or r
                    self.recorder.record(ds, "Warning", "FailedCreate", f"Error creating: {r.message}")
                else:
                    ok += 1
                    e.creates.add(key_of(r))
                    self.recorder.record(ds, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            done += len(part)
            if ok < len(part):
                break           # like slowStartBatch: the rest waits for the next sync
            batch *= 2
        return first_error

    async def _delete(self, ds: dict, e: Pending, p: dict) -> APIError | None:
        pm = L.md(p)
        try:
            await self.client.delete("pods", pm["name"], pm.get("namespace"), preconditions={"uid": pm.get("uid")})
        except APIError as err:
            e.deletes.discard(key_of(p))
            if err.code in (404, 409):
                return None
            self.recorder.record(ds, "Warning", "FailedDelete", f"Error deleting: {err.message}")
            return err
        self.recorder.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pm['name']}")
        return None
