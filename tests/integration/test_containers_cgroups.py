"""Resource limits through cgroups: memory (OOM kill), pids, cpus; cgroups go with the container."""

from __future__ import annotations

import glob
import os
import time
import uuid

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import (cgroup_dirs, container_ids, inspect, listdir,
                                           one_error_line, run_d, state, wait_exited)

pytestmark = [needs_root, pytest.mark.root]

HYBRID = os.path.isdir("/sys/fs/cgroup/memory")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rest = data[data.rindex(b")") + 2:].split()
    utime, stime = int(rest[11]), int(rest[12])  # fields 14 and 15 of stat
    return (utime + stime) / os.sysconf("SC_CLK_TCK")



def test_memory_limit_oom_kill(busybox):
    p = busybox("run", "--name", "oom", "--memory", "32m", "busybox",
                "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    assert p.returncode == 137, (p.stdout, p.stderr)
    st = state(busybox, "oom")
    assert st["OOMKilled"] is True
    assert st["ExitCode"] == 137
    assert inspect(busybox, "oom")["HostConfig"]["Memory"] == 32 << 20
    # the same command fits without the limit, and a normal exit is not an OOM kill
    p = busybox("run", "--name", "fits", "--memory", "128m", "busybox",
                "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    assert p.returncode == 0, p.stderr
    assert state(busybox, "fits")["OOMKilled"] is False


def test_pids_limit(busybox):
    script = "for i in $(seq 20); do sleep 0.3 & done; wait; echo all-started"
    p = busybox("run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", script)
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr, p.stderr
    assert "all-started" not in p.stdout or p.returncode != 0
    p = busybox("run", "--rm", "--pids-limit", "100", "busybox", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "all-started\n"
    assert p.stderr == ""


def test_cpus_limit(busybox):
    loop = ["busybox", "sh", "-c", "while :; do :; done"]
    limited = run_d(busybox, "--cpus", "0.5", *loop)
    free = run_d(busybox, *loop)
    pids = {cid: state(busybox, cid)["Pid"] for cid in (limited, free)}
    t0 = time.monotonic()
    c0 = {cid: _cpu_seconds(pid) for cid, pid in pids.items()}
    time.sleep(1.5)
    c1 = {cid: _cpu_seconds(pid) for cid, pid in pids.items()}
    wall = time.monotonic() - t0
    share = {cid: (c1[cid] - c0[cid]) / wall for cid in pids}
    busybox.ok("rm", "-f", limited, free)
    assert share[limited] <= 0.65, share
    assert share[free] >= 0.8, share  # one busy loop gets (nearly) a whole core without a limit


def test_cgroup_has_the_limits_and_goes_with_the_container(busybox):
    cid = run_d(busybox, "-m", "48m", "--pids-limit", "50", "--cpus", "1.5", "busybox",
                "sleep", "30")
    pid = state(busybox, cid)["Pid"]
    dirs = cgroup_dirs(cid)
    assert dirs, "no cgroup directory for the running container"
    if HYBRID:
        mem, pids_, cpu = (f"/sys/fs/cgroup/{c}/skiff/{cid}" for c in ("memory", "pids", "cpu"))
        assert _read(mem + "/memory.limit_in_bytes") == str(48 << 20)
        assert _read(pids_ + "/pids.max") == "50"
        assert _read(cpu + "/cpu.cfs_quota_us") == "150000"
        assert _read(cpu + "/cpu.cfs_period_us") == "100000"
        for d in (mem, pids_, cpu):
            assert str(pid) in _read(d + "/cgroup.procs").split()
    else:
        d = f"/sys/fs/cgroup/skiff/{cid}"
        assert _read(d + "/memory.max") == str(48 << 20)
        assert _read(d + "/pids.max") == "50"
        assert _read(d + "/cpu.max") == "150000 100000"
        assert str(pid) in _read(d + "/cgroup.procs").split()
    busybox.ok("rm", "-f", cid)
    assert cgroup_dirs(cid) == []
    assert glob.glob(f"/sys/fs/cgroup/*/skiff/{cid}") == []


def test_cgroup_removed_when_the_container_exits(busybox):
    cid = run_d(busybox, "--pids-limit", "20", "busybox", "sh", "-c", "sleep 0.3")
    wait_exited(busybox, cid)
    assert cgroup_dirs(cid) == []
    # the foreground path too
    busybox.ok("run", "--name", "fg", "--pids-limit", "20", "busybox", "true")
    fg = inspect(busybox, "fg")["Id"]
    assert cgroup_dirs(fg) == []
    busybox.ok("rm", cid, "fg")
    assert cgroup_dirs(cid) == [] and container_ids(busybox.root) == []


def test_cgroup_parent(busybox, cg_parent):
    cid = run_d(busybox, "--cgroup-parent", cg_parent, "--pids-limit", "30", "busybox",
                "sleep", "30")
    found = glob.glob(f"/sys/fs/cgroup/*/{cg_parent}/{cid}") + \
        glob.glob(f"/sys/fs/cgroup/{cg_parent}/{cid}")
    assert found
    pid = state(busybox, cid)["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"/{cg_parent}/{cid}" in f.read()
    busybox.ok("rm", "-f", cid)
    assert glob.glob(f"/sys/fs/cgroup/*/{cg_parent}") == []  # the parent went too


def test_bad_memory_value_creates_nothing(busybox, cg_parent):
    p = busybox("run", "--memory", "abc", "--cgroup-parent", cg_parent, "busybox", "true")
    assert p.returncode == 125
    line = one_error_line(p.stderr)
    assert "abc" in line
    assert p.stdout == ""
    assert container_ids(busybox.root) == []
    assert listdir(os.path.join(busybox.root, "names")) == []
    assert glob.glob(f"/sys/fs/cgroup/*/{cg_parent}") + glob.glob(f"/sys/fs/cgroup/{cg_parent}") == []
