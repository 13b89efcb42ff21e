"""Image layers as root: owners, devices, whiteouts under a real overlay mount."""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

from skiff.runtime.images import ImageStore, import_rootfs, make_busybox_image
from skiff.runtime.root import Root

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def entry(name, kind=tarfile.REGTYPE, data=None, mode=0o644, uid=0, gid=0, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid = kind, mode, uid, gid
    ti.uname = ti.gname = "nosuchuser"  # numeric ids must win over names
    ti.size = len(data) if data else 0
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


@pytest.fixture
def store(tmp_path):
    return ImageStore(Root(str(tmp_path / "root")))


def test_owners_modes_devices(store):
    img = import_rootfs(store, tar_bytes([
        entry("home", tarfile.DIRTYPE, mode=0o755),
        entry("home/u", tarfile.DIRTYPE, mode=0o700, uid=4321, gid=4322),
        entry("home/u/f", data=b"x", uid=4321, gid=4322),
        entry("su", data=b"#!", mode=0o4755),
        entry("dev", tarfile.DIRTYPE, mode=0o755),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        entry("dev/loop9", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=9, gid=6),
    ]), "owners")
    (layer,) = img.layer_dirs()
    st = os.stat(os.path.join(layer, "home/u/f"))
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    assert os.stat(os.path.join(layer, "home/u")).st_mode & 0o7777 == 0o700
    assert os.stat(os.path.join(layer, "su")).st_mode & 0o7777 == 0o4755
    st = os.lstat(os.path.join(layer, "dev/null"))
    assert st.st_rdev == os.makedev(1, 3)
    st = os.lstat(os.path.join(layer, "dev/loop9"))
    assert st.st_rdev == os.makedev(7, 9) and st.st_gid == 6


def test_whiteouts_under_overlay(store, tmp_path):
    base = import_rootfs(store, tar_bytes([
        entry("etc", tarfile.DIRTYPE, mode=0o755), entry("etc/passwd", data=b"p"),
        entry("etc/keep", data=b"k"),
        entry("var", tarfile.DIRTYPE, mode=0o755), entry("var/old", data=b"o"),
    ]), "base")
    top = store.add_layer_from_tar(tar_bytes([
        entry("etc", tarfile.DIRTYPE, mode=0o755), entry("etc/.wh.passwd"),
        entry("var", tarfile.DIRTYPE, mode=0o755), entry("var/.wh..wh..opq"),
        entry("var/new", data=b"n"),
    ]), "top")
    img = store.add_image(dict(base.config), [store.add_layer_from_tar(
        store.blob_path(store.manifest(base)["layers"][0]["digest"]), "base"), top], ref="two")
    lower = ":".join(reversed(img.layer_dirs()))  # overlay wants the top layer first
    merged, upper, work = (tmp_path / n for n in ("merged", "upper", "work"))
    for d in (merged, upper, work):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "var")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert store.remove("two")[-1].startswith("Deleted: ")


@pytest.mark.skipif(not shutil.which("busybox"), reason="busybox-static missing")
def test_busybox_layer_runs_in_chroot(store):
    img = make_busybox_image(store)
    (layer,) = img.layer_dirs()
    out = subprocess.run(["chroot", layer, "/bin/sh", "-c", "echo hi from $(id -un)"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "hi from root\n"
