"""The agent's cache of the ConfigMaps and Secrets its pods read, as the kubelet's cache-based
object manager: the pods of one node share each object's GET.

- A pod that starts reads its objects fresh (``max_age`` 0), as the kubelet does when a pod is
  registered: what it starts with is what the API holds then.
- The mounted volumes' refresh (the pod worker, once a sync period) reads them through the
  cache with ``max_age`` set to that period: one GET per object and node a period, however many
  pods mount it (every pod mounts ``kube-root-ca.crt`` in its token volume), and concurrent
  readers of a stale object wait for the same GET.

A missing object (404) is cached as None; any other error is raised and not cached. Entries not
read more than ``keep`` seconds ago are dropped.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

Key = tuple[str, str, str]   # (resource, namespace, name)


class ObjectCache:
    def __init__(self, client, keep: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.keep = keep
        self._clock = clock
        self._entries: dict[Key, tuple[float, dict | None]] = {}   # key -> (read at, object or None)
        self._inflight: dict[Key, asyncio.Future] = {}
        self._pruned_at = clock()
        self.fetches = 0

    async def get(self, resource: str, namespace: str, name: str, max_age: float = 0.0) -> dict | None:
        """The object as read at most ``max_age`` seconds ago (0: read now); None when missing."""
        key = (resource, namespace, name)
        now = self._clock()
        if max_age > 0:
            held = self._entries.get(key)
            if held is not None and now - held[0] <= max_age:
                return held[1]
            pending = self._inflight.get(key)
            if pending is not None:
                return await asyncio.shield(pending)
        self._prune(now)
        # a task of its own: a reader that is cancelled does not cancel the others' read
        task = asyncio.ensure_future(self._read(key))
        task.add_done_callback(_retrieved)
        if max_age > 0:
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _read(self, key: Key) -> dict | None:
        from skiff.api.errors import APIError
        resource, namespace, name = key
        self.fetches += 1
        try:
            try:
                obj = await self.client.get(resource, name, namespace)
            except APIError as e:
                if e.code != 404:
                    raise
                obj = None
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        self._entries[key] = (self._clock(), obj)
        return obj

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < self.keep:
            return
        self._pruned_at = now
        for key in [k for k, (t, _) in self._entries.items() if now - t > self.keep]:
            del self._entries[key]


def _retrieved(task: asyncio.Task) -> None:
    """Mark the read's error as seen: its readers may all have been cancelled."""
    if not task.cancelled():
        task.exception()
