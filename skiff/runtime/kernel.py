"""The syscall seam: every namespace, mount and capability call the runtime makes.

Python 3.11 has no os.unshare/os.setns, so these go through ctypes. The rest of
the runtime calls the methods of a ``Kernel`` object, never libc directly, so
that unit tests can pass a recording double instead (see tests/unit).
ctypes is imported on first use: it costs ~4 ms and the CLI's fast paths
(ps, logs, inspect) never need it.
"""

from __future__ import annotations

import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# Syscalls glibc does not wrap: (x86_64, aarch64)
_SYSCALLS = {
    "pivot_root": {"x86_64": 155, "aarch64": 41},
    "capset": {"x86_64": 126, "aarch64": 91},
    "setns": {"x86_64": 308, "aarch64": 268},
}

NS_FILES = {  # /proc/<pid>/ns/<file> and its clone flag, in the order exec joins them
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS,
}


class Kernel:
    """Thin, typed wrappers over the syscalls; errors raise OSError with errno set."""

    _libc = None

    @property
    def libc(self):
        if Kernel._libc is None:
            import ctypes
            Kernel._libc = ctypes.CDLL(None, use_errno=True)
        return Kernel._libc

    def _check(self, ret: int, what: str, path: str | None = None) -> int:
        if ret < 0:
            import ctypes
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        return ret

    def _syscall(self, name: str, *args) -> int:
        nr = _SYSCALLS[name][os.uname().machine]
        return self.libc.syscall(nr, *args)

    def unshare(self, flags: int) -> None:
        self._check(self.libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._check(self.libc.setns(fd, nstype), "setns")

    def mount(self, source: str | None, target: str, fstype: str | None = None,
              flags: int = 0, data: str | None = None) -> None:
        enc = lambda s: s.encode() if s is not None else None  # noqa: E731
        import ctypes
        ret = self.libc.mount(enc(source), enc(target), enc(fstype),
                              ctypes.c_ulong(flags), enc(data))
        self._check(ret, f"mount {fstype or source} on {target}", target)

    def umount(self, target: str, flags: int = 0) -> None:
        self._check(self.libc.umount2(target.encode(), flags), f"umount {target}", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._check(self._syscall("pivot_root", new_root.encode(), put_old.encode()),
                    "pivot_root", new_root)

    def sethostname(self, name: str) -> None:
        b = name.encode()
        self._check(self.libc.sethostname(b, len(b)), "sethostname")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        import ctypes
        self._check(self.libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                                    ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl({option})")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """Set the three capability sets (64-bit masks) of this thread (_LINUX_CAPABILITY_VERSION_3)."""
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]

        hdr = Header(0x20080522, 0)
        data = (Data * 2)()
        for i in range(2):
            shift = 32 * i
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        self._check(self._syscall("capset", ctypes.byref(hdr), data), "capset")


kernel = Kernel()
