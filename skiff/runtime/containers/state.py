"""A container's runtime state: <root>/containers/<id>/state.json, written by its monitor."""

from __future__ import annotations

import os
import time

from .. import fastjson as json
from ..fsutil import atomic_write
from ..record import Record

CREATED, RUNNING, EXITED = "created", "running", "exited"


class State(Record):
    status: str = CREATED
    pid: int = 0
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    cgroup: dict | None = None
    ports: list[dict] = []          # published ports as bound (host_port chosen when it was 0)

    @classmethod
    def load(cls, path: str) -> "State":
        try:
            with open(path, "rb") as f:
                d = json.loads(f.read())
        except FileNotFoundError:
            return cls()
        return cls.from_dict(d)

    def save(self, path: str) -> None:
        atomic_write(path, json.dumps(self.to_dict(), sort_keys=True))

    @property
    def monitor_alive(self) -> bool:
        return bool(self.monitor_pid) and proc_start_time(self.monitor_pid) == self.monitor_start

    @property
    def running(self) -> bool:
        return self.status == RUNNING and self.monitor_alive


def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of ``pid``, or None: identifies a process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):  # a zombie is dead for our purposes
        return None
    return int(rest[19])


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of a time written by now_rfc3339 (or docker)."""
    if not text:
        return 0.0
    import calendar
    main, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def wait_exit(pid: int, start: int, timeout: float | None) -> bool:
    """Wait until process ``pid`` (started at ``start``) is gone; True if it is."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        if proc_start_time(pid) != start:
            return True
        import select
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(None if timeout is None else int(timeout * 1000)))
    finally:
        os.close(fd)
