"""Commit's layer tar (whiteouts, opaque dirs, skipped mount targets), short layer links,
overlay mount data for many layers, shared layers, prune and layer sizes."""

import hashlib
import io
import os
import stat
import tarfile

import pytest

from skiff.runtime.containers.rootfs import MOUNT_DATA_MAX, mount_overlay, overlay_data
from skiff.runtime.images import ImageStore
from skiff.runtime.images.commit import write_diff_tar
from skiff.runtime.images.layers import ensure_link, link_name, link_path, links_dir
from skiff.runtime.root import Root

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod and trusted xattrs need root")


@pytest.fixture
def store(tmp_path):
    return ImageStore(Root(str(tmp_path / "root")))


def layer_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1
            tar.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def add(store, files, ref=None, base=()):
    layer = store.add_layer_from_tar(layer_tar(files), "t")
    return store.add_image({"os": "linux", "architecture": "amd64"}, [*base, layer], ref=ref), layer


# ---------------------------------------------------------------- links

def test_link_name_is_short_base32_and_deterministic():
    h = "ab" * 32
    n = link_name(h)
    assert len(n) == 10 and set(n) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert link_name(h) == n and link_name("cd" * 32) != n


def test_ensure_link_is_idempotent_and_repairs(tmp_path):
    layers = str(tmp_path / "layers")
    h = "12" * 32
    os.makedirs(tmp_path / "layers" / h)
    name = ensure_link(layers, h)
    assert name == link_name(h)
    link = tmp_path / "links" / name
    assert os.readlink(link) == "../layers/" + h
    assert ensure_link(layers, h) == name  # second creator: fine
    os.unlink(link)
    os.symlink("../layers/elsewhere", link)  # stale: its layer is gone
    ensure_link(layers, h)
    assert os.path.samefile(link, tmp_path / "layers" / h)


def test_colliding_short_names_never_take_each_others_link(tmp_path):
    layers = tmp_path / "layers"
    a, b = "ab" * 16 + "0" * 32, "ab" * 16 + "1" * 32  # same first 128 bits
    assert link_name(a) == link_name(b)
    os.makedirs(layers / a)
    os.makedirs(layers / b)
    ra, rb = ensure_link(str(layers), a), ensure_link(str(layers), b)
    assert ra != rb and len(rb) == 26
    assert os.path.samefile(tmp_path / "links" / ra, layers / a)
    assert os.path.samefile(tmp_path / "links" / rb, layers / b)
    assert ensure_link(str(layers), b) == rb


def test_stored_layer_gets_a_link_and_gc_keeps_the_link_dir(store):
    img, layer = add(store, {"a": b"1"}, "x:1")
    h = layer.diff_id.split(":")[1]
    assert os.path.samefile(link_path(store.root.layers, h), store.layer_dir(layer.diff_id))
    assert store.gc() == []
    assert os.path.isdir(links_dir(store.root.layers))
    assert os.listdir(store.root.layers) == [h]  # the layers dir lists layers only
    assert os.path.isdir(store.layer_dir(layer.diff_id))
    store.remove("x:1")
    assert not os.path.lexists(link_path(store.root.layers, h))
    assert not os.path.exists(store.layer_dir(layer.diff_id))


# ---------------------------------------------------------------- overlay data

def test_overlay_data_short_images_use_hex_names(tmp_path):
    dirs = [str(tmp_path / (c * 64)) for c in "ab"]
    cwd, data = overlay_data(dirs, "/u", "/w")
    assert cwd == str(tmp_path)
    assert data == f"lowerdir={'b' * 64}:{'a' * 64},upperdir=/u,workdir=/w"


def test_overlay_data_many_layers_use_links(tmp_path):
    hexes = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(100)]
    for h in hexes:
        os.makedirs(tmp_path / "layers" / h)
    dirs = [str(tmp_path / "layers" / h) for h in hexes]
    upper = "/var/lib/skiff/containers/" + "c" * 64 + "/upper"
    cwd, data = overlay_data(dirs, upper, upper[:-5] + "work")
    assert cwd == str(tmp_path / "links")
    assert len(data) <= MOUNT_DATA_MAX
    lowers = data.split(",")[0][len("lowerdir="):].split(":")
    assert len(lowers) == 100 and all(len(lw) == 10 for lw in lowers)
    # topmost first, and every link resolves to its layer
    assert [os.path.realpath(os.path.join(cwd, lw)) for lw in lowers] == \
        [os.path.realpath(d) for d in reversed(dirs)]


def test_mount_overlay_chdirs_and_mounts(tmp_path, monkeypatch):
    calls = []

    class K:
        def mount(self, *a):
            calls.append((os.getcwd(), a))

    monkeypatch.chdir(tmp_path)
    dirs = [str(tmp_path / "layers" / hashlib.sha256(b"%d" % i).hexdigest()) for i in range(80)]
    for d in dirs:
        os.makedirs(d)
    mount_overlay(K(), dirs, "/u", "/w", "/t")
    (cwd, (src, target, fstype, flags, data)), = calls
    assert cwd == str(tmp_path / "links") and fstype == "overlay" and target == "/t"
    assert len(data) <= MOUNT_DATA_MAX and data.startswith("lowerdir=" + link_name(dirs[-1][-64:]))


# ---------------------------------------------------------------- sharing, sizes, prune

def test_shared_base_layer_is_stored_once(store):
    base = store.add_layer_from_tar(layer_tar({"base": b"b" * 100}), "base")
    a, _ = add(store, {"a": b"a"}, "a:1", base=[base])
    base2 = store.add_layer_from_tar(layer_tar({"base": b"b" * 100}), "base again")
    b, _ = add(store, {"b": b"bb"}, "b:1", base=[base2])
    assert a.diff_ids[0] == b.diff_ids[0]
    hexes = [n for n in os.listdir(store.root.layers)]
    assert len(hexes) == 3
    assert store.layer_sizes() == {a.diff_ids[0][7:]: 100, a.diff_ids[1][7:]: 1,
                                   b.diff_ids[1][7:]: 2}
    # removing one image frees only its own layer
    store.remove("a:1")
    assert sorted(n for n in os.listdir(store.root.layers)) == \
        sorted(d[7:] for d in b.diff_ids)
    store.remove("b:1")
    assert [n for n in os.listdir(store.root.layers)] == []


def test_prune_dangling_all_and_used(store):
    dangling, _ = add(store, {"d": b"123"})
    tagged, _ = add(store, {"t": b"4567"}, "t:1")
    used, _ = add(store, {"u": b"89"})
    lines, reclaimed = store.prune(False, used={used.id})
    assert lines == ["deleted: " + dangling.id, "deleted: " + dangling.diff_ids[0]]
    assert reclaimed == 3
    assert {i.id for i in store.list()} == {tagged.id, used.id}
    lines, reclaimed = store.prune(True, used={used.id})
    assert lines[0] == "untagged: t:1" and reclaimed == 4
    assert [i.id for i in store.list()] == [used.id]


# ---------------------------------------------------------------- commit's tar

def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


@needs_root
def test_diff_tar_whiteouts_opaque_and_skipped_mount_targets(tmp_path, store):
    up = tmp_path / "upper"
    (up / "etc").mkdir(parents=True)
    (up / "etc/hostname").write_text("")        # skiff's empty bind target: left out
    (up / "etc/hosts").write_text("127.0.0.1 x\n")  # a real change: kept
    (up / "new.txt").write_text("new\n")
    os.mknod(up / "gone", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(up / "etc/gone2", stat.S_IFCHR, os.makedev(0, 0))
    (up / "opq").mkdir()
    (up / "opq/only").write_text("o")
    os.setxattr(up / "opq", "trusted.overlay.opaque", b"y")
    os.link(up / "new.txt", up / "hard.txt")
    buf = io.BytesIO()
    write_diff_tar(str(up), buf)
    m = _members(buf.getvalue())
    assert set(m) == {"etc", "etc/hosts", "etc/.wh.gone2", "new.txt", "hard.txt", ".wh.gone",
                      "opq", "opq/.wh..wh..opq", "opq/only"}
    assert m[".wh.gone"].isreg() and m[".wh.gone"].size == 0
    assert m["new.txt"].islnk() or m["hard.txt"].islnk()
    # same upper dir, same bytes (and diff_id)
    again = io.BytesIO()
    write_diff_tar(str(up), again)
    assert again.getvalue() == buf.getvalue()
    # and the store turns the tar back into overlay whiteouts
    buf.seek(0)
    layer = store.add_layer_from_tar(buf, "commit")
    d = store.layer_dir(layer.diff_id)
    st = os.lstat(os.path.join(d, "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(d, "opq"), "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(os.path.join(d, "etc/hostname"))
    store.release([layer])


def test_diff_tar_keeps_xattrs_but_not_overlay_bookkeeping(tmp_path):
    import io
    import os
    import tarfile

    from skiff.runtime.images.commit import write_diff_tar
    upper = tmp_path / "upper"
    upper.mkdir()
    f = upper / "f"
    f.write_text("x")
    os.setxattr(f, "user.note", b"kept")
    buf = io.BytesIO()
    write_diff_tar(str(upper), buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        m = t.getmember("f")
    assert m.pax_headers.get("SCHILY.xattr.user.note") == "kept"
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in m.pax_headers)
