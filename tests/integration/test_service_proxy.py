"""Services on real nodes: a real controller and two real agents, each "host" a network
namespace of the test's own (tests/e2e/cluster.py), with real nftables, routes and busybox pods.

Nothing here can leave the machine: the hosts' namespaces have no default route (only the test's
switch subnet), and the service addresses are routed nowhere, so a ClusterIP packet that the
proxy did not DNAT is refused or unreachable inside the namespace. Everything (processes,
containers, namespaces with their tables and routes) goes in the fixture's finalizer.
"""
from __future__ import annotations

import collections
import json
import signal

import pytest

from skiff.agent.noderoutes import RTPROT_SKIFF
from skiff.agent.serviceproxy import table_name_for
from tests.conftest import needs_root
from tests.e2e.cluster import Cluster, sh, wait_for

pytestmark = [needs_root, pytest.mark.timeout(400)]

TABLE = table_name_for("skiffpods0")      # the agents' default pod bridge, one per namespace
WEB = "default/web/tcp/http"


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path), n_hosts=2, lease_duration=2, lease_grace=3.0)
    try:
        yield c.start_with_agents()
    finally:
        c.close()


# ------------------------------------------------------------------------------ helpers

def listing(h) -> list[dict] | None:
    """The agent's table in host ``h``'s namespace, as ``nft -j`` lists it (None: no table)."""
    p = sh(*h.exec("nft", "-j", "list", "table", "ip", TABLE), check=False)
    return json.loads(p.stdout)["nftables"] if p.returncode == 0 else None


def table_handle(h) -> int | None:
    return next((o["table"]["handle"] for o in listing(h) or [] if "table" in o), None)


def tables(h) -> list[str]:
    return [line.strip() for line in sh(*h.exec("nft", "list", "tables")).stdout.splitlines() if line.strip()]


def endpoints(h, key: str = WEB) -> set[str]:
    """The endpoints ("IP/port") the table has for a service port."""
    out = set()
    for o in listing(h) or []:
        name = o.get("chain", {}).get("name", "")
        if name.startswith("ep-") and f"-{key}__" in name:
            out.add(name.rsplit("__", 1)[1])
    return out


def map_elements(h, name: str) -> list:
    for o in listing(h) or []:
        m = o.get("map") or o.get("set") or {}
        if m.get("name") == name:
            return m.get("elem") or []
    return []


def vips(h) -> set[tuple]:
    return {tuple(e[0]["concat"]) for e in map_elements(h, "service-ips")}


def refused(h) -> set[tuple]:
    return {tuple(e[0]["concat"]) for e in map_elements(h, "no-endpoint-services")}


def skiff_routes(h) -> dict[str, str]:
    out = json.loads(sh(*h.exec("ip", "-j", "route", "show", "proto", str(RTPROT_SKIFF))).stdout or "[]")
    return {r["dst"]: r.get("gateway") for r in out}


def pod_obj(name: str, node: str, labels: dict | None = None, script: str = "exec sleep 3600") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}}


def web_pod(name: str, node: str) -> dict:
    """busybox httpd on 8080: / is the pod's name, /cgi-bin/ip its name and the client's address."""
    script = (f"mkdir -p /www/cgi-bin && echo {name} > /www/index.html && "
              f"printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho {name} $REMOTE_ADDR\\n' "
              f"> /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www")
    p = pod_obj(name, node, {"app": "web"}, script)
    p["spec"]["containers"][0].update(
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"exec": {"command": ["test", "-x", "/www/cgi-bin/ip"]}, "periodSeconds": 1})
    return p


def apply(c: Cluster, tmp_path, *objs: dict) -> None:
    f = tmp_path / "objs.json"
    f.write_text("\n---\n".join(json.dumps(o) for o in objs) + "\n")
    c.ctl("apply", "-f", str(f))


def fetch(c: Cluster, pod: str, ip: str, port: int, n: int = 1, path: str = "/cgi-bin/ip") -> list[str]:
    """``n`` HTTP GETs from inside ``pod``, one line each: the body's last line, or nc's error."""
    script = (f"for i in $(seq {n}); do printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | "
              f"nc -w 3 {ip} {port} 2>&1 | tail -n 1; done")
    p = c.ctl("exec", pod, "--", "sh", "-c", script, check=False, timeout=30 + 4 * n)
    # httpd gives REMOTE_ADDR as [::ffff:10.244.1.3] (an IPv4-mapped address)
    return [line.strip().replace("[::ffff:", "").replace("]", "") for line in p.stdout.splitlines()] \
        or [p.stderr.strip()]


def pod_ip(c: Cluster, name: str) -> str:
    return wait_for(lambda: c.get_json("pod", name).get("status", {}).get("podIP"), 60, what=f"{name}'s IP")


# ------------------------------------------------------------------------------ the test

def test_cluster_ip_node_port_routes_and_clean_up(cluster, tmp_path):
    c = cluster
    h1, h2 = c.hosts

    # every node has a podCIDR; each agent routes to the other's pods through its InternalIP
    def cidrs():
        nodes = c.get_json("nodes")["items"]
        out = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in nodes}
        return out if len(out) == 2 and all(out.values()) else None
    cidr = wait_for(cidrs, 60, what="both nodes with a podCIDR")
    wait_for(lambda: skiff_routes(h1) == {cidr[h2.name]: h2.ip}, 30, what=f"host1's route (has {skiff_routes(h1)})")
    wait_for(lambda: skiff_routes(h2) == {cidr[h1.name]: h1.ip}, 30, what=f"host2's route (has {skiff_routes(h2)})")
    for h in (h1, h2):     # the proxy's table is there before any Service (a Service of the
        wait_for(lambda: listing(h) is not None, 30, what="the service table")   # cluster may exist)

    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    apply(c, tmp_path, web_pod("web-a", h1.name), web_pod("web-b", h2.name), pod_obj("client", h1.name), svc)
    s = c.get_json("service", "web")
    ip, node_port = s["spec"]["clusterIP"], s["spec"]["ports"][0]["nodePort"]
    assert ip and ip != "None" and node_port
    a_ip, b_ip, client_ip = pod_ip(c, "web-a"), pod_ip(c, "web-b"), pod_ip(c, "client")
    want = {f"{a_ip}/8080", f"{b_ip}/8080"}
    for h in (h1, h2):     # the rules are in place on both nodes before any packet is sent
        wait_for(lambda: endpoints(h) == want, 90, what=f"{h.name}'s endpoints (has {endpoints(h)})")
        assert (ip, "tcp", 80) in vips(h)
    wait_for(lambda: c.get_json("pod", "client").get("status", {}).get("phase") == "Running", 60,
             what="the client Running")

    # pod to pod across nodes: routed, not masqueraded (the server sees the client's own address)
    assert fetch(c, "client", b_ip, 8080) == [f"web-b {client_ip}"]

    # the ClusterIP balances over both backends, the local one and the one on the other node;
    # the client's address is kept
    answers = collections.Counter(fetch(c, "client", ip, 80, n=24))
    assert set(answers) == {f"web-a {client_ip}", f"web-b {client_ip}"}, answers

    # hairpin: a backend reaching itself through the Service (masqueraded to the bridge's address)
    lines = fetch(c, "web-a", ip, 80, n=16)
    assert all(line.split()[0] in ("web-a", "web-b") for line in lines), "\n".join(lines)
    assert any(line.startswith("web-a ") for line in lines), lines

    # the node port, on either node's address
    for h in (h1, h2):
        answers = collections.Counter(line.split()[0] for line in fetch(c, "client", h.ip, node_port, n=12))
        assert set(answers) <= {"web-a", "web-b"} and answers, answers

    # a port the Service does not have is refused at once, not routed on
    assert "refused" in fetch(c, "client", ip, 81)[0].lower()

    # no ready endpoint left: refused at once (not a timeout)
    c.ctl("delete", "pod", "web-a", "web-b", "--grace-period", "1")
    for h in (h1, h2):
        wait_for(lambda: (ip, "tcp", 80) in refused(h) and not endpoints(h), 60,
                 what=f"{h.name} refusing the Service")
    out = fetch(c, "client", ip, 80)[0]
    assert "refused" in out.lower(), out

    # the Service deleted: gone from both nodes' tables
    c.ctl("delete", "service", "web")
    for h in (h1, h2):
        wait_for(lambda: not any(ip in t for t in vips(h) | refused(h)) and
                 ip not in map_elements(h, "cluster-ips"), 30, what=f"{h.name} forgetting the Service")

    # an agent killed leaves its table; the next one replaces it (a new table, the same rules)
    handle = table_handle(h2)
    h2.kill_agent(signal.SIGKILL)
    assert table_handle(h2) == handle and skiff_routes(h2)
    h2.start_agent(c.join_token())
    wait_for(lambda: table_handle(h2) not in (None, handle), 60, what="host2's table written again")
    assert skiff_routes(h2) == {cidr[h1.name]: h1.ip}

    # an agent stopped takes its table and its routes with it, and leaves the other tables alone
    # (the agent's network policy table, skiff.agent.netpol, goes too)
    from skiff.agent.netpol import table_name_for as policy_table_for
    ours = (TABLE, policy_table_for("skiffpods0"))
    before = [t for t in tables(h1) if not t.endswith(ours)]
    h1.kill_agent(signal.SIGTERM)
    assert h1.proc.returncode == 0, open(h1.log).read()[-3000:]
    assert listing(h1) is None and skiff_routes(h1) == {}
    assert [t for t in tables(h1) if not t.endswith(ours)] == before
    assert not any(t.endswith(ours) for t in tables(h1))
