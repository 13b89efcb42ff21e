"""save/load interop with the real umoci, skopeo and podman (Debian), both directions.

Everything lives in tmp dirs: an OCI layout built by umoci from a busybox
rootfs, archives converted by skopeo, and a podman store with its own
--root/--runroot. Each archive is loaded into skiff and run with the skiff CLI;
skiff's own archives are loaded by podman and copied by skopeo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]

PODMAN_RUN = ["--runtime", "runc", "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=32768:32768"]


def need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")


def sh(*argv: str, **kw) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{' '.join(argv)} exited {p.returncode}: {p.stderr}"
    return p.stdout


@pytest.fixture(scope="module")
def umoci_layout(tmp_path_factory):
    """An OCI layout (gzip layers) made by umoci from a busybox rootfs: tag `base`."""
    need("umoci", "busybox")
    d = tmp_path_factory.mktemp("umoci")
    layout, bundle = d / "layout", d / "bundle"
    sh("umoci", "init", "--layout", str(layout))
    sh("umoci", "new", "--image", f"{layout}:base")
    sh("umoci", "unpack", "--image", f"{layout}:base", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox"), rootfs / "bin" / "busybox")
    sh("chroot", str(rootfs), "/bin/busybox", "--install", "-s", "/bin")
    (rootfs / "etc").mkdir(exist_ok=True)
    (rootfs / "etc" / "hello").write_text("hello from umoci\n")
    sh("umoci", "repack", "--image", f"{layout}:base", str(bundle))
    # config after repack, or it is lost (MACHINE-NOTES); then gc
    sh("umoci", "config", "--image", f"{layout}:base", "--config.cmd", "/bin/sh",
       "--config.env", "PATH=/bin:/usr/bin")
    sh("umoci", "gc", "--layout", str(layout))
    yield layout
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def podman(tmp_path):
    need("podman")
    import pathlib
    import tempfile

    root = pathlib.Path(tempfile.mkdtemp(prefix="skp-", dir="/tmp"))  # runroot < 50 chars
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([*base, *args], capture_output=True, text=True, timeout=300)
        if check:
            assert p.returncode == 0, f"podman {' '.join(args)}: {p.stderr}"
        return p

    yield run
    subprocess.run([*base, "rm", "-af"], capture_output=True, timeout=120)
    subprocess.run([*base, "system", "reset", "-f"], capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def _load_and_run(skiff, archive: str, expect_name: str | None) -> str:
    p = skiff("load", "-i", archive)
    assert p.returncode == 0, p.stderr
    if expect_name:
        assert f"Loaded image: {expect_name}" in p.stdout, p.stdout
        ref = expect_name
    else:
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("Loaded image")][0]
        ref = line.split(": ", 1)[1]
    out = skiff.ok("run", "--rm", ref, "/bin/sh", "-c", "cat /etc/hello")
    assert out == "hello from umoci\n"
    return ref


def _config_digest_of_layout(layout) -> str:
    out = json.loads(sh("skopeo", "inspect", "--raw", f"oci:{layout}:base"))
    return out["config"]["digest"]


def _image_id(skiff, ref: str) -> str:
    return skiff.ok("inspect", "--type", "image", "-f", "{{.Id}}", ref).strip()


# ---------------------------------------------------------------- into skiff

def test_skopeo_docker_archive(skiff, umoci_layout, tmp_path):
    need("skopeo")
    arc = str(tmp_path / "d.tar")
    sh("skopeo", "copy", f"oci:{umoci_layout}:base", f"docker-archive:{arc}:umo/base:1")
    ref = _load_and_run(skiff, arc, "umo/base:1")
    # docker-archive keeps the config bytes: the id is the config digest
    assert _image_id(skiff, ref) == _config_digest_of_layout(umoci_layout)


@pytest.mark.parametrize("variant", ["named", "unnamed", "uncompressed"])
def test_skopeo_oci_archive(skiff, umoci_layout, tmp_path, variant):
    need("skopeo")
    arc = str(tmp_path / "o.tar")
    dest = f"oci-archive:{arc}:umo/oci:2" if variant != "unnamed" else f"oci-archive:{arc}"
    src = f"oci:{umoci_layout}:base"
    extra = []
    if variant == "uncompressed":  # docker-archive layers are plain tars; keep them so
        sh("skopeo", "copy", src, f"docker-archive:{tmp_path / 'plain.tar'}")
        src, extra = f"docker-archive:{tmp_path / 'plain.tar'}", ["--dest-oci-accept-uncompressed-layers"]
    sh("skopeo", "copy", *extra, src, dest)
    with tarfile.open(arc) as t:
        index = json.load(t.extractfile("index.json"))
        mdigest = index["manifests"][0]["digest"]
        manifest = json.load(t.extractfile(f"blobs/sha256/{mdigest[7:]}"))
        layer = t.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}")
        # by the bytes: skopeo 1.9 labels the uncompressed layer "tar+gzip" all the same
        gz = layer.read(2) == b"\x1f\x8b"
    assert gz == (variant != "uncompressed")
    ref = _load_and_run(skiff, arc, "umo/oci:2" if variant != "unnamed" else None)
    assert _image_id(skiff, ref) == manifest["config"]["digest"]
    if variant != "uncompressed":
        assert _image_id(skiff, ref) == _config_digest_of_layout(umoci_layout)


def test_whole_archive_gzip_from_stdin(skiff, umoci_layout, tmp_path):
    need("skopeo")
    arc = tmp_path / "d.tar"
    sh("skopeo", "copy", f"oci:{umoci_layout}:base", f"docker-archive:{arc}:umo/gz:1")
    data = subprocess.run(["gzip", "-c", str(arc)], capture_output=True, check=True).stdout
    p = skiff("load", input=data)
    assert p.returncode == 0, p.stderr
    assert b"Loaded image: umo/gz:1" in p.stdout
    assert skiff.ok("run", "--rm", "umo/gz:1", "cat", "/etc/hello") == "hello from umoci\n"


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_save(skiff, podman, umoci_layout, tmp_path, fmt):
    need("skopeo")
    src = str(tmp_path / "src.tar")
    sh("skopeo", "copy", f"oci:{umoci_layout}:base", f"docker-archive:{src}:umo/pod:3")
    podman("load", "-i", src)
    podman_id = podman("images", "--no-trunc", "-q", "umo/pod:3").stdout.strip()
    arc = str(tmp_path / "p.tar")
    podman("save", "--format", fmt, "-o", arc, "umo/pod:3")
    p = skiff("load", "-i", arc)
    assert p.returncode == 0, p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("Loaded image")][0]
    ref = line.split(": ", 1)[1]
    assert ref.endswith("umo/pod:3"), p.stdout
    assert skiff.ok("run", "--rm", ref, "cat", "/etc/hello") == "hello from umoci\n"
    if fmt == "docker-archive":
        assert _image_id(skiff, ref) == podman_id
    # whatever podman wrote, skiff keeps the archive's config bytes: id == config digest
    with tarfile.open(arc) as t:
        if fmt == "docker-archive":
            config = json.load(t.extractfile("manifest.json"))[0]["Config"]
        else:
            index = json.load(t.extractfile("index.json"))
            m = json.load(t.extractfile(f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
            config = f"blobs/sha256/{m['config']['digest'][7:]}"
        import hashlib
        want = "sha256:" + hashlib.sha256(t.extractfile(config).read()).hexdigest()
    assert _image_id(skiff, ref) == want


# ---------------------------------------------------------------- out of skiff

@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_podman_loads_skiff_save(busybox, podman, tmp_path, fmt):
    arc = str(tmp_path / "s.tar")
    busybox.ok("tag", "busybox", "mine/bb:7")
    busybox.ok("save", "--format", fmt, "-o", arc, "mine/bb:7")
    want = _image_id(busybox, "mine/bb:7")
    out = podman("load", "-i", arc).stdout
    assert "mine/bb:7" in out, out
    ids = podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout
    assert any(ln.split()[0] in (want, want[7:]) and ln.endswith("mine/bb:7")
               for ln in ids.splitlines()), ids
    p = podman("run", "--rm", *PODMAN_RUN, "--network", "none", "mine/bb:7",
               "echo", "hi from podman", check=False)
    assert p.returncode == 0 and p.stdout == "hi from podman\n", p.stderr


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_skopeo_copies_skiff_save(busybox, tmp_path, fmt):
    need("skopeo")
    arc = str(tmp_path / "s.tar")
    busybox.ok("save", "--format", fmt, "-o", arc, "busybox")
    src = f"docker-archive:{arc}" if fmt == "docker" else f"oci-archive:{arc}"
    sh("skopeo", "copy", src, f"oci:{tmp_path / 'layout'}:x")
    sh("skopeo", "copy", src, f"oci-archive:{tmp_path / 'again.tar'}")
    info = json.loads(sh("skopeo", "inspect", src))
    image = json.loads(busybox.ok("inspect", "--type", "image", "busybox"))
    image = image[0] if isinstance(image, list) else image
    diff_ids = image["RootFS"]["Layers"] if "RootFS" in image else image["rootfs"]["diff_ids"]
    assert info["Layers"] == diff_ids
    cfg = json.loads(sh("skopeo", "inspect", "--config", "--raw", src))
    assert cfg["rootfs"]["diff_ids"] == diff_ids


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_round_trip_keeps_id(busybox, tmp_path, fmt, skiff_factory):
    from tests.conftest import Skiff

    arc = tmp_path / "rt.tar"
    busybox.ok("tag", "busybox", "two:tags")
    busybox.ok("save", "--format", fmt, "-o", str(arc), "busybox", "two:tags")
    want = _image_id(busybox, "busybox")
    other = skiff_factory("other-root")
    try:
        p = other("load", "-q", "-i", str(arc))
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.splitlines()) == ["Loaded image: busybox:latest",
                                                 "Loaded image: two:tags"]
        assert _image_id(other, "busybox") == want == _image_id(other, "two:tags")
        assert other.ok("run", "--rm", "two:tags", "echo", "ok") == "ok\n"
        # stdout streaming gives the same bytes as -o (deterministic headers)
        p = subprocess.run([*busybox.argv, "save", "--format", fmt, "busybox", "two:tags"],
                           capture_output=True, timeout=60)
        assert p.returncode == 0 and p.stdout == arc.read_bytes()
    finally:
        from tests.conftest import cleanup_root

        cleanup_root(other.root)
