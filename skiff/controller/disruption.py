"""PodDisruptionBudgets: the disruption controller that keeps their status, and the check the
pods/eviction subresource makes (Kubernetes' disruption controller and eviction REST, 1.32).

Status of a budget, from the pods its selector matches in its namespace:
- expectedPods: the scale of their controllers, counted once each, found as Kubernetes' finders
  do: a ReplicationController's replicas, a ReplicaSet's Deployment's (or the ReplicaSet's own
  when no Deployment controls it), a StatefulSet's; a pod without one counts itself;
- currentHealthy: those Ready and not being deleted;
- desiredHealthy: minAvailable (a percentage of expectedPods, rounded up), or expectedPods minus
  maxUnavailable (likewise);
- disruptionsAllowed: currentHealthy - desiredHealthy (not below 0), less the evictions of the
  last two minutes the informer has not seen finish (status.disruptedPods);
- the DisruptionAllowed condition (SufficientPods / InsufficientPods).

An eviction of a pod no budget covers, or of one that has finished, deletes it at once. A
covered pod is deleted when its budget allows one more disruption (the budget's status takes it
first, as a compare-and-swap); otherwise 429 "Cannot evict pod as it would violate the pod's
disruption budget.". A pod two budgets cover cannot be evicted (500, Kubernetes' words). With
unhealthyPodEvictionPolicy AlwaysAllow, or an unready pod while the budget is healthy
(IfHealthyBudget), the budget is not consumed.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.timefmt import rfc3339
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.shared import NamespaceCounts, SharedInformers

__all__ = ["DisruptionController", "budget_status", "EVICTION_DENIED"]

log = logging.getLogger("skiff.disruption")

EVICTION_DENIED = "Cannot evict pod as it would violate the pod's disruption budget."
DELETION_TIMEOUT = 120.0      # s: an eviction not seen done by then is forgotten (Kubernetes' 2 minutes)


def _healthy(pod: dict) -> bool:
    return not L.md(pod).get("deletionTimestamp") and L.is_pod_ready(pod)


def _scaled(v, total: int) -> int:
    if isinstance(v, str) and v.endswith("%"):
        return math.ceil(int(v[:-1]) * total / 100)
    return int(v)


def selects(pdb: dict, pod: dict) -> bool:
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None or L.md(pod).get("namespace") != L.md(pdb).get("namespace"):
        return False        # policy/v1: a nil selector selects nothing, an empty one everything
    return L.selects(L.selector_from(sel), pod)


def budget_status(pdb: dict, pods: list[dict], scale_of, now: float) -> dict:
    """The status of ``pdb`` over the pods its selector matches; ``scale_of(ref)`` gives a
    controller's replicas, or (uid of the controller that owns the scale, replicas), or None
    when unknown."""
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    expected, seen = 0, set()
    for p in live:
        ref = L.controller_of(p)
        scale = scale_of(ref) if ref is not None else None
        uid = ref.get("uid") if ref is not None else None
        if isinstance(scale, tuple):
            uid, scale = scale
        if scale is None:
            expected += 1
        elif uid not in seen:
            seen.add(uid)
            expected += scale
    healthy = sum(1 for p in live if _healthy(p))
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected)
    else:
        desired = 0             # neither given: nothing is required (the controller's arithmetic)
    by_name = {L.md(p).get("name"): p for p in pods}
    disrupted = {}
    for name, ts in (old.get("disruptedPods") or {}).items():
        p = by_name.get(name)
        t = L.parse_time(ts) or 0
        if p is not None and not L.md(p).get("deletionTimestamp") and now - t < DELETION_TIMEOUT:
            disrupted[name] = ts
    allowed = max(0, healthy - desired - len(disrupted))
    cond = ("True", "SufficientPods", "") if allowed > 0 else ("False", "InsufficientPods", "")
    prev = next((c for c in old.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
    when = prev.get("lastTransitionTime") if prev and prev.get("status") == cond[0] else rfc3339(now)
    st = {"observedGeneration": L.md(pdb).get("generation", 1), "disruptionsAllowed": allowed,
          "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
          "conditions": [{"type": "DisruptionAllowed", "status": cond[0], "reason": cond[1], "message": cond[2],
                          "observedGeneration": L.md(pdb).get("generation", 1), "lastTransitionTime": when}]}
    if disrupted:
        st["disruptedPods"] = disrupted
    return st


# the controllers whose scale Kubernetes' disruption controller finds (kind -> resource)
_SCALERS = {"ReplicationController": "replicationcontrollers", "ReplicaSet": "replicasets",
            "Deployment": "deployments", "StatefulSet": "statefulsets"}


class DisruptionController(QueueController):
    def __init__(self, client, *, workers: int = 1, shared: SharedInformers | None = None, clock=time.time):
        self.client = client
        self.workers = workers
        self.clock = clock
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("disruption")
        self.pdbs: Informer | None = None
        self.pods: Informer | None = None
        self.rss: Informer | None = None
        self.scalers: dict[str, Informer] = {}     # kind -> informer of the controllers with a scale
        self._task: asyncio.Task | None = None
        self._namespaces = NamespaceCounts()          # namespace -> budgets in it

    async def start(self) -> None:
        self.pdbs = await self.shared.acquire(self.client, "poddisruptionbudgets")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.rss = await self.shared.acquire(self.client, "replicasets")
        for kind, res in _SCALERS.items():
            self.scalers[kind] = self.rss if res == "replicasets" else await self.shared.acquire(self.client, res)
        self.pdbs.add_handler(self._on_pdb)
        self.pods.add_handler(self._on_pod)
        for p in self.pdbs.list():
            self._on_pdb("ADDED", p, None)
        self.start_workers("disruption-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res, h in ((self.pdbs, "poddisruptionbudgets", self._on_pdb), (self.pods, "pods", self._on_pod)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self.rss is not None:
            await self.shared.release(self.client, "replicasets")
        for kind in list(self.scalers):
            if _SCALERS[kind] != "replicasets":
                await self.shared.release(self.client, _SCALERS[kind])
        self.scalers.clear()

    def _on_pdb(self, typ: str, pdb: dict, old: dict | None) -> None:
        ns = self._namespaces.handle(typ, pdb)
        if typ != "DELETED":
            self.queue.add(f"{ns}/{L.md(pdb).get('name')}")

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        ns = L.md(pod).get("namespace") or ""
        if ns not in self._namespaces:
            return          # no budget in its namespace: nothing to do (the cheap, common case)
        for pdb in self.pdbs.list():
            if selects(pdb, pod) or (old is not None and selects(pdb, old)):
                self.queue.add_after(f"{ns}/{L.md(pdb).get('name')}", 0.1)

    def _find(self, kind: str, uid) -> dict | None:
        inf = self.scalers.get(kind)
        for o in inf.list() if inf is not None else ():
            if L.md(o).get("uid") == uid:
                return o
        return None

    def _scale_of(self, ref: dict) -> tuple[str, int] | None:
        """(uid, replicas) of the controller whose scale covers a pod of ``ref``."""
        obj = self._find(ref.get("kind") or "", ref.get("uid"))
        if obj is None:
            return None
        if ref.get("kind") == "ReplicaSet":
            dref = L.controller_of(obj)
            if dref is not None:     # getPodDeployment: a Deployment's replicas, not its ReplicaSets'
                if dref.get("kind") != "Deployment":
                    return None
                d = self._find("Deployment", dref.get("uid"))
                return (dref.get("uid"), L.spec_replicas(d)) if d is not None else None
        return ref.get("uid"), L.spec_replicas(obj)

    async def reconcile(self, key: str) -> float | None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        pods = [p for p in self.pods.list() if selects(pdb, p)]
        st = budget_status(pdb, pods, self._scale_of, self.clock())
        if st == (pdb.get("status") or {}):
            return None
        try:
            await self.client.update("poddisruptionbudgets", {**pdb, "status": st}, subresource="status")
        except APIError as e:
            if e.code == 409:
                return 0.1
            if e.code != 404:
                raise
        return DELETION_TIMEOUT if st.get("disruptedPods") else None


async def evict(registry, namespace: str, name: str, eviction: dict, user) -> dict:
    """The pods/eviction subresource: delete the pod if its disruption budget allows it."""
    from skiff.controller.storage import StoreError, key_for, prefix_for
    ename = (eviction.get("metadata") or {}).get("name") if isinstance(eviction, dict) else None
    if ename and ename != name:
        raise E.bad_request("name in URL does not match name in Eviction object")
    pod = await registry.get("pods", name, namespace, user=user)
    opts = eviction.get("deleteOptions") if isinstance(eviction, dict) else None
    grace = (opts or {}).get("gracePeriodSeconds")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed") or L.md(pod).get("deletionTimestamp"):
        await registry.delete("pods", name, namespace, user=user, grace_period_seconds=grace)
        return E.success_status(201)
    pdbs, _, _ = await registry.storage.list(prefix_for("poddisruptionbudgets", namespace))
    covering = [p for p in pdbs if selects(p, pod)]
    if len(covering) > 1:
        raise E.internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does "
                         "not support.")
    if covering:
        pdb = covering[0]
        spec, st = pdb.get("spec") or {}, dict(pdb.get("status") or {})
        unhealthy_ok = not L.is_pod_ready(pod) and (
            spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
            or int(st.get("currentHealthy") or 0) >= int(st.get("desiredHealthy") or 0) > 0)
        if not unhealthy_ok:
            if st.get("observedGeneration") != L.md(pdb).get("generation", 1) \
                    or int(st.get("disruptionsAllowed") or 0) <= 0:
                raise APIError(429, "TooManyRequests", EVICTION_DENIED, causes=[{
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {L.md(pdb).get('name')} needs {st.get('desiredHealthy', 0)} "
                               f"healthy pods and has {st.get('currentHealthy', 0)} currently"}])
            st["disruptionsAllowed"] = int(st["disruptionsAllowed"]) - 1
            st["disruptedPods"] = {**(st.get("disruptedPods") or {}), name: rfc3339()}
            key = key_for("poddisruptionbudgets", namespace, L.md(pdb)["name"])
            try:
                await registry.storage.update(key, {**pdb, "status": st}, L.md(pdb).get("resourceVersion"))
            except StoreError as e:
                if e.reason == "Conflict":
                    raise APIError(429, "TooManyRequests", EVICTION_DENIED) from None
                raise
    await registry.delete("pods", name, namespace, user=user, grace_period_seconds=grace)
    return E.success_status(201)
