"""WorkQueue (client-go semantics) and run_workers (controller-runtime's loop)."""
from __future__ import annotations

import asyncio

import pytest

from skiff.controller.workqueue import PriorityWorkQueue, ShutDown, WorkQueue, run_workers

pytestmark = pytest.mark.asyncio


async def test_dedup_and_fifo():
    q = WorkQueue()
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_priority_queue_highest_first_fifo_within_a_priority():
    prio = {"low1": -5, "mid1": 0, "high1": 100, "mid2": 0, "high2": 100, "low2": -5}
    q = PriorityWorkQueue("sched", priority_of=prio.get)
    for k in ("low1", "mid1", "high1", "mid2", "high2", "low2", "mid1"):
        q.add(k)
    assert len(q) == 6
    assert [await q.get() for _ in range(3)] == ["high1", "high2", "mid1"]
    q.add("high1")                       # being processed: queued again once done, still first
    q.done("high1")
    assert [await q.get() for _ in range(4)] == ["high1", "mid2", "low1", "low2"]
    assert len(q) == 0 and not q._levels


async def test_key_added_while_processing_is_rerun_after_done():
    q = WorkQueue()
    q.add("a")
    k = await q.get()
    q.add("a")                   # changed again while being processed
    assert len(q) == 0           # not handed to another worker meanwhile
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.done(k)
    assert await asyncio.wait_for(getter, 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_add_after_and_earliest_deadline_wins():
    q = WorkQueue()
    q.add_after("a", 0.2)
    q.add_after("a", 0.05)       # earlier deadline replaces the later one
    q.add_after("a", 0.5)        # later one ignored
    await asyncio.sleep(0.02)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 0.15) == "a"
    q.done("a")
    await asyncio.sleep(0.3)
    assert len(q) == 0           # fired once only


async def test_rate_limited_backoff_and_forget():
    q = WorkQueue()
    assert [q.when("k") for _ in range(1)] == [0.005]
    delays = []
    for _ in range(5):
        delays.append(q.when("k"))
        q.add_rate_limited("k")
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert q.num_requeues("k") == 5
    q.forget("k")
    assert q.num_requeues("k") == 0 and q.when("k") == 0.005
    for _ in range(40):
        q.add_rate_limited("k")
    assert q.when("k") == 60.0


async def test_shutdown_wakes_getters():
    q = WorkQueue()
    g = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(g, 1)
    q.add("x")
    with pytest.raises(ShutDown):
        await q.get()


async def test_run_workers_requeues_errors_with_backoff():
    q = WorkQueue("t")
    calls = []

    async def reconcile(key):
        calls.append((key, asyncio.get_running_loop().time()))
        if len(calls) < 3:
            raise RuntimeError("not yet")
        q.shutdown()

    q.add("a")
    await asyncio.wait_for(run_workers(q, reconcile, n=2), 5)
    assert [k for k, _ in calls] == ["a", "a", "a"]
    gaps = [b - a for (_, a), (_, b) in zip(calls, calls[1:])]
    assert gaps[0] >= 0.004 and gaps[1] >= 0.009          # 5 ms then 10 ms
    assert q.num_requeues("a") == 0                        # success forgets the failures


async def test_run_workers_success_forgets_and_requeue_after():
    q = WorkQueue()
    calls = []

    async def reconcile(key):
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            return 0.1           # requeue after 100 ms
        q.shutdown()
        return None

    q.add_rate_limited("a")
    q.add_rate_limited("a")      # two failures recorded
    assert q.num_requeues("a") == 2
    await asyncio.wait_for(run_workers(q, reconcile), 5)
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.09
    assert q.num_requeues("a") == 0


async def test_same_key_never_processed_concurrently():
    q = WorkQueue()
    active: set = set()
    overlap = []
    done = []

    async def reconcile(key):
        if key in active:
            overlap.append(key)
        active.add(key)
        await asyncio.sleep(0.01)
        active.discard(key)
        done.append(key)

    task = asyncio.create_task(run_workers(q, reconcile, n=4))
    for _ in range(10):
        for k in ("a", "b"):
            q.add(k)
        await asyncio.sleep(0.003)
    await asyncio.sleep(0.1)
    q.shutdown()
    await asyncio.wait_for(task, 2)
    assert overlap == []
    assert done.count("a") >= 2 and done.count("b") >= 2
    assert done[-2:] and {"a", "b"} <= set(done[-4:])   # last change of each key was processed


async def test_workers_run_in_parallel():
    q = WorkQueue()
    started = []
    release = asyncio.Event()

    async def reconcile(key):
        started.append(key)
        await release.wait()

    task = asyncio.create_task(run_workers(q, reconcile, n=3))
    for k in "abc":
        q.add(k)
    await asyncio.sleep(0.05)
    assert sorted(started) == ["a", "b", "c"]
    release.set()
    q.shutdown()
    await asyncio.wait_for(task, 2)


async def test_run_workers_cancel():
    q = WorkQueue()

    async def reconcile(key):
        return None

    task = asyncio.create_task(run_workers(q, reconcile, n=2))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _loop_turns_while_draining(time_slice):
    """How many turns another task got while one worker drained 300 keys whose reconciles keep
    the loop (1 ms of work each, no await)."""
    import time
    q = WorkQueue("busy")
    turns = 0
    seen: list[int] = []

    async def ticker():
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def reconcile(key):
        seen.append(turns)
        t = time.monotonic()
        while time.monotonic() - t < 0.001:
            pass
        return None

    for i in range(300):
        q.add(i)
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    workers = asyncio.create_task(run_workers(q, reconcile, 1, time_slice=time_slice))
    try:
        for _ in range(200):
            if len(seen) == 300:
                break
            await asyncio.sleep(0.01)
    finally:
        workers.cancel()
        tick.cancel()
        await asyncio.gather(workers, tick, return_exceptions=True)
    assert len(seen) == 300
    return seen[-1] - seen[0]


async def test_time_slice_lets_the_loop_run_the_others_while_keys_are_queued():
    """A worker whose reconciles never wait keeps the loop until the queue is empty; with a
    time slice it lets the other callbacks run every slice (the scheduler's worker)."""
    assert await _loop_turns_while_draining(None) == 0
    turns = await _loop_turns_while_draining(0.01)
    assert 10 <= turns <= 60        # ~300 ms of work in 10 ms slices
