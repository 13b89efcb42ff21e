"""StatefulSet controller: pods with stable names, network identities and storage, made and
removed in ordinal order.

As Kubernetes' pkg/controller/statefulset (1.32), over the shared statefulsets, pods,
controllerrevisions and persistentvolumeclaims informers; the decisions are
:mod:`skiff.controller.workloads.statefullogic`'s:

- Pods and revisions are claimed through the owner index (orphans the selector matches are
  adopted, owned ones it no longer matches released), as the DaemonSet controller does.
- Revisions (getStatefulSetRevisions): the template is a ControllerRevision ``<set>-<hash>`` with
  the next revision number; a template equal to an older revision takes that one back with a new
  number; a name taken by another template bumps the collision count. The current revision is
  status.currentRevision's (the update revision at first). Revisions no pod runs, beyond
  revisionHistoryLimit, are deleted.
- One sync's steps (statefullogic.plan) are carried out in order; under OrderedReady the first
  creation or deletion ends the sync (the pod's events bring the next one). Creations make the
  pod's missing claims first. Events as Kubernetes': SuccessfulCreate ``create Pod web-0 in
  StatefulSet web successful``, ``create Claim www-web-0 Pod web-0 in StatefulSet web success``,
  SuccessfulDelete ``delete Pod web-1 in StatefulSet web successful``, FailedCreate/FailedDelete
  ``... failed error: MSG``, RecreatingFailedPod / RecreatingTerminatedPod.
- The claims' owner references follow persistentVolumeClaimRetentionPolicy (the garbage collector
  then deletes them with their owner).
- Status (replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
  currentRevision, updateRevision, collisionCount, observedGeneration) is written when it changes;
  a set whose ready pods are not yet available is looked at again after minReadySeconds.
  Expectations keep a lagging cache from acting twice. A set being deleted is left alone.
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.api.resources import RESOURCES
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import daemonlogic as D
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.claiming import claim
from skiff.controller.workloads import statefullogic as S
from skiff.controller.workloads.expectations import PodExpectations
from skiff.controller.workloads.shared import OwnerIndex, OwnerKeys, SharedInformers

__all__ = ["StatefulSetController"]

log = logging.getLogger("skiff.statefulset")

COMPONENT = "statefulset-controller"
CLAIMS = "persistentvolumeclaims"


class _Retry(Exception):
    """The sync cannot go on now (a stale collision count): requeue."""


def _is_statefulset(ref: dict | None) -> bool:
    return ref is not None and ref.get("kind") == "StatefulSet" and ref.get("apiVersion") == "apps/v1"


class StatefulSetController(QueueController):
    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, status_batch: float = 0.05):
        self.client = client
        self.workers = workers
        self.status_batch = status_batch
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue("statefulset")
        self.pod_index = OwnerIndex()
        self.rev_index = OwnerIndex()
        self.owners = OwnerKeys()
        self.expectations = PodExpectations()
        self.sets: Informer | None = None
        self.pods: Informer | None = None
        self.revisions: Informer | None = None
        self.claims: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.sets = await self.shared.acquire(self.client, "statefulsets")
        self.revisions = await self.shared.acquire(self.client, "controllerrevisions")
        if CLAIMS in RESOURCES:
            self.claims = await self.shared.acquire(self.client, CLAIMS)
        self.pods = await self.shared.acquire(self.client, "pods")
        self.sets.add_handler(self._on_set)
        self.revisions.add_handler(self._on_revision)
        self.pods.add_handler(self._on_pod)
        self.start_workers("statefulset-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res, h in ((self.pods, "pods", self._on_pod), (self.claims, CLAIMS, None),
                            (self.revisions, "controllerrevisions", self._on_revision),
                            (self.sets, "statefulsets", self._on_set)):
            if inf is not None:
                if h is not None:
                    inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_set(self, typ: str, sts: dict, old: dict | None) -> None:
        key = self.owners.handle(typ, sts)
        if typ == "DELETED":
            self.expectations.pop(key, None)
        self.queue.add(key)

    def _owner_key(self, obj: dict | None) -> str | None:
        ref = L.controller_of(obj)
        return self.owners.for_uid(ref.get("uid")) if _is_statefulset(ref) else None

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        self.pod_index.handle(typ, pod, old)
        pm, om = L.md(pod), L.md(old)
        status_only = (typ == "MODIFIED" and pm.get("labels") == om.get("labels")
                       and pm.get("ownerReferences") == om.get("ownerReferences")
                       and pm.get("deletionTimestamp") == om.get("deletionTimestamp"))
        for k in {self._owner_key(pod), self._owner_key(old)} - {None}:
            if typ == "ADDED" and self.expectations.observed_creation(k, key_of(pod)):
                status_only = True
            if status_only and self.status_batch > 0:
                self.queue.add_after(k, self.status_batch)
            else:
                self.queue.add(k)
        if L.controller_of(pod) is None and typ != "DELETED" and not pm.get("deletionTimestamp") \
                and (old is None or om.get("labels") != pm.get("labels") or L.controller_of(old) is not None):
            for k in self.owners.selecting(pod, self.sets):
                self.queue.add(k)

    def _on_revision(self, typ: str, rev: dict, old: dict | None) -> None:
        self.rev_index.handle(typ, rev, old)
        for k in {self._owner_key(rev), self._owner_key(old)} - {None}:
            self.queue.add(k)
        if L.controller_of(rev) is None and typ != "DELETED":
            for k in self.owners.selecting(rev, self.sets):
                self.queue.add(k)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        sts = self.sets.get(key)
        if sts is None:
            self.expectations.pop(key, None)
            return None
        m = sts["metadata"]
        if m.get("deletionTimestamp"):
            return None     # the garbage collector takes what it owns; no status to trust
        sel = L.selector_from((sts.get("spec") or {}).get("selector"))
        try:
            revs, current, update, collisions = await self._revisions(sts, sel)
        except _Retry as e:
            log.info("statefulset revision retry", extra={"fields": {"statefulset": key, "reason": str(e)}})
            return 0
        except APIError as e:
            if e.code not in (404, 409):
                raise
            return 0
        cur_name, upd_name = L.md(current)["name"], L.md(update)["name"]
        pods = await self._claim("pods", self.pods, self.pod_index, sts, sel)
        satisfied = self.expectations.satisfied(key, self.pods.cache)
        err: APIError | None = None
        plan = S.Plan()
        if satisfied:
            plan = S.plan(sts, pods, cur_name, upd_name, time.time())
            templates = {cur_name: S.revision_template(current), upd_name: S.revision_template(update)}
            try:
                await self._fix_claim_owners(sts, pods)
                await self._carry_out(sts, key, plan, templates)
                live = {cur_name, upd_name} | {(L.md(p).get("labels") or {}).get(S.REVISION_LABEL) for p in pods}
                for rev in S.history_to_prune(sts, revs, live):
                    await self._delete_quietly("controllerrevisions", rev)
            except APIError as e:
                err = e
        pods = [p for p in (self.pods.get(k) for k in self.pod_index.owned(m.get("uid"))) if p is not None]
        observed = int(m.get("generation") or 0) if satisfied else int(L.st(sts, "observedGeneration"))
        status = S.status_of(sts, pods, cur_name, upd_name, time.time(), collisions, observed)
        if status != (sts.get("status") or {}):
            try:
                await self.client.update("statefulsets", {**sts, "status": status}, subresource="status")
            except APIError as e:
                if e.code == 404:
                    return None
                if e.code != 409:
                    raise
                return 0
            log.info("statefulset status", extra={"fields": {
                "statefulset": key, "replicas": status["replicas"], "ready": status.get("readyReplicas", 0),
                "current": status.get("currentReplicas", 0), "updated": status.get("updatedReplicas", 0),
                "updateRevision": upd_name}})
        if err is not None:
            return 0
        after = [t for t in (plan.requeue, S.min_ready_requeue(sts, status)) if t is not None]
        return min(after) if after else None

    # -- steps --------------------------------------------------------------------------------
    async def _carry_out(self, sts: dict, key: str, plan: S.Plan, templates: dict) -> None:
        steps = plan.steps
        i = 0
        while i < len(steps):
            if steps[i].op == "create":
                j = i
                while j < len(steps) and steps[j].op == "create" and not steps[j].stop:
                    j += 1
                batch = steps[i:max(j, i + 1)]
                results = await asyncio.gather(*(self._create(sts, key, s, templates) for s in batch),
                                               return_exceptions=True)
                errs = [r for r in results if isinstance(r, BaseException)]
                for r in errs:
                    if not isinstance(r, APIError):
                        raise r
                if errs:
                    raise errs[0]
                if batch[-1].stop:
                    return
                i += len(batch)
                continue
            s = steps[i]
            if s.op == "delete":
                await self._delete(sts, key, s)
            elif s.op == "claims":
                await self._create_claims(sts, s.pod, s.ordinal)
            elif s.op == "identity":
                pm = L.md(s.pod)
                await self.client.patch("pods", pm["name"], {"metadata": {"labels": s.labels}}, pm.get("namespace"))
            if s.stop:
                return
            i += 1

    async def _create(self, sts: dict, key: str, step: S.Step, templates: dict) -> None:
        pod = S.new_pod(sts, templates[step.revision], step.ordinal, step.revision)
        name, ns = pod["metadata"]["name"], L.md(sts).get("namespace")
        await self._create_claims(sts, pod, step.ordinal)
        e = self.expectations.expect(key)
        e.creates.add(f"{ns}/{name}")
        try:
            await self.client.create("pods", pod, ns)
        except APIError as err:
            e.creates.discard(f"{ns}/{name}")
            if err.code == 409:     # still there (a lagging cache or a graceful deletion): next sync
                raise
            self.recorder.record(sts, "Warning", "FailedCreate",
                                 f"create Pod {name} in StatefulSet {L.md(sts)['name']} failed error: {err.message}")
            raise
        self.recorder.record(sts, "Normal", "SuccessfulCreate",
                             f"create Pod {name} in StatefulSet {L.md(sts)['name']} successful")
        if f"{ns}/{name}" in self.pods.cache:
            e.creates.discard(f"{ns}/{name}")

    async def _delete(self, sts: dict, key: str, step: S.Step) -> None:
        p = step.pod
        pm = L.md(p)
        set_name, ns = L.md(sts)["name"], L.md(sts).get("namespace")
        if step.why == "failed":
            self.recorder.record(sts, "Warning", "RecreatingFailedPod",
                                 f"StatefulSet {ns}/{set_name} is recreating failed Pod {pm['name']}")
        elif step.why == "succeeded":
            self.recorder.record(sts, "Normal", "RecreatingTerminatedPod",
                                 f"StatefulSet {ns}/{set_name} is recreating terminated Pod {pm['name']}")
        # a finished pod is removed at once and made again under its name in this sync: its name
        # cannot stand for the deletion (the creation is awaited instead)
        e = self.expectations.expect(key)
        if step.why not in ("failed", "succeeded"):
            e.deletes.add(key_of(p))
        try:
            await self.client.delete("pods", pm["name"], pm.get("namespace"), preconditions={"uid": pm.get("uid")})
        except APIError as err:
            e.deletes.discard(key_of(p))
            if err.code in (404, 409):
                return
            self.recorder.record(sts, "Warning", "FailedDelete",
                                 f"delete Pod {pm['name']} in StatefulSet {set_name} failed error: {err.message}")
            raise
        log.info("deleted pod", extra={"fields": {"statefulset": key, "pod": pm["name"], "why": step.why}})
        self.recorder.record(sts, "Normal", "SuccessfulDelete",
                             f"delete Pod {pm['name']} in StatefulSet {set_name} successful")

    # -- claims -------------------------------------------------------------------------------
    async def _get_claim(self, name: str, ns: str) -> dict | None:
        if self.claims is not None:
            c = self.claims.get(f"{ns}/{name}")
            if c is not None:
                return c
        try:
            return await self.client.get(CLAIMS, name, ns)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def _create_claims(self, sts: dict, pod: dict, ordinal: int) -> None:
        """createPersistentVolumeClaims: each claim of the pod that does not exist is made; one
        being deleted stops the pod's creation until it is gone."""
        set_name = L.md(sts)["name"]
        pod_name = L.md(pod).get("name")
        for claim in S.claims_for(sts, ordinal):
            name, ns = claim["metadata"]["name"], claim["metadata"]["namespace"]
            cur = await self._get_claim(name, ns)
            if cur is not None:
                if L.md(cur).get("deletionTimestamp"):
                    raise APIError({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                                    "reason": "Conflict", "message": f"pvc {name} is being deleted"})
                continue
            refs = S.claim_owner_refs(sts, pod if L.md(pod).get("uid") else None, claim)
            if refs:
                claim["metadata"]["ownerReferences"] = refs
            try:
                await self.client.create(CLAIMS, claim, ns)
            except APIError as e:
                if e.code == 409:
                    continue
                self.recorder.record(sts, "Warning", "FailedCreate",
                                     f"create Claim {name} for Pod {pod_name} in StatefulSet {set_name} failed "
                                     f"error: {e.message}")
                raise
            self.recorder.record(sts, "Normal", "SuccessfulCreate",
                                 f"create Claim {name} Pod {pod_name} in StatefulSet {set_name} success")

    async def _fix_claim_owners(self, sts: dict, pods: list) -> None:
        """The owner references of the members' existing claims, as the retention policy wants."""
        if self.claims is None or not (sts.get("spec") or {}).get("volumeClaimTemplates"):
            return
        set_name = L.md(sts)["name"]
        for p in pods:
            o = S.ordinal_of(set_name, p)
            if o < 0:
                continue
            for claim in S.claims_for(sts, o):
                cur = self.claims.get(f"{claim['metadata']['namespace']}/{claim['metadata']['name']}")
                if cur is None or L.md(cur).get("deletionTimestamp"):
                    continue
                refs = S.claim_owner_refs(sts, p, cur)
                if refs is None:
                    continue
                cm = L.md(cur)
                try:
                    await self.client.patch(CLAIMS, cm["name"], {"metadata": {
                        "resourceVersion": cm.get("resourceVersion"), "ownerReferences": refs or None}},
                        cm.get("namespace"))
                except APIError as e:
                    if e.code not in (404, 409):
                        raise

    # -- revisions ----------------------------------------------------------------------------
    async def _revisions(self, sts: dict, sel) -> tuple[list[dict], dict, dict, int]:
        """getStatefulSetRevisions: (the set's revisions, the current one, the update one, the
        collision count)."""
        revs = await self._claim("controllerrevisions", self.revisions, self.rev_index, sts, sel)
        revs.sort(key=lambda r: (int(r.get("revision") or 0), L.md(r).get("name") or ""))
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = D.revision_data(sts)
        equal = [r for r in revs if r.get("data") == data]
        if equal and revs[-1] is equal[-1]:
            update = revs[-1]
        elif equal:
            update = await self.client.update("controllerrevisions",
                                              {**equal[-1], "revision": D.next_revision(revs)})
        else:
            update, collisions = await self._create_revision(sts, D.next_revision(revs), collisions)
        if all(L.md(r).get("uid") != L.md(update).get("uid") for r in revs):
            revs.append(update)
        else:
            revs = [update if L.md(r).get("uid") == L.md(update).get("uid") else r for r in revs]
        want = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revs if L.md(r).get("name") == want), update)
        return revs, current, update, collisions

    async def _create_revision(self, sts: dict, number: int, collisions: int) -> tuple[dict, int]:
        """CreateControllerRevision: a name taken by another template bumps the collision count
        (the next hash differs)."""
        ns = L.md(sts).get("namespace")
        for _ in range(10):
            rev = S.new_revision(sts, number, collisions)
            try:
                return await self.client.create("controllerrevisions", rev, ns), collisions
            except APIError as e:
                if e.code != 409:
                    raise
            existing = await self.client.get("controllerrevisions", rev["metadata"]["name"], ns)
            if existing.get("data") == rev["data"]:
                return existing, collisions      # made by an earlier sync, not in the cache yet
            collisions += 1
            log.info("hash collision, collisionCount bumped", extra={"fields": {
                "statefulset": key_of(sts), "revision": rev["metadata"]["name"]}})
        raise _Retry("revision names keep colliding")

    async def _delete_quietly(self, res: str, obj: dict) -> None:
        m = L.md(obj)
        try:
            await self.client.delete(res, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid")})
        except APIError as e:
            if e.code not in (404, 409):
                raise

    # -- ownership ----------------------------------------------------------------------------
    async def _claim(self, res: str, inf: Informer, index: OwnerIndex, sts: dict, sel) -> list[dict]:
        """ClaimPods / ClaimControllerRevisions (skiff.controller.workloads.claiming)."""
        return await claim(self.client, "statefulsets", "StatefulSet", res, inf, index, sts, sel)
