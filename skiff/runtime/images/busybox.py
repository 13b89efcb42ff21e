"""A base image built from the host's static busybox (Debian ``busybox-static``).

These hosts have no public registry, so ``busybox:latest`` is made locally: the
binary, one symlink per applet, the usual top-level directories and a minimal
/etc/passwd and /etc/group. The tar is deterministic (sorted entries, fixed
mtimes and owners), so building it twice yields the same layer and image.
"""

from __future__ import annotations

import os

from skiff.errors import SkiffError

from .store import Image, ImageStore

_DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755,
         "root": 0o700, "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755,
         "usr/bin": 0o755, "usr/sbin": 0o755, "var": 0o755}
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
_GROUP = "root:x:0:\nnobody:x:65534:\n"
_MTIME = 0


def find_busybox() -> str:
    """The host busybox binary, or a SkiffError saying how to get one."""
    import shutil

    for candidate in ("/usr/bin/busybox", "/bin/busybox", shutil.which("busybox")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SkiffError("busybox not found: install Debian busybox-static")


def applets(busybox: str) -> list[str]:
    """Relative install paths of every applet (``bin/sh``, ``usr/bin/wget``, ...)."""
    import subprocess

    try:
        out = subprocess.run([busybox, "--list-full"], capture_output=True, check=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SkiffError(f"cannot list the applets of {busybox}: {e}") from None
    paths = {line.strip().strip("/") for line in out.splitlines()}
    return sorted(p for p in paths if p and p != "bin/busybox" and ".." not in p.split("/"))


def build_rootfs_tar(busybox: str, out) -> None:
    """Write the busybox rootfs as an uncompressed tar to the binary file ``out``."""
    import io
    import tarfile

    links = applets(busybox)
    dirs = dict(_DIRS)
    for path in links:
        parent = os.path.dirname(path)
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = os.path.dirname(parent)

    def info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
        ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = _MTIME, 0, 0, "root", "root"
        return ti

    files = {"etc/passwd": _PASSWD.encode(), "etc/group": _GROUP.encode()}
    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = [
        (".", info(".", tarfile.DIRTYPE, 0o755), None)]
    entries += [(d, info(d, tarfile.DIRTYPE, mode), None) for d, mode in dirs.items()]
    entries += [(p, info(p, tarfile.REGTYPE, 0o644, len(data)), data) for p, data in files.items()]
    entries += [(p, info(p, tarfile.SYMTYPE, 0o777, link="/bin/busybox"), None) for p in links]
    with open(busybox, "rb") as f:
        binary = f.read()
    entries.append(("bin/busybox", info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)),
                    binary))
    entries.sort(key=lambda e: e[0])
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for _, ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)


def make_busybox_image(store: ImageStore, ref: str | None = "busybox:latest",
                       busybox: str | None = None) -> Image:
    """Build (or rebuild identically) the busybox image and tag it ``ref``."""
    import io
    import time

    from .importer import import_rootfs

    if busybox is None:
        busybox = find_busybox()
    elif not os.access(busybox, os.X_OK):
        raise SkiffError(f"busybox not found at {busybox}: install Debian busybox-static")
    buf = io.BytesIO()
    build_rootfs_tar(busybox, buf)
    buf.seek(0)
    # Created = the binary's mtime: the image id only changes with the binary.
    mtime = int(os.stat(busybox).st_mtime)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    return import_rootfs(store, buf, ref, ['CMD ["sh"]'], f"busybox from {busybox}",
                         created=created, created_by="skiff busybox")
