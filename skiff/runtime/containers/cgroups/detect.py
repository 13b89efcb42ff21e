"""Find the host's cgroup layout (v1, v2 or hybrid) from mountinfo and pick a driver."""

from __future__ import annotations


from skiff.errors import SkiffError

from .base import USEFUL, CgroupDriver, read_file
from .v1 import V1Driver
from .v2 import V2Driver

MOUNTINFO = "/proc/self/mountinfo"

# super options of a v1 cgroup mount that are not controllers
_V1_FLAGS = frozenset(
    {"rw", "ro", "none", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"}
)


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for a space and so on)."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> tuple[dict[str, str], list[str]]:
    """Return ({v1 controller: mount point}, [cgroup2 mount points]) from mountinfo text."""
    v1: dict[str, str] = {}
    v2: list[str] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or not tail:
            continue
        fstype = tail[0]
        if fstype == "cgroup2":
            v2.append(_unescape(fields[4]))
        elif fstype == "cgroup" and len(tail) >= 3:
            mountpoint = _unescape(fields[4])
            for opt in tail[2].split(","):
                if opt and "=" not in opt and opt not in _V1_FLAGS:
                    v1.setdefault(opt, mountpoint)  # the first mount of a hierarchy wins
    return v1, v2


def detect(mountinfo_path: str = MOUNTINFO, root_prefix: str = "") -> CgroupDriver:
    """Pick the cgroup driver for this host; root_prefix is prepended to mount points.

    The result for the real host (default arguments) is cached per process.
    """
    if mountinfo_path == MOUNTINFO and not root_prefix:
        return _detect_host()
    return _detect(mountinfo_path, root_prefix)


_host: list[CgroupDriver] = []  # a cache without functools (~3 ms to import on the start path)


def _detect_host() -> CgroupDriver:
    if not _host:
        _host.append(_detect(MOUNTINFO, ""))
    return _host[0]


def _detect(mountinfo_path: str, root_prefix: str) -> CgroupDriver:
    try:
        text = read_file(mountinfo_path)
    except OSError as e:
        raise SkiffError(f"cannot read {mountinfo_path}: {e.strerror}") from None
    v1, v2 = parse_mountinfo(text)
    prefix = root_prefix.rstrip("/")
    v1_useful = [c for c in USEFUL if c in v1]
    if not v1_useful:
        # a controller sits in one hierarchy at a time: with none of ours in v1,
        # look for a cgroup2 mount that offers them
        for mountpoint in v2:
            path = prefix + mountpoint
            try:
                available = frozenset(read_file(path + "/cgroup.controllers").split())
            except OSError:
                continue
            if any(c in available for c in USEFUL):
                return V2Driver(path, available)
    else:
        return V1Driver({c: prefix + m for c, m in v1.items()})
    raise SkiffError(
        f"no usable cgroup hierarchy found in {mountinfo_path}: need a cgroup v1 or cgroup2 "
        "mount with the memory, cpu or pids controller"
    )
