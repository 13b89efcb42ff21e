"""The image store: import, tag, resolve, list, rmi, layer sharing."""

import json
import os
import subprocess
import tarfile

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.runtime.images import ImageStore, import_rootfs
from skiff.runtime.images.store import _epoch
from skiff.runtime.root import Root


@pytest.fixture
def store(tmp_path):
    return ImageStore(Root(str(tmp_path / "root")))


def rootfs_tar(tmp_path, name="rootfs.tar", content="hello\n", compress=False):
    src = tmp_path / f"src-{name}"
    (src / "bin").mkdir(parents=True)
    (src / "etc").mkdir()
    (src / "etc/hello").write_text(content)
    os.symlink("/bin/busybox", src / "bin/sh")
    out = tmp_path / name
    subprocess.run(["tar", "-C", str(src), "-c" + ("z" if compress else "") + "f", str(out), "."],
                   check=True)
    return str(out)


def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_import_layout(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "foo:1", ['CMD ["sh"]'], "first")
    root = store.root
    hexid = img.id.split(":")[1]
    config_bytes = open(os.path.join(root.images, hexid + ".json"), "rb").read()
    import hashlib
    assert hashlib.sha256(config_bytes).hexdigest() == hexid
    cfg = json.loads(config_bytes)
    assert cfg["os"] == "linux" and cfg["architecture"]
    assert cfg["config"] == {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Cmd": ["sh"]}
    assert cfg["rootfs"]["type"] == "layers" and cfg["rootfs"]["diff_ids"] == img.diff_ids
    assert cfg["history"][0]["created_by"] == "skiff import"
    assert cfg["history"][0]["comment"] == "first"
    assert img.refs == ["foo:1"] and img.short_id == hexid[:12] and img.size == 6
    meta = json.load(open(os.path.join(root.images, hexid + ".meta.json")))
    manifest = json.load(open(store.blob_path(meta["manifest"]), "rb"))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["digest"] == img.id
    assert os.path.exists(store.blob_path(img.id))
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert layer["digest"] == img.diff_ids[0]  # uncompressed: blob == diff
    assert os.path.getsize(store.blob_path(layer["digest"])) == layer["size"]
    (d,) = img.layer_dirs()
    assert d == os.path.join(root.layers, img.diff_ids[0].split(":")[1])
    assert open(os.path.join(d, "etc/hello")).read() == "hello\n"
    assert os.readlink(os.path.join(d, "bin/sh")) == "/bin/busybox"
    assert json.load(open(root.refs)) == {"foo:1": img.id}
    assert listing(root.tmp) == []


def test_import_gzip_keeps_blob(store, tmp_path):
    path = rootfs_tar(tmp_path, "r.tgz", compress=True)
    img = import_rootfs(store, path, None)
    assert img.refs == []
    manifest = store.manifest(img)
    (layer,) = manifest["layers"]
    assert layer["mediaType"].endswith("tar+gzip")
    assert open(store.blob_path(layer["digest"]), "rb").read() == open(path, "rb").read()
    assert layer["digest"] != img.diff_ids[0]


def test_layer_dedup(store, tmp_path):
    path = rootfs_tar(tmp_path)
    a = import_rootfs(store, path, "a")
    b = import_rootfs(store, path, "b", ["USER nobody"])
    assert a.id != b.id and a.diff_ids == b.diff_ids
    assert listing(store.root.layers) == [a.diff_ids[0].split(":")[1]]
    # the same layer gzip'd: one layer dir, two blobs
    import gzip
    import io
    c = import_rootfs(store, io.BytesIO(gzip.compress(open(path, "rb").read())), "c", ["USER 1"])
    assert store.manifest(c)["layers"][0]["digest"] != c.diff_ids[0]
    assert c.diff_ids == a.diff_ids
    assert len(listing(store.root.layers)) == 1


def test_tag_resolve_list(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "busybox")
    other = import_rootfs(store, rootfs_tar(tmp_path, "o.tar", "other"), "other:2")
    store.tag("busybox", "busybox:x")
    store.tag(img.short_id, "127.0.0.1:5000/a/b:t")
    images = store.list()
    assert [i.id for i in images] == [other.id, img.id]  # newest first
    assert images[1].refs == ["127.0.0.1:5000/a/b:t", "busybox:latest", "busybox:x"]
    hexid = img.id.split(":")[1]
    for name in ("busybox", "busybox:latest", "busybox:x", img.id, hexid, hexid[:4],
                 "sha256:" + hexid[:8], "127.0.0.1:5000/a/b:t", f"busybox@{img.manifest_digest}"):
        assert store.resolve(name).id == img.id, name
    for name in ("nope", "busybox:y", "sha256:" + "0" * 64, "0" * 64, "Foo"):
        with pytest.raises(NotFound, match="No such image: "):
            store.resolve(name)
    with pytest.raises(NotFound):
        store.tag("nope", "x")
    with pytest.raises(InvalidArgument):
        store.tag("busybox", "Bad")


def test_ambiguous_prefix(store, tmp_path):
    ids = set()
    path = rootfs_tar(tmp_path)
    for i in range(20):
        ids.add(import_rootfs(store, path, None, [f"USER {i}"]).id[7:])
    firsts = [h[0] for h in ids]
    dup = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(NotFound, match="ambiguous"):
        store.resolve(dup)


def test_untag(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "a:1")
    store.tag("a:1", "a:2")
    assert store.untag("a:1") == "a:1"
    assert store.resolve(img.id).refs == ["a:2"]
    with pytest.raises(NotFound):
        store.untag("a:1")


def test_rmi_name_with_several_tags_only_untags(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "busybox")
    store.tag("busybox", "busybox:x")
    assert store.remove("busybox:x") == ["Untagged: busybox:x"]
    assert store.resolve(img.id).refs == ["busybox:latest"]
    lines = store.remove("busybox")
    assert lines[:2] == ["Untagged: busybox:latest", f"Deleted: {img.id}"]
    assert f"Deleted: {img.diff_ids[0]}" in lines
    root = store.root
    assert listing(root.images) == [] and listing(root.layers) == [] and listing(root.blobs) == []
    assert json.load(open(root.refs)) == {}
    assert listing(root.tmp) == []


def test_rmi_by_id_with_several_names_needs_force(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "a")
    store.tag("a", "b:1")
    with pytest.raises(Conflict) as e:
        store.remove(img.short_id)
    assert str(e.value) == (f"unable to delete {img.short_id} (must be forced) - "
                            "image is referenced in multiple repositories")
    lines = store.remove(img.short_id, force=True)
    assert lines[:3] == ["Untagged: a:latest", "Untagged: b:1", f"Deleted: {img.id}"]
    assert store.list() == []


def test_rmi_in_use(store, tmp_path):
    img = import_rootfs(store, rootfs_tar(tmp_path), "a")
    cid = "c0ffee" * 10
    in_use = lambda image_id: [cid] if image_id == img.id else []  # noqa: E731
    with pytest.raises(Conflict) as e:
        store.remove("a", in_use=in_use)
    assert str(e.value) == ("unable to remove image a (must force) - "
                            f"image is being used by container {cid[:12]}")
    with pytest.raises(Conflict, match="image is being used by container c0ffeec0ffee"):
        store.remove(img.id, in_use=in_use)
    # forced: the name goes, the image (and its layers) stay for the container
    assert store.remove("a", force=True, in_use=in_use) == ["Untagged: a:latest"]
    assert store.resolve(img.id).refs == []
    assert os.path.isdir(img.layer_dirs()[0])
    assert store.remove(img.id, in_use=lambda _: [])[0] == f"Deleted: {img.id}"


def test_rmi_keeps_shared_layer(store, tmp_path):
    path = rootfs_tar(tmp_path)
    a = import_rootfs(store, path, "a")
    b = import_rootfs(store, path, "b", ["USER x"])
    lines = store.remove("a")
    assert lines == ["Untagged: a:latest", f"Deleted: {a.id}"]
    assert os.path.isdir(b.layer_dirs()[0])
    assert os.path.exists(store.blob_path(b.diff_ids[0]))
    store.remove("b")
    assert listing(store.root.layers) == []
    assert listing(store.root.blobs) == []


def test_rejected_archive_leaves_nothing(store, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        ti = tarfile.TarInfo("ok")
        tar.addfile(ti)
        ti = tarfile.TarInfo("a")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(ti)
        tar.addfile(tarfile.TarInfo("a/passwd"))
    with pytest.raises(SkiffError, match=f'^invalid archive {evil}: member "a/passwd"'):
        import_rootfs(store, str(evil), "evil")
    notatar = tmp_path / "notatar"
    notatar.write_bytes(b"hello world\n" * 100)
    with pytest.raises(SkiffError, match="not a tar archive"):
        import_rootfs(store, str(notatar), "x")
    root = store.root
    for d in (root.layers, root.blobs, root.images, root.tmp):
        assert listing(d) == [], d
    assert not os.path.exists(root.refs) or json.load(open(root.refs)) == {}
    assert listing(os.path.join(root.locks, "image-holds")) == []


def test_bad_inputs_fail_before_reading(store, tmp_path):
    with pytest.raises(InvalidArgument, match="lowercase"):
        import_rootfs(store, "/nonexistent", "Bad")
    with pytest.raises(InvalidArgument, match="unsupported --change"):
        import_rootfs(store, "/nonexistent", "ok", ["RUN x"])
    with pytest.raises(SkiffError, match="cannot read /nonexistent"):
        import_rootfs(store, "/nonexistent", "ok")
    assert listing(store.root.tmp) == []


def test_add_image_with_config_bytes(store, tmp_path):
    layer = store.add_layer_from_tar(rootfs_tar(tmp_path), "r.tar")
    cfg = {"os": "linux", "architecture": "amd64", "config": {},
           "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}
    raw = json.dumps(cfg, indent=3).encode()
    img = store.add_image(raw, [layer], ref="raw:1")
    assert store.config_bytes(img.id) == raw
    with pytest.raises(InvalidArgument, match="diff_ids"):
        store.add_image(json.dumps({"rootfs": {"diff_ids": []}}).encode(), [layer])


def test_gc_respects_holds(store, tmp_path):
    layer = store.add_layer_from_tar(rootfs_tar(tmp_path), "r.tar")
    assert store.gc() == []  # held by this live process
    assert os.path.isdir(store.layer_dir(layer.diff_id))
    store.release([layer])
    assert store.gc() == [layer.diff_id.split(":")[1]]
    assert listing(store.root.layers) == [] and listing(store.root.blobs) == []


def test_epoch_parsing():
    assert _epoch("1970-01-01T00:00:01Z") == 1.0
    assert _epoch("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456)
    assert _epoch("1970-01-01T01:00:00+01:00") == 0.0
    assert _epoch("garbage") == 0.0
