"""Bad input: one "Error:" line, a non-zero status (125 for skiff's own errors), and nothing left
behind: no container directory, name, temp file, cgroup or mount; the image store unchanged."""

from __future__ import annotations

import glob
import hashlib
import io
import os
import tarfile
import uuid

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import (container_ids, host_mounts_under, listdir,
                                           one_error_line, run_d)

pytestmark = [needs_root, pytest.mark.root]


def store_snapshot(root: str) -> dict:
    """Everything of the image store, by content, and the listings of the other directories."""
    snap: dict = {}
    for sub in ("layers", "blobs", "images"):
        top = os.path.join(root, sub)
        for dirpath, dirs, files in os.walk(top):
            for name in dirs + files:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                key = os.path.relpath(p, root)
                if os.path.islink(p):
                    snap[key] = ("link", os.readlink(p))
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        snap[key] = ("file", st.st_mode, hashlib.sha256(f.read()).hexdigest())
                else:
                    snap[key] = ("dir", st.st_mode)
    refs = os.path.join(root, "refs.json")
    snap["refs.json"] = open(refs, "rb").read() if os.path.exists(refs) else None
    return snap


def assert_nothing_left(skiff, cg_parent: str | None = None, containers: list[str] = ()) -> None:
    root = skiff.root
    assert container_ids(root) == sorted(containers)
    assert listdir(os.path.join(root, "tmp")) == []
    assert host_mounts_under(root) == []
    if cg_parent:
        assert glob.glob(f"/sys/fs/cgroup/*/{cg_parent}") + \
            glob.glob(f"/sys/fs/cgroup/{cg_parent}") == []



RUN_CASES = {
    # id: (arguments after the common flags, exit status or None for "any non-zero", text)
    "unknown-image": (["nosuchimage:1.0", "true"], 125, "Unable to find image"),
    "command-not-found": (["busybox", "nosuchcmd"], 127, "nosuchcmd"),
    "not-executable": (["busybox", "/etc"], 126, "/etc"),
    "bad-memory": (["--memory", "12q", "busybox", "true"], 125, "12q"),
    "bad-ulimit": (["--ulimit", "nofile=lots", "busybox", "true"], 125, "nofile=lots"),
    "bad-network": (["--network", "nosuchnet", "busybox", "true"], 125, "nosuchnet"),
    "unknown-user": (["-u", "nosuchuser", "busybox", "true"], None, "nosuchuser"),
    "workdir-is-a-file": (["-w", "/etc/passwd", "busybox", "true"], None, "/etc/passwd"),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_bad_run(busybox, cg_parent, case):
    args, code, text = RUN_CASES[case]
    before = store_snapshot(busybox.root)
    p = busybox("run", "--name", "bad-one", "--cgroup-parent", cg_parent, "--pids-limit", "20",
                *args)
    if code is None:
        assert p.returncode != 0
    else:
        assert p.returncode == code, p.stderr
    assert text in one_error_line(p.stderr)
    assert p.stdout == ""
    assert_nothing_left(busybox, cg_parent)
    assert listdir(os.path.join(busybox.root, "names")) == []
    assert store_snapshot(busybox.root) == before
    # and the name is free for a good run
    assert busybox.ok("run", "--rm", "--name", "bad-one", "busybox", "echo", "ok") == "ok\n"


def test_name_in_use(busybox, cg_parent):
    first = run_d(busybox, "--name", "taken", "busybox", "sleep", "30")
    p = busybox("run", "--name", "taken", "--cgroup-parent", cg_parent, "--pids-limit", "20",
                "busybox", "true")
    assert p.returncode == 125
    line = one_error_line(p.stderr)
    assert "taken" in line and "already in use" in line
    assert_nothing_left(busybox, cg_parent, containers=[first])
    assert listdir(os.path.join(busybox.root, "names")) == ["taken"]


# -- import ------------------------------------------------------------------------------

def _tar(path: str, members: list[tuple[str, str, str | bytes]]) -> str:
    """members: (kind, name, data-or-linkname), kind "file", "dir" or "sym"."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for kind, name, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                data = data.encode() if isinstance(data, str) else data
                ti.size, ti.mode = len(data), 0o644
                tar.addfile(ti, io.BytesIO(data))
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            else:
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
                tar.addfile(ti)
    return path


def _evil_tars(tmp_path) -> dict:
    outside = tmp_path / "outside"
    outside.mkdir()
    abs_name = f"/tmp/skiff-evil-{uuid.uuid4().hex}"
    ok = ("file", "ok.txt", "harmless\n")
    return {
        "dotdot": ([ok, ("file", "../x", "escaped\n")], [tmp_path / "x"]),
        "absolute": ([ok, ("file", abs_name, "escaped\n")], [abs_name]),
        "symlink-escape": ([ok, ("sym", "a", "../../../etc")], []),
        "write-through-symlink": ([ok, ("sym", "a", str(outside)), ("file", "a/pwned", "x\n")],
                                  [outside / "pwned"]),
        "write-through-relative-symlink": ([ok, ("dir", "d", ""), ("sym", "d/up", ".."),
                                            ("file", "d/up/pwned", "x\n")], []),
    }


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink-escape", "write-through-symlink",
                                  "write-through-relative-symlink"])
def test_import_evil_tar(busybox, tmp_path, case):
    members, must_not_exist = _evil_tars(tmp_path)[case]
    path = _tar(str(tmp_path / f"{case}.tar"), members)
    before = store_snapshot(busybox.root)
    p = busybox("import", path, "evil:1")
    assert p.returncode == 125, (p.stdout, p.stderr)
    one_error_line(p.stderr)
    assert p.stdout == ""
    assert store_snapshot(busybox.root) == before
    assert_nothing_left(busybox)
    for f in must_not_exist:
        assert not os.path.lexists(f), f"{f} was written outside the layer"
    assert busybox("inspect", "--type", "image", "evil:1").returncode != 0
    for dirpath, _dirs, files in os.walk(busybox.root):
        assert "pwned" not in files and "x" not in files, dirpath


def test_import_not_an_archive(busybox, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive at all\n" * 40)
    before = store_snapshot(busybox.root)
    p = busybox("import", str(junk), "junk:1")
    assert p.returncode == 125
    assert "junk.tar" in one_error_line(p.stderr)
    assert store_snapshot(busybox.root) == before
    assert_nothing_left(busybox)
    # the same from stdin
    p = busybox("import", "-", "junk:2", input=junk.read_bytes())
    assert p.returncode == 125
    one_error_line(p.stderr.decode())
    assert store_snapshot(busybox.root) == before
    assert_nothing_left(busybox)


def test_import_missing_file(busybox, tmp_path):
    before = store_snapshot(busybox.root)
    p = busybox("import", str(tmp_path / "nosuch.tar"), "x:1")
    assert p.returncode == 125
    assert "nosuch.tar" in one_error_line(p.stderr)
    assert store_snapshot(busybox.root) == before
    assert_nothing_left(busybox)
