"""The default seccomp profile of docker and podman, as a classic BPF filter (no libseccomp).

docker's profile is an allow list of ~350 system calls; what it leaves out is the part of the
kernel a container has no business reaching. This filter says the same as a deny list: those
calls fail with EPERM, the rest are allowed.

- **Always denied:** the keyring (``add_key``, ``keyctl``, ``request_key``), ``userfaultfd``,
  io_uring, ``kexec``, obsolete calls (``uselib``, ``ustat``, ``_sysctl``, ``nfsservctl``, ...).
- **Denied unless the container has the capability** (``--cap-add``), as in docker's profile:
  mount and namespace calls (``mount``, ``unshare``, ``setns``, ``pivot_root``, the new mount
  API, ``bpf``, ``perf_event_open``: CAP_SYS_ADMIN), modules (CAP_SYS_MODULE), the clock
  (CAP_SYS_TIME), ``reboot`` (CAP_SYS_BOOT), ``iopl``/``ioperm`` (CAP_SYS_RAWIO), NUMA policy
  (CAP_SYS_NICE), ``kcmp``/``pidfd_getfd`` (CAP_SYS_PTRACE), ``open_by_handle_at``
  (CAP_DAC_READ_SEARCH), ``acct``, ``syslog``, ``vhangup``.
- **By argument:** ``clone`` with a namespace flag (a user namespace needs no capability, so this
  is what stops one) and ``clone3`` (ENOSYS: its flags sit in memory BPF cannot read, and the C
  library then falls back to ``clone``), both unless CAP_SYS_ADMIN; ``personality`` only for the
  values docker allows (Linux, Linux32, UNAME26, the query).
- **Architectures:** x86_64 and i386 (32-bit programs), each with its own numbers; x32 and any
  other architecture get ENOSYS.

``ptrace`` and ``process_vm_readv/writev`` are allowed, as docker allows them on kernels since
4.8. The filter is built on x86_64 hosts only (``build`` returns None elsewhere: no filter).
"""
from __future__ import annotations

import os
import struct

__all__ = ["build", "install", "DEFAULT", "UNCONFINED"]

DEFAULT, UNCONFINED = "default", "unconfined"

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_BIT = 0x40000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
# classic BPF opcodes
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16      # struct seccomp_data (arg0's low word: little endian)

CAP_DAC_READ_SEARCH, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_SYS_PACCT = 2, 16, 17, 19, 20
CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE, CAP_SYS_TIME, CAP_SYS_TTY_CONFIG = 21, 22, 23, 25, 26
CAP_SYSLOG, CAP_PERFMON, CAP_BPF = 34, 38, 39
NAMESPACE_FLAGS = 0x7E020000   # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# name: (x86_64 number, i386 number), None where the call does not exist
NUMBERS = {
    "acct": (163, 51), "add_key": (248, 286), "bpf": (321, 357), "clock_adjtime": (305, 343),
    "clock_settime": (227, 264), "clone": (56, 120), "clone3": (435, 435), "create_module": (174, 127),
    "delete_module": (176, 129), "fanotify_init": (300, 338), "finit_module": (313, 350),
    "fsconfig": (431, 431), "fsmount": (432, 432), "fsopen": (430, 430), "fspick": (433, 433),
    "get_kernel_syms": (177, 130), "get_mempolicy": (239, 275), "init_module": (175, 128),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "io_uring_setup": (425, 425),
    "ioperm": (173, 101), "iopl": (172, 110), "kcmp": (312, 349), "kexec_file_load": (320, None),
    "kexec_load": (246, 283), "keyctl": (250, 288), "lookup_dcookie": (212, 253), "mbind": (237, 274),
    "mount": (165, 21), "mount_setattr": (442, 442), "move_mount": (429, 429), "move_pages": (279, 317),
    "name_to_handle_at": (303, 341), "nfsservctl": (180, 169), "open_by_handle_at": (304, 342),
    "open_tree": (428, 428), "perf_event_open": (298, 336), "personality": (135, 136),
    "pidfd_getfd": (438, 438), "pivot_root": (155, 217), "process_madvise": (440, 440),
    "query_module": (178, 167), "quotactl": (179, 131), "quotactl_fd": (443, 443), "reboot": (169, 88),
    "request_key": (249, 287), "set_mempolicy": (238, 276), "set_mempolicy_home_node": (450, 450),
    "setdomainname": (171, 121), "sethostname": (170, 74), "setns": (308, 346),
    "settimeofday": (164, 79), "stime": (None, 25), "swapoff": (168, 115), "swapon": (167, 87),
    "syslog": (103, 103), "sysfs": (139, 135), "_sysctl": (156, 149), "umount": (None, 22),
    "umount2": (166, 52), "unshare": (272, 310), "uselib": (134, 86), "userfaultfd": (323, 374),
    "ustat": (136, 62), "vhangup": (153, 111), "vm86": (None, 166), "vm86old": (None, 113),
}

ALWAYS = ("add_key", "keyctl", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "create_module", "get_kernel_syms", "query_module", "nfsservctl", "uselib",
          "ustat", "sysfs", "_sysctl", "vm86", "vm86old")
# a capability -> the calls it unlocks (docker's "includes": {"caps": [...]})
BY_CAPABILITY = {
    CAP_SYS_ADMIN: ("bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
                    "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
                    "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
                    "unshare", "name_to_handle_at", "pivot_root"),
    CAP_SYS_BOOT: ("reboot", "kexec_load", "kexec_file_load"),
    CAP_SYS_MODULE: ("init_module", "finit_module", "delete_module"),
    CAP_SYS_PACCT: ("acct",),
    CAP_SYS_PTRACE: ("kcmp", "pidfd_getfd", "process_madvise"),
    CAP_SYS_RAWIO: ("iopl", "ioperm"),
    CAP_SYS_TIME: ("settimeofday", "stime", "clock_settime", "clock_adjtime"),
    CAP_SYS_TTY_CONFIG: ("vhangup",),
    CAP_SYS_NICE: ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages"),
    CAP_SYSLOG: ("syslog",),
    CAP_BPF: ("bpf",),
    CAP_PERFMON: ("perf_event_open",),
    CAP_DAC_READ_SEARCH: ("open_by_handle_at",),
}


def denied(caps_mask: int) -> list[str]:
    """The calls denied to a container whose capabilities are ``caps_mask``."""
    allowed = {name for cap, names in BY_CAPABILITY.items() if caps_mask >> cap & 1 for name in names}
    out = set(ALWAYS)
    for names in BY_CAPABILITY.values():
        out.update(n for n in names if n not in allowed)
    return sorted(out)


def _ins(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _arch_block(which: int, caps_mask: int) -> list[bytes]:
    """The checks of one architecture's numbers (the accumulator holds the call's number)."""
    prog: list[bytes] = []
    nr = lambda name: NUMBERS[name][which]  # noqa: E731
    if not caps_mask >> CAP_SYS_ADMIN & 1:
        prog += [_ins(JEQ, nr("clone"), 0, 4), _ins(LD_W_ABS, OFF_ARG0),
                 _ins(JSET, NAMESPACE_FLAGS, 0, 1), _ins(RET, RET_ERRNO | EPERM), _ins(RET, RET_ALLOW),
                 _ins(JEQ, nr("clone3"), 0, 1), _ins(RET, RET_ERRNO | ENOSYS)]
    n = len(PERSONALITIES)
    prog.append(_ins(JEQ, nr("personality"), 0, n + 3))
    prog.append(_ins(LD_W_ABS, OFF_ARG0))
    prog += [_ins(JEQ, value, n - i, 0) for i, value in enumerate(PERSONALITIES)]
    prog += [_ins(RET, RET_ERRNO | EPERM), _ins(RET, RET_ALLOW)]
    for name in denied(caps_mask):
        if NUMBERS[name][which] is not None:
            prog += [_ins(JEQ, NUMBERS[name][which], 0, 1), _ins(RET, RET_ERRNO | EPERM)]
    prog.append(_ins(RET, RET_ALLOW))
    return prog


def build(caps_mask: int, machine: str | None = None) -> bytes | None:
    """The filter for a container with the capabilities ``caps_mask``: the sock_filter array,
    or None on a host that is not x86_64."""
    if (machine or os.uname().machine) != "x86_64":
        return None
    x64 = [_ins(LD_W_ABS, OFF_NR), _ins(JGE, X32_BIT, 0, 1), _ins(RET, RET_ERRNO | ENOSYS)] + _arch_block(0, caps_mask)
    i386 = [_ins(LD_W_ABS, OFF_NR)] + _arch_block(1, caps_mask)
    if len(x64) + 1 > 255:
        raise ValueError("seccomp filter: the x86_64 block is past a jump's reach")
    prog = [_ins(LD_W_ABS, OFF_ARCH),
            _ins(JEQ, AUDIT_ARCH_X86_64, 2, 0),             # to x64's first instruction
            _ins(JEQ, AUDIT_ARCH_I386, 1 + len(x64), 0),    # over the ENOSYS and x64, to i386's
            _ins(RET, RET_ERRNO | ENOSYS)] + x64 + i386
    if len(prog) > 4096:
        raise ValueError("seccomp filter too long")
    return b"".join(prog)


def install(k, prog: bytes) -> None:
    """Load ``prog`` on this thread (no_new_privs or CAP_SYS_ADMIN needed); ctypes must already
    be imported (after pivot_root the host's library is gone)."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    ret = k.libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                       ctypes.c_ulong(0), ctypes.c_ulong(0))
    k._check(ret, "prctl(PR_SET_SECCOMP)")
