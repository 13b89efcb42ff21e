"""What a container is isolated from: namespaces, its root file system, /proc, /sys, /dev,
capabilities, rlimits, and the host's mount table."""

from __future__ import annotations

import os
import resource

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import (host_mounts_under, inspect, listdir, run_d, state,
                                           wait_log)

pytestmark = [needs_root, pytest.mark.root]

DEFAULT_CAPS = "00000000a80425fb"


def run_out(skiff, *args: str) -> str:
    return skiff.ok("run", "--rm", *args)


def _walk_snapshot(top: str) -> dict[str, tuple]:
    snap = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            snap[os.path.relpath(p, top)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return snap


def test_pid_namespace(busybox):
    out = run_out(busybox, "busybox", "sh", "-c", "echo $$; sleep 30 & ps -o pid,comm")
    lines = out.splitlines()
    assert lines[0] == "1"
    assert lines[1].split() == ["PID", "COMMAND"]
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    # PID 1 (the shell, or ps it became) and the background child: nothing of the host's
    assert 2 <= len(rows) <= 3, rows
    # busybox re-executes itself through /proc/self/exe: "exe" until the applet names itself
    assert {r[1] for r in rows} <= {"sh", "sleep", "ps", "exe"}, rows
    assert sorted(int(r[0]) for r in rows)[0] == 1
    assert all(int(r[0]) < 10 for r in rows), rows
    host_pids = [d for d in os.listdir("/proc") if d.isdigit()]
    assert len(host_pids) > 10


def test_uts_namespace(busybox):
    host = os.uname().nodename
    out = run_out(busybox, "-h", "inner-host", "busybox", "sh", "-c", "hostname; uname -n")
    assert out == "inner-host\ninner-host\n"
    assert os.uname().nodename == host
    cid = run_d(busybox, "busybox", "sleep", "30")
    inner = busybox.ok("exec", cid, "hostname").strip()
    assert inner == cid[:12] and inner != host


@pytest.mark.parametrize("network", ["none", "host"])
def test_namespace_inodes_differ_from_host(busybox, network):
    kinds = ["ipc", "mnt", "uts", "pid", "net"]
    out = run_out(busybox, "--network", network, "busybox", "sh", "-c",
                  "for n in " + " ".join(kinds) + "; do readlink /proc/self/ns/$n; done")
    inside = dict(zip(kinds, out.split()))
    assert len(inside) == len(kinds), out
    for kind in kinds:
        host = os.readlink(f"/proc/self/ns/{kind}")
        assert inside[kind].split(":")[0] == host.split(":")[0] == kind
        if kind == "net" and network == "host":
            assert inside[kind] == host
        else:
            assert inside[kind] != host, kind


def test_network_none_has_only_loopback_up(busybox):
    out = run_out(busybox, "--network", "none", "busybox", "sh", "-c",
                  "ls /sys/class/net; echo ---; cat /sys/class/net/lo/flags; echo ---; ip link")
    names, flags, iplink = out.split("---\n")
    assert names.split() == ["lo"]
    assert int(flags.strip(), 16) & 1, f"lo is not up: flags {flags.strip()}"
    lo_line = next(ln for ln in iplink.splitlines() if ": lo:" in ln)
    assert ",UP" in lo_line or "<UP" in lo_line, lo_line
    # the default network mode (bridge) is isolated too: its own eth0 and lo, nothing of the host's
    assert run_out(busybox, "busybox", "ls", "/sys/class/net").split() == ["eth0", "lo"]


def test_network_host_sees_host_interfaces(busybox):
    out = run_out(busybox, "--network", "host", "busybox", "ls", "/sys/class/net")
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))
    assert len(out.split()) > 1 or os.listdir("/sys/class/net") == ["lo"]


def test_rootfs_writes_go_to_the_containers_upper_dir_only(busybox):
    layers = os.path.join(busybox.root, "layers")
    before = _walk_snapshot(layers)
    busybox.ok("run", "--name", "ctr-a", "busybox", "sh", "-c",
               "mkdir /data && echo secret > /data/f && echo extra >> /etc/passwd")
    cid = inspect(busybox, "ctr-a")["Id"]
    upper = os.path.join(busybox.root, "containers", cid, "upper")
    with open(os.path.join(upper, "data", "f")) as f:
        assert f.read() == "secret\n"
    with open(os.path.join(upper, "etc", "passwd")) as f:
        assert f.read().endswith("extra\n")  # copied up, then changed
    assert _walk_snapshot(layers) == before, "the image's layer changed"
    for dirpath, _dirs, files in os.walk(layers):
        assert "f" not in files or not dirpath.endswith("/data")
    # another container from the same image sees the image, not A's changes
    p = busybox("run", "--rm", "busybox", "sh", "-c", "test -e /data/f; echo $?; tail -1 /etc/passwd")
    assert p.returncode == 0, p.stderr
    rc, last = p.stdout.splitlines()
    assert rc == "1"
    assert "extra" not in last


def test_pivot_root_not_chroot(busybox):
    out = run_out(busybox, "busybox", "cat", "/proc/self/mountinfo")
    rows = [ln.split() for ln in out.splitlines()]
    roots = [r for r in rows if r[4] == "/"]
    assert len(roots) == 1, roots
    sep = roots[0].index("-")
    assert roots[0][3] == "/"            # the mount's own root, not a sub-tree of the host's
    assert roots[0][sep + 1] == "overlay"
    points = [r[4] for r in rows]
    allowed = ("/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
    for pt in points:
        assert pt == "/" or pt.startswith(allowed), f"unexpected mount point {pt}"
    assert not any(pt.startswith(("/work", "/tmp", "/home", "/var", "/boot")) for pt in points)
    # the host's tree is not reachable
    p = busybox("run", "--rm", "busybox", "ls", "/work")
    assert p.returncode != 0


def test_fresh_proc(busybox):
    out = run_out(busybox, "busybox", "ls", "/proc")
    numeric = [d for d in out.split() if d.isdigit()]
    assert 1 <= len(numeric) <= 3, numeric
    assert "1" in numeric


def test_sys_is_read_only(busybox):
    p = busybox("run", "--rm", "busybox", "sh", "-c", "touch /sys/skiff-test")
    assert p.returncode != 0
    assert "Read-only file system" in p.stderr
    assert not os.path.exists("/sys/skiff-test")
    out = run_out(busybox, "busybox", "grep", " /sys ", "/proc/self/mountinfo")
    fields = out.split()
    assert fields[4] == "/sys" and "ro" in fields[5].split(","), out


def test_dev_is_minimal(busybox):
    out = run_out(busybox, "busybox", "ls", "-A", "/dev")
    names = set(out.split())
    expected = {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
                "ptmx", "fd", "stdin", "stdout", "stderr"}
    assert names - {"console"} == expected, sorted(names ^ expected)
    for dangerous in ("sda", "vda", "kmsg", "mem", "kvm", "loop0", "nvme0"):
        assert dangerous not in names
    out = run_out(busybox, "busybox", "stat", "-c", "%F %t:%T", "/dev/null", "/dev/zero")
    assert out.splitlines() == ["character special file 1:3", "character special file 1:5"]
    assert run_out(busybox, "busybox", "sh", "-c", "head -c 3 /dev/zero | od -An -tx1").split() == \
        ["00", "00", "00"]


def test_masked_and_read_only_proc_paths(busybox):
    with open("/proc/timer_list") as f:
        assert f.read(10), "the host's /proc/timer_list should not be empty"
    p = busybox("run", "--rm", "busybox", "sh", "-c", "cat /proc/timer_list | wc -c")
    assert p.returncode == 0 and p.stdout.strip() == "0", (p.stdout, p.stderr)
    # writing the container's own hostname through /proc/sys would be harmless: it must fail
    p = busybox("run", "--rm", "-h", "before", "busybox", "sh", "-c",
                "echo after > /proc/sys/kernel/hostname; hostname")
    assert "Read-only file system" in p.stderr
    assert p.stdout == "before\n"


def test_capabilities_and_no_new_privs(busybox):
    out = run_out(busybox, "busybox", "cat", "/proc/self/status")
    fields = dict(ln.split(":\t", 1) for ln in out.splitlines() if ":\t" in ln)
    assert fields["CapBnd"].strip() == DEFAULT_CAPS
    assert fields["CapEff"].strip() == DEFAULT_CAPS
    assert fields["CapPrm"].strip() == DEFAULT_CAPS
    assert fields["CapInh"].strip() == "0000000000000000"
    assert fields["CapAmb"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    # and it shows: root in the container may not mount or change the clock
    p = busybox("run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/mnt")
    assert p.returncode != 0


def test_rlimit_is_the_callers_hard_limit(busybox):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert run_out(busybox, "busybox", "sh", "-c", "ulimit -Hn").strip() == want


def test_ulimit_is_applied_and_clamped_to_the_callers(busybox):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # a lower limit is applied
    p = busybox("run", "--rm", "--ulimit", "nofile=512:1024", "busybox", "sh", "-c",
                "ulimit -Hn; ulimit -Sn")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1024", "512"]
    # asking for more than the caller has is clamped, not an error
    p = busybox("run", "--rm", "--ulimit", "nofile=1048576:1048576", "busybox", "sh", "-c",
                "ulimit -Hn; ulimit -Sn")
    assert p.returncode == 0, p.stderr
    if hard != resource.RLIM_INFINITY:
        assert p.stdout.split() == [str(hard), str(hard)]


def test_no_container_mounts_on_the_host(busybox):
    cid = run_d(busybox, "busybox", "sh", "-c", "echo up; sleep 30")
    wait_log(busybox, cid, "up")
    pid = state(busybox, cid)["Pid"]
    assert host_mounts_under(busybox.root) == []
    assert [ln for ln in host_mounts_under(cid)] == []
    # ...while the container's own table does have them
    with open(f"/proc/{pid}/mountinfo") as f:
        assert any(" overlay " in ln for ln in f)
    assert listdir(os.path.join(busybox.root, "containers", cid, "rootfs")) == []


def test_image_symlinks_cannot_redirect_the_setup_onto_the_host(skiff, tmp_path):
    """An image may hold any absolute symlink (it resolves inside the container), so building
    the container's /etc files must never follow one out to the host's file system."""
    import shutil
    import subprocess

    host_dir = tmp_path / "host-etc"           # stands in for the host's /etc
    host_dir.mkdir()
    (tmp_path / "host-resolv").write_text("nameserver 192.0.2.1\n")
    os.symlink(tmp_path / "host-resolv", host_dir / "resolv.conf")
    img = tmp_path / "img"
    (img / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/busybox", img / "bin" / "busybox")
    os.symlink("busybox", img / "bin" / "sh")
    os.symlink(str(host_dir), img / "etc")     # etc -> an absolute host path
    tar = subprocess.run(["tar", "-C", str(img), "-c", "."], check=True, capture_output=True).stdout
    skiff.ok("import", "-", "evil-etc:1", input=tar)

    p = skiff("run", "--rm", "evil-etc:1", "/bin/sh", "-c", "echo ran")
    assert sorted(os.listdir(host_dir)) == ["resolv.conf"], "files were created on the host"
    assert os.path.islink(host_dir / "resolv.conf"), "the host's symlink was replaced"
    assert (tmp_path / "host-resolv").read_text() == "nameserver 192.0.2.1\n"
    assert p.returncode in (0, 125), p.stderr
