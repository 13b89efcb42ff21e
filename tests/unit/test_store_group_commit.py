"""SqliteStore group commit: concurrent writes share one transaction, yet each has its own
revision and compare-and-swap, fails alone, and is acknowledged only once committed."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from skiff.controller.storage import SqliteStore
from skiff.controller.storage.base import StoreError


@pytest.mark.asyncio
async def test_concurrent_writes_each_own_revision_and_cas(tmp_path):
    path = str(tmp_path / "state.db")
    st = SqliteStore(path)
    try:
        base = await st.create("/pods/default/x", {"metadata": {"name": "x"}})
        rv = base["metadata"]["resourceVersion"]
        commits = []
        st._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        ops = [st.create(f"/pods/default/p{i}", {"metadata": {"name": f"p{i}"}}) for i in range(50)]
        ops += [st.update("/pods/default/x", {"metadata": {"name": "x"}, "v": 1}, rv),
                st.update("/pods/default/x", {"metadata": {"name": "x"}, "v": 2}, rv),   # stale: 409
                st.create("/pods/default/p0", {"metadata": {"name": "dup"}}),           # 409 exists
                st.delete("/pods/default/nope")]                                          # 404
        out = await asyncio.gather(*ops, return_exceptions=True)
        ok = [o for o in out if isinstance(o, dict)]
        errs = [o for o in out if isinstance(o, BaseException)]
        assert len(ok) == 51 and len(errs) == 3
        assert sorted(e.reason for e in errs) == ["AlreadyExists", "Conflict", "NotFound"]
        revs = sorted(int(o["metadata"]["resourceVersion"]) for o in ok)
        assert revs == list(range(int(rv) + 1, int(rv) + 52))     # one revision each, no gaps
        assert len(commits) < 51                                  # grouped: fewer commits than writes
        assert (await st.get("/pods/default/x"))["v"] == 1
        assert await st.current_revision() == int(rv) + 51
    finally:
        await st.close()
    # everything acknowledged is on disk
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM objects").fetchone()[0] == 51
    assert db.execute("SELECT max(rev) FROM events").fetchone()[0] == int(rv) + 51
    db.close()


@pytest.mark.asyncio
async def test_failed_write_does_not_spoil_the_group(tmp_path):
    st = SqliteStore(str(tmp_path / "s.db"))
    try:
        await st.create("/a//1", {"metadata": {"name": "1"}})
        out = await asyncio.gather(st.create("/a//1", {"metadata": {"name": "1"}}),
                                   st.create("/a//2", {"metadata": {"name": "2"}}),
                                   return_exceptions=True)
        assert isinstance(out[0], StoreError) and out[0].code == 409
        assert out[1]["metadata"]["resourceVersion"] == "2"
        items, rev, _ = await st.list("/a/")
        assert [i["metadata"]["name"] for i in items] == ["1", "2"] and rev == 2
    finally:
        await st.close()


@pytest.mark.asyncio
async def test_a_group_is_written_in_a_few_statements_whatever_its_size(tmp_path):
    """The group is decided in memory and written with multi-row statements: the statements
    do not grow with the number of writes (each one costs the worker thread a GIL hand-over)."""
    st = SqliteStore(str(tmp_path / "s.db"))
    try:
        await st.create("/pods/default/x", {"metadata": {"name": "x"}})
        stmts = []
        st._db.set_trace_callback(stmts.append)
        ops = [st.create(f"/pods/default/p{i}", {"metadata": {"name": f"p{i}"}}) for i in range(120)]
        ops.append(st.delete("/pods/default/x"))
        out = await asyncio.gather(*ops)
        assert len(out) == 121
        commits = stmts.count("COMMIT")
        assert commits <= 3
        assert len(stmts) <= 12 * commits, stmts
        items, rev, _ = await st.list("/pods/")
        assert len(items) == 120 and "x" not in {i["metadata"]["name"] for i in items}
    finally:
        await st.close()


@pytest.mark.asyncio
async def test_writes_of_one_key_in_one_group_see_each_other(tmp_path):
    """Within a group, each write is checked against the object as the writes before it in
    the group left it: a second create of a key fails, a delete after a create succeeds."""
    st = SqliteStore(str(tmp_path / "s.db"))
    try:
        seen = []
        w = st.watch_keyed("/a/", 0)
        out = await asyncio.gather(st.create("/a/k", {"metadata": {"name": "k"}, "n": 1}),
                                   st.create("/a/k", {"metadata": {"name": "k"}, "n": 2}),
                                   st.delete("/a/k"),
                                   st.create("/a/k", {"metadata": {"name": "k"}, "n": 3}),
                                   return_exceptions=True)
        assert isinstance(out[1], StoreError) and out[1].reason == "AlreadyExists"
        assert out[0]["n"] == 1 and out[2]["n"] == 1 and out[3]["n"] == 3
        assert out[3]["metadata"]["uid"] != out[0]["metadata"]["uid"]
        async for etype, key, obj, rev in w:
            seen.append((etype, obj["n"], rev))
            if len(seen) == 3:
                break
        await w.aclose()
        assert seen == [("ADDED", 1, 1), ("DELETED", 1, 2), ("ADDED", 3, 3)]
        got = await st.get("/a/k")
        assert got["n"] == 3 and got["metadata"]["resourceVersion"] == "3"
    finally:
        await st.close()


def _bump(cur: dict) -> dict:
    if cur.get("stop"):
        raise ValueError("stopped")
    return {**cur, "n": cur.get("n", 0) + 1}


@pytest.mark.asyncio
async def test_update_with_changes_the_stored_object_in_the_group(tmp_path):
    """update_with: 40 concurrent read-change-writes of one key, grouped, lose nothing and
    conflict never (each change sees the one before it in the group); the change's error is
    that write's alone; a missing key is 404. The default (read, then write with its
    resourceVersion, again on conflict) gives the same answer."""
    from skiff.controller.storage.base import Storage, WatchCache

    class Plain(SqliteStore):
        update_with = Storage.update_with

    for cls in (SqliteStore, Plain):
        st = cls(str(tmp_path / f"{cls.__name__}.db"))
        cache = WatchCache(st)
        await cache.start()
        try:
            made = await cache.create("/c//x", {"metadata": {"name": "x"}})
            commits = []
            st._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
            out = await asyncio.gather(*[cache.update_with("/c//x", _bump) for _ in range(40)])
            assert len(set(out)) == 40 and all(isinstance(rv, str) for rv in out)
            got = await cache.get("/c//x")
            assert got["metadata"]["resourceVersion"] == max(out, key=int)
            assert got["n"] == 40 and got["metadata"]["uid"] == made["metadata"]["uid"]
            assert int(got["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
            if cls is SqliteStore:
                assert len(commits) < 40 and await st.current_revision() == 41
            await cache.update("/c//x", {**got, "stop": True})
            with pytest.raises(ValueError, match="stopped"):
                await cache.update_with("/c//x", _bump)
            assert (await cache.get("/c//x"))["n"] == 40
            with pytest.raises(StoreError) as e:
                await cache.update_with("/c//nope", _bump)
            assert e.value.code == 404
        finally:
            await cache.close()
