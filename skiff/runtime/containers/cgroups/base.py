"""What both cgroup drivers share: limits, flag parsing, file helpers, the interface.

Kept to cheap imports: container start is a hot path.
"""

from __future__ import annotations

import errno
import os
import _signal as signal  # not `signal`: it imports enum (ms on the start path)
import time

from skiff.errors import SkiffError
from skiff.runtime.record import Record

PERIOD_US = 100000  # CFS period used for --cpus, as docker does
MIN_MEMORY = 6 * 1024 * 1024  # docker's smallest allowed --memory
USEFUL = ("memory", "cpu", "pids")  # controllers skiff sets limits with

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DIGITS = "0123456789"


class Limits(Record):
    """Resource limits for one container; None leaves the kernel default."""

    memory: int | None = None  # bytes
    cpus: float | None = None  # 0.5 -> quota 50000 per period 100000
    cpu_shares: int | None = None  # docker --cpu-shares; v2 maps it to cpu.weight
    pids: int | None = None  # pids.max; 0 or less means unlimited

    def needs(self) -> list[tuple[str, str]]:
        """(controller, what) pairs for the limits that are set."""
        out = []
        if self.memory is not None and self.memory > 0:
            out.append(("memory", "memory limit"))
        if self.cpus is not None and self.cpus > 0:
            out.append(("cpu", "cpu limit"))
        if self.cpu_shares is not None and self.cpu_shares > 0:
            out.append(("cpu", "cpu shares"))
        if self.pids is not None:
            out.append(("pids", "pids limit"))
        return out


def parse_memory(text: str) -> int:
    """Parse a docker-style size ("64m", "1g", "512k", "100b", "1048576") into bytes."""
    s = text.strip().lower()
    i = 0
    while i < len(s) and (s[i] in _DIGITS or s[i] == "."):
        i += 1
    number, unit = s[:i], s[i:].strip()
    if len(unit) > 1 and unit[0] in "kmgt":  # "mb", "mib", "mi" as docker accepts
        if unit[1:] in ("b", "i", "ib"):
            unit = unit[0]
    ok = (
        number
        and number.count(".") <= 1
        and number[0] != "."
        and number[-1] != "."
        and unit in _UNITS
    )
    if not ok:
        raise SkiffError(
            f'invalid memory limit "{text}": use a number with an optional unit b, k, m or g'
        )
    if "." in number:
        value = int(float(number) * _UNITS[unit])
    else:
        value = int(number) * _UNITS[unit]
    if 0 < value < MIN_MEMORY:
        raise SkiffError("minimum memory limit allowed is 6MB")
    return value


def parse_cpus(text: str) -> float:
    """Parse a --cpus value such as "0.5" or "2"."""
    try:
        value = float(text.strip())
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise SkiffError(f'invalid cpus value "{text}": use a positive number such as 0.5 or 2')
    if value < 0.01:
        raise SkiffError(f'invalid cpus value "{text}": the smallest allowed is 0.01')
    return value


def shares_to_weight(shares: int) -> int:
    """Map v1 cpu.shares (2..262144) onto v2 cpu.weight (1..10000), as runc does."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


# --- file helpers -----------------------------------------------------------


def write_file(path: str, value: str) -> None:
    """Write value to an existing (cgroupfs) file; OSError on failure."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_file(path: str) -> str:
    """Read a whole (small) file; OSError on failure."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def write_setting(path: str, value: str, optional: bool = False) -> None:
    """Write a cgroup setting; SkiffError naming the file on failure.

    With optional=True a missing file is skipped silently.
    """
    try:
        write_file(path, value)
    except FileNotFoundError:
        if optional:
            return
        raise SkiffError(f"cannot set {value} in {path}: the file does not exist") from None
    except OSError as e:
        raise SkiffError(f"cannot set {value} in {path}: {e.strerror}") from None


def read_keyed(path: str, key: str) -> int | None:
    """Value of the "key N" line in a flat-keyed file, None if file or key is missing."""
    try:
        text = read_file(path)
    except OSError:
        return None
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def read_int(path: str) -> int | None:
    """The integer in a one-value file, None if missing or not a number."""
    try:
        return int(read_file(path).strip())
    except (OSError, ValueError):
        return None


def make_dir(path: str, made: list[str]) -> None:
    """mkdir path and any missing parents, appending what was made to `made`."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise SkiffError(f"cannot create cgroup {path}: no such directory") from None
        make_dir(parent, made)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            return
        except OSError as e:
            raise SkiffError(f"cannot create cgroup {path}: {e.strerror}") from None
    except OSError as e:
        raise SkiffError(f"cannot create cgroup {path}: {e.strerror}") from None
    made.append(path)


def remove_made(made: list[str]) -> None:
    """Best-effort rmdir of what make_dir made, deepest first."""
    for path in reversed(made):
        try:
            os.rmdir(path)
        except OSError:
            pass


def check_names(parent: str, name: str) -> None:
    """Refuse cgroup names that would escape or confuse the hierarchy."""
    for part in parent.split("/") + [name]:
        if not part or part in (".", "..") or "\0" in part or "/" in name:
            raise SkiffError(f'invalid cgroup path "{parent}/{name}"')


def check_available(limits: Limits, available: frozenset[str] | set[str]) -> None:
    """SkiffError if a requested limit needs a controller this host lacks."""
    for controller, what in limits.needs():
        if controller not in available:
            raise SkiffError(
                f"{what} requested but the {controller} cgroup controller "
                "is not available on this host"
            )


def _read_procs(path: str) -> list[int]:
    """Pids in path/cgroup.procs, without duplicates ([] if it is gone)."""
    try:
        text = read_file(path + "/cgroup.procs")
    except OSError:
        return []
    return list(dict.fromkeys(int(x) for x in text.split()))


def signal_all(pids: list[int], sig: int) -> None:
    """os.kill each pid, skipping those already gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# --- the interface ----------------------------------------------------------


class Cgroup:
    """One container's cgroup: a directory in each hierarchy it uses."""

    version: int = 0

    def __init__(self, parent: str, name: str, roots: list[str]):
        self.parent = parent
        self.name = name
        self._roots = roots  # mount points, one per directory

    def dirs(self) -> list[str]:
        """The cgroup directories, one per hierarchy."""
        return [f"{root}/{self.parent}/{self.name}" for root in self._roots]

    def to_dict(self) -> dict:
        raise NotImplementedError

    def procs_files(self) -> list[str]:
        """The cgroup.procs files a process writes "0" (or its pid) to, to join."""
        return [d + "/cgroup.procs" for d in self.dirs()]

    def self_join_files(self) -> list[str]:
        """The files a single-threaded process writes "0" to, to move itself in.

        On v1 that is ``tasks``: moving only the calling thread lets the kernel skip the
        global cgroup_threadgroup_rwsem, whose write side waits for an RCU grace period
        (5-15 ms measured here, 0.1 ms through ``tasks``). v2 has no such file for domain
        cgroups: cgroup.procs it is.
        """
        return self.procs_files()

    def add_pid(self, pid: int) -> None:
        """Move a process into this cgroup."""
        for path in self.procs_files():
            write_setting(path, str(pid))

    def _procs_dir(self) -> str:
        return self.dirs()[0]

    def pids(self) -> list[int]:
        """Processes in the cgroup ([] if it is gone)."""
        return _read_procs(self._procs_dir())

    def _all_pids(self) -> list[int]:
        """Processes in any of the directories (they may differ if moved by others)."""
        dirs = self.dirs()
        if len(dirs) == 1:
            return _read_procs(dirs[0])
        out: dict[int, None] = {}
        for d in dirs:
            out.update(dict.fromkeys(_read_procs(d)))
        return list(out)

    def oom_killed(self) -> bool:
        raise NotImplementedError

    def memory_peak(self) -> int | None:
        raise NotImplementedError

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to every process inside."""
        signal_all(self._all_pids(), sig)

    def destroy(self, timeout: float = 2.0) -> None:
        """Kill what is inside, remove the directories and, if empty, the parent."""
        deadline = time.monotonic() + timeout
        while self._all_pids():
            self.kill_all(signal.SIGKILL)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        for path in self.dirs():
            while True:
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    # EBUSY while exiting tasks still hold the cgroup
                    if e.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                    raise SkiffError(f"cannot remove cgroup {path}: {e.strerror}") from None
                break
        self._remove_parents()

    def _remove_parents(self) -> None:
        parts = self.parent.split("/")
        for root in dict.fromkeys(self._roots):
            for i in range(len(parts), 0, -1):
                try:
                    os.rmdir(root + "/" + "/".join(parts[:i]))
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EBUSY, errno.ENOENT, errno.EEXIST):
                        break
                    raise SkiffError(
                        f"cannot remove cgroup {root}/{'/'.join(parts[:i])}: {e.strerror}"
                    ) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} v{self.version} {self.parent}/{self.name}>"


class CgroupDriver:
    """Creates and reloads cgroups for one host layout."""

    version: int = 0

    def controllers(self) -> frozenset[str]:
        """The useful controllers (memory, cpu, pids) this driver can limit."""
        raise NotImplementedError

    def create(self, parent: str, name: str, limits: Limits) -> Cgroup:
        raise NotImplementedError

    def load(self, data: dict) -> Cgroup:
        """Rebuild a Cgroup from its to_dict() form."""
        try:
            version = data["version"]
            if version == 1:
                from .v1 import V1Cgroup

                return V1Cgroup(data["parent"], data["name"], dict(data["mounts"]))
            if version == 2:
                from .v2 import V2Cgroup

                return V2Cgroup(data["parent"], data["name"], data["mount"])
        except (KeyError, TypeError):
            pass
        raise SkiffError(f"invalid cgroup record in container state: {data!r}")
