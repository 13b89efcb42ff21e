"""One pods cache for every in-process controller, and nobody writes into it.

The scheduler, the node lifecycle controller and the workload controllers (replicaset, deployment,
garbage collector) of ``standard_controllers`` share ONE pods informer and ONE nodes informer (at
10 000 pods each pods cache is ~100 MB). The objects in a shared cache are read-only: the test
snapshots every object when the informer hands it to its handlers and checks, when it is replaced
and at the end, that no controller changed it, over a run that exercises them all (scheduling,
a Deployment made available, a node lost: pods marked not ready and evicted, replacements, scale
down, cascading delete).

Also: the watch cache answers consistent reads from the revision SQLite committed, in memory,
without a query per read."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from skiff.api.informer import Informer
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.storage import SqliteStore
from skiff.controller.storage.base import WatchCache
from skiff.controller.workloads import logic as L

from tests.unit.test_controllers_live import Cluster, wait_for

pytestmark = pytest.mark.asyncio

GRACE = 1.0


def _snap(obj) -> str:
    return json.dumps(obj, sort_keys=True)


class Spy:
    """Counts the informers that list each resource and snapshots every object dispatched."""

    def __init__(self, monkeypatch):
        self.started: dict[str, set[tuple[int, str]]] = {}    # resource -> {(id, name)}
        self.snaps: dict[int, tuple[dict, str, str]] = {}    # id -> (obj, snapshot, informer name)
        self.mutated: list[str] = []
        spy = self
        orig_relist, orig_dispatch = Informer._relist, Informer._dispatch

        async def _relist(inf):
            spy.started.setdefault(inf.resource, set()).add((id(inf), inf.name))
            return await orig_relist(inf)

        def _dispatch(inf, typ, obj, old):
            if old is not None:
                spy.check(old)
            if typ != "DELETED":
                spy.snaps[id(obj)] = (obj, _snap(obj), inf.name)
            return orig_dispatch(inf, typ, obj, old)

        monkeypatch.setattr(Informer, "_relist", _relist)
        monkeypatch.setattr(Informer, "_dispatch", _dispatch)

    def check(self, obj) -> None:
        cur = self.snaps.get(id(obj))
        if cur is not None and cur[0] is obj and _snap(obj) != cur[1]:
            md = obj.get("metadata") or {}
            self.mutated.append(f"{cur[2]}: {md.get('namespace')}/{md.get('name')}\n"
                                f"  was {cur[1]}\n  now {_snap(obj)}")

    def check_all(self) -> None:
        for obj, _, _ in list(self.snaps.values()):
            self.check(obj)


async def test_controllers_share_one_read_only_pods_cache(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", pod_eviction_timeout=1, tls=False)
    for f in standard_controllers(lease_grace=GRACE, scheduler_retry=1.0):
        cp.add_controller(f)
    await cp.start()
    cl = Cluster(cp)
    c = cl.c
    try:
        await cl.add_node("n1")
        await cl.add_node("n2")
        await c.create("deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                         {"name": "c", "image": "busybox",
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}, "default")

        async def live_pods():
            return [p for p in (await c.list("pods", "default"))["items"]
                    if not p["metadata"].get("deletionTimestamp")]

        async def bound_and_ready(want_nodes):
            pods = await live_pods()
            if len(pods) != 4 or not all(p["spec"].get("nodeName") in want_nodes for p in pods):
                return None
            for p in pods:      # a fake kubelet: Running and Ready
                if not L.is_pod_ready(p):
                    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    await c.patch("pods", p["metadata"]["name"], {"status": {
                        "phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": t},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": t}]}},
                        "default", subresource="status")
            return pods

        pods = await wait_for(lambda: bound_and_ready({"n1", "n2"}), timeout=15)
        assert {p["spec"]["nodeName"] for p in pods} == {"n1", "n2"}

        async def available(n):
            d = await c.get("deployments", "web", "default")
            return (d.get("status") or {}).get("availableReplicas") == n
        await wait_for(lambda: available(4), timeout=15)

        # n1 goes silent: its pods are marked not ready, then evicted and replaced on n2
        cl.alive.discard("n1")
        await wait_for(lambda: bound_and_ready({"n2"}), timeout=20)
        await wait_for(lambda: available(4), timeout=15)

        await c.patch("deployments", "web", {"spec": {"replicas": 2}}, "default")

        async def scaled():
            return len(await live_pods()) == 2
        await wait_for(scaled, timeout=15)
        await c.delete("deployments", "web", "default")

        async def gone():
            return not await live_pods() and not (await c.list("replicasets", "default"))["items"]
        await wait_for(gone, timeout=15)
        await asyncio.sleep(0.3)
    finally:
        await cl.close()
        await cp.stop()

    # one pods cache and one nodes cache for the seven controllers (node IPAM's included)
    assert [n for _, n in spy.started["pods"]] == ["shared-pods"], spy.started
    assert [n for _, n in spy.started["nodes"]] == ["shared-nodes"], spy.started
    spy.check_all()
    assert not spy.mutated, "a controller modified a shared cached object:\n" + "\n".join(spy.mutated[:3])


async def test_watch_cache_reads_without_a_revision_query(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    cache = WatchCache(store)
    await cache.start()
    calls = 0
    orig = store.current_revision

    async def counting():
        nonlocal calls
        calls += 1
        return await orig()
    store.current_revision = counting
    try:
        for i in range(20):
            await cache.create(f"/pods/default/p{i}", {"metadata": {"name": f"p{i}"}})
        for i in range(20):
            assert (await cache.get(f"/pods/default/p{i}"))["metadata"]["name"] == f"p{i}"
        items, _, _ = await cache.list_keyed("/pods/")
        assert len(items) == 20
        assert calls == 0       # the committed revision comes from memory
        # still consistent: a write acknowledged by the backend alone is seen by the next read
        for i in range(5):
            out = await store.create(f"/pods/default/direct{i}", {"metadata": {"name": f"direct{i}"}})
            got = await cache.get(f"/pods/default/direct{i}")
            assert got["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
        assert await cache.current_revision() == store.committed_revision() == await orig()
    finally:
        await cache.close()
        await store.close()


class _FakeClient:
    """list + watch of pods that carry managedFields (as written over HTTP)."""

    def __init__(self):
        mf = [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:spec": {"f:containers": {}}}}]
        self.listed = {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "5",
                                    "managedFields": mf}, "spec": {}}
        self.event = {"metadata": {"name": "b", "namespace": "default", "resourceVersion": "6",
                                   "managedFields": mf}, "spec": {}}
        self.sent = asyncio.Event()

    async def list(self, resource, namespace=None, **kw):
        return {"metadata": {"resourceVersion": "5"}, "items": [self.listed]}

    async def watch(self, resource, namespace=None, **kw):
        yield "ADDED", self.event
        self.sent.set()
        await asyncio.Event().wait()


async def test_shared_informers_strip_managed_fields():
    from skiff.controller.workloads.shared import SharedInformers
    shared, client = SharedInformers(), _FakeClient()
    inf = await shared.acquire(client, "pods")
    try:
        await asyncio.wait_for(client.sent.wait(), 5)
        await asyncio.sleep(0)
        assert sorted(inf.cache) == ["default/a", "default/b"]
        for obj in inf.cache.values():
            assert "managedFields" not in obj["metadata"]
            assert obj["metadata"]["resourceVersion"] in ("5", "6")
        # what the client returned is left as it was (a copy is cached)
        assert "managedFields" in client.listed["metadata"] and "managedFields" in client.event["metadata"]
    finally:
        await shared.release(client, "pods")
    assert not inf.running


async def test_owner_keys_track_uids_namespaces_and_selecting_owners():
    from skiff.controller.workloads.shared import OwnerKeys

    class Owners(dict):
        get = dict.get

    def owner(name, uid, sel):
        return {"metadata": {"name": name, "namespace": "ns1", "uid": uid}, "spec": {"selector": sel}}
    a, b, c = owner("a", "u1", {"matchLabels": {"app": "web"}}), owner("b", "u2", {}), owner("c", "u3", None)
    keys, inf = OwnerKeys(), Owners()
    for o in (a, b, c):
        inf[keys.handle("ADDED", o)] = o
    assert keys.for_uid("u1") == "ns1/a" and keys.for_uid(None) is None
    pod = {"metadata": {"namespace": "ns1", "labels": {"app": "web"}}}
    assert keys.selecting(pod, inf) == ["ns1/a"]          # an empty or nil selector adopts nothing
    assert keys.selecting({"metadata": {"namespace": "ns2", "labels": {"app": "web"}}}, inf) == []
    keys.handle("DELETED", a)
    assert keys.for_uid("u1") is None and keys.selecting(pod, inf) == []
