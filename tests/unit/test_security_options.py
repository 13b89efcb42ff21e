"""Container security options without root: capability names and docker's arithmetic over them,
--group-add resolution, --read-only in the create path (a recording Kernel double), and a pod's
securityContext turned into runtime options and the kubelet's runAsNonRoot check."""

import os

import pytest

from skiff.agent.env import ConfigError
from skiff.agent.security import apply_security_context, verify_run_as_non_root
from skiff.errors import InvalidArgument, SkiffError
from skiff.runtime import kernel as K
from skiff.runtime.containers import caps, init, rootfs, users
from skiff.runtime.containers.create import CreateOptions
from skiff.runtime.containers.spec import ContainerSpec
from tests.unit.test_container_init import RecordingKernel, fake_mknod, spec  # noqa: F401 - a fixture

NET_BIND_SERVICE, NET_ADMIN, MKNOD, CHOWN = 1 << 10, 1 << 12, 1 << 27, 1 << 0
EVERY = (1 << 41) - 1   # every capability of a kernel whose last is 40 (CHECKPOINT_RESTORE)


@pytest.fixture(autouse=True)
def kernel_knows_40(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 40)


# -- names -------------------------------------------------------------------------------------


def test_names_take_docker_spelling():
    assert caps.normalize(["net_admin", "CAP_sys_ptrace", "all", " Chown ", "cap_CHECKPOINT_RESTORE"],
                          "CapAdd") == ["CAP_NET_ADMIN", "CAP_SYS_PTRACE", "ALL", "CAP_CHOWN",
                                        "CAP_CHECKPOINT_RESTORE"]
    assert caps.normalize([], "CapDrop") == []


@pytest.mark.parametrize("name,shown", [("bogus", "CAP_BOGUS"), ("CAP_", "CAP_"), ("cap_net", "CAP_NET"),
                                        ("", "CAP_")])
def test_unknown_name_is_one_line_naming_it(name, shown):
    with pytest.raises(InvalidArgument) as ei:
        caps.normalize(["NET_ADMIN", name], "CapDrop")
    assert str(ei.value) == f'invalid CapDrop: unknown capability: "{shown}"'
    assert ei.value.exit_code == 125


def test_a_name_the_kernel_does_not_have_is_unknown(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 37)    # a kernel before PERFMON
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_PERFMON"'):
        caps.normalize(["perfmon"], "CapAdd")
    assert caps.normalize(["AUDIT_READ"], "CapAdd") == ["CAP_AUDIT_READ"]


# -- docker's arithmetic ---------------------------------------------------------------------------


def keep(add=(), drop=()):
    return caps.keep_mask(caps.normalize(list(add), "CapAdd"), caps.normalize(list(drop), "CapDrop"))


def test_no_options_is_the_default_set():
    assert keep() == caps.DEFAULT_MASK == 0xa80425fb


def test_drop_all_keeps_only_the_adds():
    assert keep(add=["NET_BIND_SERVICE"], drop=["ALL"]) == NET_BIND_SERVICE == 0x400
    assert keep(drop=["all"]) == 0


def test_add_and_drop_change_the_default_set():
    assert keep(add=["net_admin"]) == caps.DEFAULT_MASK | NET_ADMIN
    assert keep(drop=["CAP_CHOWN", "mknod"]) == caps.DEFAULT_MASK & ~CHOWN & ~MKNOD
    # a name both added and dropped is kept (docker drops, then adds)
    assert keep(add=["CHOWN"], drop=["CHOWN"]) == caps.DEFAULT_MASK


def test_add_all_is_every_capability_less_the_named_drops():
    assert keep(add=["ALL"]) == EVERY
    assert keep(add=["ALL"], drop=["MKNOD"]) == EVERY & ~MKNOD
    assert keep(add=["ALL"], drop=["ALL"]) == EVERY


def test_add_all_follows_the_kernel(monkeypatch):
    monkeypatch.setattr(caps, "last_cap", lambda: 37)
    assert caps.keep_mask(["ALL"], []) == (1 << 38) - 1


def test_switch_user_applies_the_kept_set_to_every_set(monkeypatch, tmp_path):
    (tmp_path / "group").write_text("root:x:0:\nstaff:x:50:\n")
    monkeypatch.setattr(init, "resolve_user", lambda u, etc, extra: users.resolve(u, str(tmp_path), extra))
    groups = []
    monkeypatch.setattr(init.os, "setgroups", groups.append)
    k = RecordingKernel()
    s = spec(cap_add=["CAP_NET_BIND_SERVICE"], cap_drop=["ALL"], group_add=["staff", "1234"])
    init.switch_user(k, "0", s)
    dropped = [c[2] for c in k.calls if c[:2] == ("prctl", K.PR_CAPBSET_DROP)]
    assert dropped == [n for n in range(41) if n != 10]          # bounding: only bit 10 left
    assert ("capset", 0x400, 0x400, 0) in k.calls                 # permitted and effective
    assert k.calls[-1] == ("prctl", K.PR_SET_NO_NEW_PRIVS, 1, 0)  # no_new_privs, always
    assert groups == [[50, 1234]]


# -- --group-add -----------------------------------------------------------------------------------


def test_group_add_numbers_and_names_join_the_users_groups(tmp_path):
    (tmp_path / "passwd").write_text("app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "group").write_text("app:x:1000:\nwheel:x:10:app\naudio:x:29:\n")
    u = users.resolve("app", str(tmp_path), ["audio", "1234", "10"])
    assert (u.uid, u.gid, u.groups) == (1000, 1000, [10, 29, 1234])
    assert users.resolve("app", str(tmp_path)).groups == [10]
    assert users.resolve("4321", str(tmp_path), ["7"]).groups == [7]   # a uid without an entry too
    with pytest.raises(SkiffError) as ei:
        users.resolve("app", str(tmp_path), ["nosuch"])
    assert str(ei.value) == "unable to find group nosuch: no matching entries in group file"


# -- --read-only -----------------------------------------------------------------------------------


READ_ONLY = K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY


def build(tmp_path, name, **kw):
    """build_rootfs over a fresh container dir ``name``: (recording kernel, its rootfs path)."""
    cdir = tmp_path / name
    for sub in ("upper", "work", "rootfs"):
        (cdir / sub).mkdir(parents=True)
    k = RecordingKernel()
    init.build_rootfs(k, spec(layer_dirs=[str(tmp_path / "layer")], **kw), str(cdir))
    return k, str(cdir / "rootfs")


def test_read_only_remounts_only_the_root_itself_after_every_other_mount(tmp_path, monkeypatch, fake_mknod):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layer").mkdir()
    (tmp_path / "vol").mkdir()
    k, root = build(tmp_path, "ro", read_only=True, workdir="/srv/app",
                    mounts=[{"source": str(tmp_path / "vol"), "destination": "/data", "readonly": False}])
    assert k.mounts[-1] == (None, root, None, READ_ONLY, None)   # not MS_REC: the mounts on it keep their mode
    assert [m for m in k.mounts if m[1] == root + "/data" and m[3] & K.MS_RDONLY] == []
    assert os.path.isdir(root + "/srv/app")                      # the workdir is made before
    k, root = build(tmp_path, "rw")
    assert [m for m in k.mounts if m[1] == root and m[3] & K.MS_RDONLY] == []


def test_read_only_without_workdir(tmp_path):
    k = RecordingKernel()
    rootfs.make_read_only(k, str(tmp_path))
    assert k.mounts == [(None, str(tmp_path), None, READ_ONLY, None)]
    assert list(tmp_path.iterdir()) == []


def test_spec_without_the_options_loads_with_defaults():
    s = ContainerSpec.from_dict({"id": "c", "name": "n", "image": "i", "image_id": "x", "created": "t"})
    assert (s.cap_add, s.cap_drop, s.read_only, s.group_add) == ([], [], False, [])


# -- a pod's securityContext -------------------------------------------------------------------------


def pod(pod_sc=None, ctr_sc=None, name="web"):
    c = {"name": "main", "image": "busybox"}
    if ctr_sc is not None:
        c["securityContext"] = ctr_sc
    spec = {"containers": [c]}
    if pod_sc is not None:
        spec["securityContext"] = pod_sc
    return {"metadata": {"name": name, "namespace": "prod", "uid": "u-1"}, "spec": spec}, c


def test_security_context_becomes_runtime_options():
    p, c = pod({"runAsUser": 1001, "fsGroup": 2000, "supplementalGroups": [3000, 3001]},
               {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False})
    opts = CreateOptions(image="busybox")
    apply_security_context(opts, p["spec"], c)
    assert opts.cap_add == ["NET_BIND_SERVICE"] and opts.cap_drop == ["ALL"]
    assert opts.read_only is True
    assert opts.group_add == ["2000", "3000", "3001"]
    opts = CreateOptions(image="busybox")
    apply_security_context(opts, {"securityContext": {"supplementalGroups": [5]}}, {"name": "x"})
    assert (opts.cap_add, opts.cap_drop, opts.read_only, opts.group_add) == ([], [], False, ["5"])


WHERE = '(pod: "web_prod(u-1)", container: main)'


def never() -> str:
    raise AssertionError("the image's user is not needed")


@pytest.mark.parametrize("pod_sc,ctr_sc", [
    ({"runAsNonRoot": True, "runAsUser": 0}, None),
    ({"runAsNonRoot": True}, {"runAsUser": 0}),
    (None, {"runAsNonRoot": True, "runAsUser": 0}),
    ({"runAsUser": 1000}, {"runAsNonRoot": True, "runAsUser": 0}),   # the container's wins
])
def test_run_as_user_zero_breaks_the_policy(pod_sc, ctr_sc):
    p, c = pod(pod_sc, ctr_sc)
    with pytest.raises(ConfigError) as ei:
        verify_run_as_non_root(p, c, never)
    assert str(ei.value) == f"container's runAsUser breaks non-root policy {WHERE}"
    assert ei.value.reason == "CreateContainerConfigError"


@pytest.mark.parametrize("image_user,message", [
    ("", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ("0", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ("0:1000", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ("nginx", "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user "
              f"is non-root {WHERE}"),
    ("root:root", "container has runAsNonRoot and image has non-numeric user (root), cannot verify "
                  f"user is non-root {WHERE}"),
])
def test_image_user_must_be_a_non_zero_uid(image_user, message):
    p, c = pod({"runAsNonRoot": True})
    with pytest.raises(ConfigError) as ei:
        verify_run_as_non_root(p, c, lambda: image_user)
    assert str(ei.value) == message


@pytest.mark.parametrize("pod_sc,ctr_sc,image_user", [
    ({"runAsNonRoot": True, "runAsUser": 1000}, None, None),
    ({"runAsNonRoot": True}, None, "1001"),
    ({"runAsNonRoot": True}, None, "1001:0"),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, None),   # the container's wins
    ({"runAsUser": 0}, None, None),                               # no policy: root is fine
    (None, None, None),
])
def test_what_passes(pod_sc, ctr_sc, image_user):
    p, c = pod(pod_sc, ctr_sc)
    verify_run_as_non_root(p, c, never if image_user is None else lambda: image_user)


def test_privileged_security_context_and_sysctls_in_host_namespaces():
    from skiff.agent.security import forbidden_sysctl
    opts = CreateOptions(image="x")
    apply_security_context(opts, {}, {"name": "c", "securityContext": {"privileged": True}})
    assert opts.privileged is True
    apply_security_context(opts, {}, {"name": "c", "securityContext": {"privileged": False}})
    assert opts.privileged is False
    # the kubelet's sysctl admission: none in a namespace shared with the host
    net = {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}}
    ipc = {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}}
    assert forbidden_sysctl(net) == forbidden_sysctl(ipc) == "" == forbidden_sysctl({**net, "hostIPC": True})
    assert forbidden_sysctl({**net, "hostNetwork": True}) == \
        'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled'
    assert forbidden_sysctl({**ipc, "hostIPC": True}) == \
        'forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host ipc enabled'


def test_privileged_keeps_every_capability_of_the_bounding_set(monkeypatch, tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **kw: real_open(status if p == "/proc/self/status" else p, *a, **kw))
    assert caps.all_mask() == EVERY & ~(1 << 24)


def test_seccomp_profile_of_pods():
    def mode(pod_sc, sc):
        o = CreateOptions(image="busybox")
        apply_security_context(o, {"securityContext": pod_sc}, {"name": "c", "securityContext": sc})
        return o.seccomp
    assert mode({}, {}) == "unconfined"                                            # Kubernetes' default
    assert mode({"seccompProfile": {"type": "RuntimeDefault"}}, {}) == "default"
    assert mode({"seccompProfile": {"type": "RuntimeDefault"}}, {"seccompProfile": {"type": "Unconfined"}}) \
        == "unconfined"                                                            # the container's wins
    assert mode({}, {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}) == "default"


def test_seccomp_filter_denies_by_capability():
    from skiff.runtime.containers import seccomp
    base = seccomp.denied(caps.DEFAULT_MASK)
    assert {"unshare", "mount", "keyctl", "bpf", "setns", "reboot", "init_module"} <= set(base)
    assert "ptrace" not in base and "chroot" not in base
    admin = seccomp.denied(caps.DEFAULT_MASK | 1 << seccomp.CAP_SYS_ADMIN)
    assert "unshare" not in admin and "mount" not in admin and "keyctl" in admin
    prog = seccomp.build(caps.DEFAULT_MASK, machine="x86_64")
    assert len(prog) % 8 == 0 and 100 < len(prog) // 8 < 400
    assert seccomp.build(caps.DEFAULT_MASK, machine="aarch64") is None
