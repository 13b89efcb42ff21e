"""The storage interface of the control plane, and what every backend shares.

One global, monotonically increasing revision (etcd's model): every write (create, update,
delete) bumps it by exactly one, and the object's ``metadata.resourceVersion`` is the
revision of its last write, as a string. Every write is a compare-and-swap: ``update`` and
``delete`` take the resourceVersion the caller last saw and fail with 409 Conflict when it
is stale.

Keys are ``/<resource>/<namespace>/<name>``; cluster-scoped objects have an empty namespace
(``/nodes//n1``). A prefix such as ``/pods/`` or ``/pods/default/`` selects a list or a
watch; see :func:`key_for` and :func:`prefix_for`.

List pagination (``limit`` / ``continue``): pages are in key order. The continue token
encodes the prefix, the last key returned and the revision of the *first* page; every later
page reports that same revision as its ``list_rv``, but its items are read from the current
data (an item changed after the first page shows its newer resourceVersion, an item
deleted meanwhile is skipped, an item created behind the cursor is not seen). So the pages
together are not one snapshot; a client that needs one lists without ``limit``. Watching
from the reported ``list_rv`` replays every change since the first page, so an informer
that applies events by resourceVersion still converges.
"""
from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import bisect
import collections
import json
import logging
from typing import Any, AsyncIterator, Callable

from skiff.api import jsoncodec

log = logging.getLogger(__name__)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

Obj = dict[str, Any]
WatchEvent = tuple[str, Obj, int]  # (type, object, revision)
KeyedEvent = tuple[str, str, Obj, int]  # (type, key, object, revision)


class StoreError(Exception):
    """A storage failure with its Kubernetes ``Status`` reason and HTTP code.

    reasons: NotFound (404), AlreadyExists (409), Conflict (409), Expired (410),
    BadRequest (400).
    """

    def __init__(self, reason: str, code: int, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason
        self.code = code
        self.message = message or reason

    def __repr__(self) -> str:
        return f"StoreError(reason={self.reason!r}, code={self.code}, message={self.message!r})"


def not_found(key: str) -> StoreError:
    return StoreError("NotFound", 404, f"{key} not found")


def already_exists(key: str) -> StoreError:
    return StoreError("AlreadyExists", 409, f"{key} already exists")


def conflict(key: str, expected: str, actual: str) -> StoreError:
    return StoreError("Conflict", 409,
                      f"the object {key} has been modified (resourceVersion {actual}, "
                      f"expected {expected}); please apply your changes to the latest "
                      f"version and try again")


def expired(from_rev: int, oldest: int) -> StoreError:
    return StoreError("Expired", 410,
                      f"too old resource version: {from_rev} ({oldest})")


def key_for(resource: str, namespace: str | None, name: str) -> str:
    """``key_for("pods", "default", "web") == "/pods/default/web"``; ``/nodes//n1``."""
    return f"/{resource}/{namespace or ''}/{name}"


def prefix_for(resource: str, namespace: str | None = None) -> str:
    """The prefix of every ``resource`` (in ``namespace`` if given): ``/pods/`` or ``/pods/ns/``."""
    if namespace is None:
        return f"/{resource}/"
    return f"/{resource}/{namespace}/"


def encode_continue(prefix: str, last_key: str, list_rv: int) -> str:
    raw = json.dumps({"p": prefix, "k": last_key, "rv": list_rv}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    """-> (last key, list revision); 400 BadRequest if the token is not ours or for another prefix."""
    try:
        pad = "=" * (-len(token) % 4)
        d = json.loads(base64.urlsafe_b64decode(token + pad))
        key, rv, p = d["k"], int(d["rv"]), d["p"]
        if not isinstance(key, str) or not isinstance(p, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise StoreError("BadRequest", 400, "invalid continue token") from None
    if p != prefix:
        raise StoreError("BadRequest", 400, "continue token was issued for another list")
    return key, rv


def rv_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class Storage(abc.ABC):
    """What the API server needs from a store. SQLite now, etcd later.

    All objects handed in are not mutated; all objects returned are the caller's own.
    """

    @abc.abstractmethod
    async def create(self, key: str, obj: Obj) -> Obj:
        """Store a new object; sets resourceVersion, and uid / creationTimestamp if missing.
        409 AlreadyExists if the key exists."""

    @abc.abstractmethod
    async def get(self, key: str) -> Obj:
        """404 NotFound if absent."""

    @abc.abstractmethod
    async def update(self, key: str, obj: Obj, expect_rv: str | None = None) -> Obj:
        """Replace the object. With ``expect_rv``, 409 Conflict unless it is the stored
        resourceVersion; 404 NotFound if absent. uid and creationTimestamp are kept."""

    async def update_with(self, key: str, change: Callable[[Obj], Obj]) -> str:
        """Read, change and write ``key`` as one step (etcd3's GuaranteedUpdate):
        ``change(the stored object)`` returns the new object or raises (that error is the
        write's). It must only read its argument: a store may call it on its own thread, and
        more than once. Returns the resourceVersion written, not the object: a burst of
        writers (the scheduler's bindings) would otherwise each hold a decoded copy until it
        runs again. 404 NotFound if absent. This default reads, then writes with the
        resourceVersion it read, again while that conflicts."""
        while True:
            cur = await self.get(key)
            try:
                return str(rv_of(await self.update(key, change(cur), rv_of(cur))))
            except StoreError as e:
                if e.reason != "Conflict":
                    raise

    @abc.abstractmethod
    async def delete(self, key: str, expect_rv: str | None = None) -> Obj:
        """Remove and return the object, its resourceVersion set to the deletion revision."""

    @abc.abstractmethod
    async def list_keyed(self, prefix: str, limit: int | None = None,
                         continue_token: str | None = None
                         ) -> tuple[list[tuple[str, Obj]], int, str | None]:
        """Like :meth:`list`, with each item's key: ([(key, obj)], list_rv, continue)."""

    async def list(self, prefix: str, limit: int | None = None,
                   continue_token: str | None = None) -> tuple[list[Obj], int, str | None]:
        """-> (items in key order, list revision, continue token or None). See module doc."""
        items, rev, nxt = await self.list_keyed(prefix, limit, continue_token)
        return [o for _, o in items], rev, nxt

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The revision of the last write (0 for an empty store)."""

    @abc.abstractmethod
    def watch_keyed(self, prefix: str,
                    from_rev: int | None = None) -> AsyncIterator[KeyedEvent]:
        """Like :meth:`watch`, yielding (type, key, obj, rev)."""

    async def watch(self, prefix: str, from_rev: int | None = None) -> AsyncIterator[WatchEvent]:
        """Async iterator of (type, obj, rev) for keys under ``prefix``: every event with
        rev > from_rev, then live events, in revision order. ``from_rev=None`` starts at
        the current revision. 410 Expired if history after ``from_rev`` was compacted
        (raised by the first ``__anext__``)."""
        it = self.watch_keyed(prefix, from_rev)
        try:
            async for etype, _key, obj, rev in it:
                yield etype, obj, rev
        finally:
            await it.aclose()

    @abc.abstractmethod
    async def compact(self, keep_last_n: int) -> int:
        """Forget all but the last ``keep_last_n`` events; returns the compacted revision."""

    async def close(self) -> None:
        """Release the backend; open watches end."""


class _CacheWatcher:
    __slots__ = ("prefix", "queue", "node")

    def __init__(self, prefix: str, node: str | None = None):
        self.prefix = prefix
        self.node = node          # only events of pods on this spec.nodeName ("" unscheduled)
        self.queue: asyncio.Queue = asyncio.Queue()


# The watch index: watchers that select ``spec.nodeName=X`` (every agent; the scheduler's
# unscheduled pods, X = "") are indexed by X, so that an event is offered only to the
# watchers of the node(s) its object was or is on, not to every watcher.
INDEXED_PREFIX = "/pods/"


def node_of(obj: Obj | None) -> str:
    return ((obj or {}).get("spec") or {}).get("nodeName") or ""


_END = object()
_TICK = object()

# Marks of ``WatchCache.watch_keyed(marks=True)``, in the event type's place (the key is "",
# the object None, the revision the last one yielded):
IDLE = "IDLE"   # nothing more is queued for this watch: what the reader has gathered, it may send
TICK = "TICK"   # the reader's ``ticks`` timer fired (bookmarks, timeouts)


_enc = jsoncodec.dumps_str
_dec = jsoncodec.loads


class RawObject:
    """An event's object as the cache holds it: its compact JSON (``data``, str or bytes) and,
    for pods, its spec.nodeName (``node``). What a watch over HTTP streams without decoding
    and encoding it again (``watch_keyed(raw=True)``)."""

    __slots__ = ("data", "node")

    def __init__(self, data: str | bytes, node: str | None):
        self.data, self.node = data, node

    def encoded(self) -> bytes:
        d = self.data
        return d if isinstance(d, bytes) else d.encode()


def _resource_of(key_or_prefix: str) -> str | None:
    """"pods" of "/pods/default/web" or "/pods/"; None for a prefix wider than one resource."""
    end = key_or_prefix.find("/", 1)
    return key_or_prefix[1:end] if end > 1 else None


def _raw(ev: tuple) -> RawObject:
    nodes = ev[4]
    return RawObject(ev[2], nodes[0] if nodes else None)


class WatchCache(Storage):
    """An in-memory cache in front of a :class:`Storage` that serves get, list and watch.

    It lists ``prefix`` (default: everything) once, then follows one watch on the backend:
    the current objects are kept in a dict plus a sorted key list, and the last
    ``capacity`` events in a ring buffer. Objects are kept as their compact JSON text (what
    the backend stored: ~1.6 KB for a running pod whose decoded dicts take ~10 KB), one
    string shared by the dict and the ring; every reader (get, list, each watcher) gets its
    own freshly decoded copy (json.loads: about half the CPU of a deepcopy). A watch from a
    revision still in the ring is replayed from memory, then streamed live; older -> 410
    Expired (relist).

    Writes go to the backend; each returns once the cache has applied that revision, so a
    caller reads its own writes. With ``consistent_reads`` (default) get and list first
    wait until the cache has caught up with the backend's current revision (one cheap
    round trip), so they never serve data older than an already-acknowledged write.
    List pagination has the backend's semantics (see the module doc).

    Keys under an ``uncached`` prefix (the control plane passes ``/events/``, as Kubernetes'
    API server keeps no watch cache for events: 10 000 pods leave 40 000 of them) are not
    held: get, list and watch of them go to the backend. (A read whose prefix is wider than
    an uncached one, such as "/", does not see them.)

    Use: ``cache = WatchCache(store); await cache.start(); ...; await cache.close()``.
    """

    def __init__(self, storage: Storage, capacity: int = 1000, prefix: str = "/",
                 consistent_reads: bool = True, uncached: tuple[str, ...] = ()):
        self.storage = storage
        self.prefix = prefix
        self.uncached = tuple(uncached)
        self.capacity = capacity
        self.consistent_reads = consistent_reads
        self._objs: dict[str, str | bytes] = {}   # key -> the object's JSON
        self._keys: list[str] = []
        # the last ``capacity`` events of each resource (as Kubernetes keeps a watch cache
        # per resource): 100 lease renewals a second do not push the pods' history out
        self._rings: dict[str, collections.deque] = {}
        self._oldest_of: dict[str, int] = {}   # resource -> every event after it is in its ring
        self._rev = 0
        self._oldest = 0  # every event with rev > _oldest was seen (the revision of the start)
        self._watchers: set[_CacheWatcher] = set()
        self._by_node: dict[str, set[_CacheWatcher]] = {}   # indexed watchers
        self._node_keys: dict[str, set[str]] = {}           # nodeName -> pod keys
        self._node_of: dict[str, str] = {}                  # pod key -> nodeName
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._error: BaseException | None = None
        self._committed = getattr(storage, "committed_revision", None)

    async def start(self) -> None:
        items, rev, _ = await self.storage.list_keyed(self.prefix)
        if self.uncached:
            items = [(k, o) for k, o in items if not self._direct(k)]
        self._objs = {k: _enc(o) for k, o in items}
        self._keys = sorted(self._objs)
        self._node_keys, self._node_of = {}, {}
        for k, o in items:
            if k.startswith(INDEXED_PREFIX):
                n = self._node_of[k] = node_of(o)
                self._node_keys.setdefault(n, set()).add(k)
        self._rev = self._oldest = rev
        watch_raw = getattr(self.storage, "watch_raw", None)
        if watch_raw is not None:   # the backend hands out its JSON: no decode + re-encode
            stream = watch_raw(self.prefix, rev)
        else:
            stream = self._encoded(self.storage.watch_keyed(self.prefix, rev))
        self._task = asyncio.create_task(self._pump(stream), name="watch-cache")

    @staticmethod
    async def _encoded(stream: AsyncIterator[KeyedEvent]) -> AsyncIterator[tuple[str, str, str, int]]:
        try:
            async for etype, key, obj, rev in stream:
                yield etype, key, _enc(obj), rev
        finally:
            await stream.aclose()

    async def _pump(self, stream: AsyncIterator[KeyedEvent]) -> None:
        try:
            async for ev in stream:
                self._apply(ev)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the backend's watch broke: readers must not hang
            log.error("watch cache stopped: %r", e)
            self._error = e
        finally:
            for w in self._watchers:
                w.queue.put_nowait(_END)
            for ws in self._by_node.values():
                for w in ws:
                    w.queue.put_nowait(_END)
            self._watchers.clear()
            self._by_node.clear()
            self._wake()

    def _wake(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    def _apply(self, ev: tuple[str, str, str | bytes, int]) -> None:
        """``ev`` = (type, key, the object's JSON, rev)."""
        etype, key, raw, rev = ev
        if self._direct(key):
            self._rev = rev     # served by the backend; the revision still counts
            self._wake()
            return
        indexed = key.startswith(INDEXED_PREFIX)
        exists = key in self._objs
        if etype == DELETED:
            if self._objs.pop(key, None) is not None:
                i = bisect.bisect_left(self._keys, key)
                del self._keys[i]
        else:
            if not exists:
                bisect.insort(self._keys, key)
            self._objs[key] = raw
        nodes: tuple[str, ...] = ()
        if indexed:
            # decode only when the text can hold a spec.nodeName (an unscheduled pod's can't)
            mark = '"nodeName"' if isinstance(raw, str) else b'"nodeName"'
            new_node = node_of(_dec(raw)) if mark in raw else ""
            old_node = self._node_of.get(key)
            if etype == DELETED:
                self._node_of.pop(key, None)
            else:
                self._node_of[key] = new_node
            nodes = (new_node,) if old_node is None or old_node == new_node else (new_node, old_node)
            if old_node is not None and (old_node != new_node or etype == DELETED):
                ks = self._node_keys.get(old_node)
                if ks is not None:
                    ks.discard(key)
                    if not ks:
                        del self._node_keys[old_node]
            if etype != DELETED:
                self._node_keys.setdefault(new_node, set()).add(key)
        res = _resource_of(key)
        ring = self._rings.get(res)
        if ring is None:
            ring = self._rings[res] = collections.deque(maxlen=max(int(self.capacity), 1))
        elif len(ring) == ring.maxlen:
            self._oldest_of[res] = ring[0][3]
        item = (etype, key, raw, rev, nodes)
        ring.append(item)
        self._rev = rev
        for w in self._watchers:
            if key.startswith(w.prefix):
                w.queue.put_nowait(item)
        for n in nodes:
            for w in self._by_node.get(n, ()):
                if key.startswith(w.prefix):
                    w.queue.put_nowait(item)
        self._wake()

    async def wait_for(self, rev: int) -> None:
        """Return once the cache has applied revision ``rev``."""
        while self._rev < rev:
            if self._error is not None or self._task is None or self._task.done():
                raise StoreError("InternalError", 500, f"watch cache is not running: {self._error!r}")
            await self._changed.wait()

    async def _fresh(self) -> None:
        """Wait until every write the backend acknowledged is in the cache. A backend that
        knows its last committed revision in memory (``committed_revision()``, SqliteStore)
        answers without a query, and a cache already there does not wait at all."""
        if self.consistent_reads:
            if self._committed is not None:
                rev = self._committed()
            else:
                rev = await self.storage.current_revision()
            if rev > self._rev:
                await self.wait_for(rev)

    # writes: through to the backend, then wait until the cache has seen them
    async def create(self, key: str, obj: Obj) -> Obj:
        out = await self.storage.create(key, obj)
        await self.wait_for(int(rv_of(out)))
        return out

    async def update(self, key: str, obj: Obj, expect_rv: str | None = None) -> Obj:
        out = await self.storage.update(key, obj, expect_rv)
        await self.wait_for(int(rv_of(out)))
        return out

    async def update_with(self, key: str, change: Callable[[Obj], Obj]) -> str:
        rv = await self.storage.update_with(key, change)
        await self.wait_for(int(rv))
        return rv

    async def delete(self, key: str, expect_rv: str | None = None) -> Obj:
        out = await self.storage.delete(key, expect_rv)
        await self.wait_for(int(rv_of(out)))
        return out

    async def compact(self, keep_last_n: int) -> int:
        return await self.storage.compact(keep_last_n)

    # reads: from memory
    def _direct(self, key_or_prefix: str) -> bool:
        return bool(self.uncached) and key_or_prefix.startswith(self.uncached)

    async def get(self, key: str) -> Obj:
        if self._direct(key):
            return await self.storage.get(key)
        await self._fresh()
        raw = self._objs.get(key)
        if raw is None:
            raise not_found(key)
        return _dec(raw)

    async def current_revision(self) -> int:
        await self._fresh()
        return self._rev

    async def list_keyed(self, prefix: str, limit: int | None = None,
                         continue_token: str | None = None
                         ) -> tuple[list[tuple[str, Obj]], int, str | None]:
        if self._direct(prefix):
            return await self.storage.list_keyed(prefix, limit, continue_token)
        if continue_token:
            start, list_rv = decode_continue(continue_token, prefix)
            await self._fresh()
            i = bisect.bisect_right(self._keys, start)
        else:
            await self._fresh()
            list_rv = self._rev
            i = bisect.bisect_left(self._keys, prefix)
        out: list[tuple[str, Obj]] = []
        keys = self._keys
        while i < len(keys) and keys[i].startswith(prefix):
            if limit and len(out) == limit:
                return out, list_rv, encode_continue(prefix, out[-1][0], list_rv)
            out.append((keys[i], _dec(self._objs[keys[i]])))
            i += 1
        return out, list_rv, None

    def marks_for(self, prefix: str) -> bool:
        """Whether ``watch_keyed(prefix, ...)`` gives the marks asked for (a cached prefix)."""
        return not self._direct(prefix)

    async def watch_keyed(self, prefix: str, from_rev: int | None = None, *,
                          node: str | None = None, raw: bool = False,
                          progress: dict | None = None, marks: bool = False,
                          ticks: Callable[[], float | None] | None = None) -> AsyncIterator[KeyedEvent]:
        """``node``: only events of pods that are or were on that spec.nodeName ("" for
        unscheduled pods) -- for watches selecting ``spec.nodeName=node`` (see INDEXED_PREFIX).
        ``raw``: the objects come as :class:`RawObject` (not decoded; ``node`` is the pod's
        spec.nodeName after the event, None outside INDEXED_PREFIX).
        ``progress``: given a dict, its "rev" is set to a callable that returns the cache's
        revision when this watch has nothing queued, else None. Called while the caller waits
        on the next event (it is not done), that revision is one up to which the watch has
        yielded everything of its own: events go onto the queues in the same step that moves
        the revision on, and stay there until this generator takes them and yields. For
        bookmarks of a node-filtered watch, whose own events may be few and far between.
        ``marks`` and ``ticks`` (a cached prefix only: see :meth:`marks_for`): ``marks``, an
        IDLE mark whenever the queue runs dry, so that a reader may gather a burst of events
        and send it at once (one write, not one a line); ``ticks``, a TICK mark each time
        ``ticks()`` seconds have gone by (asked again after each; None: no more ticks). The
        timer's mark goes through the queue, so a reader needs no task of its own to wait for
        "an event or a timeout"."""
        conv = _dec if not raw else None
        if self._direct(prefix):     # from the backend, decoded
            it = self.storage.watch_keyed(prefix, from_rev)
            try:
                async for ev in it:
                    yield ev
            finally:
                await it.aclose()
            return
        if self._task is None or self._task.done():
            raise StoreError("InternalError", 500, "watch cache is not running")
        if from_rev is None:
            from_rev = self._rev
        res = _resource_of(prefix)
        if res is not None:
            oldest = self._oldest_of.get(res, self._oldest)
            rings = [self._rings.get(res, ())]
        else:       # wider than one resource: every ring, in revision order
            oldest = max([self._oldest, *self._oldest_of.values()])
            rings = list(self._rings.values())
        if from_rev < oldest:
            raise expired(from_rev, oldest)
        if node is not None and not prefix.startswith(INDEXED_PREFIX):
            node = None
        # snapshot the ring and subscribe with no await in between: no gap, no double
        backlog = [ev for ring in rings for ev in ring if ev[3] > from_rev and ev[1].startswith(prefix)
                   and (node is None or node in ev[4])]
        if len(rings) > 1:
            backlog.sort(key=lambda ev: ev[3])
        w = _CacheWatcher(prefix, node)
        if progress is not None:
            progress["rev"] = lambda: self._rev if w.queue.empty() else None
        if node is None:
            self._watchers.add(w)
        else:
            self._by_node.setdefault(node, set()).add(w)
        timer = None
        if ticks is not None:
            loop = asyncio.get_running_loop()

            def arm() -> None:
                nonlocal timer
                delay = ticks()
                timer = None if delay is None else loop.call_later(max(delay, 0.0), w.queue.put_nowait, _TICK)
            arm()
        try:
            last = from_rev
            for ev in backlog:
                last = ev[3]
                yield ev[0], ev[1], (conv(ev[2]) if conv else _raw(ev)), ev[3]
            idle_told = False
            queue = w.queue
            while True:
                if marks and not idle_told and queue.empty():
                    idle_told = True
                    yield IDLE, "", None, last
                    continue
                ev = await queue.get()
                if ev is _END:
                    return
                if ev is _TICK:
                    arm()
                    yield TICK, "", None, last
                    continue
                if ev[3] <= last:
                    continue
                last = ev[3]
                idle_told = False
                yield ev[0], ev[1], (conv(ev[2]) if conv else _raw(ev)), ev[3]
        finally:
            if timer is not None:
                timer.cancel()
            if node is None:
                self._watchers.discard(w)
            else:
                ws = self._by_node.get(node)
                if ws is not None:
                    ws.discard(w)
                    if not ws:
                        del self._by_node[node]

    raw_watch = True   # watch_keyed(raw=True) is served

    async def peek_node(self, prefix: str, node: str) -> tuple[list[tuple[str, Obj]], int]:
        """The pods under ``prefix`` with spec.nodeName == ``node`` ("" unscheduled), in key
        order, and the revision: from the index (the caller's own copies)."""
        await self._fresh()
        keys = sorted(k for k in self._node_keys.get(node, ()) if k.startswith(prefix))
        return [(k, _dec(self._objs[k])) for k in keys], self._rev

    async def node_pods_raw(self, prefix: str, node: str) -> list:
        """The stored JSON texts of the pods under ``prefix`` bound to ``node``, undecoded (a
        caller looking for one name decodes only the texts that hold it)."""
        await self._fresh()
        return [self._objs[k] for k in self._node_keys.get(node, ()) if k.startswith(prefix)]

    async def close(self) -> None:
        """Stop the cache (open watches end); the backend stays open."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
