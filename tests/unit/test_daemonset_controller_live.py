"""The DaemonSet controller against a real ControlPlane in-process (LocalClient), with the
scheduler, the garbage collector and the other standard controllers. "Nodes" are Node objects and
Leases written by the test (Cluster of test_controllers_live); a fake kubelet makes the pods bound
to them Running and Ready, so rollouts progress."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.admission import admit
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.workloads import daemonlogic as D
from skiff.controller.workloads import logic as L

from tests.unit.test_controllers_live import Cluster, wait_for

pytestmark = pytest.mark.asyncio


class DSCluster(Cluster):
    """Nodes and leases, and a fake kubelet: pods bound to a live node become Running and Ready
    (or Failed, for the names in ``fail``)."""

    def __init__(self, cp):
        super().__init__(cp)
        self.fail: set[str] = set()
        self._kubelet = asyncio.create_task(self._run_kubelet())

    async def _run_kubelet(self):
        while True:
            await asyncio.sleep(0.05)
            try:
                pods = (await self.c.list("pods"))["items"]
            except APIError:
                continue
            for p in pods:
                md, st = p["metadata"], p.get("status") or {}
                if p["spec"].get("nodeName") not in self.alive:
                    continue
                if md.get("deletionTimestamp"):     # stopped at once: the object goes
                    try:
                        await self.c.delete("pods", md["name"], md["namespace"], grace_period_seconds=0)
                    except APIError:
                        pass
                    continue
                phase = "Failed" if md["name"] in self.fail else "Running"
                if st.get("phase") == phase and (phase == "Failed" or L.is_pod_ready(p)):
                    continue
                t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                ready = "False" if phase == "Failed" else "True"
                try:
                    await self.c.patch("pods", md["name"], {
                        "metadata": {"resourceVersion": md["resourceVersion"]},
                        "status": {"phase": phase, "conditions": [
                            {"type": "Ready", "status": ready, "lastTransitionTime": t},
                            {"type": "ContainersReady", "status": ready, "lastTransitionTime": t}]}},
                        md["namespace"], subresource="status")
                except APIError:
                    pass

    async def close(self):
        self._kubelet.cancel()
        await asyncio.gather(self._kubelet, return_exceptions=True)
        await super().close()

    async def daemonset(self, name="agent", image="busybox:1", **spec):
        return await self.c.create("daemonsets", {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}, "default")

    async def ds(self, name="agent"):
        return await self.c.get("daemonsets", name, "default")

    async def live_pods(self):
        items = (await self.c.list("pods", "default"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    async def pods_per_node(self):
        out: dict[str, list[dict]] = {}
        for p in await self.live_pods():
            out.setdefault(p["spec"].get("nodeName") or "", []).append(p)
        return out

    async def update(self, mutate, name="agent"):
        """Read-modify-write the DaemonSet, retried on 409 (the controller writes its status)."""
        for _ in range(20):
            ds = await self.ds(name)
            mutate(ds)
            try:
                return await self.c.update("daemonsets", ds)
            except APIError as e:
                if e.code != 409:
                    raise
            await asyncio.sleep(0.05)
        raise AssertionError("update kept conflicting")

    async def rolled_out(self, desired, name="agent"):
        """kubectl rollout status's test: observed, every node updated and available."""
        ds = await self.ds(name)
        st = ds.get("status") or {}
        ok = (st.get("observedGeneration") == ds["metadata"]["generation"]
              and st.get("desiredNumberScheduled") == desired
              and st.get("updatedNumberScheduled", 0) == desired and st.get("numberAvailable", 0) == desired)
        return ds if ok else None


@pytest_asyncio.fixture
async def cluster(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=30, scheduler_retry=0.5):
        cp.add_controller(f)
    await cp.start()
    cl = DSCluster(cp)
    try:
        yield cl
    finally:
        await cl.close()
        await cp.stop()


class Sampler:
    """Samples the DaemonSet's pods every 30 ms during a rollout: the fewest nodes with a Ready
    pod, the most pods not being deleted, and the hashes seen per node in order."""

    def __init__(self, cl, name="agent"):
        self.cl, self.name = cl, name
        self.min_ready_nodes = 10 ** 6
        self.max_pods = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            pods = [p for p in await self.cl.live_pods() if p["metadata"]["labels"].get("app") == self.name]
            ready = {p["spec"].get("nodeName") for p in pods if L.is_pod_ready(p)}
            self.min_ready_nodes = min(self.min_ready_nodes, len(ready))
            self.max_pods = max(self.max_pods, len(pods))
            await asyncio.sleep(0.03)

    async def stop(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _events(cl, name, reason):
    return [e["message"] for e in (await cl.c.list("events", "default", field_selector=f"involvedObject.name={name}"))
            ["items"] if e["reason"] == reason]


def _hashes(per: dict) -> set:
    return {p["metadata"]["labels"][D.REVISION_HASH_LABEL] for pods in per.values() for p in pods}


async def test_one_pod_per_node_new_node_taints_and_delete(cluster):
    cl = cluster
    for n in ("n1", "n2", "n3"):
        await cl.add_node(n)
    await cl.daemonset()
    ds = await wait_for(lambda: cl.rolled_out(3), timeout=15)
    per = await cl.pods_per_node()
    assert sorted(per) == ["n1", "n2", "n3"] and all(len(v) == 1 for v in per.values())
    st = ds["status"]
    assert (st["currentNumberScheduled"], st["numberReady"], st["numberMisscheduled"]) == (3, 3, 0)
    assert "numberUnavailable" not in st
    p = per["n2"][0]
    # made for its node through the scheduler, with Kubernetes' labels, owner and tolerations
    assert p["metadata"]["name"].startswith("agent-")
    assert p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}
    labels = p["metadata"]["labels"]
    assert labels[D.TEMPLATE_GENERATION_LABEL] == "1" and labels["app"] == "agent"
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                                 "uid": ds["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]
    tols = {(t["key"], t["effect"]): t for t in p["spec"]["tolerations"]}
    assert "tolerationSeconds" not in tols[("node.kubernetes.io/unreachable", "NoExecute")]
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tols
    # one ControllerRevision, whose hash the pods carry
    revs = (await cl.c.list("controllerrevisions", "default"))["items"]
    assert len(revs) == 1 and revs[0]["revision"] == 1
    assert revs[0]["metadata"]["name"] == f"agent-{labels[D.REVISION_HASH_LABEL]}"
    assert sorted(await _events(cl, "agent", "SuccessfulCreate")) == \
        sorted(f"Created pod: {v[0]['metadata']['name']}" for v in per.values())

    # a new node gets its pod
    await cl.add_node("n4")
    await wait_for(lambda: cl.rolled_out(4), timeout=15)
    assert sorted(await cl.pods_per_node()) == ["n1", "n2", "n3", "n4"]

    # an untolerated NoSchedule taint: the node is no longer desired, but its pod keeps running
    # (only NoExecute taints stop daemon pods): misscheduled
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    await cl.c.patch("nodes", "n3", {"spec": {"taints": [taint]}})

    async def misscheduled():
        st = (await cl.ds()).get("status") or {}
        return st if (st.get("desiredNumberScheduled"), st.get("numberMisscheduled")) == (3, 1) else None
    st = await wait_for(misscheduled, timeout=15)
    assert st["currentNumberScheduled"] == 3 and st["numberAvailable"] == 3
    assert sorted(await cl.pods_per_node()) == ["n1", "n2", "n3", "n4"]
    # NoExecute: the pod goes
    await cl.c.patch("nodes", "n3", {"spec": {"taints": [{**taint, "effect": "NoExecute"}]}})

    async def left_n3():
        per = await cl.pods_per_node()
        return per if sorted(per) == ["n1", "n2", "n4"] else None
    await wait_for(left_n3, timeout=15)

    async def settled():   # the status written after the pod's deletion was seen
        ds = await cl.rolled_out(3)
        return ds if ds is not None and ds["status"]["numberMisscheduled"] == 0 else None
    ds = await wait_for(settled, timeout=15)
    n3_pod = per["n3"][0]["metadata"]["name"]
    assert await _events(cl, "agent", "SuccessfulDelete") == [f"Deleted pod: {n3_pod}"]
    # tolerating it brings one back
    await cl.update(lambda d: d["spec"]["template"]["spec"].update(
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]))
    await wait_for(lambda: cl.rolled_out(4), timeout=20)

    # deleting the DaemonSet deletes its pods and revisions (garbage collector)
    await cl.c.delete("daemonsets", "agent", "default")

    async def gone():
        return not (await cl.c.list("pods", "default"))["items"] and \
            not (await cl.c.list("controllerrevisions", "default"))["items"]
    await wait_for(gone, timeout=15)


async def test_node_selector_and_affinity(cluster):
    cl = cluster
    await cl.add_node("n1", labels={"disk": "ssd"})
    await cl.add_node("n2")
    await cl.add_node("n3", labels={"disk": "ssd", "zone": "b"})
    await cl.c.create("daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ssd"},
        "spec": {"selector": {"matchLabels": {"app": "ssd"}},
                 "template": {"metadata": {"labels": {"app": "ssd"}},
                              "spec": {"nodeSelector": {"disk": "ssd"},
                                       "affinity": {"nodeAffinity": {
                                           "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                               {"matchExpressions": [{"key": "zone", "operator": "NotIn",
                                                                      "values": ["a"]}]}]},
                                           "preferredDuringSchedulingIgnoredDuringExecution": [
                                               {"weight": 1, "preference": {"matchExpressions": [
                                                   {"key": "zone", "operator": "Exists"}]}}]}},
                                       "containers": [{"name": "c", "image": "busybox"}]}}}}, "default")
    await wait_for(lambda: cl.rolled_out(2, "ssd"), timeout=15)
    per = await cl.pods_per_node()
    assert sorted(per) == ["n1", "n3"]
    # the required terms were the controller's to check; the pod's say which node, the rest stays
    na = per["n1"][0]["spec"]["affinity"]["nodeAffinity"]
    assert na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    assert na["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 1
    # a node that stops matching the affinity loses its pod; one that starts matching the selector gets one
    await cl.c.patch("nodes", "n3", {"metadata": {"labels": {"zone": "a"}}})
    await cl.c.patch("nodes", "n2", {"metadata": {"labels": {"disk": "ssd"}}})

    async def moved():
        per = await cl.pods_per_node()
        return per if sorted(per) == ["n1", "n2"] else None
    await wait_for(moved, timeout=15)
    await wait_for(lambda: cl.rolled_out(2, "ssd"), timeout=15)


async def test_rolling_update_max_unavailable_node_by_node(cluster):
    cl = cluster
    for n in ("n1", "n2", "n3", "n4"):
        await cl.add_node(n)
    await cl.daemonset()
    await wait_for(lambda: cl.rolled_out(4), timeout=15)
    old = _hashes(await cl.pods_per_node())
    sampler = Sampler(cl)
    await cl.update(lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"))
    ds = await wait_for(lambda: cl.rolled_out(4), timeout=30)
    await sampler.stop()
    per = await cl.pods_per_node()
    new = _hashes(per)
    assert len(new) == 1 and new != old and sorted(per) == ["n1", "n2", "n3", "n4"]
    assert all(p["spec"]["containers"][0]["image"] == "busybox:2" for v in per.values() for p in v)
    assert all(p["metadata"]["labels"][D.TEMPLATE_GENERATION_LABEL] == "2" for v in per.values() for p in v)
    assert ds["metadata"]["annotations"][D.TEMPLATE_GENERATION_ANNOTATION] == "2"
    # maxUnavailable 1 (the default), no surge: one node at a time without a ready pod, never two pods
    assert sampler.min_ready_nodes == 3, sampler.min_ready_nodes
    assert sampler.max_pods == 4, sampler.max_pods
    assert len(await _events(cl, "agent", "SuccessfulDelete")) == 4
    revs = sorted((await cl.c.list("controllerrevisions", "default"))["items"], key=lambda r: r["revision"])
    assert [r["revision"] for r in revs] == [1, 2]
    assert revs[1]["metadata"]["labels"][D.REVISION_HASH_LABEL] in new


async def test_rolling_update_max_surge_creates_first(cluster):
    cl = cluster
    for n in ("n1", "n2", "n3"):
        await cl.add_node(n)
    await cl.daemonset(updateStrategy={"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    await wait_for(lambda: cl.rolled_out(3), timeout=15)
    sampler = Sampler(cl)
    await cl.update(lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"))
    await wait_for(lambda: cl.rolled_out(3), timeout=30)

    async def settled():
        per = await cl.pods_per_node()
        return per if all(len(v) == 1 for v in per.values()) and len(per) == 3 else None
    per = await wait_for(settled, timeout=15)
    await sampler.stop()
    assert len(_hashes(per)) == 1
    # the new pod comes up next to the old one first: every node always had a ready pod, and at
    # most one node had two
    assert sampler.min_ready_nodes == 3, sampler.min_ready_nodes
    assert sampler.max_pods == 4, sampler.max_pods


async def test_on_delete_replaces_only_deleted_pods(cluster):
    cl = cluster
    for n in ("n1", "n2"):
        await cl.add_node(n)
    await cl.daemonset(updateStrategy={"type": "OnDelete"})
    await wait_for(lambda: cl.rolled_out(2), timeout=15)
    before = await cl.pods_per_node()
    await cl.update(lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"))

    async def observed():
        ds = await cl.ds()
        st = ds.get("status") or {}
        return st if st.get("observedGeneration") == ds["metadata"]["generation"] else None
    st = await wait_for(observed, timeout=15)
    await asyncio.sleep(0.5)
    assert {n: [p["metadata"]["name"] for p in v] for n, v in (await cl.pods_per_node()).items()} == \
        {n: [p["metadata"]["name"] for p in v] for n, v in before.items()}
    assert st.get("updatedNumberScheduled", 0) == 0 and st["numberReady"] == 2
    victim = before["n1"][0]["metadata"]["name"]
    await cl.c.delete("pods", victim, "default")

    async def replaced():
        per = await cl.pods_per_node()
        p = (per.get("n1") or [None])[0]
        return p if p is not None and p["metadata"]["name"] != victim else None
    p = await wait_for(replaced, timeout=15)
    assert p["spec"]["containers"][0]["image"] == "busybox:2"

    async def one_updated():
        st = (await cl.ds()).get("status") or {}
        return st if st.get("updatedNumberScheduled") == 1 and st.get("numberAvailable") == 2 else None
    await wait_for(one_updated, timeout=15)
    assert (await cl.pods_per_node())["n2"][0]["metadata"]["name"] == before["n2"][0]["metadata"]["name"]


async def test_failed_pod_is_deleted_and_recreated(cluster):
    cl = cluster
    await cl.add_node("n1")
    await cl.daemonset()
    await wait_for(lambda: cl.rolled_out(1), timeout=15)
    first = (await cl.pods_per_node())["n1"][0]["metadata"]["name"]
    cl.fail.add(first)

    async def replaced():
        per = await cl.pods_per_node()
        p = (per.get("n1") or [None])[0]
        return p if p is not None and p["metadata"]["name"] != first and L.is_pod_ready(p) else None
    await wait_for(replaced, timeout=15)
    assert await _events(cl, "agent", "FailedDaemonPod") == [
        f"Found failed daemon pod default/{first} on node n1, will try to kill it"]
    await wait_for(lambda: cl.rolled_out(1), timeout=15)


async def test_revisions_rollback_and_history_limit(cluster):
    cl = cluster
    await cl.add_node("n1")
    await cl.daemonset(revisionHistoryLimit=1)
    await wait_for(lambda: cl.rolled_out(1), timeout=15)
    for image in ("busybox:2", "busybox:3"):
        await cl.update(lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=image))
        await wait_for(lambda: cl.rolled_out(1), timeout=15)

    async def revisions():
        revs = sorted((await cl.c.list("controllerrevisions", "default"))["items"], key=lambda r: r["revision"])
        return revs if [r["revision"] for r in revs] == [2, 3] else None
    revs = await wait_for(revisions, timeout=15)     # revision 1 is beyond the limit of 1 old one
    # kubectl rollout undo: the previous revision's data, as a strategic merge patch
    rev2 = revs[0]
    assert rev2["data"]["spec"]["template"]["$patch"] == "replace"
    await cl.c.patch("daemonsets", "agent", rev2["data"], "default", patch_type="strategic")
    ds = await wait_for(lambda: cl.rolled_out(1), timeout=15)
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"

    async def renumbered():
        revs = {r["metadata"]["name"]: r["revision"]
                for r in (await cl.c.list("controllerrevisions", "default"))["items"]}
        return revs if revs.get(rev2["metadata"]["name"]) == 4 and len(revs) == 2 else None
    await wait_for(renumbered, timeout=15)
    pod = (await cl.pods_per_node())["n1"][0]
    assert rev2["metadata"]["name"] == f"agent-{pod['metadata']['labels'][D.REVISION_HASH_LABEL]}"


async def test_adopts_orphan_pod_then_replaces_it(cluster):
    cl = cluster
    await cl.add_node("n1")
    await cl.add_node("n2")
    await cl.c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "stray", "labels": {"app": "agent"}},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}},
                      "default")
    await cl.daemonset()
    await wait_for(lambda: cl.rolled_out(2), timeout=15)
    per = await cl.pods_per_node()
    # adopted (n1 got no second pod), then replaced by the rolling update: it had no revision
    assert sorted(per) == ["n1", "n2"] and per["n1"][0]["metadata"]["name"] != "stray"
    assert await _events(cl, "agent", "SuccessfulDelete") == ["Deleted pod: stray"]
    assert len(_hashes(per)) == 1


async def test_hash_collision_bumps_collision_count(cluster):
    cl = cluster
    await cl.add_node("n1")
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}
    taken = f"agent-{D.revision_hash(admit(body)[0])}"
    # a revision of another template holds the name this template's first revision would get
    await cl.c.create("controllerrevisions", {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                              "metadata": {"name": taken, "labels": {"other": "x"}},
                                              "data": {"spec": {}}, "revision": 1}, "default")
    await cl.c.create("daemonsets", body, "default")
    ds = await wait_for(lambda: cl.rolled_out(1), timeout=15)
    assert ds["status"]["collisionCount"] == 1
    h = (await cl.pods_per_node())["n1"][0]["metadata"]["labels"][D.REVISION_HASH_LABEL]
    assert f"agent-{h}" != taken and h == D.revision_hash(ds)
