#!/usr/bin/env python3
"""Pod start-up latency on a 3-host cluster (run by hand, as root).

A controller and 3 agents, each in its own network namespace (tests/e2e/cluster.py), all on
this machine. 100 busybox `sleep` pods are created one by one at a steady rate through the
API; a watch (opened before the first create) records when each pod is first reported
Running. Latency = Running seen on the watch - the moment the create was acknowledged
(creationTimestamp has only one-second resolution, so the client's clock is used; both
ends are measured by the same process). Prints p50/p99/max and the RSS of the controller
and of each agent.

    .venv/bin/python bench/pod_latency_bench.py [--pods 100] [--rate 10]

Goal (issue 5): p99 <= 300 ms per pod in steady state.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402

# Runs inside the controller's namespace: creates the pods at a steady rate and watches.
DRIVER = textwrap.dedent("""
    import asyncio, json, sys, time
    from skiff.api.client import HTTPClient

    async def main(kubeconfig, n, rate):
        c = HTTPClient.from_kubeconfig(kubeconfig)
        created, running = {}, {}
        lst = await c.list("pods", "default")
        rv = lst["metadata"]["resourceVersion"]
        done = asyncio.Event()

        async def watch():
            async for etype, obj in c.watch("pods", "default", resource_version=rv):
                name = obj["metadata"]["name"]
                if obj.get("status", {}).get("phase") == "Running" and name not in running:
                    running[name] = time.monotonic()
                    if len(running) == n:
                        done.set()
                        return
        w = asyncio.create_task(watch())
        for i in range(n):
            t0 = time.monotonic()
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{i}"},
                   "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                       {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}
            await c.create("pods", pod, "default")
            created[f"bench-{i}"] = time.monotonic()
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
        await asyncio.wait_for(done.wait(), 120)
        w.cancel()
        lat = sorted((running[k] - created[k]) * 1000 for k in created)
        print(json.dumps(lat))
        await c.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
""")


def rss_kb(pid: int) -> int:
    """The RSS of a process and its children (the `ip netns exec` wrapper execs, so pid is python)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``: p99 of 100 values is the 99th."""
    import math
    k = max(0, min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1))
    return values[k]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0, help="pods created per second")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        tmp = os.environ.get("BENCH_KEEP") or tmp
        c = Cluster(tmp, n_hosts=3, lease_duration=10, lease_grace=40)
        try:
            c.start_with_agents("--log-format", "text")

            def ready():
                items = c.get_json("nodes")["items"]
                return len([n for n in items if n.get("spec", {}).get("podCIDR")]) == 3
            wait_for(ready, 60, what="3 nodes")
            # warm up: one pod per host (the first container start pays the imports)
            warm = subprocess.run(c.controller.exec(sys.executable, "-c", DRIVER, c.kubeconfig, "3", "5"),
                                  capture_output=True, text=True, cwd=REPO)
            if warm.returncode != 0:
                raise SystemExit(warm.stderr)
            c.ctl("delete", "pods", "bench-0", "bench-1", "bench-2", "--wait=true", timeout=120)
            p = subprocess.run(c.controller.exec(sys.executable, "-c", DRIVER, c.kubeconfig,
                                                 str(args.pods), str(args.rate)),
                               capture_output=True, text=True, cwd=REPO)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
            lat = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"{args.pods} pods at {args.rate}/s onto 3 agents: creation acknowledged -> Running on a watch")
            print(f"  p50 {statistics.median(lat):.1f} ms   p99 {pct(lat, 99):.1f} ms   "
                  f"max {max(lat):.1f} ms   (goal: p99 <= 300 ms)")
            print(f"  p90 {pct(lat, 90):.1f} ms; slowest five: " + ", ".join(f"{x:.0f}" for x in lat[-5:]))
            print(f"  controller RSS {rss_kb(c.controller.proc.pid) / 1024:.1f} MB; agents RSS " +
                  ", ".join(f"{rss_kb(h.proc.pid) / 1024:.1f} MB" for h in c.hosts))
        finally:
            c.close()


if __name__ == "__main__":
    main()
