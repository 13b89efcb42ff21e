"""Namespace controller: empties a Terminating namespace, then lets it go.

As Kubernetes' namespace deleter: for a namespace with deletionTimestamp and the ``kubernetes``
finalizer in spec.finalizers, every namespaced resource (except events, deleted last) is listed
and each object deleted with the default (background) propagation; pods are deleted gracefully,
so their agents stop them. While anything remains, the namespace is looked at again (every
``interval`` seconds); once it is empty, the finalizer is removed through
``namespaces/NAME/finalize`` and the API server removes the namespace. The NamespaceDeletion*
conditions report what is left, as Kubernetes does.
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.resources import RESOURCES
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.logic import rfc3339

__all__ = ["NamespaceController", "NAMESPACE_FINALIZER"]

log = logging.getLogger("skiff.namespace")

NAMESPACE_FINALIZER = "kubernetes"


class NamespaceController(QueueController):
    def __init__(self, client, *, interval: float = 1.0, workers: int = 2):
        self.client = client
        self.interval = interval
        self.workers = workers
        self.queue = WorkQueue("namespace")
        self.namespaces = Informer(client, "namespaces", name="namespace-controller")
        self.namespaces.add_handler(self._on_ns)
        self._task: asyncio.Task | None = None

    def _on_ns(self, typ: str, ns: dict, old: dict | None) -> None:
        if typ != "DELETED" and (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def start(self) -> None:
        await self.namespaces.start()
        self.start_workers("namespace-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        await self.namespaces.stop()

    async def reconcile(self, name: str) -> float | None:
        ns = self.namespaces.get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if NAMESPACE_FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return None
        remaining: dict[str, int] = {}
        resources = [r for r in RESOURCES.values() if r.namespaced and r.plural != "events"]
        resources.append(RESOURCES["events"]) if "events" in RESOURCES else None
        for r in resources:
            if r.plural == "events" and remaining:
                break           # events last, so that the deletions' events are collected too
            try:
                items = (await self.client.list(r.plural, name))["items"]
            except APIError as e:
                if e.code in (404, 405):
                    continue
                raise
            left = 0
            for obj in items:
                m = obj["metadata"]
                left += 1
                if m.get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(r.plural, m["name"], name)
                except APIError as e:
                    if e.code == 404:
                        left -= 1
                        continue
                    if e.code != 409:
                        raise
                else:
                    log.info("deleted object of terminating namespace", extra={"fields": {
                        "namespace": name, "resource": r.plural, "name": m["name"]}})
            if left:
                remaining[r.plural] = left
        if remaining:
            await self._set_conditions(ns, remaining)
            return self.interval
        spec = dict(ns.get("spec") or {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != NAMESPACE_FINALIZER]
        try:
            await self.client.update("namespaces", {**ns, "spec": spec}, subresource="finalize")
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                return 0
            raise
        log.info("namespace emptied, finalizer removed", extra={"fields": {"namespace": name}})
        return None

    async def _set_conditions(self, ns: dict, remaining: dict[str, int]) -> None:
        """NamespaceContentRemaining (written when it changes)."""
        msg = "Some resources are remaining: " + ", ".join(
            f"{k} has {v} resource instances" for k, v in sorted(remaining.items()))
        status = dict(ns.get("status") or {})
        conds = [c for c in status.get("conditions") or () if c.get("type") != "NamespaceContentRemaining"]
        cur = next((c for c in status.get("conditions") or () if c.get("type") == "NamespaceContentRemaining"), None)
        if cur is not None and cur.get("message") == msg:
            return
        conds.append({"type": "NamespaceContentRemaining", "status": "True",
                      "lastTransitionTime": (cur or {}).get("lastTransitionTime") or rfc3339(),
                      "reason": "SomeResourcesRemain", "message": msg})
        status["conditions"] = conds
        try:
            await self.client.update("namespaces", {**ns, "status": status}, subresource="status")
        except APIError as e:
            if e.code not in (404, 409, 422):
                raise
