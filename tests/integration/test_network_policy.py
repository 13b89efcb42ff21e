"""NetworkPolicies enforced on real nodes: a real controller and two real agents, each "host" a
network namespace of the test's own (tests/e2e/cluster.py), with busybox pods and the agents'
nftables tables (skiff.agent.netpol). Traffic stays inside those namespaces; the fixture's
finalizer removes the processes, containers and namespaces (with their tables) even on failure.
"""
from __future__ import annotations

import json
import signal

import pytest

from skiff.agent.netpol import table_name_for
from tests.conftest import needs_root
from tests.e2e.cluster import Cluster, sh, wait_for
from tests.integration.test_service_proxy import apply, fetch, pod_ip, pod_obj, web_pod

pytestmark = [needs_root, pytest.mark.timeout(400)]

TABLE = table_name_for("skiffpods0")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path), n_hosts=2, lease_duration=2, lease_grace=3.0)
    try:
        yield c.start_with_agents()
    finally:
        c.close()


def policy(name: str, namespace: str = "default", **spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def chains(h) -> list[str]:
    p = sh(*h.exec("nft", "-j", "list", "table", "ip", TABLE), check=False)
    if p.returncode != 0:
        return []
    return [o["chain"]["name"] for o in json.loads(p.stdout)["nftables"] if "chain" in o]


def answers(c, pod: str, ip: str, port: int = 8080) -> str:
    """The server's name when ``pod`` reaches it, else nc's complaint."""
    return fetch(c, pod, ip, port, path="/")[0]


def reaches(c, pod: str, ip: str, server: str, timeout: float = 30, port: int = 8080) -> None:
    wait_for(lambda: answers(c, pod, ip, port) == server, timeout, what=f"{pod} reaching {server} at {ip}")


def refused(c, pod: str, ip: str, server: str, timeout: float = 30, port: int = 8080) -> None:
    last = []

    def check() -> bool:
        last[:] = [answers(c, pod, ip, port)]
        return "refused" in last[0].lower()
    try:
        wait_for(check, timeout, what=f"{pod} refused by {server} at {ip}:{port}")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last}") from None


def test_ingress_and_egress_policies(cluster, tmp_path):
    c = cluster
    h1, h2 = c.hosts
    team = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"team": "a"}}}
    srv = web_pod("srv", h1.name)
    srv["metadata"]["labels"] = {"app": "srv"}
    remote = web_pod("remote", h2.name)            # another node, another namespace: a client and a server
    remote["metadata"].update(namespace="team", labels={"app": "remote"})
    good = pod_obj("good", h1.name, {"role": "client"})
    bad = pod_obj("bad", h1.name)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv"},
           "spec": {"selector": {"app": "srv"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    apply(c, tmp_path, team)
    apply(c, tmp_path, srv, remote, good, bad, svc)
    srv_ip, remote_ip = pod_ip(c, "srv"), wait_for(
        lambda: c.get_json("pod", "remote", "-n", "team").get("status", {}).get("podIP"), 60, what="remote's IP")
    cluster_ip = c.get_json("service", "srv")["spec"]["clusterIP"]
    for p in ("good", "bad"):
        wait_for(lambda: c.get_json("pod", p).get("status", {}).get("phase") == "Running", 60, what=f"{p} Running")

    # no policy: everyone reaches everyone, and the agents keep an empty table
    reaches(c, "good", srv_ip, "srv", 60)
    reaches(c, "bad", srv_ip, "srv")
    reaches(c, "good", remote_ip, "remote", 60)
    reaches(c, "bad", cluster_ip, "srv", 60, port=80)
    assert chains(h1) == []

    # default deny for srv's ingress: nobody reaches it, directly or through the ClusterIP; the
    # other pods (not selected) are unaffected
    apply(c, tmp_path, policy("deny", podSelector={"matchLabels": {"app": "srv"}}, policyTypes=["Ingress"]))
    refused(c, "good", srv_ip, "srv")
    refused(c, "bad", srv_ip, "srv")
    # through the ClusterIP (DNATed to srv): the policy sees srv's address; such a connection is
    # dropped (a reset would carry srv's address, not the ClusterIP's)
    assert answers(c, "bad", cluster_ip, 80) == "nc: timed out"
    assert answers(c, "good", remote_ip) == "remote"
    assert any(ch.startswith("in-") for ch in chains(h1)) and not any(ch.startswith("in-") for ch in chains(h2))

    # allowed from role=client pods of the namespace, to the named port: good yes (also through
    # the ClusterIP), bad no
    apply(c, tmp_path, policy("from-clients", podSelector={"matchLabels": {"app": "srv"}},
                              ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                        "ports": [{"port": "http"}]}]))
    reaches(c, "good", srv_ip, "srv")
    reaches(c, "good", cluster_ip, "srv", port=80)
    assert "refused" in answers(c, "bad", srv_ip).lower()
    assert answers(c, "bad", cluster_ip, 80) == "nc: timed out"

    # a namespaceSelector: pods of namespaces labelled team=a, here on the other node, may come in
    ns_policy = policy("from-team", podSelector={"matchLabels": {"app": "srv"}},
                       ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}])
    out = c.ctl("exec", "-n", "team", "remote", "--", "sh", "-c",
                f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {srv_ip} 8080 2>&1 | tail -n 1", check=False)
    assert "refused" in out.stdout.lower(), out.stdout + out.stderr
    apply(c, tmp_path, ns_policy)

    def remote_answer() -> str:
        p = c.ctl("exec", "-n", "team", "remote", "--", "sh", "-c",
                  f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {srv_ip} 8080 2>&1 | tail -n 1", check=False)
        return p.stdout.strip()
    wait_for(lambda: remote_answer() == "srv", 30, what="remote (namespace team) reaching srv")

    # egress: good may only reach app=srv pods on 8080 (the reply of an allowed connection passes)
    apply(c, tmp_path, policy("good-out", podSelector={"matchLabels": {"role": "client"}}, policyTypes=["Egress"],
                              egress=[{"to": [{"podSelector": {"matchLabels": {"app": "srv"}}}],
                                       "ports": [{"protocol": "TCP", "port": 8080}]}]))
    refused(c, "good", remote_ip, "remote")
    assert answers(c, "good", srv_ip) == "srv"
    assert answers(c, "good", cluster_ip, 80) == "srv"         # checked after DNAT: srv:8080
    assert answers(c, "bad", remote_ip) == "remote"

    # the policies deleted: everything flows again, the table is empty
    c.ctl("delete", "networkpolicy", "deny", "from-clients", "good-out", "from-team")
    reaches(c, "bad", srv_ip, "srv")
    reaches(c, "good", remote_ip, "remote")
    wait_for(lambda: chains(h1) == [], 30, what="host1's policy table emptied")

    # an agent stopped takes its table with it
    h1.kill_agent(signal.SIGTERM)
    p = sh(*h1.exec("nft", "list", "tables"))
    assert TABLE not in p.stdout, p.stdout
