"""EventRecorder: every controller or agent decision becomes a core/v1 Event and a log line.

Like client-go's record.EventRecorder (+ the core of its EventCorrelator):

- ``record(obj, type, reason, message)`` never blocks and never raises: it logs one line
  (logger "skiff.events", fields kind/namespace/name/type/reason/source) and puts the event on a
  queue drained by a background task that writes it through the client.
- The Event lives in the object's namespace ("default" for cluster-scoped objects) and is named
  ``<object name>.<16 hex digits>`` (the time in ns, as client-go does).
- A repeat (same involved object uid, type, reason, message and source) within 10 minutes
  PATCHes the existing Event's ``count`` and ``lastTimestamp`` instead of creating a new one;
  if that Event is gone (404), a new one is created.
- Spam control, as Kubernetes does it:
  * per involved object and source, a token bucket (burst 25, one more token every 5 min,
    client-go's EventSourceObjectSpamFilter): an object's event beyond that is dropped
    (counted in ``spam_dropped``);
  * under load (``coalesce_at`` or more events queued) a repeat of an event still queued is
    merged into it (its count and lastTimestamp) instead of taking another queue slot;
  * the queue is bounded (10 000): when full, events are dropped with a log line;
  * the writer drains up to ``batch`` events at a time and writes them concurrently (events
    of one key in order), so that a burst (10 000 Scheduled events) costs few store commits
    (the store groups concurrent writes into one transaction).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from skiff.api.errors import APIError
from skiff.api.resources import RESOURCES
from skiff.api.timefmt import rfc3339

__all__ = ["EventRecorder", "NORMAL", "WARNING", "rfc3339"]

log = logging.getLogger("skiff.events")

NORMAL = "Normal"
WARNING = "Warning"
REPEAT_WINDOW = 600.0        # 10 min
QUEUE_SIZE = 10000
CACHE_SIZE = 4096             # client-go: maxLruCacheEntries (repeats and spam buckets, each)
SPAM_BURST = 25              # client-go: defaultSpamBurst
SPAM_REFILL = 300.0          # client-go: defaultSpamQPS = 1/300
COALESCE_AT = 100
BATCH = 64


class _Seen:
    __slots__ = ("name", "namespace", "count", "first", "last")

    def __init__(self, name: str, namespace: str, count: int, first: str, last: float):
        self.name = name
        self.namespace = namespace
        self.count = count
        self.first = first
        self.last = last


class EventRecorder:
    def __init__(self, client, component: str, host: str | None = None, *,
                 queue_size: int = QUEUE_SIZE, repeat_window: float = REPEAT_WINDOW,
                 coalesce_at: int = COALESCE_AT, batch: int = BATCH,
                 spam_burst: int = SPAM_BURST, spam_refill: float = SPAM_REFILL):
        self.client = client
        self.component = component
        self.host = host
        self.repeat_window = repeat_window
        self.source: dict[str, str] = {"component": component}
        if host:
            self.source["host"] = host
        self._queue_size = queue_size
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._seen: collections.OrderedDict[tuple, _Seen] = collections.OrderedDict()
        self._last_ns = 0
        self._queued: dict[tuple, list] = {}      # key -> the queued item (for coalescing)
        self._buckets: collections.OrderedDict[tuple, list] = collections.OrderedDict()
        self.coalesce_at, self.batch = coalesce_at, max(int(batch), 1)
        self.spam_burst, self.spam_refill = spam_burst, spam_refill
        self.dropped = 0
        self.spam_dropped = 0
        self.coalesced = 0
        self.failed = 0

    # -- the caller's side --------------------------------------------------------------------
    def record(self, obj: dict, type: str, reason: str, message: str, *,
               field_path: str | None = None) -> None:
        """Record an event about ``obj`` (type Normal|Warning). Never blocks, never raises."""
        try:
            now = time.time()
            ref = self._reference(obj, field_path)
            fields = {"kind": ref.get("kind"), "namespace": ref.get("namespace"), "name": ref.get("name"),
                      "type": type, "reason": reason, "source": self.component}
            if not fields["namespace"]:
                del fields["namespace"]
            log.log(logging.WARNING if type == WARNING else logging.INFO, message,
                    extra={"fields": fields})
            q = self._ensure_running()
            if q is None:
                self.dropped += 1
                return
            if not self._spam_ok(ref, now):
                self.spam_dropped += 1
                return
            key = self._key(ref, type, reason, message)
            queued = self._queued.get(key)
            if queued is not None and q.qsize() >= self.coalesce_at:
                queued[4] = now          # merged into the queued one: count + 1
                queued[5] += 1
                self.coalesced += 1
                return
            item = [ref, type, reason, message, now, 1]
            try:
                q.put_nowait(item)
                self._queued[key] = item
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("event queue full, event dropped", extra={"fields": fields})
        except Exception:  # noqa: BLE001 - recording must never break the caller
            log.exception("could not record event")

    def _key(self, ref: dict, type: str, reason: str, message: str) -> tuple:
        return (ref.get("uid") or (ref.get("kind"), ref.get("namespace"), ref.get("name")),
                type, reason, message, self.component, self.host)

    def _spam_ok(self, ref: dict, now: float) -> bool:
        """client-go's EventSourceObjectSpamFilter: a token bucket per source and object."""
        k = ref.get("uid") or (ref.get("kind"), ref.get("namespace"), ref.get("name"))
        b = self._buckets.get(k)
        if b is None:
            b = self._buckets[k] = [float(self.spam_burst), now]
            while len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(k)
            if self.spam_refill > 0:
                b[0] = min(float(self.spam_burst), b[0] + (now - b[1]) / self.spam_refill)
            b[1] = now
        if b[0] < 1.0:
            return False
        b[0] -= 1.0
        return True

    def event(self, obj: dict, type: str, reason: str, message: str) -> None:
        """Alias of record (client-go's name)."""
        self.record(obj, type, reason, message)

    def _ensure_running(self) -> asyncio.Queue | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("EventRecorder.record called outside the event loop; event not written")
            return None
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name=f"events-{self.component}")
        return self._queue

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every recorded event has been written (or given up on)."""
        if self._queue is not None:
            await asyncio.wait_for(self._queue.join(), timeout)

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout`` seconds), then stop the background task."""
        try:
            await self.flush(timeout)
        except asyncio.TimeoutError:
            log.warning("events not written before close", extra={"fields": {"pending": self._queue.qsize()}})
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass

    # -- building and writing -----------------------------------------------------------------
    @staticmethod
    def _reference(obj: dict, field_path: str | None) -> dict[str, str]:
        md = obj.get("metadata") or {}
        kind = obj.get("kind") or ""
        api_version = obj.get("apiVersion") or ""
        if not api_version and kind:
            for r in RESOURCES.values():
                if r.kind == kind:
                    api_version = r.api_version
                    break
        ref: dict[str, str] = {"kind": kind}
        if md.get("namespace"):
            ref["namespace"] = md["namespace"]
        ref["name"] = md.get("name") or ""
        if md.get("uid"):
            ref["uid"] = md["uid"]
        if api_version:
            ref["apiVersion"] = api_version
        if md.get("resourceVersion"):
            ref["resourceVersion"] = str(md["resourceVersion"])
        if field_path:
            ref["fieldPath"] = field_path
        return ref

    def _event_name(self, obj_name: str) -> str:
        ns = time.time_ns()
        if ns <= self._last_ns:
            ns = self._last_ns + 1
        self._last_ns = ns
        return f"{obj_name}.{ns:016x}"

    @staticmethod
    def _namespace_for(ref: dict) -> str:
        return ref.get("namespace") or "default"      # cluster-scoped objects: "default"

    async def _drain(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            items = [await q.get()]
            while len(items) < self.batch and not q.empty():
                items.append(q.get_nowait())
            groups: dict[tuple, list] = {}
            for item in items:
                key = self._key(*item[:4])
                if self._queued.get(key) is item:
                    del self._queued[key]      # from now on a repeat queues anew
                groups.setdefault(key, []).append(item)
            try:
                if len(groups) == 1:
                    await self._write_group(next(iter(groups.values())))
                else:
                    await asyncio.gather(*(self._write_group(g) for g in groups.values()))
            finally:
                for _ in items:
                    q.task_done()

    async def _write_group(self, items: list) -> None:
        for item in items:
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self.failed += 1
                log.warning("could not write event", extra={"fields": {
                    "error": f"{type(e).__name__}: {e}", "reason": item[2], "name": item[0].get("name")}})

    async def _write(self, ref: dict, type: str, reason: str, message: str, t: float,
                     n: int = 1) -> None:
        key = self._key(ref, type, reason, message)
        ts = rfc3339(t)
        seen = self._seen.get(key)
        if seen is not None and t - seen.last < self.repeat_window:
            patch = {"count": seen.count + n, "lastTimestamp": ts}
            try:
                await self.client.patch("events", seen.name, patch, seen.namespace, patch_type="merge")
                seen.count += n
                seen.last = t
                self._seen.move_to_end(key)
                return
            except APIError as e:
                if e.code != 404:
                    raise
                # the Event was deleted (TTL, by hand): start a new one
        ns = self._namespace_for(ref)
        ev: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": self._event_name(ref.get("name") or "unknown"), "namespace": ns},
            "involvedObject": ref,
            "reason": reason, "message": message, "type": type,
            "source": dict(self.source),
            "firstTimestamp": ts, "lastTimestamp": ts, "count": n,
            "reportingComponent": self.component,
        }
        if self.host:
            ev["reportingInstance"] = self.host
        created = await self.client.create("events", ev, ns)
        name = (created.get("metadata") or {}).get("name") or ev["metadata"]["name"]
        self._seen[key] = _Seen(name, ns, n, ts, t)
        self._seen.move_to_end(key)
        while len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)
