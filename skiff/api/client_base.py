"""The one async client interface of the API (contracts §3); two implementations:
:class:`skiff.api.client.HTTPClient` (over HTTP) and
:class:`skiff.controller.local_client.LocalClient` (in-process, over the registry).
Both raise :class:`skiff.api.errors.APIError` with the same Status."""
from __future__ import annotations

import abc
from typing import Any, AsyncIterator

from .errors import APIError

__all__ = ["APIError", "Client"]


class Client(abc.ABC):
    @abc.abstractmethod
    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> dict:
        """The object (404 APIError if absent)."""

    @abc.abstractmethod
    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> dict:
        """The List object ({"kind": "PodList", "metadata": {"resourceVersion", "continue"}, "items"})."""

    @abc.abstractmethod
    def watch(self, resource: str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, bookmarks: bool = True,
              timeout_seconds: int | None = None) -> AsyncIterator[tuple[str, dict]]:
        """Yields (type, obj): ADDED|MODIFIED|DELETED|BOOKMARK. Raises APIError(410) when the
        resourceVersion is too old; ends when the server ends the watch."""

    @abc.abstractmethod
    async def create(self, resource: str, obj: dict, namespace: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> dict:
        """POST; binding: ``create("pods", binding, ns, subresource="binding", name=pod)``."""

    @abc.abstractmethod
    async def update(self, resource: str, obj: dict, subresource: str | None = None) -> dict:
        """PUT; namespace and name from obj.metadata."""

    @abc.abstractmethod
    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None) -> dict:
        """patch_type: merge | json | strategic (treated as merge)."""

    @abc.abstractmethod
    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     preconditions: dict | None = None,
                     propagation_policy: str | None = None) -> dict:
        """DELETE; returns the object (marked for deletion, or as it was when removed).
        propagation_policy: Orphan | Background | Foreground (DeleteOptions.propagationPolicy)."""

    async def close(self) -> None:
        """Release the client's resources."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
