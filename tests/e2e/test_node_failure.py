"""Self-healing on three hosts: a host is cut off (its veth down); its pods are evicted once
their toleration runs out and their ReplicaSet recreates them on the other hosts; when the host
comes back, its agent stops the evicted pods' containers, so no replica runs twice, and nothing
that stayed where it was is restarted."""
from __future__ import annotations

import collections
import json
import time

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import Cluster, wait_for

pytestmark = [needs_root, pytest.mark.timeout(300)]

REPLICAS = 6


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path), n_hosts=3, lease_duration=1, lease_grace=2.0,
                controller_args=("--pod-eviction-timeout", "2"))
    try:
        yield c.start_with_agents()
    finally:
        c.close()


def deployment() -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox",
                                     "command": ["sh", "-c", "exec sleep 3600"]}]}}}})


def live_pods(c: Cluster) -> list[dict]:
    return [p for p in c.get_json("pods", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def running_on(c: Cluster, nodes: set[str]) -> list[dict]:
    return [p for p in live_pods(c)
            if p.get("status", {}).get("phase") == "Running" and p["spec"].get("nodeName") in nodes]


def test_lost_host_pods_move_and_come_back_without_duplicates(cluster, tmp_path):
    c = cluster
    names = {h.name for h in c.hosts}
    wait_for(lambda: len(c.get_json("nodes")["items"]) == 3, 30, what="3 nodes")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(deployment())
    c.ctl("apply", "-f", str(manifest))
    pods = wait_for(lambda: (lambda r: r if len(r) == REPLICAS else None)(running_on(c, names)), 90,
                    what=f"{REPLICAS} Running replicas")
    per_node = collections.Counter(p["spec"]["nodeName"] for p in pods)
    assert len(per_node) == 3, per_node
    victim, others = c.hosts[0], c.hosts[1:]
    kept = {h.name: sorted(h.skiff("ps", "-q", "--no-trunc").stdout.split()) for h in others}

    victim.set_link(False)
    t0 = time.monotonic()
    healthy = {h.name for h in others}
    wait_for(lambda: len(running_on(c, healthy)) == REPLICAS, 30, what="the replicas on the healthy hosts")
    moved_in = time.monotonic() - t0
    assert moved_in < 30

    victim.set_link(True)
    # the evicted pods' containers are stopped on the returning host; no duplicates remain
    wait_for(lambda: victim.container_ids() == [], 60, what="no containers left on the returning host")
    wait_for(lambda: len(c.get_json("pods", "-l", "app=web")["items"]) == REPLICAS, 60,
             what="exactly the replicas, no Terminating leftovers")
    final = live_pods(c)
    assert len(final) == REPLICAS and all(p["spec"]["nodeName"] in healthy for p in final)
    # nothing that stayed where it was was restarted
    for h in others:
        now = set(h.skiff("ps", "-q", "--no-trunc").stdout.split())
        assert set(kept[h.name]) <= now, h.name
    for p in final:
        assert p["status"]["containerStatuses"][0]["restartCount"] == 0
    wait_for(lambda: {n["metadata"]["name"]: {x["type"]: x["status"] for x in n["status"]["conditions"]}["Ready"]
                      for n in c.get_json("nodes")["items"]}[victim.name] == "True", 30,
             what="the returning node Ready again")
