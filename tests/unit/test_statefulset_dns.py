"""Stable network identity of a StatefulSet's pods: the pods the controller makes (hostname =
pod name, subdomain = serviceName) get a ``hostname`` in the Endpoints and EndpointSlices of the
headless Service of that name (not of other Services), the agent's cluster DNS answers
``web-0.nginx.<ns>.svc.<domain>`` from those slices, and the pod's /etc/hosts names it with its
FQDN as the kubelet writes it."""
from __future__ import annotations

from dnslib import QTYPE, RCODE, DNSRecord

from skiff.agent.clusterdns import ClusterDNS, StaticSource
from skiff.agent.podruntime import pod_host_domain
from skiff.controller.workloads import endpointslogic as EL
from skiff.controller.workloads import statefullogic as S
from skiff.runtime.containers.create import etc_files
from skiff.runtime.containers.spec import ContainerSpec

STS = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default", "uid": "u"},
       "spec": {"replicas": 2, "serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                             "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                      "ports": [{"name": "web", "containerPort": 80}]}]}}}}


def running(pod: dict, ip: str) -> dict:
    pod = {**pod, "spec": {**pod["spec"], "nodeName": "n1"}}
    pod["metadata"] = {**pod["metadata"], "uid": f"uid-{pod['metadata']['name']}"}
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True"}]}
    return pod


def service(name: str, cluster_ip: str = "None") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"svc-{name}"},
            "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": {"app": "nginx"},
                     "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": 80}],
                     "ipFamilies": ["IPv4"]}}


PODS = [running(S.new_pod(STS, STS["spec"]["template"], i, "web-rev"), f"10.244.0.{10 + i}") for i in range(2)]


def slices_for(svc: dict) -> list[dict]:
    out = []
    for at, groups in EL.desired_slices(svc, PODS).items():
        for g in groups.values():
            sl = EL.new_slice(svc, at, g.ports, list(g.endpoints.values()))
            sl["metadata"]["name"] = f"{svc['metadata']['name']}-{len(out)}"     # what generateName makes
            out.append(sl)
    return out


def test_endpoints_carry_the_pod_hostname_only_for_its_governing_service():
    headless, other = service("nginx"), service("other", "10.96.0.50")
    subsets = EL.desired_subsets(headless, PODS)
    assert sorted((a["ip"], a.get("hostname")) for a in subsets[0]["addresses"]) == [
        ("10.244.0.10", "web-0"), ("10.244.0.11", "web-1")]
    assert all("hostname" not in a for a in EL.desired_subsets(other, PODS)[0]["addresses"])
    eps = [e for s in slices_for(headless) for e in s["endpoints"]]
    assert sorted((e["addresses"][0], e.get("hostname")) for e in eps) == [
        ("10.244.0.10", "web-0"), ("10.244.0.11", "web-1")]
    assert all("hostname" not in e for s in slices_for(other) for e in s["endpoints"])


def test_cluster_dns_answers_each_pod_of_the_headless_service():
    headless, other = service("nginx"), service("other", "10.96.0.50")
    d = ClusterDNS("cluster.local")
    d.attach(StaticSource([headless, other]), StaticSource(slices_for(headless) + slices_for(other)))

    def ask(name):
        reply, _ = d.answer(DNSRecord.question(name, "A"))
        return reply

    r = ask("web-0.nginx.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NOERROR
    assert [str(x.rdata) for x in r.rr if QTYPE[x.rtype] == "A"] == ["10.244.0.10"]
    assert [str(x.rdata) for x in ask("web-1.nginx.default.svc.cluster.local").rr] == ["10.244.0.11"]
    assert sorted(str(x.rdata) for x in ask("nginx.default.svc.cluster.local").rr) == ["10.244.0.10", "10.244.0.11"]
    assert ask("web-2.nginx.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    # a Service that does not govern the set has no such names
    assert ask("web-0.other.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_pod_hosts_file_names_the_fqdn():
    pod = PODS[0]
    domain = pod_host_domain(pod["spec"], "default")
    assert domain == "nginx.default.svc.cluster.local"

    class Cluster:
        domain = "example.org"
    assert pod_host_domain(pod["spec"], "db", Cluster()) == "nginx.db.svc.example.org"
    assert pod_host_domain({"hostname": "x"}, "default") == ""
    spec = ContainerSpec(id="c", name="p", image="i", image_id="i", created="", path="/bin/sh",
                         hostname="web-0", domainname=domain, ip="10.244.0.10/24", network="skiff0")
    hosts = etc_files(spec)["hosts"]
    assert hosts.splitlines()[-1] == "10.244.0.10\tweb-0.nginx.default.svc.cluster.local\tweb-0"
    assert etc_files(spec)["hostname"] == "web-0\n"
    plain = ContainerSpec(id="c", name="p", image="i", image_id="i", created="", path="/bin/sh",
                          hostname="web-0", ip="10.244.0.10/24", network="skiff0")
    assert etc_files(plain)["hosts"].splitlines()[-1] == "10.244.0.10\tweb-0"
