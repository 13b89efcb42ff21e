"""Informer: list+watch into a cache, re-watch, relist on 410 with a synthesised diff, no stale events."""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from skiff.api.client import HTTPClient
from skiff.api.informer import Informer, key_of, rv_of
from tests.unit.k8s_wire_double import WireDouble

pytestmark = pytest.mark.asyncio


def pod(name: str, **labels) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            "labels": labels or {"v": "1"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest_asyncio.fixture
async def server():
    d = await WireDouble().start()
    yield d
    await d.stop()


@pytest_asyncio.fixture
async def client(server):
    c = HTTPClient(server.url, timeout=5)
    yield c
    await c.close()


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str, str | None, str | None]] = []   # type, key, rv, old rv

    def __call__(self, typ, obj, old):
        self.events.append((typ, key_of(obj), obj["metadata"].get("resourceVersion"),
                            old["metadata"].get("resourceVersion") if old else None))

    def types(self):
        return [(t, k) for t, k, _, _ in self.events]


async def until(cond, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def watching(server, n=1):
    await until(lambda: len(server.watchers) >= n)


@pytest_asyncio.fixture
async def informer(server, client):
    infs = []

    async def make(**kw):
        inf = Informer(client, "pods", **kw)
        rec = Recorder()
        inf.add_handler(rec)
        infs.append(inf)
        await inf.start(timeout=5)
        return inf, rec

    yield make
    for inf in infs:
        await inf.stop()


async def test_start_returns_after_first_list(server, informer):
    for n in ("a", "b"):
        server.put("pods", pod(n))
    inf, rec = await informer()
    assert inf.synced.is_set()
    assert set(inf.cache) == {"default/a", "default/b"}
    assert rec.types() == [("ADDED", "default/a"), ("ADDED", "default/b")]
    assert inf.resource_version == str(server.rev)
    assert inf.get_object("a", "default")["metadata"]["name"] == "a"


async def test_pagination(server, informer):
    for i in range(5):
        server.put("pods", pod(f"p{i}"))
    inf, rec = await informer(page_size=2)
    assert len(inf.cache) == 5
    lists = server.list_requests()
    assert [r["query"].get("continue") for r in lists] == [None, "2", "4"]


async def test_live_events_and_old_object(server, informer):
    inf, rec = await informer()
    await watching(server)
    # the watch starts from the list's resourceVersion
    assert server.watch_requests()[-1]["query"]["resourceVersion"] == str(server.rev)
    a1 = server.put("pods", pod("a"))
    a2 = server.put("pods", pod("a", v="2"))
    server.remove("pods", "a")
    await until(lambda: len(rec.events) == 3)
    assert rec.events == [
        ("ADDED", "default/a", a1["metadata"]["resourceVersion"], None),
        ("MODIFIED", "default/a", a2["metadata"]["resourceVersion"], a1["metadata"]["resourceVersion"]),
        ("DELETED", "default/a", str(server.rev), a2["metadata"]["resourceVersion"]),
    ]
    assert inf.cache == {}
    assert inf.resource_version == str(server.rev)


async def test_rewatch_from_last_resource_version_when_server_closes(server, informer):
    inf, rec = await informer()
    await watching(server)
    server.put("pods", pod("a"))
    await until(lambda: len(rec.events) == 1)
    seen_rv = inf.resource_version
    server.close_watches()
    await until(lambda: inf.watches >= 2 and len(server.watchers) == 1)
    # resumed where it was: no relist, the watch carries the last resourceVersion seen
    assert inf.lists == 1 and len(server.list_requests()) == 1
    assert server.watch_requests()[-1]["query"]["resourceVersion"] == seen_rv
    server.put("pods", pod("b"))
    await until(lambda: len(rec.events) == 2)
    assert rec.types() == [("ADDED", "default/a"), ("ADDED", "default/b")]


async def test_events_missed_while_disconnected_are_replayed(server, informer):
    inf, rec = await informer()
    await watching(server)
    server.close_watches()
    server.put("pods", pod("during"))      # happens between two watches
    await until(lambda: "default/during" in inf.cache)
    assert inf.lists == 1
    assert rec.types() == [("ADDED", "default/during")]


async def test_relist_on_410_synthesises_the_difference(server, informer):
    for n in ("keep", "change", "gone"):
        server.put("pods", pod(n))
    inf, rec = await informer()
    await watching(server)
    rec.events.clear()
    # changes the informer never sees as events, then its resourceVersion expires
    server.put("pods", pod("change", v="2"), silent=True)
    server.remove("pods", "gone", silent=True)
    server.put("pods", pod("new"), silent=True)
    server.compact()
    server.expire_watches()
    await until(lambda: inf.lists == 2 and len(rec.events) == 3)
    assert sorted(rec.types()) == [("ADDED", "default/new"), ("DELETED", "default/gone"),
                                   ("MODIFIED", "default/change")]
    assert set(inf.cache) == {"default/keep", "default/change", "default/new"}
    assert inf.cache["default/change"]["metadata"]["labels"] == {"v": "2"}
    assert inf.resource_version == str(server.rev)
    # and it keeps watching after the relist
    await watching(server)
    server.put("pods", pod("after"))
    await until(lambda: "default/after" in inf.cache)


async def test_watch_start_410_relists(server, informer):
    inf, rec = await informer()
    await watching(server)
    server.put("pods", pod("x"), silent=True)
    server.compact()
    server.close_watches()                 # the re-watch from the old rv gets ERROR 410
    await until(lambda: "default/x" in inf.cache)
    assert inf.lists == 2


async def test_stale_events_are_dropped(server, informer):
    server.put("pods", pod("a"))
    inf, rec = await informer()
    await watching(server)
    a2 = server.put("pods", pod("a", v="2"))
    await until(lambda: len(rec.events) == 2)
    stale = dict(a2, metadata=dict(a2["metadata"], resourceVersion=str(int(a2["metadata"]["resourceVersion"]) - 1),
                                   labels={"v": "old"}))
    server.send_raw({"type": "MODIFIED", "object": stale})
    server.send_raw({"type": "ADDED", "object": stale})
    server.send_raw({"type": "DELETED", "object": stale})
    same = dict(a2, metadata=dict(a2["metadata"], labels={"v": "same-rv"}))
    server.send_raw({"type": "MODIFIED", "object": same})
    marker = server.put("pods", pod("marker"))
    await until(lambda: "default/marker" in inf.cache)
    assert rec.types() == [("ADDED", "default/a"), ("MODIFIED", "default/a"), ("ADDED", "default/marker")]
    assert inf.cache["default/a"]["metadata"]["labels"] == {"v": "2"}
    assert inf.resource_version == marker["metadata"]["resourceVersion"]


async def test_relist_never_goes_back_in_time(server, client, informer):
    inf, rec = await informer()
    await watching(server)
    newer = server.put("pods", pod("a", v="new"))
    await until(lambda: "default/a" in inf.cache)
    # a list answered from an older snapshot must not replace the newer object
    older = dict(newer, metadata=dict(newer["metadata"], resourceVersion="1", labels={"v": "old"}))
    inf._replace([older])
    assert inf.cache["default/a"]["metadata"]["labels"] == {"v": "new"}
    assert rec.types() == [("ADDED", "default/a")]


async def test_bookmark_advances_resource_version(server, informer):
    inf, rec = await informer()
    await watching(server)
    server.put("pods", pod("x"), silent=True)          # bumps rev without an event
    server.bookmark()
    await until(lambda: inf.resource_version == str(server.rev))
    assert rec.events == []
    assert server.watch_requests()[-1]["query"]["allowWatchBookmarks"] == "true"


async def test_late_handler_gets_replay_and_handler_errors_are_contained(server, informer):
    server.put("pods", pod("a"))
    inf, rec = await informer()
    late = Recorder()
    inf.add_handler(late)
    assert late.types() == [("ADDED", "default/a")]

    def broken(typ, obj, old):
        raise RuntimeError("boom")

    inf.add_handler(broken, replay=False)
    await watching(server)
    server.put("pods", pod("b"))
    await until(lambda: len(late.events) == 2)
    assert "default/b" in inf.cache and inf.running


async def test_reconnects_and_relists_after_server_restart(server, client):
    server.put("pods", pod("a"))
    server.put("pods", pod("b"))
    inf = Informer(client, "pods", min_backoff=0.05, max_backoff=0.2)
    rec = Recorder()
    inf.add_handler(rec)
    await inf.start(timeout=5)
    try:
        await watching(server)
        port = int(server.url.rsplit(":", 1)[1])
        await server.stop()
        await asyncio.sleep(0.3)           # a few failed attempts while it is down
        # "restart" on the same port, with a state that moved on meanwhile
        from aiohttp import web
        d2 = WireDouble()
        d2.rev = server.rev + 50
        d2.put("pods", pod("a", v="2"))
        d2.put("pods", pod("c"))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", d2._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            pytest.skip("could not rebind the same ephemeral port")
        try:
            await until(lambda: set(inf.cache) == {"default/a", "default/c"}, timeout=10)
            assert inf.cache["default/a"]["metadata"]["labels"] == {"v": "2"}
            assert ("DELETED", "default/b") in rec.types()
            assert ("MODIFIED", "default/a") in rec.types() and ("ADDED", "default/c") in rec.types()
            assert inf.lists >= 2
        finally:
            d2.close_watches()
            await runner.cleanup()
    finally:
        await inf.stop()


async def test_stop_ends_the_watch(server, informer):
    inf, rec = await informer()
    await watching(server)
    await inf.stop()
    assert not inf.running
    await until(lambda: not server.watchers)


async def test_rv_of_and_key_of():
    assert rv_of({"metadata": {"resourceVersion": "12"}}) == 12
    assert rv_of({"metadata": {}}) == 0 and rv_of(None) == 0
    assert rv_of({"metadata": {"resourceVersion": "9"}}) < rv_of({"metadata": {"resourceVersion": "10"}})
    assert key_of({"metadata": {"name": "n1"}}) == "n1"
    assert key_of({"metadata": {"name": "web", "namespace": "ns"}}) == "ns/web"
