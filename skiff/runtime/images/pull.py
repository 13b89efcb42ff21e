"""``skiff pull``: an image from a registry into the store, every digest verified.

The manifest (by digest: its sha256 must match; by tag: the registry's
Docker-Content-Digest must match), the config and every blob are hashed while
they stream. A blob is streamed straight into the store's spooler through a
reader that checks size and digest at its end, so a corrupted blob raises
before anything of it is kept.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys

from skiff.errors import SkiffError

from .reference import parse_reference
from .registry import INDEX_TYPES, MANIFEST_TYPES, RegistryError, open_registry


def host_platform() -> tuple[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x"}.get(platform.machine(), "amd64")
    return "linux", arch


class VerifyingReader:
    """Reads a blob response, checking its size and sha256 when it ends."""

    def __init__(self, resp, digest: str, size: int | None, progress=None, task=None):
        self.resp = resp
        self.digest = digest
        self.size = size
        self.hash = hashlib.new(digest.split(":", 1)[0]) if ":" in digest else hashlib.sha256()
        self.count = 0
        self.progress = progress
        self.task = task
        self.done = False

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        data = self.resp.read(n if n and n > 0 else 1 << 20)
        if data:
            self.count += len(data)
            if self.size is not None and self.count > self.size:
                raise SkiffError(f"blob {self.digest}: the registry sent more than its {self.size} bytes")
            self.hash.update(data)
            if self.progress:
                self.progress(self.count)
            if self.task is not None:
                self.task.advance(len(data))
            return data
        self.done = True
        if self.size is not None and self.count != self.size:
            raise SkiffError(f"blob {self.digest}: short read ({self.count} of {self.size} bytes)")
        got = self.hash.name + ":" + self.hash.hexdigest()
        if got != self.digest:
            raise SkiffError(f"filesystem layer verification failed for digest {self.digest} (got {got})")
        return b""


class PrefetchReader:
    """Reads ``src`` (a VerifyingReader) in a thread, a few chunks ahead of the consumer.

    The network receive and the digest check (hashlib drops the GIL) overlap with the
    store's own hashing, writing and unpacking. An error is raised in the consumer.
    A read of at least one chunk hands the thread's chunk over as is (no copy).
    """

    def __init__(self, src, depth: int = 8, chunk: int = 1 << 20):
        import queue
        import threading

        self.q: queue.Queue = queue.Queue(depth)
        self.buf = b""
        self.pos = 0  # how much of buf was handed out
        self.eof = False
        self.stop = False

        def run() -> None:
            try:
                while not self.stop:
                    data = src.read(chunk)
                    self.q.put(data)
                    if not data:
                        return
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                self.q.put(e)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def _next(self) -> bytes:
        item = self.q.get()
        if isinstance(item, BaseException):
            self.eof = True
            raise item
        if not item:
            self.eof = True
        return item

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            if self.pos >= len(self.buf):
                if self.eof or n == 0:
                    return b""
                self.buf, self.pos = self._next(), 0
            if self.pos == 0 and len(self.buf) <= n:
                data, self.buf = self.buf, b""
                return data
            data = self.buf[self.pos:self.pos + n]
            self.pos += len(data)
            return data
        parts = [self.buf[self.pos:]]
        self.buf, self.pos = b"", 0
        while not self.eof:
            parts.append(self._next())
        return b"".join(parts)

    def close(self) -> None:
        self.stop = True
        while self.thread.is_alive():
            try:
                self.q.get(timeout=0.1)
            except Exception:  # noqa: BLE001 - queue.Empty
                pass


def isatty(stream) -> bool:
    """Whether ``stream`` is a terminal (False for anything without a working isatty)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def open_progress(out, bars: bool | None = None, err=None):
    """The layer Progress of a pull or push (see progress.py).

    Bars when ``bars`` is True, or (``bars`` None) when ``err`` or ``out`` is a
    terminal: they are drawn on the terminal one, stderr first. Otherwise
    plain lines on ``out``, the docker-like lines scripts read.
    """
    from .progress import Progress

    if bars is None:
        bars = isatty(err) or isatty(out)
    if bars:
        stream = err if isatty(err) else out
        return Progress(stream, bars=True)
    return Progress(out, bars=False)


def _check_digest(data: bytes, digest: str, what: str) -> None:
    algo, _, want = digest.partition(":")
    if algo not in ("sha256", "sha512") or hashlib.new(algo, data).hexdigest() != want:
        raise SkiffError(f"{what} verification failed: digest {digest} does not match the content")


def _choose(index: dict, want: tuple[str, str]) -> dict:
    os_, arch = want
    for m in index.get("manifests") or []:
        p = m.get("platform") or {}
        if p.get("os") == os_ and p.get("architecture") == arch:
            return m
    found = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                    for m in index.get("manifests") or []})
    raise RegistryError(f"no matching manifest for {os_}/{arch} in the manifest list entries"
                        f" (found: {', '.join(found) or 'none'})")


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _existing_layer_size(store, diff_id: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(store.layer_dir(diff_id)):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size
    return total


def _pull_layer(store, reg, ref, path: str, desc: dict, diff_id: str, out, progress):
    """One layer into the store (or found there); its LayerRecord, holding it."""
    from .store import LayerRecord

    short = _short(desc["digest"])
    size = desc.get("size")
    blob = store.blob_path(desc["digest"])
    if os.path.isdir(store.layer_dir(diff_id)) and os.path.exists(blob):
        blob_size = int(size or os.path.getsize(blob))
        progress.task(short, "Already exists", total=blob_size).done(f"{short}: Already exists")
        return LayerRecord(diff_id=diff_id, blob_digest=desc["digest"], blob_size=blob_size,
                           media_type=desc.get("mediaType", ""),
                           size=_existing_layer_size(store, diff_id))
    if not progress.bars:
        out.write(f"{short}: Pulling fs layer\n")
        out.flush()
    task = progress.task(short, "Downloading", total=int(size) if size is not None else None)
    r = reg.get_blob(path, desc["digest"])
    reader = PrefetchReader(VerifyingReader(r, desc["digest"], size,
                                            task=task if progress.bars else None))
    try:
        rec = store.add_layer_from_tar(reader, f"{ref.name} layer {desc['digest']}")
    except BaseException:
        reader.stop = True
        r.close()
        reg.close()  # the connection is mid-body
        reader.close()
        raise
    reader.close()
    if rec.diff_id != diff_id:
        store.release([rec])
        raise SkiffError(f"layer {desc['digest']}: its content has diff_id {rec.diff_id}, "
                         f"the config says {diff_id}")
    task.done(f"{short}: Pull complete")
    return rec


def pull(store, name: str, insecure: bool = False, out=None, platform_: tuple[str, str] | None = None,
         bars: bool | None = None):
    """Pull ``name`` into ``store``; returns the Image. Prints docker's lines to ``out``.

    Layers: a Rich bar each when ``bars`` (None: when stderr or stdout is a
    terminal; with an ``out`` given, when it is one), else the plain lines
    ("<id>: Pulling fs layer", "<id>: Pull complete").
    """
    from skiff.runtime import fastjson as json

    err = None
    if out is None:
        out, err = sys.stdout, sys.stderr
    ref = parse_reference(name)
    domain, path = ref.domain, ref.path
    reg = open_registry(domain, store.root, insecure, f"repository:{path}:pull")
    try:
        reference = ref.digest or ref.tag
        if ref.digest:
            out.write(f"{ref.name}@{ref.digest}: Pulling from {path}\n")
        else:
            out.write(f"{ref.tag}: Pulling from {path}\n")
        out.flush()
        try:
            data, mtype, header_digest = reg.get_manifest(path, reference)
        except RegistryError as e:
            if e.status == 404:
                if e.code == "MANIFEST_UNKNOWN":
                    raise RegistryError(f"manifest unknown: manifest for {name} not found", 404, e.code) from None
                raise RegistryError(f"{e} ({name})", 404, e.code) from None
            raise
        if ref.digest:
            _check_digest(data, ref.digest, "manifest")
            manifest_digest = ref.digest
        else:
            if header_digest:
                _check_digest(data, header_digest, "manifest")
            manifest_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if mtype in INDEX_TYPES:
            entry = _choose(json.loads(data), platform_ or host_platform())
            data, mtype, _ = reg.get_manifest(path, entry["digest"])
            _check_digest(data, entry["digest"], "manifest")
            manifest_digest = entry["digest"]
        manifest = json.loads(data)
        mtype = manifest.get("mediaType") or mtype
        if mtype not in MANIFEST_TYPES:
            raise RegistryError(f"unsupported manifest media type {mtype or '(none)'} for {name}")
        cdesc = manifest.get("config") or {}
        layers_desc = manifest.get("layers") or []

        # the config: small, read whole and verified
        r = reg.get_blob(path, cdesc["digest"])
        config = r.read()
        _check_digest(config, cdesc["digest"], "config")
        cfg = json.loads(config)
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers_desc):
            raise RegistryError(f"invalid image {name}: {len(layers_desc)} layers but "
                                f"{len(diff_ids)} diff_ids in the config")

        image_id = cdesc["digest"]
        up_to_date = False
        try:
            existing = store.resolve(image_id)
            up_to_date = existing.manifest_digest == manifest_digest
        except SkiffError:
            pass

        records: list = []
        try:
            with open_progress(out, bars, err) as progress:
                for desc, diff_id in zip(layers_desc, diff_ids):
                    records.append(_pull_layer(store, reg, ref, path, desc, diff_id, out, progress))
            tag = str(ref) if not ref.digest else None
            if ref.digest and ref.tag:
                tag = f"{ref.name}:{ref.tag}"
            image = store.add_image(config, records, tag, manifest=data)
        except BaseException:
            store.release(records)
            raise
        out.write(f"Digest: {manifest_digest}\n")
        shown = f"{ref.name}@{ref.digest}" if ref.digest else str(ref)
        if up_to_date:
            out.write(f"Status: Image is up to date for {shown}\n")
        else:
            out.write(f"Status: Downloaded newer image for {shown}\n")
        out.write(("docker.io/" + path + shown[len(ref.name):] if domain == "docker.io" else shown) + "\n")
        out.flush()
        return image
    finally:
        reg.close()
