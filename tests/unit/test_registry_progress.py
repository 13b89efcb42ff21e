"""pull/push layer progress: plain docker-like lines off a terminal, Rich bars on one.

No registry and no terminal needed: a fake registry object stands in for
open_registry, and "terminals" are StringIOs whose isatty says True.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images import pull as pull_mod
from skiff.runtime.images import push as push_mod
from skiff.runtime.images.pull import PrefetchReader, isatty, open_progress, pull
from skiff.runtime.images.push import push
from skiff.runtime.images.registry import MEDIA_OCI_MANIFEST
from skiff.runtime.images.store import ImageStore
from skiff.runtime.root import Root


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class NoTTY(io.StringIO):
    def isatty(self) -> bool:
        return False


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _layer(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


class FakeRegistry:
    """get_manifest/get_blob/blob_exists/upload_blob/put_manifest over dicts."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.uploads: list[str] = []

    def add_image(self, tag: str, layers: list[bytes]) -> tuple[str, list[str]]:
        digests = [_sha(b) for b in layers]
        for d, b in zip(digests, layers):
            self.blobs[d] = b
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": digests}}).encode()
        self.blobs[_sha(config)] = config
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                        "size": len(b)} for d, b in zip(digests, layers)],
        }).encode()
        self.manifests[tag] = manifest
        return _sha(manifest), digests

    # the Registry API used by pull and push
    def get_manifest(self, path, reference):
        data = self.manifests[reference]
        return data, MEDIA_OCI_MANIFEST, _sha(data)

    def get_blob(self, path, digest):
        return io.BytesIO(self.blobs[digest])

    def blob_exists(self, path, digest):
        return digest in self.blobs

    def upload_blob(self, path, digest, f, size, chunk_size, progress=None):
        import os
        data = os.pread(f.fileno(), size, 0)  # as sendfile: from offset 0, whatever f's position
        assert _sha(data) == digest
        self.blobs[digest] = data
        self.uploads.append(digest)
        if progress:
            progress(size // 2)
            progress(size)

    def put_manifest(self, path, reference, data, media_type):
        self.manifests[reference] = data
        return _sha(data)

    def close(self):
        pass


@pytest.fixture
def reg(monkeypatch):
    r = FakeRegistry()
    monkeypatch.setattr(pull_mod, "open_registry", lambda *a, **k: r)
    monkeypatch.setattr(push_mod, "open_registry", lambda *a, **k: r)
    return r


@pytest.fixture
def store(tmp_path):
    return ImageStore(Root(str(tmp_path / "root")))


def _short(d: str) -> str:
    return d[7:19]


# ---------------------------------------------------------------- mode choice

def test_isatty_tolerates_odd_streams():
    class Closed:
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    assert isatty(FakeTTY()) and not isatty(NoTTY()) and not isatty(None)
    assert not isatty(object()) and not isatty(Closed())


def test_bars_only_on_a_terminal():
    out, err = NoTTY(), NoTTY()
    p = open_progress(out, None, err)
    assert not p.bars and p.stream is out
    # stderr a terminal: bars there, stdout left to the plain lines
    err = FakeTTY()
    p = open_progress(out, None, err)
    assert p.bars and p.stream is err
    # stdout alone a terminal: bars on stdout
    out = FakeTTY()
    p = open_progress(out, None, NoTTY())
    assert p.bars and p.stream is out
    # forced either way
    assert not open_progress(FakeTTY(), False, FakeTTY()).bars
    assert open_progress(NoTTY(), True).bars


# ---------------------------------------------------------------- pull

def test_pull_plain_lines(reg, store):
    mdigest, layers = reg.add_image("1", [_layer("a", b"a" * 5000), _layer("b", b"b" * 70000)])
    out = NoTTY()
    pull(store, "127.0.0.1:5000/x/y:1", out=out)
    assert out.getvalue().splitlines() == [
        "1: Pulling from x/y",
        f"{_short(layers[0])}: Pulling fs layer",
        f"{_short(layers[0])}: Pull complete",
        f"{_short(layers[1])}: Pulling fs layer",
        f"{_short(layers[1])}: Pull complete",
        f"Digest: {mdigest}",
        "Status: Downloaded newer image for 127.0.0.1:5000/x/y:1",
        "127.0.0.1:5000/x/y:1",
    ]
    out = NoTTY()
    pull(store, "127.0.0.1:5000/x/y:1", out=out)
    lines = out.getvalue().splitlines()
    assert lines[1:3] == [f"{_short(layers[0])}: Already exists", f"{_short(layers[1])}: Already exists"]
    assert lines[4] == "Status: Image is up to date for 127.0.0.1:5000/x/y:1"


def test_pull_bars_on_a_terminal(reg, store, monkeypatch):
    mdigest, layers = reg.add_image("1", [_layer("a", b"a" * 300_000)])
    out, err = NoTTY(), FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    pull(store, "127.0.0.1:5000/x/y:1")  # as the CLI calls it
    lines = out.getvalue().splitlines()
    # stdout (a pipe here) keeps the summary lines, without the per-layer ones
    assert lines == ["1: Pulling from x/y", f"Digest: {mdigest}",
                     "Status: Downloaded newer image for 127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1"]
    bar = err.getvalue()
    assert f"{_short(layers[0])}: Downloading" in bar and "Pull complete" not in bar
    assert store.resolve("127.0.0.1:5000/x/y:1").manifest_digest == mdigest


def test_pull_bad_blob_with_bars_stores_nothing(reg, store):
    _, layers = reg.add_image("1", [_layer("a", b"a" * 3000)])
    reg.blobs[layers[0]] = _layer("a", b"A" * 3000)
    with pytest.raises(SkiffError, match="verification failed"):
        pull(store, "127.0.0.1:5000/x/y:1", out=FakeTTY())
    assert store.list() == []


def test_prefetch_reader_sizes():
    data = bytes(range(256)) * 20000  # ~5 MB
    src = io.BytesIO(data)
    r = PrefetchReader(src, chunk=1 << 20)
    got = [r.read(7), r.read(1 << 20), r.read(3 << 20), r.read(0), r.read()]
    assert b"".join(got) == data and r.read(10) == b"" and r.read() == b""
    r.close()


# ---------------------------------------------------------------- push

def test_push_plain_lines(reg, store):
    mdigest, layers = reg.add_image("1", [_layer("a", b"a" * 5000), _layer("b", b"b" * 9000)])
    pull(store, "127.0.0.1:5000/x/y:1", out=NoTTY())
    del reg.blobs[layers[1]]  # the registry lacks the top layer only
    out = NoTTY()
    got = push(store, "127.0.0.1:5000/x/y:1", out=out)
    size = len(reg.manifests["1"])
    assert got == mdigest
    assert out.getvalue().splitlines() == [
        "The push refers to repository [127.0.0.1:5000/x/y]",
        f"{_short(layers[1])}: Preparing",
        f"{_short(layers[1])}: Pushed",
        f"{_short(layers[0])}: Layer already exists",
        f"1: digest: {mdigest} size: {size}",
    ]
    assert re.fullmatch(r"1: digest: sha256:[0-9a-f]{64} size: \d+", out.getvalue().splitlines()[-1])


def test_push_bars_on_a_terminal(reg, store, monkeypatch):
    mdigest, layers = reg.add_image("1", [_layer("a", b"a" * 200_000)])
    pull(store, "127.0.0.1:5000/x/y:1", out=NoTTY())
    reg.blobs.clear()
    out, err = NoTTY(), FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    push(store, "127.0.0.1:5000/x/y:1")
    assert reg.uploads[0] == layers[0]
    assert out.getvalue().splitlines() == ["The push refers to repository [127.0.0.1:5000/x/y]",
                                           f"1: digest: {mdigest} size: {len(reg.manifests['1'])}"]
    assert f"{_short(layers[0])}: Pushing" in err.getvalue()
