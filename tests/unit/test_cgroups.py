"""cgroup drivers on fake cgroupfs trees under tmp_path (no root needed).

The fake tree imitates kernfs where the drivers depend on it: a new directory
comes with its interface files (v2: only for controllers its parent enabled),
and rmdir succeeds with those files present but not with children or tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from skiff.errors import SkiffError
from skiff.runtime.containers.cgroups import (
    Cgroup,
    CgroupDriver,
    Limits,
    detect,
    parse_cpus,
    parse_memory,
)
from skiff.runtime.containers.cgroups.base import shares_to_weight
from skiff.runtime.containers.cgroups.detect import parse_mountinfo

# The layout of the development host: v1 hierarchies plus a cgroup2 mount
# with only hugetlb in it.
HYBRID = """\
22 1 0:20 / / rw,relatime - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# A systemd host with the unified layout.
PURE_V2 = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
"""

# An older host: v1 only, cpu and cpuacct co-mounted, net_cls,net_prio too.
V1_ONLY = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:4 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,cpu,cpuacct
30 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,net_cls,net_prio
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
33 25 0:31 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,freezer
"""

NONE = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
"""

V1_FILES = {
    "memory": [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.oom_control",
        "memory.max_usage_in_bytes",
    ],
    "cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"],
    "cpuacct": ["cpuacct.usage"],
    "pids": ["pids.max", "pids.current"],
    "freezer": ["freezer.state"],
}
V2_FILES = {
    "memory": ["memory.max", "memory.swap.max", "memory.events", "memory.peak"],
    "cpu": ["cpu.max", "cpu.weight"],
    "pids": ["pids.max", "pids.current"],
    "hugetlb": [],
}


class FakeCgroupFS:
    """A cgroupfs look-alike under tmp_path for one mountinfo text."""

    def __init__(self, root, mountinfo: str, v2_controllers: str = "", skip=()):
        self.root = str(root)
        self.skip = set(skip)  # interface files the "kernel" does not offer
        self.mountinfo = os.path.join(self.root, "mountinfo")
        os.makedirs(self.root)
        with open(self.mountinfo, "w") as f:
            f.write(mountinfo)
        v1, v2 = parse_mountinfo(mountinfo)
        self.v1 = {}  # mount point -> controllers
        for ctrl, mp in v1.items():
            self.v1.setdefault(self.root + mp, []).append(ctrl)
        self.v2 = [self.root + mp for mp in v2]
        for mp in self.v1:
            os.makedirs(mp)
            self._touch(mp, ["cgroup.procs", "tasks"])
        for mp in self.v2:
            os.makedirs(mp)
            self._touch(mp, ["cgroup.procs", "cgroup.subtree_control"])
            self._write(mp + "/cgroup.controllers", v2_controllers)

    def _touch(self, d, names):
        for n in names:
            if n not in self.skip:
                open(os.path.join(d, n), "w").close()

    @staticmethod
    def _write(path, text):
        with open(path, "w") as f:
            f.write(text)

    def _mount_of(self, path):
        for mp in list(self.v1) + self.v2:
            if path.startswith(mp + "/"):
                return mp
        return None

    def on_mkdir(self, path):
        """Populate a new directory the way the kernel would."""
        mp = self._mount_of(path)
        if mp in self.v1:
            files = ["cgroup.procs", "tasks"]
            for ctrl in self.v1[mp]:
                files += V1_FILES.get(ctrl, [])
            self._touch(path, files)
        elif mp is not None:
            with open(os.path.join(os.path.dirname(path), "cgroup.subtree_control")) as f:
                enabled = [c.lstrip("+") for c in f.read().split()]
            files = ["cgroup.procs", "cgroup.subtree_control", "cgroup.kill", "cgroup.events"]
            for ctrl in enabled:
                files += V2_FILES.get(ctrl, [])
            self._touch(path, files)
            self._write(path + "/cgroup.controllers", " ".join(enabled))

    def on_rmdir(self, path):
        """cgroupfs rmdir: fine with interface files, EBUSY with tasks."""
        if self._mount_of(path) is None or not os.path.isdir(path):
            return
        procs = os.path.join(path, "cgroup.procs")
        if os.path.exists(procs) and open(procs).read().strip():
            raise OSError(16, "Device or resource busy", path)
        for n in os.listdir(path):
            p = os.path.join(path, n)
            if os.path.isfile(p):
                os.unlink(p)

    def read(self, rel):
        with open(os.path.join(self.root, rel.lstrip("/"))) as f:
            return f.read()

    def detect(self):
        return detect(self.mountinfo, root_prefix=self.root)


@pytest.fixture
def fakefs(tmp_path, monkeypatch):
    """Factory for fake trees; patches os.mkdir/os.rmdir to act like cgroupfs."""
    trees = []
    real_mkdir, real_rmdir = os.mkdir, os.rmdir

    def mkdir(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)
        for t in trees:
            t.on_mkdir(os.fspath(path))

    def rmdir(path, *, dir_fd=None):
        for t in trees:
            t.on_rmdir(os.fspath(path))
        real_rmdir(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rmdir", rmdir)

    def make(mountinfo, v2_controllers="", skip=()):
        t = FakeCgroupFS(tmp_path / f"t{len(trees)}", mountinfo, v2_controllers, skip)
        trees.append(t)
        return t

    return make


# --- detection --------------------------------------------------------------


def test_parse_mountinfo_hybrid():
    v1, v2 = parse_mountinfo(HYBRID)
    assert v1["memory"] == "/sys/fs/cgroup/memory"
    assert v1["cpu"] == "/sys/fs/cgroup/cpu"
    assert v1["cpuacct"] == "/sys/fs/cgroup/cpuacct"
    assert "name=systemd" not in v1 and "rw" not in v1
    assert v2 == ["/sys/fs/cgroup/unified"]


def test_parse_mountinfo_escapes_and_comounts():
    v1, v2 = parse_mountinfo(V1_ONLY + "40 25 0:40 / /mnt/my\\040cg rw - cgroup2 none rw\n")
    assert v1["cpu"] == v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert v1["net_prio"] == "/sys/fs/cgroup/net_cls,net_prio"
    assert "xattr" not in v1
    assert v2 == ["/mnt/my cg"]


def test_detect_hybrid_is_v1(fakefs):
    fs = fakefs(HYBRID, v2_controllers="hugetlb")
    drv = fs.detect()
    assert isinstance(drv, CgroupDriver)
    assert drv.version == 1
    cg = fs.root + "/sys/fs/cgroup/"
    assert drv.mounts == {
        "memory": cg + "memory",
        "cpu": cg + "cpu",
        "cpuacct": cg + "cpuacct",
        "pids": cg + "pids",
        "freezer": cg + "freezer",
    }
    assert drv.controllers() == {"memory", "cpu", "pids"}


def test_detect_pure_v2(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpuset cpu io memory hugetlb pids rdma misc")
    drv = fs.detect()
    assert drv.version == 2
    assert drv.mount == fs.root + "/sys/fs/cgroup"
    assert drv.controllers() == {"memory", "cpu", "pids"}


def test_detect_v1_only_comounted_cpu(fakefs):
    fs = fakefs(V1_ONLY)
    drv = fs.detect()
    assert drv.version == 1
    assert drv.mounts["cpu"] == fs.root + "/sys/fs/cgroup/cpu,cpuacct"
    assert "cpuacct" not in drv.mounts  # same directory as cpu, not a separate hierarchy


def test_detect_v2_with_v1_controllers_prefers_v1(fakefs):
    # cgroup2 lists memory but v1 holds memory/cpu/pids: v1 wins
    fs = fakefs(HYBRID, v2_controllers="memory hugetlb")
    assert fs.detect().version == 1


@pytest.mark.parametrize(
    "mountinfo,controllers",
    [
        (NONE, ""),
        (HYBRID.replace(" - cgroup cgroup", " - tmpfs tmpfs"), "hugetlb"),  # only cgroup2
        (PURE_V2, ""),  # cgroup2 with no controllers
        (PURE_V2, "io hugetlb"),
    ],
)
def test_detect_nothing_usable(fakefs, mountinfo, controllers):
    fs = fakefs(mountinfo, v2_controllers=controllers)
    with pytest.raises(SkiffError, match="no usable cgroup hierarchy found"):
        fs.detect()


def test_detect_unreadable_mountinfo(tmp_path):
    with pytest.raises(SkiffError, match="cannot read .*missing"):
        detect(str(tmp_path / "missing"), root_prefix=str(tmp_path))


# --- v1 ---------------------------------------------------------------------


def test_v1_create_writes_limits(fakefs):
    fs = fakefs(HYBRID, v2_controllers="hugetlb")
    drv = fs.detect()
    cg = drv.create("skiff", "c1", Limits(memory=32 << 20, cpus=0.5, cpu_shares=512, pids=20))
    assert isinstance(cg, Cgroup) and cg.version == 1
    base = "/sys/fs/cgroup/{}/skiff/c1/"
    assert fs.read(base.format("memory") + "memory.limit_in_bytes") == str(32 << 20)
    assert fs.read(base.format("memory") + "memory.memsw.limit_in_bytes") == str(32 << 20)
    assert fs.read(base.format("cpu") + "cpu.cfs_period_us") == "100000"
    assert fs.read(base.format("cpu") + "cpu.cfs_quota_us") == "50000"
    assert fs.read(base.format("cpu") + "cpu.shares") == "512"
    assert fs.read(base.format("pids") + "pids.max") == "20"
    assert os.path.isdir(fs.root + base.format("freezer"))
    for unused in ("cpuset", "devices", "blkio", "systemd"):
        assert not os.path.exists(fs.root + f"/sys/fs/cgroup/{unused}/skiff")
    # cpuacct (a hierarchy of its own here) is joined for its usage counter
    assert cg.procs_files() == [
        fs.root + base.format(c) + "cgroup.procs" for c in ("memory", "cpu", "cpuacct", "pids", "freezer")
    ]


def test_v1_only_set_limits_are_written(fakefs):
    fs = fakefs(HYBRID, v2_controllers="hugetlb")
    fs.detect().create("skiff", "c1", Limits(pids=0))
    base = "/sys/fs/cgroup/{}/skiff/c1/"
    assert fs.read(base.format("memory") + "memory.limit_in_bytes") == ""
    assert fs.read(base.format("cpu") + "cpu.cfs_quota_us") == ""
    assert fs.read(base.format("cpu") + "cpu.shares") == ""
    assert fs.read(base.format("pids") + "pids.max") == "max"


def test_v1_without_memsw(fakefs):
    fs = fakefs(HYBRID, skip={"memory.memsw.limit_in_bytes"})
    fs.detect().create("skiff", "c1", Limits(memory=64 << 20))
    d = fs.root + "/sys/fs/cgroup/memory/skiff/c1/"
    assert fs.read("/sys/fs/cgroup/memory/skiff/c1/memory.limit_in_bytes") == str(64 << 20)
    assert not os.path.exists(d + "memory.memsw.limit_in_bytes")


def test_v1_comounted_cpu_single_dir(fakefs):
    fs = fakefs(V1_ONLY)
    cg = fs.detect().create("skiff", "c1", Limits(cpus=1.5))
    assert fs.read("/sys/fs/cgroup/cpu,cpuacct/skiff/c1/cpu.cfs_quota_us") == "150000"
    assert len(cg.procs_files()) == 4  # memory, cpu,cpuacct, pids, freezer


def test_v1_missing_controller_raises(fakefs):
    fs = fakefs(HYBRID.replace("rw,pids", "rw,rdma"))
    drv = fs.detect()
    with pytest.raises(SkiffError) as e:
        drv.create("skiff", "c1", Limits(pids=10))
    assert str(e.value) == (
        "pids limit requested but the pids cgroup controller is not available on this host"
    )
    assert not os.path.exists(fs.root + "/sys/fs/cgroup/memory/skiff")


def test_v1_failure_rolls_back_and_names_file(fakefs):
    fs = fakefs(HYBRID, skip={"pids.max"})
    drv = fs.detect()
    with pytest.raises(SkiffError, match=r"pids/skiff/c1/pids\.max"):
        drv.create("skiff", "c1", Limits(memory=32 << 20, pids=5))
    for c in ("memory", "cpu", "pids", "freezer"):
        assert not os.path.exists(fs.root + f"/sys/fs/cgroup/{c}/skiff")


def test_v1_failure_keeps_existing_parent(fakefs):
    fs = fakefs(HYBRID, skip={"pids.max"})
    drv = fs.detect()
    drv.create("skiff", "other", Limits())
    with pytest.raises(SkiffError):
        drv.create("skiff", "c1", Limits(pids=5))
    assert os.path.isdir(fs.root + "/sys/fs/cgroup/pids/skiff/other")
    assert not os.path.exists(fs.root + "/sys/fs/cgroup/pids/skiff/c1")


def test_v1_oom_killed_and_peak(fakefs):
    fs = fakefs(HYBRID)
    cg = fs.detect().create("skiff", "c1", Limits())
    d = fs.root + "/sys/fs/cgroup/memory/skiff/c1/"
    assert cg.oom_killed() is False  # empty file
    fs._write(d + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert cg.oom_killed() is False
    fs._write(d + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_killed() is True
    fs._write(d + "memory.max_usage_in_bytes", "1234567\n")
    assert cg.memory_peak() == 1234567
    os.unlink(d + "memory.oom_control")
    os.unlink(d + "memory.max_usage_in_bytes")
    assert cg.oom_killed() is False
    assert cg.memory_peak() is None


def test_v1_pids_reads_pids_hierarchy(fakefs):
    fs = fakefs(HYBRID)
    cg = fs.detect().create("skiff", "c1", Limits())
    fs._write(fs.root + "/sys/fs/cgroup/pids/skiff/c1/cgroup.procs", "12\n345\n12\n")
    fs._write(fs.root + "/sys/fs/cgroup/memory/skiff/c1/cgroup.procs", "999\n")
    assert cg.pids() == [12, 345]


# --- v2 ---------------------------------------------------------------------


def test_v2_create_enables_controllers_and_writes_limits(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpuset cpu io memory pids")
    drv = fs.detect()
    cg = drv.create("skiff", "c1", Limits(memory=32 << 20, cpus=0.5, cpu_shares=1024, pids=20))
    assert cg.version == 2
    assert fs.read("/sys/fs/cgroup/cgroup.subtree_control") == "+memory +cpu +pids"
    assert fs.read("/sys/fs/cgroup/skiff/cgroup.subtree_control") == "+memory +cpu +pids"
    d = "/sys/fs/cgroup/skiff/c1/"
    assert fs.read(d + "memory.max") == str(32 << 20)
    assert fs.read(d + "memory.swap.max") == "0"
    assert fs.read(d + "cpu.max") == "50000 100000"
    assert fs.read(d + "cpu.weight") == "39"
    assert fs.read(d + "pids.max") == "20"
    assert cg.procs_files() == [fs.root + d + "cgroup.procs"]


def test_v2_only_available_controllers_enabled(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpu io pids")
    drv = fs.detect()
    with pytest.raises(SkiffError) as e:
        drv.create("skiff", "c1", Limits(memory=64 << 20))
    assert str(e.value) == (
        "memory limit requested but the memory cgroup controller is not available on this host"
    )
    assert not os.path.exists(fs.root + "/sys/fs/cgroup/skiff")
    drv.create("skiff", "c1", Limits(cpus=2, pids=7))
    assert fs.read("/sys/fs/cgroup/cgroup.subtree_control") == "+cpu +pids"
    assert fs.read("/sys/fs/cgroup/skiff/c1/cpu.max") == "200000 100000"
    assert fs.read("/sys/fs/cgroup/skiff/c1/pids.max") == "7"


def test_v2_nested_parent_and_already_enabled(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpu memory pids")
    root = fs.root + "/sys/fs/cgroup"
    fs._write(root + "/cgroup.subtree_control", "cpu memory pids")  # kernel's read format
    fs.detect().create("a/b", "c1", Limits(memory=8 << 20))
    assert fs.read("/sys/fs/cgroup/cgroup.subtree_control") == "cpu memory pids"  # untouched
    assert fs.read("/sys/fs/cgroup/a/cgroup.subtree_control") == "+memory +cpu +pids"
    assert fs.read("/sys/fs/cgroup/a/b/cgroup.subtree_control") == "+memory +cpu +pids"
    assert fs.read("/sys/fs/cgroup/a/b/c1/memory.max") == str(8 << 20)


def test_v2_without_swap_file(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpu memory pids", skip={"memory.swap.max"})
    fs.detect().create("skiff", "c1", Limits(memory=8 << 20))
    assert fs.read("/sys/fs/cgroup/skiff/c1/memory.max") == str(8 << 20)
    assert not os.path.exists(fs.root + "/sys/fs/cgroup/skiff/c1/memory.swap.max")


def test_v2_failure_rolls_back(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpu memory pids", skip={"cpu.max"})
    with pytest.raises(SkiffError, match=r"skiff/c1/cpu\.max"):
        fs.detect().create("skiff", "c1", Limits(memory=8 << 20, cpus=1))
    assert not os.path.exists(fs.root + "/sys/fs/cgroup/skiff")


def test_v2_oom_killed_and_peak(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="cpu memory pids")
    cg = fs.detect().create("skiff", "c1", Limits())
    d = fs.root + "/sys/fs/cgroup/skiff/c1/"
    fs._write(d + "memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 0\noom_group_kill 0\n")
    assert cg.oom_killed() is False
    fs._write(d + "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_killed() is True
    fs._write(d + "memory.peak", "4096\n")
    assert cg.memory_peak() == 4096
    os.unlink(d + "memory.events")
    os.unlink(d + "memory.peak")
    assert cg.oom_killed() is False and cg.memory_peak() is None


def test_shares_to_weight():
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1 and shares_to_weight(10**9) == 10000


# --- common -----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_to_dict_load_roundtrip(fakefs, layout):
    fs = fakefs(HYBRID) if layout == "v1" else fakefs(PURE_V2, v2_controllers="memory cpu pids")
    drv = fs.detect()
    cg = drv.create("skiff", "c1", Limits())
    data = json.loads(json.dumps(cg.to_dict()))
    again = drv.load(data)
    assert type(again) is type(cg)
    assert again.version == cg.version
    assert again.dirs() == cg.dirs()
    assert again.procs_files() == cg.procs_files()
    assert again.to_dict() == cg.to_dict()


def test_load_rejects_garbage(fakefs):
    drv = fakefs(HYBRID).detect()
    for bad in ({}, {"version": 3}, {"version": 1, "name": "x"}):
        with pytest.raises(SkiffError, match="invalid cgroup record"):
            drv.load(bad)


@pytest.mark.parametrize("parent,name", [("skiff", ""), ("", "c1"), ("..", "c1"), ("skiff", "a/b"), ("skiff", "..")])
def test_bad_names(fakefs, parent, name):
    drv = fakefs(HYBRID).detect()
    with pytest.raises(SkiffError, match="invalid cgroup path"):
        drv.create(parent, name, Limits())


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_destroy_idempotent(fakefs, layout):
    fs = fakefs(HYBRID) if layout == "v1" else fakefs(PURE_V2, v2_controllers="memory cpu pids")
    drv = fs.detect()
    keep = drv.create("skiff", "keep", Limits())
    cg = drv.create("skiff", "c1", Limits(pids=3))
    cg.destroy()
    assert not any(os.path.exists(d) for d in cg.dirs())
    assert all(os.path.isdir(d) for d in keep.dirs())  # the parent stays while in use
    cg.destroy()  # again: nothing to do
    keep.destroy()
    parents = [os.path.dirname(d) for d in keep.dirs()]
    assert parents and not any(os.path.exists(p) for p in parents)
    drv.load(keep.to_dict()).destroy()


def test_destroy_busy_cgroup_times_out(fakefs):
    fs = fakefs(PURE_V2, v2_controllers="memory cpu pids")
    cg = fs.detect().create("skiff", "c1", Limits())
    fs._write(cg.path + "/cgroup.procs", "999999999\n")  # a pid that never goes away
    with pytest.raises(SkiffError, match="cannot remove cgroup .*skiff/c1"):
        cg.destroy(timeout=0.05)


def test_kill_all_signals_listed_pids(fakefs):
    fs = fakefs(HYBRID)
    cg = fs.detect().create("skiff", "c1", Limits())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        fs._write(cg.path("pids") + "/cgroup.procs", f"{proc.pid}\n999999999\n")
        assert cg.pids() == [proc.pid, 999999999]
        cg.kill_all(15)
        assert proc.wait(timeout=10) == -15
    finally:
        proc.kill()
        proc.wait()


# --- parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("6m", 6 << 20),
        ("8192k", 8 << 20),
        ("6291456", 6291456),
        ("7340032b", 7340032),
        ("1.5g", 3 << 29),
        ("64mb", 64 << 20),
        ("64MiB", 64 << 20),
        (" 128m ", 128 << 20),
        ("0", 0),
    ],
)
def test_parse_memory_good(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["abc", "", "m", "-64m", "64x", "1.2.3m", ".5g", "5.g", "64 mm", "1e9"])
def test_parse_memory_bad(text):
    with pytest.raises(SkiffError) as e:
        parse_memory(text)
    assert str(e.value) == (
        f'invalid memory limit "{text}": use a number with an optional unit b, k, m or g'
    )


@pytest.mark.parametrize("text", ["100b", "512k", "5m", "6291455", "1"])
def test_parse_memory_below_minimum(text):
    with pytest.raises(SkiffError) as e:
        parse_memory(text)
    assert str(e.value) == "minimum memory limit allowed is 6MB"


@pytest.mark.parametrize("text,value", [("0.5", 0.5), ("2", 2.0), (" 1.25 ", 1.25), ("0.01", 0.01)])
def test_parse_cpus_good(text, value):
    assert parse_cpus(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "nan", "inf", "0.001"])
def test_parse_cpus_bad(text):
    with pytest.raises(SkiffError, match="invalid cpus value"):
        parse_cpus(text)


def test_v1_self_join_uses_tasks_files_v2_cgroup_procs():
    """v1 joins through `tasks` (no global threadgroup lock: no RCU stall); v2 through cgroup.procs."""
    from skiff.runtime.containers.cgroups.v1 import V1Cgroup
    from skiff.runtime.containers.cgroups.v2 import V2Cgroup
    v1 = V1Cgroup("skiff", "c1", {"memory": "/m", "pids": "/p"})
    assert v1.self_join_files() == ["/m/skiff/c1/tasks", "/p/skiff/c1/tasks"]
    v2 = V2Cgroup("skiff", "c2", "/u")
    assert v2.self_join_files() == ["/u/skiff/c2/cgroup.procs"]
