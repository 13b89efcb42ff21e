"""Running the real `kubectl` (and a one-host cluster shared by a whole test module) for the
kubectl acceptance tests.

The `kubectl` on these machines is gcloud's dispatcher: it picks a kubectl binary from the
server's /version and caches that choice and the discovery documents under $HOME/.kube/cache.
So every run gets a HOME of its own (a fresh directory: no run sees another's cache) and the
cluster's kubeconfig through KUBECONFIG; nothing is read from or written to the user's ~/.kube.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import yaml

from tests.conftest import cleanup_networks, cleanup_root, remove_cgroup_tree, unique_daemon_config
from tests.integration.onehost import OneHost

KUBECTL = shutil.which("kubectl")



class Kubectl:
    """``k("get", "pods")`` runs kubectl against one cluster and returns the CompletedProcess."""

    def __init__(self, kubeconfig: str, workdir: str):
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.homes = os.path.join(workdir, "kubectl-homes")
        os.makedirs(self.homes, exist_ok=True)

    def env(self, extra: dict | None = None) -> dict:
        home = tempfile.mkdtemp(dir=self.homes)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "CLOUDSDK"))}
        # TMPDIR: where `kubectl edit` writes its copy of the object
        env.update(HOME=home, KUBECONFIG=self.kubeconfig, TMPDIR=self.workdir, NO_COLOR="1")
        env.update(extra or {})
        return env

    def __call__(self, *args: str, input: str | None = None, timeout: float = 30,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=self.env(env))

    def ok(self, *args: str, **kw) -> str:
        """stdout of a run that must succeed."""
        p = self(*args, **kw)
        assert p.returncode == 0, f"kubectl {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout

    def fails(self, *args: str, **kw) -> str:
        """stderr of a run that must fail."""
        p = self(*args, **kw)
        assert p.returncode != 0, f"kubectl {' '.join(args)} should have failed:\n{p.stdout}\n{p.stderr}"
        return p.stderr

    def json(self, *args: str) -> dict:
        return json.loads(self.ok(*args, "-o", "json"))

    def apply_text(self, text: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self("apply", "-f", "-", *args, input=text, **kw)

    def stream(self, *args: str, env: dict | None = None) -> "Stream":
        return Stream([KUBECTL, *args], self.env(env))


class Stream:
    """A long-running kubectl (`get -w`, `logs -f`): lines are read as they come; ``stop()`` kills it."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, bufsize=1)
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, pattern: str, timeout: float = 15) -> str:
        """The first line (not yet consumed) matching the regex ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._q.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = "" if left > 0 else None
                if line is None:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; got:\n"
                                         + "\n".join(self.lines) + "\n" + self.stderr()) from None
                continue
            if line is None:
                raise AssertionError(f"kubectl exited ({self.proc.wait()}) before a line matched {pattern!r}:\n"
                                     + "\n".join(self.lines) + "\n" + self.stderr())
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class KubeCluster:
    """One controller + one real agent (OneHost) and a Kubectl for it."""

    def __init__(self, host: OneHost, kubectl: Kubectl):
        self.host, self.kubectl = host, kubectl
        self.node = host.node
        self.kubeconfig = host.kubeconfig

    def file(self, name: str, *objs: dict | str) -> str:
        """Write a manifest (several documents) into the cluster's work dir; returns its path."""
        path = os.path.join(self.host.workdir, name)
        with open(path, "w") as f:
            f.write("\n---\n".join(o if isinstance(o, str) else yaml.safe_dump(o, sort_keys=False) for o in objs))
        return path

    def wait(self, fn, timeout: float = 20, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def pod_phase(self, name: str, ns: str = "default") -> str:
        p = self.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}")
        return p.stdout if p.returncode == 0 else ""

    def wait_running(self, name: str, timeout: float = 20) -> None:
        self.wait(lambda: self.pod_phase(name) == "Running", timeout, f"pod {name} Running")

    def gone(self, kind: str, name: str) -> bool:
        p = self.kubectl("get", kind, name, "--ignore-not-found", "-o", "name")
        return p.returncode == 0 and not p.stdout.strip()


def start_cluster(workdir: str):
    """A generator: yields a started KubeCluster, then tears everything down."""
    root = os.path.join(workdir, "root")
    unique_daemon_config(root)
    cg = "skiff-test-" + uuid.uuid4().hex[:10]
    host = OneHost(workdir, root, cg)
    try:
        host.start()
        yield KubeCluster(host, Kubectl(host.kubeconfig, workdir))
    finally:
        host.close()
        cleanup_root(root)
        cleanup_networks(root)
        remove_cgroup_tree(cg)


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    """A one-host cluster (real controller + real agent) shared by every test of a module."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root: a real agent runs containers")
    yield from start_cluster(str(tmp_path_factory.mktemp("kubectl")))


def pod(name: str, *containers: dict, labels: dict | None = None, **spec) -> dict:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"terminationGracePeriodSeconds": 1, "containers": list(containers), **spec}}


# a container that stops at once on SIGTERM (busybox `sleep` as PID 1 would wait out the grace period)
IDLE = "trap 'exit 0' TERM; sleep 3600 & wait"


def ctr(name: str, script: str = IDLE, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def deployment(name: str, replicas: int, *containers: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": list(containers) or [ctr("main")]}}}}


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """kubectl's printed table as (header columns, rows of cells), cells split on runs of 2+ spaces."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = re.split(r"\s{2,}", lines[0].strip())
    return head, [re.split(r"\s{2,}", ln.strip()) for ln in lines[1:]]


def row(out: str, name: str) -> dict:
    """The row of ``name`` (first column, or second with -A) as {COLUMN: cell}."""
    head, rows = table(out)
    for r in rows:
        if name in r[:2]:
            return dict(zip(head, r))
    raise AssertionError(f"no row {name!r} in:\n{out}")
