"""The control plane end to end on three hosts (network namespaces), each with its own agent
and runtime root, the controller in a fourth: 30 pods applied, spread, Running, their logs
read through the API server, an agent killed (its node goes NotReady within the lease grace)
and started again (it adopts its containers), then every pod deleted and nothing left."""
from __future__ import annotations

import collections
import json
import os
import time

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import Cluster, wait_for

pytestmark = [needs_root, pytest.mark.timeout(300)]

N_PODS = 30


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path), n_hosts=3, lease_duration=2, lease_grace=3.0)
    try:
        yield c.start_with_agents()
    finally:
        c.close()


def pods_manifest(n: int) -> str:
    docs = []
    for i in range(n):
        docs.append(json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "labels": {"app": "e2e"}},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                "name": "main", "image": "busybox",
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "command": ["sh", "-c", "echo hello from $POD at $IP; exec sleep 3600"]}]}}))
    return "\n---\n".join(docs) + "\n"


def nodes_ready(c: Cluster) -> dict[str, str]:
    out = {}
    for n in c.get_json("nodes")["items"]:
        cond = {x["type"]: x["status"] for x in n.get("status", {}).get("conditions", [])}
        out[n["metadata"]["name"]] = cond.get("Ready", "")
    return out


def test_thirty_pods_on_three_hosts(cluster, tmp_path):
    c = cluster
    wait_for(lambda: len([v for v in nodes_ready(c).values() if v == "True"]) == 3, 60,
             what="3 Ready nodes")
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(pods_manifest(N_PODS))
    out = c.ctl("apply", "-f", str(manifest)).stdout
    assert out.count("created") == N_PODS

    def all_running():
        items = c.get_json("pods")["items"]
        running = [p for p in items if p.get("status", {}).get("phase") == "Running"]
        return items if len(running) == N_PODS else None
    pods = wait_for(all_running, 120, what="30 Running pods")
    per_node = collections.Counter(p["spec"]["nodeName"] for p in pods)
    assert set(per_node) == {h.name for h in c.hosts}, per_node
    assert min(per_node.values()) >= 5, per_node
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == N_PODS

    # logs through the API server, one pod on each host
    for h in c.hosts:
        pod = next(p for p in pods if p["spec"]["nodeName"] == h.name)
        name = pod["metadata"]["name"]
        text = wait_for(lambda: c.ctl("logs", name, check=False).stdout, 20, what=f"logs of {name}")
        assert f"hello from {name} at {pod['status']['podIP']}" in text

    # kill an agent: its node goes NotReady within the lease grace (+ a renew interval)
    victim = c.hosts[0]
    ids_before = sorted(victim.skiff("ps", "-q", "--no-trunc").stdout.split())
    pids_before = victim.skiff("inspect", "-f", "{{.State.Pid}}", *ids_before).stdout.split()
    assert len(pids_before) == len(ids_before) >= 10 and "0" not in pids_before
    victim.kill_agent()
    t0 = time.monotonic()
    wait_for(lambda: nodes_ready(c)[victim.name] not in ("True",), 15, what="NotReady node")
    took = time.monotonic() - t0
    assert took < c.lease_grace + 6, took
    victims_pods = [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim.name]
    pod = c.get_json("pods", victims_pods[0])
    ready = {x["type"]: x["status"] for x in pod["status"]["conditions"]}
    assert ready["Ready"] == "False"

    # the agent comes back: it adopts its containers (none restarted) and the node is Ready
    victim.start_agent(c.join_token())
    wait_for(lambda: nodes_ready(c)[victim.name] == "True", 30, what="node Ready again")
    time.sleep(1.0)
    assert sorted(victim.skiff("ps", "-q", "--no-trunc").stdout.split()) == ids_before
    assert victim.skiff("inspect", "-f", "{{.State.Pid}}", *ids_before).stdout.split() == pids_before
    for name in victims_pods:
        p = c.get_json("pods", name)
        assert p["status"]["containerStatuses"][0]["restartCount"] == 0

    def ready_again():
        return all({x["type"]: x["status"] for x in c.get_json("pods", n)["status"]["conditions"]}["Ready"]
                   == "True" for n in victims_pods)
    wait_for(ready_again, 20, what="the returning node's pods Ready again")

    # delete every pod: no container is left on any host
    c.ctl("delete", "-f", str(manifest), "--wait=true", timeout=180)
    assert c.get_json("pods")["items"] == []
    for h in c.hosts:
        wait_for(lambda: h.container_ids() == [], 30, what=f"no containers on {h.name}")
