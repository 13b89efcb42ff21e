"""cgroup v2 driver: one directory in the unified hierarchy."""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: it imports enum (ms on the start path)

from skiff.errors import SkiffError

from .base import (
    PERIOD_US,
    USEFUL,
    Cgroup,
    CgroupDriver,
    Limits,
    check_available,
    check_names,
    make_dir,
    read_file,
    read_int,
    read_keyed,
    remove_made,
    shares_to_weight,
    write_file,
    write_setting,
)


class V2Cgroup(Cgroup):
    """A container's directory in the cgroup2 hierarchy."""

    version = 2

    def __init__(self, parent: str, name: str, mount: str):
        self.mount = mount
        self.path = f"{mount}/{parent}/{name}"
        super().__init__(parent, name, [mount])

    def to_dict(self) -> dict:
        return {"version": 2, "parent": self.parent, "name": self.name, "mount": self.mount}

    def oom_killed(self) -> bool:
        return (read_keyed(self.path + "/memory.events", "oom_kill") or 0) > 0

    def memory_peak(self) -> int | None:
        return read_int(self.path + "/memory.peak")

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL:
            try:  # cgroup.kill (Linux 5.14+) also catches processes forking meanwhile
                write_file(self.path + "/cgroup.kill", "1")
                return
            except OSError:
                pass
        super().kill_all(sig)


class V2Driver(CgroupDriver):
    """Driver for a cgroup2 mount that holds the memory/cpu/pids controllers."""

    version = 2

    def __init__(self, mount: str, available: frozenset[str]):
        """available: the mount root's cgroup.controllers."""
        self.mount = mount
        self.available = frozenset(available)
        self._enable = [c for c in USEFUL if c in self.available]

    def controllers(self) -> frozenset[str]:
        return frozenset(self._enable)

    def create(self, parent: str, name: str, limits: Limits) -> V2Cgroup:
        check_names(parent, name)
        check_available(limits, self.available)
        cg = V2Cgroup(parent, name, self.mount)
        made: list[str] = []
        try:
            self._prepare(parent, made)
            try:
                os.mkdir(cg.path, 0o755)
                made.append(cg.path)
            except FileExistsError:
                pass
            except FileNotFoundError:
                # a concurrent destroy removed the parent meanwhile: prepare it again
                self._prepare(parent, made)
                make_dir(cg.path, made)
            except OSError as e:
                raise SkiffError(f"cannot create cgroup {cg.path}: {e.strerror}") from None
            _apply(cg, limits)
        except BaseException:
            remove_made(made)
            raise
        return cg

    def _prepare(self, parent: str, made: list[str]) -> None:
        """Make the parent dirs and enable our controllers from the mount root down."""
        path = self.mount
        self._enable_in(path)
        for part in parent.split("/"):
            path = f"{path}/{part}"
            make_dir(path, made)
            self._enable_in(path)

    def _enable_in(self, path: str) -> None:
        if not self._enable:
            return
        control = path + "/cgroup.subtree_control"
        try:
            enabled = read_file(control).split()
        except OSError as e:
            raise SkiffError(f"cannot read {control}: {e.strerror}") from None
        missing = [c for c in self._enable if c not in enabled]
        if missing:
            write_setting(control, " ".join("+" + c for c in missing))

    def __repr__(self) -> str:
        return f"<V2Driver {self.mount} {sorted(self.available)}>"


def _apply(cg: V2Cgroup, limits: Limits) -> None:
    """Write the limits that are set into the v2 interface files."""
    path = cg.path
    if limits.memory is not None and limits.memory > 0:
        write_setting(f"{path}/memory.max", str(limits.memory))
        write_setting(f"{path}/memory.swap.max", "0", optional=True)
    if limits.cpus is not None and limits.cpus > 0:
        write_setting(f"{path}/cpu.max", f"{round(limits.cpus * PERIOD_US)} {PERIOD_US}")
    if limits.cpu_shares is not None and limits.cpu_shares > 0:
        write_setting(f"{path}/cpu.weight", str(shares_to_weight(limits.cpu_shares)))
    if limits.pids is not None:
        value = str(limits.pids) if limits.pids > 0 else "max"
        write_setting(f"{path}/pids.max", value)
