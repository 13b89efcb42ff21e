"""Fast paths of layer storage: in-place segments, in-kernel copies, one hash."""

import gzip
import hashlib
import io
import os
import tarfile

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images import ImageStore, tarsafe
from skiff.runtime.root import Root


def make_layer(path, big=3 << 20):
    """An uncompressed layer tar with files, a hard link, a symlink, a dir and an empty file."""
    blob = os.urandom(1 << 16) * (big >> 16) + b"tail"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data=None, **kw):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        add("./", type=tarfile.DIRTYPE, mode=0o755)
        add("./data", type=tarfile.DIRTYPE, mode=0o750)
        add("./data/big.bin", blob, mode=0o600)
        add("./data/small", b"hello\n", mode=0o644)
        add("./data/empty", b"", mode=0o400)
        add("./data/link", type=tarfile.LNKTYPE, linkname="./data/small")
        add("./data/sym", type=tarfile.SYMTYPE, linkname="small")
        add("./data/small", b"replaced\n", mode=0o640)  # a later member replaces an earlier one
    return str(path)


def wrap(path, layer, prefix=b"x" * 1000):
    """An outer tar with a junk member, then ``layer`` as a member: (path, Segment of it)."""
    with tarfile.open(path, "w") as tar:
        ti = tarfile.TarInfo("junk")
        ti.size = len(prefix)
        tar.addfile(ti, io.BytesIO(prefix))
        tar.add(layer, arcname="abc/layer.tar")
    with tarfile.open(path) as tar:
        m = tar.getmember("abc/layer.tar")
        return str(path), tarsafe.Segment(str(path), m.offset_data, m.size)


def tree(root):
    """Everything observable about an unpacked tree."""
    out = {}
    inodes = {}
    for d, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("sym", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode, st.st_mtime)
            else:
                data = open(p, "rb").read()
                out[rel] = ("file", st.st_mode, st.st_mtime, hashlib.sha256(data).hexdigest(),
                            inodes.setdefault(st.st_ino, rel))
    return out


def spool_both(tmp_path, src_fast, data):
    fast = tarsafe.spool_archive(src_fast, str(tmp_path), "fast")
    slow = tarsafe.spool_archive(io.BytesIO(data), str(tmp_path), "slow")
    try:
        for a in ("blob_digest", "blob_size", "diff_id", "media_type"):
            assert getattr(fast, a) == getattr(slow, a), a
        assert open(fast.blob_path, "rb").read() == data
        assert open(fast.tar_path, "rb").read() == open(slow.tar_path, "rb").read()
        return fast.blob_digest, fast.diff_id
    finally:
        fast.discard()
        slow.discard()


def test_segment_and_path_spool_like_a_stream(tmp_path):
    layer = make_layer(tmp_path / "layer.tar")
    data = open(layer, "rb").read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert spool_both(tmp_path, layer, data) == (digest, digest)
    _, seg = wrap(tmp_path / "outer.tar", layer)
    assert spool_both(tmp_path, seg, data) == (digest, digest)
    assert sorted(os.listdir(tmp_path)) == ["layer.tar", "outer.tar"]


def test_gzip_segment_falls_back_to_the_stream(tmp_path):
    layer = make_layer(tmp_path / "layer.tar", big=1 << 20)
    gz = tmp_path / "layer.tar.gz"
    gz.write_bytes(gzip.compress(open(layer, "rb").read()))
    data = gz.read_bytes()
    blob, diff = spool_both(tmp_path, str(gz), data)
    assert blob == "sha256:" + hashlib.sha256(data).hexdigest()
    assert diff == "sha256:" + hashlib.sha256(open(layer, "rb").read()).hexdigest()
    _, seg = wrap(tmp_path / "outer.tar", str(gz))
    assert spool_both(tmp_path, seg, data) == (blob, diff)


def test_segment_errors(tmp_path):
    outer, seg = wrap(tmp_path / "outer.tar", make_layer(tmp_path / "layer.tar", big=1 << 16))
    bad = tarsafe.Segment(outer, seg.offset, os.path.getsize(outer))
    with pytest.raises(SkiffError, match="invalid archive x: truncated"):
        tarsafe.spool_archive(bad, str(tmp_path), "x")
    xz = tmp_path / "x.xz"
    xz.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 100)
    with pytest.raises(SkiffError, match="xz compression is not supported"):
        tarsafe.spool_archive(tarsafe.Segment(str(xz), 0, 106), str(tmp_path), "x")
    with pytest.raises(SkiffError, match="cannot read x"):
        tarsafe.spool_archive(tarsafe.Segment(str(tmp_path / "nope"), 0, 1), str(tmp_path), "x")
    assert sorted(os.listdir(tmp_path)) == ["layer.tar", "outer.tar", "x.xz"]


def test_empty_file_spools(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert spool_both(tmp_path, str(empty), b"")[0] == "sha256:" + hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("no_cfr", [False, True])
def test_copy_range(tmp_path, monkeypatch, no_cfr):
    monkeypatch.setattr(tarsafe, "_no_copy_file_range", no_cfr)
    data = os.urandom(3 << 20)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        tarsafe.copy_range(src, dst, 12345, 2 << 20)
        tarsafe.copy_range(src, dst, 0, 0)
        with pytest.raises(EOFError):
            tarsafe.copy_range(src, dst, len(data) - 10, 20)
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == data[12345:12345 + (2 << 20)] + data[-10:]


def test_fast_extraction_matches_tarfile(tmp_path, monkeypatch):
    layer = make_layer(tmp_path / "layer.tar")
    fast = tmp_path / "fast"
    fast.mkdir()
    calls = []
    real = tarsafe.copy_range
    monkeypatch.setattr(tarsafe, "copy_range", lambda *a: calls.append(a[2:]) or real(*a))
    size = tarsafe.extract_layer(layer, str(fast), "layer")
    assert len(calls) == 4 and sorted(c[1] for c in calls) == [0, 6, 9, (3 << 20) + 4]
    monkeypatch.setattr(tarsafe._tar_class(), "makefile", tarfile.TarFile.makefile)
    slow = tmp_path / "slow"
    slow.mkdir()
    assert tarsafe.extract_layer(layer, str(slow), "layer") == size
    t = tree(str(fast))
    assert t == tree(str(slow))
    assert t["data/link"][3] == hashlib.sha256(b"hello\n").hexdigest()
    assert t["data/small"][3] == hashlib.sha256(b"replaced\n").hexdigest()
    assert t["data/big.bin"][1] & 0o777 == 0o600


def test_fast_extraction_of_a_truncated_tar(tmp_path):
    layer = make_layer(tmp_path / "layer.tar", big=1 << 20)
    data = open(layer, "rb").read()
    with tarfile.open(layer) as tar:
        end = tar.getmember("./data/big.bin").offset_data + 1000
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:end])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SkiffError, match="invalid archive cut"):
        tarsafe.extract_layer(str(cut), str(dest), "cut")


def test_store_segment_matches_stream(tmp_path):
    layer = make_layer(tmp_path / "layer.tar")
    _, seg = wrap(tmp_path / "outer.tar", layer)
    recs, dirs = [], []
    for i, src in enumerate([seg, open(layer, "rb")]):
        store = ImageStore(Root(str(tmp_path / f"root{i}")))
        rec = store.add_layer_from_tar(src, "layer")
        recs.append((rec.diff_id, rec.blob_digest, rec.blob_size, rec.media_type, rec.size))
        dirs.append(tree(store.layer_dir(rec.diff_id)))
        assert open(store.blob_path(rec.blob_digest), "rb").read() == open(layer, "rb").read()
        assert os.listdir(store.root.tmp) == [] or all(
            not n.startswith("img-") for n in os.listdir(store.root.tmp))
        store.release([rec])
        if not isinstance(src, tarsafe.Segment):
            src.close()
    assert recs[0] == recs[1]
    assert dirs[0] == dirs[1]


def test_xattrs_from_pax_headers_are_applied(tmp_path):
    """GNU tar / docker write xattrs as SCHILY.xattr.* PAX records; they must survive a load."""
    import io
    import os
    import tarfile

    from skiff.runtime.images import tarsafe
    tar_path = tmp_path / "x.tar"
    data = b"hello"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("f")
        ti.size = len(data)
        ti.pax_headers = {"SCHILY.xattr.user.skiff": "v1"}
        t.addfile(ti, io.BytesIO(data))
    dest = tmp_path / "out"
    dest.mkdir()
    tarsafe.extract_layer(str(tar_path), str(dest), "x.tar")
    assert os.getxattr(dest / "f", "user.skiff") == b"v1"
