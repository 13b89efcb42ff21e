"""The real `skiffctl` binary against a real `skiff controller` (no agent: pods stay Pending)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIFFCTL = os.path.join(os.path.dirname(sys.executable), "skiffctl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ctl:
    def __init__(self, kubeconfig: str, server: str, data_dir: str):
        self.kubeconfig = kubeconfig
        self.server = server
        self.data_dir = data_dir

    def __call__(self, *args: str, input: str | None = None, timeout: float = 30, env=None):
        e = dict(os.environ, KUBECONFIG=self.kubeconfig, NO_COLOR="")
        e.pop("NO_COLOR")
        e.update(env or {})
        argv = [SKIFFCTL] if os.path.exists(SKIFFCTL) else [sys.executable, "-m", "skiff.cli.ctl.main"]
        return subprocess.run([*argv, *args], input=input, capture_output=True, text=True, timeout=timeout,
                              env=e)

    def ok(self, *args, **kw) -> str:
        p = self(*args, **kw)
        assert p.returncode == 0, f"skiffctl {' '.join(args)} exited {p.returncode}: {p.stderr}"
        return p.stdout


@pytest.fixture(scope="module")
def cluster():
    d = tempfile.mkdtemp(prefix="skiffctl-test-")
    port = free_port()
    log = open(os.path.join(d, "controller.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "controller", "--data-dir", d,
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"controller exited {proc.returncode}: "
                                     + open(os.path.join(d, "controller.log")).read())
            try:
                import ssl
                ctx = ssl.create_default_context(cafile=os.path.join(d, "pki", "ca.crt"))
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=1, context=ctx) as r:
                    if r.status == 200 and os.path.exists(os.path.join(d, "kubeconfig")):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("controller did not become healthy")
            time.sleep(0.1)
        yield Ctl(os.path.join(d, "kubeconfig"), f"https://127.0.0.1:{port}", d)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["rm", "-rf", d])


def pod_yaml(name: str, labels: str = "app: web", image: str = "busybox", ns: str | None = None) -> str:
    nsl = f"\n  namespace: {ns}" if ns else ""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}{nsl}
  labels: {{{labels}}}
spec:
  containers:
  - name: c
    image: {image}
    command: [sleep, "3600"]
"""


def write(tmp_path, name, text) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_apply_created_unchanged_configured(cluster, tmp_path):
    f = write(tmp_path, "web.yaml", pod_yaml("web1", "app: web, tier: front"))
    assert cluster.ok("apply", "-f", f) == "pod/web1 created\n"
    assert cluster.ok("apply", "-f", f) == "pod/web1 unchanged\n"
    f = write(tmp_path, "web.yaml", pod_yaml("web1", "app: web2"))
    assert cluster.ok("apply", "-f", f) == "pod/web1 configured\n"
    live = json.loads(cluster.ok("get", "pod", "web1", "-o", "json"))
    assert live["metadata"]["labels"] == {"app": "web2"}          # tier removed through null
    applied = json.loads(live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["metadata"]["labels"] == {"app": "web2"} and applied["metadata"]["namespace"] == "default"
    assert cluster.ok("apply", "-f", f) == "pod/web1 unchanged\n"


def test_apply_stdin_and_directory(cluster, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.yaml").write_text(pod_yaml("dir-a") + "---\n" + pod_yaml("dir-b"))
    (d / "b.yml").write_text(pod_yaml("dir-c"))
    assert cluster.ok("apply", "-f", str(d)).splitlines() == ["pod/dir-a created", "pod/dir-b created",
                                                              "pod/dir-c created"]
    assert cluster.ok("apply", "-f", "-", input=pod_yaml("stdin-pod")) == "pod/stdin-pod created\n"


def test_apply_invalid_multidoc_applies_nothing(cluster, tmp_path):
    bad = pod_yaml("good-one") + "---\n" + pod_yaml("bad-one").replace("    image: busybox\n", "")
    f = write(tmp_path, "multi.yaml", bad)
    p = cluster("apply", "-f", f)
    assert p.returncode == 1
    assert f"{f}: document 2: spec.containers[0].image: Required value" in p.stderr
    assert p.stdout == ""
    g = cluster("get", "pod", "good-one")
    assert g.returncode == 1 and 'pods "good-one" not found' in g.stderr


def test_get_formats(cluster, tmp_path):
    cluster.ok("apply", "-f", write(tmp_path, "g.yaml", pod_yaml("getme", "app: getme, tier: x")))
    out = cluster.ok("get", "pods")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(line for line in lines if line.startswith("getme "))
    assert row.split()[1:4] == ["0/1", "Pending", "0"]
    wide = cluster.ok("get", "pods", "-o", "wide").splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert "NOMINATED NODE" in wide[0] and "READINESS GATES" in wide[0]
    assert next(line for line in wide if line.startswith("getme ")).split()[5:7] == ["<none>", "<none>"]
    assert cluster.ok("get", "pod", "getme", "-o", "name") == "pod/getme\n"
    doc = yaml.safe_load(cluster.ok("get", "pod", "getme", "-o", "yaml"))
    assert doc["kind"] == "Pod" and doc["metadata"]["name"] == "getme" and doc["spec"]["restartPolicy"] == "Always"
    lst = json.loads(cluster.ok("get", "pods", "-o", "json"))
    assert lst["kind"] == "List" and "getme" in [i["metadata"]["name"] for i in lst["items"]]
    assert cluster.ok("get", "pods", "-l", "app=getme", "-o", "name") == "pod/getme\n"
    assert cluster.ok("get", "pods", "-l", "app=getme,tier!=x", "-o", "name") == ""
    assert cluster.ok("get", "pods", "--field-selector", "metadata.name=getme", "-o", "name") == "pod/getme\n"
    labels = cluster.ok("get", "pod", "getme", "--show-labels").splitlines()
    assert labels[0].split()[-1] == "LABELS" and labels[1].split()[-1] == "app=getme,tier=x"


def test_get_all_namespaces_and_namespaces(cluster, tmp_path):
    cluster.ok("apply", "-f", write(tmp_path, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n"))
    cluster.ok("apply", "-f", write(tmp_path, "o.yaml", pod_yaml("inother", ns="other")))
    assert "inother" not in cluster.ok("get", "pods")
    assert cluster.ok("-n", "other", "get", "pods", "-o", "name") == "pod/inother\n"
    out = cluster.ok("get", "pods", "-A").splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["other", "inother"] for line in out)
    ns = cluster.ok("get", "namespaces").splitlines()
    assert ns[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["default", "Active"] for line in ns)
    assert cluster.ok("get", "ns", "other", "-o", "name") == "namespace/other\n"


def test_get_empty_and_missing(cluster):
    p = cluster("-n", "kube-system", "get", "pods")
    assert p.returncode == 0 and p.stdout == "" and "No resources found in kube-system namespace." in p.stderr
    p = cluster("get", "pod", "does-not-exist")
    assert p.returncode == 1 and p.stderr.strip() == 'Error from server (NotFound): pods "does-not-exist" not found'
    p = cluster("get", "widgets")
    assert p.returncode == 1 and 'doesn\'t have a resource type "widgets"' in p.stderr
    nodes = cluster("get", "nodes")
    assert nodes.returncode == 0


def test_describe_pod_with_events(cluster, tmp_path):
    cluster.ok("apply", "-f", write(tmp_path, "d.yaml", pod_yaml("descme")))
    uid = json.loads(cluster.ok("get", "pod", "descme", "-o", "json"))["metadata"]["uid"]
    ev = f"""apiVersion: v1
kind: Event
metadata:
  name: descme.test1
  namespace: default
involvedObject: {{kind: Pod, name: descme, namespace: default, uid: {uid}, apiVersion: v1}}
reason: FailedScheduling
message: "0/0 nodes are available"
type: Warning
source: {{component: default-scheduler}}
count: 1
"""
    cluster.ok("apply", "-f", write(tmp_path, "ev.yaml", ev))
    out = cluster.ok("describe", "pod", "descme")
    assert out.startswith("Name:")
    assert "Namespace:        default" in out or "Namespace:" in out
    assert "Status:" in out and "Pending" in out
    assert "Image:" in out and "busybox" in out
    events = out[out.index("Events:"):].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    rows = [r for r in events[3:] if r.strip()]
    assert all(r.split()[:2] == ["Warning", "FailedScheduling"] for r in rows), rows
    assert any("default-scheduler" in r and "0/0 nodes are available" in r for r in rows)
    # the real scheduler's own event (no node runs here); it is written in the background
    deadline = time.monotonic() + 10
    while not any("no nodes available to schedule pods" in r for r in rows):
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
        out = cluster.ok("describe", "pod", "descme")
        rows = [r for r in out[out.index("Events:"):].splitlines()[3:] if r.strip()]
    # the events command and get events show it too
    lines = cluster.ok("events").splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("FailedScheduling" in line and "Pod/descme" in line for line in lines)
    assert any("descme" in line for line in cluster.ok("events", "--for", "pod/descme").splitlines()[1:])
    assert cluster("events", "--for", "pod/other-pod").stdout == ""
    g = cluster.ok("get", "events").splitlines()
    assert g[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("pod/descme" in line for line in g)
    # no colour when not on a terminal
    assert "\x1b[" not in cluster.ok("events")


def test_describe_namespace(cluster):
    out = cluster.ok("describe", "namespace", "default")
    assert out.splitlines()[0].split() == ["Name:", "default"]
    assert "Status:" in out and "Active" in out


def test_delete_unscheduled_pod_at_once(cluster, tmp_path):
    f = write(tmp_path, "del.yaml", pod_yaml("delme"))
    cluster.ok("apply", "-f", f)
    t = time.monotonic()
    assert cluster.ok("delete", "pod", "delme") == 'pod "delme" deleted\n'
    assert time.monotonic() - t < 10
    p = cluster("get", "pod", "delme")
    assert p.returncode == 1 and "NotFound" in p.stderr
    p = cluster("delete", "pod", "delme")
    assert p.returncode == 1 and p.stderr.strip() == 'Error from server (NotFound): pods "delme" not found'
    cluster.ok("apply", "-f", f)
    assert cluster.ok("delete", "-f", f, "--wait=false") == 'pod "delme" deleted\n'
    cluster.ok("apply", "-f", f)
    assert cluster.ok("delete", "pod/delme", "--grace-period", "5") == 'pod "delme" deleted\n'


def test_token_create(cluster):
    out = cluster.ok("token", "create", "--node").splitlines()
    token = out[0]
    assert "." in token
    assert out[1] == f"skiff agent --server {cluster.server} --token {token}"
    assert cluster("token", "create").returncode == 1


def test_server_and_token_overrides(cluster):
    p = cluster("--kubeconfig", "/nonexistent/kubeconfig", "get", "pods")
    assert p.returncode == 1
    p = cluster("--server", cluster.server, "--token", "wrong", "get", "pods")
    assert p.returncode == 1 and "Unauthorized" in p.stderr
    token = yaml.safe_load(open(cluster.kubeconfig))["users"][0]["user"]["token"]
    # no kubeconfig: the server's certificate is checked, so the cluster's CA must be named
    p = cluster("--server", cluster.server, "--token", token, "get", "namespaces", "-o", "name",
                env={"KUBECONFIG": "/nonexistent"})
    assert p.returncode == 1 and "certificate verify failed" in p.stderr
    p = cluster("--server", cluster.server, "--token", token, "--certificate-authority",
                os.path.join(cluster.data_dir, "pki", "ca.crt"), "get", "namespaces", "-o", "name",
                env={"KUBECONFIG": "/nonexistent"})
    assert p.returncode == 0 and "namespace/default" in p.stdout


def test_get_watch_prints_new_rows(cluster, tmp_path):
    e = dict(os.environ, KUBECONFIG=cluster.kubeconfig)
    argv = [SKIFFCTL] if os.path.exists(SKIFFCTL) else [sys.executable, "-m", "skiff.cli.ctl.main"]
    w = subprocess.Popen([*argv, "get", "pods", "-w", "-l", "app=watched"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    try:
        time.sleep(1.0)
        cluster.ok("apply", "-f", write(tmp_path, "w.yaml", pod_yaml("watched", "app: watched")))
        deadline = time.monotonic() + 15
        lines = []
        while time.monotonic() < deadline:
            line = w.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "watched" in line:
                break
        assert any(line.split()[:3] == ["watched", "0/1", "Pending"] for line in lines), lines
        assert lines[0].split()[:2] == ["NAME", "READY"]
    finally:
        w.terminate()
        w.wait(5)


def test_skiffctl_does_not_import_aiohttp(cluster):
    code = ("import sys; from skiff.cli.ctl.main import main; "
            "sys.argv=['skiffctl','get','pods']; rc=main(); "
            "print('AIOHTTP' if 'aiohttp' in sys.modules else 'OK')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, KUBECONFIG=cluster.kubeconfig))
    assert p.stdout.strip().splitlines()[-1] == "OK", p.stderr
