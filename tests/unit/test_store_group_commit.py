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
