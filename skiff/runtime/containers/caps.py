"""Capabilities and no_new_privs: docker's default set, or what --cap-add/--cap-drop make of it.

Bounding set: everything outside the kept set is dropped. Permitted and
effective: the kept set (a non-root user loses them at execve, as in docker).
Inheritable: empty (as moby does since CVE-2022-24769).
--privileged: every capability in the bounding, permitted and effective sets (inheritable and
ambient stay empty, as with docker and containerd), and no no_new_privs.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from ..kernel import PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, Kernel

CAP_NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def mask(names) -> int:
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return m


DEFAULT_MASK = mask(DEFAULT_CAPS)  # 0xa80425fb, as `CapBnd` shows in a docker container


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAP_NUMBERS.values())


def normalize(names: list[str], what: str) -> list[str]:
    """--cap-add/--cap-drop values as docker stores them: upper case with the CAP_ prefix, or
    ALL. A name this kernel does not know is an InvalidArgument (``what``: CapAdd, CapDrop)."""
    known = last_cap()
    out = []
    for name in names:
        n = name.strip().upper()
        if n != "ALL":
            n = n if n.startswith("CAP_") else "CAP_" + n
            if CAP_NUMBERS.get(n[4:], known + 1) > known:
                raise InvalidArgument(f'invalid {what}: unknown capability: "{n}"')
        out.append(n)
    return out


def keep_mask(add: list[str], drop: list[str]) -> int:
    """The capabilities a container keeps, from ``normalize``d names, by docker's rules: add ALL
    is every capability less the named drops; drop ALL is the named adds alone; otherwise the
    default set less the drops, plus the adds."""
    if not add and not drop:
        return DEFAULT_MASK
    if "ALL" in add:
        return ((1 << (last_cap() + 1)) - 1) & ~_named(drop)
    kept = 0 if "ALL" in drop else DEFAULT_MASK & ~_named(drop)
    return kept | _named(add)


def _named(names: list[str]) -> int:
    return mask(n[4:] for n in names if n != "ALL")


def drop_bounding(k: Kernel, keep: int = DEFAULT_MASK) -> None:
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            k.prctl(PR_CAPBSET_DROP, cap)


def all_mask() -> int:
    """A --privileged container's set: every capability this kernel knows that the caller's
    own bounding set still holds (as podman, so that it works inside a restricted host)."""
    full = (1 << (last_cap() + 1)) - 1
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return full & int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return full


def apply(k: Kernel, keep: int = DEFAULT_MASK, no_new_privs: bool = True) -> None:
    """Set permitted/effective to ``keep``, inheritable empty, then no_new_privs (not for a
    --privileged container, as docker, which sets it only when asked)."""
    k.capset(keep, keep, 0)
    if no_new_privs:
        k.prctl(PR_SET_NO_NEW_PRIVS, 1)
