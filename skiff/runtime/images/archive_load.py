"""``skiff load``: read docker-archive and OCI layout tars into the store.

The archive is never unpacked by member name: members are read in place
(from the file given, or from one spooled copy in the store's tmp when the
input is a pipe or a gzip-compressed archive). Every member name is checked
first (no absolute names, no ``..``, no symlinks out of the archive); then
manifests and configs are parsed and their digests checked; then each layer
goes through the store (``add_layer_from_tar``: its own safe extraction) and
its diff_id (and, for OCI blobs, its blob digest and size) must match; only
when every layer of every image is good are the images added. On any error
the layers this load added are released and collected: nothing is
half-loaded.
"""

from __future__ import annotations

import os
import posixpath
import tarfile

from skiff.errors import InvalidArgument, SkiffError
from skiff.runtime import fastjson as json

from .archive import (ANN_CONTAINERD_NAME, ANN_REF_NAME, INDEX_TYPES, MANIFEST_TYPES,
                      sha256_hex)
from .tarsafe import _normalize

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
_MAX_JSON = 64 << 20
_UNSUPPORTED = ((b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


class ArchiveError(SkiffError):
    pass


class _LayerPlan:
    def __init__(self, member, diff_id: str, digest: str | None = None, size: int | None = None):
        self.member, self.diff_id, self.digest, self.size = member, diff_id, digest, size


class _ImagePlan:
    def __init__(self, config: bytes, layers: list[_LayerPlan], refs: list[str],
                 manifest: bytes | None):
        self.config, self.layers, self.refs, self.manifest = config, layers, refs, manifest


# ---------------------------------------------------------------- the archive as a tar

class Archive:
    """Checked members of an image archive, looked up by normalized name."""

    def __init__(self, tar: tarfile.TarFile, source: str):
        self.tar, self.source = tar, source
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tar.getmembers():
            path = _normalize(m.name)
            if path is None:
                raise self.error(m.name, "leads out of the archive")
            if m.issym():
                target = m.linkname
                if not target or target.startswith("/"):
                    raise self.error(m.name, f'is a symlink to "{target}", outside the archive')
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                if resolved == ".." or resolved.startswith("../"):
                    raise self.error(m.name, f'is a symlink to "{target}", outside the archive')
            elif m.islnk():
                if _normalize(m.linkname) in (None, ""):
                    raise self.error(m.name, f'is a hard link to "{m.linkname}", outside the archive')
            elif not (m.isreg() or m.isdir()):
                raise self.error(m.name, "is not a regular file, directory or link")
            self.members[path] = m

    def error(self, member: str, why: str) -> ArchiveError:
        return ArchiveError(f'invalid archive {self.source}: member "{member}" {why}')

    def has(self, name: str) -> bool:
        try:
            return self.lookup(name).isreg()
        except ArchiveError:
            return False

    def lookup(self, name: str) -> tarfile.TarInfo:
        """The regular member ``name`` refers to, following links inside the archive."""
        path = _normalize(name)
        if path is None:
            raise ArchiveError(f'invalid archive {self.source}: "{name}" leads out of the archive')
        for _ in range(32):
            m = self.members.get(path)
            if m is None:
                raise ArchiveError(f'invalid archive {self.source}: member "{name}" is missing')
            if m.issym():
                path = _normalize(posixpath.join(posixpath.dirname(path), m.linkname))
            elif m.islnk():
                path = _normalize(m.linkname)
            elif m.isreg():
                return m
            else:
                raise self.error(name, "is not a file")
            if path is None:
                raise self.error(name, "leads out of the archive")
        raise self.error(name, "has too many levels of links")

    def read(self, name: str, limit: int = _MAX_JSON) -> bytes:
        m = self.lookup(name)
        if m.size > limit:
            raise self.error(name, "is too large")
        f = self.tar.extractfile(m)
        return f.read()

    def json(self, name: str, data: bytes | None = None):
        raw = self.read(name) if data is None else data
        try:
            return json.loads(raw)
        except ValueError as e:
            raise self.error(name, f"is not valid JSON ({e})") from None




def _is_digest(d: object) -> bool:
    return isinstance(d, str) and d.startswith("sha256:") and len(d) == 71 and set(d[7:]) <= _HEX


# ---------------------------------------------------------------- formats

def detect_format(archive: Archive) -> str:
    """"oci", "docker" or "legacy"."""
    if archive.has("oci-layout") and archive.has("index.json"):
        return "oci"
    if archive.has("manifest.json"):
        return "docker"
    if archive.has("repositories"):
        return "legacy"
    raise ArchiveError(f"invalid archive {archive.source}: not an image archive "
                       "(no manifest.json, and no oci-layout with index.json)")


def parse_docker(archive: Archive) -> list[_ImagePlan]:
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise archive.error("manifest.json", "is not a list of images")
    plans = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers") or [], list):
            raise archive.error("manifest.json", "has an entry without Config or Layers")
        cname = entry["Config"]
        config = archive.read(cname)
        base = posixpath.basename(cname)
        base = base[:-5] if base.endswith(".json") else base
        if len(base) == 64 and set(base) <= _HEX and sha256_hex(config) != base:
            raise archive.error(cname, f"does not match its digest sha256:{base}")
        diff_ids = _diff_ids(archive, cname, config)
        layers = entry.get("Layers") or []
        if len(layers) != len(diff_ids):
            raise archive.error(cname, f"lists {len(diff_ids)} diff_ids for {len(layers)} layers")
        plan_layers = []
        for lname, diff_id in zip(layers, diff_ids):
            if not isinstance(lname, str):
                raise archive.error("manifest.json", "has a layer that is not a file name")
            archive.lookup(lname)
            plan_layers.append(_LayerPlan(lname, diff_id))
        refs = [r for r in entry.get("RepoTags") or [] if isinstance(r, str)]
        plans.append(_ImagePlan(config, plan_layers, refs, None))
    return plans


def _diff_ids(archive: Archive, cname: str, config: bytes) -> list[str]:
    cfg = archive.json(cname, config)
    if not isinstance(cfg, dict):
        raise archive.error(cname, "is not an image config")
    diff_ids = (cfg.get("rootfs") or {}).get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(_is_digest(d) for d in diff_ids):
        raise archive.error(cname, "has invalid rootfs.diff_ids")
    return diff_ids


def _blob(archive: Archive, desc: dict, what: str) -> tuple[str, bytes]:
    """(member name, bytes) of a small blob, checked against its descriptor."""
    digest = desc.get("digest") if isinstance(desc, dict) else None
    if not _is_digest(digest):
        raise ArchiveError(f"invalid archive {archive.source}: {what} has an invalid digest "
                           f"{digest!r}")
    name = f"blobs/sha256/{digest[7:]}"
    data = archive.read(name)
    if sha256_hex(data) != digest[7:]:
        raise archive.error(name, f"does not match its digest {digest}")
    if "size" in desc and desc["size"] != len(data):
        raise archive.error(name, f"is {len(data)} bytes, its descriptor says {desc['size']}")
    return name, data


def _platform_ok(desc: dict, arch: str) -> int:
    """Preference of an index entry: 2 our platform, 1 unspecified, 0 other."""
    p = desc.get("platform")
    if not isinstance(p, dict):
        return 1
    if p.get("os", "linux") == "linux" and p.get("architecture") == arch:
        return 2
    return 0


def _resolve_manifest(archive: Archive, desc: dict, arch: str, depth: int = 0) -> tuple[str, bytes]:
    """Follow (nested) indexes down to one image manifest; (member, bytes)."""
    if depth > 8:
        raise ArchiveError(f"invalid archive {archive.source}: indexes nested too deeply")
    name, raw = _blob(archive, desc, "index.json")
    m = archive.json(name, raw)
    if not isinstance(m, dict):
        raise archive.error(name, "is not a manifest")
    mt = m.get("mediaType") or desc.get("mediaType")
    if mt in INDEX_TYPES or (mt is None and "manifests" in m):
        choices = [d for d in m.get("manifests") or [] if isinstance(d, dict)]
        best = max(choices, key=lambda d: _platform_ok(d, arch), default=None)
        if best is None or _platform_ok(best, arch) == 0:
            raise archive.error(name, f"has no image for linux/{arch}")
        return _resolve_manifest(archive, best, arch, depth + 1)
    if mt not in MANIFEST_TYPES and mt is not None:
        raise archive.error(name, f"has the unsupported media type {mt}")
    return name, raw


def _names_of(desc: dict) -> list[str]:
    ann = desc.get("annotations") or {}
    if not isinstance(ann, dict):
        return []
    name = ann.get(ANN_CONTAINERD_NAME)
    if isinstance(name, str) and name:
        return [name]
    ref = ann.get(ANN_REF_NAME)
    if isinstance(ref, str) and ref:
        return [ref]
    return []


def parse_oci(archive: Archive) -> list[_ImagePlan]:
    from .importer import host_architecture

    arch = host_architecture()
    index = archive.json("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise archive.error("index.json", "has no manifests")
    by_manifest: dict[str, _ImagePlan] = {}
    plans = []
    for desc in index["manifests"]:
        if not isinstance(desc, dict):
            raise archive.error("index.json", "has an invalid manifest descriptor")
        mname, mraw = _resolve_manifest(archive, desc, arch)
        names = _names_of(desc)
        if mname in by_manifest:
            by_manifest[mname].refs += [n for n in names if n not in by_manifest[mname].refs]
            continue
        m = archive.json(mname, mraw)
        cname, config = _blob(archive, m.get("config") or {}, mname)
        diff_ids = _diff_ids(archive, cname, config)
        descs = m.get("layers") or []
        if not isinstance(descs, list) or len(descs) != len(diff_ids):
            raise archive.error(cname, f"lists {len(diff_ids)} diff_ids for "
                                       f"{len(descs) if isinstance(descs, list) else 0} layers")
        layers = []
        for d, diff_id in zip(descs, diff_ids):
            digest = d.get("digest") if isinstance(d, dict) else None
            if not _is_digest(digest):
                raise archive.error(mname, f"has a layer with an invalid digest {digest!r}")
            lname = f"blobs/sha256/{digest[7:]}"
            archive.lookup(lname)
            size = d.get("size")
            layers.append(_LayerPlan(lname, diff_id, digest, size if isinstance(size, int) else None))
        plan = _ImagePlan(config, layers, names, mraw)
        by_manifest[mname] = plan
        plans.append(plan)
    if not plans:
        raise archive.error("index.json", "lists no images")
    return plans


def _ref_key(archive: Archive, name: str) -> str:
    """The tag a name in an archive stands for (normalized), or an error."""
    from .reference import normalize_tag

    try:
        return normalize_tag(name)
    except InvalidArgument as e:
        raise ArchiveError(f"invalid archive {archive.source}: image name \"{name}\": {e}") from None


# ---------------------------------------------------------------- input

def _open_input(store, src, source_name: str):
    """A seekable uncompressed tar: (path, temp path to remove or None)."""
    import tempfile
    import zlib

    if isinstance(src, str):
        try:
            f = open(src, "rb")
        except OSError as e:
            raise SkiffError(f"cannot read {source_name}: {e.strerror or e}") from None
    else:
        f = src
    tmp = None
    try:
        try:
            seekable = isinstance(src, str) and os.path.isfile(src)
            first = f.read(_CHUNK) if not seekable else f.read(6)
        except OSError as e:
            raise SkiffError(f"cannot read {source_name}: {e.strerror or e}") from None
        if not first:
            raise ArchiveError(f"invalid archive {source_name}: it is empty")
        for magic, kind in _UNSUPPORTED:
            if first.startswith(magic):
                raise ArchiveError(f"invalid archive {source_name}: {kind} compression is not "
                                   "supported (use gzip or an uncompressed tar)")
        gz = first.startswith(b"\x1f\x8b")
        if seekable and not gz:
            return src, None
        if seekable:
            f.seek(0)
            first = f.read(_CHUNK)
        store.root.ensure()
        fd, tmp = tempfile.mkstemp(prefix=f"img-load-{os.getpid()}-", dir=store.root.tmp)
        with os.fdopen(fd, "wb") as out:
            dec = zlib.decompressobj(31) if gz else None
            chunk = first
            while chunk:
                if dec is None:
                    out.write(chunk)
                else:
                    while chunk:
                        try:
                            out.write(dec.decompress(chunk))
                        except zlib.error as e:
                            raise ArchiveError(f"invalid archive {source_name}: corrupt gzip "
                                               f"stream ({e})") from None
                        if dec.eof:
                            chunk = dec.unused_data
                            dec = zlib.decompressobj(31)
                        else:
                            chunk = b""
                chunk = f.read(_CHUNK)
        return tmp, tmp
    except BaseException:
        if tmp:
            _unlink(tmp)
        raise
    finally:
        if isinstance(src, str):
            f.close()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- loading

def read_plans(tar_path: str, source_name: str) -> tuple[tarfile.TarFile, Archive, str, list]:
    try:
        tar = tarfile.open(tar_path, "r:", copybufsize=_CHUNK)
    except tarfile.TarError as e:
        raise ArchiveError(f"invalid archive {source_name}: not a tar archive ({e})") from None
    try:
        archive = Archive(tar, source_name)
        fmt = detect_format(archive)
        if fmt == "oci":
            plans = parse_oci(archive)
        elif fmt == "docker":
            plans = parse_docker(archive)
        else:
            raise ArchiveError(f"invalid archive {source_name}: legacy docker archives without "
                               "manifest.json are not supported")
    except tarfile.TarError as e:
        tar.close()
        raise ArchiveError(f"invalid archive {source_name}: truncated or corrupt tar ({e})") from None
    except BaseException:
        tar.close()
        raise
    return tar, archive, fmt, plans


def load_archive(store, src, source_name: str, progress=None) -> list[str]:
    from .progress import CountingReader

    tar_path, tmp = _open_input(store, src, source_name)
    added = []
    try:
        tar, archive, _fmt, plans = read_plans(tar_path, source_name)
        with tar:
            for plan in plans:  # names are checked before anything is stored
                plan.refs = [_ref_key(archive, r) for r in plan.refs]
            done: dict[tuple[str, str], object] = {}
            records_of = []
            for plan in plans:
                records = []
                for lp in plan.layers:
                    key = (_normalize(lp.member), lp.diff_id)
                    rec = done.get(key)
                    if rec is None:
                        m = archive.lookup(lp.member)
                        task = progress.task(lp.diff_id[7:19], "Loading layer", m.size) \
                            if progress is not None else None
                        if m.isreg() and m.sparse is None:
                            # the layer is read in place: copied and unpacked in the kernel
                            from .tarsafe import Segment

                            rec = store.add_layer_from_tar(
                                Segment(tar_path, m.offset_data, m.size), lp.member)
                            if task is not None:
                                task.advance(m.size)
                        else:
                            reader = CountingReader(tar.extractfile(m), task)
                            rec = store.add_layer_from_tar(reader, lp.member)
                        added.append(rec)
                        _check_layer(archive, lp, rec)
                        if task is not None:
                            task.done()
                        done[key] = rec
                    records.append(rec)
                records_of.append(records)
            lines = []
            for plan, records in zip(plans, records_of):
                image = store.add_image(plan.config, records, ref=plan.refs[0] if plan.refs else None,
                                        manifest=plan.manifest)
                for r in plan.refs[1:]:
                    store.tag(image.id, r)
                lines += [f"Loaded image: {r}" for r in plan.refs] or [f"Loaded image ID: {image.id}"]
            added = []
            return lines
    except tarfile.TarError as e:
        raise ArchiveError(f"invalid archive {source_name}: truncated or corrupt tar ({e})") from None
    finally:
        if added:  # failed half way: drop what this load stored and nothing references
            store.release(added)
            try:
                store.gc()
            except (OSError, SkiffError):
                pass
        if tmp:
            _unlink(tmp)


def _check_layer(archive: Archive, lp: _LayerPlan, rec) -> None:
    if lp.digest is not None and rec.blob_digest != lp.digest:
        raise archive.error(lp.member, f"does not match its digest {lp.digest} "
                                       f"(it is {rec.blob_digest})")
    if lp.size is not None and rec.blob_size != lp.size:
        raise archive.error(lp.member, f"is {rec.blob_size} bytes, its descriptor says {lp.size}")
    if rec.diff_id != lp.diff_id:
        raise archive.error(lp.member, f"does not match the config's diff_id {lp.diff_id} "
                                       f"(its content is {rec.diff_id})")
