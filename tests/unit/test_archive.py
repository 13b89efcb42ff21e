"""save/load archives without root: format detection, manifests, digests, hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images.archive import load, save
from skiff.runtime.images.archive_load import Archive, detect_format, read_plans
from skiff.runtime.images.progress import Progress
from skiff.runtime.images.store import ImageStore
from skiff.runtime.root import Root


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: list[tuple]) -> bytes:
    """entries: (name, bytes) files, (name, None) dirs, (name, "->", target) symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            ti.mtime = 0
            if len(e) == 3:
                ti.type, ti.linkname = tarfile.SYMTYPE, e[2]
                t.addfile(ti)
            elif e[1] is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(e[1]), 0o644
                t.addfile(ti, io.BytesIO(e[1]))
    return buf.getvalue()


LAYER = tar_bytes([("etc", None), ("etc/hello", b"hello\n")])
LAYER2 = tar_bytes([("data", None), ("data/x", b"x" * 3000)])


def config_for(*layers: bytes, **extra) -> bytes:
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}, **extra}
    return json.dumps(cfg).encode()


def docker_archive(images: list[tuple[bytes, list[bytes], list[str]]], *, blobs=None,
                   extra: list[tuple] = ()) -> bytes:
    entries, manifest, seen = [], [], set()
    for config, layers, tags in images:
        cname = sha(config)[7:] + ".json"
        entries.append((cname, config))
        paths = []
        for data in blobs or layers:
            d = sha(data)[7:]
            if d not in seen:
                entries += [(d, None), (f"{d}/layer.tar", data)]
                seen.add(d)
            paths.append(f"{d}/layer.tar")
        manifest.append({"Config": cname, "RepoTags": tags, "Layers": paths})
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    return tar_bytes(entries + list(extra))


def oci_archive(config: bytes, layers: list[bytes], annotations: dict | None = None,
                nested: bool = False, platform: dict | None = None,
                tamper: bytes | None = None) -> bytes:
    blobs = {sha(config): config}
    descs = []
    for data in layers:
        gz = gzip.compress(data, mtime=0)
        blobs[sha(gz)] = tamper if tamper is not None else gz
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": sha(gz), "size": len(gz)})
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": sha(config), "size": len(config)},
                    "layers": descs}).encode()
    blobs[sha(m)] = m
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(m),
            "size": len(m)}
    if nested:
        other = dict(desc, digest="sha256:" + "0" * 64, platform={"architecture": "arm64",
                                                                  "os": "linux"})
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [other, dict(desc, platform=platform or {
                              "architecture": "amd64", "os": "linux"})]}).encode()
        blobs[sha(idx)] = idx
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(idx),
                "size": len(idx)}
    if annotations:
        desc["annotations"] = annotations
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("blobs", None),
               ("blobs/sha256", None)]
    entries += [(f"blobs/sha256/{d[7:]}", b) for d, b in blobs.items()]
    entries.append(("index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()))
    return tar_bytes(entries)


@pytest.fixture
def store(tmp_path):
    return ImageStore(Root(str(tmp_path / "root")))


@pytest.fixture(autouse=True)
def amd64(monkeypatch):
    monkeypatch.setattr("skiff.runtime.images.importer.host_architecture", lambda: "amd64")


def write(tmp_path, data: bytes, name="a.tar") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def empty_store(store) -> None:
    assert store.list() == []
    for d in (store.root.layers, store.root.blobs, store.root.tmp):
        assert not os.path.isdir(d) or os.listdir(d) == [], (d, os.listdir(d))


# ---------------------------------------------------------------- detection and parsing

def test_detect_format(tmp_path):
    def fmt(data):
        with tarfile.open(write(tmp_path, data)) as t:
            return detect_format(Archive(t, "a.tar"))

    assert fmt(docker_archive([(config_for(LAYER), [LAYER], ["a:1"])])) == "docker"
    assert fmt(oci_archive(config_for(LAYER), [LAYER])) == "oci"
    assert fmt(tar_bytes([("repositories", b"{}")])) == "legacy"
    with pytest.raises(SkiffError, match="not an image archive"):
        fmt(tar_bytes([("hello", b"x")]))


def test_parse_docker_manifest(tmp_path):
    cfg = config_for(LAYER, LAYER2)
    p = write(tmp_path, docker_archive([(cfg, [LAYER, LAYER2], ["x/y:2", "z:latest"])]))
    tar, _a, fmt, plans = read_plans(p, p)
    tar.close()
    assert fmt == "docker" and len(plans) == 1
    assert plans[0].config == cfg and plans[0].refs == ["x/y:2", "z:latest"]
    assert [lp.diff_id for lp in plans[0].layers] == [sha(LAYER), sha(LAYER2)]


def test_parse_oci_nested_index_picks_amd64(tmp_path):
    cfg = config_for(LAYER)
    p = write(tmp_path, oci_archive(cfg, [LAYER], {"io.containerd.image.name":
                                                   "docker.io/library/nest:1"}, nested=True))
    tar, _a, fmt, plans = read_plans(p, p)
    tar.close()
    assert fmt == "oci" and plans[0].config == cfg and plans[0].refs == ["docker.io/library/nest:1"]


def test_oci_no_image_for_platform(tmp_path, store):
    p = write(tmp_path, oci_archive(config_for(LAYER), [LAYER], nested=True,
                                    platform={"architecture": "s390x", "os": "linux"}))
    with pytest.raises(SkiffError, match="no image for linux/amd64"):
        load(store, p, p)


# ---------------------------------------------------------------- loading

def test_load_docker_archive_keeps_id(tmp_path, store):
    cfg = config_for(LAYER, LAYER2)
    p = write(tmp_path, docker_archive([(cfg, [LAYER, LAYER2], ["x/y:2"])]))
    assert load(store, p, p) == ["Loaded image: x/y:2"]
    img = store.resolve("x/y:2")
    assert img.id == sha(cfg) and store.config_bytes(img.id) == cfg
    with open(os.path.join(img.layer_dirs()[0], "etc/hello"), "rb") as f:
        assert f.read() == b"hello\n"


@pytest.mark.parametrize("ann,lines", [
    ({"org.opencontainers.image.ref.name": "reg.example/app:3"}, ["Loaded image: reg.example/app:3"]),
    ({"io.containerd.image.name": "docker.io/library/app:4",
      "org.opencontainers.image.ref.name": "4"}, ["Loaded image: app:4"]),
    (None, None),
])
def test_load_oci_names(tmp_path, store, ann, lines):
    cfg = config_for(LAYER)
    p = write(tmp_path, oci_archive(cfg, [LAYER], ann))
    got = load(store, p, p)
    assert got == (lines or [f"Loaded image ID: {sha(cfg)}"])
    assert store.resolve(sha(cfg)).diff_ids == [sha(LAYER)]


def test_load_whole_gzip_from_stream(tmp_path, store):
    cfg = config_for(LAYER)
    data = gzip.compress(docker_archive([(cfg, [LAYER], ["gz:1"])]))
    assert load(store, io.BytesIO(data), "<stdin>") == ["Loaded image: gz:1"]
    assert store.resolve("gz:1").id == sha(cfg)
    assert os.listdir(store.root.tmp) == []


def test_shared_layers_and_several_images(tmp_path, store):
    c1, c2 = config_for(LAYER), config_for(LAYER, LAYER2)
    p = write(tmp_path, docker_archive([(c1, [LAYER], ["one:1"]), (c2, [LAYER, LAYER2], [])]))
    assert load(store, p, p) == ["Loaded image: one:1", f"Loaded image ID: {sha(c2)}"]
    assert sorted(os.listdir(store.root.layers)) == sorted([sha(LAYER)[7:], sha(LAYER2)[7:]])


def test_plain_progress_lines(tmp_path, store):
    p = write(tmp_path, docker_archive([(config_for(LAYER), [LAYER], ["p:1"])]))
    out = io.StringIO()
    with Progress(out, bars=False) as progress:
        load(store, p, p, progress)
    assert out.getvalue() == f"{sha(LAYER)[7:19]}: Loading layer {len(LAYER) / 1000:.3g}kB\n"


# ---------------------------------------------------------------- digests

def test_diff_id_mismatch_stores_nothing(tmp_path, store):
    cfg = config_for(LAYER)  # but the archive carries LAYER2
    p = write(tmp_path, docker_archive([(cfg, [LAYER], ["bad:1"])], blobs=[LAYER2]))
    with pytest.raises(SkiffError, match=rf'member "{sha(LAYER2)[7:]}/layer.tar" does not match '
                                         r"the config's diff_id"):
        load(store, p, p)
    empty_store(store)


def test_config_name_mismatch(tmp_path, store):
    cfg = config_for(LAYER)
    data = docker_archive([(cfg, [LAYER], ["c:1"])])
    data = data.replace(b'"Cmd": ["/bin/sh"]', b'"Cmd": ["/bin/sx"]')
    p = write(tmp_path, data)
    with pytest.raises(SkiffError, match=rf'member "{sha(cfg)[7:]}.json" does not match'):
        load(store, p, p)
    empty_store(store)


def test_oci_blob_mismatch(tmp_path, store):
    p = write(tmp_path, oci_archive(config_for(LAYER), [LAYER], tamper=gzip.compress(LAYER2)))
    with pytest.raises(SkiffError, match=r'member "blobs/sha256/[0-9a-f]{64}" does not match its '
                                         r"digest"):
        load(store, p, p)
    empty_store(store)


def test_second_image_bad_nothing_half_loaded(tmp_path, store):
    good = config_for(LAYER)
    bad = config_for(LAYER2)
    data = docker_archive([(good, [LAYER], ["good:1"])])
    # a second manifest entry whose layer does not match its config
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        entries = [(m.name, t.extractfile(m).read() if m.isreg() else None) for m in t]
    manifest = json.loads(dict(entries)["manifest.json"])
    manifest.append({"Config": sha(bad)[7:] + ".json", "RepoTags": ["bad:1"],
                     "Layers": [f"{sha(LAYER)[7:]}/layer.tar"]})
    entries = [e for e in entries if e[0] != "manifest.json"]
    entries += [(sha(bad)[7:] + ".json", bad), ("manifest.json", json.dumps(manifest).encode())]
    p = write(tmp_path, tar_bytes(entries))
    with pytest.raises(SkiffError, match="does not match the config's diff_id"):
        load(store, p, p)
    empty_store(store)


# ---------------------------------------------------------------- hostile archives

HOSTILE = [
    ([("../evil", b"x")], '"../evil" leads out of the archive'),
    ([("/etc/evil", b"x")], '"/etc/evil" leads out of the archive'),
    ([("a/../../evil", b"x")], '"a/../../evil" leads out of the archive'),
    ([("link", "->", "/etc/passwd")], '"link" is a symlink to "/etc/passwd", outside'),
    ([("d", None), ("d/link", "->", "../../x")], '"d/link" is a symlink to "../../x", outside'),
]


@pytest.mark.parametrize("extra,msg", HOSTILE)
def test_hostile_members_refused(tmp_path, store, extra, msg):
    cfg = config_for(LAYER)
    p = write(tmp_path, docker_archive([(cfg, [LAYER], ["h:1"])], extra=extra))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SkiffError) as e:
        load(store, p, p)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == before
    empty_store(store)


def test_layer_symlinked_out_refused(tmp_path, store):
    cfg = config_for(LAYER)
    d = sha(LAYER)[7:]
    manifest = [{"Config": sha(cfg)[7:] + ".json", "RepoTags": ["s:1"], "Layers": [f"{d}/layer.tar"]}]
    p = write(tmp_path, tar_bytes([(sha(cfg)[7:] + ".json", cfg), (d, None),
                                   (f"{d}/layer.tar", "->", "../../../etc/shadow"),
                                   ("manifest.json", json.dumps(manifest).encode())]))
    with pytest.raises(SkiffError, match="outside the archive"):
        load(store, p, p)
    empty_store(store)


def test_hostile_layer_content_refused(tmp_path, store):
    evil = tar_bytes([("../../escaped", b"pwned")])
    cfg = config_for(evil)
    p = write(tmp_path, docker_archive([(cfg, [evil], ["e:1"])]))
    with pytest.raises(SkiffError, match=r'member "\.\./\.\./escaped" leads out of the layer'):
        load(store, p, p)
    assert not os.path.exists(tmp_path / "escaped") and not os.path.exists(tmp_path.parent / "escaped")
    empty_store(store)


def test_not_a_tar(tmp_path, store):
    p = write(tmp_path, b"hello world" * 100)
    with pytest.raises(SkiffError, match="not a tar archive"):
        load(store, p, p)


# ---------------------------------------------------------------- save

def _loaded(store, tmp_path, cfg=None):
    cfg = cfg or config_for(LAYER, LAYER2)
    p = write(tmp_path, docker_archive([(cfg, [LAYER, LAYER2], ["s/v:1"])]), "src.tar")
    load(store, p, p)
    return cfg


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_round_trip_keeps_id(tmp_path, store, fmt):
    cfg = _loaded(store, tmp_path)
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        save(store, ["s/v:1"], f, fmt)
    buf = io.BytesIO()
    save(store, ["s/v:1"], _Sink(buf), fmt)
    assert buf.getvalue() == out.read_bytes()  # deterministic, file or pipe
    with tarfile.open(out) as t:
        names = t.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in t.getmembers())
        if fmt == "docker":
            manifest = json.load(t.extractfile("manifest.json"))
            assert manifest[0]["Config"] == sha(cfg)[7:] + ".json"
            assert manifest[0]["RepoTags"] == ["s/v:1"]
            assert t.extractfile(manifest[0]["Layers"][1]).read() == LAYER2
            assert json.load(t.extractfile("repositories"))["s/v"]["1"]
        else:
            index = json.load(t.extractfile("index.json"))
            ann = index["manifests"][0]["annotations"]
            assert ann == {"io.containerd.image.name": "docker.io/s/v:1",
                           "org.opencontainers.image.ref.name": "1"}
            assert "oci-layout" in names
    other = ImageStore(Root(str(tmp_path / "other")))
    assert load(other, str(out), "out.tar") == ["Loaded image: s/v:1"]
    assert other.resolve("s/v:1").id == sha(cfg)


class _Sink:
    """A pipe-like output: fileno of a real pipe, collected into a buffer."""

    def __init__(self, buf):
        self.buf = buf

    def fileno(self):
        import threading

        r, w = os.pipe()

        def drain():
            with os.fdopen(r, "rb") as f:
                self.buf.write(f.read())
        self.t = threading.Thread(target=drain)
        self.t.start()
        self._w = w
        return w

    def flush(self):
        pass


@pytest.fixture(autouse=True)
def _close_sinks(monkeypatch):
    import skiff.runtime.images.archive_save as s

    real = s.save_images

    def wrapped(store, names, out, fmt="docker", progress=None):
        real(store, names, out, fmt, progress)
        if isinstance(out, _Sink):
            os.close(out._w)
            out.t.join()
    monkeypatch.setattr(s, "save_images", wrapped)


def test_save_gzip_layers_as_plain_layer_tar(tmp_path, store):
    cfg = config_for(LAYER)
    p = write(tmp_path, oci_archive(cfg, [LAYER], {"org.opencontainers.image.ref.name": "g:1"}))
    load(store, p, p)
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        save(store, ["g:1"], f, "docker")
    with tarfile.open(out) as t:
        m = json.load(t.extractfile("manifest.json"))[0]
        assert t.extractfile(m["Layers"][0]).read() == LAYER
    with open(out, "wb") as f:  # OCI keeps the gzip blob and the manifest as loaded
        save(store, ["g:1"], f, "oci")
    with tarfile.open(out) as t:
        d = json.load(t.extractfile("index.json"))["manifests"][0]["digest"]
        with tarfile.open(p) as src:
            assert d == json.load(src.extractfile("index.json"))["manifests"][0]["digest"]
    assert os.listdir(store.root.tmp) == []


def test_save_by_id_is_untagged_and_unknown_refused(tmp_path, store):
    cfg = _loaded(store, tmp_path)
    out = io.BytesIO()
    save(store, [sha(cfg)[7:19]], _Sink(out), "docker")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert json.load(t.extractfile("manifest.json"))[0]["RepoTags"] is None
    with pytest.raises(SkiffError, match="No such image"):
        save(store, ["nope:1"], _Sink(io.BytesIO()), "docker")
