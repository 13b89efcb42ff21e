"""hostNetwork, hostPID, hostIPC and privileged pods with the real kubectl (controller + a real
agent), and `kubectl debug node/NAME --profile=sysadmin`, which makes such a pod."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.integration.kubectl import ctr, kube, pod  # noqa: F401 (kube is a fixture)


def _host_ipc() -> str:
    return os.readlink("/proc/self/ns/ipc")


@pytest.fixture
def host_marks():
    """A unique veth pair in this (the agent's, the host's) network namespace, and a host process
    with a unique command line; both removed at the end."""
    u = uuid.uuid4().hex[:8]
    link, tag = "skhn" + u, "skiff-hostpid-" + u
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", "skhp" + u], check=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", tag])
    try:
        yield link, tag, proc.pid
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["ip", "link", "del", link], capture_output=True)


def _logs(k, name: str, cname: str) -> list[str]:
    return k.ok("logs", name, "-c", cname).splitlines()


def test_host_network_pid_ipc_and_privileged_pod(kube, host_marks):
    k = kube.kubectl
    link, tag, mark_pid = host_marks
    look = ("ip -o link show | grep -o ' %s[@:]' | tr -d ' :@'; grep -l %s /proc/[0-9]*/cmdline; "
            "echo ipc:$(readlink /proc/self/ns/ipc); echo host:$(hostname); head -1 /etc/hosts; "
            "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status" % (link, tag))
    name = "hostns-" + uuid.uuid4().hex[:6]
    try:
        k.ok("apply", "-f", kube.file(f"{name}.yaml", pod(
            name, ctr("look", look), ctr("priv", "grep -E 'CapEff|NoNewPrivs' /proc/self/status; "
                                                  "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
                                         securityContext={"privileged": True}),
            restartPolicy="Never", hostNetwork=True, hostPID=True, hostIPC=True)))
        kube.wait(lambda: kube.pod_phase(name) in ("Succeeded", "Failed"), 40, f"pod {name} to finish")
        got = k.json("get", "pod", name)
        st = got["status"]
        assert st["phase"] == "Succeeded", st
        assert st["hostIP"] and st["podIP"] == st["hostIP"] and st["podIPs"] == [{"ip": st["hostIP"]}]
        lines = _logs(k, name, "look")
        assert lines[0] == link                                      # the host's interfaces
        assert f"/proc/{mark_pid}/cmdline" in lines                  # the host's processes
        assert f"ipc:{_host_ipc()}" in lines
        assert f"host:{os.uname().nodename}" in lines
        assert "# Kubernetes-managed hosts file (host network)." in lines
        assert "CapEff:\t00000000a80425fb" in lines and "NoNewPrivs:\t1" in lines   # not privileged
        with open("/proc/self/status") as f:
            bnd = next(ln.split()[1] for ln in f if ln.startswith("CapBnd:"))
        priv = _logs(k, name, "priv")
        assert priv == [f"CapEff:\t{bnd}", "NoNewPrivs:\t0", "mounted"], priv
    finally:
        k("delete", "pod", name, "--grace-period=0", "--wait=false")
        kube.wait(lambda: kube.gone("pod", name), 30, "the pod to go")


def test_kubectl_debug_node_sysadmin(kube, host_marks):
    """kubectl debug node/NAME: hostNetwork, hostPID, hostIPC, the host's / at /host; sysadmin:
    privileged."""
    k = kube.kubectl
    link, tag, mark_pid = host_marks
    out = k.ok("debug", f"node/{kube.node}", "--image=busybox", "--profile=sysadmin", "--", "sh", "-c",
               f"ip -o link show {link} | wc -l; test -d /host/proc/{mark_pid} && echo hostpid; "
               f"test -f /host/etc/hostname && echo hostroot; grep CapEff /proc/self/status")
    name = next(w for w in out.split() if w.startswith("node-debugger-")).strip(".")
    try:
        kube.wait(lambda: kube.pod_phase(name) in ("Succeeded", "Failed"), 40, f"pod {name} to finish")
        spec = k.json("get", "pod", name)["spec"]
        assert spec["hostNetwork"] and spec["hostPID"] and spec["hostIPC"]
        assert spec["containers"][0]["securityContext"]["privileged"] is True
        with open("/proc/self/status") as f:
            bnd = next(ln.split()[1] for ln in f if ln.startswith("CapBnd:"))
        assert k.ok("logs", name).splitlines() == ["1", "hostpid", "hostroot", f"CapEff:\t{bnd}"]
    finally:
        k("delete", "pod", name, "--grace-period=0", "--wait=false")
        kube.wait(lambda: kube.gone("pod", name), 30, "the pod to go")
