"""Several "hosts" on one machine: a controller and agents, each in its own network namespace.

The namespaces are joined by a bridge that lives in one more namespace (the "switch"), on
the test's own subnet, so nothing is added to the machine's own network. Each agent has its
own runtime root. ``close()`` kills every process, removes every container and cgroup and
deletes the namespaces, whatever state the test left them in.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
SKIFFCTL = [PY, "-m", "skiff.cli.ctl.main"]


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


class Host:
    def __init__(self, cluster: "Cluster", name: str, netns: str, ip: str, root: str):
        self.cluster, self.name, self.netns, self.ip, self.root = cluster, name, netns, ip, root
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(cluster.workdir, f"{name}.log")

    def exec(self, *argv: str) -> list[str]:
        # nsenter, not `ip netns exec`: that one remounts /sys, which hides the cgroup mounts
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    def skiff(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*self.exec(PY, "-m", "skiff", "--root", self.root, *args), check=check, timeout=120)

    def start_agent(self, token: str, *extra: str) -> None:
        assert self.proc is None or self.proc.poll() is not None
        c = self.cluster
        argv = self.exec(PY, "-m", "skiff", "--root", self.root, "agent", "--server", c.url,
                         "--token", token, "--node-name", self.name, "--log-port", "0",
                         "--lease-duration", str(c.lease_duration), "--backoff", "1,4,600",
                         "--log-format", "json", *extra)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    def set_link(self, up: bool) -> None:
        """Cut this host off the others (or plug it back) by its veth on the switch."""
        i = int(self.ip.rsplit(".", 1)[1])
        sh("ip", "-n", self.cluster.switch, "link", "set", f"p{i}", "up" if up else "down")

    def kill_agent(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def container_ids(self) -> list[str]:
        out = self.skiff("ps", "-a", "-q", "--no-trunc").stdout.split()
        return out


class Cluster:
    def __init__(self, workdir: str, n_hosts: int = 3, lease_duration: int = 2, lease_grace: float = 3.0,
                 controller_args: tuple[str, ...] = ()):
        self.controller_args = tuple(controller_args)
        self.id = uuid.uuid4().hex[:6]
        self.workdir = workdir
        self.lease_duration = lease_duration
        self.lease_grace = lease_grace
        self.subnet = f"10.{250 - (int(self.id[:2], 16) % 16)}.{int(self.id[2:4], 16)}"
        self.switch = f"sk{self.id}sw"
        self.namespaces: list[str] = []
        self.hosts: list[Host] = []
        self.controller: Host | None = None
        self.port = 0
        self.url = ""
        self.data_dir = os.path.join(workdir, "controller")
        self.n_hosts = n_hosts

    # -- the network --
    def _netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _plug(self, netns: str, i: int) -> str:
        ip = f"{self.subnet}.{i}"
        sh("ip", "-n", self.switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
           "netns", netns)
        sh("ip", "-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
        sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        return ip

    def start(self) -> "Cluster":
        self._netns(self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        ctl_ns = f"sk{self.id}c"
        self._netns(ctl_ns)
        ip = self._plug(ctl_ns, 1)
        self.controller = Host(self, "controller", ctl_ns, ip, "")
        for n in range(1, self.n_hosts + 1):
            ns = f"sk{self.id}h{n}"
            self._netns(ns)
            hip = self._plug(ns, 10 + n)
            root = os.path.join(self.workdir, f"host{n}")
            os.makedirs(root)
            self.hosts.append(Host(self, f"host{n}-{self.id}", ns, hip, root))
        self.port = 20000 + int(self.id[:3], 16) % 20000  # inside our own namespace: no one else binds here
        self.url = f"https://{ip}:{self.port}"
        self.start_controller()
        return self

    def start_with_agents(self, *agent_args: str) -> "Cluster":
        """Start the controller, give every host the busybox image, and join an agent on each."""
        self.start()
        for h in self.hosts:
            h.skiff("mkimage", "busybox")
        token = self.join_token()
        for h in self.hosts:
            h.start_agent(token, *agent_args)
        return self

    def start_controller(self) -> None:
        c = self.controller
        argv = c.exec(PY, "-m", "skiff", "controller", "--data-dir", self.data_dir, "--listen",
                      f"{c.ip}:{self.port}", "--lease-grace", str(self.lease_grace), "--log-format", "json",
                      *self.controller_args)
        with open(c.log, "ab") as out:
            c.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ca = os.path.join(self.data_dir, "pki", "ca.crt")
            r = sh(*c.exec(PY, "-c", f"import ssl, urllib.request as u; print(u.urlopen('{self.url}/healthz', "
                                     f"timeout=1, context=ssl.create_default_context(cafile='{ca}'))"
                                     f".read().decode())"), check=False)
            if r.returncode == 0 and "ok" in r.stdout:
                return
            if c.proc.poll() is not None:
                raise AssertionError(f"controller exited: {open(c.log).read()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError("controller did not become healthy")

    # -- clients --
    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "kubeconfig")

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return sh(*self.controller.exec(*SKIFFCTL, "--kubeconfig", self.kubeconfig, *args),
                  check=check, timeout=timeout, cwd=REPO)

    def get_json(self, *args: str) -> dict:
        return json.loads(self.ctl("get", *args, "-o", "json").stdout)

    def join_token(self) -> str:
        out = self.ctl("token", "create", "--node").stdout
        m = re.search(r"--token\s+(\S+)", out)
        assert m, out
        return m.group(1)

    # -- clean-up --
    def close(self) -> None:
        for h in [*self.hosts, *([self.controller] if self.controller else [])]:
            if h.proc is not None and h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait(timeout=30)
        for h in self.hosts:
            cleanup = ("import sys; sys.path.insert(0, %r); from tests.conftest import cleanup_root, "
                       "cleanup_networks; cleanup_root(%r); cleanup_networks(%r)" % (REPO, h.root, h.root))
            if h.netns in self.namespaces:
                sh(*h.exec(PY, "-c", cleanup), check=False, timeout=120)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def copy_busybox(root: str, src_root: str) -> None:
    """Give a host root the busybox image (made once per test run)."""
    shutil.copytree(src_root, root, dirs_exist_ok=True, symlinks=True)
