"""Informer: list + watch one resource into a local cache and tell handlers what changed.

client-go's reflector and shared informer, in one small class:

- ``start()`` lists (paginated), fills ``cache`` and sets ``synced``, then watches from the list's
  resourceVersion. It returns once the first list is in the cache.
- When the server ends a watch (timeoutSeconds, restart of a proxy, closed connection) the
  informer re-watches from the last resourceVersion it saw (events and BOOKMARKs advance it).
- A 410 Expired (ERROR line or status) means that resourceVersion is gone: relist, and hand the
  handlers the difference between the cache and the new list (synthetic DELETED for objects
  gone, MODIFIED for changed ones, ADDED for new ones).
- Other failures (server unreachable, 5xx, 403) relist with backoff 0.2 s doubling to 5 s.
- An event never replaces a newer object: resourceVersions are compared as integers and an
  event whose object is not newer than the cached one is dropped.
- ``transform`` (client-go's SetTransform) is applied to every object before it is cached, e.g.
  :func:`strip_managed_fields`, which the controllers' shared informers use: managedFields are
  half of a decoded pod and no controller reads them.

Handlers are synchronous callables ``fn(type, obj, old)`` with type ADDED|MODIFIED|DELETED; ``old``
is the cached object before the change (None for ADDED). They run on the event loop, in order,
and must be quick (typically: put a key on a WorkQueue). An exception in a handler is logged.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Callable, Iterable

from skiff.api.errors import APIError

__all__ = ["Informer", "key_of", "rv_of", "strip_managed_fields"]

log = logging.getLogger("skiff.informer")

Handler = Callable[[str, dict, "dict | None"], Any]


def key_of(obj: dict) -> str:
    """The cache key: "namespace/name" for namespaced objects, "name" otherwise."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))


def strip_managed_fields(obj: dict) -> dict:
    """``obj`` without metadata.managedFields (a shallow copy when it had them)."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not md or "managedFields" not in md:
        return obj
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def rv_of(obj: dict | None) -> int:
    """metadata.resourceVersion as an int (0 when absent or not a number)."""
    if not obj:
        return 0
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Informer:
    def __init__(self, client, resource: str, namespace: str | None = None,
                 field_selector: str | None = None, label_selector: str | None = None, *,
                 page_size: int | None = 500, watch_timeout: tuple[int, int] | None = (300, 600),
                 min_backoff: float = 0.2, max_backoff: float = 5.0, name: str | None = None,
                 transform: Callable[[dict], dict] | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.field_selector = field_selector
        self.label_selector = label_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.name = name or resource
        self.transform = transform
        self.cache: dict[str, dict] = {}
        self.synced = asyncio.Event()
        self.resource_version: str | None = None    # the last resourceVersion seen
        self.lists = 0                               # how many lists were done (first + relists)
        self.watches = 0                             # how many watches were opened
        self._handlers: list[Handler] = []
        self._task: asyncio.Task | None = None

    # -- handlers and reads -------------------------------------------------------------------
    def add_handler(self, fn: Handler, *, replay: bool = True) -> None:
        """Register ``fn(type, obj, old)``. When the cache is already synced and ``replay`` is
        true, ``fn`` first gets an ADDED for every cached object (like client-go)."""
        self._handlers.append(fn)
        if replay and self.synced.is_set():
            for obj in list(self.cache.values()):
                self._call(fn, "ADDED", obj, None)

    def remove_handler(self, fn: Handler) -> None:
        """Unregister ``fn`` (no error if it was not registered)."""
        try:
            self._handlers.remove(fn)
        except ValueError:
            pass

    def get(self, key: str) -> dict | None:
        return self.cache.get(key)

    def get_object(self, name: str, namespace: str | None = None) -> dict | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict]:
        return list(self.cache.values())

    def keys(self) -> Iterable[str]:
        return self.cache.keys()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, timeout: float | None = None) -> None:
        """Start listing/watching; return once the first list is in the cache. Raises
        asyncio.TimeoutError after ``timeout`` seconds without a successful list."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.name}")
        synced = asyncio.ensure_future(self.synced.wait())
        try:
            done, _ = await asyncio.wait({synced, self._task}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not synced.done():
                synced.cancel()
        if self._task in done and not self.synced.is_set():
            self._task.result()          # re-raise what killed it
        if not self.synced.is_set():
            raise asyncio.TimeoutError(f"informer {self.name}: not synced after {timeout} s")

    async def wait_synced(self) -> None:
        await self.synced.wait()

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None and not t.done():
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
        elif t is not None and not t.cancelled() and t.exception() is not None:
            log.debug("informer task ended with an error", exc_info=t.exception())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- the loop -----------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.min_backoff
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    backoff = self.min_backoff
                started = time.monotonic()
                n = await self._watch()
                if n == 0 and time.monotonic() - started < 1.0:
                    # the server ended an empty watch at once: do not spin
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                else:
                    backoff = self.min_backoff
            except asyncio.CancelledError:
                raise
            except APIError as e:
                need_list = True
                if e.code == 410:
                    log.info("watch expired, relisting", extra={"fields": {
                        "informer": self.name, "resourceVersion": self.resource_version, "message": e.message}})
                    continue
                log.warning("list/watch failed, relisting", extra={"fields": {
                    "informer": self.name, "code": e.code, "reason": e.reason, "error": e.message,
                    "retry_in": backoff}})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception as e:  # noqa: BLE001 - connection errors of any transport
                need_list = True
                log.warning("list/watch failed, relisting", extra={"fields": {
                    "informer": self.name, "error": f"{type(e).__name__}: {e}", "retry_in": backoff}})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _relist(self) -> None:
        items: list[dict] = []
        cont = None
        list_rv = None
        while True:
            page = await self.client.list(self.resource, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector, limit=self.page_size,
                                          continue_=cont)
            md = page.get("metadata") or {}
            if list_rv is None:
                list_rv = md.get("resourceVersion")
            page_items = page.get("items") or []
            if self.transform is not None:
                page_items = [self.transform(o) for o in page_items]
            items.extend(page_items)
            cont = md.get("continue")
            if not cont or not self.page_size:
                break
        self.lists += 1
        self._replace(items)
        if list_rv:
            self.resource_version = str(list_rv)
        self.synced.set()

    def _replace(self, items: list[dict]) -> None:
        """Make the cache equal to ``items`` and tell the handlers the difference."""
        new = {key_of(o): o for o in items}
        old_cache = self.cache
        for key, old in list(old_cache.items()):
            if key not in new:
                del old_cache[key]
                self._dispatch("DELETED", old, old)
        for key, obj in new.items():
            old = old_cache.get(key)
            if old is None:
                old_cache[key] = obj
                self._dispatch("ADDED", obj, None)
            elif rv_of(obj) > rv_of(old):
                old_cache[key] = obj
                self._dispatch("MODIFIED", obj, old)
            # else: not newer than what we hold

    async def _watch(self) -> int:
        """One watch from self.resource_version until the server ends it; returns the number of
        events received."""
        timeout = random.randint(*self.watch_timeout) if self.watch_timeout else None
        self.watches += 1
        n = 0
        agen = self.client.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                 label_selector=self.label_selector, field_selector=self.field_selector,
                                 bookmarks=True, timeout_seconds=timeout)
        try:
            async for typ, obj in agen:
                n += 1
                self._apply(typ, obj)
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()
        return n

    def _advance(self, rv: int) -> None:
        if rv and rv > _int(self.resource_version):
            self.resource_version = str(rv)

    def _apply(self, typ: str, obj: dict) -> None:
        rv = rv_of(obj)
        if typ == "BOOKMARK":
            self._advance(rv)
            return
        if not isinstance(obj, dict):
            return
        if self.transform is not None:
            obj = self.transform(obj)
        key = key_of(obj)
        old = self.cache.get(key)
        if typ in ("ADDED", "MODIFIED"):
            if old is not None and rv <= rv_of(old):
                self._advance(rv)
                return          # stale: never go back in time
            self.cache[key] = obj
            self._advance(rv)
            self._dispatch("ADDED" if old is None else "MODIFIED", obj, old)
        elif typ == "DELETED":
            self._advance(rv)
            if old is None:
                return
            if rv and rv < rv_of(old):
                return          # a deletion older than what we hold
            del self.cache[key]
            self._dispatch("DELETED", obj, old)
        else:
            log.debug("unknown watch event type", extra={"fields": {"informer": self.name, "type": typ}})

    def _dispatch(self, typ: str, obj: dict, old: dict | None) -> None:
        for fn in self._handlers:
            self._call(fn, typ, obj, old)

    def _call(self, fn: Handler, typ: str, obj: dict, old: dict | None) -> None:
        try:
            fn(typ, obj, old)
        except Exception as e:  # noqa: BLE001 - a handler must not break the informer
            log.error("informer handler failed", exc_info=True, extra={"fields": {
                "informer": self.name, "type": typ, "key": key_of(obj), "error": f"{type(e).__name__}: {e}"}})


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0
