"""Hide the kernel's cgroup-migration stall behind the caller's own start-up work.

Moving a process into a cgroup takes the global cgroup_threadgroup_rwsem for
writing; when no migration happened in the last few milliseconds, that waits for
an RCU grace period (6-19 ms on these hosts), and a container's start pays it.
Once one migration has paid it, others shortly after are fast. ``prewarm()``
forks a throwaway process that writes itself into its own cgroup (a no-op move,
same rwsem) at the very start of `skiff run`, so the grace period elapses while
the CLI parses, resolves the image and writes the container's files.
"""

from __future__ import annotations

import os


def own_procs_file(driver) -> str | None:
    """The cgroup.procs of this process's own cgroup in one hierarchy the driver knows."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    mounts = getattr(driver, "mounts", None)
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if mounts is not None:
            for c in ctrls.split(","):
                if c in mounts:
                    return f"{mounts[c]}{path.rstrip('/')}/cgroup.procs"
        elif ctrls == "" and getattr(driver, "mount", None):
            return f"{driver.mount}{path.rstrip('/')}/cgroup.procs"
    return None


class Prewarm:
    """A throwaway process that keeps cgroup migrations fast while a container starts.

    It writes itself into its own cgroup (a no-op move that takes the same rwsem)
    every millisecond, which keeps the kernel's rcu_sync from going idle, until
    ``stop()`` closes its pipe (or 300 ms pass, or the caller dies).
    """

    def __init__(self) -> None:
        self.pid = 0
        self.wfd = -1
        from .detect import detect
        try:
            path = own_procs_file(detect())
        except Exception:  # noqa: BLE001 - an optimisation must never fail a run
            return
        if path is None:
            return
        rfd, self.wfd = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(self.wfd)
                _keep_warm(path, rfd)
            finally:
                os._exit(0)
        os.close(rfd)

    def stop(self) -> None:
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0


def _keep_warm(path: str, rfd: int) -> None:
    import select
    import time
    fd = os.open(path, os.O_WRONLY)
    p = select.poll()
    p.register(rfd, select.POLLIN)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        os.write(fd, b"0")
        if p.poll(1):
            return
