"""cgroup v1 driver: one directory per hierarchy (memory, cpu, pids, freezer)."""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum (ms on the start path)

from .base import (
    PERIOD_US,
    USEFUL,
    Cgroup,
    CgroupDriver,
    Limits,
    check_available,
    check_names,
    make_dir,
    read_int,
    read_keyed,
    remove_made,
    signal_all,
    write_file,
    write_setting,
)

# Hierarchies a container joins. cpuset is left out on purpose: a new cpuset
# child needs cpuset.cpus/mems copied from its parent before it can hold tasks.
# cpuacct is joined for its usage counter (cpuacct.usage: the agent's resource metrics);
# it costs nothing extra where it is co-mounted with cpu (one directory for both).
HIERARCHIES = ("memory", "cpu", "cpuacct", "pids", "freezer")


class V1Cgroup(Cgroup):
    """A container's directories in the v1 hierarchies."""

    version = 1

    def __init__(self, parent: str, name: str, mounts: dict[str, str]):
        self.mounts = mounts  # controller -> mount point
        # co-mounted controllers ("cpu,cpuacct", or memory+pids) share one directory
        super().__init__(parent, name, list(dict.fromkeys(mounts.values())))

    def path(self, controller: str) -> str | None:
        """This cgroup's directory in the hierarchy holding controller."""
        mount = self.mounts.get(controller)
        return None if mount is None else f"{mount}/{self.parent}/{self.name}"

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "parent": self.parent,
            "name": self.name,
            "mounts": dict(self.mounts),
        }

    def self_join_files(self) -> list[str]:
        return [d + "/tasks" for d in self.dirs()]

    def _procs_dir(self) -> str:
        return self.path("pids") or self.path("memory") or self.dirs()[0]

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        pids = self._all_pids()
        signal_all(pids, sig)
        freezer = self.path("freezer")
        if pids and sig == signal.SIGKILL and freezer is not None:
            # frozen tasks die only once thawed (a paused container)
            try:
                write_file(freezer + "/freezer.state", "THAWED")
            except OSError:
                pass

    def oom_killed(self) -> bool:
        mem = self.path("memory")
        if mem is None:
            return False
        return (read_keyed(mem + "/memory.oom_control", "oom_kill") or 0) > 0

    def memory_peak(self) -> int | None:
        mem = self.path("memory")
        return None if mem is None else read_int(mem + "/memory.max_usage_in_bytes")


class V1Driver(CgroupDriver):
    """Driver for hosts whose memory/cpu/pids controllers live in v1 hierarchies."""

    version = 1

    def __init__(self, mounts: dict[str, str]):
        """mounts: controller -> mount point, as found in mountinfo."""
        self.mounts = {c: mounts[c] for c in HIERARCHIES if c in mounts}
        if self.mounts.get("cpuacct") is not None and self.mounts.get("cpuacct") == self.mounts.get("cpu"):
            del self.mounts["cpuacct"]  # co-mounted: the cpu directory is the cpuacct one

    def controllers(self) -> frozenset[str]:
        return frozenset(c for c in USEFUL if c in self.mounts)

    def create(self, parent: str, name: str, limits: Limits) -> V1Cgroup:
        check_names(parent, name)
        check_available(limits, self.controllers())
        cg = V1Cgroup(parent, name, dict(self.mounts))
        made: list[str] = []
        try:
            for path in cg.dirs():
                make_dir(path, made)
            _apply(cg, limits)
        except BaseException:
            remove_made(made)
            raise
        return cg

    def __repr__(self) -> str:
        return f"<V1Driver {self.mounts}>"


def _apply(cg: V1Cgroup, limits: Limits) -> None:
    """Write the limits that are set into the v1 interface files."""
    if limits.memory is not None and limits.memory > 0:
        mem = cg.path("memory")
        value = str(limits.memory)
        write_setting(f"{mem}/memory.limit_in_bytes", value)
        # memory+swap equal to memory: no swap, as with docker --memory-swap=<memory>
        write_setting(f"{mem}/memory.memsw.limit_in_bytes", value, optional=True)
    if limits.cpus is not None and limits.cpus > 0:
        cpu = cg.path("cpu")
        write_setting(f"{cpu}/cpu.cfs_period_us", str(PERIOD_US))
        write_setting(f"{cpu}/cpu.cfs_quota_us", str(round(limits.cpus * PERIOD_US)))
    if limits.cpu_shares is not None and limits.cpu_shares > 0:
        write_setting(f"{cg.path('cpu')}/cpu.shares", str(limits.cpu_shares))
    if limits.pids is not None:
        value = str(limits.pids) if limits.pids > 0 else "max"
        write_setting(f"{cg.path('pids')}/pids.max", value)
