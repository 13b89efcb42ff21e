"""The registry over a real SQLite store + watch cache: admission, generation, status split,
conflicts, patches, graceful deletion, binding, namespaces, generateName, node restriction,
selector watches; and LocalClient over it."""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.auth import node_user
from skiff.controller.local_client import LocalClient
from skiff.controller.registry import Registry
from skiff.controller.storage import SqliteStore, WatchCache

pytestmark = pytest.mark.asyncio


def pod(name="web", ns=None, containers=("c",), **spec):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers], **spec}}


def node(name):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}


@pytest_asyncio.fixture
async def reg(tmp_path):
    store = SqliteStore(str(tmp_path / "state.db"))
    cache = WatchCache(store)
    await cache.start()
    r = Registry(cache, bookmark_interval=0.2)
    await r.ensure_namespaces()
    yield r
    await cache.close()
    await store.close()


async def expect(code, coro, reason=None):
    with pytest.raises(APIError) as ei:
        await coro
    assert ei.value.code == code, ei.value.status
    if reason:
        assert ei.value.reason == reason
    assert ei.value.status["kind"] == "Status" and ei.value.status["code"] == code
    return ei.value


async def test_create_defaults_and_get(reg):
    warnings = []
    out = await reg.create("pods", pod(), "default", warnings=warnings)
    md = out["metadata"]
    assert md["namespace"] == "default" and md["generation"] == 1 and md["uid"] and md["resourceVersion"]
    assert out["spec"]["restartPolicy"] == "Always" and out["spec"]["terminationGracePeriodSeconds"] == 30
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    got = await reg.get("pods", "web", "default")
    assert got == out
    e = await expect(409, reg.create("pods", pod(), "default"), "AlreadyExists")
    assert e.message == 'pods "web" already exists'
    e = await expect(404, reg.get("pods", "nope", "default"), "NotFound")
    assert e.message == 'pods "nope" not found' and e.status["details"] == {"name": "nope", "kind": "pods"}
    e = await expect(404, reg.get("leases", "x", "default"))
    assert e.message == 'leases.coordination.k8s.io "x" not found'
    assert e.status["details"]["group"] == "coordination.k8s.io"


async def test_create_errors(reg):
    e = await expect(404, reg.create("pods", pod(), "nope"), "NotFound")
    assert e.message == 'namespaces "nope" not found'
    bad = pod()
    bad["spec"]["containers"][0].pop("image")
    bad["spec"]["foo"] = 1
    e = await expect(422, reg.create("pods", bad, "default"), "Invalid")
    fields = {c["field"] for c in e.status["details"]["causes"]}
    assert {"spec.containers[0].image", "spec.foo"} <= fields
    assert e.status["details"]["name"] == "web"
    await expect(422, reg.create("pods", pod(ns="other"), "default"), "Invalid")
    await expect(400, reg.create("pods", node("n1"), "default"), "BadRequest")


async def test_generate_name(reg):
    p = pod()
    del p["metadata"]["name"]
    p["metadata"]["generateName"] = "web-"
    a = await reg.create("pods", p, "default")
    b = await reg.create("pods", p, "default")
    assert a["metadata"]["name"].startswith("web-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_update_conflict_generation_and_status_split(reg):
    cur = await reg.create("pods", pod(), "default")
    # metadata-only change: no generation bump
    cur["metadata"]["labels"] = {"a": "b"}
    cur["status"] = {"phase": "Running"}  # ignored on the main resource
    up = await reg.update("pods", cur)
    assert up["metadata"]["labels"] == {"a": "b"} and up["metadata"]["generation"] == 1
    assert up["status"]["phase"] == "Pending"
    assert int(up["metadata"]["resourceVersion"]) > int(cur["metadata"]["resourceVersion"])
    # stale resourceVersion -> 409 with Kubernetes' message
    e = await expect(409, reg.update("pods", cur), "Conflict")
    assert e.message == ('Operation cannot be fulfilled on pods "web": the object has been modified; '
                         'please apply your changes to the latest version and try again')
    # spec change (image is mutable): generation + 1
    up["spec"]["containers"][0]["image"] = "busybox:2"
    up2 = await reg.update("pods", up)
    assert up2["metadata"]["generation"] == 2
    # other spec changes are forbidden for pods
    up2["spec"]["restartPolicy"] = "Never"
    e = await expect(422, reg.update("pods", up2), "Invalid")
    assert e.status["details"]["causes"][0]["field"] == "spec"
    # status via /status only changes status
    st = dict(up2)
    st["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    st["metadata"] = {**up2["metadata"], "labels": {"x": "y"}}
    out = await reg.update("pods", st, subresource="status")
    assert out["status"] == {"phase": "Running", "podIP": "10.0.0.5"}
    assert out["metadata"]["labels"] == {"a": "b"} and out["metadata"]["generation"] == 2
    # uid/creationTimestamp immutable; no resourceVersion = unconditional
    nxt = {**out, "metadata": {**out["metadata"], "uid": "other", "creationTimestamp": "2000-01-01T00:00:00Z"}}
    del nxt["metadata"]["resourceVersion"]
    nxt["metadata"]["annotations"] = {"k": "v"}
    out2 = await reg.update("pods", nxt)
    assert out2["metadata"]["uid"] == out["metadata"]["uid"]
    assert out2["metadata"]["creationTimestamp"] == out["metadata"]["creationTimestamp"]
    # a no-op update does not write
    same = await reg.update("pods", out2)
    assert same["metadata"]["resourceVersion"] == out2["metadata"]["resourceVersion"]
    await expect(404, reg.update("pods", pod("nope", "default")), "NotFound")


async def test_patch(reg):
    await reg.create("pods", pod(), "default")
    out = await reg.patch("pods", "web", {"metadata": {"labels": {"app": "web"}}}, "default")
    assert out["metadata"]["labels"] == {"app": "web"}
    out = await reg.patch("pods", "web", [{"op": "add", "path": "/metadata/labels/tier", "value": "x"},
                                          {"op": "remove", "path": "/metadata/labels/app"}], "default",
                          patch_type="json")
    assert out["metadata"]["labels"] == {"tier": "x"}
    out = await reg.patch("pods", "web", b'{"status": {"phase": "Running"}}', "default", subresource="status")
    assert out["status"]["phase"] == "Running"
    out = await reg.patch("pods", "web", {"status": {"phase": "Failed"}}, "default")  # ignored
    assert out["status"]["phase"] == "Running"
    e = await expect(409, reg.patch("pods", "web", {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}},
                                    "default"), "Conflict")
    assert "the object has been modified" in e.message
    rv = out["metadata"]["resourceVersion"]
    ok = await reg.patch("pods", "web", {"metadata": {"resourceVersion": rv, "labels": {"a": "b"}}}, "default")
    assert ok["metadata"]["labels"]["a"] == "b"
    e = await expect(422, reg.patch("pods", "web", [{"op": "test", "path": "/metadata/name", "value": "x"}],
                                    "default", patch_type="json"), "Invalid")
    assert "test" in e.status["details"]["causes"][0]["message"]
    await expect(400, reg.patch("pods", "web", b"{nope", "default"), "BadRequest")
    await expect(400, reg.patch("pods", "web", [{"op": "bogus", "path": "/a"}], "default", patch_type="json"))
    await expect(422, reg.patch("pods", "web", {"spec": {"containers": [{"name": "c"}]}}, "default"))
    await expect(404, reg.patch("pods", "nope", {}, "default"), "NotFound")


async def test_graceful_delete_of_bound_pod(reg):
    await reg.create("pods", pod(terminationGracePeriodSeconds=20), "default")
    await reg.bind("default", "web", {"target": {"kind": "Node", "name": "n1"}})
    out = await reg.delete("pods", "web", "default")
    md = out["metadata"]
    assert md["deletionGracePeriodSeconds"] == 20 and md["deletionTimestamp"]
    assert (await reg.get("pods", "web", "default"))["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    # a longer grace does not extend, a shorter one shortens
    again = await reg.delete("pods", "web", "default", grace_period_seconds=60)
    assert again["metadata"]["deletionGracePeriodSeconds"] == 20
    short = await reg.delete("pods", "web", "default", grace_period_seconds=5)
    assert short["metadata"]["deletionGracePeriodSeconds"] == 5
    # binding a pod being deleted is refused
    await expect(409, reg.bind("default", "web", {"target": {"name": "n2"}}))
    # the agent confirms
    gone = await reg.delete("pods", "web", "default", grace_period_seconds=0)
    assert gone["metadata"]["name"] == "web"
    await expect(404, reg.get("pods", "web", "default"))


async def test_unscheduled_pod_and_others_deleted_at_once(reg):
    await reg.create("pods", pod(), "default")
    await reg.delete("pods", "web", "default")
    await expect(404, reg.get("pods", "web", "default"))
    await reg.create("nodes", node("n1"))
    await reg.delete("nodes", "n1")
    await expect(404, reg.get("nodes", "n1"))


async def test_delete_preconditions_and_finalizers(reg):
    p = await reg.create("pods", pod(), "default")
    e = await expect(409, reg.delete("pods", "web", "default", preconditions={"uid": "x"}), "Conflict")
    assert "Precondition failed: UID in precondition: x" in e.message
    await expect(409, reg.delete("pods", "web", "default", preconditions={"resourceVersion": "1"}), "Conflict")
    await reg.delete("pods", "web", "default", preconditions={"uid": p["metadata"]["uid"]})
    n = node("n1")
    n["metadata"]["finalizers"] = ["skiff.dev/x"]
    await reg.create("nodes", n)
    marked = await reg.delete("nodes", "n1")
    assert marked["metadata"]["deletionTimestamp"]
    await reg.patch("nodes", "n1", {"metadata": {"finalizers": None}})
    await expect(404, reg.get("nodes", "n1"))


async def test_namespaces(reg):
    names = [n["metadata"]["name"] for n in (await reg.list("namespaces"))["items"]]
    assert names == ["default", "kube-node-lease", "kube-system"]
    await reg.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
    await reg.create("pods", pod(), "t")
    # issue 6: deletion cascades; the namespace goes Terminating until its finalizer goes
    ns = await reg.delete("namespaces", "t")
    assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    e = await expect(403, reg.create("pods", pod("web2"), "t"), "Forbidden")
    assert "being terminated" in e.message
    await reg.delete("pods", "web", "t")
    await reg.update("namespaces", {**ns, "spec": {"finalizers": []}}, subresource="finalize")
    await expect(404, reg.get("namespaces", "t"))
    await expect(403, reg.delete("namespaces", "default"), "Forbidden")


async def test_binding(reg):
    await reg.create("pods", pod(), "default")
    st = await reg.create("pods", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
                                   "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}},
                          "default", subresource="binding", name="web")
    assert st["status"] == "Success" and st["code"] == 201
    p = await reg.get("pods", "web", "default")
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    e = await expect(409, reg.bind("default", "web", {"target": {"name": "n2"}}), "Conflict")
    assert e.message == 'Operation cannot be fulfilled on pods/binding "web": pod web is already assigned to node "n1"'
    await expect(404, reg.bind("default", "nope", {"target": {"name": "n2"}}), "NotFound")
    await expect(422, reg.bind("default", "web", {"target": {}}), "Invalid")


async def test_list_selectors_and_pages(reg):
    for i in range(7):
        p = pod(f"p{i}", **({"nodeName": "n1"} if i % 2 else {}))
        p["metadata"]["labels"] = {"i": str(i), "odd": str(bool(i % 2)).lower()}
        await reg.create("pods", p, "default")
    lst = await reg.list("pods", "default", label_selector="odd=true")
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p1", "p3", "p5"]
    assert lst["kind"] == "PodList" and lst["apiVersion"] == "v1" and lst["metadata"]["resourceVersion"]
    lst = await reg.list("pods", field_selector="spec.nodeName=")
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p0", "p2", "p4", "p6"]
    names, cont = [], None
    while True:
        page = await reg.list("pods", "default", field_selector="spec.nodeName=", limit=3, continue_=cont)
        assert len(page["items"]) <= 3
        names += [p["metadata"]["name"] for p in page["items"]]
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert names == ["p0", "p2", "p4", "p6"]
    await expect(400, reg.list("pods", label_selector="a in (b"), "BadRequest")


async def test_watch_selector_transitions(reg):
    await reg.create("pods", pod("a"), "default")
    stream = reg.watch("pods", "default", field_selector="spec.nodeName=n1")
    it = stream.__aiter__()

    async def nxt():
        return await asyncio.wait_for(it.__anext__(), 5)
    try:
        await reg.create("pods", pod("b"), "default")  # not matching: not sent
        await reg.bind("default", "a", {"target": {"name": "n1"}})  # starts matching: ADDED
        t, o = await nxt()
        assert (t, o["metadata"]["name"]) == ("ADDED", "a")
        await reg.patch("pods", "a", {"metadata": {"labels": {"x": "1"}}}, "default")
        t, o = await nxt()
        assert (t, o["metadata"]["name"]) == ("MODIFIED", "a")
        await reg.delete("pods", "a", "default", grace_period_seconds=0)
        t, o = await nxt()
        assert (t, o["metadata"]["name"]) == ("DELETED", "a")
    finally:
        await stream.aclose()
    # a label selector that stops matching -> DELETED
    stream = reg.watch("pods", "default", label_selector="app=web")
    it = stream.__aiter__()
    try:
        await reg.patch("pods", "b", {"metadata": {"labels": {"app": "web"}}}, "default")
        t, o = await nxt()
        assert (t, o["metadata"]["name"]) == ("ADDED", "b")
        await reg.patch("pods", "b", {"metadata": {"labels": {"app": "db"}}}, "default")
        t, o = await nxt()
        assert (t, o["metadata"]["name"]) == ("DELETED", "b")
    finally:
        await stream.aclose()


async def test_watch_from_rv_bookmarks_timeout(reg):
    p = await reg.create("pods", pod("a"), "default")
    rv = p["metadata"]["resourceVersion"]
    await reg.patch("pods", "a", {"metadata": {"labels": {"x": "1"}}}, "default")
    got = []
    async for t, o in reg.watch("pods", "default", resource_version=rv, bookmarks=True, timeout_seconds=0.5):
        got.append((t, o["metadata"].get("name"), o["kind"]))
    assert got[0] == ("MODIFIED", "a", "Pod")
    assert ("BOOKMARK", None, "Pod") in got[1:]


async def test_watch_marks_where_a_burst_ends(reg):
    """watch(marks=True): an IDLE mark when nothing more is queued, once per burst, whatever
    the selector filtered out of it."""
    from skiff.controller.storage.base import IDLE
    stream = reg.watch("pods", "default", label_selector="app=web", marks=True)
    it = stream.__aiter__()
    try:
        assert await asyncio.wait_for(it.__anext__(), 2) == (IDLE, None)     # nothing yet
        def labelled(name, app):
            p = pod(name)
            p["metadata"]["labels"] = {"app": app}
            return p
        await asyncio.gather(*(reg.create("pods", labelled(f"m{i}", "web" if i % 2 else "db"), "default")
                               for i in range(6)))
        got = []
        while True:
            t, o = await asyncio.wait_for(it.__anext__(), 2)
            got.append((t, o["metadata"]["name"] if o else None))
            if t is IDLE:
                break
        assert got == [("ADDED", "m1"), ("ADDED", "m3"), ("ADDED", "m5"), (IDLE, None)]
        # only db pods: filtered out, yet the burst still ends with a mark
        await asyncio.gather(*(reg.create("pods", labelled(f"d{i}", "db"), "default") for i in range(2)))
        assert await asyncio.wait_for(it.__anext__(), 2) == (IDLE, None)
    finally:
        await stream.aclose()


async def test_create_leaves_what_is_nested_in_the_callers_object_alone(reg):
    """The ReplicaSet controller creates every pod from one template with only a new top level
    (dict(template)): creating must not write into anything nested in it."""
    import copy
    template = pod("", containers=("a", "b"))
    template["metadata"] = {"generateName": "rs-", "labels": {"app": "x"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                                 "uid": "u1", "controller": True}]}
    template["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    before = copy.deepcopy(template)
    made = [await reg.create("pods", dict(template), "default") for _ in range(2)]
    assert template == before
    assert made[0]["metadata"]["name"] != made[1]["metadata"]["name"]
    assert made[0]["spec"]["restartPolicy"] == "Always"       # defaulted: in the copies only


async def test_node_watch_bookmarks_carry_the_cache_revision(reg):
    """An agent's watch (spec.nodeName=X) sees only its node's pods, but its bookmarks carry
    the cache's revision, as Kubernetes' do: resuming from one after a quiet spell must not
    fall off the ring while other nodes' pods went by."""
    await reg.create("pods", pod("mine", nodeName="n1"), "default")
    lst = await reg.list("pods", field_selector="spec.nodeName=n1")
    got = []
    stream = reg.watch("pods", None, field_selector="spec.nodeName=n1", bookmarks=True,
                       resource_version=lst["metadata"]["resourceVersion"], timeout_seconds=1.0)
    it = stream.__aiter__()
    others = [await reg.create("pods", pod(f"other-{i}", nodeName="n2"), "default") for i in range(3)]
    last = int(others[-1]["metadata"]["resourceVersion"])
    try:
        async for t, o in it:
            got.append((t, int(o["metadata"]["resourceVersion"])))
    finally:
        await stream.aclose()
    assert got and all(t == "BOOKMARK" for t, _ in got)    # nothing of n1 changed
    assert got[-1][1] >= last
    # and resuming from that bookmark gives the events that came after it, and only those
    mine = await reg.create("pods", pod("mine-2", nodeName="n1"), "default")
    resumed = reg.watch("pods", None, field_selector="spec.nodeName=n1", resource_version=str(got[-1][1]))
    try:
        t, o = await asyncio.wait_for(resumed.__anext__(), 2)
    finally:
        await resumed.aclose()
    assert (t, o["metadata"]["name"]) == ("ADDED", "mine-2")
    assert o["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]


async def test_watch_too_old_is_410(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    cache = WatchCache(store, capacity=3)
    await cache.start()
    try:
        reg = Registry(cache)
        await reg.ensure_namespaces()
        for i in range(6):
            await reg.create("pods", pod(f"p{i}"), "default")
        stream = reg.watch("pods", resource_version="1")
        e = await expect(410, stream.__anext__(), "Expired")
        assert "too old resource version" in e.message
        await expect(400, _aiter_first(reg.watch, "pods", resource_version="abc"))
    finally:
        await cache.close()
        await store.close()


async def _aiter_first(fn, *a, **kw):
    return await fn(*a, **kw).__anext__()


async def test_node_restriction(reg):
    await reg.create("nodes", node("n1"))
    await reg.create("nodes", node("n2"))
    await reg.create("pods", pod("mine", nodeName="n1"), "default")
    await reg.create("pods", pod("theirs", nodeName="n2"), "default")
    n1 = node_user("n1")
    c = LocalClient(reg, n1)
    assert (await c.get("pods", "mine", "default"))["metadata"]["name"] == "mine"
    e = await expect(403, c.get("pods", "theirs", "default"), "Forbidden")
    assert e.message == ('pods "theirs" is forbidden: User "system:node:n1" cannot get resource "pods" in API '
                         'group "" in the namespace "default": node "n1" can only access pods bound to it')
    await expect(403, c.get("pods", "nope", "default"), "Forbidden")
    # read-only lists of every pod (the agent's network policy controller, skiff.agent.netpol)
    assert len((await c.list("pods"))["items"]) == 2
    assert len((await c.list("pods", field_selector="spec.nodeName=n2"))["items"]) == 1
    assert len((await c.list("pods", field_selector="spec.nodeName=n1"))["items"]) == 1
    await expect(403, c.create("pods", pod("x"), "default"), "Forbidden")
    await c.patch("pods", "mine", {"status": {"phase": "Running"}}, "default", subresource="status")
    await expect(403, c.patch("pods", "theirs", {"status": {"phase": "Running"}}, "default",
                              subresource="status"), "Forbidden")
    await c.patch("nodes", "n1", {"metadata": {"labels": {"a": "b"}}})
    await expect(403, c.patch("nodes", "n2", {"metadata": {"labels": {"a": "b"}}}), "Forbidden")
    await expect(403, c.delete("nodes", "n1"), "Forbidden")
    assert len((await c.list("nodes"))["items"]) == 2
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
             "spec": {"holderIdentity": "n1"}}
    await c.create("leases", lease, "kube-node-lease")
    await expect(403, c.create("leases", {**lease, "metadata": {"name": "n2"}}, "kube-node-lease"), "Forbidden")
    await expect(403, c.create("leases", lease, "default"), "Forbidden")
    await c.get("namespaces", "default")
    assert "default" in [n["metadata"]["name"] for n in (await c.list("namespaces"))["items"]]   # namespaceSelectors
    await expect(403, c.delete("namespaces", "default"), "Forbidden")
    await c.list("networkpolicies")
    await expect(403, c.create("networkpolicies", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                                   "metadata": {"name": "p"}, "spec": {}}, "default"), "Forbidden")
    await c.delete("pods", "mine", "default", grace_period_seconds=0)


async def test_local_client_matches_contract(reg):
    c = LocalClient(reg)
    created = await c.create("pods", pod(), "default")
    got = await c.get("pods", "web", "default")
    assert got == created
    upd = await c.update("pods", {**got, "metadata": {**got["metadata"], "labels": {"a": "b"}}})
    assert upd["metadata"]["labels"] == {"a": "b"}
    events = []

    async def watcher():
        async for t, o in c.watch("pods", "default", resource_version=upd["metadata"]["resourceVersion"]):
            events.append((t, o["metadata"]["name"]))
            if t == "DELETED":
                return
    task = asyncio.create_task(watcher())
    await asyncio.sleep(0.05)
    await c.delete("pods", "web", "default")
    await asyncio.wait_for(task, 5)
    assert events == [("DELETED", "web")]
    await c.close()
