"""Shared informers (client-go's SharedInformerFactory, in small) and an owner index.

The controllers of one process share one informer per resource, so 10 000 pods are cached once,
not once per controller. Its objects are read-only (a controller builds new dicts for what it
writes), carry no metadata.managedFields (stripped: half of a decoded pod), and share their
equal parts (:class:`skiff.api.jsontree.Sharer`: a template's pods hold one containers list)::

    shared = SharedInformers()
    pods = await shared.acquire(client, "pods")   # started and synced
    ...
    await shared.release(client, "pods")          # stopped with its last user
"""
from __future__ import annotations

import asyncio

from skiff.api.informer import Informer, key_of, strip_managed_fields
from skiff.api.jsontree import Sharer

__all__ = ["SharedInformers", "OwnerIndex", "OwnerKeys"]


def _client_key(client) -> int:
    """LocalClients of one registry (ControlPlane gives each controller its own) share."""
    return id(getattr(client, "registry", None) or client)


class SharedInformers:
    def __init__(self):
        self._infs: dict[tuple[int, str], tuple[Informer, int]] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, client, resource: str) -> Informer:
        async with self._lock:
            k = (_client_key(client), resource)
            cur = self._infs.get(k)
            if cur is None:
                sharer = Sharer()
                inf = Informer(client, resource, name=f"shared-{resource}",
                               transform=lambda obj: sharer.share(strip_managed_fields(obj)))
                self._infs[k] = (inf, 1)
                await inf.start()
                return inf
            self._infs[k] = (cur[0], cur[1] + 1)
            return cur[0]

    async def release(self, client, resource: str) -> None:
        async with self._lock:
            k = (_client_key(client), resource)
            cur = self._infs.get(k)
            if cur is None:
                return
            if cur[1] <= 1:
                del self._infs[k]
                await cur[0].stop()
            else:
                self._infs[k] = (cur[0], cur[1] - 1)


class OwnerIndex:
    """Keys of objects by their controller's uid, and of orphans (no controller) by namespace.
    ``handle`` is an informer handler."""

    def __init__(self):
        self.by_owner: dict[str, set[str]] = {}
        self.orphans: dict[str, set[str]] = {}

    @staticmethod
    def _owner(obj: dict | None) -> str | None:
        for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("controller"):
                return ref.get("uid")
        return None

    def handle(self, typ: str, obj: dict, old: dict | None) -> None:
        key = key_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        if old is not None:
            self._remove(key, self._owner(old), ns)
        if typ != "DELETED":
            o = self._owner(obj)
            if o:
                self.by_owner.setdefault(o, set()).add(key)
            else:
                self.orphans.setdefault(ns, set()).add(key)

    def _remove(self, key: str, owner: str | None, ns: str) -> None:
        d, k = (self.by_owner, owner) if owner else (self.orphans, ns)
        s = d.get(k)
        if s is not None:
            s.discard(key)
            if not s:
                del d[k]

    def owned(self, uid: str) -> set[str]:
        return self.by_owner.get(uid, set())

    def orphans_in(self, ns: str) -> set[str]:
        return self.orphans.get(ns, set())


class OwnerKeys:
    """One owner kind's keys by uid (the owner a pod's controller reference names) and by
    namespace (the owners that may adopt an orphan there), kept from the owner informer's
    events (``handle``) by the ReplicaSet, Job and DaemonSet controllers."""

    def __init__(self):
        self.by_uid: dict[str, str] = {}
        self.by_ns: dict[str, set[str]] = {}

    def handle(self, typ: str, obj: dict) -> str:
        """Track (or, for DELETED, forget) ``obj``; its key."""
        m = obj.get("metadata") or {}
        key, ns = key_of(obj), m.get("namespace") or ""
        if typ == "DELETED":
            self.by_ns.get(ns, set()).discard(key)
            self.by_uid.pop(m.get("uid"), None)
        else:
            self.by_ns.setdefault(ns, set()).add(key)
            self.by_uid[m.get("uid")] = key
        return key

    def for_uid(self, uid: str | None) -> str | None:
        return self.by_uid.get(uid) if uid else None

    def selecting(self, obj: dict, owners: Informer, selector_of=None) -> list[str]:
        """The owners in ``obj``'s namespace whose selector matches its labels (for an orphan).
        ``selector_of(owner)``: its LabelSelector (default: ``spec.selector`` as a metav1.LabelSelector)."""
        from skiff.controller.selectors import selector_from
        out = []
        for k in self.by_ns.get((obj.get("metadata") or {}).get("namespace") or "", ()):
            owner = owners.get(k)
            if owner is not None:
                sel = selector_of(owner) if selector_of is not None else \
                    selector_from((owner.get("spec") or {}).get("selector"))
                if sel is not None and not sel.empty() and sel.matches_labels((obj.get("metadata") or {}).get("labels")):
                    out.append(k)
        return out


class NamespaceCounts(dict):
    """How many objects of one kind each namespace holds (namespace -> count, only those with
    some): what lets a pod handler return at once in the namespaces without a quota, budget..."""

    def handle(self, typ: str, obj: dict) -> str:
        """Count an informer event (ADDED/MODIFIED/DELETED of ``obj``); returns its namespace."""
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        n = self.get(ns, 0) + (1 if typ == "ADDED" else -1 if typ == "DELETED" else 0)
        if n > 0:
            self[ns] = n
        else:
            self.pop(ns, None)
        return ns
