"""A pod's securityContext enforced on real containers by a real agent (one-host cluster):
capabilities, readOnlyRootFilesystem, runAsUser with fsGroup and supplementalGroups, and the
kubelet's runAsNonRoot check."""
from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import wait_for
from tests.integration.onehost import ctr, host, pod  # noqa: F401 - host is a fixture

pytestmark = [needs_root, pytest.mark.timeout(180)]


def cstatus(p: dict, name: str) -> dict:
    return next((c for c in p.get("status", {}).get("containerStatuses") or [] if c["name"] == name), {})


def waiting(p: dict, name: str) -> dict:
    return cstatus(p, name).get("state", {}).get("waiting") or {}


def output(host, name: str, container: str = "main") -> str:
    """The container's log once it printed DONE."""
    return wait_for(lambda: (lambda t: t if "DONE" in t else None)(
        host.ctl("logs", name, "-c", container).stdout), 30, what=f"the output of {name}/{container}")


def status_field(out: str, field: str) -> int:
    return int(next(ln.split(":")[1] for ln in out.splitlines() if ln.startswith(field + ":")), 16)


def test_capabilities_drop_all_add_one(host):
    host.apply(pod("caps", ctr("main", "grep Cap /proc/self/status; echo DONE; exec sleep 3600",
                               securityContext={"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                                                "allowPrivilegeEscalation": False})),
               pod("badcap", ctr("main", "exec sleep 3600",
                                 securityContext={"capabilities": {"add": ["NO_SUCH_THING"]}})))
    host.wait_phase("caps", "Running")
    out = output(host, "caps")
    assert [status_field(out, f) for f in ("CapEff", "CapPrm", "CapBnd", "CapInh")] == [0x400, 0x400, 0x400, 0]
    # the API server takes any name, as Kubernetes does; the runtime refuses an unknown one
    p = wait_for(lambda: (lambda p: p if waiting(p, "main").get("reason") == "CreateContainerError" else None)(
        host.pod("badcap")), 30, what="badcap's CreateContainerError")
    assert waiting(p, "main")["message"] == 'invalid CapAdd: unknown capability: "CAP_NO_SUCH_THING"'


def test_seccomp_profile_runtime_default_and_unconfined(host):
    """seccompProfile RuntimeDefault (the container's, over the pod's Unconfined) is docker's
    default profile: a user namespace is refused; the pod's Unconfined leaves the other
    container without a filter, as does no profile at all (Kubernetes' default)."""
    script = "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS-OK; echo DONE; exec sleep 3600"
    host.apply(pod("secc", ctr("main", script, securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
                   ctr("open", script), securityContext={"seccompProfile": {"type": "Unconfined"}}),
               pod("plain", ctr("main", script)))
    host.wait_phase("secc", "Running")
    out = output(host, "secc")
    assert "Seccomp:\t2" in out and "USERNS-OK" not in out and "Operation not permitted" in out, out
    out = output(host, "secc", "open")
    assert "Seccomp:\t0" in out and "USERNS-OK" in out, out
    host.wait_phase("plain", "Running")
    assert "Seccomp:\t0" in output(host, "plain")
    host.ctl("delete", "pod", "secc", "plain")


def test_read_only_root_filesystem_with_a_writable_empty_dir(host):
    host.apply(pod("ro", ctr("main", "touch /x; touch /scratch/ok && echo SCRATCH-OK; echo DONE; exec sleep 3600",
                             securityContext={"readOnlyRootFilesystem": True},
                             volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}]),
                   volumes=[{"name": "scratch", "emptyDir": {}}]))
    host.wait_phase("ro", "Running")
    out = output(host, "ro")
    assert "touch: /x: Read-only file system" in out and "SCRATCH-OK" in out


def test_run_as_user_with_fs_group_and_supplemental_groups(host):
    script = ("id -u; id -G; stat -c '%g %a' /data; touch /data/f; stat -c '%u %g' /data/f; "
              "echo DONE; exec sleep 3600")
    host.apply(pod("ids", ctr("main", script, volumeMounts=[{"name": "data", "mountPath": "/data"}]),
                   securityContext={"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000]},
                   volumes=[{"name": "data", "emptyDir": {}}]))
    p = host.wait_phase("ids", "Running")
    uid, groups, vol, made = output(host, "ids").splitlines()[:4]
    assert uid == "1000"
    assert {"2000", "3000"} <= set(groups.split())
    assert vol == "2000 2777"            # the volume is fsGroup's, setgid ...
    assert made == "1000 2000"           # ... so what the pod writes there is fsGroup's too
    st = os.stat(os.path.join(host.root, "pods", p["metadata"]["uid"], "volumes", "data"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 2000, 0o2777)


def test_run_as_non_root(host):
    host.apply(pod("nonroot",
                   ctr("zero", "exec sleep 3600", securityContext={"runAsUser": 0}),
                   ctr("image", "exec sleep 3600"),
                   ctr("fine", "exec sleep 3600", securityContext={"runAsUser": 1000}),
                   securityContext={"runAsNonRoot": True}))

    def both_refused(p):
        return all(waiting(p, n).get("reason") == "CreateContainerConfigError" for n in ("zero", "image")) \
            and "running" in cstatus(p, "fine").get("state", {})
    p = wait_for(lambda: (lambda p: p if both_refused(p) else None)(host.pod("nonroot")), 30,
                 what="two containers refused, one running")
    where = f'(pod: "nonroot_default({p["metadata"]["uid"]})", container: %s)'
    assert waiting(p, "zero")["message"] == "container's runAsUser breaks non-root policy " + where % "zero"
    assert waiting(p, "image")["message"] == \
        "container has runAsNonRoot and image will run as root " + where % "image"
    assert p["status"]["phase"] == "Pending"
    events = [e for e in host.get("events")["items"] if e["involvedObject"]["name"] == "nonroot"]
    assert any(e["reason"] == "Failed" and e["message"] == "Error: container's runAsUser breaks non-root "
               "policy " + where % "zero" for e in events)
    # refused before anything was made
    assert [c.name for c in host.runtime().containers(p["metadata"]["uid"])] == ["fine"]
