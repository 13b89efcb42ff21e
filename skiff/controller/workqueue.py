"""A work queue of keys with client-go's semantics, and the worker loop that drives a reconciler.

- A key is in the queue at most once ("dirty" set); adding a key that is waiting does nothing.
- A key being processed is never handed to a second worker: adding it meanwhile marks it dirty,
  and ``done(key)`` puts it back so it is processed once more afterwards.
- ``add_after(key, delay)`` adds later; a key waiting for several deadlines keeps the earliest.
- ``add_rate_limited(key)`` adds after a per-key exponential delay, 5 ms doubling to 60 s;
  ``forget(key)`` resets it (call after a successful reconcile).

``run_workers(queue, reconcile, n)`` is controller-runtime's loop: ``reconcile(key)`` returns
None (done), a positive number of seconds (requeue after, like ``Result{RequeueAfter}``), or 0
(requeue with the rate limiter, like ``Result{Requeue: true}``); an exception is logged and the key
requeued rate-limited.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Awaitable, Callable, Hashable

__all__ = ["WorkQueue", "run_workers", "ShutDown"]

log = logging.getLogger("skiff.workqueue")


class ShutDown(Exception):
    """Raised by ``WorkQueue.get`` once the queue is shut down and drained."""


class WorkQueue:
    def __init__(self, name: str = "", *, base_delay: float = 0.005, max_delay: float = 60.0):
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: collections.deque[Hashable] = collections.deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._failures: dict[Hashable, int] = {}
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # -- queue ---------------------------------------------------------------------------------
    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return          # re-queued by done()
        self._push(key)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    async def get(self) -> Hashable:
        """The next key; the caller must call ``done(key)`` when finished with it.
        Raises ShutDown once the queue is shut down (keys still queued are dropped)."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # pass our wake-up on to another waiter if we had been woken
                if fut.done() and not fut.cancelled() and self._queue:
                    self._wake_one()
                raise
        if self._shutting_down:
            raise ShutDown(self.name)
        key = self._pop()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._push(key)
            self._wake_one()

    def _push(self, key: Hashable) -> None:
        self._queue.append(key)

    def _pop(self) -> Hashable:
        return self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._dirty

    @property
    def processing(self) -> frozenset:
        return frozenset(self._processing)

    # -- delays --------------------------------------------------------------------------------
    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        cur = self._delayed.get(key)
        if cur is not None:
            if cur[0] <= at:
                return      # an earlier deadline is already set
            cur[1].cancel()
        handle = loop.call_at(at, self._fire, key)
        self._delayed[key] = (at, handle)

    def _fire(self, key: Hashable) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def when(self, key: Hashable) -> float:
        """The per-key rate-limiter delay for the next failure of ``key`` (no side effect)."""
        n = self._failures.get(key, 0)
        return min(self.base_delay * (2 ** min(n, 64)), self.max_delay)

    def add_rate_limited(self, key: Hashable) -> None:
        delay = self.when(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    # -- shutdown ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._shutting_down = True
        for _, h in self._delayed.values():
            h.cancel()
        self._delayed.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down


class PriorityWorkQueue(WorkQueue):
    """A WorkQueue that hands out the keys of the highest ``priority_of(key)`` first, first in
    first out within a priority (kube-scheduler's activeQ under PrioritySort). One FIFO per
    priority present: most clusters have one or two, so a get looks at very few."""

    def __init__(self, name: str = "", *, priority_of: Callable[[Hashable], int], **kw):
        super().__init__(name, **kw)
        self.priority_of = priority_of
        self._levels: dict[int, collections.deque] = {}

    def _push(self, key: Hashable) -> None:
        p = self.priority_of(key)
        q = self._levels.get(p)
        if q is None:
            q = self._levels[p] = collections.deque()
        q.append(key)
        self._queue.append(key)     # its length is the queue's; get() waits while it is empty

    def _pop(self) -> Hashable:
        p = max(self._levels)
        q = self._levels[p]
        key = q.popleft()
        if not q:
            del self._levels[p]
        self._queue.pop()           # only the count matters
        return key


Reconcile = Callable[[Any], Awaitable["float | None"]]


async def _worker(queue: WorkQueue, reconcile: Reconcile, name: str, time_slice: float | None = None) -> None:
    # with ``time_slice``: a worker whose reconciles do not wait (the scheduler's: its bindings
    # go on in the background) would keep the loop for as long as keys are queued; it lets the
    # loop run the others' callbacks once it has had it for ``time_slice`` seconds
    held_since = time.monotonic()
    while True:
        try:
            waits = not len(queue)      # then the loop is the others' meanwhile
            key = await queue.get()
        except ShutDown:
            return
        if waits:
            held_since = time.monotonic()
        try:
            t0 = time.monotonic()
            result = await reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a reconciler's error must not kill the worker
            delay = queue.when(key)
            log.error("reconcile failed, requeued", exc_info=log.isEnabledFor(logging.DEBUG),
                      extra={"fields": {"queue": name, "key": str(key), "error": f"{type(e).__name__}: {e}",
                                        "retry_in": round(delay, 3)}})
            queue.add_rate_limited(key)
        else:
            if result is None:
                queue.forget(key)
            elif result > 0:
                queue.forget(key)
                queue.add_after(key, float(result))
            else:
                queue.add_rate_limited(key)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("reconciled", extra={"fields": {"queue": name, "key": str(key),
                                                          "seconds": round(time.monotonic() - t0, 4)}})
        finally:
            queue.done(key)
        if time_slice is not None and time.monotonic() - held_since >= time_slice:
            await asyncio.sleep(0)
            held_since = time.monotonic()


async def run_workers(queue: WorkQueue, reconcile: Reconcile, n: int = 1, *,
                      time_slice: float | None = None) -> None:
    """Run ``n`` workers until the queue is shut down (or this task is cancelled, which cancels
    the workers). ``time_slice``: see ``_worker``."""
    tasks = [asyncio.create_task(_worker(queue, reconcile, queue.name, time_slice),
                                 name=f"worker-{queue.name}-{i}") for i in range(n)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class QueueController:
    """The life of a controller built on one WorkQueue (controller-runtime's manager, in
    small): subclasses set ``self.queue``, ``self.workers`` and define ``reconcile(key)``,
    ``start()`` (which ends with ``self.start_workers(name)``) and ``stop()`` (which starts
    with ``await self.stop_workers()``)."""

    queue: "WorkQueue"
    workers: int = 1
    _task: "asyncio.Task | None" = None

    def start_workers(self, name: str) -> None:
        self._task = asyncio.create_task(run_workers(self.queue, self.reconcile, self.workers), name=name)

    async def stop_workers(self) -> None:
        self.queue.shutdown()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def reconcile(self, key: str):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    async def start(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def stop(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def run(self) -> None:
        """Start, run until cancelled, then stop."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())
