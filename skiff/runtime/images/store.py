"""The content-addressed image store (DESIGN.md section 3).

Layout under the root::

    blobs/sha256/<hex>         blobs exactly as received, plus config and manifest blobs
    layers/<diff_id hex>/      unpacked layer diffs (overlay lowerdirs), shared by images
    links/<name>               short links -> ../layers/<diff_id hex> (layers.py), so
                               that many lowerdirs fit in overlayfs's one-page mount data
    images/<id hex>.json       the OCI image config bytes; id = sha256 of those bytes
    images/<id hex>.meta.json  {"manifest": digest, "created": ..., "size": ...}
    refs.json                  {"name:tag": "sha256:<id hex>"}

Locks: ``images`` serializes adding and deleting images (and the garbage
collection of layers and blobs); ``refs`` guards every read-modify-write of
refs.json. When both are needed, ``images`` is taken first.

A layer unpacked by ``add_layer_from_tar`` is protected by a *hold* (a small
file ``locks/image-holds/<hex>.<pid>.<n>``, like a containerd lease) until
``add_image`` references it, so a concurrent ``remove`` never collects it.
Holds of dead processes are ignored and cleaned up.

This module is imported by ``skiff run``: heavy modules load lazily.
"""

from __future__ import annotations

import os
import time

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.runtime import fastjson as json
from skiff.runtime.fsutil import FileLock, atomic_write, read_json, write_json
from skiff.runtime.record import Record
from skiff.runtime.root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import BinaryIO

    from .tarsafe import Segment

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
_HEX = frozenset("0123456789abcdef")


def utc_now() -> str:
    """The current time as RFC 3339 UTC with nanoseconds, as docker writes it."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _is_hex(s: str) -> bool:
    return bool(s) and set(s) <= _HEX


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if ":" in digest else digest


class LayerRecord(Record):
    """A layer in the store: its diff_id, the blob it came from, unpacked size."""

    diff_id: str
    blob_digest: str
    blob_size: int
    media_type: str
    size: int
    hold: str = ""


class Image(Record):
    """An image in the store (read-only view)."""

    id: str                     # "sha256:<hex>"
    config: dict                # the parsed OCI image config
    refs: list[str]             # "name:tag" references naming this image
    created: str                # RFC 3339
    size: int                   # unpacked size of all layers
    diff_ids: list[str]
    manifest_digest: str = ""
    layers_root: str = ""

    @property
    def hex(self) -> str:
        return _hex(self.id)

    @property
    def short_id(self) -> str:
        return self.hex[:12]

    def layer_dirs(self) -> list[str]:
        """Absolute layer directories, lowest layer first."""
        return [os.path.join(self.layers_root, _hex(d)) for d in self.diff_ids]


class ImageStore:
    """Images, layers, blobs and references under one runtime root."""

    def __init__(self, root: Root):
        self.root = root
        self._seq = 0

    # ------------------------------------------------------------ paths

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root.blobs, _hex(digest))

    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.root.layers, _hex(diff_id))

    def _config_path(self, hexid: str) -> str:
        return os.path.join(self.root.images, hexid + ".json")

    def _meta_path(self, hexid: str) -> str:
        return os.path.join(self.root.images, hexid + ".meta.json")

    def _lock(self, name: str) -> FileLock:
        os.makedirs(self.root.locks, exist_ok=True)
        return FileLock(self.root.lock_path(name))

    # ------------------------------------------------------------ reading

    def _read_refs(self) -> dict[str, str]:
        return read_json(self.root.refs, {}) or {}

    def _write_refs(self, refs: dict[str, str]) -> None:
        write_json(self.root.refs, refs)

    def _ids(self) -> list[str]:
        try:
            names = os.listdir(self.root.images)
        except FileNotFoundError:
            return []
        return [n[:-5] for n in names
                if len(n) == 69 and n.endswith(".json") and _is_hex(n[:-5])]

    def _exists(self, hexid: str) -> bool:
        return os.path.exists(self._config_path(hexid))

    def _load(self, hexid: str, refs: dict[str, str] | None = None) -> Image:
        try:
            with open(self._config_path(hexid), "rb") as f:
                config = json.loads(f.read())
        except FileNotFoundError:
            raise NotFound(f"No such image: sha256:{hexid}") from None
        meta = read_json(self._meta_path(hexid), {}) or {}
        if refs is None:
            refs = self._read_refs()
        iid = "sha256:" + hexid
        return Image(
            id=iid, config=config,
            refs=sorted(r for r, v in refs.items() if v == iid),
            created=config.get("created") or meta.get("created", ""),
            size=int(meta.get("size", 0)),
            diff_ids=list((config.get("rootfs") or {}).get("diff_ids") or []),
            manifest_digest=meta.get("manifest", ""),
            layers_root=self.root.layers,
        )

    def config_bytes(self, image_id: str) -> bytes:
        """The image config exactly as stored (its sha256 is the image id)."""
        with open(self._config_path(_hex(image_id)), "rb") as f:
            return f.read()

    def manifest(self, image: Image) -> dict:
        """The image's OCI manifest, parsed."""
        with open(self.blob_path(image.manifest_digest), "rb") as f:
            return json.loads(f.read())

    def _lookup(self, s: str, refs: dict[str, str]) -> tuple[str, str | None]:
        """(image hex, the ref key it was found by or None); NotFound otherwise."""
        low = s[7:] if s.startswith("sha256:") else s
        if len(low) == 64 and _is_hex(low):
            if self._exists(low):
                return low, None
            raise NotFound(f"No such image: {s}")
        if s.startswith("sha256:"):
            return self._by_prefix(low, s), None
        # the common case without parsing: "name" or "name:tag" exactly as stored
        if "@" not in s:
            key = s if ":" in s.rsplit("/", 1)[-1] else s + ":latest"
            target = refs.get(key)
            if target and self._exists(_hex(target)):
                return _hex(target), key
        from .reference import parse_reference

        try:
            ref = parse_reference(s)
        except InvalidArgument:
            ref = None
        if ref is not None and ref.digest:
            for h in self._ids():
                meta = read_json(self._meta_path(h), {}) or {}
                if meta.get("manifest") == ref.digest or "sha256:" + h == ref.digest:
                    return h, None
        elif ref is not None:
            key = str(ref)
            target = refs.get(key)
            if target and self._exists(_hex(target)):
                return _hex(target), key
        if _is_hex(s):
            return self._by_prefix(s, s), None
        raise NotFound(f"No such image: {s}")

    def _by_prefix(self, prefix: str, original: str) -> str:
        if not _is_hex(prefix):
            raise NotFound(f"No such image: {original}")
        found = [h for h in self._ids() if h.startswith(prefix)]
        if len(found) == 1:
            return found[0]
        if found:
            raise NotFound(f"No such image: {original} (ambiguous id prefix)")
        raise NotFound(f"No such image: {original}")

    def resolve(self, name_or_id: str) -> Image:
        """Find an image by name[:tag], name@digest, id, or unique id prefix."""
        refs = self._read_refs()
        hexid, _ = self._lookup(name_or_id, refs)
        return self._load(hexid, refs)

    def exists(self, name_or_id: str) -> bool:
        try:
            self._lookup(name_or_id, self._read_refs())
        except NotFound:
            return False
        return True

    def list(self) -> list[Image]:
        """All images, newest first."""
        refs = self._read_refs()
        images = []
        for h in self._ids():
            try:
                images.append(self._load(h, refs))
            except (NotFound, ValueError):
                continue  # removed meanwhile, or unreadable
        images.sort(key=lambda i: (_epoch(i.created), i.id), reverse=True)
        return images

    # ------------------------------------------------------------ references

    def tag(self, source: str, target: str) -> Image:
        """Make ``target`` (name[:tag]) name the image ``source`` resolves to."""
        from .reference import normalize_tag

        key = normalize_tag(target)
        with self._lock("refs"):
            refs = self._read_refs()
            hexid, _ = self._lookup(source, refs)
            refs[key] = "sha256:" + hexid
            self._write_refs(refs)
            return self._load(hexid, refs)

    def untag(self, ref: str) -> str:
        """Remove the reference ``ref``; the image itself stays. Returns name:tag."""
        from .reference import normalize_tag

        key = normalize_tag(ref)
        with self._lock("refs"):
            refs = self._read_refs()
            if key not in refs:
                raise NotFound(f"No such image: {ref}")
            del refs[key]
            self._write_refs(refs)
        return key

    # ------------------------------------------------------------ removal

    def remove(self, name_or_id: str, force: bool = False,
               in_use: Callable[[str], list[str]] | None = None) -> list[str]:
        """Docker rmi: untag a name, delete the image when nothing names it.

        Returns the lines docker prints (``Untagged: ...``, ``Deleted: ...``).
        An image used by a container is never deleted: without ``force`` that is
        a Conflict, with ``force`` its names are removed and it stays, dangling,
        until the containers are gone.
        """
        lines: list[str] = []
        with self._lock("images"), self._lock("refs"):
            refs = self._read_refs()
            hexid, key = self._lookup(name_or_id, refs)
            image = self._load(hexid, refs)
            users = list(in_use(image.id) or []) if in_use else []
            if key is not None:
                if len(image.refs) > 1:
                    del refs[key]
                    self._write_refs(refs)
                    return [f"Untagged: {key}"]
                if users and not force:
                    raise Conflict(f"unable to remove image {name_or_id} (must force) - "
                                   f"image is being used by container {users[0][:12]}")
            else:
                # like docker: by id, more than one name needs force, even in one repository
                if len(image.refs) > 1 and not force:
                    raise Conflict(f"unable to delete {image.short_id} (must be forced) - "
                                   "image is referenced in multiple repositories")
                if users and not force:
                    raise Conflict(f"unable to delete {image.short_id} (must be forced) - "
                                   f"image is being used by container {users[0][:12]}")
            for r in image.refs:
                del refs[r]
                lines.append(f"Untagged: {r}")
            if image.refs:
                self._write_refs(refs)
            if users:
                return lines
            candidates = self._image_objects(hexid)
            for p in (self._config_path(hexid), self._meta_path(hexid)):
                _unlink(p)
            lines.append(f"Deleted: {image.id}")
            removed = self._sweep(*candidates)
            lines += [f"Deleted: sha256:{h}" for h in removed]
        return lines

    def prune(self, all_images: bool = False, used: Iterable[str] = (),
              in_use: Callable[[str], list[str]] | None = None) -> tuple[list[str], int]:
        """Docker image prune: delete dangling (untagged) images, or with ``all_images``
        every image, that no container uses (``used``: image ids of the containers).

        Returns (the lines docker prints, lower-cased, and the bytes reclaimed: the
        unpacked size of the layers that were actually deleted).
        """
        used = set(used)
        sizes = self.layer_sizes()
        lines: list[str] = []
        reclaimed = 0
        for image in self.list():
            if image.id in used or (image.refs and not all_images):
                continue
            try:
                out = self.remove(image.id, force=True, in_use=in_use)
            except NotFound:
                continue
            for line in out:
                word, _, what = line.partition(": ")
                h = _hex(what)
                if word == "Deleted" and h in sizes and what != image.id:
                    reclaimed += sizes[h]
                lines.append(f"{word.lower()}: {what}")
        return lines, reclaimed

    def layer_sizes(self) -> dict[str, int]:
        """diff_id hex -> unpacked size of every layer an image references."""
        sizes: dict[str, int] = {}
        for h in self._ids():
            try:
                with open(self._config_path(h), "rb") as f:
                    config = json.loads(f.read())
            except (OSError, ValueError):
                continue
            diff_ids = [_hex(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
            meta = read_json(self._meta_path(h), {}) or {}
            known = meta.get("layer_sizes") or []
            for i, d in enumerate(diff_ids):
                if d in sizes:
                    continue
                if len(known) == len(diff_ids):
                    sizes[d] = int(known[i])
                else:
                    sizes[d] = tree_size(self.layer_dir(d))
        return sizes

    def gc(self) -> list[str]:
        """Remove every layer and blob no image references (and nothing holds)."""
        with self._lock("images"):
            layers = {n for n in _listdir(self.root.layers) if len(n) == 64 and _is_hex(n)}
            blobs = set(_listdir(self.root.blobs))
            removed = self._sweep(layers, blobs)
            self._clean_links()
            return removed

    def _clean_links(self) -> None:
        """Drop short links whose layer is gone. Images lock held."""
        from .layers import links_dir

        ldir = links_dir(self.root.layers)
        for name in _listdir(ldir):
            path = os.path.join(ldir, name)
            if not os.path.exists(path):
                _unlink(path)

    def _image_objects(self, hexid: str) -> tuple[set[str], set[str]]:
        """(layer hexes, blob hexes) an image refers to."""
        layers: set[str] = set()
        blobs = {hexid}
        try:
            with open(self._config_path(hexid), "rb") as f:
                config = json.loads(f.read())
            layers = {_hex(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []}
        except (OSError, ValueError):
            pass
        meta = read_json(self._meta_path(hexid), {}) or {}
        manifest = meta.get("manifest")
        if manifest:
            blobs.add(_hex(manifest))
            try:
                with open(self.blob_path(manifest), "rb") as f:
                    m = json.loads(f.read())
                blobs.update(_hex(d["digest"]) for d in m.get("layers") or [])
                if m.get("config", {}).get("digest"):
                    blobs.add(_hex(m["config"]["digest"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return layers, blobs

    def _sweep(self, layers: Iterable[str], blobs: Iterable[str]) -> list[str]:
        """Delete the given layers/blobs unless an image uses or a process holds them.

        Must be called with the images lock held. Returns the removed layer hexes.
        """
        keep_layers, keep_blobs = set(), set()
        for h in self._ids():
            ls, bs = self._image_objects(h)
            keep_layers |= ls
            keep_blobs |= bs
        held = self._held()
        removed = []
        for h in sorted(set(layers) - keep_layers - held):
            src = os.path.join(self.root.layers, h)
            if not os.path.isdir(src):
                continue
            dead = os.path.join(self.root.tmp, f"img-gc-{os.getpid()}-{h}")
            os.makedirs(self.root.tmp, exist_ok=True)
            from .layers import remove_link

            remove_link(self.root.layers, h)
            os.rename(src, dead)  # atomic: the layer is either complete or gone
            removed.append(h)
            from .tarsafe import rmtree

            rmtree(dead)
        for h in set(blobs) - keep_blobs - held:
            _unlink(os.path.join(self.root.blobs, h))
        self._clean_tmp()
        return removed

    def _clean_tmp(self) -> None:
        """Remove temp files and dirs left by dead processes."""
        for name in _listdir(self.root.tmp):
            parts = name.split("-")
            if len(parts) < 3 or parts[0] != "img" or not parts[2].isdigit():
                continue
            if _alive(int(parts[2])):
                continue
            path = os.path.join(self.root.tmp, name)
            if os.path.isdir(path) and not os.path.islink(path):
                from .tarsafe import rmtree

                rmtree(path)
            else:
                _unlink(path)

    # ------------------------------------------------------------ holds

    def _holds_dir(self) -> str:
        return os.path.join(self.root.locks, "image-holds")

    def _hold(self, hexes: Iterable[str]) -> str:
        """Protect layers/blobs from collection until released. Images lock held."""
        self._seq += 1
        token = f"{os.getpid()}.{self._seq}"
        d = self._holds_dir()
        os.makedirs(d, exist_ok=True)
        for h in set(hexes):
            with open(os.path.join(d, f"{h}.{token}"), "wb"):
                pass
        return token

    def _unhold(self, token: str, hexes: Iterable[str]) -> None:
        for h in set(hexes):
            _unlink(os.path.join(self._holds_dir(), f"{h}.{token}"))

    def release(self, layers: Iterable[LayerRecord]) -> None:
        """Drop the holds of layers that will not be used (e.g. a failed import)."""
        for layer in layers:
            if layer.hold:
                self._unhold(layer.hold, (_hex(layer.diff_id), _hex(layer.blob_digest)))
                layer.hold = ""

    def _held(self) -> set[str]:
        held = set()
        d = self._holds_dir()
        for name in _listdir(d):
            parts = name.split(".")
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            if _alive(int(parts[1])):
                held.add(parts[0])
            else:
                _unlink(os.path.join(d, name))
        return held

    # ------------------------------------------------------------ adding

    def add_layer_from_tar(self, src: str | Segment | BinaryIO, source_name: str | None = None) -> LayerRecord:
        """Store a layer from a tar (path, tarsafe.Segment or binary file; gzip or not).

        A path or Segment holding an uncompressed tar is copied in the kernel
        and hashed once (its blob digest is its diff_id).

        The blob is kept exactly as given; the layer is unpacked once per
        diff_id. Nothing is left behind when the archive is rejected.
        """
        import tempfile

        from . import tarsafe

        name = source_name or (src if isinstance(src, str) else "archive")
        self.root.ensure()
        sp = tarsafe.spool_archive(src, self.root.tmp, name)
        tmpdir = None
        dhex, bhex = _hex(sp.diff_id), _hex(sp.blob_digest)
        try:
            with self._lock("images"):
                token = self._hold((dhex, bhex))
            try:
                target = self.layer_dir(sp.diff_id)
                if os.path.isdir(target):
                    size = tarsafe.layer_size(sp.tar_path, name)
                else:
                    tmpdir = tempfile.mkdtemp(prefix=f"img-layer-{os.getpid()}-", dir=self.root.tmp)
                    size = tarsafe.extract_layer(sp.tar_path, tmpdir, name)
                    try:
                        os.rename(tmpdir, target)
                        tmpdir = None
                    except OSError:
                        if not os.path.isdir(target):
                            raise
                        # another process stored the same layer first: keep theirs
                from .layers import ensure_link

                ensure_link(self.root.layers, dhex)
                blob = self.blob_path(sp.blob_digest)
                if not os.path.exists(blob):
                    os.chmod(sp.blob_path, 0o644)
                    os.rename(sp.blob_path, blob)
            except BaseException:
                self._unhold(token, (dhex, bhex))
                raise
        finally:
            sp.discard()
            if tmpdir is not None:
                tarsafe.rmtree(tmpdir)
        return LayerRecord(diff_id=sp.diff_id, blob_digest=sp.blob_digest,
                           blob_size=sp.blob_size, media_type=sp.media_type,
                           size=size, hold=token)

    def add_image(self, config: dict | bytes, layers: list[LayerRecord],
                  ref: str | None = None, manifest: bytes | None = None) -> Image:
        """Store an image made of ``layers`` (lowest first) and return it.

        ``config`` is the OCI image config: a dict (its rootfs is filled in from
        ``layers``) or bytes kept exactly (their sha256 is the image id; their
        diff_ids must match). ``ref`` tags the image in the same step.
        ``manifest`` keeps a given manifest (e.g. a registry's) instead of
        writing an OCI one. Releases the layers' holds.
        """
        import hashlib

        from .reference import normalize_tag

        diff_ids = [layer.diff_id for layer in layers]
        if isinstance(config, (bytes, bytearray)):
            cbytes = bytes(config)
            try:
                cfg = json.loads(cbytes)
            except ValueError as e:
                raise InvalidArgument(f"invalid image config: {e}") from None
            if list((cfg.get("rootfs") or {}).get("diff_ids") or []) != diff_ids:
                raise InvalidArgument("invalid image config: rootfs.diff_ids do not match the layers")
        else:
            cfg = dict(config)
            cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            cbytes = json.dumps(cfg).encode()
        key = normalize_tag(ref) if ref else None
        hexid = hashlib.sha256(cbytes).hexdigest()
        if manifest is None:
            manifest = json.dumps({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": "sha256:" + hexid,
                           "size": len(cbytes)},
                "layers": [{"mediaType": layer.media_type, "digest": layer.blob_digest,
                            "size": layer.blob_size} for layer in layers],
            }).encode()
        mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.root.ensure()
        try:
            with self._lock("images"):
                for layer in layers:
                    if not os.path.isdir(self.layer_dir(layer.diff_id)):
                        raise SkiffError(f"layer {layer.diff_id} is missing from the store")
                existed = self._exists(hexid) and os.path.exists(self._meta_path(hexid))
                if not existed:
                    self._put_blob(hexid, cbytes)
                    self._put_blob(_hex(mdigest), manifest)
                    write_json(self._meta_path(hexid), {
                        "manifest": mdigest, "created": utc_now(),
                        "size": sum(layer.size for layer in layers),
                        "layer_sizes": [layer.size for layer in layers],
                    })
                    atomic_write(self._config_path(hexid), cbytes)
                if key:
                    with self._lock("refs"):
                        refs = self._read_refs()
                        refs[key] = "sha256:" + hexid
                        self._write_refs(refs)
                self.release(layers)
                if existed:  # blobs of this copy that the stored image does not use
                    self._sweep((), {_hex(layer.blob_digest) for layer in layers})
                return self._load(hexid)
        except BaseException:
            self.release(layers)
            raise

    def _put_blob(self, hexdigest: str, data: bytes) -> None:
        path = os.path.join(self.root.blobs, hexdigest)
        if not os.path.exists(path):
            atomic_write(path, data)


def tree_size(path: str) -> int:
    """Sum of the sizes of the regular files under ``path`` (what docker reports)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        if st.st_nlink > 1:
                            key = (st.st_dev, st.st_ino)
                            if key in seen:
                                continue
                            seen.add(key)
                        total += st.st_size
                except OSError:
                    continue
    return total


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epoch(created: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (0 when unparsable)."""
    from datetime import datetime

    s = created.strip()
    if not s:
        return 0.0
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if "." in s:  # datetime takes at most 6 fractional digits
        head, _, tail = s.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        s = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return 0.0
    if dt.tzinfo is None:
        from datetime import timezone

        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
