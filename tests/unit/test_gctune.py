"""The daemons run with the garbage collector set for a server (skiff.gctune): young
collections spaced out, and what was built at start-up frozen out of later collections."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from skiff import gctune

_SELF_TERM = textwrap.dedent("""
    import asyncio, gc, os, signal
    def term_soon():
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    def report():
        print("threshold", *gc.get_threshold())
        print("frozen", gc.get_freeze_count())
""")


def _run(code: str) -> dict[str, list[int]]:
    out = subprocess.run([sys.executable, "-c", _SELF_TERM + textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {k: [int(x) for x in v] for k, *v in (line.split() for line in out.stdout.splitlines())}


def test_agents_and_hollow_nodes_run_with_the_daemon_collector():
    got = _run("""
        from skiff.cli.agent import run_until_signalled
        async def start():
            term_soon()
        async def stop():
            report()
        run_until_signalled(start, stop)
    """)
    assert got["threshold"] == [gctune.YOUNG, gctune.MIDDLE, gctune.OLD]
    assert got["threshold"][0] > 700 * 10       # far from CPython's default
    assert got["frozen"][0] > 1000              # the modules loaded at start-up


def test_the_controller_runs_with_the_daemon_collector():
    got = _run("""
        import asyncio
        import skiff.controller.controlplane as cp
        class FakePlane:                      # serve()'s side only: no store, no listener
            url = "https://127.0.0.1:1"
            kubeconfig_path = "/dev/null"
            def __init__(self, *a, **kw): pass
            def add_controller(self, c): pass
            async def start(self): term_soon()
            async def stop(self): report()
        cp.ControlPlane = FakePlane
        from skiff.cli.controller import serve
        asyncio.run(serve("/nonexistent", "127.0.0.1:0", "text"))
    """)
    assert got["threshold"] == [gctune.YOUNG, gctune.MIDDLE, gctune.OLD]
    assert got["frozen"][0] > 1000

