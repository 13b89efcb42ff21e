from collections import Counter

from skiff.controller.scheduler.cache import SchedulerCache
from skiff.controller.scheduler.filters import (
    PodInfo, R_CPU, R_MEMORY, R_NODE_NAME, R_PORTS, R_SELECTOR, R_TOO_MANY_PODS, R_UNSCHEDULABLE,
    filter_node, fit_error_message, fits_resources, host_ports_conflict, node_selector_matches,
    parse_cpu, parse_memory, pod_host_ports, pod_requests, static_reasons, tolerates, untolerated_taint)


def node(name="n1", cpu="2", mem="4Gi", pods="110", labels=None, ready="True", taints=None,
         unschedulable=False):
    n = {"metadata": {"name": name, "labels": labels or {}},
         "spec": {"taints": taints or [], "unschedulable": unschedulable},
         "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": pods}, "conditions": []}}
    if ready is not None:
        n["status"]["conditions"].append({"type": "Ready", "status": ready})
    return n


def pod(name="web", cpu=None, mem=None, init=(), ports=(), selector=None, tolerations=None,
        node_name="", labels=None, phase=None):
    c = {"name": "c", "image": "busybox"}
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    if req:
        c["resources"] = {"requests": req}
    if ports:
        c["ports"] = [dict(p) for p in ports]
    spec = {"containers": [c], "nodeName": node_name}
    if init:
        spec["initContainers"] = list(init)
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    p = {"metadata": {"name": name, "namespace": "default", "uid": "u-" + name, "labels": labels or {}},
         "spec": spec, "status": {}}
    if phase:
        p["status"]["phase"] = phase
    return p


def info(n):
    c = SchedulerCache()
    c.set_node(n)
    return c, c.nodes[n["metadata"]["name"]]


def test_quantities():
    assert parse_cpu("500m") == 500
    assert parse_cpu("1") == 1000
    assert parse_cpu("0.25") == 250
    assert parse_memory("64Mi") == 64 * 2 ** 20
    assert parse_memory("1G") == 10 ** 9
    assert parse_memory("1Gi") == 2 ** 30


def test_pod_requests_init_containers_kubernetes_rule():
    p = pod(cpu="100m", mem="100Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "200m", "memory": "50Mi"}}})
    # sum of containers: 300m / 150Mi; init containers: max(500m, 100m) and max(10Mi, 120Mi)
    p["spec"]["initContainers"] = [
        {"name": "i1", "resources": {"requests": {"cpu": "500m", "memory": "10Mi"}}},
        {"name": "i2", "resources": {"requests": {"cpu": "100m", "memory": "120Mi"}}}]
    cpu, mem, nz_cpu, nz_mem = pod_requests(p)
    assert cpu == 500
    assert mem == 150 * 2 ** 20


def test_pod_requests_limits_default_requests_and_nonzero():
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert pod_requests(p)[:2] == (1000, 2 ** 30)
    cpu, mem, nz_cpu, nz_mem = pod_requests(pod())
    assert (cpu, mem) == (0, 0)
    assert nz_cpu == 100 and nz_mem == 200 * 2 ** 20


def test_fits_resources_counts_pods_on_node():
    c, ni = info(node(cpu="1", mem="1Gi", pods="3"))
    assert fits_resources(PodInfo(pod(cpu="600m")), ni) == []
    c.set_pod(pod("a", cpu="600m", node_name="n1"))
    assert fits_resources(PodInfo(pod(cpu="600m")), ni) == [R_CPU]
    assert fits_resources(PodInfo(pod(cpu="400m")), ni) == []
    assert fits_resources(PodInfo(pod(mem="2Gi")), ni) == [R_MEMORY]
    c.set_pod(pod("b", node_name="n1"))
    c.set_pod(pod("c", node_name="n1"))
    assert fits_resources(PodInfo(pod(cpu="2", mem="2Gi")), ni) == [R_TOO_MANY_PODS, R_CPU, R_MEMORY]
    # a finished pod holds nothing; a deleted one neither
    c.set_pod(pod("a", cpu="600m", node_name="n1", phase="Succeeded"))
    assert ni.req_cpu == 0
    c.remove_pod("default/c")
    assert ni.npods == 1


def test_assumed_pod_counted_once():
    c, ni = info(node(cpu="1"))
    pi = PodInfo(pod("a", cpu="600m"))
    c.assume(pi, "n1")
    assert ni.req_cpu == 600 and ni.npods == 1
    c.set_pod(pod("a", cpu="600m", node_name="n1"))      # the watch confirms the binding
    assert ni.req_cpu == 600 and ni.npods == 1
    assert "default/a" not in c.assumed
    c.forget("default/a")                                  # not assumed any more: nothing undone
    assert ni.npods == 1
    pi2 = PodInfo(pod("b", cpu="100m"))
    c.assume(pi2, "n1")
    c.forget("default/b")
    assert ni.req_cpu == 600 and ni.npods == 1


def test_node_selector():
    assert node_selector_matches({"disk": "ssd"}, {"disk": "ssd", "x": "y"})
    assert not node_selector_matches({"disk": "ssd"}, {"disk": "hdd"})
    assert not node_selector_matches({"disk": "ssd"}, {})
    _, ni = info(node(labels={"disk": "hdd"}))
    assert static_reasons(PodInfo(pod(selector={"disk": "ssd"})), ni) == [R_SELECTOR]
    _, ni = info(node(labels={"disk": "ssd"}))
    assert static_reasons(PodInfo(pod(selector={"disk": "ssd"})), ni) == []


def test_node_name():
    _, ni = info(node("n1"))
    assert static_reasons(PodInfo(pod(node_name="n2")), ni) == [R_NODE_NAME]
    assert static_reasons(PodInfo(pod(node_name="n1")), ni) == []


def test_host_ports_conflicts():
    used = {("TCP", 80): Counter({"0.0.0.0": 1}), ("UDP", 53): Counter({"10.0.0.1": 1})}
    assert host_ports_conflict([("TCP", 80, "0.0.0.0")], used)
    assert host_ports_conflict([("TCP", 80, "10.0.0.9")], used)        # 0.0.0.0 overlaps every IP
    assert not host_ports_conflict([("UDP", 80, "0.0.0.0")], used)     # other protocol
    assert not host_ports_conflict([("TCP", 81, "0.0.0.0")], used)
    assert host_ports_conflict([("UDP", 53, "10.0.0.1")], used)
    assert host_ports_conflict([("UDP", 53, "0.0.0.0")], used)
    assert not host_ports_conflict([("UDP", 53, "10.0.0.2")], used)
    assert pod_host_ports(pod(ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}])) == \
        (("TCP", 8080, "0.0.0.0"),)
    c, ni = info(node())
    c.set_pod(pod("a", node_name="n1", ports=[{"containerPort": 80, "hostPort": 8080}]))
    assert filter_node(PodInfo(pod(ports=[{"containerPort": 80, "hostPort": 8080}])), ni) == [R_PORTS]
    assert filter_node(PodInfo(pod(ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])), ni) == []
    c.remove_pod("default/a")
    assert filter_node(PodInfo(pod(ports=[{"containerPort": 80, "hostPort": 8080}])), ni) == []


def test_readiness_unschedulable_and_taints():
    for ready in ("False", "Unknown", None):
        _, ni = info(node(ready=ready))
        r = static_reasons(PodInfo(pod()), ni)
        assert len(r) == 1 and r[0].startswith("node(s) had untolerated taint {node.kubernetes.io/")
    _, ni = info(node(ready="False"))
    tol = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]
    assert static_reasons(PodInfo(pod(tolerations=tol)), ni) == []
    _, ni = info(node(unschedulable=True))
    assert static_reasons(PodInfo(pod()), ni) == [R_UNSCHEDULABLE]
    _, ni = info(node(taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]))
    assert static_reasons(PodInfo(pod()), ni) == ["node(s) had untolerated taint {gpu: yes}"]
    assert static_reasons(PodInfo(pod(tolerations=[{"key": "gpu", "value": "yes"}])), ni) == []
    assert static_reasons(PodInfo(pod(tolerations=[{"key": "gpu", "value": "no"}])), ni) != []
    _, ni = info(node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}]))
    assert static_reasons(PodInfo(pod()), ni) == []
    assert tolerates({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"})
    assert not tolerates({"key": "a", "operator": "Exists", "effect": "NoSchedule"},
                         {"key": "a", "effect": "NoExecute"})
    assert untolerated_taint([], [{"key": "a", "effect": "NoExecute"}]) == {"key": "a", "effect": "NoExecute"}


def test_fit_error_message_kubernetes_format():
    msg = fit_error_message(3, {R_CPU: 1, R_SELECTOR: 2})
    assert msg == "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"


def _with_resources(p, requests=None, limits=None):
    p["spec"]["containers"][0]["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return p


def test_extended_resources_and_ephemeral_storage_are_fitted():
    """kubernetes/website's extended-resource-pod.yaml: 3 example.com/dongle on a node that has
    none stays Pending (Insufficient example.com/dongle); on a node with 4, the first fits and a
    second of 3 does not. A limit alone counts as the request."""
    from skiff.controller.scheduler.filters import pod_scalar_requests
    dongles = _with_resources(pod("demo"), requests={"example.com/dongle": "3"},
                              limits={"example.com/dongle": "3"})
    assert pod_scalar_requests(dongles) == (("example.com/dongle", 3),)
    c, ni = info(node())
    assert fits_resources(PodInfo(dongles), ni) == ["Insufficient example.com/dongle"]
    assert fit_error_message(3, Counter({"Insufficient example.com/dongle": 3})) == \
        "0/3 nodes are available: 3 Insufficient example.com/dongle."
    n = node()
    n["status"]["allocatable"].update({"example.com/dongle": "4", "ephemeral-storage": "10Gi"})
    c, ni = info(n)
    assert fits_resources(PodInfo(dongles), ni) == []
    c.assume(PodInfo(dongles), "n1")
    assert ni.req_scalar == {"example.com/dongle": 3}
    second = _with_resources(pod("demo-2"), limits={"example.com/dongle": "3"})
    assert fits_resources(PodInfo(second), ni) == ["Insufficient example.com/dongle"]
    c.remove_pod("default/demo")
    assert ni.req_scalar == {} and fits_resources(PodInfo(second), ni) == []
    disk = _with_resources(pod("disk"), requests={"ephemeral-storage": "2Gi"})
    assert fits_resources(PodInfo(disk), ni) == []
    big = _with_resources(pod("big"), requests={"ephemeral-storage": "20Gi", "cpu": "100m"})
    assert fits_resources(PodInfo(big), ni) == ["Insufficient ephemeral-storage"]
    assert PodInfo(pod("plain", cpu="100m")).scalars == ()


def test_the_scheduler_cycle_leaves_a_pod_short_of_an_extended_resource_pending():
    from skiff.controller.scheduler import Scheduler
    s = Scheduler(None)
    with_gpu = node("gpu")
    with_gpu["status"]["allocatable"]["nvidia.com/gpu"] = "1"
    s.cache.set_node(node("plain"))
    s.cache.set_node(with_gpu)
    want = PodInfo(_with_resources(pod("train"), limits={"nvidia.com/gpu": "1"}))
    ni, feasible, reasons, total = s.schedule(want)
    assert ni.name == "gpu" and feasible == 1 and reasons == Counter({"Insufficient nvidia.com/gpu": 1})
    s.cache.assume(want, "gpu")
    other = PodInfo(_with_resources(pod("train-2"), limits={"nvidia.com/gpu": "1"}))
    ni, _, reasons, total = s.schedule(other)
    assert ni is None and fit_error_message(total, reasons) == \
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
