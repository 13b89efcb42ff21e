"""Safe unpacking of layer archives.

An archive is read once from its source: the bytes as given are copied to a
temporary blob file and hashed (the blob digest) while the uncompressed stream
is hashed (the diff_id) and, for gzip input, written to a temporary tar. Then
every member header is checked before anything is unpacked, so a bad archive
leaves nothing behind; only then are the members extracted with tarfile.

Rules (one-line errors naming the archive and the member):

- names must stay inside the layer: no absolute names, no ``..`` components;
- relative symlink targets must resolve inside the layer (counted from the
  link's directory); absolute targets are fine, they resolve in the container;
- hard links must name an earlier regular member (or device/fifo) in the layer;
- no member may be written through a symlink or a non-directory of the archive;
- OCI whiteouts (``.wh.NAME``, ``.wh..wh..opq``) become overlayfs whiteouts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import IO, Iterator

from skiff.errors import SkiffError

MEDIA_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_UNSUPPORTED = (
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


@dataclass
class Spooled:
    """A source archive copied into the temp directory, with its digests."""

    blob_path: str          # the bytes exactly as received
    tar_path: str           # the uncompressed tar (== blob_path when not compressed)
    blob_digest: str        # "sha256:<hex>" of the bytes as received
    blob_size: int
    diff_id: str            # "sha256:<hex>" of the uncompressed tar
    media_type: str

    def discard(self) -> None:
        """Remove whichever temp files are still there."""
        for p in {self.blob_path, self.tar_path}:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def _invalid(source: str, why: str) -> SkiffError:
    return SkiffError(f"invalid archive {source}: {why}")


def spool_archive(src: str | IO[bytes], tmp_dir: str, source_name: str) -> Spooled:
    """Copy ``src`` (a path or a readable binary file) into ``tmp_dir``, hashing it.

    Gzip and uncompressed tars are recognised by their magic bytes.
    """
    import hashlib
    import tempfile
    import zlib

    if isinstance(src, str):
        try:
            f: IO[bytes] = open(src, "rb")
        except OSError as e:
            raise SkiffError(f"cannot read {source_name}: {e.strerror or e}") from None
        close = True
    else:
        f, close = src, False
    paths: list[str] = []
    try:
        first = _read_some(f, source_name)
        for magic, kind in _UNSUPPORTED:
            if first.startswith(magic):
                raise _invalid(source_name, f"{kind} compression is not supported "
                                            "(use gzip or an uncompressed tar)")
        gz = first.startswith(_GZIP_MAGIC)
        pid = os.getpid()
        bfd, blob_path = tempfile.mkstemp(prefix=f"img-blob-{pid}-", dir=tmp_dir)
        paths.append(blob_path)
        tar_path, tfd = blob_path, -1
        if gz:
            tfd, tar_path = tempfile.mkstemp(prefix=f"img-tar-{pid}-", dir=tmp_dir)
            paths.append(tar_path)
        raw_hash, tar_hash = hashlib.sha256(), hashlib.sha256()
        size = 0
        dec = zlib.decompressobj(31) if gz else None
        members_done = 0      # complete gzip members seen
        trailing = False      # garbage after the last gzip member is ignored
        try:
            chunk = first
            while chunk:
                size += len(chunk)
                raw_hash.update(chunk)
                _write_all(bfd, chunk)
                if dec is None:
                    tar_hash.update(chunk)
                else:
                    data = chunk
                    while data and not trailing:
                        try:
                            out = dec.decompress(data)
                        except zlib.error as e:
                            if members_done:
                                trailing = True
                                break
                            raise _invalid(source_name, f"corrupt gzip stream ({e})") from None
                        if out:
                            tar_hash.update(out)
                            _write_all(tfd, out)
                        if dec.eof:
                            members_done += 1
                            data = dec.unused_data
                            dec = zlib.decompressobj(31)
                        else:
                            data = b""
                chunk = f.read(_CHUNK)
            if gz and not members_done:
                raise _invalid(source_name, "truncated gzip stream")
        finally:
            os.close(bfd)
            if tfd >= 0:
                os.close(tfd)
    except BaseException:
        for p in paths:
            _unlink(p)
        raise
    finally:
        if close:
            f.close()
    return Spooled(
        blob_path=blob_path, tar_path=tar_path,
        blob_digest="sha256:" + raw_hash.hexdigest(), blob_size=size,
        diff_id="sha256:" + tar_hash.hexdigest(),
        media_type=MEDIA_TAR_GZIP if gz else MEDIA_TAR,
    )


def _read_some(f: IO[bytes], source_name: str) -> bytes:
    try:
        return f.read(_CHUNK)
    except OSError as e:
        raise SkiffError(f"cannot read {source_name}: {e.strerror or e}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- validation

@dataclass
class _Plan:
    """What to extract, after validation."""

    members: list            # tarfile.TarInfo, in archive order, whiteouts excluded
    whiteouts: list[str]     # normalized paths to turn into overlay whiteouts
    opaque_dirs: list[str]   # normalized dirs to mark opaque ("" = layer root)
    has_root: bool           # the archive has a "./" entry
    size: int                # sum of regular file sizes


def _normalize(name: str) -> str | None:
    """Relative, normalized member path ("" for the root), or None if it escapes."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _kind(m) -> str:
    if m.isdir():
        return "dir"
    if m.issym():
        return "sym"
    if m.islnk():
        return "link"
    if m.ischr() or m.isblk():
        return "dev"
    if m.isfifo():
        return "fifo"
    return "file"


def check_members(members: list, source: str) -> _Plan:
    """Validate every member header; raise SkiffError on the first bad one."""
    import posixpath

    kinds: dict[str, str] = {"": "dir"}
    keep, whiteouts, opaque = [], [], []
    has_root = False
    size = 0

    def bad(m, why: str) -> SkiffError:
        return _invalid(source, f'member "{m.name}" {why}')

    for m in members:
        path = _normalize(m.name)
        if path is None:
            raise bad(m, "leads out of the layer")
        kind = _kind(m)
        if path == "":
            if kind != "dir":
                raise bad(m, "is the layer root but not a directory")
            has_root = True
            keep.append(m)
            continue
        parent = posixpath.dirname(path)
        # Every ancestor must be (or become) a real directory of this layer.
        prefix = ""
        for part in parent.split("/") if parent else ():
            prefix = f"{prefix}/{part}" if prefix else part
            k = kinds.get(prefix)
            if k is None:
                kinds[prefix] = "dir"
            elif k == "sym":
                raise bad(m, f'is written through the symlink "{prefix}"')
            elif k != "dir":
                raise bad(m, f'is written under "{prefix}", which is not a directory')
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            if base == WHITEOUT_OPAQUE:
                opaque.append(parent)
            elif base.startswith(WHITEOUT_META_PREFIX):
                pass  # aufs bookkeeping (.wh..wh.plnk and friends): ignored, like docker
            else:
                target = base[len(WHITEOUT_PREFIX):]
                if target in ("", ".", ".."):
                    raise bad(m, "is not a valid whiteout")
                wpath = posixpath.join(parent, target)
                if kinds.get(wpath) == "dir":
                    raise bad(m, "whites out a directory of the same layer")
                kinds.setdefault(wpath, "wh")
                whiteouts.append(wpath)
            continue
        old = kinds.get(path)
        if old is not None and old != "wh" and (old == "dir") != (kind == "dir") \
                and not (old == "sym" and kind == "dir"):
            raise bad(m, f"replaces an earlier {'directory' if old == 'dir' else 'entry'}"
                         " of another type")
        if kind == "sym":
            target = m.linkname
            if not target:
                raise bad(m, "is a symlink with an empty target")
            if not target.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(parent, target))
                if resolved == ".." or resolved.startswith("../"):
                    raise bad(m, f'is a symlink to "{target}", outside the layer')
        elif kind == "link":
            target = _normalize(m.linkname) if m.linkname else None
            if target is None or target == "":
                raise bad(m, f'is a hard link to "{m.linkname}", outside the layer')
            tk = kinds.get(target)
            if tk is None or tk == "wh" or target == path:
                raise bad(m, f'is a hard link to "{m.linkname}", which is not an earlier member')
            if tk in ("dir", "sym"):
                raise bad(m, f'is a hard link to "{m.linkname}", which is a '
                             f"{'directory' if tk == 'dir' else 'symlink'}")
        elif kind == "file":
            size += m.size
        kinds[path] = kind
        keep.append(m)
    return _Plan(keep, whiteouts, opaque, has_root, size)


# ---------------------------------------------------------------- extraction

def _open_tar(tar_path: str, source: str):
    import tarfile

    try:
        tar = tarfile.open(tar_path, "r:", copybufsize=_CHUNK)
    except tarfile.ReadError as e:
        raise _invalid(source, f"not a tar archive ({e})") from None
    try:
        members = tar.getmembers()
    except tarfile.TarError as e:
        tar.close()
        raise _invalid(source, f"truncated or corrupt tar archive ({e})") from None
    return tar, members


def layer_size(tar_path: str, source: str) -> int:
    """Validate ``tar_path`` and return its unpacked size, without extracting."""
    tar, members = _open_tar(tar_path, source)
    with tar:
        return check_members(members, source).size


def extract_layer(tar_path: str, dest: str, source: str) -> int:
    """Validate every member of the uncompressed tar, then unpack it into ``dest``.

    ``dest`` must be an empty directory. Returns the unpacked size in bytes
    (sum of regular files). Device nodes are skipped when not running as root.
    """
    import tarfile

    tar, members = _open_tar(tar_path, source)
    with tar:
        plan = check_members(members, source)
        if (plan.whiteouts or plan.opaque_dirs) and os.geteuid() != 0:
            raise _invalid(source, "has overlay whiteouts, which need root to unpack")
        tar.errorlevel = 2
        try:
            tar.extractall(dest, members=_prepared(plan.members, dest),
                           numeric_owner=True, filter="fully_trusted")
            _apply_whiteouts(plan, dest, {_normalize(m.name): m for m in plan.members
                                          if m.isdir()})
        except tarfile.TarError as e:
            raise _invalid(source, f"cannot unpack ({e})") from None
        except OSError as e:
            where = e.filename or dest
            raise SkiffError(f"cannot unpack {source}: {where}: {e.strerror or e}") from None
    if not plan.has_root:
        os.chmod(dest, 0o755)
    return plan.size


def _prepared(members: list, dest: str) -> Iterator:
    """Yield members for extractall, clearing what each one replaces just before.

    tarfile opens regular files with O_TRUNC and would write through an earlier
    symlink or hard link of the same name; removing the old entry first keeps
    every write inside its own inode. extractall consumes this lazily, in order.
    """
    root = os.geteuid() == 0
    skipped: set[str] = set()
    for m in members:
        path = _normalize(m.name)
        if not root and ((m.ischr() or m.isblk())
                         or (m.islnk() and _normalize(m.linkname) in skipped)):
            skipped.add(path)
            continue  # mknod needs privileges; skipped like rootless docker does
        skipped.discard(path)
        if path:
            target = os.path.join(dest, path)
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(target)
        yield m


def _apply_whiteouts(plan: _Plan, dest: str, dirs: dict) -> None:
    touched: set[str] = set()
    for path in plan.whiteouts:
        target = os.path.join(dest, path)
        if os.path.lexists(target):
            continue  # a whiteout only hides lower layers, never its own layer
        parent = os.path.dirname(path)
        os.makedirs(os.path.join(dest, parent), exist_ok=True)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        touched.add(parent)
    for d in plan.opaque_dirs:
        full = os.path.join(dest, d)
        os.makedirs(full, exist_ok=True)
        os.setxattr(full, OPAQUE_XATTR, b"y", follow_symlinks=False)
    for d in touched:  # mknod changed the directory's mtime: put the archive's back
        m = dirs.get(d)
        if m is not None:
            os.utime(os.path.join(dest, d), (m.mtime, m.mtime), follow_symlinks=False)


def rmtree(path: str) -> None:
    """Remove a tree even where unpacked modes deny write access (non-root)."""
    import shutil

    def retry(func, p, _exc):
        parent = os.path.dirname(p)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, onerror=_ignore)
            else:
                func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def _ignore(*_a) -> None:
    return None
