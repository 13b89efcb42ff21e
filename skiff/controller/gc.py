"""Garbage collector: ownerReferences across pods, replicasets, deployments, jobs, daemonsets,
statefulsets, persistentvolumeclaims and controllerrevisions.

As Kubernetes' garbage collector (graph builder + attemptToDelete + orphan workers), over the
shared informers:

- The graph: every cached object by uid, and the dependents of each owner uid.
- A dependent all of whose owners are gone is deleted (background propagation). "Gone" is
  confirmed with a live GET of the owner (404, or another uid under that name) before deleting,
  so a lagging cache never deletes anything. A dependent with some owners gone and some alive
  gets the dangling references removed.
- An owner deleted with propagationPolicy=Orphan carries the ``orphan`` finalizer: the collector
  removes the owner's reference from every dependent, then the finalizer.
- An owner deleted with propagationPolicy=Foreground carries ``foregroundDeletion``: its
  dependents are deleted (foreground too), and the finalizer is removed once none with
  blockOwnerDeletion is left.
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.api.resources import RESOURCES, resource_for_kind
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["GarbageCollector", "GC_RESOURCES", "ORPHAN", "FOREGROUND"]

log = logging.getLogger("skiff.gc")

GC_RESOURCES = ("deployments", "replicasets", "replicationcontrollers", "cronjobs", "jobs", "daemonsets", "statefulsets", "controllerrevisions",
                "pods", "persistentvolumeclaims")
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


class GarbageCollector(QueueController):
    def __init__(self, client, *, resources=GC_RESOURCES, workers: int = 4,
                 shared: SharedInformers | None = None):
        self.client = client
        self.resources = [r for r in resources if r in RESOURCES]
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("garbagecollector")
        self.informers: dict[str, Informer] = {}
        self.nodes: dict[str, tuple[str, str]] = {}          # uid -> (resource, key)
        self.dependents: dict[str, set[tuple[str, str]]] = {}  # owner uid -> {(resource, key)}
        self._handlers: dict[str, object] = {}
        self.absent: dict[str, None] = {}       # owner uids confirmed gone (bounded, oldest dropped)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for res in self.resources:
            inf = await self.shared.acquire(self.client, res)
            self.informers[res] = inf
            h = self._handler(res)
            self._handlers[res] = h
            inf.add_handler(h)
        self.start_workers("gc-workers")
        from skiff.controller.crd.kinds import CUSTOM, LISTENERS   # custom resources, while served
        self._crd_listener = self._on_custom
        LISTENERS.append(self._crd_listener)
        for plural in list(CUSTOM):
            self._on_custom(plural, True)

    def _on_custom(self, plural: str, served: bool) -> None:
        self._custom = getattr(self, "_custom", None) or {}
        prev = self._custom.get(plural)
        self._custom[plural] = asyncio.ensure_future(self._follow(plural, served, prev))

    async def _follow(self, res: str, served: bool, prev) -> None:
        """Follow (or stop following) the custom resource ``res`` in the graph."""
        if prev is not None:
            await asyncio.gather(prev, return_exceptions=True)
        if served and res not in self.informers:
            inf = await self.shared.acquire(self.client, res)
            self.informers[res] = inf
            h = self._handler(res)
            self._handlers[res] = h
            inf.add_handler(h)
        elif not served and res in self.informers:
            inf = self.informers.pop(res)
            h = self._handlers.pop(res, None)
            if h is not None:
                inf.remove_handler(h)
            await self.shared.release(self.client, res)

    async def stop(self) -> None:
        from skiff.controller.crd.kinds import LISTENERS
        if getattr(self, "_crd_listener", None) in LISTENERS:
            LISTENERS.remove(self._crd_listener)
        for t in (getattr(self, "_custom", None) or {}).values():
            t.cancel()
        await self.stop_workers()
        for res, inf in self.informers.items():
            h = self._handlers.get(res)
            if h is not None:
                inf.remove_handler(h)
            await self.shared.release(self.client, res)

    # -- the graph ----------------------------------------------------------------------------
    def _handler(self, res: str):
        def on(typ: str, obj: dict, old: dict | None) -> None:
            key = key_of(obj)
            m = obj.get("metadata") or {}
            uid = m.get("uid")
            item = (res, key)
            if old is not None:
                for ref in (old.get("metadata") or {}).get("ownerReferences") or ():
                    s = self.dependents.get(ref.get("uid"))
                    if s is not None:
                        s.discard(item)
                        if not s:
                            del self.dependents[ref.get("uid")]
            if typ == "DELETED":
                self.nodes.pop(uid, None)
                for dep in self.dependents.get(uid, ()):     # orphaned: look at them
                    self.queue.add(dep)
                return
            self.nodes[uid] = item
            refs = m.get("ownerReferences") or ()
            for ref in refs:
                self.dependents.setdefault(ref.get("uid"), set()).add(item)
                if ref.get("uid") not in self.nodes:
                    self.queue.add(item)
            if m.get("deletionTimestamp") and any(f in (ORPHAN, FOREGROUND) for f in m.get("finalizers") or ()):
                self.queue.add(item)
            if old is not None and (old.get("metadata") or {}).get("deletionTimestamp") is None \
                    and m.get("deletionTimestamp"):
                # an owner waiting in foreground for this one
                for ref in refs:
                    o = self.nodes.get(ref.get("uid"))
                    if o is not None:
                        self.queue.add(o)
        return on

    def _get(self, item: tuple[str, str]) -> dict | None:
        inf = self.informers.get(item[0])
        return inf.get(item[1]) if inf is not None else None

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, item: tuple[str, str]) -> float | None:
        obj = self._get(item)
        if obj is None:
            return None
        m = obj["metadata"]
        fins = m.get("finalizers") or []
        try:
            if m.get("deletionTimestamp") and ORPHAN in fins:
                return await self._orphan_dependents(item, obj)
            if m.get("deletionTimestamp") and FOREGROUND in fins:
                return await self._foreground(item, obj)
            if m.get("ownerReferences"):
                return await self._check_owners(item, obj)
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                return 0
            raise
        return None

    async def _owner_gone(self, obj: dict, ref: dict) -> bool | None:
        """True: the owner is gone; False: it exists; None: unknown kind."""
        uid = ref.get("uid")
        if uid in self.nodes:
            return False
        if uid in self.absent:
            return True         # uids are never reused: once gone, gone for good
        r = resource_for_kind(ref.get("apiVersion") or "", ref.get("kind") or "")
        if r is None:
            return None
        ns = (obj.get("metadata") or {}).get("namespace") if r.namespaced else None
        try:
            owner = await self.client.get(r.plural, ref.get("name"), ns)
        except APIError as e:
            if e.code == 404:
                self._mark_absent(uid)
                return True
            raise
        if (owner.get("metadata") or {}).get("uid") != uid:
            self._mark_absent(uid)
            return True
        return False

    def _mark_absent(self, uid: str) -> None:
        self.absent[uid] = None
        if len(self.absent) > 10000:
            del self.absent[next(iter(self.absent))]

    async def _check_owners(self, item: tuple[str, str], obj: dict) -> float | None:
        m = obj["metadata"]
        refs = m.get("ownerReferences") or []
        gone = []
        for ref in refs:
            g = await self._owner_gone(obj, ref)
            if g is None or g is False:
                continue
            gone.append(ref)
        if not gone:
            return None
        res = item[0]
        if len(gone) == len(refs):
            if m.get("deletionTimestamp"):
                return None
            log.info("deleting dependent whose owners are gone", extra={"fields": {
                "resource": res, "object": item[1], "owners": [f"{r.get('kind')}/{r.get('name')}" for r in refs],
                "propagationPolicy": "Background"}})
            await self._delete(res, obj, "Background")
            return None
        keep = [r for r in refs if r not in gone]
        await self.client.patch(res, m["name"], {"metadata": {
            "resourceVersion": m.get("resourceVersion"), "ownerReferences": keep}}, m.get("namespace"))
        log.info("removed dangling owner references", extra={"fields": {
            "resource": res, "object": item[1], "owners": [r.get("uid") for r in gone]}})
        return None

    async def _delete(self, res: str, obj: dict, policy: str) -> None:
        m = obj["metadata"]
        try:
            await self.client.delete(res, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid")},
                                     propagation_policy=policy)
        except APIError as e:
            if e.code not in (404, 409):
                raise

    async def _orphan_dependents(self, item: tuple[str, str], obj: dict) -> float | None:
        uid = obj["metadata"]["uid"]
        for dep in list(self.dependents.get(uid, ())):
            d = self._get(dep)
            if d is None:
                continue
            dm = d["metadata"]
            refs = dm.get("ownerReferences") or []
            keep = [r for r in refs if r.get("uid") != uid]
            if len(keep) == len(refs):
                continue
            await self.client.patch(dep[0], dm["name"], {"metadata": {
                "resourceVersion": dm.get("resourceVersion"), "ownerReferences": keep or None}},
                dm.get("namespace"))
            log.info("orphaned dependent", extra={"fields": {"resource": dep[0], "object": dep[1],
                                                             "owner": item[1]}})
        await self._remove_finalizer(item, obj, ORPHAN)
        return None

    async def _foreground(self, item: tuple[str, str], obj: dict) -> float | None:
        uid = obj["metadata"]["uid"]
        blocking = 0
        for dep in list(self.dependents.get(uid, ())):
            d = self._get(dep)
            if d is None:
                continue
            dm = d["metadata"]
            ref = next((r for r in dm.get("ownerReferences") or () if r.get("uid") == uid), None)
            if ref is None:
                continue
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dm.get("deletionTimestamp"):
                log.info("deleting dependent in foreground", extra={"fields": {
                    "resource": dep[0], "object": dep[1], "owner": item[1]}})
                await self._delete(dep[0], d, "Foreground" if ref.get("blockOwnerDeletion") else "Background")
        if blocking:
            return 1.0          # dependents still there: look again (their events also requeue)
        await self._remove_finalizer(item, obj, FOREGROUND)
        return None

    async def _remove_finalizer(self, item: tuple[str, str], obj: dict, fin: str) -> None:
        m = obj["metadata"]
        fins = [f for f in m.get("finalizers") or () if f != fin]
        await self.client.patch(item[0], m["name"], {"metadata": {
            "resourceVersion": m.get("resourceVersion"), "finalizers": fins or None}}, m.get("namespace"))
        log.info("removed finalizer", extra={"fields": {"resource": item[0], "object": item[1],
                                                        "finalizer": fin}})
