"""The SQLite store and the watch cache: CRUD, one global revision, CAS, pagination,
watch replay + live, 410 after compaction, cache equivalence."""
from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import pytest_asyncio

from skiff.controller.storage import (SqliteStore, Storage, StoreError, WatchCache, key_for,
                                      prefix_for)

pytestmark = pytest.mark.asyncio


def pod(name: str, ns: str = "default", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec or {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest_asyncio.fixture
async def store(tmp_path):
    s = SqliteStore(str(tmp_path / "state.db"))
    yield s
    await s.close()


@pytest_asyncio.fixture(params=["sqlite", "cache", "cache-uncached"])
async def any_store(request, tmp_path):
    """The same contract, served by the SQLite store, by the watch cache over it, and by a
    cache that leaves pods to the backend (as the control plane leaves events)."""
    s = SqliteStore(str(tmp_path / "state.db"))
    if request.param == "sqlite":
        yield s
    else:
        c = WatchCache(s, capacity=50, uncached=("/pods/",) if request.param == "cache-uncached" else ())
        await c.start()
        yield c
        await c.close()
    await s.close()


async def next_n(it, n: int, timeout: float = 5.0) -> list:
    return [await asyncio.wait_for(it.__anext__(), timeout) for _ in range(n)]


async def test_key_for():
    assert key_for("pods", "default", "web") == "/pods/default/web"
    assert key_for("nodes", None, "n1") == "/nodes//n1"
    assert key_for("nodes", "", "n1") == "/nodes//n1"
    assert prefix_for("pods") == "/pods/"
    assert prefix_for("pods", "default") == "/pods/default/"


async def test_wal_and_full_sync(store):
    def pragmas():
        return (store._db.execute("PRAGMA journal_mode").fetchone()[0],
                store._db.execute("PRAGMA synchronous").fetchone()[0])
    mode, sync = await store._run(pragmas)
    assert mode == "wal" and sync == 2  # FULL


async def test_crud(any_store):
    s = any_store
    k = key_for("pods", "default", "web")
    created = await s.create(k, pod("web"))
    md = created["metadata"]
    assert md["resourceVersion"] == "1" and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert await s.get(k) == created
    with pytest.raises(StoreError) as e:
        await s.create(k, pod("web"))
    assert (e.value.reason, e.value.code) == ("AlreadyExists", 409)

    changed = dict(created, spec={"containers": [{"name": "c", "image": "alpine"}]})
    updated = await s.update(k, changed, expect_rv="1")
    assert updated["metadata"]["resourceVersion"] == "2"
    assert updated["metadata"]["uid"] == md["uid"]
    assert updated["metadata"]["creationTimestamp"] == md["creationTimestamp"]
    assert (await s.get(k))["spec"]["containers"][0]["image"] == "alpine"

    gone = await s.delete(k, expect_rv="2")
    assert gone["metadata"]["resourceVersion"] == "3"
    assert gone["spec"]["containers"][0]["image"] == "alpine"
    for op in (s.get(k), s.update(k, pod("web")), s.delete(k)):
        with pytest.raises(StoreError) as e:
            await op
        assert (e.value.reason, e.value.code) == ("NotFound", 404)
    assert await s.current_revision() == 3


async def test_uncached_prefix_is_served_by_the_backend(store):
    cache = WatchCache(store, capacity=50, uncached=("/events/",))
    await store.create(key_for("events", "default", "old"), {"metadata": {"name": "old"}})
    await cache.start()
    try:
        ek, pk = key_for("events", "default", "e1"), key_for("pods", "default", "p")
        it = cache.watch(prefix_for("events"), await cache.current_revision())
        await cache.create(ek, {"metadata": {"name": "e1"}, "reason": "Started"})
        await cache.create(pk, pod("p"))
        assert [k for k in cache._objs] == [pk]            # only the pod is held
        assert (await cache.get(ek))["reason"] == "Started"
        items, _, _ = await cache.list_keyed(prefix_for("events", "default"))
        assert [k for k, _ in items] == [ek, key_for("events", "default", "old")]   # key order
        (ev,) = await next_n(it, 1)
        assert ev[0] == "ADDED" and ev[1]["metadata"]["name"] == "e1"
        await it.aclose()
        # the cache's revision follows the events' writes too (reads of one's own writes)
        assert await cache.current_revision() == await store.current_revision()
    finally:
        await cache.close()


async def test_returned_objects_are_the_callers(any_store):
    s = any_store
    k = key_for("pods", "default", "web")
    obj = pod("web")
    out = await s.create(k, obj)
    assert "resourceVersion" not in obj["metadata"]  # input untouched
    out["spec"]["containers"][0]["image"] = "mutated"
    got = await s.get(k)
    assert got["spec"]["containers"][0]["image"] == "busybox"
    got["spec"]["containers"][0]["image"] = "mutated"
    assert (await s.get(k))["spec"]["containers"][0]["image"] == "busybox"


async def test_global_revision_across_keys(any_store):
    s = any_store
    rvs = []
    for i in range(5):
        rvs.append((await s.create(key_for("pods", "ns%d" % (i % 2), f"p{i}"),
                                   pod(f"p{i}")))["metadata"]["resourceVersion"])
    rvs.append((await s.create(key_for("nodes", None, "n1"),
                               {"kind": "Node", "metadata": {"name": "n1"}}))
               ["metadata"]["resourceVersion"])
    rvs.append((await s.delete(key_for("pods", "ns0", "p0")))["metadata"]["resourceVersion"])
    assert rvs == [str(i) for i in range(1, 8)]
    assert await s.current_revision() == 7


async def test_cas_conflict(any_store):
    s = any_store
    k = key_for("pods", "default", "web")
    v1 = await s.create(k, pod("web"))
    v2 = await s.update(k, v1, expect_rv=v1["metadata"]["resourceVersion"])
    for op in (s.update(k, v1, expect_rv="1"), s.delete(k, expect_rv="1")):
        with pytest.raises(StoreError) as e:
            await op
        assert (e.value.reason, e.value.code) == ("Conflict", 409)
    assert (await s.get(k)) == v2
    # expect_rv=None is unconditional
    v3 = await s.update(k, v1)
    assert v3["metadata"]["resourceVersion"] == "3"


async def test_concurrent_cas_only_one_wins(any_store):
    s = any_store
    k = key_for("pods", "default", "web")
    v1 = await s.create(k, pod("web"))
    results = await asyncio.gather(*(s.update(k, v1, expect_rv="1") for _ in range(10)),
                                   return_exceptions=True)
    ok = [r for r in results if isinstance(r, dict)]
    errs = [r for r in results if isinstance(r, StoreError)]
    assert len(ok) == 1 and len(errs) == 9 and all(e.code == 409 for e in errs)


async def test_list_prefix_limit_continue(any_store):
    s = any_store
    for ns in ("a", "b"):
        for i in range(7):
            await s.create(key_for("pods", ns, f"p{i}"), pod(f"p{i}", ns))
    await s.create(key_for("nodes", None, "n1"), {"kind": "Node", "metadata": {"name": "n1"}})
    # "/pods/a" must not match "/pods/ab..." namespaces: prefixes end with "/"
    await s.create(key_for("pods", "ab", "x"), pod("x", "ab"))

    items, rv, nxt = await s.list(prefix_for("pods", "a"))
    assert [o["metadata"]["name"] for o in items] == [f"p{i}" for i in range(7)]
    assert rv == 16 and nxt is None
    items, _, _ = await s.list(prefix_for("pods"))
    assert len(items) == 15

    pages, token, rvs = [], None, []
    while True:
        items, rv, token = await s.list(prefix_for("pods"), limit=4, continue_token=token)
        pages.append([(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items])
        rvs.append(rv)
        if len(pages) == 1:  # writes between pages: later pages read current data
            await s.create(key_for("pods", "b", "p9"), pod("p9", "b"))       # ahead: seen
            await s.create(key_for("pods", "a", "p00"), pod("p00", "a"))     # behind: not seen
            await s.delete(key_for("pods", "b", "p0"))                       # ahead: skipped
        if token is None:
            break
    flat = [x for p in pages for x in p]
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    assert rvs == [16] * 4  # every page reports the first page's revision
    assert ("b", "p9") in flat and ("a", "p00") not in flat and ("b", "p0") not in flat
    assert flat == sorted(flat, key=lambda t: f"/pods/{t[0]}/{t[1]}")
    assert len(set(flat)) == len(flat)

    items, _, nxt = await s.list(prefix_for("pods", "a"), limit=8)
    assert len(items) == 8 and nxt is None  # exactly the remainder: no empty last page
    with pytest.raises(StoreError) as e:
        await s.list(prefix_for("pods"), continue_token="garbage!")
    assert e.value.code == 400
    _, _, tok = await s.list(prefix_for("pods"), limit=1)
    with pytest.raises(StoreError) as e:
        await s.list(prefix_for("nodes"), continue_token=tok)
    assert e.value.code == 400


async def test_watch_replays_then_streams_live(any_store):
    s = any_store
    k1, k2 = key_for("pods", "default", "a"), key_for("pods", "default", "b")
    await s.create(k1, pod("a"))                               # rev 1
    await s.create(key_for("nodes", None, "n1"), {"metadata": {"name": "n1"}})  # 2, other prefix
    await s.update(k1, pod("a", containers=[]), expect_rv="1")  # 3
    it = s.watch(prefix_for("pods"), 1)
    first = await next_n(it, 1)
    assert [(t, o["metadata"]["name"], r) for t, o, r in first] == [("MODIFIED", "a", 3)]

    async def writer():
        await s.create(k2, pod("b"))     # 4
        await s.delete(k1)               # 5
        await s.create(key_for("nodes", None, "n2"), {"metadata": {"name": "n2"}})  # 6
        await s.update(k2, pod("b", containers=[]))  # 7
    await writer()
    live = await next_n(it, 3)
    assert [(t, o["metadata"]["name"], r) for t, o, r in live] == [
        ("ADDED", "b", 4), ("DELETED", "a", 5), ("MODIFIED", "b", 7)]
    assert live[1][1]["metadata"]["resourceVersion"] == "5"
    await it.aclose()

    # from_rev=None: only what happens from now on
    it = s.watch(prefix_for("pods"))
    t = asyncio.create_task(next_n(it, 1))
    await asyncio.sleep(0.05)
    await s.delete(k2)
    assert [(e[0], e[2]) for e in await t] == [("DELETED", 8)]
    await it.aclose()


async def test_watch_no_gap_under_concurrent_writes(any_store):
    """Watches opened while writes are in flight see every later event exactly once."""
    s = any_store
    n = 40

    async def writes():
        for i in range(n):
            await s.create(key_for("pods", "default", f"p{i}"), pod(f"p{i}"))

    w = asyncio.create_task(writes())
    await asyncio.sleep(0)
    its = []
    for _ in range(5):
        rev = await s.current_revision()
        its.append((rev, s.watch(prefix_for("pods"), rev)))
        await asyncio.sleep(0.002)
    await w
    for rev, it in its:
        got = [e[2] for e in await next_n(it, n - rev)]
        assert got == list(range(rev + 1, n + 1))
        await it.aclose()


async def test_expired_after_compaction(store):
    k = key_for("pods", "default", "a")
    await store.create(k, pod("a"))
    for _ in range(9):
        await store.update(k, pod("a"))
    assert await store.compact(3) == 7
    it = store.watch(prefix_for("pods"), 6)
    with pytest.raises(StoreError) as e:
        await it.__anext__()
    assert (e.value.reason, e.value.code) == ("Expired", 410)
    it = store.watch(prefix_for("pods"), 7)  # the oldest still served
    assert [e[2] for e in await next_n(it, 3)] == [8, 9, 10]
    await it.aclose()
    assert await store.compacted_revision() == 7
    # compaction keeps the objects, only history goes
    assert (await store.get(k))["metadata"]["resourceVersion"] == "10"


async def test_cache_keeps_a_ring_per_resource(store):
    """Leases renewed 100 times a second do not push the pods' history out of the cache."""
    cache = WatchCache(store, capacity=5)
    await cache.start()
    try:
        k = key_for("pods", "default", "a")
        await cache.create(k, pod("a"))                        # rev 1
        await cache.update(k, pod("a"))                        # rev 2
        lk = key_for("leases", "kube-node-lease", "n1")
        await cache.create(lk, {"metadata": {"name": "n1"}})   # rev 3
        for _ in range(20):
            await cache.update(lk, {"metadata": {"name": "n1"}})   # revs 4..23
        it = cache.watch(prefix_for("pods"), 1)
        assert [(e[0], e[2]) for e in await next_n(it, 1)] == [("MODIFIED", 2)]
        await it.aclose()
        with pytest.raises(StoreError) as e:                   # the leases' ring holds 19..23
            await cache.watch(prefix_for("leases"), 10).__anext__()
        assert e.value.code == 410
        with pytest.raises(StoreError):                        # wider than one resource: every ring
            await cache.watch("/", 10).__anext__()
        it = cache.watch("/", 21)
        assert [e[2] for e in await next_n(it, 2)] == [22, 23]
        await it.aclose()
    finally:
        await cache.close()


async def test_cache_expired_beyond_ring(store):
    cache = WatchCache(store, capacity=5)
    await cache.start()
    try:
        k = key_for("pods", "default", "a")
        await cache.create(k, pod("a"))
        for _ in range(9):
            await cache.update(k, pod("a"))  # revs 2..10; ring holds 6..10
        with pytest.raises(StoreError) as e:
            await cache.watch(prefix_for("pods"), 4).__anext__()
        assert e.value.code == 410
        it = cache.watch(prefix_for("pods"), 5)
        assert [e[2] for e in await next_n(it, 5)] == [6, 7, 8, 9, 10]
        await it.aclose()
    finally:
        await cache.close()


async def test_cache_is_equivalent_to_store(store):
    """The cache, started on a non-empty store, then fed writes made directly on the store
    (as another writer would), answers get/list/watch as the store does."""
    for i in range(5):
        await store.create(key_for("pods", "x", f"p{i}"), pod(f"p{i}", "x"))
    cache = WatchCache(store, capacity=100)
    await cache.start()
    try:
        start = await store.current_revision()
        for i in range(30):
            k = key_for("pods", "xy"[i % 2], f"p{i % 9}")
            try:
                await store.create(k, pod(f"p{i % 9}", "xy"[i % 2]))
            except StoreError:
                if i % 3:
                    await store.update(k, pod(f"p{i % 9}", "xy"[i % 2], n=i))
                else:
                    await store.delete(k)
        await store.create(key_for("nodes", None, "n"), {"metadata": {"name": "n"}})
        for prefix in ("/", "/pods/", "/pods/x/", "/pods/y/", "/nodes/", "/none/"):
            assert await cache.list(prefix) == await store.list(prefix)
            for limit in (1, 3, 7):
                a, b, ta, tb = [], [], None, None
                while True:
                    ia, ra, ta = await cache.list(prefix, limit, ta)
                    ib, rb, tb = await store.list(prefix, limit, tb)
                    assert (ia, ra) == (ib, rb) and ta == tb
                    if ta is None:
                        break
        for key in [key_for("pods", n, f"p{i}") for n in "xy" for i in range(9)]:
            try:
                want = await store.get(key)
            except StoreError as e:
                with pytest.raises(StoreError) as e2:
                    await cache.get(key)
                assert e2.value.code == e.code == 404
            else:
                assert await cache.get(key) == want
        end = await store.current_revision()
        assert await cache.current_revision() == end
        for prefix in ("/pods/", "/pods/y/", "/"):
            want = await _drain(store.watch(prefix, start))
            got = await _drain(cache.watch(prefix, start))
            assert got == want and want
        assert (await _drain(store.watch("/", start)))[-1][2] == end
    finally:
        await cache.close()


async def _drain(it, quiet: float = 0.2) -> list:
    """Every event until the watch has been quiet for ``quiet`` seconds."""
    out = []
    try:
        while True:
            out.append(await asyncio.wait_for(it.__anext__(), quiet))
    except asyncio.TimeoutError:
        pass
    await it.aclose()
    return out


async def test_store_reopens_with_its_state(tmp_path):
    path = str(tmp_path / "s.db")
    s = SqliteStore(path)
    await s.create(key_for("pods", "d", "a"), pod("a", "d"))
    await s.create(key_for("pods", "d", "b"), pod("b", "d"))
    await s.delete(key_for("pods", "d", "a"))
    await s.close()
    s = SqliteStore(path)
    try:
        assert await s.current_revision() == 3
        items, rv, _ = await s.list("/pods/")
        assert [o["metadata"]["name"] for o in items] == ["b"] and rv == 3
        it = s.watch("/pods/", 0)
        assert [(e[0], e[2]) for e in await next_n(it, 3)] == [
            ("ADDED", 1), ("ADDED", 2), ("DELETED", 3)]
        await it.aclose()
    finally:
        await s.close()


async def test_close_ends_watches(tmp_path):
    s = SqliteStore(str(tmp_path / "s.db"))
    it = s.watch("/pods/", 0)
    t = asyncio.create_task(it.__anext__())
    await asyncio.sleep(0.05)
    await s.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(t, 5)


async def test_storage_is_abstract():
    with pytest.raises(TypeError):
        Storage()
    assert issubclass(SqliteStore, Storage) and issubclass(WatchCache, Storage)


async def test_write_latency(store, capsys):
    """Not a benchmark gate: records the median per-write latency (fsync per commit)."""
    lat = []
    for i in range(200):
        t = time.perf_counter()
        await store.create(key_for("pods", "default", f"p{i}"), pod(f"p{i}"))
        lat.append(time.perf_counter() - t)
    med = statistics.median(lat)
    with capsys.disabled():
        print(f"\nSqliteStore create: median {med * 1e3:.3f} ms over {len(lat)} writes")
    assert med < 0.05  # generous: fsync cost varies by disk
