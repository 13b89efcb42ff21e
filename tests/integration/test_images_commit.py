"""skiff commit with real containers: changes, deletions (whiteouts), opaque dirs,
--change/-m/-a, running containers, and the mount targets skiff leaves out."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import run_d, wait_exited

pytestmark = [needs_root, pytest.mark.root]


def image_config(skiff, ref: str) -> dict:
    hexid = skiff.ok("inspect", "--type", "image", "-f", "{{.Id}}", ref).strip().split(":")[1]
    with open(os.path.join(skiff.root, "images", hexid + ".json"), "rb") as f:
        return json.loads(f.read())


def test_commit_stopped_container_changes_and_deletions(busybox):
    sk = busybox
    p = sk("run", "--name", "c1", "busybox", "sh", "-c",
           "echo hello > /new.txt && rm /etc/group && mkdir -p /data/sub && echo x > /data/sub/f"
           " && rm -rf /usr && mkdir /usr && echo only > /usr/only")
    assert p.returncode == 0, p.stderr
    out = sk.ok("commit", "-m", "my message", "-a", "me <me@x>", "c1", "mine:v1").strip()
    assert out.startswith("sha256:") and len(out) == 71
    script = ("cat /new.txt /data/sub/f; ls /usr; test -e /etc/group && echo group-present; "
              "test -e /etc/passwd && echo passwd-present; cat /etc/hostname")
    p = sk("run", "--rm", "--hostname", "newhost", "mine:v1", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    # the deleted file is gone, the replaced (opaque) /usr shows only the new file
    assert p.stdout == "hello\nx\nonly\npasswd-present\nnewhost\n"
    base = image_config(sk, "busybox")
    cfg = image_config(sk, "mine:v1")
    assert cfg["rootfs"]["diff_ids"][:-1] == base["rootfs"]["diff_ids"]
    assert len(cfg["rootfs"]["diff_ids"]) == len(base["rootfs"]["diff_ids"]) + 1
    assert cfg["config"]["Cmd"] == base["config"]["Cmd"]  # the container's command is not kept
    assert cfg["config"]["Env"] == base["config"]["Env"]
    assert cfg["author"] == "me <me@x>"
    last = cfg["history"][-1]
    assert last["comment"] == "my message" and last["created_by"].startswith("sh -c echo hello")
    assert len(cfg["history"]) == len(base.get("history") or []) + 1
    # the layer holds the whiteout and the changes, not skiff's empty /etc bind targets
    layer = os.path.join(sk.root, "layers", cfg["rootfs"]["diff_ids"][-1].split(":")[1])
    st = os.lstat(os.path.join(layer, "etc/group"))
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert os.getxattr(os.path.join(layer, "usr"), "trusted.overlay.opaque") == b"y"
    for name in ("hostname", "hosts", "resolv.conf"):
        assert not os.path.lexists(os.path.join(layer, "etc", name))
    assert sk.ok("images", "mine").splitlines()[1].split()[:2] == ["mine", "v1"]


def test_commit_running_container_with_change(busybox):
    sk = busybox
    cid = run_d(sk, "--name", "live", "busybox", "sh", "-c",
                "echo running > /state.txt; sleep 60")
    for _ in range(200):
        if os.path.exists(os.path.join(sk.root, "containers", cid, "upper", "state.txt")):
            break
        import time
        time.sleep(0.05)
    out = sk.ok("commit", "--change", 'CMD ["cat", "/state.txt"]', "-c", "ENV FOO=bar",
                "live").strip()
    assert out.startswith("sha256:")
    # untagged: shows up as <none>, runs by id with the new CMD and ENV
    assert sk.ok("run", "--rm", out) == "running\n"
    assert sk.ok("run", "--rm", out, "sh", "-c", "echo $FOO") == "bar\n"
    assert "<none>" in sk.ok("images")
    sk.ok("rm", "-f", "live")


def test_commit_of_a_commit_stacks_layers(busybox):
    sk = busybox
    sk.ok("run", "--name", "ca", "busybox", "sh", "-c", "echo 1 > /one")
    sk.ok("commit", "ca", "stack:1")
    sk.ok("run", "--name", "cb", "stack:1", "sh", "-c", "rm /one; echo 2 > /two")
    sk.ok("commit", "cb", "stack:2")
    assert sk.ok("run", "--rm", "stack:2", "sh", "-c", "ls /one /two 2>&1; true") \
        .splitlines()[-1] == "/two"
    assert sk.ok("run", "--rm", "stack:1", "cat", "/one") == "1\n"


def test_commit_errors(busybox):
    sk = busybox
    p = sk("commit", "nosuch")
    assert p.returncode != 0 and "No such container" in p.stderr
    sk.ok("run", "--name", "ee", "busybox", "true")
    p = sk("commit", "-c", "RUN echo", "ee")
    assert p.returncode != 0 and "RUN" in p.stderr
    p = sk("commit", "ee", "Bad:Name:x")
    assert p.returncode != 0
