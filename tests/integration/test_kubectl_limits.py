"""LimitRanges and ResourceQuotas with the real kubectl 1.32 (controller + a real agent): the
Kubernetes docs' walkthroughs (admin/resource: cpu-constraints, memory-defaults, quota-mem-cpu)
give the same results and messages; `kubectl create quota` (protobuf), `get quota`, `describe
quota` and `describe limitrange`."""
from __future__ import annotations

import json
import re

from tests.integration.kubectl import kube, table  # noqa: F401 (kube is a fixture)

CPU_RANGE = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "cpu-min-max-demo-lr"},
             "spec": {"limits": [{"max": {"cpu": "800m"}, "min": {"cpu": "200m"}, "type": "Container"}]}}
QUOTA = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "mem-cpu-demo"},
         "spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"}}}


def pod(name: str, **resources) -> dict:
    c = {"name": f"{name}-ctr", "image": "busybox", "command": ["sleep", "3600"]}
    if resources:
        c["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [c]}}


def test_limit_range_defaults_and_bounds(kube):
    k = kube.kubectl
    ns = ["-n", "lr-demo"]
    try:
        k.ok("create", "namespace", "lr-demo")
        k.ok("apply", *ns, "-f", kube.file("lr.yaml", CPU_RANGE))
        k.ok("apply", *ns, "-f", kube.file("p1.yaml", pod("defaulted")))
        res = json.loads(k.ok("get", "pod", "defaulted", *ns, "-o", "jsonpath={.spec.containers[0].resources}"))
        assert res == {"limits": {"cpu": "800m"}, "requests": {"cpu": "800m"}}
        p = k("apply", *ns, "-f", kube.file("p2.yaml", pod("too-big", limits={"cpu": "1.5"}, requests={"cpu": "500m"})))
        assert p.returncode != 0
        assert 'pods "too-big" is forbidden: maximum cpu usage per Container is 800m, but limit is 1500m' in p.stderr
        out = k.ok("describe", "limitrange", *ns)
        assert re.search(r"Container\s+cpu\s+200m\s+800m\s+800m\s+800m\s+-", out), out
    finally:
        k("delete", "namespace", "lr-demo", "--wait=false")


def test_quota_from_the_docs(kube):
    k = kube.kubectl
    ns = ["-n", "quota-demo"]
    try:
        k.ok("create", "namespace", "quota-demo")
        k.ok("apply", *ns, "-f", kube.file("q.yaml", QUOTA))
        k.ok("apply", *ns, "-f", kube.file("qp.yaml", pod("quota-mem-cpu-demo", limits={"memory": "800Mi", "cpu": "800m"},
                                                      requests={"memory": "600Mi", "cpu": "400m"})))
        kube.wait(lambda: "requests.memory: 600Mi/1Gi" in k.ok("get", "quota", *ns), 20, "the quota's usage")
        head, rows = table(k.ok("get", "quota", *ns))
        assert head == ["NAME", "AGE", "REQUEST", "LIMIT"]
        assert rows[0][0] == "mem-cpu-demo" and rows[0][2:] == [
            "requests.cpu: 400m/1, requests.memory: 600Mi/1Gi", "limits.cpu: 800m/2, limits.memory: 800Mi/2Gi"]
        p = k("apply", *ns, "-f", kube.file("qp2.yaml", pod("quota-mem-cpu-demo-2", limits={"memory": "1Gi",
                                                                                          "cpu": "800m"},
                                                            requests={"memory": "700Mi", "cpu": "400m"})))
        assert p.returncode != 0
        assert ('pods "quota-mem-cpu-demo-2" is forbidden: exceeded quota: mem-cpu-demo, requested: '
                'requests.memory=700Mi, used: requests.memory=600Mi, limited: requests.memory=1Gi') in p.stderr
        assert re.search(r"requests\.memory\s+600Mi\s+1Gi", k.ok("describe", "quota", "mem-cpu-demo", *ns))
        # kubectl create quota sends it as protobuf; the namespace's kube-root-ca.crt counts, as in Kubernetes
        assert k.ok("create", "quota", "few", *ns, "--hard=count/configmaps=2,pods=5") == \
            "resourcequota/few created\n"
        kube.wait(lambda: k("get", "cm", "kube-root-ca.crt", *ns).returncode == 0, 10, "the root CA config map")
        k.ok("create", "configmap", "one", *ns)
        p = k("create", "configmap", "two", *ns)
        assert p.returncode != 0 and ("exceeded quota: few, requested: count/configmaps=1, used: count/configmaps=2, "
                                      "limited: count/configmaps=2") in p.stderr, p.stderr
    finally:
        k("delete", "namespace", "quota-demo", "--wait=false")
