"""`kubectl top` against a one-host cluster (real controller, real agent, real containers): a
busy container's CPU as the kernel counts it reaches the metrics API and kubectl's table."""
from __future__ import annotations

import json
import re

import pytest

from tests.integration.kubectl import ctr, kube, pod, row  # noqa: F401 (kube: the fixture)

pytestmark = pytest.mark.timeout(300)

BUSY = "trap 'exit 0' TERM; while :; do :; done"


def millicores(cell: str) -> int:
    m = re.fullmatch(r"(\d+)m", cell)
    assert m, cell
    return int(m.group(1))


def mebibytes(cell: str) -> int:
    m = re.fullmatch(r"(\d+)Mi", cell)
    assert m, cell
    return int(m.group(1))


def nanocores(q: str) -> int:
    m = re.fullmatch(r"(\d+)n", q)
    assert m, q
    return int(m.group(1))


@pytest.fixture(scope="module")
def busy(kube):  # noqa: F811
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("busy.yaml", pod(
        "burn", ctr("spin", BUSY, resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}),
        ctr("idle"), labels={"app": "burn"})))
    kube.wait_running("burn", 60)
    yield kube
    k("delete", "pod", "burn", "--wait=true", "--timeout=30s")


def test_metrics_api_pod_and_node(busy):
    k = busy.kubectl
    disc = json.loads(k.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1"))
    assert {r["name"] for r in disc["resources"]} == {"nodes", "pods"}
    pm = json.loads(k.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn"))
    assert pm["kind"] == "PodMetrics" and pm["metadata"]["name"] == "burn"
    assert pm["window"].endswith("s") and pm["timestamp"].endswith("Z")
    usage = {c["name"]: c["usage"] for c in pm["containers"]}
    assert set(usage) == {"spin", "idle"}
    spin = nanocores(usage["spin"]["cpu"])
    # a spinning shell under a 300m limit: clearly busy, and never above its quota (+ slack)
    assert 50_000_000 < spin < 450_000_000, usage
    assert nanocores(usage["idle"]["cpu"]) < 20_000_000, usage
    assert usage["spin"]["memory"].endswith("Ki")
    lst = json.loads(k.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dburn"))
    assert [i["metadata"]["name"] for i in lst["items"]] == ["burn"]
    none = json.loads(k.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnone"))
    assert none["items"] == []
    nm = json.loads(k.ok("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{busy.node}"))
    assert nm["kind"] == "NodeMetrics" and nanocores(nm["usage"]["cpu"]) >= spin // 2
    # the agent's /stats/summary, like its logs, is for callers the API server vouches for
    port = k.ok("get", "node", busy.node, "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/summary", timeout=10)
    assert ei.value.code == 401
    err = k.fails("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nosuch")
    assert 'podmetrics.metrics.k8s.io "default/nosuch" not found' in err


def test_kubectl_top_pod(busy):
    k = busy.kubectl
    out = k.ok("top", "pod", "burn")
    r = row(out, "burn")
    assert list(r) == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert millicores(r["CPU(cores)"]) >= 50
    mebibytes(r["MEMORY(bytes)"])
    out = k.ok("top", "pod", "--containers", "-l", "app=burn")
    lines = [ln.split() for ln in out.splitlines()[1:] if ln.strip()]
    by = {ln[1]: ln for ln in lines}
    assert set(by) == {"spin", "idle"} and by["spin"][0] == "burn"
    assert millicores(by["spin"][2]) >= 50
    out = k.ok("top", "pod", "-A")
    assert row(out, "burn")["NAMESPACE"] == "default"


def test_kubectl_get_metrics_objects(busy):
    """`kubectl get podmetrics` / `nodemetrics`: metrics-server's Table (NAME CPU MEMORY WINDOW)."""
    k = busy.kubectl
    r = row(k.ok("get", "podmetrics", "burn"), "burn")
    assert list(r) == ["NAME", "CPU", "MEMORY", "WINDOW"]
    assert nanocores(r["CPU"]) > 50_000_000 and r["MEMORY"].endswith("Ki") and r["WINDOW"].endswith("s")
    assert busy.node in k.ok("get", "nodemetrics")


def test_kubectl_top_node(busy):
    out = busy.kubectl.ok("top", "node")
    r = row(out, busy.node)
    assert millicores(r["CPU(cores)"]) >= 50
    assert r["CPU(%)"].endswith("%") and r["MEMORY(%)"].endswith("%")
    assert mebibytes(r["MEMORY(bytes)"]) > 0
