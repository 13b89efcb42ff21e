"""Bind mounts (-v, --mount) and joined IPC/UTS namespaces (--ipc/--uts container:NAME), with
real containers."""

from __future__ import annotations

import os

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import host_mounts_under, inspect, one_error_line, run_d

pytestmark = [needs_root]


def run_out(skiff, *args: str) -> str:
    return skiff.ok("run", "--rm", "--network", "none", *args)


def test_volume_rw_and_ro(busybox, tmp_path):
    host = tmp_path / "data"
    host.mkdir()
    (host / "in.txt").write_text("from-host\n")
    out = run_out(busybox, "-v", f"{host}:/data", "busybox", "sh", "-c",
                  "cat /data/in.txt; echo from-ctr > /data/out.txt")
    assert out == "from-host\n"
    assert (host / "out.txt").read_text() == "from-ctr\n"
    p = busybox("run", "--rm", "--network", "none", "-v", f"{host}:/data:ro", "busybox", "sh", "-c",
                "cat /data/in.txt; echo x > /data/new.txt; echo rc=$?")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from-host\nrc=1\n"
    assert "Read-only file system" in p.stderr
    assert not (host / "new.txt").exists()


def test_volume_creates_missing_host_dir_and_nested_target(busybox, tmp_path):
    host = tmp_path / "made" / "by" / "v"
    out = run_out(busybox, "-v", f"{host}:/deep/inside/dir", "busybox", "sh", "-c",
                  "touch /deep/inside/dir/ok && echo done")
    assert out == "done\n"
    assert (host / "ok").is_file()


def test_mount_flag_file_readonly_and_missing_source(busybox, tmp_path):
    f = tmp_path / "conf"
    f.write_text("k=v\n")
    out = run_out(busybox, "--mount", f"type=bind,source={f},target=/etc/app.conf,readonly",
                  "busybox", "sh", "-c", "cat /etc/app.conf; echo y >> /etc/app.conf || echo denied")
    assert out.startswith("k=v\n") and out.rstrip().endswith("denied")
    assert f.read_text() == "k=v\n"
    missing = tmp_path / "nope"
    p = busybox("run", "--rm", "--network", "none", "--mount",
                f"type=bind,source={missing},target=/x", "busybox", "true")
    assert p.returncode == 125
    assert one_error_line(p.stderr) == (
        f'Error: invalid mount config for type "bind": bind source path does not exist: {missing}')
    assert not missing.exists()


def test_volume_errors(busybox, tmp_path):
    p = busybox("run", "--rm", "-v", f"{tmp_path}:relative", "busybox", "true")
    assert p.returncode == 125 and "mount path must be absolute" in one_error_line(p.stderr)
    p = busybox("run", "--rm", "-v", "namedvol:/x", "busybox", "true")
    assert p.returncode == 125 and "named volumes" in one_error_line(p.stderr)


def test_mounts_stay_inside_and_inspect(busybox, tmp_path):
    host = tmp_path / "keep"
    host.mkdir()
    cid = run_d(busybox, "--network", "none", "-v", f"{host}:/keep:ro", "busybox", "sleep", "30")
    try:
        assert host_mounts_under(str(host)) == []  # only in the container's mount namespace
        info = inspect(busybox, cid)
        assert info["Mounts"] == [{"Type": "bind", "Source": str(host), "Destination": "/keep",
                                   "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
        assert info["HostConfig"]["Binds"] == [f"{host}:/keep:ro"]
        pid = info["State"]["Pid"]
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = [ln.split() for ln in f if " /keep " in ln]
        assert lines and "ro" in lines[0][5].split(","), lines
    finally:
        busybox("rm", "-f", cid)


def test_missing_nested_target_is_made_inside_root(busybox, tmp_path):
    """A destination the image lacks is made inside the container's root (its upper dir),
    never on the host."""
    host = tmp_path / "src"
    host.mkdir()
    (host / "marker").write_text("m\n")
    out = run_out(busybox, "-v", f"{host}:/usr/bin/sub/m", "busybox", "sh", "-c",
                  "cat /usr/bin/sub/m/marker")
    assert out == "m\n"
    assert not os.path.exists("/usr/bin/sub")


def ns_inode(pid: int | str, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def test_ipc_and_uts_join(busybox):
    a = run_d(busybox, "--network", "none", "-h", "shared-host", "busybox", "sleep", "60")
    try:
        pid = inspect(busybox, a)["State"]["Pid"]
        out = run_out(busybox, "--ipc", f"container:{a}", "--uts", f"container:{a}", "busybox",
                      "sh", "-c", "hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts")
        assert out.split() == ["shared-host", ns_inode(pid, "ipc"), ns_inode(pid, "uts")]
        # without the flags: namespaces of its own
        out = run_out(busybox, "busybox", "sh", "-c",
                      "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts")
        ipc, uts = out.split()
        assert ipc != ns_inode(pid, "ipc") and uts != ns_inode(pid, "uts")
        # a POSIX message queue made in one is seen in the other: one IPC namespace
        busybox.ok("exec", a, "touch", "/dev/mqueue/skiffq")
        out = run_out(busybox, "--ipc", f"container:{a}", "busybox", "ls", "/dev/mqueue")
        assert out.split() == ["skiffq"]
        assert run_out(busybox, "busybox", "ls", "/dev/mqueue").split() == []
        info = inspect(busybox, a)
        assert info["HostConfig"]["IpcMode"] == "private"
    finally:
        busybox("rm", "-f", a)


def test_ipc_uts_errors(busybox):
    a = run_d(busybox, "--network", "none", "busybox", "true")
    from tests.integration.ctr_helpers import wait_exited
    wait_exited(busybox, a)
    p = busybox("run", "--rm", "--network", "none", "--ipc", f"container:{a}", "busybox", "true")
    assert p.returncode == 125 and "non running container" in one_error_line(p.stderr)
    b = run_d(busybox, "--network", "none", "busybox", "sleep", "30")
    try:
        p = busybox("run", "--rm", "--network", "none", "--uts", f"container:{b}", "-h", "x",
                    "busybox", "true")
        assert p.returncode == 125
        assert one_error_line(p.stderr) == "Error: conflicting options: hostname and the UTS mode"
        p = busybox("run", "--rm", "--ipc", "bogus", "busybox", "true")
        assert p.returncode == 125 and "invalid IPC mode" in one_error_line(p.stderr)
        p = busybox("run", "--rm", "--uts", "container:nosuchctr", "busybox", "true")
        assert p.returncode != 0 and "No such container" in p.stderr
    finally:
        busybox("rm", "-f", a, b)
