"""What the agent's kernel-state synchronizers share (the service proxy, node routes, network
policies): each runs one task that rewrites its state from its informers when woken, and is
stopped by cancelling that task and its informers, then (with ``cleanup``) removing its state."""
from __future__ import annotations

import asyncio


async def next_wake(wake: asyncio.Event, min_interval: float, resync: float) -> None:
    """Between two syncs: at least ``min_interval`` (a burst of changes makes one sync), then
    until something changes (``wake``) or ``resync`` seconds pass."""
    await asyncio.sleep(min_interval)
    try:
        await asyncio.wait_for(wake.wait(), timeout=resync)
    except asyncio.TimeoutError:
        pass
    wake.clear()


async def cancel(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait for it to end, whatever it ends with."""
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


async def stop_informers(*informers) -> None:
    for inf in informers:
        if inf is not None:
            await inf.stop()
