"""The API server over a real socket (127.0.0.1, port 0) with a real SQLite store: REST
verbs, Status errors, selectors and pages, watches (ERROR 410 line, selector transitions,
bookmarks), patches, graceful deletion, binding, auth (401), node restriction (403), tokens,
TokenReview, the pods/log proxy, discovery."""
from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from skiff.controller.controlplane import ControlPlane

pytestmark = pytest.mark.asyncio


def pod(name="web", containers=("c",), **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers], **spec}}


class API:
    def __init__(self, cp: ControlPlane, session: aiohttp.ClientSession):
        self.cp, self.s, self.token = cp, session, cp.admin_token

    async def __call__(self, method, path, body=None, *, token="admin", ctype=None, params=None, raw=None):
        headers = {}
        tok = self.token if token == "admin" else token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        data = raw
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = ctype or "application/json"
        async with self.s.request(method, self.cp.url + path, data=data, headers=headers, params=params) as r:
            text = await r.text()
            try:
                out = json.loads(text)
            except ValueError:
                out = text
            return r.status, out, r.headers


@pytest_asyncio.fixture
async def cp(tmp_path):
    c = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", watch_cache_capacity=50,
                     bookmark_interval=0.2)
    await c.start()
    yield c
    await c.stop()


@pytest_asyncio.fixture
async def api(cp):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cp.client_ssl())) as s:
        yield API(cp, s)


PODS = "/api/v1/namespaces/default/pods"


def assert_status(body, code, reason, message=None):
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    if message is not None:
        assert body["message"] == message


async def test_health_version_discovery(api):
    st, body, _ = await api("GET", "/healthz", token=None)
    assert (st, body) == (200, "ok")
    st, body, _ = await api("GET", "/readyz", token=None)
    assert (st, body) == (200, "ok")
    st, body, _ = await api("GET", "/version", token=None)
    assert st == 200 and body["major"] == "1" and body["minor"] == "32"
    st, body, _ = await api("GET", "/api")
    assert body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    st, body, _ = await api("GET", "/apis")
    assert sorted(g["name"] for g in body["groups"]) == ["apiextensions.k8s.io", "apps", "autoscaling", "batch",
                                                         "coordination.k8s.io",
                                                         "discovery.k8s.io", "metrics.k8s.io", "networking.k8s.io",
                                                         "policy", "rbac.authorization.k8s.io",
                                                         "scheduling.k8s.io", "storage.k8s.io"]
    st, body, _ = await api("GET", "/api/v1")
    names = {r["name"]: r for r in body["resources"]}
    assert {"pods", "pods/log", "pods/status", "pods/binding", "nodes", "events", "namespaces",
            "services", "services/status", "endpoints", "serviceaccounts"} <= set(names)
    assert names["pods"]["shortNames"] == ["po"] and names["pods"]["categories"] == ["all"]
    assert names["pods"]["namespaced"] is True and names["nodes"]["namespaced"] is False
    assert names["services"]["shortNames"] == ["svc"] and names["services"]["categories"] == ["all"]
    assert names["endpoints"]["shortNames"] == ["ep"] and "categories" not in names["endpoints"]
    assert names["serviceaccounts"]["shortNames"] == ["sa"] and names["serviceaccounts"]["kind"] == "ServiceAccount"
    st, body, _ = await api("GET", "/apis/discovery.k8s.io/v1")
    assert body["groupVersion"] == "discovery.k8s.io/v1" and body["resources"][0]["name"] == "endpointslices"
    st, body, _ = await api("GET", "/apis/coordination.k8s.io/v1")
    assert body["groupVersion"] == "coordination.k8s.io/v1" and body["resources"][0]["name"] == "leases"
    st, body, _ = await api("GET", "/api/v1/frobs")
    assert st == 404 and body["reason"] == "NotFound"


async def test_401(api):
    for tok in (None, "bogus"):
        st, body, _ = await api("GET", PODS, token=tok)
        assert st == 401
        assert_status(body, 401, "Unauthorized", "Unauthorized")


async def test_crud_and_errors(api):
    st, out, hdrs = await api("POST", PODS, pod())
    assert st == 201 and out["metadata"]["generation"] == 1 and out["kind"] == "Pod"
    st, body, _ = await api("POST", PODS, pod())
    assert st == 409
    assert_status(body, 409, "AlreadyExists", 'pods "web" already exists')
    st, got, _ = await api("GET", PODS + "/web")
    assert st == 200 and got == out
    st, body, _ = await api("GET", PODS + "/nope")
    assert st == 404
    assert_status(body, 404, "NotFound", 'pods "nope" not found')
    assert body["details"] == {"name": "nope", "kind": "pods"}
    got["metadata"]["labels"] = {"a": "b"}
    st, upd, _ = await api("PUT", PODS + "/web", got)
    assert st == 200 and upd["metadata"]["labels"] == {"a": "b"}
    st, body, _ = await api("PUT", PODS + "/web", got)  # stale resourceVersion
    assert st == 409
    assert_status(body, 409, "Conflict", 'Operation cannot be fulfilled on pods "web": the object has been '
                                         'modified; please apply your changes to the latest version and try again')
    st, body, _ = await api("POST", "/api/v1/namespaces/nope/pods", pod())
    assert st == 404
    assert_status(body, 404, "NotFound", 'namespaces "nope" not found')
    st, body, _ = await api("POST", PODS, raw=b"{not json")
    assert st == 400 and body["reason"] == "BadRequest"
    # cluster-scoped and group resources
    st, n, _ = await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert st == 201
    st, body, _ = await api("GET", "/api/v1/nodes/n1")
    assert st == 200 and body["metadata"]["name"] == "n1"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}
    st, body, _ = await api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    assert st == 201
    st, body, _ = await api("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2")
    assert_status(body, 404, "NotFound", 'leases.coordination.k8s.io "n2" not found')


async def test_422_with_causes(api):
    bad = pod("Bad_Name")
    bad["spec"]["containers"][0].pop("image")
    st, body, _ = await api("POST", PODS, bad)
    assert st == 422
    assert_status(body, 422, "Invalid")
    assert body["details"]["kind"] == "Pod" and body["details"]["name"] == "Bad_Name"
    fields = {c["field"]: c for c in body["details"]["causes"]}
    assert fields["spec.containers[0].image"]["reason"] == "FieldValueRequired"
    assert "metadata.name" in fields


async def test_request_bodies_up_to_3_mib(api):
    """As the kube-apiserver: bodies up to 3 MiB are read (aiohttp's own limit is 1 MiB),
    larger ones are a 413 Status."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * 1_500_000}}
    st, body, _ = await api("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert st != 413, body
    cm["metadata"]["name"], cm["data"]["a"] = "huge", "x" * (3 * 1024 * 1024 + 10)
    st, body, _ = await api("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert st == 413
    assert_status(body, 413, "RequestEntityTooLarge")


async def test_warning_header(api):
    p = pod()
    p["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["true"]}}
    p["spec"]["runtimeClassName"] = "gvisor"
    from skiff.controller.admission import admit
    _, warns = admit(p)
    st, out, hdrs = await api("POST", PODS, p)
    assert st == 201
    got = hdrs.getall("Warning", [])
    assert len(got) == len(warns)
    for w in warns:
        assert any(h.startswith('299 - "') and str(w).replace('"', '\\"') in h for h in got)


async def test_list_selectors_limit_continue(api):
    for i in range(5):
        p = pod(f"p{i}")
        p["metadata"]["labels"] = {"app": "web" if i < 3 else "db"}
        await api("POST", PODS, p)
    st, lst, _ = await api("GET", PODS, params={"labelSelector": "app=web"})
    assert st == 200 and lst["kind"] == "PodList" and lst["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p0", "p1", "p2"]
    assert all(p["kind"] == "Pod" and p["apiVersion"] == "v1" for p in lst["items"])
    st, lst, _ = await api("GET", "/api/v1/pods", params={"labelSelector": "app in (db)"})
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p3", "p4"]
    st, lst, _ = await api("GET", PODS, params={"fieldSelector": "metadata.name!=p0,status.phase=Pending"})
    assert len(lst["items"]) == 4
    st, body, _ = await api("GET", PODS, params={"fieldSelector": "spec.bogus=1"})
    assert st == 400
    assert_status(body, 400, "BadRequest", "field label not supported: spec.bogus")
    st, body, _ = await api("GET", PODS, params={"labelSelector": "a in (b"})
    assert st == 400 and body["reason"] == "BadRequest"
    names, cont, pages = [], None, 0
    while True:
        params = {"limit": "2"}
        if cont:
            params["continue"] = cont
        st, lst, _ = await api("GET", PODS, params=params)
        pages += 1
        names += [p["metadata"]["name"] for p in lst["items"]]
        cont = lst["metadata"].get("continue")
        if not cont:
            break
    assert names == [f"p{i}" for i in range(5)] and pages == 3
    st, body, _ = await api("GET", PODS, params={"limit": "2", "continue": "garbage"})
    assert st == 400 and body["reason"] == "BadRequest"
    # delete a selected collection (unscheduled pods go at once)
    st, body, _ = await api("DELETE", PODS, params={"labelSelector": "app=db"})
    assert st == 200 and body["kind"] == "PodList"
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["p3", "p4"]
    st, lst, _ = await api("GET", PODS)
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p0", "p1", "p2"]


async def read_events(resp, n, timeout=5.0):
    out = []
    for _ in range(n):
        line = await asyncio.wait_for(resp.content.readline(), timeout)
        assert line.endswith(b"\n"), line
        out.append(json.loads(line))
    return out


async def test_watch_stream(api):
    await api("POST", PODS, pod("a"))
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.s.get(api.cp.url + PODS, params={"watch": "true"}, headers=headers) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        (ev,) = await read_events(resp, 1)
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "a"
        await api("POST", PODS, pod("b"))
        (ev,) = await read_events(resp, 1)  # arrives on its own: flushed per line
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "b"
        rv_b = ev["object"]["metadata"]["resourceVersion"]
        await api("PATCH", PODS + "/b", {"metadata": {"labels": {"x": "y"}}}, ctype="application/merge-patch+json")
        await api("DELETE", PODS + "/a")
        evs = await read_events(resp, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("MODIFIED", "b"), ("DELETED", "a")]
    # resume from a resourceVersion: only what happened after it
    async with api.s.get(api.cp.url + PODS, params={"watch": "1", "resourceVersion": rv_b}, headers=headers) as resp:
        evs = await read_events(resp, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("MODIFIED", "b"), ("DELETED", "a")]


async def test_watch_bookmarks_and_timeout(api):
    headers = {"Authorization": f"Bearer {api.token}"}
    params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "1", "resourceVersion": "1"}
    async with api.s.get(api.cp.url + PODS, params=params, headers=headers) as resp:
        body = await asyncio.wait_for(resp.read(), 5)  # ends by itself after timeoutSeconds
    evs = [json.loads(line) for line in body.splitlines()]
    bms = [e for e in evs if e["type"] == "BOOKMARK"]
    assert bms and bms[0]["object"]["kind"] == "Pod" and bms[0]["object"]["metadata"]["resourceVersion"]


async def test_a_burst_of_watch_events_goes_out_in_one_chunk(api):
    """Events that reach a watch together (one group commit) are sent in one write: one HTTP
    chunk (one TLS record), not one per line. A lone event still goes out at once."""
    headers = {"Authorization": f"Bearer {api.token}"}
    _, lst, _ = await api("GET", PODS)
    params = {"watch": "true", "resourceVersion": lst["metadata"]["resourceVersion"]}
    async with api.s.get(api.cp.url + PODS, params=params, headers=headers) as resp:
        reg = api.cp.registry
        await asyncio.gather(*(reg.create("pods", pod(f"b{i}"), "default") for i in range(5)))
        chunks: list[bytes] = []
        while sum(c.count(b"\n") for c in chunks) < 5:
            chunk, end = await asyncio.wait_for(resp.content.readchunk(), 5)
            while not end:              # the client may hand one HTTP chunk over in pieces
                more, end = await asyncio.wait_for(resp.content.readchunk(), 5)
                chunk += more
            chunks.append(chunk)
        lines = b"".join(chunks).splitlines()
        assert [json.loads(x)["object"]["metadata"]["name"] for x in lines] == [f"b{i}" for i in range(5)]
        # one chunk per group commit: a busy machine may split the burst in two, never in five
        assert len(chunks) <= 2, [c.count(b"\n") for c in chunks]
        await reg.create("pods", pod("alone"), "default")
        evs = await read_events(resp, 1)
        assert evs[0]["object"]["metadata"]["name"] == "alone"


async def test_watch_bookmarks_come_while_events_flow(api):
    """Bookmarks come every interval (0.2 s here), also to a watch that keeps getting events,
    as the kube-apiserver's do; and timeoutSeconds still ends the watch."""
    headers = {"Authorization": f"Bearer {api.token}"}
    params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "1", "resourceVersion": "1"}
    reg = api.cp.registry

    async def churn():
        for i in range(40):
            await reg.create("pods", pod(f"c{i}"), "default")
            await asyncio.sleep(0.02)
    async with api.s.get(api.cp.url + PODS, params=params, headers=headers) as resp:
        t = asyncio.ensure_future(churn())
        body = await asyncio.wait_for(resp.read(), 5)
        await t
    types = [json.loads(line)["type"] for line in body.splitlines()]
    assert types.count("ADDED") >= 20 and types.count("BOOKMARK") >= 2


async def test_watch_too_old_gives_error_line(api):
    for i in range(60):
        await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{i}"}})
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.s.get(api.cp.url + "/api/v1/nodes", params={"watch": "true", "resourceVersion": "2"},
                         headers=headers) as resp:
        assert resp.status == 200
        body = await asyncio.wait_for(resp.read(), 5)
    (ev,) = [json.loads(line) for line in body.splitlines()]
    assert ev["type"] == "ERROR"
    assert_status(ev["object"], 410, "Expired")
    # a bad selector fails before streaming, with the normal status code
    st, body, _ = await api("GET", PODS, params={"watch": "true", "fieldSelector": "nope=1"})
    assert st == 400 and body["reason"] == "BadRequest"


async def test_watch_selector_transitions(api):
    await api("POST", PODS, pod("a"))
    headers = {"Authorization": f"Bearer {api.token}"}
    params = {"watch": "true", "fieldSelector": "spec.nodeName=n1"}
    async with api.s.get(api.cp.url + PODS, params=params, headers=headers) as resp:
        await api("POST", PODS, pod("b"))  # never matches
        st, body, _ = await api("POST", PODS + "/a/binding", {"apiVersion": "v1", "kind": "Binding",
                                                              "metadata": {"name": "a"},
                                                              "target": {"apiVersion": "v1", "kind": "Node",
                                                                         "name": "n1"}})
        assert st == 201 and body["status"] == "Success"
        (ev,) = await read_events(resp, 1)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "a")
        assert ev["object"]["spec"]["nodeName"] == "n1"
    params = {"watch": "true", "labelSelector": "app=web"}
    async with api.s.get(api.cp.url + PODS, params=params, headers=headers) as resp:
        await api("PATCH", PODS + "/b", {"metadata": {"labels": {"app": "web"}}}, ctype="application/merge-patch+json")
        (ev,) = await read_events(resp, 1)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        await api("PATCH", PODS + "/b", [{"op": "replace", "path": "/metadata/labels/app", "value": "db"}],
                  ctype="application/json-patch+json")
        (ev,) = await read_events(resp, 1)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "b")


async def test_watch_streams_stored_json_where_no_selector_needs_it(api):
    """An agent's watch (spec.nodeName=X) and an unfiltered one stream the cache's JSON as it is
    (RawObject, not decoded and encoded again); a label selector still decodes. Every event's
    object is what a GET returns."""
    from skiff.controller.storage.base import RawObject
    reg = api.cp.registry
    headers = {"Authorization": f"Bearer {api.token}"}
    await api("POST", PODS, pod("a"))
    kinds = {}
    for name, kw in {"node": {"field_selector": "spec.nodeName=n1"}, "all": {},
                     "labels": {"label_selector": "app=web"}}.items():
        rv = (await reg.list("pods", "default"))["metadata"]["resourceVersion"]
        stream = reg.watch("pods", "default", raw=True, resource_version=rv, **kw)
        await api("PATCH", PODS + "/a", {"metadata": {"labels": {"app": "web", "n": name}}},
                  ctype="application/merge-patch+json")
        if name == "node" and not kinds:
            await api("POST", PODS + "/a/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"},
                                                    "target": {"kind": "Node", "name": "n1"}})
        etype, obj = await asyncio.wait_for(stream.__anext__(), 5)
        kinds[name] = type(obj)
        await stream.aclose()
    assert kinds == {"node": RawObject, "all": RawObject, "labels": dict}
    async with api.s.get(api.cp.url + PODS, params={"watch": "1", "fieldSelector": "spec.nodeName=n1"},
                         headers=headers) as node_w, \
            api.s.get(api.cp.url + PODS, params={"watch": "1"}, headers=headers) as all_w:
        (ev,) = await read_events(node_w, 1)
        assert ev["type"] == "ADDED" and ev["object"]["spec"]["nodeName"] == "n1"
        await read_events(all_w, 1)
        st, _, _ = await api("PATCH", PODS + "/a/status", {"status": {"phase": "Running"}},
                             ctype="application/merge-patch+json")
        assert st == 200
        _, cur, _ = await api("GET", PODS + "/a")
        for w in (node_w, all_w):
            (ev,) = await read_events(w, 1)
            assert ev["type"] == "MODIFIED" and ev["object"] == cur
        await api("DELETE", PODS + "/a", params={"gracePeriodSeconds": "0"})
        for w in (node_w, all_w):
            evs = await read_events(w, 1)
            while evs[-1]["type"] != "DELETED":
                evs = await read_events(w, 1)
            assert evs[-1]["object"]["metadata"]["name"] == "a"


async def test_patches(api):
    await api("POST", PODS, pod())
    st, out, _ = await api("PATCH", PODS + "/web", {"metadata": {"labels": {"a": "1", "b": "2"}}},
                           ctype="application/merge-patch+json")
    assert st == 200 and out["metadata"]["labels"] == {"a": "1", "b": "2"}
    st, out, _ = await api("PATCH", PODS + "/web", {"metadata": {"labels": {"a": None}}},
                           ctype="application/strategic-merge-patch+json")
    assert out["metadata"]["labels"] == {"b": "2"}
    # strategic: containers merged by name (kubectl's image change)
    st, out, _ = await api("PATCH", PODS + "/web", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}],
                                                             "$setElementOrder/containers": [{"name": "c"}]}},
                           ctype="application/strategic-merge-patch+json")
    assert st == 200, out
    assert out["spec"]["containers"][0]["image"] == "busybox:2"
    assert out["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert out["metadata"]["generation"] == 2
    st, out, _ = await api("PATCH", PODS + "/web", [{"op": "add", "path": "/metadata/annotations",
                                                     "value": {"skiff.dev/x": "1"}},
                                                    {"op": "test", "path": "/metadata/annotations/skiff.dev~1x",
                                                     "value": "1"}],
                           ctype="application/json-patch+json")
    assert st == 200 and out["metadata"]["annotations"] == {"skiff.dev/x": "1"}
    st, body, _ = await api("PATCH", PODS + "/web", [{"op": "test", "path": "/metadata/name", "value": "x"}],
                            ctype="application/json-patch+json")
    assert st == 422 and body["reason"] == "Invalid"
    st, body, _ = await api("PATCH", PODS + "/web", {"metadata": {"resourceVersion": "1"}},
                            ctype="application/merge-patch+json")
    assert st == 409 and body["reason"] == "Conflict"
    st, body, _ = await api("PATCH", PODS + "/web", {}, ctype="text/plain")
    assert st == 415 and body["reason"] == "UnsupportedMediaType"
    st, out, _ = await api("PATCH", PODS + "/web/status", {"status": {"phase": "Running"}},
                           ctype="application/merge-patch+json")
    assert st == 200 and out["status"]["phase"] == "Running"
    st, out, _ = await api("GET", PODS + "/web/status")
    assert st == 200 and out["status"]["phase"] == "Running"


async def test_graceful_delete_then_confirm(api):
    await api("POST", PODS, pod(terminationGracePeriodSeconds=15))
    st, _, _ = await api("POST", PODS + "/web/binding", {"apiVersion": "v1", "kind": "Binding",
                                                         "metadata": {"name": "web"},
                                                         "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}})
    assert st == 201
    st, body, _ = await api("POST", PODS + "/web/binding", {"apiVersion": "v1", "kind": "Binding",
                                                            "metadata": {"name": "web"}, "target": {"name": "n2"}})
    assert st == 409 and body["reason"] == "Conflict"
    st, out, _ = await api("DELETE", PODS + "/web")
    assert st == 200 and out["metadata"]["deletionGracePeriodSeconds"] == 15 and out["metadata"]["deletionTimestamp"]
    st, out, _ = await api("GET", PODS + "/web")
    assert st == 200 and out["metadata"]["deletionTimestamp"]
    st, out, _ = await api("DELETE", PODS + "/web", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                     "gracePeriodSeconds": 3})
    assert out["metadata"]["deletionGracePeriodSeconds"] == 3
    st, out, _ = await api("DELETE", PODS + "/web", params={"gracePeriodSeconds": "0"})
    assert st == 200 and out["metadata"]["name"] == "web"
    st, body, _ = await api("GET", PODS + "/web")
    assert st == 404


async def test_immediate_delete_of_unscheduled_pod(api):
    await api("POST", PODS, pod())
    st, out, _ = await api("DELETE", PODS + "/web")
    assert st == 200 and out["metadata"]["name"] == "web"
    st, body, _ = await api("GET", PODS + "/web")
    assert st == 404
    st, body, _ = await api("DELETE", PODS + "/web")
    assert_status(body, 404, "NotFound", 'pods "web" not found')


async def node_api(api, name):
    tok = await api.cp.mint_node_token(name)

    async def call(method, path, body=None, **kw):
        return await api(method, path, body, token=tok, **kw)
    return call


async def test_node_restriction(api):
    for n in ("n1", "n2"):
        await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
    await api("POST", PODS, pod("mine", nodeName="n1"))
    await api("POST", PODS, pod("theirs", nodeName="n2"))
    n1 = await node_api(api, "n1")
    st, body, _ = await n1("GET", PODS + "/mine")
    assert st == 200
    st, body, _ = await n1("GET", PODS + "/theirs")
    assert st == 403
    assert_status(body, 403, "Forbidden", 'pods "theirs" is forbidden: User "system:node:n1" cannot get resource '
                  '"pods" in API group "" in the namespace "default": node "n1" can only access pods bound to it')
    # every pod may be listed (read only): the agent's network policy controller needs their IPs
    st, body, _ = await n1("GET", "/api/v1/pods")
    assert st == 200 and sorted(p["metadata"]["name"] for p in body["items"]) == ["mine", "theirs"]
    st, body, _ = await n1("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName=n2"})
    assert st == 200 and [p["metadata"]["name"] for p in body["items"]] == ["theirs"]
    st, lst, _ = await n1("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName=n1"})
    assert st == 200 and [p["metadata"]["name"] for p in lst["items"]] == ["mine"]
    st, body, _ = await n1("POST", PODS, pod("x"))
    assert st == 403
    st, body, _ = await n1("DELETE", PODS + "/theirs")
    assert st == 403
    st, body, _ = await n1("PATCH", PODS + "/theirs/status", {"status": {"phase": "Running"}},
                           ctype="application/merge-patch+json")
    assert st == 403
    st, body, _ = await n1("PATCH", PODS + "/mine/status", {"status": {"phase": "Running"}},
                           ctype="application/merge-patch+json")
    assert st == 200
    st, body, _ = await n1("GET", "/api/v1/nodes")
    assert st == 200 and len(body["items"]) == 2
    st, body, _ = await n1("PATCH", "/api/v1/nodes/n1/status", {"status": {"capacity": {"cpu": "2"}}},
                           ctype="application/merge-patch+json")
    assert st == 200
    st, body, _ = await n1("PATCH", "/api/v1/nodes/n2", {"metadata": {"labels": {"a": "b"}}},
                           ctype="application/merge-patch+json")
    assert st == 403
    st, body, _ = await n1("DELETE", "/api/v1/nodes/n1")
    assert st == 403
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"}, "spec": {}}
    st, body, _ = await n1("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    assert st == 201
    st, body, _ = await n1("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                           {**lease, "metadata": {"name": "n2"}})
    assert st == 403
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "mine.1"},
          "involvedObject": {"kind": "Pod", "name": "mine", "namespace": "default"}, "reason": "Started",
          "message": "started", "type": "Normal"}
    st, body, _ = await n1("POST", "/api/v1/namespaces/default/events", ev)
    assert st == 201, body
    st, body, _ = await n1("GET", "/api/v1/namespaces/default")
    assert st == 200
    st, body, _ = await n1("DELETE", "/api/v1/namespaces/default")
    assert st == 403
    st, body, _ = await n1("POST", "/apis/skiff.dev/v1/jointokens", {})
    assert st == 403
    # a node may not run commands in pods, not even in its own
    st, body, _ = await n1("POST", PODS + "/mine/exec", params={"command": "true"})
    assert st == 403 and "cannot create resource \"pods/exec\"" in body["message"], body
    st, body, _ = await n1("POST", PODS + "/mine/attach", params={"stdin": "true"})
    assert st == 403 and "cannot create resource \"pods/attach\"" in body["message"], body
    st, body, _ = await n1("POST", PODS + "/mine/portforward", params={"ports": "80"})
    assert st == 403 and "cannot create resource \"pods/portforward\"" in body["message"], body


async def test_exec_needs_a_websocket_and_a_valid_container(api):
    await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    await api("POST", PODS, pod("mine", nodeName="n1"))
    st, body, _ = await api("POST", PODS + "/mine/exec", params={"command": "true", "container": "nope"})
    assert_status(body, 400, "BadRequest", "container nope is not valid for pod mine")
    st, body, _ = await api("POST", PODS + "/mine/exec", params={"command": "true"})
    assert st == 400 and body["message"].startswith("Upgrade request required"), body
    st, body, _ = await api("PUT", PODS + "/mine/exec", {})
    assert st == 405
    st, body, _ = await api("POST", PODS + "/mine/attach", params={"stdin": "true"})
    assert st == 400 and body["message"].startswith("Upgrade request required: skiff serves attach"), body


async def test_port_forward_needs_the_spdy_websocket(api):
    await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    await api("POST", PODS, pod("mine", nodeName="n1"))
    st, body, _ = await api("POST", PODS + "/mine/portforward", params={"ports": "80"})
    assert st == 400 and body["message"].startswith("Upgrade request required") \
        and "SPDY/3.1+portforward.k8s.io" in body["message"], body
    st, body, _ = await api("PUT", PODS + "/mine/portforward", {})
    assert st == 405
    st, body, _ = await api("GET", PODS + "/nope/portforward")
    assert st == 404


async def test_token_exchange_and_review(api):
    st, jt, _ = await api("POST", "/apis/skiff.dev/v1/jointokens", {"ttlSeconds": 600})
    assert st == 201 and jt["kind"] == "JoinToken" and jt["apiVersion"] == "skiff.dev/v1"
    assert "." in jt["token"] and jt["expiration"].endswith("Z")
    # the join token is good only for nodetokens, and may be used many times
    st, body, _ = await api("GET", PODS, token=jt["token"])
    assert st == 403
    for _ in range(2):
        st, nt, _ = await api("POST", "/apis/skiff.dev/v1/nodetokens", {"nodeName": "n1"}, token=jt["token"])
        assert st == 201 and nt["kind"] == "NodeToken" and nt["nodeName"] == "n1" and nt["token"]
    st, body, _ = await api("POST", "/apis/skiff.dev/v1/nodetokens", {"nodeName": "n1"}, token=nt["token"])
    assert st == 403
    st, body, _ = await api("POST", "/apis/skiff.dev/v1/nodetokens", {}, token=jt["token"])
    assert st == 422
    st, body, _ = await api("POST", "/apis/skiff.dev/v1/jointokens", {}, token=jt["token"])
    assert st == 403
    # the node token works and is a node identity
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": nt["token"]}}
    st, body, _ = await api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
    assert st == 201 and body["status"]["authenticated"] is True
    assert body["status"]["user"] == {"username": "system:node:n1",
                                      "groups": ["system:nodes", "system:authenticated"]}
    # a node may review tokens too (the agent's log server); unknown tokens are not authenticated
    review["spec"]["token"] = "nope"
    st, body, _ = await api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review, token=nt["token"])
    assert st == 201 and body["status"]["authenticated"] is False
    review["spec"]["token"] = api.token
    st, body, _ = await api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review, token=nt["token"])
    assert body["status"]["user"]["username"] == "system:admin"
    # an expired join token is refused
    st, short, _ = await api("POST", "/apis/skiff.dev/v1/jointokens", {"ttlSeconds": 0.2})
    await asyncio.sleep(1.1)
    st, body, _ = await api("POST", "/apis/skiff.dev/v1/nodetokens", {"nodeName": "n2"}, token=short["token"])
    assert st == 401


async def test_kubeconfig_written(cp):
    path = os.path.join(cp.data_dir, "kubeconfig")
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = yaml.safe_load(open(path))
    assert doc["clusters"][0]["cluster"]["server"] == cp.url
    assert doc["users"][0]["user"]["token"] == cp.admin_token
    assert doc["current-context"] == "skiff"


async def test_pod_log_proxy(api):
    seen = {}

    async def logs(request):
        seen["auth"] = request.headers.get("Authorization")
        seen["path"] = request.path
        seen["query"] = dict(request.query)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(b"line 1\n")
        if request.query.get("follow") == "true":
            await asyncio.sleep(0.3)
        await resp.write(b"line 2\n")
        return resp

    async def missing(request):
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "container c has no logs", "reason": "NotFound", "code": 404},
                                 status=404)
    app = web.Application()
    app.router.add_get("/containerLogs/default/web/c", logs)
    app.router.add_get("/containerLogs/default/web/gone", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]
        await api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                                            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
        await api("POST", PODS, pod("web", containers=("c", "gone"), nodeName="n1"))
        st, body, _ = await api("GET", PODS + "/web/log")
        assert st == 400
        assert_status(body, 400, "BadRequest",
                      "a container name must be specified for pod web, choose one of: [c gone]")
        st, body, _ = await api("GET", PODS + "/web/log", params={"container": "x"})
        assert st == 400
        headers = {"Authorization": f"Bearer {api.token}"}
        async with api.s.get(api.cp.url + PODS + "/web/log", headers=headers,
                             params={"container": "c", "follow": "true", "tailLines": "5"}) as resp:
            assert resp.status == 200 and resp.content_type == "text/plain"
            first = await asyncio.wait_for(resp.content.readline(), 2)  # streamed before the end
            assert first == b"line 1\n"
            assert await resp.read() == b"line 2\n"
        assert seen["auth"] == f"Bearer {api.cp.apiserver_token}"
        assert seen["query"] == {"follow": "true", "tailLines": "5"}
        st, body, _ = await api("GET", PODS + "/web/log", params={"container": "gone"})
        assert st == 404 and body["message"] == "container c has no logs"
        # the apiserver token is a master identity for the agents' TokenReview
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": api.cp.apiserver_token}}
        st, body, _ = await api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
        assert body["status"]["user"]["username"] == "system:apiserver"
    finally:
        await runner.cleanup()


async def test_stop_ends_open_watches_quickly(tmp_path):
    c = ControlPlane(str(tmp_path / "d2"), listen="127.0.0.1:0")
    await c.start()
    stopped = False
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=c.client_ssl())) as s:
            resp = await s.get(c.url + "/api/v1/namespaces", params={"watch": "true"},
                               headers={"Authorization": f"Bearer {c.admin_token}"})
            await read_events(resp, 3)
            t0 = asyncio.get_running_loop().time()
            await asyncio.wait_for(c.stop(), 10)
            stopped = True
            assert asyncio.get_running_loop().time() - t0 < 1.5
            rest = await asyncio.wait_for(resp.read(), 5)  # the stream ended
            assert rest == b""
            resp.release()
    finally:
        if not stopped:
            await c.stop()


async def test_status_must_be_an_object(api):
    await api("POST", PODS, pod())
    st, body, _ = await api("PUT", PODS + "/web/status", {**pod(), "status": "Running"})
    assert st == 422 and body["details"]["causes"][0]["field"] == "status"
