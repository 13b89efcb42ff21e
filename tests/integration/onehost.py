"""A one-host cluster for integration tests: `skiff controller` and `skiff agent` as real
processes on 127.0.0.1 (free ports), the agent on the test's own root, pod bridge, pod
subnet and cgroup parent. Everything is stopped and removed by ``close()``."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.e2e.cluster import free_port, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


class OneHost:
    def __init__(self, workdir: str, root: str, cg_parent: str, lease_duration: int = 1,
                 lease_grace: float = 3.0, backoff: str = "1,4,600"):
        self.workdir, self.root, self.cg_parent = workdir, root, cg_parent
        with open(os.path.join(root, "daemon.json")) as f:
            self.bridge = json.load(f)["bridge"] + "p"
        tag = uuid.uuid4().bytes
        self.cluster_cidr = f"10.{200 + tag[0] % 50}.{tag[1]}.0/24"
        self.data_dir = os.path.join(workdir, "controller")
        self.node = "node-" + uuid.uuid4().hex[:6]
        self.lease_duration, self.lease_grace, self.backoff = lease_duration, lease_grace, backoff
        self.port = 0
        self.controller: subprocess.Popen | None = None
        self.agent: subprocess.Popen | None = None
        self.token = ""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return os.path.join(self.data_dir, "pki", "ca.crt")

    def ssl_context(self):
        import ssl
        if not os.path.exists(self.ca_file):
            raise OSError("no CA yet")
        return ssl.create_default_context(cafile=self.ca_file)

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "kubeconfig")

    def start(self) -> "OneHost":
        subprocess.run([PY, "-m", "skiff", "--root", self.root, "mkimage", "busybox"], check=True,
                       capture_output=True, timeout=60)
        self.start_controller()
        out = self.ctl("token", "create", "--node").stdout
        self.token = re.search(r"--token\s+(\S+)", out).group(1)
        self.start_agent()
        wait_for(lambda: self.node_ready() == "True", 30, what="the node to be Ready")
        return self

    def start_controller(self) -> None:
        if not self.port:
            self.port = free_port()
        log = open(os.path.join(self.workdir, "controller.log"), "ab")
        self.controller = subprocess.Popen(
            [PY, "-m", "skiff", "controller", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
             "--lease-grace", str(self.lease_grace), "--cluster-cidr", self.cluster_cidr,
             "--node-cidr-mask-size", "26"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()

        def healthy():
            try:
                return urllib.request.urlopen(self.url + "/healthz", timeout=1,
                                              context=self.ssl_context()).read() == b"ok"
            except OSError:
                assert self.controller.poll() is None, self.read_log("controller.log")
                return False
        wait_for(healthy, 30, what="the controller")

    def start_agent(self) -> None:
        log = open(os.path.join(self.workdir, "agent.log"), "ab")
        self.agent = subprocess.Popen(
            [PY, "-m", "skiff", "--root", self.root, "agent", "--server", self.url, "--token", self.token,
             "--node-name", self.node, "--log-port", "0", "--lease-duration", str(self.lease_duration),
             "--pod-bridge", self.bridge, "--backoff", self.backoff, "--cgroup-parent", self.cg_parent,
             "--sync-frequency", "2", "--log-format", "json"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()

    def read_log(self, name: str, tail: int | None = 5000) -> str:
        with open(os.path.join(self.workdir, name), errors="replace") as f:
            text = f.read()
        return text[-tail:] if tail else text

    @staticmethod
    def _kill(p: subprocess.Popen | None, sig=signal.SIGKILL) -> None:
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=30)

    def kill_agent(self, sig=signal.SIGKILL) -> None:
        self._kill(self.agent, sig)

    def kill_controller(self, sig=signal.SIGKILL) -> None:
        self._kill(self.controller, sig)

    # -- clients --
    def ctl(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None):
        p = subprocess.run([PY, "-m", "skiff.cli.ctl.main", "--kubeconfig", self.kubeconfig, *args],
                           capture_output=True, text=True, timeout=timeout, cwd=REPO, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"skiffctl {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def get(self, *args: str) -> dict:
        return json.loads(self.ctl("get", *args, "-o", "json").stdout)

    def apply(self, *objs: dict) -> str:
        return self.ctl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs)).stdout

    def node_ready(self) -> str:
        try:
            n = self.get("node", self.node)
        except (AssertionError, ValueError):
            return ""
        return {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}.get("Ready", "")

    def pod(self, name: str) -> dict:
        return self.get("pod", name)

    def wait_phase(self, name: str, phase: str, timeout: float = 30) -> dict:
        def check():
            p = self.pod(name)
            return p if p.get("status", {}).get("phase") == phase else None
        return wait_for(check, timeout, what=f"pod {name} {phase}")

    def runtime(self):
        from skiff.agent.podruntime import PodRuntime
        return PodRuntime(self.root, bridge=self.bridge, cgroup_parent=self.cg_parent)

    def close(self) -> None:
        self.kill_agent()
        self.kill_controller()
        # the root's own clean-up (conftest) removes the containers and the pod network


@pytest.fixture
def host(tmp_path, skiff_root, cg_parent):
    """A one-host cluster on the test's root (tests import this fixture)."""
    h = OneHost(str(tmp_path), skiff_root, cg_parent)
    try:
        yield h.start()
    finally:
        h.close()


def pod(name: str, *containers: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers), **spec}}


def ctr(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def elapsed(fn) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0
