"""The layered store with real containers: 100-layer images run, shared layers are stored
once and freed with their last image, `skiff image prune` and `skiff system df`."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from skiff.runtime.images import ImageStore
from skiff.runtime.root import Root
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]


def tar_of(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1
            tar.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def base_layers(store: ImageStore):
    base = store.resolve("busybox:latest")
    return base, [store.add_layer_from_tar(store.blob_path(
        m["digest"]), "busybox") for m in store.manifest(base)["layers"]]


def layer_dirs(root: str) -> list[str]:
    return sorted(n for n in os.listdir(os.path.join(root, "layers")))


def test_image_with_100_layers_runs(busybox):
    store = ImageStore(Root(busybox.root))
    base, layers = base_layers(store)
    for i in range(100):
        layers.append(store.add_layer_from_tar(
            tar_of({f"f/{i:03d}": b"%d\n" % i, "f/conflict": b"layer %d\n" % i}), f"l{i}"))
    img = store.add_image({"os": "linux", "architecture": "amd64",
                           "config": base.config.get("config")}, layers, ref="tall:1")
    assert len(img.diff_ids) == 101
    lowers = "".join(os.path.basename(d) for d in img.layer_dirs())
    assert len(lowers) > 4096  # the hex names alone would not fit in the mount data
    p = busybox("run", "--rm", "tall:1", "sh", "-c", "ls /f | wc -l; cat /f/conflict /f/042")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "101\nlayer 99\n42\n"


def test_shared_layers_are_stored_once_and_freed_with_the_last_image(busybox):
    sk = busybox
    sk.ok("run", "--name", "one", "busybox", "sh", "-c", "echo 1 > /one")
    sk.ok("run", "--name", "two", "busybox", "sh", "-c", "echo 2 > /two")
    sk.ok("commit", "one", "img:one")
    sk.ok("commit", "two", "img:two")
    sk.ok("rm", "one", "two")
    store = ImageStore(Root(sk.root))
    base = store.resolve("busybox").diff_ids
    one, two = store.resolve("img:one").diff_ids, store.resolve("img:two").diff_ids
    assert one[:-1] == two[:-1] == base
    # busybox's layer once, plus one layer per commit
    assert layer_dirs(sk.root) == sorted({d[7:] for d in base + one + two})
    assert len(layer_dirs(sk.root)) == len(base) + 2
    sk.ok("rmi", "img:one")
    assert layer_dirs(sk.root) == sorted(d[7:] for d in two)  # only img:one's own layer went
    sk.ok("rmi", "busybox")
    assert layer_dirs(sk.root) == sorted(d[7:] for d in two)  # img:two still uses the base
    sk.ok("rmi", "img:two")
    assert layer_dirs(sk.root) == []
    assert os.listdir(os.path.join(sk.root, "links")) == []


def test_image_prune(busybox):
    sk = busybox
    sk.ok("run", "--name", "p1", "busybox", "sh", "-c", "head -c 5000 /bin/busybox > /blob")
    dangling = sk.ok("commit", "p1").strip()
    sk.ok("run", "--name", "p2", "busybox", "sh", "-c", "echo t > /t")
    sk.ok("commit", "p2", "kept:1")
    sk.ok("rm", "p1", "p2")
    sk.ok("run", "--name", "user", "busybox", "true")  # busybox is in use

    p = sk("image", "prune")  # no terminal: refuses without -f
    assert p.returncode != 0 and "-f" in p.stderr
    assert dangling[7:19] in sk.ok("images", "-q")

    out = sk.ok("image", "prune", "-f")
    assert out.splitlines()[0] == "Deleted Images:"
    assert f"deleted: {dangling}" in out.splitlines()
    assert out.splitlines()[-1] == "Total reclaimed space: 5kB"
    ids = sk.ok("images", "-q").split()
    assert dangling[7:19] not in ids and len(ids) == 2
    assert sk.ok("image", "prune", "-f") == "Total reclaimed space: 0B\n"

    out = sk.ok("image", "prune", "-a", "-f")
    assert "untagged: kept:1" in out.splitlines()
    assert "busybox" not in out  # used by a container
    assert [r.split()[0] for r in sk.ok("images").splitlines()[1:]] == ["busybox"]
    assert sk.ok("image", "ls").splitlines()[1].split()[0] == "busybox"


def test_system_df(busybox):
    sk = busybox
    sk.ok("run", "--name", "d1", "busybox", "sh", "-c", "head -c 3000 /bin/busybox > /x")
    sk.ok("commit", "d1", "extra:1")
    rows = {ln[:14].strip(): ln[14:].split() for ln in sk.ok("system", "df").splitlines()}
    assert sk.ok("system", "df").splitlines()[0].split() == \
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    store = ImageStore(Root(sk.root))
    bb = store.resolve("busybox").size
    from skiff.cli.table import human_size
    assert rows["Images"][:3] == ["2", "1", human_size(bb + 3000)]
    assert rows["Images"][3] == human_size(3000)
    assert rows["Containers"] == ["1", "0", "3kB", "3kB", "(100%)"]
    assert rows["Local Volumes"] == ["0", "0", "0B", "0B"]
