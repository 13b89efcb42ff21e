"""Resource metrics and hollow nodes: a real `skiff controller` and hollow nodes (the fake
runtime). Their summaries carry the pods but no usage (a hollow
container has no cgroup, and the host's /proc is not a hollow node's), so the metrics API
reports nothing for them rather than made-up numbers. (What a hollow summary holds is tested in
tests/unit/test_metrics_stats.py.)"""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench"))

from scale_bench import Cluster, PodWatch, create_all, pod_obj, wait_nodes_ready  # noqa: E402

from skiff.api.client import HTTPClient  # noqa: E402

NODES, PODS = 3, 6


@pytest.mark.asyncio
async def test_hollow_nodes_report_no_usage(tmp_path):
    cl = Cluster(str(tmp_path), NODES, 1, lease=10)
    client = None
    try:
        cl.start_controller()
        client = HTTPClient(cl.url, cl.token, ca_file=cl.ca_file, timeout=60)
        cl.start_hollows()
        await wait_nodes_ready(client, NODES, 60, cl)
        lst = await client.list("pods", "default", limit=1)
        watch = PodWatch(client, "m-")
        watch.task = asyncio.create_task(watch.run(lst["metadata"]["resourceVersion"]))
        await create_all(client, [pod_obj(i, "m") for i in range(PODS)], 8)
        assert await watch.wait(lambda: len(watch.running) >= PODS, 60)
        # the benchmark's hollow nodes serve no agent endpoint (--log-port -1): they are skipped
        node = (await client.list("nodes"))["items"][0]
        assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 0
        nm = await client.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
        assert nm["kind"] == "NodeMetricsList" and nm["items"] == []
        pm = await client.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        assert pm["kind"] == "PodMetricsList" and pm["items"] == []
        from skiff.api.errors import APIError
        with pytest.raises(APIError) as ei:
            await client.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/m-0")
        assert ei.value.code == 404 and ei.value.message == 'podmetrics.metrics.k8s.io "default/m-0" not found'
        await asyncio.gather(*(client.delete("pods", f"m-{i}", "default") for i in range(PODS)))
        assert await watch.wait(lambda: len(watch.gone) >= PODS, 60)
        watch.task.cancel()
    finally:
        if client is not None:
            await client.close()
        cl.stop()
