"""The serviceaccounts controller: every active namespace has a ``default`` ServiceAccount, as
kube-controller-manager's makes it (at start for the namespaces that exist, when a namespace is
made, and again when someone deletes it). Their tokens come from the TokenRequest API
(skiff.controller.rbac)."""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.controller.admission_serviceaccount import DEFAULT_SERVICE_ACCOUNT
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["ServiceAccountsController", "DEFAULT_SERVICE_ACCOUNT"]

log = logging.getLogger("skiff.serviceaccounts")


class ServiceAccountsController(QueueController):
    def __init__(self, client, *, workers: int = 1, shared: SharedInformers | None = None):
        self.client = client
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("serviceaccounts")
        self.namespaces: Informer | None = None
        self.accounts: Informer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.namespaces = await self.shared.acquire(self.client, "namespaces")
        self.accounts = await self.shared.acquire(self.client, "serviceaccounts")
        self.namespaces.add_handler(self._on_namespace)
        self.accounts.add_handler(self._on_account)
        for ns in self.namespaces.list():
            self.queue.add((ns.get("metadata") or {}).get("name", ""))
        self.start_workers("serviceaccounts-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for res, inf, h in (("namespaces", self.namespaces, self._on_namespace),
                            ("serviceaccounts", self.accounts, self._on_account)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)

    def _on_namespace(self, typ: str, ns: dict, old: dict | None) -> None:
        if typ != "DELETED":
            self.queue.add((ns.get("metadata") or {}).get("name", ""))

    def _on_account(self, typ: str, sa: dict, old: dict | None) -> None:
        md = sa.get("metadata") or {}
        if typ == "DELETED" and md.get("name") == DEFAULT_SERVICE_ACCOUNT:
            self.queue.add(md.get("namespace", ""))

    async def reconcile(self, ns_name: str) -> float | None:
        ns = self.namespaces.get(ns_name)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp") \
                or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.accounts.get(f"{ns_name}/{DEFAULT_SERVICE_ACCOUNT}") is not None:
            return None
        try:
            await self.client.create("serviceaccounts", {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": ns_name}}, ns_name)
            log.info("created the default ServiceAccount", extra={"fields": {"namespace": ns_name}})
        except APIError as e:
            if e.code == 409:           # made meanwhile (or the cache is behind): fine
                return None
            if e.code in (403, 404):    # the namespace is going or gone
                return None
            raise
        return None
