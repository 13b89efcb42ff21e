"""skiff pull/push/login against the real CNCF registry, and interop with skopeo."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest

from tests.conftest import Skiff, needs_root
from tests.integration.ctr_helpers import one_error_line
from tests.integration.registry_fixture import PASSWORD, USER, auth_registry, registry  # noqa: F401

pytestmark = [needs_root, pytest.mark.root]


@pytest.fixture(autouse=True)
def skiff_config(tmp_path, monkeypatch):
    d = tmp_path / "skiff-config"
    monkeypatch.setenv("SKIFF_CONFIG", str(d))
    return d


@pytest.fixture
def other(skiff_factory) -> Skiff:
    """A second, empty skiff root (the pulling side)."""
    return skiff_factory("root2")


def _manifest_digest(skiff, ref: str) -> str:
    root = skiff.root
    with open(os.path.join(root, "refs.json")) as f:
        image_id = json.load(f)[ref]
    with open(os.path.join(root, "images", image_id.split(":")[1] + ".meta.json")) as f:
        return json.load(f)["manifest"]


def test_push_pull_run_roundtrip(busybox, other, registry):
    name = f"{registry.host}/team/bb:1"
    busybox.ok("tag", "busybox", name)
    out = busybox.ok("push", name)
    assert "Pushed" in out
    digest = out.strip().splitlines()[-1].split()[2]
    assert digest == _manifest_digest(busybox, name)
    # a second push skips the blobs
    assert "Layer already exists" in busybox.ok("push", name)

    out = other.ok("pull", name)
    lines = out.splitlines()
    assert lines[0] == "1: Pulling from team/bb"
    assert f"Digest: {digest}" in lines
    assert f"Status: Downloaded newer image for {name}" in lines
    # same image id on both sides
    want = busybox.ok("inspect", "--type", "image", "-f", "{{.Id}}", "busybox").strip()
    assert other.ok("inspect", "--type", "image", "-f", "{{.Id}}", name).strip() == want
    assert other.ok("run", "--rm", name, "echo", "pulled") == "pulled\n"
    # again: nothing downloaded
    out = other.ok("pull", name)
    assert "Already exists" in out and f"Status: Image is up to date for {name}" in out
    # by digest
    other.ok("rmi", name)
    out = other.ok("pull", f"{registry.host}/team/bb@{digest}")
    assert f"Digest: {digest}" in out
    assert other.ok("run", "--rm", f"{registry.host}/team/bb@{digest}", "echo", "bydigest") == "bydigest\n"


def test_pull_rejects_a_corrupted_blob(busybox, other, registry):
    name = f"{registry.host}/bad:1"
    busybox.ok("tag", "busybox", name)
    busybox.ok("push", name)
    manifest = json.loads(open(os.path.join(busybox.root, "blobs", "sha256",
                                            _manifest_digest(busybox, name).split(":")[1])).read())
    layer = manifest["layers"][0]["digest"]
    path = registry.blob_file(layer)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(data)
    p = other("pull", name)
    assert p.returncode == 1
    assert "verification failed" in one_error_line(p.stderr)
    blobs = os.path.join(other.root, "blobs", "sha256")
    assert not os.path.exists(os.path.join(blobs, layer.split(":")[1]))
    assert not os.listdir(os.path.join(other.root, "layers")) if os.path.isdir(
        os.path.join(other.root, "layers")) else True
    assert other.ok("images").strip().splitlines()[1:] == []
    tmp = os.path.join(other.root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_pull_errors(other, registry):
    p = other("pull", f"{registry.host}/nothing:here")
    assert p.returncode == 1
    assert one_error_line(p.stderr).startswith("Error: manifest unknown: ")
    from tests.integration.registry_fixture import free_port
    p = other("pull", f"127.0.0.1:{free_port()}/x:1")
    assert p.returncode == 1
    assert "connection refused" in one_error_line(p.stderr)
    p = other("push", f"{registry.host}/notlocal:1")
    assert p.returncode == 1
    assert "does not exist locally" in one_error_line(p.stderr)


def test_basic_auth_login_push_pull_logout(busybox, other, auth_registry, skiff_config):
    host = auth_registry.host
    name = f"{host}/secret/bb:1"
    busybox.ok("tag", "busybox", name)
    p = busybox("push", name)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == "Error: unauthorized: authentication required"

    p = busybox("login", "-u", USER, "--password-stdin", host, input="wrong\n")
    assert p.returncode == 1 and "unauthorized" in one_error_line(p.stderr)
    assert not (skiff_config / "config.json").exists()

    p = busybox("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "Login Succeeded"
    cfg = skiff_config / "config.json"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(skiff_config.stat().st_mode) == 0o700
    import base64
    auth = json.loads(cfg.read_text())["auths"][host]["auth"]
    assert base64.b64decode(auth).decode() == f"{USER}:{PASSWORD}"

    busybox.ok("push", name)
    other.ok("pull", name)
    assert other.ok("run", "--rm", name, "echo", "auth") == "auth\n"

    assert busybox.ok("logout", host).strip() == f"Removing login credentials for {host}"
    assert host not in json.loads(cfg.read_text())["auths"]
    p = other("pull", name)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == "Error: unauthorized: authentication required"


def _oci_blob(oci_dir, digest: str) -> bytes:
    return open(os.path.join(oci_dir, "blobs", *digest.split(":")), "rb").read()


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_interop(busybox, other, registry, tmp_path):
    name = f"{registry.host}/interop/bb:1"
    busybox.ok("tag", "busybox", name)
    busybox.ok("push", name)
    digest = _manifest_digest(busybox, name)

    # skiff push -> skopeo pull: the same manifest and blobs
    oci = tmp_path / "oci"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers",
                    f"docker://{name}", f"oci:{oci}"], check=True, capture_output=True, timeout=120)
    index = json.loads((oci / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    manifest = json.loads(_oci_blob(oci, digest))
    for desc in [manifest["config"], *manifest["layers"]]:
        assert "sha256:" + hashlib.sha256(_oci_blob(oci, desc["digest"])).hexdigest() == desc["digest"]

    # skopeo push (gzip layers, docker v2s2 manifest) -> skiff pull and run
    name2 = f"{registry.host}/interop/fromskopeo:2"
    gz = str(tmp_path / "umoci")  # umoci writes gzip layers
    bundle = str(tmp_path / "bundle")
    layer_dir = os.path.join(busybox.root, "layers", json.loads(
        _oci_blob(oci, manifest["config"]["digest"]))["rootfs"]["diff_ids"][0].split(":")[1])

    def umoci(*a):
        subprocess.run(["umoci", *a], check=True, capture_output=True, timeout=120)
    umoci("init", "--layout", gz)
    umoci("new", "--image", f"{gz}:t")
    umoci("unpack", "--image", f"{gz}:t", bundle)
    subprocess.run(["cp", "-a", f"{layer_dir}/.", f"{bundle}/rootfs/"], check=True)
    umoci("repack", "--image", f"{gz}:t", bundle)
    umoci("config", "--image", f"{gz}:t", "--config.cmd", "/bin/sh")
    umoci("gc", "--layout", gz)
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--format", "v2s2",
                    f"oci:{gz}:t", f"docker://{name2}"], check=True, capture_output=True, timeout=120)
    out = other.ok("pull", name2)
    assert "Status: Downloaded newer image" in out
    meta_digest = _manifest_digest(other, name2)
    m = json.loads(open(os.path.join(other.root, "blobs", "sha256", meta_digest.split(":")[1])).read())
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert m["layers"][0]["mediaType"].endswith("tar.gzip")
    assert other.ok("run", "--rm", name2, "echo", "from skopeo") == "from skopeo\n"
