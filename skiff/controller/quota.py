"""ResourceQuotas: what a namespace's objects use, the admission check of a create against the
namespace's quotas, and the controller that keeps each quota's status (Kubernetes' ResourceQuota
admission plugin and resource quota controller).

What is counted (as Kubernetes' evaluators count it):
- a pod that has not finished (and is not past its deletion grace): ``pods``, ``count/pods``,
  ``requests.cpu`` (also ``cpu``), ``requests.memory`` (``memory``), ``limits.cpu``,
  ``limits.memory``, the ephemeral-storage ones: the containers' sums, or an init container's
  when larger;
- ``services``, ``services.nodeports`` (node ports the Service has), ``services.loadbalancers``;
  ``configmaps``, ``secrets``, ``persistentvolumeclaims``, ``resourcequotas``;
- ``count/<resource>[.<group>]`` for any namespaced kind skiff serves.

Scopes (``spec.scopes``) narrow a quota to some pods: Terminating (activeDeadlineSeconds set),
NotTerminating, BestEffort (no requests or limits), NotBestEffort.

Admission: a create in a namespace with quotas is refused (403, Kubernetes' words) when the new
object would take a quota past its hard limit (``exceeded quota: q, requested: pods=1, used:
pods=2, limited: pods=2``), or when a pod leaves out a request or limit of cpu or memory a quota
limits (``failed quota: q: must specify limits.cpu for: web``). Usage is computed from the store
at the time of the check (not from status.used), and the checks and creates of a namespace with
quotas are serialized, so that two concurrent creates cannot both take the last unit.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from decimal import Decimal

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.resources import RESOURCES
from skiff.controller.workloads.logic import parse_time as parse_rfc3339
from skiff.api.validation_limits import quantity, show_quantity
from skiff.controller.storage import prefix_for
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import NamespaceCounts, SharedInformers

__all__ = ["pod_usage", "object_usage", "quota_covers_pod", "QuotaAdmission", "ResourceQuotaController"]

log = logging.getLogger("skiff.quota")

_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_NEED_EXPLICIT = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
_SIMPLE_COUNTS = {"services": "services", "configmaps": "configmaps", "secrets": "secrets",
                  "persistentvolumeclaims": "persistentvolumeclaims", "resourcequotas": "resourcequotas",
                  "replicationcontrollers": "replicationcontrollers"}
RESYNC = 10.0       # s: how often the controller recounts the namespaces that have quotas


def _count_key(plural: str) -> str:
    r = RESOURCES.get(plural)
    return f"count/{plural}.{r.group}" if r is not None and r.group else f"count/{plural}"


def _add(total: dict, k: str, v: Decimal) -> None:
    total[k] = total.get(k, Decimal(0)) + v


def _pod_compute(spec: dict) -> dict:
    """requests.X / limits.X of a pod: the containers' sums, or an init container's if larger."""
    out: dict[str, Decimal] = {}
    for field in ("requests", "limits"):
        for c in spec.get("containers") or ():
            for k, v in ((c.get("resources") or {}).get(field) or {}).items():
                q = quantity(v)
                if q is not None:
                    _add(out, f"{field}.{k}", q)
        for c in spec.get("initContainers") or ():
            for k, v in ((c.get("resources") or {}).get(field) or {}).items():
                q = quantity(v)
                if q is not None and q > out.get(f"{field}.{k}", Decimal(0)):
                    out[f"{field}.{k}"] = q
    for k in _COMPUTE:
        if f"requests.{k}" in out:
            out[k] = out[f"requests.{k}"]
    return out


def pod_counts(pod: dict, now: float | None = None) -> bool:
    """QuotaV1Pod: a pod uses quota until it has finished or is past its deletion grace."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    md = pod.get("metadata") or {}
    if md.get("deletionTimestamp"):
        t = parse_rfc3339(md["deletionTimestamp"])
        grace = int(md.get("deletionGracePeriodSeconds") or 0)
        if t is not None and (now or time.time()) > t + grace:
            return False
    return True


def pod_usage(pod: dict) -> dict:
    usage = {"pods": Decimal(1), "count/pods": Decimal(1)}
    usage.update(_pod_compute(pod.get("spec") or {}))
    return usage


def object_usage(plural: str, obj: dict) -> dict:
    """What one object of ``plural`` adds to its namespace's usage."""
    if plural == "pods":
        return pod_usage(obj)
    usage = {_count_key(plural): Decimal(1)}
    if plural in _SIMPLE_COUNTS:
        usage[_SIMPLE_COUNTS[plural]] = Decimal(1)
    if plural == "services":
        spec = obj.get("spec") or {}
        typ = spec.get("type") or "ClusterIP"
        if typ in ("NodePort", "LoadBalancer"):
            usage["services.nodeports"] = Decimal(sum(1 for p in spec.get("ports") or () if p.get("nodePort")
                                                      or typ in ("NodePort", "LoadBalancer")))
        if typ == "LoadBalancer":
            usage["services.loadbalancers"] = Decimal(1)
    if plural == "persistentvolumeclaims":
        req = quantity((((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"))
        if req is not None:
            usage["requests.storage"] = req
            sc = (obj.get("spec") or {}).get("storageClassName")
            if sc:
                usage[f"{sc}.storageclass.storage.k8s.io/requests.storage"] = req
                usage[f"{sc}.storageclass.storage.k8s.io/persistentvolumeclaims"] = Decimal(1)
    return usage


def _best_effort(spec: dict) -> bool:
    return not any((c.get("resources") or {}).get(f) for g in ("containers", "initContainers")
                   for c in spec.get(g) or () for f in ("requests", "limits"))


def quota_covers_pod(quota: dict, pod: dict) -> bool:
    spec = pod.get("spec") or {}
    for scope in (quota.get("spec") or {}).get("scopes") or ():
        terminating = spec.get("activeDeadlineSeconds") is not None
        if (scope == "Terminating" and not terminating) or (scope == "NotTerminating" and terminating) \
                or (scope == "BestEffort" and not _best_effort(spec)) \
                or (scope == "NotBestEffort" and _best_effort(spec)):
            return False
    return True


def _kinds_for(hard: dict) -> set[str]:
    """The resources (plurals) whose objects a quota's hard names count."""
    out = set()
    for k in hard:
        if k.startswith("count/"):
            plural = k[len("count/"):].split(".", 1)[0]
            if plural in RESOURCES:
                out.add(plural)
        elif k in ("pods",) or k.split(".")[0] in ("requests", "limits") and k.split(".", 1)[1] in _COMPUTE \
                or k in _COMPUTE:
            out.add("pods")
        elif k.startswith("services"):
            out.add("services")
        elif k in _SIMPLE_COUNTS:
            out.add(_SIMPLE_COUNTS[k])
        elif k == "requests.storage" or ".storageclass.storage.k8s.io/" in k:
            out.add("persistentvolumeclaims")
    return {p for p in out if p in RESOURCES}


async def namespace_usage(storage, namespace: str, quota: dict) -> dict:
    """status.used of ``quota``: for each resource it limits, what the namespace's objects use."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    used = {k: Decimal(0) for k in hard}
    now = time.time()
    for plural in _kinds_for(hard):
        items, _, _ = await storage.list(prefix_for(plural, namespace))
        for obj in items:
            if plural == "pods" and not (pod_counts(obj, now) and quota_covers_pod(quota, obj)):
                continue
            for k, v in object_usage(plural, obj).items():
                if k in used:
                    used[k] += v
    return used


def _pretty(d: dict) -> str:
    return ",".join(f"{k}={show_quantity(v)}" for k, v in sorted(d.items()))


def missing_requests(pod: dict, required: set) -> str | None:
    """The podEvaluator's constraint: every container names the cpu/memory requests and limits
    a quota limits (``must specify limits.cpu for: a,b; requests.memory for: a``)."""
    need = required & _NEED_EXPLICIT
    if not need:
        return None
    missing: dict[str, set] = defaultdict(set)
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        res = c.get("resources") or {}
        have = set()
        for k in (res.get("requests") or {}):
            have |= {k, f"requests.{k}"}
        for k in (res.get("limits") or {}):
            have.add(f"limits.{k}")
        for k in need - have:
            missing[k].add(c.get("name") or "")
    if not missing:
        return None
    return "must specify " + "; ".join(f"{k} for: {','.join(sorted(missing[k]))}" for k in sorted(missing))


class QuotaAdmission:
    """The ResourceQuota admission of creates, over the API server's storage."""

    def __init__(self):
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def guard(self, storage, plural: str, obj: dict, namespace: str | None, shown_name: str):
        """Check ``obj`` (about to be created in ``namespace``) against the namespace's quotas in
        ``storage``; the create runs inside, so that the next check sees it."""
        if plural not in RESOURCES or not RESOURCES[plural].namespaced or not namespace:
            yield
            return
        quotas, _, _ = await storage.list(prefix_for("resourcequotas", namespace))
        if not quotas:
            yield
            return
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            quotas, _, _ = await storage.list(prefix_for("resourcequotas", namespace))
            await self.check(storage, plural, obj, namespace, shown_name, quotas)
            yield

    async def check(self, storage, plural: str, obj: dict, namespace: str, shown_name: str,
                    quotas: list[dict]) -> None:
        delta = object_usage(plural, obj)
        for q in sorted(quotas, key=lambda q: (q.get("metadata") or {}).get("name", "")):
            name = (q.get("metadata") or {}).get("name", "")
            hard = {k: quantity(v) for k, v in ((q.get("spec") or {}).get("hard") or {}).items()}
            hard = {k: v for k, v in hard.items() if v is not None}
            if plural == "pods" and not quota_covers_pod(q, obj):
                continue
            touched = {k: v for k, v in delta.items() if k in hard}
            if plural == "pods":
                why = missing_requests(obj, set(hard))
                if why:
                    raise E.forbidden(plural, shown_name, f"failed quota: {name}: {why}")
            if not touched:
                continue
            used = await namespace_usage(storage, namespace, q)
            over = {k for k, v in touched.items() if used.get(k, Decimal(0)) + v > hard[k]}
            if over:
                raise E.forbidden(plural, shown_name, "exceeded quota: {}, requested: {}, used: {}, limited: {}".format(
                    name, _pretty({k: touched[k] for k in over}), _pretty({k: used.get(k, 0) for k in over}),
                    _pretty({k: hard[k] for k in over})))


class ResourceQuotaController(QueueController):
    """Keeps each quota's status (hard as in its spec, used as counted) current: when a quota
    changes, when a pod of a namespace with quotas changes, and every RESYNC seconds for the
    other kinds."""

    def __init__(self, client, storage_usage=None, *, shared: SharedInformers | None = None,
                 resync: float = RESYNC, workers: int = 1):
        self.client = client
        self.workers = workers
        self.resync = resync
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("resourcequota")
        self.quotas: Informer | None = None
        self.pods: Informer | None = None
        self._task: asyncio.Task | None = None
        self._namespaces = NamespaceCounts()          # namespace -> quotas in it

    async def start(self) -> None:
        self.quotas = await self.shared.acquire(self.client, "resourcequotas")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.quotas.add_handler(self._on_quota)
        self.pods.add_handler(self._on_pod)
        for q in self.quotas.list():
            self._on_quota("ADDED", q, None)
        self.start_workers("resourcequota-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for res, inf, h in (("resourcequotas", self.quotas, self._on_quota), ("pods", self.pods, self._on_pod)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)

    def _on_quota(self, typ: str, q: dict, old: dict | None) -> None:
        ns = self._namespaces.handle(typ, q)
        if typ != "DELETED":
            self.queue.add(ns)

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        if ns in self._namespaces:
            self.queue.add_after(ns, 0.2)     # a burst of pod events: one recount

    async def reconcile(self, ns: str) -> float | None:
        if ns not in self._namespaces:
            return None
        for q in [q for q in self.quotas.list() if (q.get("metadata") or {}).get("namespace") == ns]:
            await self._sync(q)
        return self.resync

    async def _sync(self, q: dict) -> None:
        md = q["metadata"]
        hard = dict((q.get("spec") or {}).get("hard") or {})
        used = await namespace_usage(_ClientStore(self.client), md.get("namespace") or "", q)
        status = {"hard": hard, "used": {k: show_quantity(v) for k, v in used.items()}}
        if (q.get("status") or {}) == status:
            return
        try:
            await self.client.update("resourcequotas", {**q, "status": status}, subresource="status")
        except APIError as e:
            if e.code not in (404, 409):     # gone, or changed: its event brings it back
                raise


class _ClientStore:
    """What namespace_usage needs of a store (``list(prefix)``), over an API client."""

    def __init__(self, client):
        self.client = client

    async def list(self, prefix: str):
        parts = prefix.strip("/").split("/")     # (registry/)resource/namespace
        plural, ns = parts[-2], parts[-1]
        out = await self.client.list(plural, ns)
        return out.get("items") or [], None, None
