"""The scheduler, node lifecycle and node IPAM controllers against the real control plane
(ControlPlane in tmp_path, in-process LocalClient); "nodes" are Node objects + Leases written by
the test, as an agent would."""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane

pytestmark = pytest.mark.asyncio

GRACE = 1.5


def now3339(micro=False) -> str:
    t = time.time()
    s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return s + (f".{int(t % 1 * 1e6):06d}Z" if micro else "Z")


class Cluster:
    def __init__(self, cp: ControlPlane):
        self.cp = cp
        self.c = cp.local_client()
        self.alive: set[str] = set()
        self._renewer = asyncio.create_task(self._renew())

    async def add_node(self, name, cpu="2", mem="4Gi", pods=110, labels=None):
        labels = {"kubernetes.io/hostname": name, **(labels or {})}
        await self.c.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                      "metadata": {"name": name, "labels": labels}})
        res = {"cpu": cpu, "memory": mem, "pods": str(pods)}
        await self.c.patch("nodes", name, {"status": {
            "capacity": res, "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "ready", "lastHeartbeatTime": now3339(),
                            "lastTransitionTime": now3339()}]}}, subresource="status")
        await self.c.create("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                       "metadata": {"name": name, "namespace": "kube-node-lease"},
                                       "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                "renewTime": now3339(True)}}, "kube-node-lease")
        self.alive.add(name)

    async def _renew(self):
        while True:
            await asyncio.sleep(0.2)
            for name in list(self.alive):
                try:
                    await self.c.patch("leases", name, {"spec": {"renewTime": now3339(True)}}, "kube-node-lease")
                except APIError:
                    pass

    async def pod(self, name, cpu=None, mem=None, selector=None, host_port=None, labels=None):
        c = {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}
        if cpu or mem:
            c["resources"] = {"requests": {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}}
        if host_port:
            c["ports"] = [{"containerPort": 80, "hostPort": host_port}]
        spec = {"containers": [c]}
        if selector:
            spec["nodeSelector"] = selector
        return await self.c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                            "metadata": {"name": name, "labels": labels or {}},
                                            "spec": spec}, "default")

    async def get(self, name):
        return await self.c.get("pods", name, "default")

    async def node_of(self, name):
        return ((await self.get(name)).get("spec") or {}).get("nodeName")

    async def events(self, name, reason=None):
        items = (await self.c.list("events", "default", field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if reason is None or e.get("reason") == reason]

    async def close(self):
        self._renewer.cancel()
        await asyncio.gather(self._renewer, return_exceptions=True)


async def wait_for(fn, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s (last: {last!r})")


@pytest_asyncio.fixture
async def cluster(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=GRACE, scheduler_retry=5.0):
        cp.add_controller(f)
    await cp.start()
    cl = Cluster(cp)
    try:
        yield cl
    finally:
        await cl.close()
        await cp.stop()


def cond(obj, typ):
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c.get("type") == typ), None)


async def test_pods_bound_and_spread(cluster):
    for n in ("n1", "n2", "n3"):
        await cluster.add_node(n)
    for i in range(9):
        await cluster.pod(f"web-{i}", cpu="100m", mem="64Mi", labels={"app": "web"})

    async def all_bound():
        nodes = [await cluster.node_of(f"web-{i}") for i in range(9)]
        return nodes if all(nodes) else None
    nodes = await wait_for(all_bound)
    assert Counter(nodes) == {"n1": 3, "n2": 3, "n3": 3}
    p = await cluster.get("web-0")
    assert cond(p, "PodScheduled")["status"] == "True"
    evs = await wait_for(lambda: cluster.events("web-0", "Scheduled"))
    assert evs[0]["type"] == "Normal"
    assert evs[0]["message"] == f"Successfully assigned default/web-0 to {nodes[0]}"
    assert evs[0]["source"]["component"] == "default-scheduler"


async def test_node_selector_honoured(cluster):
    await cluster.add_node("n1")
    await cluster.add_node("n2", labels={"disk": "ssd"})
    await cluster.add_node("n3")
    for i in range(4):
        await cluster.pod(f"db-{i}", selector={"disk": "ssd"})
    for i in range(4):
        assert await wait_for(lambda: cluster.node_of(f"db-{i}")) == "n2"


async def test_unschedulable_pod_stays_pending_with_reasons_then_fits(cluster):
    await cluster.add_node("n1", cpu="2")
    await cluster.add_node("n2", cpu="2", labels={"disk": "ssd"})
    await cluster.add_node("n3", cpu="2")
    await cluster.pod("big", cpu="3", selector={"disk": "ssd"})
    # and kube-scheduler's PostFilter part: preemption cannot help (all pods have priority 0)
    want = ("0/3 nodes are available: 1 Insufficient cpu, "
            "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
            "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling..")

    async def unschedulable():
        c = cond(await cluster.get("big"), "PodScheduled")
        return c if c and c["status"] == "False" else None
    c = await wait_for(unschedulable)
    assert c["reason"] == "Unschedulable" and c["message"] == want
    evs = await wait_for(lambda: cluster.events("big", "FailedScheduling"))
    assert evs[0]["type"] == "Warning" and evs[0]["message"] == want
    p = await cluster.get("big")
    assert not p["spec"].get("nodeName")
    assert (p.get("status") or {}).get("phase") in (None, "Pending")
    # a node that fits appears: the pod is retried (node change) and bound
    await cluster.add_node("n4", cpu="4", labels={"disk": "ssd"})
    assert await wait_for(lambda: cluster.node_of("big"), timeout=3) == "n4"   # well before the 5 s retry


async def test_requests_add_up_on_a_node(cluster):
    await cluster.add_node("n1", cpu="1")
    await cluster.pod("a", cpu="600m")
    assert await wait_for(lambda: cluster.node_of("a")) == "n1"
    await cluster.pod("b", cpu="600m")
    evs = await wait_for(lambda: cluster.events("b", "FailedScheduling"))
    assert evs[0]["message"] == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                 "available: 1 No preemption victims found for incoming pod..")
    # freeing the first pod's room lets the second in
    await cluster.c.delete("pods", "a", "default", grace_period_seconds=0)
    assert await wait_for(lambda: cluster.node_of("b"), timeout=3) == "n1"


async def test_preemption_evicts_the_lowest_priority_pods_and_nominates_the_node(cluster):
    """DefaultPreemption: a high-priority pod that fits nowhere evicts the lower-priority pods it
    needs gone (DisruptionTarget, deleted, Preempted event), gets the node nominated, keeps that
    and is bound once the victims are gone (the room kept for it meanwhile: test_scheduler_affinity)."""
    for name, value in (("t-low", 10), ("t-mid", 100), ("t-high", 1000)):
        await cluster.c.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                                   "metadata": {"name": name}, "value": value})
    await cluster.add_node("n1", cpu="1")
    await cluster.add_node("n2", cpu="1", labels={"zone": "far"})

    async def pod(name, cls, cpu, **spec):
        c = {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
        return await cluster.c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                               "spec": {"containers": [c], "priorityClassName": cls,
                                                        "nodeSelector": {"kubernetes.io/hostname": "x"} if
                                                        spec.get("nowhere") else {}, **{
                                                            k: v for k, v in spec.items() if k != "nowhere"}}},
                                      "default")
    await pod("low-a", "t-low", "400m", nodeName="n1")
    await pod("mid-a", "t-mid", "500m", nodeName="n1")
    await pod("mid-b", "t-mid", "900m", nodeName="n2")
    # n1: 900m used by a t-low (400m) and a t-mid (500m) pod; n2: one t-mid pod of 900m
    await pod("urgent", "t-high", "500m")
    victim = await wait_for(lambda: _deleting(cluster, "low-a"))
    c = cond(victim, "DisruptionTarget")
    assert (c["status"], c["reason"], c["message"]) == ("True", "PreemptionByScheduler",
                                                         "default-scheduler: preempting to accommodate a higher "
                                                         "priority pod")
    urgent = await wait_for(lambda: _nominated(cluster, "urgent"))
    assert urgent["status"]["nominatedNodeName"] == "n1"      # one victim of the lowest priority there
    for other in ("mid-a", "mid-b"):
        assert not (await cluster.get(other))["metadata"].get("deletionTimestamp")
    evs = await wait_for(lambda: cluster.events("low-a", "Preempted"))
    assert evs[0]["message"] == f"Preempted by pod {urgent['metadata']['uid']} on node n1"
    # the kubelet's part: the victim goes; the preemptor is bound where the room was made
    await cluster.c.delete("pods", "low-a", "default", grace_period_seconds=0)
    assert await wait_for(lambda: cluster.node_of("urgent"), timeout=8) == "n1"
    # preemptionPolicy Never: waits, preempts nothing
    await cluster.c.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                               "metadata": {"name": "t-polite"}, "value": 5000,
                                               "preemptionPolicy": "Never"})
    await pod("polite", "t-polite", "500m")
    evs = await wait_for(lambda: cluster.events("polite", "FailedScheduling"))
    assert evs[0]["message"].endswith(" preemption: not eligible due to preemptionPolicy=Never..")
    assert not (await cluster.get("mid-a"))["metadata"].get("deletionTimestamp")


async def _deleting(cluster, name):
    p = await cluster.get(name)
    return p if p["metadata"].get("deletionTimestamp") else None


async def _nominated(cluster, name):
    p = await cluster.get(name)
    return p if (p.get("status") or {}).get("nominatedNodeName") else None


async def test_host_port_conflict(cluster):
    await cluster.add_node("n1")
    await cluster.add_node("n2")
    for i in range(3):
        await cluster.pod(f"hp-{i}", host_port=8080)

    async def two_bound():
        nodes = [await cluster.node_of(f"hp-{i}") for i in range(3)]
        return nodes if sum(1 for n in nodes if n) == 2 else None
    nodes = await wait_for(two_bound)
    assert sorted(n for n in nodes if n) == ["n1", "n2"]
    pending = f"hp-{nodes.index(None)}"
    evs = await wait_for(lambda: cluster.events(pending, "FailedScheduling"))
    assert evs[0]["message"] == ("0/2 nodes are available: 2 node(s) didn't have free ports "
                                 "for the requested pod ports. preemption: 0/2 nodes are available: "
                                 "2 No preemption victims found for incoming pod..")


async def test_replica_set_with_hostname_anti_affinity_one_pod_per_node(cluster):
    for n in ("n1", "n2", "n3"):
        await cluster.add_node(n)
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    await cluster.c.create("replicasets", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"affinity": anti, "containers": [
                                  {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}}}, "default")

    async def three_bound():
        pods = (await cluster.c.list("pods", "default", label_selector="app=web"))["items"]
        bound = [p for p in pods if p["spec"].get("nodeName")]
        return pods if len(pods) == 4 and len(bound) == 3 else None
    pods = await wait_for(three_bound)
    assert sorted(p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")) == ["n1", "n2", "n3"]
    (pending,) = [p for p in pods if not p["spec"].get("nodeName")]
    want = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    evs = await wait_for(lambda: cluster.events(pending["metadata"]["name"], "FailedScheduling"))
    assert evs[0]["type"] == "Warning" and evs[0]["message"] == want

    async def unschedulable():
        c = cond(await cluster.get(pending["metadata"]["name"]), "PodScheduled")
        return c if c and c["status"] == "False" else None
    c = await wait_for(unschedulable)
    assert c["reason"] == "Unschedulable" and c["message"] == want
    # a fourth node takes it
    await cluster.add_node("n4")
    assert await wait_for(lambda: cluster.node_of(pending["metadata"]["name"]), timeout=8) == "n4"


async def test_expired_lease_node_not_ready_and_pods_not_ready(cluster):
    await cluster.add_node("n1")
    await cluster.add_node("n2")
    await cluster.pod("w", selector={"kubernetes.io/hostname": "n1"})
    assert await wait_for(lambda: cluster.node_of("w")) == "n1"
    # the "agent" reports the pod running and ready
    t = now3339()
    await cluster.c.patch("pods", "w", {"status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
        {"type": "Ready", "status": "True", "lastTransitionTime": t}]}}, "default", subresource="status")
    await asyncio.sleep(GRACE + 0.5)          # renewed leases: nothing happens
    n1 = await cluster.c.get("nodes", "n1")
    assert cond(n1, "Ready")["status"] == "True"
    cluster.alive.discard("n1")               # the agent on n1 dies
    t0 = time.monotonic()

    async def unknown():
        c = cond(await cluster.c.get("nodes", "n1"), "Ready")
        return c if c["status"] == "Unknown" else None
    c = await wait_for(unknown, timeout=GRACE + 3)
    assert time.monotonic() - t0 <= GRACE + 1.5
    assert c["reason"] == "NodeStatusUnknown"
    assert c["message"] == "Kubelet stopped posting node status."

    async def pod_not_ready():
        p = await cluster.get("w")
        return p if cond(p, "Ready")["status"] == "False" else None
    p = await wait_for(pod_not_ready, timeout=3)
    assert cond(p, "ContainersReady")["status"] == "False"
    evs = await wait_for(lambda: cluster.events("n1", "NodeNotReady"))
    assert evs[0]["message"] == "Node n1 status is now: NodeNotReady"
    assert await wait_for(lambda: cluster.events("w", "NodeNotReady"))
    assert cond(await cluster.c.get("nodes", "n2"), "Ready")["status"] == "True"
    # a NotReady node takes no new pod
    await cluster.pod("x", selector={"kubernetes.io/hostname": "n1"})
    evs = await wait_for(lambda: cluster.events("x", "FailedScheduling"))
    assert "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }" in evs[0]["message"]


async def test_pod_cidrs_distinct_and_kept_across_restart(tmp_path):
    data = str(tmp_path / "cp")
    cp = ControlPlane(data, listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=GRACE):
        cp.add_controller(f)
    await cp.start()
    cl = Cluster(cp)
    try:
        for n in ("n1", "n2", "n3"):
            await cl.add_node(n)

        async def cidrs():
            got = {n: ((await cl.c.get("nodes", n)).get("spec") or {}).get("podCIDR") for n in ("n1", "n2", "n3")}
            return got if all(got.values()) else None
        first = await wait_for(cidrs)
        assert len(set(first.values())) == 3
        for n, cidr in first.items():
            node = await cl.c.get("nodes", n)
            assert node["spec"]["podCIDRs"] == [cidr]
            assert cidr.startswith("10.244.") and cidr.endswith("/24")
    finally:
        await cl.close()
        await cp.stop()
    cp = ControlPlane(data, listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=GRACE):
        cp.add_controller(f)
    await cp.start()
    cl = Cluster(cp)
    try:
        await cl.add_node("n4")
        cidr4 = await wait_for(lambda: _cidr(cl, "n4"))
        assert cidr4 not in first.values()
        for n, cidr in first.items():
            assert (await cl.c.get("nodes", n))["spec"]["podCIDR"] == cidr
    finally:
        await cl.close()
        await cp.stop()


async def _cidr(cl, name):
    return ((await cl.c.get("nodes", name)).get("spec") or {}).get("podCIDR")


async def test_scheduling_gates_hold_the_pod_until_removed(cluster):
    await cluster.add_node("n1")
    await cluster.c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated"},
                                    "spec": {"schedulingGates": [{"name": "example.com/foo"}, {"name": "bar"}],
                                             "containers": [{"name": "c", "image": "busybox"}]}}, "default")
    p = await cluster.get("gated")
    c = cond(p, "PodScheduled")
    assert (c["status"], c["reason"], c["message"]) == ("False", "SchedulingGated",
                                                        "Scheduling is blocked due to non-empty scheduling gates")
    from skiff.api.tables import pod_status
    assert pod_status(p)[1] == "SchedulingGated"
    with pytest.raises(APIError) as ei:     # gates may be removed, not added
        await cluster.c.patch("pods", "gated", {"spec": {"schedulingGates": [{"name": "bar"}, {"name": "new"}]}},
                              "default")
    assert ei.value.code == 422
    assert "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'new'" \
        in ei.value.message
    await cluster.c.patch("pods", "gated", {"spec": {"schedulingGates": [{"name": "bar"}]}}, "default")
    await asyncio.sleep(0.5)
    assert await cluster.node_of("gated") is None         # one gate left: still held
    await cluster.c.patch("pods", "gated", {"spec": {"schedulingGates": None}}, "default")
    assert await wait_for(lambda: cluster.node_of("gated")) == "n1"
    assert cond(await cluster.get("gated"), "PodScheduled")["status"] == "True"
