"""The HPA controller live: a real control plane (SQLite store, API server, its metrics.k8s.io
scraper) and an agent endpoint serving ``/stats/summary`` with cumulative CPU counters that grow
at a rate the test sets. The metrics reach the controller through the same path as in a
cluster: scraper -> rates -> PodMetrics -> the HPA's replica arithmetic -> ``/scale``."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio
from aiohttp import web

from skiff.agent.stats import stamp
from skiff.controller.controlplane import ControlPlane
from skiff.controller.hpa import HPAController
from skiff.controller.metrics_api import metrics_for

pytestmark = pytest.mark.asyncio


class FakeAgentStats:
    """/stats/summary of one node: pods' cumulative CPU = rate x time (nanocores x s)."""

    def __init__(self, node: str):
        self.node = node
        self.pods: dict[str, dict] = {}      # name -> {"uid", "rate", "base", "t0"}
        self.requests = 0
        self.runner = None
        self.port = 0

    def set_rate(self, name: str, uid: str, nanocores: int) -> None:
        now = time.time()
        p = self.pods.get(name)
        base = 0 if p is None else p["base"] + p["rate"] * (now - p["t0"])
        self.pods[name] = {"uid": uid, "rate": nanocores, "base": base, "t0": now}

    async def summary(self, request: web.Request) -> web.Response:
        self.requests += 1
        assert request.query.get("node") == self.node
        now = time.time()
        pods = []
        for name, p in self.pods.items():
            cpu = int(p["base"] + p["rate"] * (now - p["t0"]))
            ts = stamp(now)
            pods.append({"podRef": {"name": name, "namespace": "default", "uid": p["uid"]},
                         "containers": [{"name": "main", "startTime": "2026-01-01T00:00:00Z",
                                         "cpu": {"time": ts, "usageCoreNanoSeconds": cpu},
                                         "memory": {"time": ts, "workingSetBytes": 4096}}]})
        return web.json_response({"node": {"nodeName": self.node}, "pods": pods})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/stats/summary", self.summary)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest_asyncio.fixture
async def cluster(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    await cp.start()
    agent = FakeAgentStats("n1")
    await agent.start()
    ctl = None
    try:
        c = cp.local_client()
        await c.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        await c.patch("nodes", "n1", {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": agent.port}}}}, subresource="status")
        scraper = metrics_for(cp.registry).scraper
        scraper.interval, scraper.min_window = 0.4, 0.3
        ctl = HPAController(c, sync_period=0.3)
        task = asyncio.create_task(ctl.run())
        yield cp, c, agent, ctl
    finally:
        if ctl is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await agent.stop()
        await cp.stop()


async def make_pod(c, name: str) -> dict:
    pod = await c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
                                  "spec": {"nodeName": "n1", "containers": [
                                      {"name": "main", "image": "busybox",
                                       "resources": {"requests": {"cpu": "100m"}}}]}})
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 900))
    await c.patch("pods", name, {"status": {"phase": "Running", "startTime": long_ago, "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": long_ago}]}}, "default", subresource="status")
    return pod


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


async def until(fn, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = await fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def cond(hpa: dict, typ: str) -> dict:
    return next((c for c in (hpa.get("status") or {}).get("conditions") or [] if c["type"] == typ), {})


async def test_scales_up_on_cpu_then_down_after_the_stabilization_window(cluster):
    cp, c, agent, ctl = cluster
    await c.create("deployments", DEPLOY)
    for name in ("web-a", "web-b"):
        pod = await make_pod(c, name)
        agent.set_rate(name, pod["metadata"]["uid"], 150_000_000)      # 150m of a 100m request
    assert agent.requests == 0          # nobody asked for metrics yet: nothing scraped
    await c.create("horizontalpodautoscalers", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 2}}}})

    async def scaled_to(n):
        d = await c.get("deployments", "web", "default")
        return d["spec"]["replicas"] == n
    await until(lambda: scaled_to(5), 15, "scale up to 5")
    hpa = await c.get("horizontalpodautoscalers", "web", "default")
    st = hpa["status"]
    util = st["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    assert 140 <= util <= 160, st                    # 150% measured over real scrape windows
    assert st["desiredReplicas"] == 5 and st["lastScaleTime"]
    assert cond(hpa, "ScalingActive")["reason"] == "ValidMetricFound"
    assert cond(hpa, "ScalingActive")["message"] == ("the HPA was able to successfully calculate a replica count "
                                                     "from cpu resource utilization (percentage of request)")
    # ceil(2 x 150/50) = 6 > maxReplicas
    assert (cond(hpa, "ScalingLimited")["status"], cond(hpa, "ScalingLimited")["reason"]) == ("True", "TooManyReplicas")
    evs = (await c.list("events", "default"))["items"]
    msgs = [e["message"] for e in evs if e.get("reason") == "SuccessfulRescale"]
    assert "New size: 5; reason: cpu resource utilization (percentage of request) above target" in msgs
    assert agent.requests >= 2

    # load drops: the recommendation (1) is held for the 2 s window, then applied
    for name in ("web-a", "web-b"):
        agent.set_rate(name, agent.pods[name]["uid"], 10_000_000)
    t0 = time.monotonic()

    async def stabilized():
        h = await c.get("horizontalpodautoscalers", "web", "default")
        return h if cond(h, "AbleToScale").get("reason") == "ScaleDownStabilized" else None
    held = await until(stabilized, 10, "ScaleDownStabilized")
    assert held["status"]["currentReplicas"] == 5
    assert (await c.get("deployments", "web", "default"))["spec"]["replicas"] == 5
    await until(lambda: scaled_to(1), 15, "scale down to 1")
    assert time.monotonic() - t0 >= 1.5
    evs = (await c.list("events", "default"))["items"]
    assert "New size: 1; reason: All metrics below target" in [e["message"] for e in evs]


async def test_missing_requests_and_missing_target(cluster):
    cp, c, agent, ctl = cluster
    await c.create("deployments", {**DEPLOY, "metadata": {"name": "web", "namespace": "default"}})
    pod = await c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "bare", "namespace": "default", "labels": {"app": "web"}},
                                  "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "busybox"}]}})
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 900))
    await c.patch("pods", "bare", {"status": {"phase": "Running", "startTime": long_ago, "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": long_ago}]}}, "default", subresource="status")
    agent.set_rate("bare", pod["metadata"]["uid"], 50_000_000)
    base = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 3}}
    await c.create("horizontalpodautoscalers", {**base, "metadata": {"name": "web", "namespace": "default"}})
    await c.create("horizontalpodautoscalers", {**base, "metadata": {"name": "ghost", "namespace": "default"},
                                                "spec": {**base["spec"], "scaleTargetRef": {
                                                    "apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"}}})

    async def failing(name, typ, reason):
        h = await c.get("horizontalpodautoscalers", name, "default")
        return h if cond(h, typ).get("reason") == reason else None
    h = await until(lambda: failing("web", "ScalingActive", "FailedGetResourceMetric"), 10, "FailedGetResourceMetric")
    assert cond(h, "ScalingActive")["status"] == "False"
    assert cond(h, "ScalingActive")["message"] == ("the HPA was unable to compute the replica count: failed to get "
                                                   "cpu utilization: missing request for cpu in container main of "
                                                   "Pod bare")
    assert (await c.get("deployments", "web", "default"))["spec"]["replicas"] == 2
    g = await until(lambda: failing("ghost", "AbleToScale", "FailedGetScale"), 10, "FailedGetScale")
    assert cond(g, "AbleToScale")["message"] == ('the HPA controller was unable to get the target\'s current scale: '
                                                 'deployments.apps "nope" not found')
    evs = {(e["involvedObject"]["name"], e["reason"]) for e in (await c.list("events", "default"))["items"]}
    assert {("web", "FailedGetResourceMetric"), ("web", "FailedComputeMetricsReplicas"),
            ("ghost", "FailedGetScale")} <= evs


async def test_scraper_runs_only_while_metrics_are_asked_for(tmp_path):
    """No HPA, nobody asking: no scrape at all. A request scrapes (twice, for a first window),
    keeps the cache warm for a while, then the loop stops and the samples are dropped."""
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    await cp.start()
    agent = FakeAgentStats("n1")
    await agent.start()
    try:
        c = cp.local_client()
        await c.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        await c.patch("nodes", "n1", {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": agent.port}}}}, subresource="status")
        pod = await make_pod(c, "p1")
        agent.set_rate("p1", pod["metadata"]["uid"], 250_000_000)
        api = metrics_for(cp.registry)
        s = api.scraper
        s.interval, s.idle, s.min_window = 0.2, 0.6, 0.2
        await asyncio.sleep(0.5)
        assert agent.requests == 0 and s.scrapes == 0
        lst = await api.pod_metrics("default", None, "app=web")
        assert agent.requests == 2
        [pm] = lst["items"]
        cpu = int(pm["containers"][0]["usage"]["cpu"][:-1])
        assert abs(cpu - 250_000_000) < 5_000_000
        w = pm["window"]          # a Go duration: under a second in ms, as metrics-server prints it
        assert (float(w[:-2]) / 1000 if w.endswith("ms") else float(w[:-1])) >= 0.2, w
        await asyncio.sleep(0.5)
        warm = agent.requests
        assert warm >= 3                                   # kept warm after the request
        await asyncio.sleep(1.5)
        stopped = agent.requests
        await asyncio.sleep(0.6)
        assert agent.requests == stopped                   # idle: the loop has ended
        assert s._last == {} and (s._loop is None or s._loop.done())
        # nodes with no usage in their summary (hollow ones) have no NodeMetrics; ours has none
        assert (await api.node_metrics())["items"] == []
    finally:
        await agent.stop()
        await cp.stop()
