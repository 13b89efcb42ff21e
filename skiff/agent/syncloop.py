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


def drop_state(backend, cleanup: bool, what: str, log) -> None:
    """The last step of a stop: with ``cleanup`` the backend's table goes (a failure is said, the
    agent goes on stopping); the backend is closed either way."""
    if cleanup:
        try:
            if backend.remove():
                log.info("%s removed", what)
        except Exception as e:  # noqa: BLE001 - the agent is stopping: say it, go on
            log.warning("cannot remove the %s: %s", what, e)
    close = getattr(backend, "close", None)
    if close is not None:
        close()
