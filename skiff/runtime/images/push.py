"""``skiff push``: an image of the store to a registry, byte for byte.

Blobs are sent exactly as stored (compressed as they were received, or the
uncompressed tar of an imported layer), then the config, then the stored
manifest bytes, so the registry's digest is the store's. Blobs the registry
has (HEAD 200) are skipped; small blobs go in one PUT after the POST, large
ones in PATCH chunks with Content-Range; Location URLs are followed as given.
"""

from __future__ import annotations

import os
import sys

from skiff.errors import SkiffError

from .reference import parse_reference
from .registry import MEDIA_OCI_MANIFEST, RegistryError, open_registry

CHUNK_THRESHOLD = 16 << 20
CHUNK_SIZE = 64 << 20


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _push_layer(store, reg, name: str, path: str, desc: dict, out, progress,
                chunk_threshold: int, chunk_size: int) -> None:
    digest = desc["digest"]
    short = _short(digest)
    if reg.blob_exists(path, digest):
        progress.task(short, "Layer already exists", total=desc.get("size")).done(
            f"{short}: Layer already exists")
        return
    blob = store.blob_path(digest)
    try:
        f = open(blob, "rb")
    except FileNotFoundError:
        raise SkiffError(f"layer {digest} of {name} is missing from the store") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if desc.get("size") is not None and int(desc["size"]) != size:
            raise SkiffError(f"layer {digest}: the store has {size} bytes, the manifest says {desc['size']}")
        if not progress.bars:
            out.write(f"{short}: Preparing\n")
            out.flush()
        task = progress.task(short, "Pushing", total=size)
        sent = [0]

        def advance(offset: int) -> None:
            task.advance(offset - sent[0])
            sent[0] = offset

        reg.upload_blob(path, digest, f, size, chunk_size if size > chunk_threshold else size,
                        progress=advance if progress.bars else None)
    task.done(f"{short}: Pushed")


def push(store, name: str, insecure: bool = False, out=None,
         chunk_threshold: int = CHUNK_THRESHOLD, chunk_size: int = CHUNK_SIZE,
         bars: bool | None = None) -> str:
    """Push the image named ``name``; returns the manifest digest.

    Layers: a Rich bar each when ``bars`` (None: when stderr or stdout is a
    terminal; with an ``out`` given, when it is one), else the plain lines
    ("<id>: Preparing", "<id>: Pushed", "<id>: Layer already exists").
    """
    from skiff.runtime import fastjson as json

    from .pull import open_progress

    err = None
    if out is None:
        out, err = sys.stdout, sys.stderr
    ref = parse_reference(name)
    if ref.digest:
        raise SkiffError(f"cannot push a digest reference: {name}")
    try:
        image = store.resolve(str(ref))
    except SkiffError:
        raise SkiffError(f"An image does not exist locally with the tag: {ref.name}", 1) from None
    if not image.manifest_digest:
        raise SkiffError(f"image {name} has no manifest in the store")
    with open(store.blob_path(image.manifest_digest), "rb") as f:
        mbytes = f.read()
    manifest = json.loads(mbytes)
    mtype = manifest.get("mediaType") or MEDIA_OCI_MANIFEST
    config = store.config_bytes(image.id)
    cdesc = manifest.get("config") or {}
    if cdesc.get("digest") != image.id:
        raise SkiffError(f"image {name}: the stored manifest names config {cdesc.get('digest')}, "
                         f"not {image.id}")

    domain, path = ref.domain, ref.path
    out.write(f"The push refers to repository [{ref.name if domain != 'docker.io' else 'docker.io/' + path}]\n")
    out.flush()
    reg = open_registry(domain, store.root, insecure, f"repository:{path}:pull,push")
    try:
        # layers, topmost first as docker prints them
        with open_progress(out, bars, err) as progress:
            for desc in reversed(manifest.get("layers") or []):
                _push_layer(store, reg, name, path, desc, out, progress, chunk_threshold, chunk_size)
        if not reg.blob_exists(path, image.id):
            import tempfile
            with tempfile.TemporaryFile() as f:
                f.write(config)
                f.flush()
                reg.upload_blob(path, image.id, f, len(config), len(config))
        import hashlib
        mdigest = "sha256:" + hashlib.sha256(mbytes).hexdigest()
        got = reg.put_manifest(path, ref.tag or "latest", mbytes, mtype)
        if got and got != mdigest:
            raise RegistryError(f"the registry stored the manifest as {got}, expected {mdigest}")
        out.write(f"{ref.tag}: digest: {mdigest} size: {len(mbytes)}\n")
        out.flush()
        return mdigest
    finally:
        reg.close()
