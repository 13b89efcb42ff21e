"""Unit tests for the container's create path (skiff.runtime.containers.init and friends),
with a recording Kernel double: no mounts, no namespaces, no root needed."""

import os
import signal
import stat

import pytest

from skiff.errors import InvalidArgument, SkiffError
from skiff.runtime import kernel as K
from skiff.runtime.containers import caps, init, rootfs, signals, users
from skiff.runtime.containers.rootfs import MASKED_PATHS, READONLY_PATHS
from skiff.runtime.containers.spec import DEFAULT_PATH, ContainerSpec, merge_env
from skiff.runtime.kernel import Kernel
from skiff.runtime.record import Record


class RecordingKernel(Kernel):
    def __init__(self):
        self.calls = []

    def unshare(self, flags):
        self.calls.append(("unshare", flags))

    def setns(self, fd, nstype=0):
        self.calls.append(("setns", fd, nstype))

    def mount(self, source, target, fstype=None, flags=0, data=None):
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount(self, target, flags=0):
        self.calls.append(("umount", target, flags))

    def pivot_root(self, new_root, put_old):
        self.calls.append(("pivot_root", new_root, put_old))

    def sethostname(self, name):
        self.calls.append(("sethostname", name))

    def prctl(self, option, arg2=0, arg3=0):
        self.calls.append(("prctl", option, arg2, arg3))

    def capset(self, effective, permitted, inheritable):
        self.calls.append(("capset", effective, permitted, inheritable))

    @property
    def mounts(self):
        return [c[1:] for c in self.calls if c[0] == "mount"]

    def mounts_on(self, target):
        return [m for m in self.mounts if m[1] == target]


def spec(**kw) -> ContainerSpec:
    base = dict(id="c" * 64, name="n", image="busybox", image_id="sha256:" + "1" * 64,
                created="2024-01-01T00:00:00.000000000Z", hostname="cccccccccccc")
    base.update(kw)
    return ContainerSpec(**base)


@pytest.fixture
def fake_mknod(monkeypatch):
    made = []

    def mknod(path, mode=0o600, device=0):
        made.append((path, mode, device))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
    monkeypatch.setattr(rootfs.os, "mknod", mknod)
    return made


@pytest.fixture
def built(tmp_path, monkeypatch, fake_mknod):
    """build_rootfs over tmp_path as the container dir, with three layers under one parent,
    some masked and read-only paths present in the "rootfs" and the three etc files."""
    monkeypatch.chdir(tmp_path)  # mount_overlay chdirs into the layers' parent
    layers = tmp_path / "layers"
    dirs = []
    for name in ("base", "mid", "top"):
        (layers / name).mkdir(parents=True)
        dirs.append(str(layers / name))
    cdir = tmp_path / "cdir"
    for sub in ("upper", "work", "rootfs"):
        (cdir / sub).mkdir(parents=True)
    root = cdir / "rootfs"
    (root / "proc" / "acpi").mkdir(parents=True)          # masked dir -> ro tmpfs
    (root / "proc" / "kcore").write_text("")              # masked file -> /dev/null bind
    (root / "sys" / "firmware").mkdir(parents=True)       # masked dir
    (root / "proc" / "sys").mkdir()                       # read-only path
    (root / "proc" / "sysrq-trigger").write_text("")      # read-only path
    for name, text in (("hostname", "h\n"), ("hosts", "127.0.0.1\tlocalhost\n"),
                       ("resolv.conf", "nameserver 10.0.0.1\n")):
        (cdir / name).write_text(text)
    k = RecordingKernel()
    r = init.build_rootfs(k, spec(layer_dirs=dirs), str(cdir))
    return k, str(cdir), str(root), r, dirs, fake_mknod


# -- build_rootfs -----------------------------------------------------------------------------


def test_build_rootfs_returns_rootfs(built):
    k, cdir, root, r, dirs, _ = built
    assert r == root == cdir + "/rootfs"


def test_first_mount_makes_root_rprivate(built):
    k = built[0]
    assert k.calls[0] == ("mount", None, "/", None, K.MS_REC | K.MS_PRIVATE, None)


def test_overlay_mount_data(built, tmp_path):
    k, cdir, root, _, dirs, _ = built
    ov = k.mounts[1]
    assert ov[:4] == ("overlay", root, "overlay", 0)
    assert ov[4] == f"lowerdir=top:mid:base,upperdir={cdir}/upper,workdir={cdir}/work"
    # the short lower names are relative to the layers' parent, where the mount runs
    assert os.getcwd() == str(tmp_path / "layers")


def test_overlay_lowerdirs_different_parents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    k = RecordingKernel()
    rootfs.mount_overlay(k, ["/a/one", "/b/two", "/c/three"], "/u", "/w", "/t")
    assert k.mounts == [("overlay", "/t", "overlay", 0,
                         "lowerdir=/c/three:/b/two:/a/one,upperdir=/u,workdir=/w")]
    assert os.getcwd() == str(tmp_path)


def test_overlay_single_layer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "L" / "only").mkdir(parents=True)
    k = RecordingKernel()
    rootfs.mount_overlay(k, [str(tmp_path / "L" / "only")], "/u", "/w", "/t")
    assert k.mounts[0][4] == "lowerdir=only,upperdir=/u,workdir=/w"


def test_proc_mount(built):
    k, _, root, *_ = built
    assert k.mounts_on(root + "/proc") == [
        ("proc", root + "/proc", "proc", K.MS_NOSUID | K.MS_NODEV | K.MS_NOEXEC, None)]


def test_sysfs_read_only(built):
    k, _, root, *_ = built
    (m,) = k.mounts_on(root + "/sys")
    assert m[0] == "sysfs" and m[2] == "sysfs"
    assert m[3] & K.MS_RDONLY
    assert m[3] & K.MS_NOSUID and m[3] & K.MS_NODEV and m[3] & K.MS_NOEXEC


def test_dev_tmpfs_and_devpts_newinstance(built):
    k, _, root, *_ = built
    dev = root + "/dev"
    (tmpfs,) = k.mounts_on(dev)
    assert tmpfs[0] == "tmpfs" and tmpfs[2] == "tmpfs"
    assert tmpfs[3] & K.MS_NOSUID and not tmpfs[3] & K.MS_NOEXEC
    assert "mode=755" in tmpfs[4]
    (pts,) = k.mounts_on(dev + "/pts")
    assert pts[0] == "devpts" and pts[2] == "devpts"
    opts = pts[4].split(",")
    assert "newinstance" in opts and "ptmxmode=0666" in opts
    assert pts[3] & K.MS_NOSUID and pts[3] & K.MS_NOEXEC
    (shm,) = k.mounts_on(dev + "/shm")
    assert shm[2] == "tmpfs"
    (mq,) = k.mounts_on(dev + "/mqueue")
    assert mq[2] == "mqueue"


def test_dev_mounted_before_devpts(built):
    k, _, root, *_ = built
    targets = [m[1] for m in k.mounts]
    assert targets.index(root + "/dev") < targets.index(root + "/dev/pts")
    assert targets.index(root) < targets.index(root + "/proc")


def test_devices_created(built):
    k, _, root, _, _, made = built
    dev = root + "/dev"
    got = {os.path.basename(p): (mode, device) for p, mode, device in made}
    assert set(got) == {"null", "zero", "full", "random", "urandom", "tty"}
    assert got["null"] == (0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert got["tty"] == (0o666 | stat.S_IFCHR, os.makedev(5, 0))
    assert os.readlink(dev + "/ptmx") == "pts/ptmx"
    assert os.readlink(dev + "/fd") == "/proc/self/fd"
    assert os.readlink(dev + "/stderr") == "/proc/self/fd/2"
    assert stat.S_IMODE(os.stat(dev + "/shm").st_mode) == 0o1777


def test_masked_paths_only_when_present(built):
    k, _, root, *_ = built
    masked = {m[1]: m for m in k.mounts if m[1][len(root):] in MASKED_PATHS}
    assert set(masked) == {root + "/proc/acpi", root + "/proc/kcore", root + "/sys/firmware"}
    assert masked[root + "/proc/kcore"] == ("/dev/null", root + "/proc/kcore", None, K.MS_BIND, None)
    for d in ("/proc/acpi", "/sys/firmware"):
        assert masked[root + d] == ("tmpfs", root + d, "tmpfs", K.MS_RDONLY, None)


def test_read_only_paths_bind_then_remount_ro(built):
    k, _, root, *_ = built
    ro = [m for m in k.mounts if m[1][len(root):] in READONLY_PATHS]
    assert ro == [
        (root + "/proc/sys", root + "/proc/sys", None, K.MS_BIND | K.MS_REC, None),
        (None, root + "/proc/sys", None, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | K.MS_REC, None),
        (root + "/proc/sysrq-trigger", root + "/proc/sysrq-trigger", None, K.MS_BIND | K.MS_REC, None),
        (None, root + "/proc/sysrq-trigger", None,
         K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | K.MS_REC, None),
    ]


def test_masks_after_proc_and_sys(built):
    k, _, root, *_ = built
    targets = [m[1] for m in k.mounts]
    assert targets.index(root + "/proc") < targets.index(root + "/proc/kcore")
    assert targets.index(root + "/sys") < targets.index(root + "/sys/firmware")


def test_etc_files_bind_mounted(built):
    k, cdir, root, *_ = built
    binds = [m for m in k.mounts if m[1].startswith(root + "/etc/")]
    assert binds == [(f"{cdir}/{n}", f"{root}/etc/{n}", None, K.MS_BIND, None)
                     for n in ("hostname", "hosts", "resolv.conf")]
    for n in ("hostname", "hosts", "resolv.conf"):
        assert os.path.isfile(f"{root}/etc/{n}")


def test_etc_files_missing_in_cdir_not_bound(tmp_path, monkeypatch, fake_mknod):
    monkeypatch.chdir(tmp_path)
    cdir = tmp_path / "c"
    (cdir / "rootfs").mkdir(parents=True)
    (cdir / "hosts").write_text("x\n")
    k = RecordingKernel()
    init.build_rootfs(k, spec(layer_dirs=[]), str(cdir))
    binds = [m[1] for m in k.mounts if "/etc/" in m[1]]
    assert binds == [f"{cdir}/rootfs/etc/hosts"]


def test_bind_etc_replaces_symlink_in_rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    os.symlink("../run/systemd/resolve/stub-resolv.conf", tmp_path / "etc" / "resolv.conf")
    k = RecordingKernel()
    rootfs.bind_etc_files(k, str(tmp_path), {"resolv.conf": "/src/resolv.conf"})
    target = str(tmp_path / "etc" / "resolv.conf")
    assert not os.path.islink(target) and os.path.isfile(target)
    assert k.mounts == [("/src/resolv.conf", target, None, K.MS_BIND, None)]


def test_bind_file_readonly(tmp_path):
    k = RecordingKernel()
    rootfs.bind_file(k, "/src", str(tmp_path / "t"), readonly=True)
    assert k.mounts == [("/src", str(tmp_path / "t"), None, K.MS_BIND, None),
                        (None, str(tmp_path / "t"), None, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY, None)]


def test_build_rootfs_makes_no_other_kernel_calls(built):
    k = built[0]
    assert {c[0] for c in k.calls} == {"mount"}


def test_pivot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    k = RecordingKernel()
    monkeypatch.setattr(rootfs.os, "chdir", lambda p: k.calls.append(("chdir", p)))
    rootfs.pivot(k, "/the/rootfs")
    assert k.calls == [("chdir", "/the/rootfs"), ("pivot_root", ".", "."),
                       ("umount", ".", K.MNT_DETACH), ("chdir", "/")]


# -- namespaces -------------------------------------------------------------------------------


def _mode(name):
    from skiff.runtime.network.modes import parse_mode
    return parse_mode(name)


def test_namespace_flags_private_network():
    assert init.namespace_flags(_mode("none")) == (K.CLONE_NEWNS | K.CLONE_NEWUTS | K.CLONE_NEWIPC
                                                   | K.CLONE_NEWNET)


def test_namespace_flags_host_network():
    f = init.namespace_flags(_mode("host"))
    assert f == K.CLONE_NEWNS | K.CLONE_NEWUTS | K.CLONE_NEWIPC
    assert not f & K.CLONE_NEWNET
    assert not f & K.CLONE_NEWPID  # the monitor's fork made the PID namespace already


@pytest.mark.parametrize("name,kind,network,container,new_ns", [
    ("bridge", "bridge", "bridge", "", True),
    ("", "bridge", "bridge", "", True),
    ("mynet", "bridge", "mynet", "", True),
    ("container:web", "container", "", "web", False),
    ("none", "none", "", "", True),
    ("host", "host", "", "", False),
])
def test_network_modes(name, kind, network, container, new_ns):
    m = _mode(name)
    assert (m.kind, m.network, m.container, m.new_namespace) == (kind, network, container, new_ns)


def test_network_mode_container_needs_a_name():
    with pytest.raises(InvalidArgument) as ei:
        _mode("container:")
    assert ei.value.exit_code == 125


# -- find_executable -----------------------------------------------------------------------------


@pytest.fixture
def bins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "tool").write_text("#!/bin/sh\n")
    (a / "tool").chmod(0o644)                   # not executable
    (b / "tool").write_text("#!/bin/sh\n")
    (b / "tool").chmod(0o755)
    (a / "noexec").write_text("")
    (a / "noexec").chmod(0o644)
    (b / "adir").mkdir()
    (b / "run").write_text("")
    (b / "run").chmod(0o700)
    return a, b


def env_path(*dirs):
    return ["HOME=/", "PATH=" + ":".join(str(d) for d in dirs)]


def test_find_in_path_skips_non_executable(bins):
    a, b = bins
    assert init.find_executable("tool", env_path(a, b)) == str(b / "tool")


def test_find_in_path_first_match(bins):
    a, b = bins
    (a / "run").write_text("")
    (a / "run").chmod(0o755)
    assert init.find_executable("run", env_path(a, b)) == str(a / "run")
    assert init.find_executable("run", env_path(b, a)) == str(b / "run")


def test_find_non_executable_is_126(bins):
    a, b = bins
    with pytest.raises(SkiffError) as ei:
        init.find_executable("noexec", env_path(a, b))
    assert ei.value.exit_code == 126
    assert str(ei.value) == 'exec: "noexec": permission denied'


def test_find_directory_is_126(bins):
    a, b = bins
    with pytest.raises(SkiffError) as ei:
        init.find_executable("adir", env_path(a, b))
    assert ei.value.exit_code == 126


def test_find_missing_is_127(bins):
    a, b = bins
    with pytest.raises(SkiffError) as ei:
        init.find_executable("nope", env_path(a, b))
    assert ei.value.exit_code == 127
    assert str(ei.value) == 'exec: "nope": executable file not found in $PATH'


def test_find_absolute(bins):
    a, b = bins
    assert init.find_executable(str(b / "tool"), []) == str(b / "tool")
    with pytest.raises(SkiffError) as ei:
        init.find_executable(str(a / "tool"), env_path(b))
    assert ei.value.exit_code == 126
    with pytest.raises(SkiffError) as ei:
        init.find_executable(str(a / "missing"), env_path(b))
    assert ei.value.exit_code == 127
    assert str(ei.value) == f'exec: "{a}/missing": stat {a}/missing: no such file or directory'
    with pytest.raises(SkiffError) as ei:
        init.find_executable(str(b / "adir"), env_path(b))
    assert ei.value.exit_code == 126


def test_find_absolute_ignores_path(bins):
    a, b = bins
    # an absolute name is not searched for in PATH even if PATH has a file with that base name
    with pytest.raises(SkiffError) as ei:
        init.find_executable("/nonexistent/tool", env_path(b))
    assert ei.value.exit_code == 127


def test_find_relative_with_slash_uses_cwd(bins, monkeypatch):
    a, b = bins
    monkeypatch.chdir(b)
    assert init.find_executable("./run", env_path(a)) == "./run"
    assert init.find_executable("./tool", env_path(a)) == "./tool"


def test_find_relative_with_slash_not_searched_in_path(bins, monkeypatch):
    a, b = bins
    monkeypatch.chdir(a)
    # "./tool" is a's non-executable tool, never b/tool from PATH
    with pytest.raises(SkiffError) as ei:
        init.find_executable("./tool", env_path(b))
    assert ei.value.exit_code == 126


def test_find_empty_path_element_is_cwd(bins, monkeypatch):
    a, b = bins
    monkeypatch.chdir(b)
    assert init.find_executable("run", ["PATH=" + str(a) + ":"]) == "./run"


# -- users ----------------------------------------------------------------------------------


@pytest.fixture
def etc(tmp_path):
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "# comment line\n"
        "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
        "nohome:x:1001:1001::::\n"
        "short:x:5\n")
    (tmp_path / "group").write_text(
        "root:x:0:\n"
        "wheel:x:10:alice,root\n"
        "staff:x:50:bob,alice\n"
        "alice:x:1000:\n"
        "other:x:77:bob\n")
    return str(tmp_path)


def test_user_by_name(etc):
    u = users.resolve("alice", etc)
    assert (u.uid, u.gid, u.home, u.groups) == (1000, 1000, "/home/alice", [10, 50])


def test_user_by_uid(etc):
    u = users.resolve("1000", etc)
    assert (u.uid, u.gid, u.home, u.groups) == (1000, 1000, "/home/alice", [10, 50])


def test_user_name_and_group_name(etc):
    u = users.resolve("alice:staff", etc)
    assert (u.uid, u.gid) == (1000, 50)
    assert u.groups == [10, 50]


def test_user_uid_and_gid(etc):
    u = users.resolve("1000:77", etc)
    assert (u.uid, u.gid) == (1000, 77)


def test_unknown_uid_and_gid_numbers_allowed(etc):
    u = users.resolve("4242:4343", etc)
    assert (u.uid, u.gid, u.home, u.groups) == (4242, 4343, "/", [])


def test_unknown_uid_gets_gid_0(etc):
    u = users.resolve("4242", etc)
    assert (u.uid, u.gid, u.home, u.groups) == (4242, 0, "/", [])


def test_default_user_is_root(etc):
    for spec_ in ("", "root", "0"):
        u = users.resolve(spec_, etc)
        assert (u.uid, u.gid, u.home) == (0, 0, "/root")
        assert u.groups == [10]


def test_user_without_home_gets_slash(etc):
    assert users.resolve("nohome", etc).home == "/"


def test_unknown_user_name(etc):
    with pytest.raises(SkiffError) as ei:
        users.resolve("mallory", etc)
    assert str(ei.value) == "unable to find user mallory: no matching entries in passwd file"
    assert ei.value.exit_code == 125


def test_unknown_group_name(etc):
    with pytest.raises(SkiffError) as ei:
        users.resolve("alice:nogroup", etc)
    assert str(ei.value) == "unable to find group nogroup: no matching entries in group file"


def test_malformed_passwd_line_ignored(etc):
    with pytest.raises(SkiffError):
        users.resolve("short", etc)


def test_no_etc_files(tmp_path):
    u = users.resolve("123:456", str(tmp_path))
    assert (u.uid, u.gid, u.groups) == (123, 456, [])
    with pytest.raises(SkiffError):
        users.resolve("alice", str(tmp_path))


# -- capabilities ------------------------------------------------------------------------------


def test_default_mask_value():
    assert caps.DEFAULT_MASK == 0xa80425fb


def test_default_caps_are_dockers_fourteen():
    assert len(caps.DEFAULT_CAPS) == 14
    assert caps.mask(["CHOWN", "KILL"]) == (1 << 0) | (1 << 5)


def test_drop_bounding_drops_exactly_the_others(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 40)
    k = RecordingKernel()
    caps.drop_bounding(k)
    dropped = [c[2] for c in k.calls]
    assert all(c[0] == "prctl" and c[1] == K.PR_CAPBSET_DROP and c[3] == 0 for c in k.calls)
    kept = {caps.CAP_NUMBERS[n] for n in caps.DEFAULT_CAPS}
    assert dropped == sorted(set(range(41)) - kept)
    assert len(dropped) == 41 - 14
    names = {n for n, v in caps.CAP_NUMBERS.items() if v in dropped}
    assert {"SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "CHECKPOINT_RESTORE"} <= names
    assert not names & set(caps.DEFAULT_CAPS)


def test_drop_bounding_follows_last_cap(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 37)
    k = RecordingKernel()
    caps.drop_bounding(k)
    assert max(c[2] for c in k.calls) == 37


def test_drop_bounding_custom_keep(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 3)
    k = RecordingKernel()
    caps.drop_bounding(k, keep=0b0101)
    assert [c[2] for c in k.calls] == [1, 3]


def test_apply_sets_sets_then_no_new_privs():
    k = RecordingKernel()
    caps.apply(k)
    assert k.calls == [("capset", caps.DEFAULT_MASK, caps.DEFAULT_MASK, 0),
                       ("prctl", K.PR_SET_NO_NEW_PRIVS, 1, 0)]


def test_last_cap_reads_proc():
    n = caps.last_cap()
    assert isinstance(n, int) and n >= 36


# -- signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,num", [
    ("KILL", 9), ("SIGKILL", 9), ("SIGTERM", 15), ("term", 15), ("9", 9), ("usr1", 10),
    ("sigusr2", 12), (" HUP ", 1), ("64", 64), (15, 15), ("SIGRTMIN", int(signal.SIGRTMIN)),
])
def test_signal_parse(text, num):
    assert signals.parse(text) == num


@pytest.mark.parametrize("text", ["BOGUS", "SIG", "0", "65", "-9", "", "9x", "SIGKILLX",
                                  "Signals"])
def test_signal_parse_bad(text):
    with pytest.raises(InvalidArgument) as ei:
        signals.parse(text)
    assert str(ei.value) == f"invalid signal: {text}"
    assert ei.value.exit_code == 125


# -- merge_env ------------------------------------------------------------------------------------


def test_merge_env_defaults():
    assert merge_env([], [], "h", False) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h"]


def test_merge_env_tty_adds_term():
    assert merge_env([], [], "h", True) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "TERM=xterm"]


def test_merge_env_image_then_user_override_in_place():
    env = merge_env(["PATH=/x", "A=1", "B=2"], ["B=3", "C=4", "A=5", "TERM=dumb"], "h", True)
    assert env == ["PATH=/x", "HOSTNAME=h", "TERM=dumb", "A=5", "B=3", "C=4"]


def test_merge_env_user_can_set_hostname():
    assert merge_env([], ["HOSTNAME=x"], "h", False)[1] == "HOSTNAME=x"


def test_merge_env_name_only_from_caller(monkeypatch):
    monkeypatch.setenv("SKIFF_T_SET", "v=1")
    monkeypatch.delenv("SKIFF_T_UNSET", raising=False)
    env = merge_env(["SKIFF_T_UNSET"], ["SKIFF_T_SET", "SKIFF_T_UNSET"], "h", False)
    assert env == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "SKIFF_T_SET=v=1"]


def test_merge_env_value_with_equals_and_empty():
    env = merge_env([], ["A=b=c", "E="], "h", False)
    assert env[-2:] == ["A=b=c", "E="]


# -- Record -----------------------------------------------------------------------------------


class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = []
    meta: dict = {}


class Point3(Point):
    z: int = 9


def test_record_positional_and_keyword():
    p = Point(1, 2)
    assert (p.x, p.y) == (1, 2)
    q = Point(x=1)
    assert (q.x, q.y, q.tags, q.meta) == (1, 0, [], {})


def test_record_defaults_copied_per_instance():
    a, b = Point(1), Point(2)
    a.tags.append("t")
    a.meta["k"] = "v"
    assert b.tags == [] and b.meta == {}
    assert Point.tags == [] and Point.meta == {}
    assert Point(3).tags == []


def test_record_fields_in_order_through_bases():
    assert Point3._fields == ("x", "y", "tags", "meta", "z")
    p = Point3(1, 2, ["a"], {}, 3)
    assert p.z == 3 and p.tags == ["a"]


def test_record_missing_required():
    with pytest.raises(TypeError, match="missing field 'x'"):
        Point()


def test_record_too_many_args():
    with pytest.raises(TypeError):
        Point(1, 2, [], {}, 5)


def test_record_unknown_kw():
    with pytest.raises(TypeError, match="unknown fields"):
        Point(1, w=2)


def test_record_to_from_dict():
    p = Point(1, 2, ["a"], {"k": 1})
    assert p.to_dict() == {"x": 1, "y": 2, "tags": ["a"], "meta": {"k": 1}}
    q = Point.from_dict({"x": 1, "y": 2, "tags": ["a"], "meta": {"k": 1}, "unknown": 5})
    assert q == p
    assert not hasattr(q, "unknown")


def test_record_from_dict_fills_defaults():
    assert Point.from_dict({"x": 4}) == Point(4, 0, [], {})


def test_record_equality():
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point3(1, 2) != Point(1, 2)  # different types
    assert Point(1) != {"x": 1, "y": 0, "tags": [], "meta": {}}


def test_record_repr():
    assert repr(Point(1)) == "Point(x=1, y=0, tags=[], meta={})"
