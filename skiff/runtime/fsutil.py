"""Small file-system helpers shared by the runtime stores.

Writes are atomic (temp file, fsync, rename) so that a crash leaves either the
old or the new content. ``FileLock`` coordinates processes with flock(2).
"""

from __future__ import annotations

import fcntl
import os

from . import fastjson as json



def atomic_write(path: str, data: bytes | str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory (created with
    ``mode``), fsynced, then renamed over it. On failure the temporary file is removed."""
    if isinstance(data, str):
        data = data.encode()
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            if mode & 0o077 == 0:  # a secret: never more open than asked, even if tmp existed
                os.fchmod(fd, mode)
            os.write(fd, data) if len(data) < (1 << 20) else _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_json(path: str, obj, mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(obj, sort_keys=True) + "\n", mode)


def read_json(path: str, default=None):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        if default is not None:
            return default
        raise


class FileLock:
    """An exclusive flock(2) on ``path`` (created if missing), usable as a context manager."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1

    def __enter__(self) -> "FileLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing drops the lock
        self.fd = -1


def remove_tree(path: str) -> None:
    """rm -rf without importing shutil (which pulls in fnmatch and re on the hot path)."""
    try:
        for top, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(top, name))
            for name in dirs:
                full = os.path.join(top, name)
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    os.rmdir(full)
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil
        shutil.rmtree(path, ignore_errors=True)


def mounts_under(path: str) -> list[str]:
    """The mount points at or below ``path`` (this mount namespace), deepest first."""
    top = os.path.realpath(path).rstrip("/") + "/"
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                # field 5 is the mount point, with space, tab, newline and backslash octal-escaped
                point = line.split(" ", 5)[4]
                point = point.encode().decode("unicode_escape") if "\\" in point else point
                if (point + "/").startswith(top):
                    out.append(point)
    except OSError:
        return []
    return sorted(set(out), key=len, reverse=True)


def unmount_under(path: str) -> None:
    """Detach every mount at or below ``path`` (before removing the tree)."""
    points = mounts_under(path)
    if not points:
        return
    from .kernel import MNT_DETACH, Kernel
    k = Kernel()
    for p in points:
        try:
            k.umount(p, MNT_DETACH)
        except OSError:
            pass
