"""Image verbs through the CLI: import (file and stdin), images, tag, rmi, inspect."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import one_error_line

pytestmark = [needs_root, pytest.mark.root]


@pytest.fixture
def rootfs_tar(tmp_path) -> bytes:
    """`tar -C dir -c .` of a tiny root: busybox, a file and a symlink."""
    d = tmp_path / "rootfs"
    (d / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/usr/bin/busybox", d / "bin" / "busybox")
    os.symlink("busybox", d / "bin" / "sh")
    (d / "hello.txt").write_text("hi from import\n")
    os.symlink("hello.txt", d / "link.txt")
    return subprocess.run(["tar", "-C", str(d), "-c", "."], check=True, capture_output=True).stdout


def _images(skiff) -> list[list[str]]:
    lines = skiff.ok("images").splitlines()
    assert lines[0].split()[:4] == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    return [ln.split() for ln in lines[1:]]


def _image_id_of(skiff, ref: str) -> str:
    return skiff.ok("inspect", "--type", "image", "-f", "{{.Id}}", ref).strip()


def test_import_file_and_run(skiff, rootfs_tar, tmp_path):
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(rootfs_tar)
    out = skiff.ok("import", str(tar), "mini:1.0").strip()
    assert out.startswith("sha256:") and len(out) == 71
    p = skiff("run", "--rm", "mini:1.0", "/bin/sh", "-c",
              "cat /hello.txt /link.txt; /bin/busybox readlink /bin/sh; /bin/busybox readlink /link.txt")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hi from import\nhi from import\nbusybox\nhello.txt\n"
    rows = _images(skiff)
    assert [r[:3] for r in rows] == [["mini", "1.0", out.split(":")[1][:12]]]


def test_import_from_stdin(skiff, rootfs_tar):
    p = skiff("import", "-", "fromstdin", input=rootfs_tar)
    assert p.returncode == 0, p.stderr
    image_id = p.stdout.decode().strip()
    assert _image_id_of(skiff, "fromstdin:latest") == image_id
    assert skiff.ok("run", "--rm", "fromstdin", "/bin/sh", "-c", "cat /hello.txt") == "hi from import\n"


def test_image_id_is_the_digest_of_the_config(skiff, rootfs_tar):
    image_id = skiff("import", "-", "digest:1", input=rootfs_tar).stdout.decode().strip()
    hexid = image_id.split(":", 1)[1]
    with open(os.path.join(skiff.root, "images", hexid + ".json"), "rb") as f:
        config = f.read()
    assert image_id == "sha256:" + hashlib.sha256(config).hexdigest()
    # and the layer's diff_id is the digest of the (uncompressed) tar as given
    diff_id = "sha256:" + hashlib.sha256(rootfs_tar).hexdigest()
    assert json.loads(config)["rootfs"]["diff_ids"] == [diff_id]
    assert os.path.isdir(os.path.join(skiff.root, "layers", diff_id.split(":")[1]))


def test_tag_shares_the_image_id(skiff, rootfs_tar):
    image_id = skiff("import", "-", "orig:1", input=rootfs_tar).stdout.decode().strip()
    assert skiff("tag", "orig:1", "copy:stable").returncode == 0
    rows = {(r[0], r[1]): r[2] for r in _images(skiff)}
    short = image_id.split(":")[1][:12]
    assert rows == {("orig", "1"): short, ("copy", "stable"): short}
    assert skiff.ok("images", "-q").split() == [short]
    assert _image_id_of(skiff, "copy:stable") == image_id


def test_images_quiet_lists_each_image_once(skiff, rootfs_tar):
    a = skiff("import", "-", "a:1", input=rootfs_tar).stdout.decode().strip()
    b = skiff("import", "-c", 'CMD ["/bin/sh"]', "-", "b:1", input=rootfs_tar).stdout.decode().strip()
    assert a != b
    skiff.ok("tag", "a:1", "a:2")
    assert sorted(skiff.ok("images", "-q").split()) == sorted(x.split(":")[1][:12] for x in (a, b))


def test_rmi_of_one_of_two_names_only_untags(skiff, rootfs_tar):
    image_id = skiff("import", "-", "one:1", input=rootfs_tar).stdout.decode().strip()
    hexid = image_id.split(":")[1]
    skiff.ok("tag", "one:1", "two:1")
    out = skiff.ok("rmi", "one:1")
    assert "Untagged: one:1" in out
    assert "Deleted" not in out
    assert [(r[0], r[1]) for r in _images(skiff)] == [("two", "1")]
    assert os.path.exists(os.path.join(skiff.root, "images", hexid + ".json"))
    assert skiff("inspect", "--type", "image", "one:1").returncode != 0
    # removing the last name deletes the image and its layer
    layer = json.loads(skiff.ok("inspect", "two:1"))[0]["RootFS"]["Layers"][0].split(":")[1]
    out = skiff.ok("rmi", "two:1")
    assert "Deleted" in out
    assert _images(skiff) == []
    assert not os.path.exists(os.path.join(skiff.root, "images", hexid + ".json"))
    assert not os.path.exists(os.path.join(skiff.root, "layers", layer))


def test_rmi_of_an_image_in_use_needs_force(skiff, rootfs_tar):
    image_id = skiff("import", "-", "used:1", input=rootfs_tar).stdout.decode().strip()
    skiff.ok("run", "--name", "user", "used:1", "/bin/sh", "-c", "true")
    p = skiff("rmi", "used:1")
    assert p.returncode != 0
    line = one_error_line(p.stderr)
    assert "user" in line or image_id.split(":")[1][:12] in line or "in use" in line or "used by" in line
    assert _image_id_of(skiff, "used:1") == image_id
    p = skiff("rmi", "-f", "used:1")
    assert p.returncode == 0, p.stderr
    assert skiff("inspect", "--type", "image", "used:1").returncode != 0
    assert [r for r in _images(skiff) if r[0] == "used"] == []


def test_inspect_image(skiff, rootfs_tar):
    image_id = skiff("import", "-", "insp:1", input=rootfs_tar).stdout.decode().strip()
    skiff.ok("tag", "insp:1", "insp:2")
    info = json.loads(skiff.ok("inspect", "insp:1"))
    assert len(info) == 1
    info = info[0]
    assert info["Id"] == image_id
    assert sorted(info["RepoTags"]) == ["insp:1", "insp:2"]
    assert info["RootFS"]["Type"] == "layers"
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(rootfs_tar).hexdigest()]
    assert skiff.ok("inspect", "-f", "{{json .RootFS.Layers}}", "insp:2") == \
        json.dumps(info["RootFS"]["Layers"], separators=(",", ":")) + "\n"


def test_history_lists_each_step_newest_first(busybox):
    from tests.conftest import needs_root  # noqa: F401 - module is root-only already
    c = busybox.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                   "echo x > /f; sleep 30").strip()
    busybox.ok("commit", "-m", "added f", c, "hist:1")
    lines = busybox.ok("history", "hist:1").splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"]
    assert "added f" in lines[1] and "sh -c echo x > /f" in lines[1]
    assert lines[1].split()[0] == busybox.ok("images", "-q", "hist:1").strip()[:12] or \
        lines[1].split()[0] in busybox.ok("images", "-q")
    assert len(lines) == 3 and lines[2].startswith("<missing>")
