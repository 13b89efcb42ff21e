"""cgroup drivers against this host's real cgroupfs (root only).

Every test works under a fresh parent "skiff-test-<random>" and removes it in a
finalizer, killing anything left inside, even when the test fails.
"""

from __future__ import annotations

import errno
import glob
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from skiff.errors import SkiffError
from skiff.runtime.containers.cgroups import Limits, detect
from skiff.runtime.containers.cgroups.detect import parse_mountinfo
from skiff.runtime.containers.cgroups.v2 import V2Driver

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroupfs"),
]

HYBRID = os.path.isdir("/sys/fs/cgroup/memory")  # v1 memory hierarchy mounted


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _scrub(parent: str) -> None:
    """Kill and remove everything under any */<parent> cgroup directory."""
    for top in glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}"):
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            deadline = time.monotonic() + 5
            while True:
                try:
                    pids = _read(dirpath + "/cgroup.procs").split()
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)


@pytest.fixture
def parent():
    name = "skiff-test-" + uuid.uuid4().hex[:10]
    yield name
    _scrub(name)
    assert not glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}")


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_detect_this_host():
    drv = detect()
    assert drv is detect()  # cached per process
    assert drv.version == (1 if HYBRID else 2)
    assert drv.controllers() == {"memory", "cpu", "pids"}
    if HYBRID:
        assert drv.mounts["memory"] == "/sys/fs/cgroup/memory"
        assert "cpuset" not in drv.mounts


def test_limits_pids_and_destroy(parent, procs):
    drv = detect()
    cg = drv.create(parent, "c1", Limits(memory=32 << 20, pids=20, cpus=0.5, cpu_shares=512))
    if drv.version == 1:
        mem, cpu, pid = cg.path("memory"), cg.path("cpu"), cg.path("pids")
        assert _read(mem + "/memory.limit_in_bytes") == str(32 << 20)
        if os.path.exists(mem + "/memory.memsw.limit_in_bytes"):
            assert _read(mem + "/memory.memsw.limit_in_bytes") == str(32 << 20)
        assert _read(cpu + "/cpu.cfs_period_us") == "100000"
        assert _read(cpu + "/cpu.cfs_quota_us") == "50000"
        assert _read(cpu + "/cpu.shares") == "512"
        assert _read(pid + "/pids.max") == "20"
        assert os.path.isdir(cg.path("freezer"))
    else:
        assert _read(cg.path + "/memory.max") == str(32 << 20)
        assert _read(cg.path + "/cpu.max") == "50000 100000"
        assert _read(cg.path + "/pids.max") == "20"
    assert cg.pids() == []

    sleeper = subprocess.Popen(["sleep", "30"])
    procs.append(sleeper)
    cg.add_pid(sleeper.pid)
    assert cg.pids() == [sleeper.pid]
    for f in cg.procs_files():
        assert _read(f).split() == [str(sleeper.pid)]
    assert cg.oom_killed() is False

    dirs = cg.dirs()
    cg.destroy()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    for d in dirs:
        assert not os.path.exists(d)
        assert not os.path.exists(os.path.dirname(d))  # the parent went too
    cg.destroy()  # idempotent


def test_destroy_keeps_busy_parent_and_reloads(parent):
    drv = detect()
    a = drv.create(parent, "a", Limits())
    b = drv.create(parent, "b", Limits(pids=5))
    a.destroy()
    assert all(os.path.isdir(os.path.dirname(d)) for d in b.dirs())
    drv.load(b.to_dict()).destroy()
    assert not any(os.path.exists(os.path.dirname(d)) for d in b.dirs())


def test_child_joins_by_writing_zero(parent, procs):
    drv = detect()
    cg = drv.create(parent, "c1", Limits(pids=50))
    files = cg.procs_files()

    def join():
        for f in files:
            fd = os.open(f, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)

    child = subprocess.Popen(["sleep", "30"], preexec_fn=join)
    procs.append(child)
    assert cg.pids() == [child.pid]
    cg.destroy()
    assert child.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/freezer"), reason="no v1 freezer")
def test_destroy_kills_frozen_processes(parent, procs):
    cg = detect().create(parent, "paused", Limits())
    sleeper = subprocess.Popen(["sleep", "30"])
    procs.append(sleeper)
    cg.add_pid(sleeper.pid)
    state = cg.path("freezer") + "/freezer.state"
    with open(state, "w") as f:
        f.write("FROZEN")
    deadline = time.monotonic() + 5
    while _read(state) != "FROZEN" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _read(state) == "FROZEN"
    cg.destroy()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not os.path.exists(cg.path("freezer"))


def test_oom_kill_detected(parent, procs):
    drv = detect()
    cg = drv.create(parent, "oom", Limits(memory=16 << 20))
    files = cg.procs_files()

    def join():
        for f in files:
            fd = os.open(f, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)

    hog = subprocess.Popen(["python3", "-c", "b = bytearray(64 << 20)"], preexec_fn=join)
    procs.append(hog)
    assert hog.wait(timeout=30) == -signal.SIGKILL
    assert cg.oom_killed() is True
    peak = cg.memory_peak()
    assert peak is None or peak <= (16 << 20)
    cg.destroy()


def test_no_oom_when_within_limit(parent, procs):
    cg = detect().create(parent, "fine", Limits(memory=64 << 20))
    files = cg.procs_files()

    def join():
        for f in files:
            fd = os.open(f, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)

    ok = subprocess.Popen([sys.executable, "-c", "b = bytearray(4 << 20)"], preexec_fn=join)
    procs.append(ok)
    assert ok.wait(timeout=30) == 0
    assert cg.oom_killed() is False
    cg.destroy()


def test_kernel_rejection_rolls_back(parent):
    drv = detect()
    with pytest.raises(SkiffError) as e:
        # 0.001 cpus -> quota 100us, below the kernel's 1ms minimum (parse_cpus refuses it)
        drv.create(parent, "bad", Limits(memory=32 << 20, cpus=0.001))
    assert "cpu" in str(e.value) and parent in str(e.value)
    assert not glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}")


def _hybrid_v2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        v1, v2 = parse_mountinfo(f.read())
    return v2[0] if v1 and v2 else None


@pytest.mark.skipif(_hybrid_v2_mount() is None, reason="no secondary cgroup2 mount")
def test_v2_driver_on_controllerless_unified_mount(parent, procs):
    """The hybrid host's cgroup2 mount has no useful controllers, but still has
    cgroup.procs, cgroup.kill and rmdir semantics to exercise the v2 driver."""
    mount = _hybrid_v2_mount()
    available = frozenset(_read(mount + "/cgroup.controllers").split())
    drv = V2Driver(mount, available)
    with pytest.raises(SkiffError, match="memory limit requested but the memory cgroup"):
        drv.create(parent, "c1", Limits(memory=32 << 20))
    cg = drv.create(parent, "c1", Limits())
    sleeper = subprocess.Popen(["sleep", "30"])
    procs.append(sleeper)
    cg.add_pid(sleeper.pid)
    assert cg.pids() == [sleeper.pid]
    assert cg.oom_killed() is False
    cg.destroy()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not os.path.exists(f"{mount}/{parent}")
