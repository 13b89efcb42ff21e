"""LocalClient: the Client interface (contracts §3) over the registry, in-process, with no
HTTP. Same results and the same APIError as the HTTP client. Acts as admin unless another
user is given. Returned objects are the caller's own (the store hands out copies)."""
from __future__ import annotations

from typing import Any, AsyncIterator

from skiff.api.client_base import Client
from skiff.api.errors import APIError
from skiff.controller.auth import ADMIN, User

__all__ = ["APIError", "LocalClient"]


class LocalClient(Client):
    def __init__(self, registry, user: User = ADMIN):
        self.registry = registry
        self.user = user

    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> dict:
        return await self.registry.get(resource, name, namespace, subresource, user=self.user)

    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> dict:
        return await self.registry.list(resource, namespace, label_selector=label_selector,
                                        field_selector=field_selector, limit=limit,
                                        continue_=continue_, user=self.user)

    async def watch(self, resource: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, bookmarks: bool = True,
                    timeout_seconds: int | None = None) -> AsyncIterator[tuple[str, dict]]:
        stream = self.registry.watch(resource, namespace, resource_version=resource_version,
                                     label_selector=label_selector, field_selector=field_selector,
                                     bookmarks=bookmarks, timeout_seconds=timeout_seconds,
                                     user=self.user)
        try:
            async for ev in stream:
                yield ev
        finally:
            await stream.aclose()

    async def create(self, resource: str, obj: dict, namespace: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> dict:
        return await self.registry.create(resource, obj, namespace, subresource=subresource,
                                          name=name, user=self.user)

    async def update(self, resource: str, obj: dict, subresource: str | None = None) -> dict:
        return await self.registry.update(resource, obj, subresource=subresource, user=self.user)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None) -> dict:
        return await self.registry.patch(resource, name, patch, namespace, patch_type=patch_type,
                                         subresource=subresource, user=self.user)

    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     preconditions: dict | None = None,
                     propagation_policy: str | None = None) -> dict:
        return await self.registry.delete(resource, name, namespace,
                                          grace_period_seconds=grace_period_seconds,
                                          preconditions=preconditions,
                                          propagation_policy=propagation_policy, user=self.user)

    async def close(self) -> None:
        return None
