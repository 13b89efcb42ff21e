"""--privileged, --pid host and --ipc host on real containers, as the container sees them and as
`skiff inspect` shows them (docker's behaviour)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import inspect, run_d

pytestmark = [needs_root, pytest.mark.root]


def _status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (ln.partition(":\t") for ln in text.splitlines())}


def _all_caps() -> int:
    """Every capability the test itself may hand on (its bounding set: the host may restrict it)."""
    with open("/proc/self/status") as f:
        return int(_status(f.read())["CapBnd"], 16)


def test_privileged_has_every_capability_and_no_no_new_privs(busybox):
    fields = _status(busybox.ok("run", "--rm", "--network", "none", "--privileged",
                                "busybox", "cat", "/proc/self/status"))
    full = _all_caps()
    assert (int(fields["CapEff"], 16), int(fields["CapPrm"], 16), int(fields["CapBnd"], 16)) == (full,) * 3
    assert fields["NoNewPrivs"] == "0"
    # and without it: docker's default set, no_new_privs
    plain = _status(busybox.ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/status"))
    assert int(plain["CapEff"], 16) == 0xa80425fb and plain["NoNewPrivs"] == "1"


def test_privileged_can_mount_and_sees_host_devices_and_writable_sys_proc(busybox):
    host_devs = sorted(n for n in ("loop-control", "kmsg", "mem", "net/tun", "fuse")
                       if os.path.exists("/dev/" + n))
    assert host_devs, "no device to look for on this host"
    script = ("mkdir -p /m && mount -t tmpfs none /m && echo mounted; "
              + "".join(f"test -c /dev/{d} -o -b /dev/{d} && echo dev:{d}; " for d in host_devs)
              + "grep -E ' /sys | /proc/sys ' /proc/self/mounts | cut -d' ' -f2,4 | cut -d, -f1; "
              "grep -cE ' /(proc/(kcore|keys|timer_list|sched_debug|acpi|scsi|asound)|sys/firmware) ' /proc/self/mounts")
    p = busybox("run", "--rm", "--network", "none", "--privileged", "busybox", "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert "mounted" in lines, p.stderr
    assert [ln[4:] for ln in lines if ln.startswith("dev:")] == host_devs
    assert "/sys rw" in lines and not any(ln.startswith("/proc/sys ") for ln in lines)
    assert lines[-1] == "0"     # no masked path
    # an unprivileged container: none of it
    p = busybox("run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert "mounted" not in lines and not any(ln.startswith("dev:") for ln in lines)
    assert "/sys ro" in lines and "/proc/sys ro" in lines and int(lines[-1]) > 0


def test_privileged_shows_in_inspect(busybox):
    cid = run_d(busybox, "--network", "none", "--privileged", "--pid", "host", "busybox", "sleep", "60")
    hc = inspect(busybox, cid)["HostConfig"]
    assert hc["Privileged"] is True and hc["PidMode"] == "host"
    busybox.ok("rm", "-f", cid)
    cid = run_d(busybox, "--network", "none", "busybox", "sleep", "60")
    hc = inspect(busybox, cid)["HostConfig"]
    assert hc["Privileged"] is False and hc["PidMode"] == ""


@pytest.fixture
def marker_process():
    """A host process with a unique command line, killed at the end."""
    tag = f"skiff-pidhost-{os.getpid()}-{os.urandom(3).hex()}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", tag])
    yield proc, tag
    proc.kill()
    proc.wait()


def test_pid_host_sees_host_processes(busybox, marker_process):
    proc, tag = marker_process
    script = f"echo self:$$; grep -l {tag} /proc/[0-9]*/cmdline; cat /proc/1/comm"
    p = busybox("run", "--rm", "--network", "none", "--pid", "host", "busybox", "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert f"/proc/{proc.pid}/cmdline" in lines, (p.stdout, p.stderr)
    assert lines[0] != "self:1"
    with open("/proc/1/comm") as f:
        assert lines[-1] == f.read().strip()
    # its own PID namespace by default: the shell is PID 1, the marker is not visible
    p = busybox("run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert lines[0] == "self:1" and f"/proc/{proc.pid}/cmdline" not in lines


def test_pid_host_leftovers_are_killed_with_the_container(busybox):
    # the init exits while a background child still runs: without a PID namespace of its own
    # nothing kills that child but the removal of the container's cgroup (as runc does)
    busybox.ok("run", "--rm", "--network", "none", "--pid", "host", "busybox", "sh", "-c",
               "sleep 41 & exec true")
    left = subprocess.run(["pgrep", "-f", "^sleep 41$"], capture_output=True, text=True).stdout.split()
    for pid in left:
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                assert "skiff" not in f.read()
        except FileNotFoundError:
            pass


def test_ipc_host_shares_the_hosts_ipc_namespace(busybox):
    host_ipc = os.readlink("/proc/self/ns/ipc")
    out = busybox.ok("run", "--rm", "--network", "none", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc")
    assert out.strip() == host_ipc
    out = busybox.ok("run", "--rm", "--network", "none", "busybox", "readlink", "/proc/self/ns/ipc")
    assert out.strip() != host_ipc
    p = busybox("run", "--rm", "--network", "none", "--ipc", "host", "--sysctl", "kernel.shmmax=1000000",
                "busybox", "true")
    assert p.returncode == 125 and "host's IPC namespace" in p.stderr
