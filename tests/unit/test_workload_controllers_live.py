"""The ReplicaSet, Deployment, garbage-collector and namespace controllers against a real
ControlPlane in-process (LocalClient). There are no nodes and no agents: pods stay unscheduled
and the test itself makes them Ready by writing their /status (a fake kubelet), so availability
and rollouts progress."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.workloads import logic as L

from tests.unit.test_controllers_live import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio




def now3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Env:
    def __init__(self, cp):
        self.cp = cp
        self.c = cp.local_client()
        self.ready = True           # the fake kubelet makes new pods Ready
        self.observed_max: dict[str, int] = {}
        self._task = asyncio.create_task(self._kubelet())

    async def _kubelet(self):
        while True:
            await asyncio.sleep(0.05)
            if not self.ready:
                continue
            try:
                pods = (await self.c.list("pods"))["items"]
            except APIError:
                continue
            for p in pods:
                if p["metadata"].get("deletionTimestamp") or L.is_pod_ready(p):
                    continue
                try:
                    await self.make_ready(p)
                except APIError:
                    pass

    async def make_ready(self, p):
        t = now3339()
        await self.c.patch("pods", p["metadata"]["name"], {
            "metadata": {"resourceVersion": p["metadata"]["resourceVersion"]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": t},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": t}]}},
            p["metadata"]["namespace"], subresource="status")

    async def pods(self, ns="default", active=True):
        items = (await self.c.list("pods", ns))["items"]
        return [p for p in items if not active or not p["metadata"].get("deletionTimestamp")]

    async def rss(self, ns="default"):
        return (await self.c.list("replicasets", ns))["items"]

    async def deploy(self, name="web", replicas=3, image="nginx:1", strategy=None, ns="default", **spec):
        d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
             "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": {"app": name}},
                                   "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}
        if strategy:
            d["spec"]["strategy"] = strategy
        return await self.c.create("deployments", d, ns)

    async def scale(self, n, name="web", ns="default"):
        """PATCH .../scale, retried on 409 (the controllers write the Deployment meanwhile)."""
        for _ in range(20):
            try:
                return await self.c.patch("deployments", name, {"spec": {"replicas": n}}, ns, subresource="scale")
            except APIError as e:
                if e.code != 409:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("scale kept conflicting")

    async def get(self, res="deployments", name="web", ns="default"):
        return await self.c.get(res, name, ns)

    async def set_image(self, image, name="web"):
        d = await self.get(name=name)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return await self.c.update("deployments", d)

    async def events(self, name, reason=None, ns="default"):
        items = (await self.c.list("events", ns, field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if reason is None or e.get("reason") == reason]

    async def rolled_out(self, name="web", replicas=None):
        d = await self.get(name=name)
        st = d.get("status") or {}
        n = replicas if replicas is not None else d["spec"]["replicas"]
        prog = L.get_condition(st, "Progressing") or {}
        ok = (st.get("observedGeneration") == d["metadata"]["generation"]
              and st.get("updatedReplicas", 0) == n and st.get("replicas", 0) == n
              and st.get("availableReplicas", 0) == n and prog.get("reason") == "NewReplicaSetAvailable")
        return d if ok else None

    async def close(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest_asyncio.fixture
async def env(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=30):
        cp.add_controller(f)
    await cp.start()
    e = Env(cp)
    try:
        yield e
    finally:
        await e.close()
        await cp.stop()


async def test_deployment_creates_rs_and_pods(env):
    await env.deploy(replicas=3)
    d = await wait_for(env.rolled_out, 15)
    rss = await env.rss()
    assert len(rss) == 1
    rs = rss[0]
    h = rs["metadata"]["labels"][L.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", L.HASH_LABEL: h}
    ref = rs["metadata"]["ownerReferences"][0]
    assert ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
                   "controller": True, "blockOwnerDeletion": True}
    assert rs["metadata"]["annotations"][L.REVISION_ANNOTATION] == "1"
    assert rs["metadata"]["annotations"][L.DESIRED_REPLICAS_ANNOTATION] == "3"
    assert rs["metadata"]["annotations"][L.MAX_REPLICAS_ANNOTATION] == "4"
    assert d["metadata"]["annotations"][L.REVISION_ANNOTATION] == "1"
    pods = await env.pods()
    assert len(pods) == 3
    for p in pods:
        assert p["metadata"]["name"].startswith(f"web-{h}-")
        assert p["metadata"]["labels"] == {"app": "web", L.HASH_LABEL: h}
        assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    st = d["status"]
    assert st["replicas"] == 3 and st["readyReplicas"] == 3 and st["availableReplicas"] == 3
    assert "unavailableReplicas" not in st
    av = L.get_condition(st, "Available")
    assert (av["status"], av["reason"], av["message"]) == ("True", "MinimumReplicasAvailable",
                                                           "Deployment has minimum availability.")
    pr = L.get_condition(st, "Progressing")
    assert pr["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    rs = await env.get("replicasets", f"web-{h}")
    assert rs["status"] == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                            "availableReplicas": 3, "observedGeneration": 1}
    evs = await wait_for(lambda: env.events("web", "ScalingReplicaSet"))
    assert evs[0]["message"] == f"Scaled up replica set web-{h} to 3"
    assert evs[0]["source"]["component"] == "deployment-controller"
    evs = await wait_for(lambda: env.events(f"web-{h}", "SuccessfulCreate"))
    assert evs[0]["message"].startswith(f"Created pod: web-{h}-")


async def test_scale_through_scale_subresource(env):
    await env.deploy(replicas=2)
    await wait_for(env.rolled_out, 15)
    await env.scale(5)
    await wait_for(lambda: env.rolled_out(replicas=5), 15)
    assert len(await env.pods()) == 5
    await env.scale(1)
    await wait_for(lambda: env.rolled_out(replicas=1), 15)

    async def one():
        return len(await env.pods()) == 1
    await wait_for(one)
    rs = (await env.rss())[0]
    evs = await wait_for(lambda: env.events(rs["metadata"]["name"], "SuccessfulDelete"))
    assert evs[0]["message"].startswith("Deleted pod: ")
    msgs = [e["message"] for e in await env.events("web", "ScalingReplicaSet")]
    assert f"Scaled down replica set {rs['metadata']['name']} to 1" in msgs


async def test_rolling_update_respects_surge_and_unavailable(env):
    await env.deploy(replicas=4, strategy={"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}})
    await wait_for(env.rolled_out, 15)
    worst = {"total": 0, "min_ready": 4}
    stop = asyncio.Event()

    async def watch():
        while not stop.is_set():
            pods = await env.pods(active=False)
            worst["total"] = max(worst["total"], len([p for p in pods if not p["metadata"].get("deletionTimestamp")]))
            ready = [p for p in pods if L.is_pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
            worst["min_ready"] = min(worst["min_ready"], len(ready))
            await asyncio.sleep(0.01)
    w = asyncio.create_task(watch())
    await env.set_image("nginx:2")
    d = await wait_for(env.rolled_out, 20)
    stop.set()
    await w
    assert worst["total"] <= 5            # replicas + maxSurge
    assert worst["min_ready"] >= 3        # replicas - maxUnavailable
    rss = await env.rss()
    assert len(rss) == 2
    old = next(r for r in rss if r["metadata"]["annotations"][L.REVISION_ANNOTATION] == "1")
    new = next(r for r in rss if r["metadata"]["annotations"][L.REVISION_ANNOTATION] == "2")
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    assert d["metadata"]["annotations"][L.REVISION_ANNOTATION] == "2"
    pods = await env.pods()
    assert {p["metadata"]["labels"][L.HASH_LABEL] for p in pods} == {new["metadata"]["labels"][L.HASH_LABEL]}


async def test_recreate_scales_old_down_before_new(env):
    await env.deploy(replicas=3, strategy={"type": "Recreate"})
    await wait_for(env.rolled_out, 15)
    mixed = []
    stop = asyncio.Event()

    async def watch():
        while not stop.is_set():
            hashes = {p["metadata"]["labels"].get(L.HASH_LABEL) for p in await env.pods(active=False)}
            if len(hashes) > 1:
                mixed.append(hashes)
            await asyncio.sleep(0.01)
    w = asyncio.create_task(watch())
    await env.set_image("nginx:2")
    await wait_for(env.rolled_out, 20)
    stop.set()
    await w
    assert not mixed
    rss = await env.rss()
    assert sorted(r["spec"]["replicas"] for r in rss) == [0, 3]


async def test_revision_history_limit_and_rollback(env):
    await env.deploy(replicas=1, revisionHistoryLimit=1)
    await wait_for(env.rolled_out, 15)
    first = (await env.rss())[0]
    await env.set_image("nginx:2")
    await wait_for(env.rolled_out, 15)
    # rollback: copy the old RS's template into the Deployment (what kubectl does)
    d = await env.get()
    tmpl = dict(first["spec"]["template"])
    tmpl["metadata"] = {**tmpl["metadata"], "labels": {k: v for k, v in tmpl["metadata"]["labels"].items()
                                                       if k != L.HASH_LABEL}}
    d["spec"]["template"] = tmpl
    await env.c.update("deployments", d)
    d = await wait_for(env.rolled_out, 15)
    rs = await env.get("replicasets", first["metadata"]["name"])
    assert rs["metadata"]["uid"] == first["metadata"]["uid"]     # reused
    assert rs["metadata"]["annotations"][L.REVISION_ANNOTATION] == "3"
    assert rs["metadata"]["annotations"][L.REVISION_HISTORY_ANNOTATION] == "1"
    assert d["metadata"]["annotations"][L.REVISION_ANNOTATION] == "3"
    await env.set_image("nginx:3")
    await wait_for(env.rolled_out, 15)

    async def pruned():
        rss = await env.rss()
        return rss if len(rss) == 2 else None
    rss = await wait_for(pruned, 10)
    assert sorted(r["metadata"]["annotations"][L.REVISION_ANNOTATION] for r in rss) == ["3", "4"]


async def test_progress_deadline_exceeded(env):
    env.ready = False
    await env.deploy(replicas=2, progressDeadlineSeconds=1)

    async def timed_out():
        d = await env.get()
        c = L.get_condition(d.get("status"), "Progressing")
        return c if c and c["reason"] == "ProgressDeadlineExceeded" else None
    c = await wait_for(timed_out, 15)
    rs = (await env.rss())[0]
    assert c["status"] == "False"
    assert c["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    d = await env.get()
    assert d["status"]["unavailableReplicas"] == 2
    av = L.get_condition(d["status"], "Available")
    assert (av["status"], av["reason"]) == ("False", "MinimumReplicasUnavailable")
    env.ready = True
    await wait_for(env.rolled_out, 15)


async def test_delete_deployment_background_gc(env):
    await env.deploy(replicas=2)
    await wait_for(env.rolled_out, 15)
    await env.c.delete("deployments", "web", "default")

    async def gone():
        return not await env.rss() and not await env.pods(active=False)
    await wait_for(gone, 15)


async def test_delete_deployment_orphan(env):
    await env.deploy(replicas=2)
    await wait_for(env.rolled_out, 15)
    await env.c.delete("deployments", "web", "default", propagation_policy="Orphan")

    async def orphaned():
        try:
            await env.get()
            return False
        except APIError as e:
            if e.code != 404:
                raise
        rss = await env.rss()
        return rss if rss and not rss[0]["metadata"].get("ownerReferences") else None
    rss = await wait_for(orphaned, 15)
    await asyncio.sleep(0.5)
    assert len(await env.pods()) == 2
    assert len(await env.rss()) == 1


async def test_delete_deployment_foreground(env):
    await env.deploy(replicas=2)
    await wait_for(env.rolled_out, 15)
    await env.c.delete("deployments", "web", "default", propagation_policy="Foreground")

    async def gone():
        try:
            await env.get()
            return False
        except APIError as e:
            if e.code != 404:
                raise
        return not await env.rss() and not await env.pods(active=False)
    await wait_for(gone, 15)


async def test_namespace_deletion(env):
    await env.c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await env.deploy(replicas=2, ns="team")

    async def pods2():
        return len(await env.pods("team")) == 2
    await wait_for(pods2, 15)
    await env.c.delete("namespaces", "team")

    async def gone():
        try:
            await env.c.get("namespaces", "team")
            return False
        except APIError as e:
            return e.code == 404
    await wait_for(gone, 20)


async def test_replicaset_adopts_orphan_and_replaces_deleted_pod(env):
    await env.c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "stray", "labels": {"app": "db"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")
    rs = await env.c.create("replicasets", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, "default")

    async def two():
        pods = await env.pods()
        return pods if len(pods) == 2 and all(p["metadata"].get("ownerReferences") for p in pods) else None
    pods = await wait_for(two, 15)
    stray = await env.get("pods", "stray")
    assert stray["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    await asyncio.sleep(0.3)
    assert len(await env.pods()) == 2       # the orphan counted: only one created
    other = next(p for p in pods if p["metadata"]["name"] != "stray")
    await env.c.delete("pods", other["metadata"]["name"], "default")

    async def replaced():
        pods = await env.pods()
        names = {p["metadata"]["name"] for p in pods}
        return len(pods) == 2 and other["metadata"]["name"] not in names
    await wait_for(replaced, 15)

    async def status_ok():
        r = await env.get("replicasets", "db")
        return r if (r.get("status") or {}).get("availableReplicas") == 2 else None
    r = await wait_for(status_ok, 10)
    assert r["status"]["observedGeneration"] == 1
    # a pod relabelled out of the selector is released and replaced
    await env.c.patch("pods", "stray", {"metadata": {"labels": {"app": "other"}}}, "default")

    async def released():
        p = await env.get("pods", "stray")
        return not p["metadata"].get("ownerReferences") and len(
            [q for q in await env.pods() if q["metadata"]["labels"].get("app") == "db"]) == 2
    await wait_for(released, 10)


async def test_scaling_mid_rollout_is_proportional(env):
    await env.deploy(replicas=10, strategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
    await wait_for(env.rolled_out, 15)
    env.ready = False               # the new pods never become ready: the rollout stalls
    await env.set_image("nginx:2")

    async def stalled():
        rss = await env.rss()
        return rss if len(rss) == 2 and sum(r["spec"]["replicas"] for r in rss) == 13 else None
    rss = await wait_for(stalled, 15)
    before = {r["metadata"]["name"]: r["spec"]["replicas"] for r in rss}
    assert sorted(before.values()) == [5, 8]        # new 5 (3 surge + 2 unavailable), old 8
    await env.scale(20)

    async def scaled():
        rss = await env.rss()
        return rss if sum(r["spec"]["replicas"] for r in rss) == 23 else None      # 20 + maxSurge
    rss = await wait_for(scaled, 15)
    after = {r["metadata"]["name"]: r["spec"]["replicas"] for r in rss}
    assert sorted(after.values()) == [9, 14]        # 5*23/13 and 8*23/13, rounded
    assert all(r["metadata"]["annotations"][L.DESIRED_REPLICAS_ANNOTATION] == "20" for r in rss)
    env.ready = True
    await wait_for(lambda: env.rolled_out(replicas=20), 30)


async def test_min_ready_seconds_delays_availability(env):
    await env.deploy(replicas=1, minReadySeconds=3)

    async def ready_not_available():
        d = await env.get()
        st = d.get("status") or {}
        return d if st.get("readyReplicas") == 1 and not st.get("availableReplicas") else None
    await wait_for(ready_not_available, 10)
    rs = (await env.rss())[0]
    assert rs["spec"]["minReadySeconds"] == 3
    await wait_for(env.rolled_out, 10)


async def test_gc_deletes_dangling_dependent_and_strips_dangling_refs(env):
    def pod(name, refs):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"x": name}, "ownerReferences": refs},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost",
             "uid": "00000000-0000-0000-0000-000000000001"}
    await env.deploy(replicas=0)
    d = await env.get()
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"]}
    await env.c.create("pods", pod("dangling", [ghost]), "default")
    await env.c.create("pods", pod("half", [ghost, live]), "default")

    async def done():
        try:
            await env.get("pods", "dangling")
            return False
        except APIError as e:
            if e.code != 404:
                raise
        p = await env.get("pods", "half")
        return p if [r["uid"] for r in p["metadata"]["ownerReferences"]] == [live["uid"]] else None
    await wait_for(done, 10)


async def test_workload_controllers_share_one_pod_cache(tmp_path):
    from skiff.controller.workloads.shared import SharedInformers
    cp = ControlPlane(str(tmp_path / "cp2"), listen="127.0.0.1:0")
    await cp.start()
    try:
        shared = SharedInformers()
        a = await shared.acquire(cp.local_client(), "pods")
        b = await shared.acquire(cp.local_client(), "pods")
        assert a is b and a.running
        await shared.release(cp.local_client(), "pods")
        assert a.running
        await shared.release(cp.local_client(), "pods")
        assert not a.running
    finally:
        await cp.stop()
