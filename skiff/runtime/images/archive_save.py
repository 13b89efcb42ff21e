"""``skiff save``: write images as a docker-archive or an OCI layout tar.

The tar is streamed: headers are made here (deterministic: mtime 0, uid/gid 0,
no user names) and layer blobs are copied from the store with
``copy_file_range``/``sendfile``, so no layer is copied to a temp file, except
a gzip-compressed blob written into a docker-archive (which wants uncompressed
``layer.tar``): it is decompressed into the store's tmp first.
"""

from __future__ import annotations

import os
import tarfile

from skiff.errors import InvalidArgument, NotFound, SkiffError
from skiff.runtime import fastjson as json

from .archive import (ANN_CONTAINERD_NAME, ANN_REF_NAME, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
                      MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, TO_OCI_LAYER,
                      chain_ids, full_name, sha256_hex)

_BLOCK = 512
_CHUNK = 1 << 20


def _hex(d: str) -> str:
    return d.split(":", 1)[1] if ":" in d else d


def _dumps(obj) -> bytes:
    import json as std

    return std.dumps(obj, separators=(",", ":")).encode()


class TarWriter:
    """A minimal streaming tar writer over a file descriptor."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pos = 0
        self._regular = None  # lazily: is the output a regular file (copy_file_range)?

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.pos += n

    def _header(self, name: str, type_: bytes, size: int = 0, mode: int = 0o644,
                linkname: str = "") -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.mode, ti.mtime = type_, size, mode, 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.linkname = linkname
        self._write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rem = size % _BLOCK
        if rem:
            self._write(b"\0" * (_BLOCK - rem))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, mode=0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, tarfile.REGTYPE, len(data))
        self._write(data)
        self._pad(len(data))

    def add_symlink(self, name: str, target: str) -> None:
        self._header(name, tarfile.SYMTYPE, mode=0o777, linkname=target)

    def add_file(self, name: str, path: str, task=None) -> None:
        """Copy the file at ``path`` as member ``name``, in the kernel when possible."""
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._header(name, tarfile.REGTYPE, size)
            self._copy(f.fileno(), size, task, name)
        self._pad(size)

    def _copy(self, src: int, size: int, task, name: str) -> None:
        left = size
        if self._regular is None:
            import stat

            self._regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
        kernel = True
        while left > 0:
            n = 0
            if kernel:
                try:
                    if self._regular:
                        n = os.copy_file_range(src, self.fd, min(left, 1 << 30))
                    else:
                        n = os.sendfile(self.fd, src, None, min(left, 1 << 30))
                except OSError:
                    kernel = False  # EXDEV, EINVAL, ENOSYS...: plain copy from here on
                    continue
            else:
                data = os.read(src, min(left, _CHUNK))
                if data:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self.fd, view):]
                n = len(data)
            if n == 0:
                raise SkiffError(f"cannot save {name}: the blob shrank while it was written")
            left -= n
            self.pos += n
            if task is not None:
                task.advance(n)

    def close(self) -> None:
        self._write(b"\0" * (2 * _BLOCK))


class _Entry:
    """One image to save and the names it is saved under."""

    def __init__(self, image):
        self.image = image
        self.tags: list[str] = []


def _select(store, names: list[str]) -> list[_Entry]:
    """Resolve the arguments; each image once, with the tags it was asked by."""
    from .reference import normalize_tag

    entries: dict[str, _Entry] = {}
    for name in names:
        image = store.resolve(name)
        e = entries.setdefault(image.id, _Entry(image))
        low = name[7:] if name.startswith("sha256:") else name
        if name.startswith("sha256:") or "@" in name or \
                (all(c in "0123456789abcdef" for c in low) and not any(
                    r.split(":", 1)[0] == low for r in image.refs)):
            continue  # by id or digest: saved untagged, like docker
        try:
            key = normalize_tag(name)
        except InvalidArgument:
            continue
        if key in image.refs and key not in e.tags:
            e.tags.append(key)
    return list(entries.values())


def _layer_blobs(store, image) -> list[tuple[str, str, int]]:
    """(blob digest, media type, size) of each layer, from the stored manifest."""
    try:
        m = store.manifest(image)
        layers = [(d["digest"], d.get("mediaType") or MEDIA_OCI_LAYER, int(d.get("size") or 0))
                  for d in m.get("layers") or []]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        layers = []
    if len(layers) != len(image.diff_ids):  # no usable manifest: uncompressed blobs by diff_id
        layers = [(d, MEDIA_OCI_LAYER, 0) for d in image.diff_ids]
    for digest, _mt, _size in layers:
        if not os.path.exists(store.blob_path(digest)):
            raise NotFound(f"cannot save {image.refs[0] if image.refs else image.short_id}: "
                           f"layer blob {digest} is missing from the store")
    return layers


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def save_images(store, names: list[str], out, fmt: str = "docker", progress=None) -> None:
    if fmt not in ("docker", "oci", "docker-archive", "oci-archive"):
        raise InvalidArgument(f'unknown format "{fmt}" (use docker or oci)')
    entries = _select(store, names)
    plans = [(e, _layer_blobs(store, e.image)) for e in entries]  # fail before writing
    if hasattr(out, "flush"):
        out.flush()
    fd = out.fileno() if hasattr(out, "fileno") else out
    w = TarWriter(fd)
    if fmt.startswith("oci"):
        _save_oci(store, plans, w, progress)
    else:
        _save_docker(store, plans, w, progress)
    w.close()


def _task(progress, digest: str, label: str, size: int):
    return progress.task(_hex(digest)[:12], label, size) if progress is not None else None


def _save_docker(store, plans, w: TarWriter, progress) -> None:
    manifest, repositories = [], {}
    written_dirs: dict[str, str] = {}     # v1 id -> dir written
    tar_of_diff: dict[str, str] = {}      # diff_id -> "<v1id>/layer.tar" already written
    configs: set[str] = set()
    for e, layers in plans:
        img = e.image
        chex = img.hex
        if chex not in configs:
            w.add_bytes(f"{chex}.json", store.config_bytes(img.id))
            configs.add(chex)
        parent = ""
        paths = []
        for (digest, _mt, _size), diff_id, chain in zip(layers, img.diff_ids, chain_ids(img.diff_ids)):
            v1 = sha256_hex(_dumps({"layer_id": chain, "parent": parent}))
            path = f"{v1}/layer.tar"
            paths.append(path)
            if v1 not in written_dirs:
                w.add_dir(v1)
                w.add_bytes(f"{v1}/VERSION", b"1.0")
                meta = {"id": v1, "created": "1970-01-01T00:00:00Z",
                        "container_config": {}, "os": img.config.get("os", "linux")}
                if parent:
                    meta["parent"] = parent
                w.add_bytes(f"{v1}/json", _dumps(meta))
                if diff_id in tar_of_diff:  # the same diff elsewhere in the stack: link, like docker
                    w.add_symlink(path, "../" + tar_of_diff[diff_id])
                else:
                    _write_layer_tar(store, w, path, digest, diff_id, progress)
                    tar_of_diff[diff_id] = path
                written_dirs[v1] = path
            parent = v1
        manifest.append({"Config": f"{chex}.json", "RepoTags": e.tags or None, "Layers": paths})
        for tag in e.tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
    w.add_bytes("manifest.json", _dumps(manifest))
    if repositories:
        w.add_bytes("repositories", _dumps(repositories))


def _write_layer_tar(store, w: TarWriter, name: str, digest: str, diff_id: str, progress) -> None:
    path = store.blob_path(digest)
    if digest == diff_id or not _is_gzip(path):
        task = _task(progress, diff_id, "Saving layer", os.path.getsize(path))
        w.add_file(name, path, task)
        if task:
            task.done()
        return
    # a gzip blob: docker-archive wants the uncompressed tar (its sha256 is the diff_id)
    import tempfile
    import zlib

    store.root.ensure()
    fd, tmp = tempfile.mkstemp(prefix=f"img-save-{os.getpid()}-", dir=store.root.tmp)
    try:
        h = __import__("hashlib").sha256()
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            dec = zlib.decompressobj(31)
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                while chunk:
                    data = dec.decompress(chunk)
                    h.update(data)
                    dst.write(data)
                    if dec.eof:
                        chunk = dec.unused_data
                        dec = zlib.decompressobj(31) if chunk else dec
                    else:
                        chunk = b""
        if "sha256:" + h.hexdigest() != diff_id:
            raise SkiffError(f"layer blob {digest} does not match its diff_id {diff_id}")
        task = _task(progress, diff_id, "Saving layer", os.path.getsize(tmp))
        w.add_file(name, tmp, task)
        if task:
            task.done()
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _oci_manifest(store, img, layers) -> bytes:
    """The stored manifest when it is already an OCI one, else an OCI manifest for it."""
    try:
        with open(store.blob_path(img.manifest_digest), "rb") as f:
            raw = f.read()
        m = json.loads(raw)
        if m.get("mediaType", MEDIA_OCI_MANIFEST) == MEDIA_OCI_MANIFEST and \
                _hex(m.get("config", {}).get("digest", "")) == img.hex and \
                [d["digest"] for d in m.get("layers") or []] == [d for d, _, _ in layers]:
            return raw
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    cbytes = store.config_bytes(img.id)
    descs = []
    for digest, mt, size in layers:
        mt = TO_OCI_LAYER.get(mt, mt)
        if mt not in (MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP):
            mt = MEDIA_OCI_LAYER_GZIP if _is_gzip(store.blob_path(digest)) else MEDIA_OCI_LAYER
        descs.append({"mediaType": mt, "digest": digest,
                      "size": size or os.path.getsize(store.blob_path(digest))})
    return _dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
                   "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": img.id, "size": len(cbytes)},
                   "layers": descs})


def _save_oci(store, plans, w: TarWriter, progress) -> None:
    w.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    w.add_dir("blobs")
    w.add_dir("blobs/sha256")
    written: set[str] = set()
    index = []
    for e, layers in plans:
        img = e.image
        for digest, _mt, _size in layers:
            if digest in written:
                continue
            path = store.blob_path(digest)
            task = _task(progress, digest, "Saving layer", os.path.getsize(path))
            w.add_file(f"blobs/sha256/{_hex(digest)}", path, task)
            if task:
                task.done()
            written.add(digest)
        if img.id not in written:
            w.add_bytes(f"blobs/sha256/{img.hex}", store.config_bytes(img.id))
            written.add(img.id)
        mbytes = _oci_manifest(store, img, layers)
        mdigest = "sha256:" + sha256_hex(mbytes)
        if mdigest not in written:
            w.add_bytes(f"blobs/sha256/{_hex(mdigest)}", mbytes)
            written.add(mdigest)
        desc = {"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest, "size": len(mbytes)}
        if not e.tags:
            index.append(desc)
        for tag in e.tags:
            index.append({**desc, "annotations": {
                ANN_CONTAINERD_NAME: full_name(tag),
                ANN_REF_NAME: tag.rpartition(":")[2]}})
    w.add_bytes("index.json", _dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX,
                                      "manifests": index}))
