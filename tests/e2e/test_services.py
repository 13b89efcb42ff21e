"""A Service on three hosts (network namespaces): a Deployment of three web servers spread over
the hosts, a ClusterIP Service in front of them, and a client pod that fetches the ClusterIP.
Every backend answers, including those on other hosts (the agents' routes to each other's pod
CIDRs and their service rules); a backend that stops being ready leaves the rotation, and a
Service without ready endpoints refuses the connection at once. As a LoadBalancer Service it is
reached from outside the cluster at every node's address. All traffic stays inside the test's own
network namespaces."""
from __future__ import annotations

import collections
import json

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import PY, Cluster, sh, wait_for

pytestmark = [needs_root, pytest.mark.timeout(300)]

REPLICAS = 3


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path), n_hosts=3, lease_duration=2, lease_grace=3.0)
    try:
        yield c.start_with_agents()
    finally:
        c.close()


def manifests() -> str:
    web = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     # one per host: the test is about reaching the other hosts
                     "topologySpreadConstraints": [{
                         "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "DoNotSchedule",
                         "labelSelector": {"matchLabels": {"app": "web"}}}],
                     "containers": [{
                         "name": "main", "image": "busybox",
                         "ports": [{"name": "http", "containerPort": 8080}],
                         "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                         "command": ["sh", "-c", "mkdir -p /www && echo $POD > /www/index.html && "
                                                 "touch /tmp/ready && exec httpd -f -p 8080 -h /www"],
                         "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                                            "periodSeconds": 1}}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                    "ports": [{"port": 80, "targetPort": "http"}]}}
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
              "spec": {"terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}
    return "\n---\n".join(json.dumps(d) for d in (web, svc, client)) + "\n"


def fetch(c: Cluster, host: str, port: int) -> tuple[int, str]:
    """GET / from the client pod with busybox nc (this busybox's `wget -T` crashes): the exit
    code and the body's last line, or the error."""
    cmd = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} {port}'
    p = c.ctl("exec", "client", "--", "sh", "-c", cmd, check=False, timeout=30)
    out = (p.stdout or "").strip().splitlines()
    return p.returncode, (out[-1] if p.returncode == 0 and out else p.stderr.strip())


def test_cluster_ip_reaches_backends_on_every_host(cluster, tmp_path):
    c = cluster
    manifest = tmp_path / "app.yaml"
    manifest.write_text(manifests())
    c.ctl("apply", "-f", str(manifest))

    svc = c.get_json("service", "web")
    ip = svc["spec"]["clusterIP"]
    assert ip and ip != "None"

    def ready_backends():
        ep = c.get_json("endpoints", "web")
        addrs = [a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return addrs if len(addrs) == REPLICAS else None
    addrs = wait_for(ready_backends, 120, what="3 ready endpoints")
    assert len({a["nodeName"] for a in addrs}) == REPLICAS, addrs
    wait_for(lambda: c.get_json("pod", "client").get("status", {}).get("phase") == "Running", 60,
             what="the client pod Running")

    # every backend answers through the ClusterIP, whichever host it is on
    seen: collections.Counter = collections.Counter()

    def all_seen():
        rc, out = fetch(c, ip, 80)
        if rc == 0:
            seen[out] += 1
        return len(seen) == REPLICAS
    wait_for(all_seen, 90, interval=0.1, what=f"answers from all {REPLICAS} backends (so far {dict(seen)})")
    pods = {p["metadata"]["name"] for p in c.get_json("pods", "-l", "app=web")["items"]}
    assert set(seen) == pods

    # type LoadBalancer (k3s's ServiceLB): every node's address is an EXTERNAL-IP, and a client
    # outside the cluster (the controller's namespace: no agent, no service rules) reaches the
    # Service at any node's address
    hosts = sorted((h.ip for h in c.hosts), key=lambda ip: tuple(map(int, ip.split("."))))
    wait_for(lambda: [i["ip"] for i in c.get_json("service", "web").get("status", {})
                      .get("loadBalancer", {}).get("ingress") or []] == hosts, 30, what=f"ingress {hosts}")
    outside: set = set()
    for h in c.hosts:
        def answered(h=h):
            r = sh(*c.controller.exec(PY, "-c", f"import urllib.request as u; print(u.urlopen("
                                                f"'http://{h.ip}:80/', timeout=3).read().decode().strip())"),
                   check=False)
            if r.returncode == 0 and r.stdout.strip() in pods:
                outside.add(r.stdout.strip())
                return True
            return False
        wait_for(answered, 30, interval=0.2, what=f"an answer at {h.ip}:80 from outside the cluster")
    assert outside <= pods

    # scaled to zero: no endpoints, the connection is refused at once (not a timeout)
    c.ctl("scale", "deployment/web", "--replicas", "0")
    wait_for(lambda: not (c.get_json("endpoints", "web").get("subsets")), 60, what="no endpoints")

    def refused():
        rc, out = fetch(c, ip, 80)
        return rc != 0 and ("refused" in out.lower() or "reset" in out.lower()) and out
    wait_for(refused, 30, what="connection refused")

    # the Service deleted: its Endpoints go too
    c.ctl("delete", "service", "web")
    wait_for(lambda: c.ctl("get", "endpoints", "web", check=False).returncode != 0, 30,
             what="the Endpoints deleted with the Service")
