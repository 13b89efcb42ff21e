"""`stop` and `kill`: signals to a running container's init, by its host pid."""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: it imports enum (ms on the start path)
import time

from ...errors import Conflict
from . import signals
from .state import State, wait_exit
from .store import Container

DEFAULT_STOP_TIMEOUT = 10


def _signal(st: State, sig: int) -> None:
    if st.pid and os.path.exists(f"/proc/{st.pid}"):
        from .state import proc_start_time
        if proc_start_time(st.pid) == st.pid_start:  # never signal a recycled pid
            try:
                os.kill(st.pid, sig)
            except ProcessLookupError:
                pass


def kill(c: Container, sig: str | int = "KILL") -> None:
    st = c.state()
    if not st.running:
        raise Conflict(f"cannot kill container: {c.name}: container {c.id} is not running")
    _signal(st, signals.parse(sig))


def wait_stopped(c: Container, timeout: float | None = None) -> State:
    """Wait until the monitor has recorded the exit (or died); returns the final state."""
    st = c.state()
    if st.running:
        wait_exit(st.monitor_pid, st.monitor_start, timeout)
    deadline = time.monotonic() + 5
    while True:
        st = c.state()
        if not st.running or time.monotonic() > deadline:
            return st
        time.sleep(0.005)


def stop(c: Container, timeout: int | None = None) -> State:
    """SIGTERM (or the image's STOPSIGNAL), then SIGKILL after the grace period."""
    st = c.state()
    if not st.running:
        return st
    if timeout is None:
        timeout = c.spec.stop_timeout if c.spec.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
    _signal(st, signals.parse(c.spec.stop_signal or "SIGTERM"))
    if not wait_exit(st.pid, st.pid_start, timeout):
        _signal(st, signal.SIGKILL)
    return wait_stopped(c, None)
