"""The busybox base image built from the host binary."""

import os
import shutil
import stat

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images import ImageStore, make_busybox_image
from skiff.runtime.root import Root

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
pytestmark = pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK), reason="busybox-static missing")


def test_busybox_image(tmp_path):
    store = ImageStore(Root(str(tmp_path / "root")))
    img = make_busybox_image(store)
    assert img.refs == ["busybox:latest"]
    assert img.config["config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in img.config["config"]["Env"])
    (layer,) = img.layer_dirs()
    assert os.readlink(os.path.join(layer, "bin/sh")) == "/bin/busybox"
    assert os.path.islink(os.path.join(layer, "usr/bin/wget"))
    st = os.stat(os.path.join(layer, "bin/busybox"))
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_size == os.path.getsize(BUSYBOX)
    assert stat.S_IMODE(os.stat(os.path.join(layer, "tmp")).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(os.path.join(layer, "root")).st_mode) == 0o700
    for d in ("proc", "sys", "dev", "etc", "var", "home", "sbin", "usr/sbin"):
        assert os.path.isdir(os.path.join(layer, d)), d
    passwd = open(os.path.join(layer, "etc/passwd")).read()
    assert passwd.startswith("root:x:0:0:root:/root:/bin/sh\n") and "nobody:x:65534" in passwd
    assert open(os.path.join(layer, "etc/group")).read() == "root:x:0:\nnobody:x:65534:\n"

    again = make_busybox_image(store, ref="busybox:again")
    assert again.id == img.id and again.diff_ids == img.diff_ids
    assert len(os.listdir(store.root.layers)) == 1
    assert store.resolve("busybox").refs == ["busybox:again", "busybox:latest"]


def test_missing_busybox(tmp_path):
    store = ImageStore(Root(str(tmp_path / "root")))
    with pytest.raises(SkiffError, match="busybox not found"):
        make_busybox_image(store, busybox=str(tmp_path / "nope"))
