"""``skiff commit``: a container's changes become a new image layer.

The container's overlay upper dir (<root>/containers/<id>/upper) is written as
an OCI layer tar: overlay whiteouts (character devices 0:0) become ``.wh.NAME``
entries and opaque directories (``trusted.overlay.opaque=y``) get a
``.wh..wh..opq`` entry. The empty /etc/hostname, /etc/hosts and
/etc/resolv.conf files that skiff creates in the upper dir as bind-mount
targets are left out, as docker leaves out its init layer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO

from skiff.errors import SkiffError

from .changes import apply_changes
from .store import Image, ImageStore, LayerRecord, utc_now
from .tarsafe import MEDIA_TAR, OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

# bind-mount targets skiff creates (rootfs.ETC_FILES), skipped when they are empty files
SKIFF_MOUNT_TARGETS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path: str) -> dict[str, str]:
    """The file's extended attributes as SCHILY.xattr.* PAX records (overlayfs' own
    trusted.overlay.* bookkeeping excepted), sorted so the tar stays reproducible."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        if name.startswith("trusted.overlay."):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def write_diff_tar(upper: str, out: BinaryIO, skip_mount_targets: bool = True) -> None:
    """Write the overlay upper dir ``upper`` as an OCI layer tar to ``out``.

    Entries are sorted, so the same upper dir gives the same bytes (and diff_id).
    """
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def info(path: str, arcname: str) -> tarfile.TarInfo | None:
            ti = tar.gettarinfo(path, arcname)
            if ti is not None:
                ti.uname = ti.gname = ""
                ti.pax_headers = _xattrs(path)
            return ti

        def empty(name: str, mtime: float) -> tarfile.TarInfo:
            ti = tarfile.TarInfo(name)
            ti.type, ti.size, ti.mode, ti.mtime = tarfile.REGTYPE, 0, 0o644, int(mtime)
            return ti

        def walk(d: str, rel: str) -> None:
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                return  # removed meanwhile (a running container)
            for name in names:
                path = os.path.join(d, name)
                arc = f"{rel}/{name}" if rel else name
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if _is_whiteout(st):
                    tar.addfile(empty(f"{rel}/{WHITEOUT_PREFIX}{name}" if rel
                                      else WHITEOUT_PREFIX + name, st.st_mtime))
                    continue
                if (skip_mount_targets and arc in SKIFF_MOUNT_TARGETS
                        and stat.S_ISREG(st.st_mode) and st.st_size == 0):
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    continue  # sockets are not archived (docker skips them too)
                try:
                    ti = info(path, arc)
                except FileNotFoundError:
                    continue
                if ti is None:
                    continue
                if ti.isreg():
                    try:
                        with open(path, "rb") as f:
                            tar.addfile(ti, f)
                    except FileNotFoundError:
                        continue
                    continue
                tar.addfile(ti)
                if ti.isdir():
                    if _is_opaque(path):
                        tar.addfile(empty(f"{arc}/{WHITEOUT_OPAQUE}", st.st_mtime))
                    walk(path, arc)

        walk(upper, "")


def _parent_layers(store: ImageStore, parent: Image) -> list[LayerRecord]:
    """LayerRecords of an image's existing layers (from its manifest and sizes)."""
    from skiff.runtime.fsutil import read_json

    try:
        mlayers = store.manifest(parent).get("layers") or []
    except (OSError, ValueError):
        mlayers = []
    meta = read_json(store._meta_path(parent.hex), {}) or {}
    sizes = meta.get("layer_sizes") or []
    out = []
    for i, d in enumerate(parent.diff_ids):
        m = mlayers[i] if len(mlayers) == len(parent.diff_ids) else {}
        out.append(LayerRecord(
            diff_id=d, blob_digest=m.get("digest") or d, blob_size=int(m.get("size") or 0),
            media_type=m.get("mediaType") or MEDIA_TAR,
            size=int(sizes[i]) if len(sizes) == len(parent.diff_ids) else 0))
    return out


def commit_container(store: ImageStore, container, ref: str | None = None,
                     message: str = "", author: str = "",
                     changes: list[str] | tuple[str, ...] = ()) -> Image:
    """Commit ``container`` (a containers.store.Container) as a new image tagged ``ref``."""
    import copy
    import tempfile

    from .reference import normalize_tag

    if ref:
        normalize_tag(ref)  # fail before any work
    spec = container.spec
    parent = store.resolve(spec.image_id)
    now = utc_now()
    config = copy.deepcopy(parent.config)
    config.pop("rootfs", None)
    config["created"] = now
    config["container"] = container.id
    if author:
        config["author"] = author
    run = config.get("config") or {}
    config["config"] = run
    # what docker keeps of the container's own configuration (Cmd/Env stay the image's)
    if spec.labels:
        run["Labels"] = {**(run.get("Labels") or {}), **spec.labels}
    if spec.user and spec.user != (run.get("User") or ""):
        run["User"] = spec.user
    if spec.workdir and spec.workdir != (run.get("WorkingDir") or ""):
        run["WorkingDir"] = spec.workdir
    entry = {"created": now, "created_by": " ".join(spec.argv).strip()}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    config["history"] = list(config.get("history") or []) + [entry]
    config = apply_changes(config, list(changes))

    upper = os.path.join(container.dir, "upper")
    if not os.path.isdir(upper):
        raise SkiffError(f"container {container.id[:12]} has no file system to commit")
    store.root.ensure()
    fd, tmp = tempfile.mkstemp(prefix=f"img-commit-{os.getpid()}-", dir=store.root.tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            write_diff_tar(upper, f)
        layer = store.add_layer_from_tar(tmp, f"container {container.id[:12]}")
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    try:
        return store.add_image(config, _parent_layers(store, parent) + [layer], ref=ref)
    finally:
        store.release([layer])

