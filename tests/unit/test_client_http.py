"""HTTPClient against a small Kubernetes wire-format server (tests/unit/k8s_wire_double.py)."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
import pytest_asyncio

from skiff.api.client import APIConnectionError, HTTPClient
from skiff.api.errors import APIError
from skiff.api.kubeconfig import write_kubeconfig
from tests.unit.k8s_wire_double import WireDouble

pytestmark = pytest.mark.asyncio

TOKEN = "s3cret-token"


def pod(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", **extra},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest_asyncio.fixture
async def server():
    d = await WireDouble(token=TOKEN).start()
    yield d
    await d.stop()


@pytest_asyncio.fixture
async def client(server):
    c = HTTPClient(server.url, TOKEN, timeout=5)
    yield c
    await c.close()


async def test_crud_round_trip_with_bearer_token(server, client):
    created = await client.create("pods", pod("web"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert server.requests[-1]["authorization"] == f"Bearer {TOKEN}"
    assert server.requests[-1]["method"] == "POST"
    assert server.requests[-1]["path"] == "/api/v1/namespaces/default/pods"
    assert server.requests[-1]["content_type"] == "application/json"
    assert json.loads(server.requests[-1]["body"])["metadata"]["name"] == "web"

    got = await client.get("pods", "web", "default")
    assert got == created
    got["metadata"]["labels"] = {"app": "web"}
    updated = await client.update("pods", got)
    assert server.requests[-1]["method"] == "PUT"
    assert server.requests[-1]["path"] == "/api/v1/namespaces/default/pods/web"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    lst = await client.list("pods", "default")
    assert lst["kind"] == "PodList" and [i["metadata"]["name"] for i in lst["items"]] == ["web"]
    assert lst["metadata"]["resourceVersion"] == str(server.rev)

    deleted = await client.delete("pods", "web", "default")
    assert deleted["metadata"]["name"] == "web"
    assert ("pods", "default", "web") not in server.objects


async def test_cluster_scoped_paths(server, client):
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert server.requests[-1]["path"] == "/api/v1/nodes"
    await client.get("nodes", "n1")
    assert server.requests[-1]["path"] == "/api/v1/nodes/n1"
    await client.create("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                   "metadata": {"name": "n1"}}, "kube-node-lease")
    assert server.requests[-1]["path"] == "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


async def test_missing_token_is_401_api_error(server):
    async with HTTPClient(server.url) as c:
        with pytest.raises(APIError) as ei:
            await c.get("pods", "web", "default")
    assert ei.value.code == 401 and ei.value.reason == "Unauthorized"
    assert server.requests[-1]["authorization"] is None


async def test_status_errors_become_api_errors(server, client):
    with pytest.raises(APIError) as ei:
        await client.get("pods", "nope", "default")
    assert (ei.value.code, ei.value.reason, ei.value.message) == (404, "NotFound", 'pods "nope" not found')
    assert ei.value.status["kind"] == "Status"

    await client.create("pods", pod("web"))
    with pytest.raises(APIError) as ei:
        await client.create("pods", pod("web"))
    assert (ei.value.code, ei.value.reason) == (409, "AlreadyExists")

    stale = await client.get("pods", "web", "default")
    await client.patch("pods", "web", {"metadata": {"labels": {"a": "b"}}}, "default")
    with pytest.raises(APIError) as ei:
        await client.update("pods", stale)
    assert (ei.value.code, ei.value.reason) == (409, "Conflict")


async def test_non_status_error_body_is_synthesised(server, client):
    # a plain-text error from something that is not the API server (a proxy, say)
    from aiohttp import web
    app = web.Application()
    async def bad_gateway(request):
        return web.Response(status=502, text="bad gateway")

    app.router.add_get("/api/v1/namespaces/default/pods/x", bad_gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with HTTPClient(f"http://127.0.0.1:{port}") as c:
            with pytest.raises(APIError) as ei:
                await c.get("pods", "x", "default")
        assert ei.value.code == 502 and ei.value.message == "bad gateway"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("ptype,ctype,body", [
    ("merge", "application/merge-patch+json", {"metadata": {"labels": {"x": "1"}}}),
    ("strategic", "application/strategic-merge-patch+json", {"metadata": {"labels": {"x": "1"}}}),
    ("json", "application/json-patch+json", [{"op": "add", "path": "/metadata/labels", "value": {"x": "1"}}]),
])
async def test_patch_content_types(server, client, ptype, ctype, body):
    await client.create("pods", pod("web"))
    out = await client.patch("pods", "web", body, "default", patch_type=ptype)
    assert server.requests[-1]["method"] == "PATCH"
    assert server.requests[-1]["content_type"] == ctype
    assert json.loads(server.requests[-1]["body"]) == body
    assert out["metadata"]["labels"] == {"x": "1"}


async def test_patch_unknown_type_refused(client):
    with pytest.raises(ValueError):
        await client.patch("pods", "web", {}, "default", patch_type="apply")


async def test_status_subresource_and_binding(server, client):
    await client.create("pods", pod("web"))
    await client.patch("pods", "web", {"status": {"phase": "Running"}}, "default", subresource="status")
    assert server.requests[-1]["path"] == "/api/v1/namespaces/default/pods/web/status"
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    st = await client.create("pods", binding, "default", subresource="binding", name="web")
    assert st["status"] == "Success"
    assert server.requests[-1]["path"] == "/api/v1/namespaces/default/pods/web/binding"
    assert server.objects[("pods", "default", "web")]["spec"]["nodeName"] == "n1"
    with pytest.raises(APIError) as ei:
        await client.create("pods", binding, "default", subresource="binding", name="web")
    assert ei.value.code == 409


async def test_delete_options_body(server, client):
    created = await client.create("pods", pod("web"))
    await client.delete("pods", "web", "default", grace_period_seconds=0,
                        preconditions={"uid": created["metadata"]["uid"]})
    body = json.loads(server.requests[-1]["body"])
    assert body == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": created["metadata"]["uid"]}}


async def test_list_params(server, client):
    for i in range(3):
        await client.create("pods", pod(f"p{i}"))
    page = await client.list("pods", "default", limit=2, label_selector="app=web", field_selector="spec.nodeName=n1")
    q = server.requests[-1]["query"]
    assert q == {"limit": "2", "labelSelector": "app=web", "fieldSelector": "spec.nodeName=n1"}
    assert len(page["items"]) == 2 and page["metadata"]["continue"]
    page2 = await client.list("pods", "default", limit=2, continue_=page["metadata"]["continue"])
    assert server.requests[-1]["query"]["continue"] == page["metadata"]["continue"]
    assert [i["metadata"]["name"] for i in page2["items"]] == ["p2"]
    await client.list("pods")
    assert server.requests[-1]["path"] == "/api/v1/pods"


async def test_one_connection_reused(server, client):
    await client.create("pods", pod("web"))
    session = client.session
    for _ in range(20):
        await client.get("pods", "web", "default")
    assert client.session is session
    peers = {r["peer"] for r in server.requests}
    assert len(peers) == 1, peers


async def test_warning_header(server, client):
    seen = []
    client.on_warning = seen.append
    server.warning = "spec.foo: not supported by skiff, ignored"
    await client.create("pods", pod("web"))
    assert client.warnings == ["spec.foo: not supported by skiff, ignored"]
    assert seen == ["spec.foo: not supported by skiff, ignored"]
    server.warning = None
    await client.get("pods", "web", "default")
    assert client.warnings == []


async def test_watch_replay_live_and_server_end(server, client):
    server.put("pods", pod("a"))
    events = []

    async def consume():
        async for typ, obj in client.watch("pods", "default"):
            events.append((typ, obj["metadata"].get("name")))

    t = asyncio.create_task(consume())
    while not server.watchers:
        await asyncio.sleep(0.01)
    q = server.watch_requests()[-1]["query"]
    assert q["watch"] == "true" and q["allowWatchBookmarks"] == "true"
    server.put("pods", pod("b"))
    server.remove("pods", "a")
    server.bookmark()
    server.close_watches()
    await asyncio.wait_for(t, 5)          # the generator ends when the server ends the watch
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("BOOKMARK", None)]


async def test_watch_from_resource_version(server, client):
    first = server.put("pods", pod("a"))
    server.put("pods", pod("b"))
    events = []

    async def consume():
        async for typ, obj in client.watch("pods", "default", resource_version=first["metadata"]["resourceVersion"],
                                           timeout_seconds=1):
            events.append((typ, obj["metadata"]["name"]))

    await asyncio.wait_for(consume(), 5)
    assert server.watch_requests()[-1]["query"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert server.watch_requests()[-1]["query"]["timeoutSeconds"] == "1"
    assert events == [("ADDED", "b")]


async def test_watch_error_410_line_raises(server, client):
    server.put("pods", pod("a"))
    server.compact()
    with pytest.raises(APIError) as ei:
        async for _ in client.watch("pods", "default", resource_version="5"):
            pass
    assert ei.value.code == 410 and ei.value.reason == "Expired"


async def test_watch_error_before_streaming(server):
    async with HTTPClient(server.url, "wrong") as c:
        with pytest.raises(APIError) as ei:
            async for _ in c.watch("pods"):
                pass
    assert ei.value.code == 401


async def test_watch_long_lines(server, client):
    big = "x" * (1 << 20)                  # 1 MiB annotation: one line much longer than any buffer
    server.put("pods", pod("big", annotations={"big": big}))
    server.put("pods", pod("small"))
    got = []

    async def consume():
        async for typ, obj in client.watch("pods", "default", timeout_seconds=1):
            got.append(obj)

    await asyncio.wait_for(consume(), 10)
    assert [o["metadata"]["name"] for o in got] == ["big", "small"]
    assert got[0]["metadata"]["annotations"]["big"] == big


async def test_watch_has_no_total_timeout(server):
    async with HTTPClient(server.url, TOKEN, timeout=0.3) as c:
        events = []

        async def consume():
            async for typ, obj in c.watch("pods", "default"):
                events.append(typ)
                return

        t = asyncio.create_task(consume())
        await asyncio.sleep(0.8)           # longer than the request timeout
        server.put("pods", pod("late"))
        await asyncio.wait_for(t, 5)
        assert events == ["ADDED"]
        # while ordinary requests keep their timeout
        assert c._timeout.total == 0.3


async def test_watch_break_releases_connection(server, client):
    for i in range(3):
        server.put("pods", pod(f"p{i}"))
    for _ in range(3):
        async for typ, obj in client.watch("pods", "default"):
            break
    await asyncio.sleep(0.1)
    assert not server.watchers or all(w.queue.qsize() == 0 for w in server.watchers)
    assert (await client.get("pods", "p0", "default"))["metadata"]["name"] == "p0"


async def test_stream_logs(server, client):
    server.put("pods", pod("web"))
    server.log_chunks = [b"hello\n", b"x" * 100000 + b"\n", b"bye\n"]
    chunks = []
    async for c in client.stream("/api/v1/namespaces/default/pods/web/log", {"follow": True, "tailLines": 10}):
        chunks.append(c)
    assert b"".join(chunks) == b"".join(server.log_chunks)
    assert server.requests[-1]["query"] == {"follow": "true", "tailLines": "10"}
    with pytest.raises(APIError) as ei:
        async for _ in client.stream("/api/v1/namespaces/default/pods/nope/log", None):
            pass
    assert ei.value.code == 404


async def test_raw_request(server, client):
    server.put("pods", pod("web"))
    got = await client.request("GET", "/api/v1/namespaces/default/pods/web")
    assert got["metadata"]["name"] == "web"
    with pytest.raises(APIError) as ei:
        await client.request("GET", "/nothing/here")
    assert ei.value.code == 404


async def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    async with HTTPClient(f"http://127.0.0.1:{port}", timeout=2) as c:
        with pytest.raises(APIConnectionError) as ei:
            await c.get("pods", "x", "default")
        assert f"127.0.0.1:{port}" in str(ei.value)
        with pytest.raises(APIConnectionError):
            async for _ in c.watch("pods"):
                pass


async def test_from_kubeconfig_and_context_manager(server, tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    write_kubeconfig(str(path), server.url, TOKEN)
    c = HTTPClient.from_kubeconfig(str(path))
    async with c:
        await c.create("pods", pod("web"))
        assert server.requests[-1]["authorization"] == f"Bearer {TOKEN}"
        session = c.session
    assert session.closed

    monkeypatch.setenv("KUBECONFIG", str(path))
    async with HTTPClient.from_kubeconfig() as c2:
        assert c2.server == server.url and c2.token == TOKEN
        assert (await c2.get("pods", "web", "default"))["metadata"]["name"] == "web"
