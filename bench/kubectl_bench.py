"""kubectl against skiff: read latency with 1000 pods in the store, and the API's latency for
mutating calls under 100 requests/s of churn.

    .venv/bin/python bench/kubectl_bench.py                     # 1000 pods, 30 runs, 20 s of churn
    .venv/bin/python bench/kubectl_bench.py --pods 1000 --runs 30 --churn-seconds 20 --rate 100

A real `skiff controller` process (HTTPS, its own data dir; no agents: the pods stay Pending,
which is all a LIST needs). Measured, p50/p99 each:
- `kubectl get pods` as a whole process (warm discovery cache, server-side Table), and
  `skiffctl get pods` beside it (same output, our own client);
- a server-side LIST from the official Python client (`kubernetes.client.CoreV1Api.
  list_namespaced_pod`), and the same LIST asking for a Table;
- mutating calls (create, merge patch, delete of pods, in turn) sent open-loop at --rate per
  second for --churn-seconds: each call's latency from its scheduled start (so a stall counts
  for every call it delays). Goal: p99 <= 50 ms (the Kubernetes SLO is 1 s).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.scale_bench import free_port, proc_status  # noqa: E402
from skiff.api.client import HTTPClient  # noqa: E402

PY = sys.executable
SKIFFCTL = os.path.join(os.path.dirname(PY), "skiffctl")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def line(what: str, xs: list[float]) -> str:
    return (f"{what:<44} n={len(xs):<5} p50 {pct(xs, 50) * 1000:7.1f} ms   p99 {pct(xs, 99) * 1000:7.1f} ms"
            f"   max {max(xs) * 1000:7.1f} ms")


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "ports": [{"containerPort": 80}],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def fill(client: HTTPClient, n: int, concurrency: int = 32) -> float:
    t0 = time.monotonic()
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await client.create("pods", pod(f"load-{i:05d}"), "default")
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.monotonic() - t0


def timed_process(argv: list[str], env: dict, runs: int, expect_lines: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {p.stderr}")
        got = len(p.stdout.splitlines())
        if got < expect_lines:
            raise SystemExit(f"{argv[0]} printed {got} lines, want {expect_lines}")
        out.append(dt)
    return out


def python_client_lists(kubeconfig: str, runs: int, n: int) -> tuple[list[float], list[float]]:
    from kubernetes import client, config
    api_client = config.new_client_from_config(config_file=kubeconfig)
    v1 = client.CoreV1Api(api_client)
    plain, table = [], []
    v1.list_namespaced_pod("default")  # connection and first-use costs out of the figures
    for _ in range(runs):
        t0 = time.monotonic()
        lst = v1.list_namespaced_pod("default")
        plain.append(time.monotonic() - t0)
        assert len(lst.items) >= n, len(lst.items)
    cfg = api_client.configuration
    hdr = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
           "Authorization": cfg.auth_settings()["BearerToken"]["value"]}
    url = cfg.host + "/api/v1/namespaces/default/pods"
    for _ in range(runs):
        t0 = time.monotonic()
        resp = api_client.rest_client.request("GET", url, headers=hdr)
        body = resp.read()
        table.append(time.monotonic() - t0)
        assert len(body) > 1000
    api_client.close()
    return plain, table


async def churn(client: HTTPClient, rate: float, seconds: float) -> tuple[dict[str, list[float]], int]:
    """Open loop: call i starts at t0 + i/rate, whatever happened to the calls before it."""
    lat: dict[str, list[float]] = {"create": [], "patch": [], "delete": []}
    errors = 0
    reasons: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    total = int(rate * seconds)
    live: list[str] = []
    tasks = []

    async def call(kind: str, at: float, coro_fn) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, at - loop.time()))
        try:
            await coro_fn()
        except Exception as e:  # noqa: BLE001 - counted, by kind and reason
            errors += 1
            why = f"{kind}: {getattr(e, 'reason', '') or type(e).__name__}"
            reasons[why] = reasons.get(why, 0) + 1
            return
        lat[kind].append(loop.time() - at)

    seq = 0
    for i in range(total):
        at = t0 + i / rate
        step = i % 3
        if step == 0 or len(live) < 8:  # patch and delete only pods created well before
            name = f"churn-{seq:06d}"
            seq += 1
            live.append(name)
            tasks.append(asyncio.create_task(call("create", at, lambda n=name: client.create(
                "pods", pod(n), "default"))))
        elif step == 1:
            name = live[len(live) // 2]
            tasks.append(asyncio.create_task(call("patch", at + 0.0, lambda n=name, i=i: client.patch(
                "pods", n, {"metadata": {"labels": {"step": str(i)}}}, "default"))))
        else:
            name = live.pop(0)
            tasks.append(asyncio.create_task(call("delete", at, lambda n=name: client.delete(
                "pods", n, "default", grace_period_seconds=0))))
    await asyncio.gather(*tasks)
    return lat, errors, reasons


async def main_async(args) -> None:
    work = tempfile.mkdtemp(prefix="skiff-kubectl-bench-")
    data = os.path.join(work, "controller")
    port = free_port()
    log = open(os.path.join(work, "controller.log"), "ab")
    ctl = subprocess.Popen([PY, "-m", "skiff", "controller", "--data-dir", data, "--listen",
                            f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        kubeconfig = os.path.join(data, "kubeconfig")
        ca = os.path.join(data, "pki", "ca.crt")
        deadline = time.monotonic() + 30
        while not (os.path.exists(kubeconfig) and os.path.exists(ca)):
            if ctl.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("controller did not start")
            await asyncio.sleep(0.1)
        client = HTTPClient.from_kubeconfig(kubeconfig, timeout=60)
        for _ in range(100):
            try:
                await client.list("namespaces")
                break
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.1)
        try:
            await run_measurements(args, client, ctl, work, kubeconfig)
        finally:
            await client.close()
    finally:
        ctl.terminate()
        try:
            ctl.wait(15)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.wait()
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


async def run_measurements(args, client, ctl, work, kubeconfig) -> None:
    if True:
        took = await fill(client, args.pods)
        print(f"{args.pods} pods created in {took:.1f} s ({args.pods / took:.0f}/s)")
        home = os.path.join(work, "home")
        os.makedirs(home)
        env = dict(os.environ, HOME=home, KUBECONFIG=kubeconfig)
        subprocess.run(["kubectl", "get", "pods"], env=env, capture_output=True, timeout=60)  # warm cache
        kube = timed_process(["kubectl", "get", "pods"], env, args.runs, args.pods + 1)
        ours = timed_process([SKIFFCTL, "get", "pods"], env, args.runs, args.pods + 1)
        plain, table = await asyncio.get_running_loop().run_in_executor(
            None, python_client_lists, kubeconfig, args.runs, args.pods)
        print(line("kubectl get pods (whole process)", kube))
        print(line("skiffctl get pods (whole process)", ours))
        print(f"{'':44} ratio kubectl/skiffctl p50: {pct(kube, 50) / pct(ours, 50):.2f}")
        print(line("python client list_namespaced_pod", plain))
        print(line("python client LIST as Table", table))
        before = proc_status(ctl.pid)
        lat, errors, reasons = await churn(client, args.rate, args.churn_seconds)
        after = proc_status(ctl.pid)
        every = [x for xs in lat.values() for x in xs]
        for k, xs in lat.items():
            print(line(f"mutating {k} at {args.rate:.0f}/s churn", xs))
        print(line(f"mutating, all, at {args.rate:.0f}/s churn", every))
        cpu = after.get("cpu", 0) - before.get("cpu", 0)
        print(f"errors {errors} {reasons or ''}; controller CPU {cpu:.1f} s over {args.churn_seconds:.0f} s "
              f"({cpu / args.churn_seconds * 100:.0f}% of a core); RSS {after.get('VmRSS', 0) / 2**20:.0f} MB")
        verdict = "meets" if pct(every, 99) <= 0.050 else "MISSES"
        print(f"goal: mutating p99 <= 50 ms -> {verdict} ({pct(every, 99) * 1000:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--churn-seconds", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
