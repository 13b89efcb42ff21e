"""What the agent says about its host: the Node object's capacity, addresses and info,
its Ready condition, and the node Lease."""
from __future__ import annotations

import datetime
import os
import platform
import socket
import urllib.parse

from skiff.api.resources import NODE_LEASE_NAMESPACE
from skiff.api.timefmt import rfc3339

AGENT_VERSION = "v1.32.0-skiff"
MAX_PODS = 110


def micro_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_ip_for(server_url: str) -> str:
    """The local address this host uses to reach the API server (no packet is sent)."""
    u = urllib.parse.urlsplit(server_url)
    host = u.hostname or "127.0.0.1"
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, u.port or 443))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def memory_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def node_info() -> dict:
    return {
        "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
        "osImage": _os_image(), "containerRuntimeVersion": "skiff://0.1.0",
        "kubeletVersion": AGENT_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
    }


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def ready_condition(ready: bool, old: dict | None = None) -> dict:
    status = "True" if ready else "False"
    t = rfc3339()
    trans = old.get("lastTransitionTime") if old and old.get("status") == status else t
    return {"type": "Ready", "status": status, "lastHeartbeatTime": t, "lastTransitionTime": trans or t,
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "skiff agent is posting ready status" if ready else "skiff agent is not ready"}


def _fs_bytes(path: str) -> int:
    """The size of the filesystem holding ``path`` (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while True:
        try:
            st = os.statvfs(path)
            return st.f_blocks * st.f_frsize
        except OSError:
            if path == os.path.dirname(path):
                return 0
            path = os.path.dirname(path)


def capacity(root: str = "/") -> dict[str, str]:
    """The node's capacity (= its allocatable: nothing is reserved), as quantities; its
    ephemeral-storage is the filesystem of the agent's root, as the kubelet's is of its own."""
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_bytes() // 1024}Ki", "pods": str(MAX_PODS),
            "ephemeral-storage": f"{_fs_bytes(root) // 1024}Ki"}


def node_status(ip: str, log_port: int, old_ready: dict | None = None, root: str = "/") -> dict:
    cap = capacity(root)
    return {
        "capacity": dict(cap), "allocatable": dict(cap),
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": socket.gethostname()}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "nodeInfo": node_info(),
        "conditions": [ready_condition(True, old_ready)],
    }


def node_object(name: str, labels: dict[str, str]) -> dict:
    base = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": node_info()["architecture"]}
    base.update(labels)
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": base}, "spec": {}}


def lease_object(name: str, duration: int) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": int(duration), "renewTime": micro_now()}}
