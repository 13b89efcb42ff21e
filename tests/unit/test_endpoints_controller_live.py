"""The endpoints and endpointslice controllers against a real ControlPlane in-process
(LocalClient), with the garbage collector. No nodes, no agents: the test is the kubelet, writing
the pods' /status (podIP, the Ready condition)."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.endpoints import EndpointsController, EndpointSliceController
from skiff.controller.gc import GC_RESOURCES, GarbageCollector
from skiff.controller.local_client import LocalClient
from skiff.controller.workloads import endpointslogic as E
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "default"
MANAGED = f"{E.SERVICE_NAME_LABEL}={{}},{E.MANAGED_BY_LABEL}={E.CONTROLLER_NAME}"


class Env:
    def __init__(self, cp):
        self.cp = cp
        self.c = cp.local_client()

    async def service(self, name="web", selector=None, ports=None, labels=None, **spec):
        s = {"ports": ports or [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
        if selector is not False:
            s["selector"] = selector or {"app": name}
        md = {"name": name}
        if labels:
            md["labels"] = labels
        return await self.c.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": md,
                                                "spec": s}, NS)

    async def pod(self, name, labels=None, port=8080, node="n1"):
        c = {"name": "c", "image": "busybox"}
        if port:
            c["ports"] = [{"name": "http", "containerPort": port}]
        spec = {"containers": [c], "terminationGracePeriodSeconds": 30}
        if node:
            spec["nodeName"] = node
        return await self.c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                            "metadata": {"name": name, "labels": labels or {"app": "web"}},
                                            "spec": spec}, NS)

    async def kubelet(self, name, ip, ready=True):
        """The pod's status as its kubelet writes it: Running, an IP, Ready or not."""
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        st = "True" if ready else "False"
        await self.c.patch("pods", name, {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": st, "lastTransitionTime": t},
                           {"type": "ContainersReady", "status": st, "lastTransitionTime": t}]}},
            NS, subresource="status")

    async def endpoints(self, name="web"):
        try:
            return await self.c.get("endpoints", name, NS)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def slices(self, name="web"):
        items = (await self.c.list("endpointslices", NS, label_selector=MANAGED.format(name)))["items"]
        return sorted(items, key=lambda s: s["metadata"]["name"])

    async def addresses(self, name="web"):
        """(ready, not ready) pod names of the Endpoints."""
        ep = await self.endpoints(name)
        subsets = (ep or {}).get("subsets") or ()
        def who(a):
            return (a.get("targetRef") or {}).get("name") or a["ip"]
        return (sorted(who(a) for s in subsets for a in s.get("addresses") or ()),
                sorted(who(a) for s in subsets for a in s.get("notReadyAddresses") or ()))

    async def slice_view(self, name="web"):
        """{pod name: (addresses, ready, serving, terminating)} over the Service's slices."""
        out = {}
        for s in await self.slices(name):
            for e in s.get("endpoints") or ():
                c = e["conditions"]
                out[e["targetRef"]["name"]] = (tuple(e["addresses"]), c["ready"], c["serving"], c["terminating"])
        return out

    def until(self, fn, want, timeout=10.0):
        async def check():
            got = await fn()
            return got == want or None
        return _until(check, fn, want, timeout)


async def _until(check, fn, want, timeout):
    try:
        return await wait_for(check, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"wanted {want!r}, last {await fn()!r}") from None


def _controllers(shared):
    async def endpoints(client):
        await EndpointsController(client, shared=shared).run()

    async def endpointslice(client):
        await EndpointSliceController(client, shared=shared, max_endpoints_per_slice=5).run()

    async def gc(client):
        await GarbageCollector(client, shared=shared, resources=GC_RESOURCES + ("services", "endpointslices")).run()
    return endpoints, endpointslice, gc


@pytest_asyncio.fixture
async def env(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    for f in _controllers(SharedInformers()):
        cp.add_controller(f)
    await cp.start()
    try:
        yield Env(cp)
    finally:
        await cp.stop()


async def test_endpoints_and_slices_follow_the_pods(env):
    svc = await env.service(labels={"team": "a"})
    await env.pod("a")
    await env.pod("b", node="n2")
    await env.pod("other", labels={"app": "other"})
    # no pod has an IP yet: an Endpoints without subsets, one empty placeholder slice
    ep = await wait_for(env.endpoints)
    # the Service's labels (and the headless label while it has no ClusterIP)
    headless = {E.HEADLESS_LABEL: ""} if svc["spec"].get("clusterIP") in (None, "", "None") else {}
    assert not ep.get("subsets") and ep["metadata"]["labels"] == {"team": "a", **headless}
    (s,) = await wait_for(env.slices)
    assert s["endpoints"] in (None, []) and not s.get("ports") and s["addressType"] == "IPv4"

    await env.kubelet("a", "10.88.0.2")
    await env.kubelet("b", "10.88.0.3", ready=False)
    await env.kubelet("other", "10.88.0.4")
    await env.until(env.addresses, (["a"], ["b"]))
    ep = await env.endpoints()
    uid = {p: (await env.c.get("pods", p, NS))["metadata"]["uid"] for p in ("a", "b")}
    assert ep["subsets"] == [{
        "addresses": [{"ip": "10.88.0.2", "nodeName": "n1",
                       "targetRef": {"kind": "Pod", "namespace": NS, "name": "a", "uid": uid["a"]}}],
        "notReadyAddresses": [{"ip": "10.88.0.3", "nodeName": "n2",
                               "targetRef": {"kind": "Pod", "namespace": NS, "name": "b", "uid": uid["b"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    await env.until(env.slice_view, {"a": (("10.88.0.2",), True, True, False),
                                     "b": (("10.88.0.3",), False, False, False)})
    (s,) = await env.slices()
    assert s["metadata"]["name"].startswith("web-") and s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {"team": "a", E.SERVICE_NAME_LABEL: "web",
                                       E.MANAGED_BY_LABEL: E.CONTROLLER_NAME, **headless}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": svc["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert {e["targetRef"]["name"]: e.get("nodeName") for e in s["endpoints"]} == {"a": "n1", "b": "n2"}
    name = s["metadata"]["name"]

    # b ready
    await env.kubelet("b", "10.88.0.3")
    await env.until(env.addresses, (["a", "b"], []))
    await env.until(env.slice_view, {"a": (("10.88.0.2",), True, True, False),
                                     "b": (("10.88.0.3",), True, True, False)})
    # a relabelled: it leaves the Service; other relabelled: it joins
    await env.c.patch("pods", "a", {"metadata": {"labels": {"app": "gone"}}}, NS)
    await env.c.patch("pods", "other", {"metadata": {"labels": {"app": "web"}}}, NS)
    await env.until(env.addresses, (["b", "other"], []))
    await env.until(lambda: _names(env.slice_view()), ["b", "other"])
    # b being deleted: out of the Endpoints, terminating (and not ready) in the slice
    await env.c.delete("pods", "b", NS)
    await env.until(env.addresses, (["other"], []))
    await env.until(env.slice_view, {"b": (("10.88.0.3",), False, True, True),
                                     "other": (("10.88.0.4",), True, True, False)})
    # the same slice all along, updated in place
    assert [s["metadata"]["name"] for s in await env.slices()] == [name]
    # a pod that finished leaves
    await env.c.patch("pods", "other", {"status": {"phase": "Succeeded"}}, NS, subresource="status")
    await env.until(env.addresses, ([], []))
    await env.until(lambda: _names(env.slice_view()), ["b"])


async def _names(coro):
    return sorted(await coro)


async def test_nothing_is_rewritten_when_nothing_changed(env, monkeypatch):
    # every write the controllers send (a no-op update would not even change the resourceVersion)
    writes: list[tuple[str, str]] = []
    for verb in ("create", "update", "patch", "delete"):
        orig = getattr(LocalClient, verb)

        def spy(self, resource, *a, _orig=orig, _verb=verb, **kw):
            if resource in ("endpoints", "endpointslices"):
                writes.append((_verb, resource))
            return _orig(self, resource, *a, **kw)
        monkeypatch.setattr(LocalClient, verb, spy)
    await env.service()
    await env.pod("a")
    await env.kubelet("a", "10.88.0.2")
    await env.until(env.addresses, (["a"], []))
    await env.until(lambda: _names(env.slice_view()), ["a"])
    await asyncio.sleep(0.3)
    writes.clear()
    # changes endpoints do not show: an annotation, a restart count, the Service's annotations
    # (a Service update is always looked at)
    await env.c.patch("pods", "a", {"metadata": {"annotations": {"note": "x"}}}, NS)
    await env.c.patch("pods", "a", {"status": {"containerStatuses": [
        {"name": "c", "image": "busybox", "restartCount": 1, "ready": True, "state": {"running": {}}}]}},
        NS, subresource="status")
    await env.c.patch("services", "web", {"metadata": {"annotations": {"note": "y"}}}, NS)
    await asyncio.sleep(0.5)
    assert writes == []
    # a change they show is written
    await env.kubelet("a", "10.88.0.2", ready=False)
    await env.until(env.addresses, ([], ["a"]))
    assert sorted(set(writes)) == [("update", "endpoints"), ("update", "endpointslices")]


async def test_named_target_port_per_pod_and_more_slices_than_one(env):
    await env.service()
    for i in range(12):
        await env.pod(f"p{i:02}", port=8080 if i % 2 == 0 else 9090)
        await env.kubelet(f"p{i:02}", f"10.88.0.{i + 2}")

    async def subsets():
        ep = await env.endpoints()
        return sorted((s["ports"][0]["port"], len(s.get("addresses") or ())) for s in (ep or {}).get("subsets") or ())
    await env.until(subsets, [(8080, 6), (9090, 6)])

    async def slices():
        return sorted((s["ports"][0]["port"] if s.get("ports") else None, len(s.get("endpoints") or ()))
                      for s in await env.slices())
    # at most 5 a slice here (max_endpoints_per_slice=5): 6 of each port in two slices (5 + 1
    # or 4 + 2: how they fill depends on which pod events one sync gathered)
    async def per_port():
        got = await slices()
        return sorted((port, sum(n for p, n in got if p == port), len([1 for p, n in got if p == port]),
                       max(n for p, n in got if p == port)) for port in {p for p, _ in got})
    deadline = time.monotonic() + 10
    while True:
        got = await per_port()
        if [(p, total, count) for p, total, count, _ in got] == [(8080, 6, 2), (9090, 6, 2)] and \
                all(mx <= 5 for *_, mx in got):
            break
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.05)
    assert len({e["targetRef"]["name"] for s in await env.slices() for e in s["endpoints"]}) == 12
    # down to two pods: the emptied slices go, one a port is left
    for i in range(2, 12):
        await env.c.delete("pods", f"p{i:02}", NS, grace_period_seconds=0)
    await env.until(slices, [(8080, 1), (9090, 1)])
    await env.until(subsets, [(8080, 1), (9090, 1)])


async def test_a_service_without_selector_is_left_alone(env):
    await env.service("manual", selector=False, ports=[{"name": "http", "port": 80}])
    manual = await env.c.create("endpoints", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80}]}]}, NS)
    await env.pod("a", labels={"app": "manual"})
    await env.kubelet("a", "10.88.0.2")
    # a Service with a selector next to it gets its Endpoints (the controllers are running) ...
    await env.service("web")
    await env.pod("b")
    await env.kubelet("b", "10.88.0.3")
    await env.until(env.addresses, (["b"], []))
    await env.until(lambda: _names(env.slice_view()), ["b"])
    await asyncio.sleep(0.3)
    # ... while the selector-less one's are as the user wrote them, and it gets no slices
    assert await env.endpoints("manual") == manual
    assert await env.slices("manual") == []


async def test_deleting_the_service_deletes_its_endpoints_and_slices(env):
    await env.service()
    await env.pod("a")
    await env.kubelet("a", "10.88.0.2")
    await env.until(env.addresses, (["a"], []))
    await wait_for(env.slices)
    await env.c.delete("services", "web", NS)
    await env.until(env.endpoints, None)
    await env.until(env.slices, [])
    # a new Service of that name starts afresh
    await env.service()
    await env.until(env.addresses, (["a"], []))
    (s,) = await wait_for(env.slices)
    assert s["metadata"]["ownerReferences"][0]["uid"] == (await env.c.get("services", "web", NS))["metadata"]["uid"]


async def test_endpoints_changed_by_someone_else_are_put_right(env):
    await env.service()
    await env.pod("a")
    await env.kubelet("a", "10.88.0.2")
    await env.until(env.addresses, (["a"], []))
    (s,) = await wait_for(env.slices)
    ep = await env.endpoints()
    await env.c.update("endpoints", {**ep, "subsets": [{"addresses": [{"ip": "192.0.2.1"}],
                                                         "ports": [{"name": "http", "port": 1}]}]})
    await env.until(env.addresses, (["a"], []))
    await env.c.delete("endpoints", "web", NS)
    await env.until(env.addresses, (["a"], []))
    await env.c.delete("endpointslices", s["metadata"]["name"], NS)
    await env.until(lambda: _names(env.slice_view()), ["a"])
    assert len(await env.slices()) == 1


async def test_selector_change_and_publish_not_ready_addresses(env):
    await env.service()
    await env.pod("a")
    await env.pod("b", labels={"app": "web", "tier": "canary"})
    await env.kubelet("a", "10.88.0.2", ready=False)
    await env.kubelet("b", "10.88.0.3", ready=False)
    await env.until(env.addresses, ([], ["a", "b"]))
    await env.c.patch("services", "web", {"spec": {"selector": {"app": "web", "tier": "canary"},
                                                   "publishNotReadyAddresses": True}}, NS)
    await env.until(env.addresses, (["b"], []))
    await env.until(env.slice_view, {"b": (("10.88.0.3",), True, False, False)})


async def test_leftover_endpoints_of_a_deleted_service_go_at_start(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    await cp.start()
    c = cp.local_client()
    ctl = None
    try:
        await c.create("endpoints", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "left"},
                                     "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}, NS)
        await c.create("endpoints", {"apiVersion": "v1", "kind": "Endpoints",
                                     "metadata": {"name": "lock", "annotations": {
                                         "control-plane.alpha.kubernetes.io/leader": "{}"}}}, NS)
        ctl = EndpointsController(cp.local_client())
        await ctl.start()

        async def names():
            return sorted(e["metadata"]["name"] for e in (await c.list("endpoints", NS))["items"])
        await wait_for(lambda: _is(names(), ["lock"]))
    finally:
        if ctl is not None:
            await ctl.stop()
        await cp.stop()


async def _is(coro, want):
    return await coro == want


async def test_the_standard_controllers_run_them(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    for f in standard_controllers(lease_grace=30):
        cp.add_controller(f)
    await cp.start()
    env = Env(cp)
    try:
        svc = await env.service()
        await env.pod("a")
        await env.kubelet("a", "10.88.0.2")
        await env.until(env.addresses, (["a"], []))
        await env.until(lambda: _names(env.slice_view()), ["a"])
        # the garbage collector deletes the slices of a Service deleted while ours were away
        (s,) = await env.slices()
        other = await env.c.create("endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "orphan", "labels": {"x": "y"}, "ownerReferences": [
                {"apiVersion": "v1", "kind": "Service", "name": "gone", "uid": "no-such-uid", "controller": True}]},
            "addressType": "IPv4", "endpoints": [], "ports": []}, NS)
        assert other["metadata"]["ownerReferences"][0]["uid"] != svc["metadata"]["uid"]

        async def orphan_gone():
            try:
                await env.c.get("endpointslices", "orphan", NS)
            except APIError as e:
                return e.code == 404
            return False
        await wait_for(orphan_gone)
        await env.c.delete("services", "web", NS)
        await env.until(env.endpoints, None)
        await env.until(env.slices, [])
    finally:
        await cp.stop()


async def test_a_big_service_is_synced_at_spaced_intervals_not_at_every_pod_event():
    """A pod event queues its Service at once when the Service is small, but after a sync that
    walked 10 000 pods it waits for the spacing (each sync walks all the pods: at every event a
    10 000-pod rollout made the controller quadratic)."""
    from skiff.controller import endpoints as EP
    ctl = EndpointsController(None)
    ctl._last_sync["default/small"] = (time.monotonic() - 1.0, 3)
    ctl._enqueue("default/small")
    assert len(ctl.queue) == 1 and not ctl.queue._delayed
    ctl._last_sync["default/big"] = (time.monotonic(), 10000)
    ctl._enqueue("default/big")
    assert len(ctl.queue) == 1 and "default/big" in ctl.queue._delayed
    at = ctl.queue._delayed["default/big"][0] - asyncio.get_running_loop().time()
    assert EP.MAX_SPACING - 0.5 < at <= EP.MAX_SPACING
    ctl.queue.shutdown()
