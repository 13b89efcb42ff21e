"""`skiff hollow`: a real `skiff controller` process and 20 hollow nodes in one `skiff hollow`
process (the real agent over the fake runtime): 200 pods all Running, spread over the 20 nodes,
then deleted."""
from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench"))

from scale_bench import Cluster, PodWatch, create_all, pod_obj, wait_nodes_ready  # noqa: E402

from skiff.api.client import HTTPClient  # noqa: E402

NODES, PODS = 20, 200
CONNECTIONS = 4     # the hollow process's pool for its nodes' requests


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to 127.0.0.1:``port``."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] == "01" and int(parts[2].split(":")[1], 16) == port and parts[9] in inodes:
                n += 1
    return n


@pytest.mark.asyncio
async def test_hollow_nodes_run_and_delete_pods(tmp_path):
    cl = Cluster(str(tmp_path), NODES, 1, lease=10, connections=CONNECTIONS)
    try:
        cl.start_controller()
        client = HTTPClient(cl.url, cl.token, ca_file=cl.ca_file, timeout=60)
        cl.start_hollows()
        await wait_nodes_ready(client, NODES, 60, cl)
        nodes = (await client.list("nodes"))["items"]
        assert len(nodes) == NODES
        n0 = nodes[0]
        assert n0["metadata"]["labels"]["skiff.dev/hollow"] == "true"
        # each agent creates its Lease right after registering its (Ready) Node
        names = {n["metadata"]["name"] for n in nodes}
        for _ in range(100):
            leases = (await client.list("leases", "kube-node-lease"))["items"]
            if {x["metadata"]["name"] for x in leases} >= names:
                break
            await asyncio.sleep(0.1)
        assert {x["metadata"]["name"] for x in leases} >= names

        lst = await client.list("pods", "default", limit=1)
        watch = PodWatch(client, "h-")
        watch.task = asyncio.create_task(watch.run(lst["metadata"]["resourceVersion"]))
        t0 = time.monotonic()
        await create_all(client, [pod_obj(i, "h") for i in range(PODS)], 32)
        assert await watch.wait(lambda: len(watch.running) >= PODS, 60), \
            (len(watch.bound), len(watch.running), cl.tail("hollow-0.log"))
        running_s = time.monotonic() - t0
        # one watch per node; the nodes' requests share the capped pool, their heartbeats a
        # quarter of it (at least 2)
        conns = connections_to(cl.hollows[0].pid, cl.port)
        assert NODES <= conns <= NODES + CONNECTIONS + 2, conns
        per_node = {}
        for node in watch.node_of.values():
            per_node[node] = per_node.get(node, 0) + 1
        assert len(per_node) == NODES, per_node           # spread over every hollow node
        assert max(per_node.values()) <= 3 * PODS // NODES
        pods = (await client.list("pods", "default"))["items"]
        for p in pods:
            assert p["status"]["phase"] == "Running"
            assert p["status"]["containerStatuses"][0]["ready"] is True
        # the agents' events are there (Scheduled by the scheduler, Started by the kubelet)
        # (posted in the background, after the status: they may come a little later)
        for _ in range(100):
            evs = (await client.list("events", "default", field_selector="involvedObject.name=h-0"))["items"]
            if {"Scheduled", "Started"} <= {e["reason"] for e in evs}:
                break
            await asyncio.sleep(0.2)
        assert {"Scheduled", "Started"} <= {e["reason"] for e in evs}, evs

        d0 = time.monotonic()
        for i in range(0, PODS, 50):
            await asyncio.gather(*(client.delete("pods", f"h-{j}", "default") for j in range(i, i + 50)))
        assert await watch.wait(lambda: len(watch.gone) >= PODS, 60), len(watch.gone)
        assert (await client.list("pods", "default"))["items"] == []
        print(f"\n{PODS} pods on {NODES} hollow nodes: Running after {running_s:.1f} s, "
              f"deleted in {time.monotonic() - d0:.1f} s")
        watch.task.cancel()
        await client.close()
        for p in cl.hollows:
            assert p.poll() is None, cl.tail("hollow-0.log")
    finally:
        cl.stop()
