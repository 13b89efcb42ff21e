"""Scheduler throughput: N fake nodes (Node objects only), M pods created through the in-process
LocalClient, bound by skiff's scheduler; prints the binding rate (pods/s).

    .venv/bin/python bench/scheduler_bench.py                 # quick: 100 nodes, 2000 pods
    .venv/bin/python bench/scheduler_bench.py --nodes 1000 --pods 10000     # the goal: >= 1000 pods/s

The pods are created first (the scheduler is not running), then the scheduler starts and the clock
runs from its start (after its informers synced) until the last binding is acknowledged.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from skiff.controller.controlplane import ControlPlane  # noqa: E402
from skiff.controller.scheduler import Scheduler  # noqa: E402


def node_obj(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}


def node_status(cpu: str, mem: str, pods: int) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    res = {"cpu": cpu, "memory": mem, "pods": str(pods)}
    return {"status": {"capacity": res, "allocatable": res,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "skiff agent is posting ready status",
                                       "lastHeartbeatTime": now, "lastTransitionTime": now}]}}


def pod_obj(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "default", "labels": {"app": f"a{i % 10}"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def gather_limited(coros, n=64):
    sem = asyncio.Semaphore(n)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


async def main(args) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("skiff.events").setLevel(logging.ERROR)   # "event queue full" (counted below)
    tmp = tempfile.mkdtemp(prefix="skiff-schedbench-")
    cp = ControlPlane(tmp, listen="127.0.0.1:0", watch_cache_capacity=max(10000, 4 * args.pods))
    await cp.start()
    try:
        c = cp.local_client()
        t0 = time.perf_counter()
        pods_per_node = max(110, 2 * args.pods // args.nodes + 10)
        await gather_limited(c.create("nodes", node_obj(f"n{i:04d}")) for i in range(args.nodes))
        await gather_limited(c.patch("nodes", f"n{i:04d}", node_status("32", "128Gi", pods_per_node),
                                     subresource="status") for i in range(args.nodes))
        t1 = time.perf_counter()
        await gather_limited(c.create("pods", pod_obj(i), "default") for i in range(args.pods))
        t2 = time.perf_counter()
        print(f"setup: {args.nodes} nodes in {t1 - t0:.2f} s, {args.pods} pods in {t2 - t1:.2f} s "
              f"({args.pods / (t2 - t1):.0f} creates/s)")

        sched = Scheduler(c, percentage_of_nodes_to_score=args.percentage)
        await sched.nodes.start()
        await sched.pods.start()
        start = time.perf_counter()
        sched._workers = asyncio.create_task(
            __import__("skiff.controller.workqueue", fromlist=["run_workers"]).run_workers(
                sched.queue, sched.reconcile, 1))
        while sched.bound < args.pods:
            await asyncio.sleep(0.01)
            if time.perf_counter() - start > args.timeout:
                print(f"timeout: {sched.bound}/{args.pods} bound", file=sys.stderr)
                break
        elapsed = time.perf_counter() - start
        rate = sched.bound / elapsed
        # check through the API that every pod is bound, and how they spread
        pods = (await c.list("pods", "default"))["items"]
        per_node = Counter((p.get("spec") or {}).get("nodeName") or "" for p in pods)
        unbound = per_node.pop("", 0)
        dropped = sched.recorder.dropped
        await sched.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"scheduler: {sched.bound} pods bound on {args.nodes} nodes in {elapsed:.2f} s = "
              f"{rate:.0f} pods/s (unbound {unbound}; per node min {min(per_node.values(), default=0)} "
              f"max {max(per_node.values(), default=0)}; process max RSS {rss:.0f} MB; "
              f"events dropped by the recorder's full queue: {dropped})")
        return 0 if unbound == 0 else 1
    finally:
        await cp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--percentage", type=int, default=0,
                    help="percentageOfNodesToScore (0 = adaptive as kube-scheduler, 100 = all)")
    ap.add_argument("--timeout", type=float, default=300)
    sys.exit(asyncio.run(main(ap.parse_args())))
