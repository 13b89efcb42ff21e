"""Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

As Kubernetes' pkg/controller/deployment (the arithmetic is in workloads/logic.py):

- ReplicaSets are found through the shared replicasets informer (by controller uid; orphans
  matching the selector are adopted, owned ones that stop matching are released).
- The new ReplicaSet is ``<deployment>-<pod-template-hash>`` with the hash label on its selector,
  template and pods; its revision annotation is one more than the old ones' (a template equal
  to an old RS's template reuses that RS and bumps its revision: rollback). A hash collision
  bumps status.collisionCount.
- RollingUpdate: scale the new RS up within maxSurge, then old RSes down within maxUnavailable
  (unhealthy ones first), one step per sync; Recreate: old RSes to 0, wait until their pods are
  gone, then the new RS to full size. A change of spec.replicas mid-rollout scales the active RSes
  proportionally (desired-replicas / max-replicas annotations). Paused deployments only scale.
- Status: observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas, the Available and Progressing conditions (with Kubernetes' reasons and
  messages, ProgressDeadlineExceeded after progressDeadlineSeconds without progress; the
  deployment is requeued to notice it), ReplicaFailure copied from the RSes.
- Old RSes scaled to 0 beyond revisionHistoryLimit are deleted once the rollout is complete.
- Events: Normal ScalingReplicaSet ``Scaled up replica set web-5d4f7b to 3``; one log line each.
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.shared import OwnerIndex, SharedInformers

__all__ = ["DeploymentController"]

log = logging.getLogger("skiff.deployment")

COMPONENT = "deployment-controller"


class DeploymentController(QueueController):
    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None):
        self.client = client
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue("deployment")
        self.rs_index = OwnerIndex()
        self.pod_index = OwnerIndex()
        self.d_by_ns: dict[str, set[str]] = {}
        self.d_by_uid: dict[str, str] = {}
        self.deployments: Informer | None = None
        self.rss: Informer | None = None
        self.pods: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.deployments = await self.shared.acquire(self.client, "deployments")
        self.rss = await self.shared.acquire(self.client, "replicasets")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.deployments.add_handler(self._on_deployment)
        self.rss.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)
        self.start_workers("deployment-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res, h in ((self.pods, "pods", self._on_pod), (self.rss, "replicasets", self._on_rs),
                            (self.deployments, "deployments", self._on_deployment)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_deployment(self, typ: str, d: dict, old: dict | None) -> None:
        key = key_of(d)
        m = d.get("metadata") or {}
        ns = m.get("namespace") or ""
        if typ == "DELETED":
            s = self.d_by_ns.get(ns)
            if s is not None:
                s.discard(key)
            self.d_by_uid.pop(m.get("uid"), None)
        else:
            self.d_by_ns.setdefault(ns, set()).add(key)
            self.d_by_uid[m.get("uid")] = key
        self.queue.add(key)

    def _owner_key(self, obj: dict | None, kind: str) -> str | None:
        ref = L.controller_of(obj)
        if ref is not None and ref.get("kind") == kind:
            return self.d_by_uid.get(ref.get("uid")) if kind == "Deployment" else None
        return None

    def _on_rs(self, typ: str, rs: dict, old: dict | None) -> None:
        self.rs_index.handle(typ, rs, old)
        keys = {self._owner_key(rs, "Deployment"), self._owner_key(old, "Deployment")} - {None}
        for k in keys:
            self.queue.add(k)
        if L.controller_of(rs) is None and typ != "DELETED":
            for k in self.d_by_ns.get(L.md(rs).get("namespace") or "", ()):
                d = self.deployments.get(k)
                if d is not None and L.selects(L.selector_from((d.get("spec") or {}).get("selector")), rs):
                    self.queue.add(k)

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        self.pod_index.handle(typ, pod, old)
        if typ != "DELETED":
            return
        # Recreate waits for the old pods to be gone
        ref = L.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(f"{L.md(pod).get('namespace')}/{ref.get('name')}")
        if rs is None or L.md(rs).get("uid") != ref.get("uid"):
            return
        k = self._owner_key(rs, "Deployment")
        if k is not None:
            d = self.deployments.get(k)
            if d is not None and not L.is_rolling(d):
                self.queue.add(k)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        d = self.deployments.get(key)
        if d is None:
            return None
        rss = await self._claim_rss(d)
        stored_status = d.get("status") or {}
        sync = _Sync(self, d, rss)
        try:
            if L.md(d).get("deletionTimestamp"):
                return await sync.status_only()
            pc = L.paused_condition(d)
            if pc is not None:
                st = dict(stored_status)
                st["conditions"] = [c for c in st.get("conditions") or () if c.get("type") != "Progressing"] + [pc]
                sync.d = {**sync.d, "status": st}
            if (d.get("spec") or {}).get("paused"):
                return await sync.scale_only(cleanup=True)
            new_rs, old_rss = await sync.new_and_old(create=False)
            if L.is_scaling_event(d, old_rss + ([new_rs] if new_rs else [])):
                return await sync.scale_only(cleanup=False)
            if L.is_rolling(d):
                return await sync.rolling()
            return await sync.recreate()
        except APIError as e:
            if e.code == 409:
                return 0
            if e.code == 404:
                return None
            raise

    async def _claim_rss(self, d: dict) -> list[dict]:
        m = d["metadata"]
        uid, ns = m.get("uid"), m.get("namespace") or ""
        sel = L.selector_from((d.get("spec") or {}).get("selector"))
        out = []
        for k in list(self.rs_index.owned(uid)):
            rs = self.rss.get(k)
            if rs is None:
                continue
            if L.selects(sel, rs) or m.get("deletionTimestamp"):
                out.append(rs)
            else:
                await self._set_owner(rs, d, False)
        if m.get("deletionTimestamp") or sel is None or sel.empty():
            return out
        adopt = [rs for rs in (self.rss.get(k) for k in list(self.rs_index.orphans_in(ns)))
                 if rs is not None and not L.md(rs).get("deletionTimestamp") and L.selects(sel, rs)]
        if adopt:
            fresh = await self.client.get("deployments", m["name"], ns)
            if fresh["metadata"].get("uid") != uid or fresh["metadata"].get("deletionTimestamp"):
                return out
            for rs in adopt:
                got = await self._set_owner(rs, d, True)
                if got is not None:
                    out.append(got)
        return out

    async def _set_owner(self, rs: dict, d: dict, adopt: bool) -> dict | None:
        m = rs["metadata"]
        uid = d["metadata"]["uid"]
        refs = [r for r in m.get("ownerReferences") or () if r.get("uid") != uid]
        if adopt:
            refs.append(L.controller_ref(d, "apps/v1", "Deployment"))
        try:
            out = await self.client.patch("replicasets", m["name"], {"metadata": {
                "resourceVersion": m.get("resourceVersion"), "ownerReferences": refs or None}},
                m.get("namespace"))
        except APIError as e:
            if e.code in (404, 409):
                return None
            raise
        log.info("adopted replica set" if adopt else "released replica set", extra={"fields": {
            "deployment": key_of(d), "replicaset": m["name"]}})
        return out


class _Sync:
    """One sync of one Deployment: keeps the RSes and the Deployment as written so far."""

    def __init__(self, ctl: DeploymentController, d: dict, rss: list[dict]):
        self.ctl = ctl
        self.client = ctl.client
        self.d = d
        self.stored_status = d.get("status") or {}
        self.rss = {L.md(rs)["name"]: rs for rs in rss}
        self.key = key_of(d)

    # -- helpers ------------------------------------------------------------------------------
    def _split(self) -> tuple[dict | None, list[dict]]:
        all_rss = list(self.rss.values())
        new = L.find_new_rs(self.d, all_rss)
        olds = [rs for rs in all_rss if new is None or L.md(rs)["name"] != L.md(new)["name"]]
        return new, olds

    def _set_status_condition(self, cond: dict) -> None:
        st = dict(self.d.get("status") or {})
        L.set_condition(st, cond)
        self.d = {**self.d, "status": st}

    async def _set_revision(self, rev: str) -> None:
        if L.annotation(self.d, L.REVISION_ANNOTATION) == rev:
            return
        m = self.d["metadata"]
        out = await self.client.patch("deployments", m["name"], {"metadata": {
            "annotations": {L.REVISION_ANNOTATION: rev}}}, m.get("namespace"))
        self.d = {**out, "status": self.d.get("status") or {}}

    async def new_and_old(self, create: bool) -> tuple[dict | None, list[dict]]:
        """getAllReplicaSetsAndSyncRevision."""
        existing, olds = self._split()
        new_revision = L.max_revision(olds) + 1
        d = self.d
        if existing is not None:
            ann = L.new_rs_annotations(d, L.md(existing).get("annotations"), new_revision, True)
            mrs = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if ann != (L.md(existing).get("annotations") or {}) or \
                    int((existing.get("spec") or {}).get("minReadySeconds") or 0) != mrs:
                m = existing["metadata"]
                body = {"metadata": {"resourceVersion": m.get("resourceVersion"), "annotations": ann}}
                if int((existing.get("spec") or {}).get("minReadySeconds") or 0) != mrs:
                    body["spec"] = {"minReadySeconds": mrs}
                out = await self.client.patch("replicasets", m["name"], body, m.get("namespace"))
                self.rss[m["name"]] = out
                existing = out
                if L.revision(out) > L.max_revision(olds) and L.md(out).get("annotations", {}).get(
                        L.REVISION_HISTORY_ANNOTATION):
                    log.info("rolled back to replica set", extra={"fields": {
                        "deployment": self.key, "replicaset": m["name"], "revision": L.revision(out)}})
            await self._set_revision(L.annotation(existing, L.REVISION_ANNOTATION) or str(new_revision))
            if L.has_progress_deadline(d) and L.get_condition(self.d.get("status"), "Progressing") is None:
                self._set_status_condition(L.new_condition(
                    "Progressing", "True", L.FOUND_NEW_RS, f'Found new replica set "{L.md(existing)["name"]}"'))
            return existing, olds
        if not create:
            return None, olds
        collision = (d.get("status") or {}).get("collisionCount")
        rs = L.new_rs_object(d, collision)
        n = L.new_rs_new_replicas(d, olds + [rs], rs)
        rs["spec"]["replicas"] = n
        rs["metadata"]["annotations"] = L.new_rs_annotations(d, None, new_revision, False)
        name = rs["metadata"]["name"]
        ns = rs["metadata"]["namespace"]
        try:
            created = await self.client.create("replicasets", rs, ns)
            already = False
        except APIError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                try:
                    cur = await self.client.get("replicasets", name, ns)
                except APIError:
                    raise e from None
                ref = L.controller_of(cur)
                if ref is not None and ref.get("uid") == d["metadata"]["uid"] and \
                        L.equal_ignore_hash((cur.get("spec") or {}).get("template"), (d.get("spec") or {}).get("template")):
                    created, already = cur, True
                else:
                    st = dict(self.d.get("status") or {})
                    st["collisionCount"] = int(collision or 0) + 1
                    log.warning("replica set name collision", extra={"fields": {
                        "deployment": self.key, "replicaset": name, "collisionCount": st["collisionCount"]}})
                    await self.client.update("deployments", {**self.d, "status": st}, subresource="status")
                    raise
            elif e.code == 403:
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.message}'
                if L.has_progress_deadline(d):
                    self._set_status_condition(L.new_condition("Progressing", "False", L.FAILED_RS_CREATE, msg))
                    await self._write_status(dict(self.d.get("status") or {}))
                self.ctl.recorder.record(d, "Warning", "FailedCreate", msg)
                raise
        self.rss[name] = created
        if not already and n > 0:
            self._event_scaled("up", name, n)
        await self._set_revision(str(new_revision))
        if not already:
            log.info("created replica set", extra={"fields": {"deployment": self.key, "replicaset": name,
                                                              "replicas": n, "revision": new_revision}})
            if L.has_progress_deadline(d):
                self._set_status_condition(L.new_condition("Progressing", "True", L.NEW_RS_CREATED,
                                                           f'Created new replica set "{name}"'))
        return created, olds

    def _event_scaled(self, op: str, name: str, n: int) -> None:
        msg = f"Scaled {op} replica set {name} to {n}"
        self.ctl.recorder.record(self.d, "Normal", "ScalingReplicaSet", msg)
        log.info("scaled replica set", extra={"fields": {"deployment": self.key, "replicaset": name,
                                                         "operation": op, "replicas": n}})

    async def scale_rs(self, rs: dict, n: int, op: str | None = None) -> bool:
        """scaleReplicaSet(AndRecordEvent): size and the desired/max annotations."""
        d = self.d
        desired, maxr = L.spec_replicas(d), L.spec_replicas(d) + L.max_surge(d)
        size_changed = L.spec_replicas(rs) != n
        if not size_changed and not L.replicas_annotations_need_update(rs, desired, maxr):
            return False
        m = rs["metadata"]
        out = await self.client.patch("replicasets", m["name"], {
            "metadata": {"resourceVersion": m.get("resourceVersion"), "annotations": {
                L.DESIRED_REPLICAS_ANNOTATION: str(desired), L.MAX_REPLICAS_ANNOTATION: str(maxr)}},
            "spec": {"replicas": n}}, m.get("namespace"))
        self.rss[m["name"]] = out
        if size_changed:
            self._event_scaled(op or ("up" if L.spec_replicas(rs) < n else "down"), m["name"], n)
        return size_changed

    async def _write_status(self, status: dict) -> None:
        if status == self.stored_status:
            return
        out = await self.client.update("deployments", {**self.d, "status": status}, subresource="status")
        self.stored_status = out.get("status") or {}
        self.d = out
        log.info("deployment status", extra={"fields": {
            "deployment": self.key, "replicas": status.get("replicas", 0),
            "updatedReplicas": status.get("updatedReplicas", 0),
            "availableReplicas": status.get("availableReplicas", 0),
            "conditions": {c.get("type"): c.get("reason") for c in status.get("conditions") or ()}}})

    async def sync_rollout_status(self) -> float | None:
        new, olds = self._split()
        status = L.rollout_status(self.d, olds + ([new] if new else []), new)
        await self._write_status(status)
        return L.stuck_requeue_after(self.d, status)

    async def cleanup(self) -> None:
        _, olds = self._split()
        for rs in L.history_to_prune(self.d, olds):
            m = rs["metadata"]
            try:
                await self.client.delete("replicasets", m["name"], m.get("namespace"),
                                         preconditions={"uid": m.get("uid")})
            except APIError as e:
                if e.code not in (404, 409):
                    raise
                continue
            self.rss.pop(m["name"], None)
            log.info("deleted old replica set", extra={"fields": {
                "deployment": self.key, "replicaset": m["name"], "revision": L.revision(rs),
                "revisionHistoryLimit": (self.d.get("spec") or {}).get("revisionHistoryLimit")}})

    # -- the strategies -----------------------------------------------------------------------
    async def status_only(self) -> float | None:
        new, olds = self._split()
        status = L.calculate_status(self.d, olds + ([new] if new else []), new)
        await self._write_status(status)
        return None

    async def scale_only(self, cleanup: bool) -> float | None:
        new, olds = await self.new_and_old(create=False)
        plan, op = L.proportional_scale(self.d, new, olds)
        for rs, n in plan:
            await self.scale_rs(self.rss[L.md(rs)["name"]], n, op or None)
        if cleanup:
            await self.cleanup()
        new, olds = self._split()
        status = L.calculate_status(self.d, olds + ([new] if new else []), new)
        await self._write_status(status)
        return None

    async def rolling(self) -> float | None:
        new, olds = await self.new_and_old(create=True)
        d = self.d
        # reconcileNewReplicaSet
        want = L.spec_replicas(d)
        if L.spec_replicas(new) != want:
            if L.spec_replicas(new) > want:
                target = want
            else:
                target = L.new_rs_new_replicas(d, olds + [new], new)
            if await self.scale_rs(new, target):
                return await self.sync_rollout_status()
        new, olds = self._split()
        plan = L.reconcile_old_rss(d, olds + [new], olds, new)
        scaled = False
        for rs, n in plan:
            scaled |= await self.scale_rs(self.rss[L.md(rs)["name"]], n)
        if scaled:
            return await self.sync_rollout_status()
        new, olds = self._split()
        if L.deployment_complete(d, L.calculate_status(d, olds + [new], new)):
            await self.cleanup()
        return await self.sync_rollout_status()

    def _old_pods_running(self, olds: list[dict]) -> bool:
        if L.actual_count(olds) > 0:
            return True
        for rs in olds:
            for k in self.ctl.pod_index.owned(L.md(rs).get("uid")):
                p = self.ctl.pods.get(k)
                if p is not None and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def recreate(self) -> float | None:
        new, olds = await self.new_and_old(create=False)
        scaled = False
        for rs in L.active(olds):
            scaled |= await self.scale_rs(rs, 0)
        if scaled:
            return await self.sync_rollout_status()
        _, olds = self._split()
        if self._old_pods_running(olds):
            return await self.sync_rollout_status()
        if new is None:
            new, olds = await self.new_and_old(create=True)
        new = self.rss[L.md(new)["name"]]
        if L.spec_replicas(new) != L.spec_replicas(self.d):
            await self.scale_rs(new, L.spec_replicas(self.d))
        else:
            await self.scale_rs(new, L.spec_replicas(self.d))   # annotations only
        new, olds = self._split()
        if L.deployment_complete(self.d, L.calculate_status(self.d, olds + [new], new)):
            await self.cleanup()
        return await self.sync_rollout_status()
