"""An acknowledged write survives kill -9: a child makes 1000 creates, printing each
acknowledged key and resourceVersion; the parent SIGKILLs it after ~500 acks, reopens the
store and finds every acknowledged write with its resourceVersion."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from skiff.controller.storage import SqliteStore, key_for

CHILD = r"""
import asyncio, statistics, sys, time
from skiff.controller.storage import SqliteStore, key_for

async def main(path):
    s = SqliteStore(path)
    lat = []
    for i in range(1000):
        k = key_for("pods", "default", "p%04d" % i)
        t = time.perf_counter()
        o = await s.create(k, {"kind": "Pod", "metadata": {"name": "p%04d" % i},
                               "spec": {"i": i}})
        lat.append(time.perf_counter() - t)
        sys.stdout.write("%s %s\n" % (k, o["metadata"]["resourceVersion"]))
        sys.stdout.flush()
    sys.stdout.write("median %f\n" % statistics.median(lat))
    sys.stdout.flush()
    await asyncio.sleep(60)

asyncio.run(main(sys.argv[1]))
"""


def test_acknowledged_writes_survive_kill_9(tmp_path):
    path = str(tmp_path / "state.db")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE,
                             text=True, env=env)
    acked: dict[str, str] = {}
    deadline = time.monotonic() + 8
    try:
        for line in child.stdout:
            key, rv = line.split()
            acked[key] = rv
            if len(acked) >= 500 or time.monotonic() > deadline:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 500, f"only {len(acked)} acks before the deadline"

    async def check():
        s = SqliteStore(path)
        try:
            last = max(int(rv) for rv in acked.values())
            rev = await s.current_revision()
            assert rev >= last
            items, list_rv, _ = await s.list_keyed("/pods/")
            stored = {k: o for k, o in items}
            for key, rv in acked.items():
                assert key in stored, f"acknowledged {key} lost"
                assert stored[key]["metadata"]["resourceVersion"] == rv
                assert stored[key]["spec"]["i"] == int(key[-4:])
            # consistent: the revision is exactly the number of writes (all creates), at
            # most one unacknowledged write beyond the acks, and history matches objects
            assert list_rv == rev == len(stored)
            assert rev - len(acked) <= 1
            assert sorted(int(o["metadata"]["resourceVersion"]) for o in stored.values()) \
                == list(range(1, rev + 1))
            it = s.watch("/pods/", 0)
            events = [await it.__anext__() for _ in range(rev)]
            await it.aclose()
            assert [(t, r) for t, _, r in events] == [("ADDED", r) for r in range(1, rev + 1)]
            # and the store still takes writes after the crash
            o = await s.create(key_for("pods", "default", "after"), {"metadata": {}})
            assert o["metadata"]["resourceVersion"] == str(rev + 1)
        finally:
            await s.close()

    asyncio.run(check())
