"""The endpoints and endpointslice controllers: every Service with a selector gets a core/v1
Endpoints object and discovery.k8s.io/v1 EndpointSlices listing the pods it selects.

As Kubernetes' pkg/controller/endpoint and pkg/controller/endpointslice (1.32), over the shared
services and pods informers (plus endpoints, endpointslices and nodes), one work queue of Service
keys each; what to write is :mod:`skiff.controller.workloads.endpointslogic`'s:

- A Service without a selector (or of type ExternalName) is left alone: its Endpoints and
  EndpointSlices are the user's.
- Services with a selector are indexed by namespace, pods by namespace: a pod event in a
  namespace without such a Service costs two dict look-ups; otherwise it queues the Services
  whose selector matches the pod's labels, old and new (a label change moves a pod between
  Services), and only when something that endpoints depend on changed (IP, readiness,
  deletion, phase, node, hostname, container ports).
- EndpointsController: writes ``<ns>/<service>`` Endpoints when its subsets, labels or capacity
  annotation differ from what the pods say (never otherwise); deletes it when the Service is
  deleted (and, at start, the Endpoints left over from Services deleted while it was not
  running). An Endpoints object changed or deleted by someone else is written again.
  Events on the Service: FailedToCreateEndpoint, FailedToUpdateEndpoint.
- EndpointSliceController: slices labelled ``kubernetes.io/service-name`` and
  ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``, made with
  generateName ``<service>-`` and owned by the Service (the garbage collector deletes them with
  it; so does this controller once the Service is gone or has no selector). Slices are updated
  in place, at most 100 endpoints each. The slices it wrote are tracked until the informer has
  them: a sync against a cache that does not show its own last writes yet is retried later (so
  no duplicate slice is made). Event on the Service: FailedToUpdateEndpointSlices.
- Conflicts (409) and not-found (404) requeue with the rate limiter's back-off.
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of, rv_of
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import endpointslogic as E
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["EndpointsController", "EndpointSliceController"]

log = logging.getLogger("skiff.endpoints")

ZONE_LABEL = "topology.kubernetes.io/zone"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
TRACK_TTL = 30.0        # how long a write of ours may stay unseen by the informer
# A Service's syncs are spaced by its size: after a sync over N pods, pod events wait until
# N * SPACING_PER_POD seconds (at most MAX_SPACING) have passed, gathering what came meanwhile
# into one sync. A small Service is synced at once; one over 10 000 pods every 5 s, not at every
# pod event (each such sync walks all its pods: at every event that was quadratic).
SPACING_PER_POD = 0.0005
MAX_SPACING = 5.0


def _md(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def _ns_terminating(e: APIError) -> bool:
    """A create refused because the namespace is being deleted (nothing to do: it all goes)."""
    return e.code == 403 and "being terminated" in (e.message or "")


class _ServicePods(QueueController):
    """What both controllers share: the Services with a selector by namespace, the pods by
    namespace, and the handlers that turn their events into Service keys."""

    name = ""
    component = ""
    extra: tuple[str, ...] = ()

    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, batch: float = 0.0):
        self.client = client
        self.workers = workers
        self.batch = batch
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, self.component)
        self._own_recorder = recorder is None
        self.queue = WorkQueue(self.name)
        self.selectors: dict[str, dict[str, dict]] = {}    # namespace -> {service key: selector}
        self.pod_keys: dict[str, set[str]] = {}              # namespace -> pod keys
        self.services: Informer | None = None
        self.pods: Informer | None = None
        self.informers: dict[str, Informer] = {}
        self._handlers: list[tuple[str, object]] = []
        self._task: asyncio.Task | None = None
        self._last_sync: dict[str, tuple[float, int]] = {}  # service key -> (when, pods walked)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.services = await self._acquire("services", self._on_service)
        self.pods = await self._acquire("pods", self._on_pod)
        for res in self.extra:
            self.informers[res] = await self._acquire(res, getattr(self, f"_on_{res}", None))
        self.started()
        self.start_workers(f"{self.name}-workers")

    def started(self) -> None:
        """Hook: the informers are synced, the workers not started yet."""

    async def _acquire(self, res: str, handler) -> Informer:
        inf = await self.shared.acquire(self.client, res)
        self.informers[res] = inf
        self._handlers.append((res, handler))
        if handler is not None:
            inf.add_handler(handler)
        return inf

    async def stop(self) -> None:
        await self.stop_workers()
        for res, h in reversed(self._handlers):
            inf = self.informers.get(res)
            if inf is not None:
                if h is not None:
                    inf.remove_handler(h)
                await self.shared.release(self.client, res)
        self._handlers.clear()
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _enqueue(self, key: str) -> None:
        """Queue a Service for a pod event: at once, or once its size's spacing (see
        SPACING_PER_POD) from its last sync has passed, or after ``batch``, whichever is later."""
        delay = self.batch
        last = self._last_sync.get(key)
        if last is not None:
            at, n = last
            delay = max(delay, at + min(MAX_SPACING, n * SPACING_PER_POD) - time.monotonic())
        if delay > 0:
            self.queue.add_after(key, delay)
        else:
            self.queue.add(key)

    def _on_service(self, typ: str, svc: dict, old: dict | None) -> None:
        key = key_of(svc)
        ns = _md(svc).get("namespace") or ""
        if typ != "DELETED" and E.manages(svc):
            self.selectors.setdefault(ns, {})[key] = E.service_selector(svc)
        else:
            self._last_sync.pop(key, None)
            cur = self.selectors.get(ns)
            if cur is not None:
                cur.pop(key, None)
                if not cur:
                    del self.selectors[ns]
        self.queue.add(key)

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        m = pod.get("metadata") or {}
        ns = m.get("namespace") or ""
        if typ == "ADDED":
            self.pod_keys.setdefault(ns, set()).add(f"{ns}/{m.get('name')}")
        elif typ == "DELETED":
            keys = self.pod_keys.get(ns)
            if keys is not None:
                keys.discard(f"{ns}/{m.get('name')}")
                if not keys:
                    del self.pod_keys[ns]
        svcs = self.selectors.get(ns)
        if not svcs:
            return          # no Service with a selector here: nothing to do
        labels = m.get("labels")
        old_labels = _md(old).get("labels") if old is not None else None
        moved = old is not None and old_labels != labels
        keys = [k for k, sel in svcs.items() if E.selects(sel, labels) or (moved and E.selects(sel, old_labels))]
        if not keys:
            return
        if typ == "MODIFIED" and old is not None and not moved and E.pod_view(old) == E.pod_view(pod):
            return          # nothing endpoints show changed (an annotation, a container's state)
        for k in keys:
            self._enqueue(k)

    # -- reads ----------------------------------------------------------------------------------
    def pods_of(self, svc: dict) -> list[dict]:
        """The pods in the Service's namespace its selector matches (from the cache)."""
        sel = E.service_selector(svc)
        ns = _md(svc).get("namespace") or ""
        out = []
        if sel is None:
            return out
        get = self.pods.cache.get
        for k in self.pod_keys.get(ns, ()):
            p = get(k)
            if p is not None and E.selects(sel, _md(p).get("labels")):
                out.append(p)
        self._last_sync[key_of(svc)] = (time.monotonic(), len(self.pod_keys.get(ns, ())))
        return out


class EndpointsController(_ServicePods):
    """core/v1 Endpoints for every Service with a selector."""

    name = "endpoints"
    component = "endpoint-controller"
    extra = ("endpoints",)

    def __init__(self, client, **kw):
        super().__init__(client, **kw)
        self.triggers = E.TriggerTimes()
        self._written: dict[str, str] = {}      # key -> resourceVersion of our last write

    @property
    def endpoints(self) -> Informer:
        return self.informers["endpoints"]

    def started(self) -> None:
        # checkLeftoverEndpoints: Endpoints whose Service was deleted while we were not running
        for key, ep in list(self.endpoints.cache.items()):
            if self.services.get(key) is None and LEADER_ANNOTATION not in (_md(ep).get("annotations") or {}):
                self.queue.add(key)

    def _on_endpoints(self, typ: str, ep: dict, old: dict | None) -> None:
        key = key_of(ep)
        if typ != "DELETED" and _md(ep).get("resourceVersion") == self._written.get(key):
            return          # our own write
        if typ == "DELETED":
            self._written.pop(key, None)
        svc = self.services.get(key)
        if svc is not None and E.manages(svc):
            self.queue.add(key)     # changed or deleted by someone else: put it right

    async def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        svc = self.services.get(key)
        if svc is None:
            self.triggers.forget(key)
            self._written.pop(key, None)
            try:
                await self.client.delete("endpoints", name, ns)
            except APIError as e:
                if e.code != 404:
                    raise
                return None
            log.info("deleted the endpoints of a deleted service", extra={"fields": {"service": key}})
            return None
        if not E.manages(svc):
            return None         # no selector: the user's Endpoints
        pods = self.pods_of(svc)
        current = self.endpoints.get(key)
        if current is not None and _md(current).get("deletionTimestamp"):
            return None
        trigger = self.triggers.compute(key, svc, pods)
        new = E.endpoints_update(svc, current, E.desired_subsets(svc, pods), trigger)
        if new is None:
            return None
        try:
            if current is None:
                out = await self.client.create("endpoints", new, ns)
            else:
                out = await self.client.update("endpoints", new)
        except APIError as e:
            if e.code in (404, 409):
                return 0        # the cache is behind (exists already / changed / gone): again
            if _ns_terminating(e):
                return None
            if current is None:
                self.recorder.record(svc, "Warning", "FailedToCreateEndpoint",
                                     f"Failed to create endpoint for service {key}: {e.message}")
            else:
                self.recorder.record(svc, "Warning", "FailedToUpdateEndpoint",
                                     f"Failed to update endpoint {key}: {e.message}")
            raise
        self._written[key] = _md(out).get("resourceVersion")
        subsets = new.get("subsets") or ()
        log.info("endpoints " + ("created" if current is None else "updated"), extra={"fields": {
            "service": key, "ready": sum(len(s.get("addresses") or ()) for s in subsets),
            "notReady": sum(len(s.get("notReadyAddresses") or ()) for s in subsets)}})
        return None


class EndpointSliceController(_ServicePods):
    """discovery.k8s.io/v1 EndpointSlices for every Service with a selector."""

    name = "endpointslice"
    component = "endpointslice-controller"
    extra = ("endpointslices", "nodes")

    def __init__(self, client, *, max_endpoints_per_slice: int = E.MAX_ENDPOINTS_PER_SLICE, **kw):
        super().__init__(client, **kw)
        self.max_per_slice = max_endpoints_per_slice
        self.triggers = E.TriggerTimes()
        self.slice_keys: dict[str, set[str]] = {}      # service key -> keys of its managed slices
        # service key -> {slice key: (resourceVersion we wrote, or -1 for deleted; when)}
        self.tracked: dict[str, dict[str, tuple[int, float]]] = {}

    @property
    def slices(self) -> Informer:
        return self.informers["endpointslices"]

    @staticmethod
    def _service_key(s: dict | None) -> str | None:
        if not E.is_managed_slice(s):
            return None
        m = _md(s)
        name = (m.get("labels") or {}).get(E.SERVICE_NAME_LABEL)
        return f"{m.get('namespace') or ''}/{name}" if name else None

    def _on_endpointslices(self, typ: str, s: dict, old: dict | None) -> None:
        key = key_of(s)
        before, cur = self._service_key(old), self._service_key(s)
        if before is not None and (typ == "DELETED" or before != cur):
            self._unindex(before, key)
        if typ == "DELETED":
            if cur is not None and cur != before:
                self._unindex(cur, key)
        elif cur is not None:
            self.slice_keys.setdefault(cur, set()).add(key)
        for svc_key in {before, cur} - {None}:
            if not self._own_event(svc_key, key, typ, s):
                self.queue.add(svc_key)

    def _unindex(self, svc_key: str, key: str) -> None:
        keys = self.slice_keys.get(svc_key)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.slice_keys[svc_key]

    def _own_event(self, svc_key: str, key: str, typ: str, s: dict) -> bool:
        """Whether the event shows a write of ours; the tracker's entry is settled by any event
        that shows the write (or the slice gone)."""
        t = self.tracked.get(svc_key)
        entry = t.get(key) if t else None
        if entry is None:
            return False
        rv = entry[0]
        if typ == "DELETED":
            own = rv < 0
        elif rv < 0 or rv_of(s) < rv:
            return False        # an older event than our write (or than our deletion)
        else:
            own = rv_of(s) == rv
        del t[key]
        if not t:
            del self.tracked[svc_key]
        return own

    def _track(self, svc_key: str, slice_key: str, rv: int) -> None:
        self.tracked.setdefault(svc_key, {})[slice_key] = (rv, time.monotonic())

    def _stale(self, svc_key: str) -> bool:
        """Whether the cache does not show all of our writes for this Service yet."""
        t = self.tracked.get(svc_key)
        if not t:
            return False
        now = time.monotonic()
        for k, (rv, at) in list(t.items()):
            cur = self.slices.get(k)
            if (rv < 0 and cur is None) or (rv >= 0 and cur is not None and rv_of(cur) >= rv) \
                    or now - at > TRACK_TTL:
                del t[k]
        if not t:
            del self.tracked[svc_key]
            return False
        return True

    def _zone(self, node: str) -> str | None:
        n = self.informers["nodes"].get(node)
        return (_md(n).get("labels") or {}).get(ZONE_LABEL) if n is not None else None

    def _managed_slices(self, key: str) -> list[dict]:
        out = []
        for k in self.slice_keys.get(key, ()):
            s = self.slices.get(k)
            if s is not None and not _md(s).get("deletionTimestamp"):
                out.append(s)
        return out

    async def reconcile(self, key: str) -> float | None:
        svc = self.services.get(key)
        if svc is None or not E.manages(svc):
            # gone, or no selector any more: what we made for it goes (the garbage collector
            # also deletes them, through their owner reference)
            self.triggers.forget(key)
            stale = self._managed_slices(key)
            if not stale:
                return None
            try:
                for s in stale:
                    await self._delete(key, s)
            except APIError as e:
                if e.code == 409:
                    return 0
                raise
            log.info("endpoint slices deleted", extra={"fields": {"service": key, "slices": len(stale)}})
            return None
        if self._stale(key):
            return 0            # our last writes are not in the cache yet: again shortly
        pods = self.pods_of(svc)
        desired = E.desired_slices(svc, pods, self._zone)
        trigger = self.triggers.compute(key, svc, pods)
        plan = E.plan_slices(svc, self._managed_slices(key), desired, self.max_per_slice, trigger)
        if plan.empty():
            return None
        ns = _md(svc).get("namespace")
        try:
            # creations first, deletions last: traffic never sees fewer endpoints than it should
            for s in plan.create:
                out = await self.client.create("endpointslices", s, ns)
                self._track(key, key_of(out), rv_of(out))
            for s in plan.update:
                out = await self.client.update("endpointslices", s)
                self._track(key, key_of(out), rv_of(out))
            for s in plan.delete:
                await self._delete(key, s)
        except APIError as e:
            if e.code in (404, 409):
                return 0
            if _ns_terminating(e):
                return None
            self.recorder.record(svc, "Warning", "FailedToUpdateEndpointSlices",
                                 f"Error updating Endpoint Slices for Service {key}: {e.message}")
            raise
        log.info("endpoint slices synced", extra={"fields": {
            "service": key, "created": len(plan.create), "updated": len(plan.update),
            "deleted": len(plan.delete), "endpoints": sum(len(g.endpoints) for gs in desired.values()
                                                          for g in gs.values())}})
        return None

    async def _delete(self, svc_key: str, s: dict) -> None:
        m = _md(s)
        try:
            await self.client.delete("endpointslices", m["name"], m.get("namespace"),
                                     preconditions={"uid": m.get("uid")})
        except APIError as e:
            if e.code != 404:
                raise
            return
        self._track(svc_key, key_of(s), -1)
