"""Cluster DNS on two hosts (network namespaces): a pod with the default dnsPolicy
(ClusterFirst) gets the node's DNS (the pod gateway) in its resolv.conf, resolves a Service by
its short and longer names and fetches it through them, resolves a headless Service to its
pods, gets NXDOMAIN for an unknown Service, and has other names forwarded to the host's
nameserver: here a fake one the test runs on 127.0.0.1 inside the host's own namespace (the
agents get `--resolv-conf` naming it, so no query ever leaves the test's namespaces)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import Cluster, wait_for

pytestmark = [needs_root, pytest.mark.timeout(300)]

FAKE_UPSTREAM = r"""
import socket
from dnslib import A, QTYPE, RR, DNSRecord
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    data, addr = s.recvfrom(4096)
    q = DNSRecord.parse(data)
    r = q.reply(aa=0)
    if q.q.qtype == QTYPE.A and str(q.q.qname).rstrip(".").endswith("outside.test"):
        r.add_answer(RR(q.q.qname, QTYPE.A, ttl=5, rdata=A("192.0.2.77")))
    s.sendto(r.pack(), addr)
"""


@pytest.fixture
def cluster(tmp_path):
    resolv = tmp_path / "host-resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nsearch hosts.test\n")
    c = Cluster(str(tmp_path), n_hosts=2, lease_duration=2, lease_grace=3.0)
    upstream = None
    try:
        c.start_with_agents("--resolv-conf", str(resolv))
        upstream = subprocess.Popen(c.hosts[0].exec(sys.executable, "-c", FAKE_UPSTREAM),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield c
    finally:
        if upstream is not None:
            upstream.kill()
            upstream.wait(timeout=30)
        c.close()


def manifests(node: str) -> str:
    web = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{
                         "name": "main", "image": "busybox",
                         "ports": [{"name": "http", "containerPort": 8080}],
                         "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                         "command": ["sh", "-c", "mkdir -p /www && echo $POD > /www/index.html && "
                                                 "exec httpd -f -p 8080 -h /www"]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-pods"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"},
                         "ports": [{"name": "http", "port": 8080}]}}
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
              "spec": {"terminationGracePeriodSeconds": 1, "nodeName": node,
                       "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}
    return "\n---\n".join(json.dumps(d) for d in (web, svc, headless, client)) + "\n"


def in_client(c: Cluster, cmd: str) -> tuple[int, str]:
    p = c.ctl("exec", "client", "--", "sh", "-c", cmd, check=False, timeout=30)
    return p.returncode, (p.stdout or "") + (p.stderr or "")


def fetch(c: Cluster, host: str, port: int) -> tuple[int, str]:
    """GET / with busybox nc (this busybox's `wget -T` crashes): the exit code, the last line."""
    rc, out = in_client(c, f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} {port}')
    lines = out.strip().splitlines()
    return rc, (lines[-1] if lines else "")


def test_pod_resolves_services_by_name(cluster, tmp_path):
    c = cluster
    node = c.hosts[0].name
    manifest = tmp_path / "app.yaml"
    manifest.write_text(manifests(node))
    c.ctl("apply", "-f", str(manifest))
    ip = c.get_json("service", "web")["spec"]["clusterIP"]

    def backends():
        ep = c.get_json("endpoints", "web")
        addrs = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return addrs if len(addrs) == 2 else None
    pod_ips = wait_for(backends, 120, what="2 ready endpoints")
    wait_for(lambda: c.get_json("pod", "client").get("status", {}).get("phase") == "Running", 60,
             what="the client pod Running")

    # ClusterFirst: the node's DNS on the pod gateway, the cluster's search path, then the host's
    cidr = c.get_json("node", node)["spec"]["podCIDR"]
    gateway = cidr.split("/")[0].rsplit(".", 1)[0] + ".1"
    rc, conf = in_client(c, "cat /etc/resolv.conf")
    assert rc == 0
    assert f"nameserver {gateway}" in conf.splitlines(), conf
    assert "search default.svc.cluster.local svc.cluster.local cluster.local hosts.test" in conf, conf
    assert "options ndots:5" in conf, conf

    # names resolve (once the agent's informers have listed)
    def resolves(name, want):
        rc, out = in_client(c, f"nslookup {name} {gateway}")
        return rc == 0 and all(w in out for w in want) and out
    wait_for(lambda: resolves("web.default.svc.cluster.local", [ip]), 30, what="web resolved")
    wait_for(lambda: resolves("web-pods.default.svc.cluster.local", pod_ips), 30,
             what="the headless service resolved to its pods")
    rc, out = in_client(c, f"nslookup nope.default.svc.cluster.local {gateway}")
    assert rc != 0 and "NXDOMAIN" in out, out

    # the resolver of the pod's libc, through the search path: every form of the name works
    pods = {p["metadata"]["name"] for p in c.get_json("pods", "-l", "app=web")["items"]}
    for name in ("web", "web.default", "web.default.svc", "web.default.svc.cluster.local"):
        def fetched():
            rc, out = fetch(c, name, 80)
            return rc == 0 and out in pods and out
        wait_for(fetched, 30, interval=0.5, what=f"GET http://{name}/")

    # another name: forwarded to the host's nameserver (the fake one on the host's loopback)
    wait_for(lambda: resolves("www.outside.test", ["192.0.2.77"]), 30, what="a forwarded name")
