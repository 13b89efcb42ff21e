"""The API server's CPU per request, by kind: a real `skiff controller` over HTTPS (keep-alive,
32 requests in flight), N requests of each kind, the controller's CPU seconds (utime + stime,
from /proc) divided by N. What the scale bench's per-pod cost is made of.

    .venv/bin/python bench/request_cost.py [--n 6000] [--profile create|patch|event|get]

--profile records the controller with py-spy (.venv/bin/py-spy) during that phase, in raw
format, to request_cost.<kind>.raw in the current directory.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale_bench import REPO, Cluster, pod_obj, proc_status  # noqa: E402

sys.path.insert(0, REPO)
from skiff.api.client import HTTPClient  # noqa: E402


def event(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"scale-{i}.{i:x}", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": f"scale-{i}", "apiVersion": "v1",
                               "fieldPath": "spec.containers{c}"},
            "reason": "Started", "message": "Started container c", "type": "Normal", "count": 1,
            "source": {"component": "kubelet", "host": "nowhere"}, "firstTimestamp": "2026-11-28T10:00:00Z",
            "lastTimestamp": "2026-11-28T10:00:00Z", "reportingComponent": "kubelet", "reportingInstance": "nowhere"}


async def measure(c: Cluster, n: int, profile: str) -> None:
    cl = HTTPClient(c.url, token=c.token, ca_file=c.ca_file)
    pid = c.controller.pid

    def pod(i):
        p = pod_obj(i)
        p["spec"]["nodeName"] = "nowhere"   # no scheduling: the request alone
        return p
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    phases = [
        ("create", "pod create", lambda i: cl.create("pods", pod(i), "default")),
        ("patch", "pod status patch", lambda i: cl.patch("pods", f"scale-{i}", status, "default",
                                                         subresource="status", patch_type="merge")),
        ("event", "event create", lambda i: cl.create("events", event(i), "default")),
        ("get", "pod get", lambda i: cl.get("pods", f"scale-{i}", "default")),
    ]
    try:
        for key, name, call in phases:
            sem = asyncio.Semaphore(32)

            async def one(i):
                async with sem:
                    await call(i)
            await asyncio.sleep(1)
            spy = None
            if profile == key:
                spy = subprocess.Popen([os.path.join(REPO, ".venv", "bin", "py-spy"), "record", "-p", str(pid),
                                        "-d", "600", "--format", "raw", "-o", f"request_cost.{key}.raw", "-r", "200"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1)
            c0, t0 = proc_status(pid)["cpu"], time.monotonic()
            await asyncio.gather(*(one(i) for i in range(n)))
            dt, c1 = time.monotonic() - t0, proc_status(pid)["cpu"]
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            print(f"{name:18s} {n / dt:7.0f}/s   controller CPU {1000 * (c1 - c0) / n:.3f} ms a request")
    finally:
        await cl.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--profile", choices=("create", "patch", "event", "get"), default="")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="skiff-reqcost-")
    c = Cluster(d, 0, 1)
    try:
        c.start_controller()
        asyncio.run(measure(c, args.n, args.profile))
    finally:
        if c.controller is not None:
            c.controller.terminate()
            c.controller.wait()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
