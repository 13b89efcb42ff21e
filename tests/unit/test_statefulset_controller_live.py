"""The StatefulSet controller against a real ControlPlane in-process (LocalClient, a real SQLite
store), with the scheduler, the garbage collector and the other standard controllers. Nodes are
Node objects and Leases written by the test; a fake kubelet makes the pods bound to them Running
and Ready, except those the test holds back (``hold``: Pending, not ready) or fails (``fail``)."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.resources import RESOURCES
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.workloads import logic as L

from tests.unit.test_controllers_live import Cluster, wait_for

pytestmark = pytest.mark.asyncio


class STSCluster(Cluster):
    def __init__(self, cp):
        super().__init__(cp)
        self.hold: set[str] = set()
        self.fail: set[str] = set()
        self.created: list[tuple[str, str]] = []      # (pod, uid) in the order the kubelet saw them
        self._kubelet = asyncio.create_task(self._run_kubelet())

    async def _run_kubelet(self):
        while True:
            await asyncio.sleep(0.03)
            try:
                pods = (await self.c.list("pods"))["items"]
            except APIError:
                continue
            for p in pods:
                md, st = p["metadata"], p.get("status") or {}
                if (md["name"], md["uid"]) not in self.created:
                    self.created.append((md["name"], md["uid"]))
                if p["spec"].get("nodeName") not in self.alive:
                    continue
                if md.get("deletionTimestamp"):
                    try:
                        await self.c.delete("pods", md["name"], md["namespace"], grace_period_seconds=0)
                    except APIError:
                        pass
                    continue
                if md["name"] in self.hold:
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

    async def statefulset(self, name="web", replicas=3, image="busybox:1", **spec):
        return await self.c.create("statefulsets", {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}, "default")

    async def sts(self, name="web"):
        return await self.c.get("statefulsets", name, "default")

    async def live_pods(self, app="web"):
        items = (await self.c.list("pods", "default"))["items"]
        return {p["metadata"]["name"]: p for p in items
                if not p["metadata"].get("deletionTimestamp") and p["metadata"]["labels"].get("app") == app}

    async def ready_names(self, app="web"):
        return sorted(n for n, p in (await self.live_pods(app)).items() if L.is_pod_ready(p))

    async def update(self, mutate, name="web"):
        for _ in range(20):
            obj = await self.sts(name)
            mutate(obj)
            try:
                return await self.c.update("statefulsets", obj)
            except APIError as e:
                if e.code != 409:
                    raise
            await asyncio.sleep(0.05)
        raise AssertionError("update kept conflicting")

    async def events(self, name="web"):
        items = (await self.c.list("events", "default"))["items"]
        return [(e["reason"], e["message"]) for e in items
                if e["involvedObject"].get("kind") == "StatefulSet" and e["involvedObject"].get("name") == name]


@pytest_asyncio.fixture
async def cluster(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=30, scheduler_retry=0.5):
        cp.add_controller(f)
    await cp.start()
    cl = STSCluster(cp)
    await cl.add_node("n1")
    await cl.add_node("n2")
    try:
        yield cl
    finally:
        await cl.close()
        await cp.stop()


async def test_ordered_ready_creates_in_order_with_identity_and_status(cluster):
    cluster.hold.add("web-1")
    sts = await cluster.statefulset()
    await wait_for(lambda: _names(cluster, ["web-0", "web-1"]), 10)
    await asyncio.sleep(0.6)        # web-1 is not ready: web-2 must wait
    assert sorted(await cluster.live_pods()) == ["web-0", "web-1"]
    st = (await cluster.sts())["status"]
    assert st["replicas"] == 2 and st["readyReplicas"] == 1
    cluster.hold.discard("web-1")
    await wait_for(lambda: _ready(cluster, 3), 10)
    order = [n for n, _ in cluster.created if n.startswith("web-")]
    assert order == ["web-0", "web-1", "web-2"]

    pods = await cluster.live_pods()
    revs = (await cluster.c.list("controllerrevisions", "default"))["items"]
    assert len(revs) == 1 and revs[0]["revision"] == 1
    rev = revs[0]["metadata"]["name"]
    assert rev.startswith("web-")
    assert revs[0]["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    for i in range(3):
        p = pods[f"web-{i}"]
        assert p["metadata"]["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": f"web-{i}",
                                           "apps.kubernetes.io/pod-index": str(i),
                                           "controller-revision-hash": rev}
        assert p["spec"]["hostname"] == f"web-{i}" and p["spec"]["subdomain"] == "nginx"
        ref = p["metadata"]["ownerReferences"]
        assert ref == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts["metadata"]["uid"],
                        "controller": True, "blockOwnerDeletion": True}]

    async def settled():
        s = (await cluster.sts()).get("status") or {}
        return s if s.get("availableReplicas") == 3 and s.get("currentReplicas") == 3 else None
    st = await wait_for(settled, 10)
    assert st == {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
                  "updatedReplicas": 3, "availableReplicas": 3, "currentRevision": rev, "updateRevision": rev,
                  "collisionCount": 0}
    ev = await cluster.events()
    for i in range(3):
        assert ("SuccessfulCreate", f"create Pod web-{i} in StatefulSet web successful") in ev


async def _names(cluster, want):
    return sorted(await cluster.live_pods()) == want


async def _ready(cluster, n, app="web"):
    names = await cluster.ready_names(app)
    return names if len(names) == n else None


async def test_scale_down_highest_first_one_at_a_time_and_recreate(cluster):
    await cluster.statefulset(replicas=4)
    await wait_for(lambda: _ready(cluster, 4), 15)
    # a failed pod is deleted and made again under the same name
    old_uid = (await cluster.live_pods())["web-1"]["metadata"]["uid"]
    cluster.fail.add("web-1")

    async def failed_then_back():
        p = (await cluster.live_pods()).get("web-1")
        return p is not None and p["metadata"]["uid"] != old_uid
    await wait_for(failed_then_back, 10)
    cluster.fail.discard("web-1")
    await wait_for(lambda: _ready(cluster, 4), 10)
    assert any(r == "RecreatingFailedPod" and m == "StatefulSet default/web is recreating failed Pod web-1"
               for r, m in await cluster.events())
    # scale down through /scale: web-3 then web-2 then web-1, each once the one above is gone
    deleted: list[str] = []
    seen = set(await cluster.live_pods())

    async def watch_deletions():
        while True:
            now = set(await cluster.live_pods())
            deleted.extend(sorted(seen - now, reverse=True))
            seen.clear()
            seen.update(now)
            await asyncio.sleep(0.01)
    t = asyncio.create_task(watch_deletions())
    try:
        scale = await cluster.c.get("statefulsets", "web", "default", subresource="scale")
        assert scale["spec"]["replicas"] == 4 and scale["status"]["selector"] == "app=web"
        scale["spec"]["replicas"] = 1
        scale["metadata"].pop("resourceVersion", None)     # unconditional: the controller writes status meanwhile
        await cluster.c.update("statefulsets", scale, subresource="scale")
        await wait_for(lambda: _names(cluster, ["web-0"]), 10)
    finally:
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
    # the last deletion may have been seen by the wait above before the watcher's next look
    deleted.extend(sorted(seen - set(await cluster.live_pods()), reverse=True))
    assert deleted == ["web-3", "web-2", "web-1"]
    ev = await cluster.events()
    assert ("SuccessfulDelete", "delete Pod web-3 in StatefulSet web successful") in ev


async def test_parallel_creates_all_at_once_and_ordinals_start(cluster):
    cluster.hold.update({"db-5", "db-6", "db-7"})
    await cluster.statefulset("db", replicas=3, podManagementPolicy="Parallel", ordinals={"start": 5})
    # none is ready, yet all three are made
    await wait_for(lambda: _names_app(cluster, "db", ["db-5", "db-6", "db-7"]), 10)
    cluster.hold.clear()
    await wait_for(lambda: _ready(cluster, 3, "db"), 10)
    # scaling down in parallel removes both at once, the highest ordinals
    await cluster.update(lambda o: o["spec"].update(replicas=1), "db")
    await wait_for(lambda: _names_app(cluster, "db", ["db-5"]), 10)


async def _names_app(cluster, app, want):
    return sorted(await cluster.live_pods(app)) == want


async def test_rolling_update_highest_first_with_partition_and_undo_history(cluster):
    await cluster.statefulset(replicas=3)
    await wait_for(lambda: _ready(cluster, 3), 15)
    first = (await cluster.sts())["status"]["currentRevision"]
    # partition 2: only web-2 is updated
    await cluster.update(lambda o: (o["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"),
                                    o["spec"]["updateStrategy"]["rollingUpdate"].update(partition=2)))

    async def partitioned():
        st = (await cluster.sts()).get("status") or {}
        return st if st.get("updatedReplicas") == 1 and st.get("readyReplicas") == 3 else None
    st = await wait_for(partitioned, 15)
    second = st["updateRevision"]
    assert second != first and st["currentRevision"] == first and st["currentReplicas"] == 2
    pods = await cluster.live_pods()
    assert {n: p["spec"]["containers"][0]["image"] for n, p in pods.items()} == \
        {"web-0": "busybox:1", "web-1": "busybox:1", "web-2": "busybox:2"}
    # partition 0: web-1 then web-0
    replaced: list[str] = []
    uids = {n: p["metadata"]["uid"] for n, p in pods.items()}

    async def watch():
        while True:
            for n, p in (await cluster.live_pods()).items():
                if p["metadata"]["uid"] != uids.get(n) and n not in replaced:
                    replaced.append(n)
            await asyncio.sleep(0.01)
    t = asyncio.create_task(watch())
    try:
        await cluster.update(lambda o: o["spec"]["updateStrategy"]["rollingUpdate"].update(partition=0))

        async def done():
            st = (await cluster.sts()).get("status") or {}
            return st if st.get("currentRevision") == second and st.get("updatedReplicas") == 3 \
                and st.get("readyReplicas") == 3 else None
        st = await wait_for(done, 15)
    finally:
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
    assert replaced == ["web-1", "web-0"]
    assert st["currentReplicas"] == 3
    revs = sorted((await cluster.c.list("controllerrevisions", "default"))["items"], key=lambda r: r["revision"])
    assert [(r["metadata"]["name"], r["revision"]) for r in revs] == [(first, 1), (second, 2)]
    # the old template back (rollout undo): the first revision is taken back as revision 3
    await cluster.update(lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="busybox:1"))

    async def undone():
        st = (await cluster.sts()).get("status") or {}
        return st if st.get("updateRevision") == first and st.get("currentRevision") == first \
            and st.get("readyReplicas") == 3 else None
    await wait_for(undone, 15)
    revs = {r["metadata"]["name"]: r["revision"] for r in (await cluster.c.list("controllerrevisions",
                                                                                 "default"))["items"]}
    assert revs == {first: 3, second: 2}
    # revisionHistoryLimit 0: the old revision no pod runs goes
    await cluster.update(lambda o: o["spec"].update(revisionHistoryLimit=0))

    async def pruned():
        names = [r["metadata"]["name"] for r in (await cluster.c.list("controllerrevisions", "default"))["items"]]
        return names == [first]
    await wait_for(pruned, 10)


async def test_on_delete_updates_only_deleted_pods(cluster):
    await cluster.statefulset(replicas=2, updateStrategy={"type": "OnDelete"})
    await wait_for(lambda: _ready(cluster, 2), 15)
    await cluster.update(lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"))

    async def observed():
        st = (await cluster.sts()).get("status") or {}
        return st if st.get("observedGeneration") == 2 and st.get("updateRevision") != st.get("currentRevision") \
            else None
    st = await wait_for(observed, 10)
    await asyncio.sleep(0.5)
    pods = await cluster.live_pods()
    assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"busybox:1"}
    await cluster.c.delete("pods", "web-1", "default")

    async def web1_new():
        p = (await cluster.live_pods()).get("web-1")
        return p is not None and p["spec"]["containers"][0]["image"] == "busybox:2" and L.is_pod_ready(p)
    await wait_for(web1_new, 10)
    assert (await cluster.live_pods())["web-0"]["spec"]["containers"][0]["image"] == "busybox:1"
    st = await wait_for(lambda: _status_when(cluster, updatedReplicas=1, currentReplicas=1), 10)
    assert st["updateRevision"] != st["currentRevision"]


async def _status_when(cluster, **want):
    st = (await cluster.sts()).get("status") or {}
    return st if all(st.get(k) == v for k, v in want.items()) else None


async def test_delete_cascades_and_orphan_keeps_pods(cluster):
    await cluster.statefulset(replicas=2)
    await wait_for(lambda: _ready(cluster, 2), 15)
    await cluster.c.delete("statefulsets", "web", "default", propagation_policy="Orphan")

    async def orphaned():
        pods = await cluster.live_pods()
        return len(pods) == 2 and all(not p["metadata"].get("ownerReferences") for p in pods.values())
    await wait_for(orphaned, 10)
    # a new set with the same selector adopts them; deleting it (background) takes them along
    await cluster.statefulset(replicas=2)

    async def adopted():
        pods = await cluster.live_pods()
        return len(pods) == 2 and all(p["metadata"].get("ownerReferences") for p in pods.values())
    await wait_for(adopted, 10)
    await cluster.c.delete("statefulsets", "web", "default")
    await wait_for(lambda: _names(cluster, []), 15)


@pytest.mark.skipif("persistentvolumeclaims" not in RESOURCES, reason="no PersistentVolumeClaim resource")
async def test_claims_made_per_ordinal_and_retention_policy(cluster):
    tmpl = [{"metadata": {"name": "www", "labels": {"tier": "data"}},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}]
    sts = await cluster.statefulset(replicas=2, podManagementPolicy="Parallel", volumeClaimTemplates=tmpl,
                                    persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain",
                                                                          "whenScaled": "Delete"})

    async def claims():
        items = (await cluster.c.list("persistentvolumeclaims", "default"))["items"]
        return {c["metadata"]["name"]: c for c in items if not c["metadata"].get("deletionTimestamp")}

    async def pods_made():
        pods = {}
        for n in ("web-0", "web-1"):
            try:
                pods[n] = await cluster.c.get("pods", n, "default")
            except APIError:
                return None
        return pods
    pods = await wait_for(pods_made, 10)
    cs = await wait_for(lambda: _claims_named(claims, ["www-web-0", "www-web-1"]), 10)
    c0 = cs["www-web-0"]
    assert c0["metadata"]["labels"] == {"tier": "data", "app": "web"}
    assert c0["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not c0["metadata"].get("ownerReferences")        # whenDeleted Retain, in range
    vols = pods["web-0"]["spec"]["volumes"]
    assert vols[0] == {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}
    ev = await cluster.events()
    assert ("SuccessfulCreate", "create Claim www-web-0 Pod web-0 in StatefulSet web success") in ev
    # whenDeleted Delete: the set owns the claims
    await cluster.update(lambda o: o["spec"]["persistentVolumeClaimRetentionPolicy"].update(whenDeleted="Delete"))

    async def owned_by_set():
        cs = await claims()
        refs = [c["metadata"].get("ownerReferences") or [] for c in cs.values()]
        return len(refs) == 2 and all([r["uid"] for r in rs] == [sts["metadata"]["uid"]] for rs in refs)
    await wait_for(owned_by_set, 10)
    # whenScaled Delete: scaled down, web-1's claim goes with it
    await cluster.update(lambda o: o["spec"].update(replicas=1))
    await wait_for(lambda: _claims_named(claims, ["www-web-0"]), 15)
    assert "www-web-0" in await claims()


async def _claims_named(claims, want):
    cs = await claims()
    return cs if sorted(cs) == want else None


async def test_invalid_updates_are_refused(cluster):
    await cluster.statefulset(replicas=1)
    obj = await cluster.sts()
    obj["spec"]["serviceName"] = "other"
    with pytest.raises(APIError) as ei:
        await cluster.c.update("statefulsets", obj)
    assert ei.value.code == 422
    assert "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', " \
           "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden" \
           in ei.value.message
