"""Layer archive validation and extraction (tarsafe)."""

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images import tarsafe

ROOT = os.geteuid() == 0


def make_tar(path, entries, compress=False):
    """entries: (name, kind, extra) with kind file/dir/sym/link/fifo/chr; extra = data or target."""
    with tarfile.open(path, "w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            data = None
            if kind == "file":
                data = extra.encode() if isinstance(extra, str) else (extra or b"")
                ti.size, ti.mode = len(data), 0o644
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                ti.type, ti.mode = tarfile.FIFOTYPE, 0o600
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return str(path)


def extract(tmp_path, tar_path, name="t.tar"):
    dest = tmp_path / "dest"
    dest.mkdir()
    sp = tarsafe.spool_archive(str(tar_path), str(tmp_path), name)
    try:
        size = tarsafe.extract_layer(sp.tar_path, str(dest), name)
    finally:
        sp.discard()
    return dest, size


def rejected(tmp_path, entries, match):
    tar_path = make_tar(tmp_path / "evil.tar", entries)
    with pytest.raises(SkiffError) as e:
        extract(tmp_path, tar_path, "evil.tar")
    msg = str(e.value)
    assert msg.startswith("invalid archive evil.tar: ") and "\n" not in msg
    assert match in msg
    assert os.listdir(tmp_path / "dest") == []  # nothing half-applied
    return msg


def test_parent_dir_member(tmp_path):
    msg = rejected(tmp_path, [("ok", "file", "x"), ("../x", "file", "pwn")], "leads out")
    assert msg == 'invalid archive evil.tar: member "../x" leads out of the layer'
    assert not (tmp_path / "x").exists()


def test_nested_dotdot_and_absolute(tmp_path):
    rejected(tmp_path, [("a/../../x", "file", "pwn")], 'member "a/../../x" leads out')
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("/etc/x", "file", "pwn")], 'member "/etc/x" leads out')


def test_escaping_relative_symlink(tmp_path):
    rejected(tmp_path, [("a", "dir", None), ("a/l", "sym", "../../etc")], "outside the layer")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("l", "sym", "..")], 'member "l" is a symlink to ".."')


def test_symlinks_that_stay_inside_are_fine(tmp_path):
    tar_path = make_tar(tmp_path / "ok.tar", [
        ("bin", "dir", None), ("bin/sh", "sym", "/bin/busybox"),
        ("usr/lib/x", "sym", "../../bin/sh"), ("self", "sym", "."),
    ])
    dest, _ = extract(tmp_path, tar_path)
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(dest / "usr/lib/x") == "../../bin/sh"


def test_hardlink_rules(tmp_path):
    rejected(tmp_path, [("h", "link", "../etc/passwd")], "outside the layer")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("h", "link", "/etc/passwd")], "outside the layer")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("h", "link", "later"), ("later", "file", "x")], "not an earlier member")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("s", "sym", "/etc/shadow"), ("h", "link", "s")], "which is a symlink")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("a", "file", "x"), ("a", "link", "a")], "not an earlier member")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("d", "dir", None), ("h", "link", "d")], "which is a directory")


def test_write_through_symlink(tmp_path):
    msg = rejected(tmp_path, [("a", "sym", "/etc"), ("a/passwd", "file", "pwn")],
                   'written through the symlink "a"')
    assert 'member "a/passwd"' in msg
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("d", "dir", None), ("a", "sym", "d"), ("a/x", "file", "y")], "symlink")


def test_file_replacing_symlink_does_not_write_through(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("precious")
    tar_path = make_tar(tmp_path / "t.tar", [("x", "sym", str(outside)), ("x", "file", "new")])
    dest, _ = extract(tmp_path, tar_path)
    assert outside.read_text() == "precious"
    assert (dest / "x").read_text() == "new" and not (dest / "x").is_symlink()


def test_file_replacing_hardlink_keeps_other_name(tmp_path):
    tar_path = make_tar(tmp_path / "t.tar", [("a", "file", "one"), ("b", "link", "a"),
                                             ("b", "file", "two")])
    dest, _ = extract(tmp_path, tar_path)
    assert (dest / "a").read_text() == "one" and (dest / "b").read_text() == "two"


def test_type_changes_rejected(tmp_path):
    rejected(tmp_path, [("d", "dir", None), ("d/f", "file", "x"), ("d", "file", "y")],
             "replaces an earlier directory")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("f", "file", "x"), ("f/g", "file", "y")], "not a directory")


def test_not_a_tar(tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(os.urandom(4096))
    with pytest.raises(SkiffError, match=r"^invalid archive bogus.tar: not a tar archive \("):
        extract(tmp_path, bogus, "bogus.tar")
    (tmp_path / "dest").rmdir()
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    with pytest.raises(SkiffError, match="not a tar archive"):
        extract(tmp_path, empty, "empty.tar")
    (tmp_path / "dest").rmdir()
    gz = tmp_path / "text.gz"
    gz.write_bytes(gzip.compress(b"hello, not a tar" * 100))
    with pytest.raises(SkiffError, match="not a tar archive"):
        extract(tmp_path, gz, "text.gz")


def test_truncated_and_unsupported(tmp_path):
    tar_path = make_tar(tmp_path / "t.tar", [("big", "file", b"x" * 100_000)])
    data = open(tar_path, "rb").read()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:50_000])
    with pytest.raises(SkiffError, match="invalid archive cut.tar: .*(truncated|unexpected end)"):
        extract(tmp_path, cut, "cut.tar")
    bz = tmp_path / "t.tar.bz2"
    bz.write_bytes(b"BZh91AY&SY" + b"\0" * 100)
    with pytest.raises(SkiffError, match="bzip2 compression is not supported"):
        tarsafe.spool_archive(str(bz), str(tmp_path), "t.tar.bz2")
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(gzip.compress(os.urandom(10_000))[:2000])
    with pytest.raises(SkiffError, match="truncated gzip stream"):
        tarsafe.spool_archive(str(bad_gz), str(tmp_path), "bad.gz")
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith("img-")]
    assert leftovers == []


def test_digests_plain_and_gzip(tmp_path):
    entries = [("etc", "dir", None), ("etc/hello", "file", "hi\n")]
    plain = make_tar(tmp_path / "p.tar", entries)
    raw = open(plain, "rb").read()
    gz = tmp_path / "p.tar.gz"
    gz.write_bytes(gzip.compress(raw) + gzip.compress(b""))  # multi-member gzip
    sp1 = tarsafe.spool_archive(plain, str(tmp_path), "p.tar")
    sp2 = tarsafe.spool_archive(str(gz), str(tmp_path), "p.tar.gz")
    try:
        want = "sha256:" + hashlib.sha256(raw).hexdigest()
        assert sp1.diff_id == sp1.blob_digest == want
        assert sp1.media_type == tarsafe.MEDIA_TAR
        assert sp2.diff_id == want
        assert sp2.blob_digest == "sha256:" + hashlib.sha256(gz.read_bytes()).hexdigest()
        assert sp2.blob_size == gz.stat().st_size
        assert sp2.media_type == tarsafe.MEDIA_TAR_GZIP
        assert open(sp2.blob_path, "rb").read() == gz.read_bytes()
    finally:
        sp1.discard()
        sp2.discard()
    assert [n for n in os.listdir(tmp_path) if n.startswith("img-")] == []


def test_spool_from_file_object(tmp_path):
    raw = open(make_tar(tmp_path / "p.tar", [("f", "file", "x")]), "rb").read()
    sp = tarsafe.spool_archive(io.BytesIO(raw), str(tmp_path), "stdin")
    try:
        assert sp.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    finally:
        sp.discard()


def test_real_tar_with_dot_prefix(tmp_path):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/prog").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "bin/prog", 0o4755)
    os.link(src / "bin/prog", src / "bin/prog2")
    os.symlink("/bin/busybox", src / "bin/sh")
    os.mkfifo(src / "fifo")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    os.utime(src / "bin/prog", (1_500_000_000, 1_500_000_000))
    os.chmod(src, 0o755)
    tar_path = tmp_path / "real.tar"
    subprocess.run(["tar", "-C", str(src), "-cf", str(tar_path), "."], check=True)
    assert tarfile.open(tar_path).getnames()[0] == "."
    dest, size = extract(tmp_path, tar_path, "real.tar")
    assert size == 10
    st = os.stat(dest / "bin/prog")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == 1_500_000_000
    assert st.st_ino == os.stat(dest / "bin/prog2").st_ino
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert stat.S_IMODE(os.stat(dest / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755


def test_layer_root_defaults_to_0755(tmp_path):
    dest, _ = extract(tmp_path, make_tar(tmp_path / "t.tar", [("f", "file", "x")]))
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755


def test_whiteout_names_validated(tmp_path):
    rejected(tmp_path, [(".wh..", "file", "")], "not a valid whiteout")
    (tmp_path / "dest").rmdir()
    rejected(tmp_path, [("../.wh.x", "file", "")], "leads out")


@pytest.mark.skipif(not ROOT, reason="whiteouts and device nodes need root")
def test_whiteouts_and_devices(tmp_path):
    tar_path = make_tar(tmp_path / "t.tar", [
        ("etc", "dir", None), ("etc/.wh.passwd", "file", ""),
        ("var", "dir", None), ("var/.wh..wh..opq", "file", ""), ("var/new", "file", "n"),
        ("dev", "dir", None), ("dev/null", "chr", None),
        ("keep", "file", "k"), (".wh.keep", "file", ""),
        (".wh..wh.plnk", "dir", None),
    ])
    dest, _ = extract(tmp_path, tar_path)
    st = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.stat(dest / "etc").st_mtime == 1_600_000_000
    assert os.getxattr(dest / "var", "trusted.overlay.opaque") == b"y"
    assert (dest / "var/new").read_text() == "n"
    assert not (dest / "var/.wh..wh..opq").exists()
    st = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert (dest / "keep").read_text() == "k"  # a whiteout never hides its own layer
    assert sorted(os.listdir(dest)) == ["dev", "etc", "keep", "var"]


@pytest.mark.skipif(ROOT, reason="checks the unprivileged behaviour")
def test_devices_skipped_without_root(tmp_path):
    tar_path = make_tar(tmp_path / "t.tar", [("dev", "dir", None), ("dev/null", "chr", None),
                                             ("dev/n2", "link", "dev/null"), ("f", "file", "x")])
    dest, _ = extract(tmp_path, tar_path)
    assert os.listdir(dest / "dev") == []
    assert (dest / "f").read_text() == "x"
