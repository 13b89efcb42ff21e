"""Scale by simulation (like kubemark): a real `skiff controller` process, N hollow nodes in a few
`skiff hollow` processes (the real agent over the fake runtime), M pods created through the API.

    .venv/bin/python bench/scale_bench.py --quick                  # 100 nodes, 2000 pods
    .venv/bin/python bench/scale_bench.py                          # 1000 nodes, 10 000 pods
    .venv/bin/python bench/scale_bench.py --nodes 1000 --pods 10000 --hollow-procs 4 [--deployment]

Measured (watching every pod from the bench process):
- binding rate: pods bound / (last binding - first binding), and the creation rate beside it
  (the scheduler cannot bind faster than pods are created; both are printed), and the most pods
  created and not yet bound at one moment (the scheduler's queue);
- --backlog: the scheduler's own throughput, as scheduler_perf measures it: every pod pending
  first (its claim does not exist yet), then the claim is made and the rate of the bindings;
- time from the first create until all pods are Running (reported by their hollow agents);
- the controller's peak RSS (VmHWM) and its CPU seconds (utime + stime) over the run;
- then the pods are deleted and the time until all are gone.
Each pod gets its ServiceAccount's token as in Kubernetes (the hollow agent requests it, bound to
the pod, and reads the kube-root-ca.crt ConfigMap); --no-token turns that off.
Each hollow process's nodes send their requests over a pool of --hollow-connections (32)
keep-alive connections, and each node's watch has its own, as a kubelet has one connection
for everything; without the cap (0) bursts grew the pools to ~1000 connections the API server
kept, and their handshakes and memory took from the binding rate.
Goals: >= 1000 pods/s binding, controller RSS <= 300 MB.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from skiff.api.client import HTTPClient  # noqa: E402
from skiff.api.errors import APIError  # noqa: E402

PY = sys.executable
ANCHORS = ("anchors: ClusterLoader2 gate 400 pods/s; scheduler_perf ~900 pods/s at 500 nodes; "
           "k0s controller 2.3 GB at 100 nodes / 10k pods")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0]) * 1024
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        out["cpu"] = (int(parts[11]) + int(parts[12])) / tck
    except OSError:
        pass
    return out


AUTOMOUNT: dict = {}    # --no-token: {"automountServiceAccountToken": False}
GATE = "scale-gate"     # --backlog: the claim every pod uses, made only once all of them are pending
HOLD: dict = {}         # --backlog: {"volumes": [the claim]}


def pod_obj(i: int, prefix: str = "scale") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{prefix}-{i}", "namespace": "default", "labels": {"app": "scale"}},
            "spec": {"terminationGracePeriodSeconds": 0, **AUTOMOUNT, **HOLD,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}


STARTED: list = []      # every Cluster made, stopped by main() however the run ends


class Cluster:
    def __init__(self, workdir: str, nodes: int, procs: int, lease: int = 40, keep_logs: bool = False,
                 connections: int = 32):
        STARTED.append(self)
        self.workdir, self.nodes, self.procs, self.lease = workdir, nodes, procs, lease
        self.connections = connections      # each hollow process's pool for its nodes' requests
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = os.path.join(workdir, "controller", "pki", "ca.crt")
        self.controller: subprocess.Popen | None = None
        self.hollows: list[subprocess.Popen] = []
        self.token = ""

    def start_controller(self, extra=(), tracemalloc_out: str = "") -> None:
        data = os.path.join(self.workdir, "controller")
        log = open(os.path.join(self.workdir, "controller.log"), "ab")
        argv = ["controller", "--data-dir", data, "--listen", f"127.0.0.1:{self.port}", *extra]
        if tracemalloc_out:
            pre = ""
            if tracemalloc_out:   # SIGUSR1 appends the top allocation sites to this file
                pre += ("import tracemalloc, signal, os\ntracemalloc.start(int(os.environ.get('TMDEPTH', '8')))\n"
                        "def _dump(*_):\n"
                        f"    with open({tracemalloc_out!r}, 'a') as f:\n"
                        "        snap = tracemalloc.take_snapshot()\n"
                        "        f.write('=== total %.1f MB\\n' % (sum(s.size for s in snap.statistics('filename')) / 2**20))\n"
                        "        for s in snap.statistics('traceback')[:25]:\n"
                        "            f.write('%.1f MB %d blocks\\n' % (s.size / 2**20, s.count))\n"
                        "            f.write('\\n'.join('    ' + l for l in s.traceback.format()[-16:]) + '\\n')\n"
                        "signal.signal(signal.SIGUSR1, _dump)\n")
            launcher = (pre + f"import sys, runpy\nsys.argv = ['skiff'] + {argv!r}\n"
                        "runpy.run_module('skiff', run_name='__main__')\n")
            cmd = [PY, "-c", launcher]
        else:
            cmd = [PY, "-m", "skiff", *argv]
        self.controller = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                import ssl
                ctx = ssl.create_default_context(cafile=self.ca_file)
                if urllib.request.urlopen(self.url + "/healthz", timeout=1, context=ctx).read() == b"ok":
                    break
            except OSError:
                pass
            if self.controller.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("controller did not start:\n" + self.tail("controller.log"))
            time.sleep(0.1)
        import yaml
        with open(os.path.join(data, "kubeconfig")) as f:
            self.token = yaml.safe_load(f)["users"][0]["user"]["token"]

    def start_hollows(self) -> None:
        per = [self.nodes // self.procs + (1 if i < self.nodes % self.procs else 0) for i in range(self.procs)]
        for i, n in enumerate(per):
            if not n:
                continue
            log = open(os.path.join(self.workdir, f"hollow-{i}.log"), "ab")
            self.hollows.append(subprocess.Popen(
                [PY, "-m", "skiff", "hollow", "--server", self.url, "--token", self.token, "--ca-file", self.ca_file,
                 "--nodes", str(n), "--prefix", f"hollow-{i}-", "--lease-duration", str(self.lease),
                 "--log-port", "-1", "--connections", str(self.connections)],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
            log.close()

    def tail(self, name: str, n: int = 40) -> str:
        try:
            with open(os.path.join(self.workdir, name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        for p in self.hollows + ([self.controller] if self.controller else []):
            if p.poll() is None:
                p.terminate()
        for p in self.hollows + ([self.controller] if self.controller else []):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def wait_nodes_ready(client: HTTPClient, n: int, timeout: float, cluster: Cluster) -> float:
    t0 = time.monotonic()
    while True:
        lst = await client.list("nodes")
        ready = sum(1 for nd in lst["items"]
                    if any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (nd.get("status") or {}).get("conditions") or [])
                    and (nd.get("spec") or {}).get("podCIDR"))
        if ready >= n:
            return time.monotonic() - t0
        for p in cluster.hollows:
            if p.poll() is not None:
                raise SystemExit("a hollow process died:\n" + cluster.tail("hollow-0.log"))
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"only {ready}/{n} nodes Ready after {timeout} s")
        await asyncio.sleep(0.5)


class PodWatch:
    """Every pod's first binding time and first Running time, from one watch."""

    def __init__(self, client: HTTPClient, prefix: str):
        self.client, self.prefix = client, prefix
        self.seen: dict[str, float] = {}        # the first event of each pod (its creation)
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.node_of: dict[str, str] = {}
        self.gone: dict[str, float] = {}
        self.unschedulable: set[str] = set()    # pods the scheduler has marked PodScheduled=False
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def run(self, rv: str) -> None:
        while True:
            try:
                async for etype, obj in self.client.watch("pods", "default", resource_version=rv,
                                                          bookmarks=True):
                    md = obj.get("metadata") or {}
                    rv = md.get("resourceVersion") or rv
                    name = md.get("name", "")
                    if etype == "BOOKMARK" or not name.startswith(self.prefix):
                        continue
                    now = time.monotonic()
                    self.seen.setdefault(name, now)
                    if etype == "DELETED":
                        self.gone.setdefault(name, now)
                    node = (obj.get("spec") or {}).get("nodeName")
                    if node and name not in self.bound:
                        self.bound[name] = now
                        self.node_of[name] = node
                    status = obj.get("status") or {}
                    if status.get("phase") == "Running" and name not in self.running:
                        self.running[name] = now
                    if not node and any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                                        for c in status.get("conditions") or ()):
                        self.unschedulable.add(name)
                    self.changed.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                print(f"  (bench watch broke: {e}; resuming)", file=sys.stderr)
                await asyncio.sleep(0.2)

    async def wait(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass
        return True


async def create_all(client: HTTPClient, objs: list[dict], concurrency: int) -> tuple[float, float]:
    q = list(reversed(objs))
    t0 = time.monotonic()

    async def worker():
        while q:
            obj = q.pop()
            for attempt in range(20):
                try:
                    await client.create("pods", obj, "default")
                    break
                except APIError as e:
                    if e.code == 409:
                        break
                    await asyncio.sleep(0.2 * (attempt + 1))
                except Exception:  # noqa: BLE001 - timeouts under load: retry
                    await asyncio.sleep(0.2 * (attempt + 1))
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return t0, time.monotonic()


async def run(args) -> int:
    workdir = tempfile.mkdtemp(prefix="skiff-scale-")
    cl = Cluster(workdir, args.nodes, args.hollow_procs, connections=args.hollow_connections)
    results: dict = {"nodes": args.nodes, "pods": args.pods, "hollow_procs": args.hollow_procs,
                     "hollow_connections": args.hollow_connections}
    try:
        t_start = time.monotonic()
        # 1000 nodes need more than 10.244.0.0/16's 256 /24 blocks
        cl.start_controller(["--cluster-cidr", "10.64.0.0/10", "--node-cidr-mask-size", "25"],
                            tracemalloc_out=args.tracemalloc)
        cpid = cl.controller.pid
        cpu0 = proc_status(cpid).get("cpu", 0.0)
        client = HTTPClient(cl.url, cl.token, ca_file=cl.ca_file, timeout=120, connection_limit=args.concurrency + 8)
        cl.start_hollows()
        t_nodes = await wait_nodes_ready(client, args.nodes, args.node_timeout, cl)
        results["nodes_ready_s"] = round(t_nodes, 1)
        st = proc_status(cpid)
        results["rss_after_nodes_mb"] = round(st.get("VmRSS", 0) / 2 ** 20, 1)
        try:
            results["controller_fds"] = len(os.listdir(f"/proc/{cpid}/fd"))
        except OSError:
            pass
        print(f"{args.nodes} hollow nodes Ready in {t_nodes:.1f} s (controller RSS "
              f"{results['rss_after_nodes_mb']} MB, {results.get('controller_fds')} open fds)", flush=True)
        prefix = "scale-deploy-" if args.deployment else "scale-"
        lst = await client.list("pods", "default", limit=1)
        watch = PodWatch(client, prefix)
        watch.task = asyncio.create_task(watch.run(lst["metadata"]["resourceVersion"]))
        if args.service:    # a Service in front of them all: the endpoints controllers' share
            await client.create("services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "scale", "namespace": "default"},
                "spec": {"selector": {"app": "scale-deploy" if args.deployment else "scale"},
                         "ports": [{"port": 80, "targetPort": 8080}]}}, "default")
        if args.backlog:    # the volume the pods' claim will be bound to (hostPath: no node affinity)
            await client.create("persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": GATE},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": os.path.join(workdir, "gate"), "type": "DirectoryOrCreate"}}})
        cpu1 = proc_status(cpid).get("cpu", 0.0)
        objs = [pod_obj(i, "scale") for i in range(args.pods)]
        # --backlog: created pods wait as unschedulable; otherwise they are bound as they come
        created = ((lambda: len(watch.unschedulable) >= args.pods) if args.backlog
                   else (lambda: len(watch.bound) >= args.pods))
        if args.deployment:   # one Deployment of --pods replicas: ReplicaSet controller creates them
            tmpl = {"metadata": {"labels": {"app": "scale-deploy"}}, "spec": pod_obj(0, "x")["spec"]}
            c0 = time.monotonic()
            await client.create("deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "scale-deploy", "namespace": "default"},
                "spec": {"replicas": args.pods, "selector": {"matchLabels": {"app": "scale-deploy"}},
                         "template": tmpl}}, "default")
            await watch.wait(created, args.timeout)
            c1 = time.monotonic()
        else:
            c0, c1 = await create_all(client, objs, args.concurrency)
        results["create_s"] = round(c1 - c0, 2)
        results["create_rate"] = round(args.pods / max(c1 - c0, 1e-9), 1)
        print(f"created {args.pods} pods in {c1 - c0:.1f} s ({results['create_rate']} pods/s)", flush=True)
        if args.backlog:
            # the scheduler's own throughput, as scheduler_perf measures it: every pod is pending
            # (the claim it uses does not exist yet) and has been looked at once; then the claim
            # is made, bound to a volume any node can use, and the scheduler binds every pod
            await watch.wait(created, args.timeout)
            print(f"{len(watch.unschedulable)} pods pending (unschedulable); making their claim", flush=True)
            c0 = time.monotonic()   # the times below count from here
            await client.create("persistentvolumeclaims", {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": GATE},
                "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": GATE,
                         "resources": {"requests": {"storage": "1Gi"}}}}, "default")
        ok = await watch.wait(lambda: len(watch.bound) >= args.pods, args.timeout)
        if not ok:
            print(f"  only {len(watch.bound)} pods bound after {args.timeout} s", flush=True)
        bt = sorted(watch.bound.values())
        if bt:
            span = max(bt[-1] - bt[0], 1e-9)
            results["bind_rate"] = round(len(bt) / span, 1)
            results["bind_rate_from_first_create"] = round(len(bt) / max(bt[-1] - c0, 1e-9), 1)
            results["all_bound_s"] = round(bt[-1] - c0, 2)
            # the scheduler's sustained rate: the best 1-second... 5-second windows
            best = 0.0
            j = 0
            for i in range(len(bt)):
                while bt[i] - bt[j] > 5.0:
                    j += 1
                best = max(best, (i - j + 1) / 5.0)
            results["bind_rate_best_5s"] = round(best * 5.0 / min(5.0, span), 1)
            # pods bound in each second from the first binding (where the rate dips, and when)
            each = [0] * (int(span) + 1)
            for t in bt:
                each[int(t - bt[0])] += 1
            results["bound_each_s"] = each
            # the scheduler's queue: the most pods created and not yet bound at one moment
            steps = sorted([(t, 1) for t in watch.seen.values()] + [(t, -1) for t in bt])
            waiting = peak = 0
            for _t, d in steps:
                waiting += d
                peak = max(peak, waiting)
            results["unbound_max"] = peak
        ok = await watch.wait(lambda: len(watch.running) >= args.pods, args.timeout)
        rt = sorted(watch.running.values())
        if rt:
            results["all_running_s"] = round(rt[-1] - c0, 2) if ok else None
            results["running"] = len(rt)
        results["controller_rss_running_mb"] = round(proc_status(cpid).get("VmRSS", 0) / 2 ** 20, 1)
        if args.tracemalloc:
            os.kill(cpid, signal.SIGUSR1)
        nodes_used = len(set(watch.node_of.values()))
        results["nodes_used"] = nodes_used
        st = proc_status(cpid)
        results["controller_cpu_s_pods"] = round(st.get("cpu", 0) - cpu1, 1)
        print(f"bound {len(bt)} (rate {results.get('bind_rate')} pods/s), Running {len(rt)} "
              f"after {results.get('all_running_s')} s, on {nodes_used} nodes", flush=True)
        if not args.keep and args.deployment:
            d0 = time.monotonic()
            await client.delete("deployments", "scale-deploy", "default")
            ok = await watch.wait(lambda: len(watch.gone) >= args.pods, args.timeout)
            results["all_deleted_s"] = round(time.monotonic() - d0, 2) if ok else None
            results["deleted"] = len(watch.gone)
        elif not args.keep:
            d0 = time.monotonic()
            await client.request("DELETE", "/api/v1/namespaces/default/pods",
                                 params={"labelSelector": "app=scale"}) if args.delete_collection else None  # noqa
            if not args.delete_collection:
                names = [o["metadata"]["name"] for o in objs]

                async def deleter():
                    while names:
                        n = names.pop()
                        try:
                            await client.delete("pods", n, "default")
                        except Exception:  # noqa: BLE001
                            pass
                await asyncio.gather(*(deleter() for _ in range(args.concurrency)))
            ok = await watch.wait(lambda: len(watch.gone) >= args.pods, args.timeout)
            results["all_deleted_s"] = round(time.monotonic() - d0, 2) if ok else None
            results["deleted"] = len(watch.gone)
        st = proc_status(cpid)
        if args.tracemalloc:
            os.kill(cpid, signal.SIGUSR1)
            time.sleep(3)
        results["controller_vmhwm_mb"] = round(st.get("VmHWM", 0) / 2 ** 20, 1)
        results["controller_rss_mb"] = round(st.get("VmRSS", 0) / 2 ** 20, 1)
        results["controller_cpu_s_total"] = round(st.get("cpu", 0) - cpu0, 1)
        results["wall_s"] = round(time.monotonic() - t_start, 1)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        results["bench_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 1)     # this process: creates, the watch
        results["hollow_cpu_s"] = round(sum(proc_status(p.pid).get("cpu", 0.0) for p in cl.hollows), 1)
        watch.task.cancel()
        await client.close()
    finally:
        cl.stop()
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept: {workdir}")
    print(json.dumps(results, indent=1))
    rate = results.get("bind_rate") or 0
    hwm = results.get("controller_vmhwm_mb") or 0
    if args.backlog:
        print(f"\nbinding rate from a backlog of {args.pods} pending pods (the scheduler's throughput) {rate} "
              f"pods/s (best 5 s window {results.get('bind_rate_best_5s')}) -- goal >= 1000: "
              f"{'MET' if rate >= 1000 else 'NOT MET'}")
    else:   # the scheduler binds them as they come: this is the rate of the whole pipeline
        print(f"\nbinding rate {rate} pods/s (best 5 s window {results.get('bind_rate_best_5s')}), pods created "
              f"at {results.get('create_rate')} pods/s; at most {results.get('unbound_max')} pods waited for "
              f"the scheduler at once -- goal >= 1000: {'MET' if rate >= 1000 else 'NOT MET'} in this mode, "
              f"where the creation rate bounds it; --backlog measures the scheduler's own throughput")
    print(f"all {args.pods} Running after {results.get('all_running_s')} s from the "
          f"{'making of the claim' if args.backlog else 'first create'}")
    print(f"controller peak RSS (VmHWM) {hwm} MB -- goal <= 300 MB: {'MET' if hwm and hwm <= 300 else 'NOT MET'}; "
          f"controller CPU {results.get('controller_cpu_s_total')} s")
    print(ANCHORS)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--hollow-procs", type=int, default=0, help="default: one per 250 nodes")
    ap.add_argument("--hollow-connections", type=int, default=32,
                    help="each hollow process's connections for its nodes' requests (0: no cap)")
    ap.add_argument("--quick", action="store_true", help="100 nodes, 2000 pods")
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent creates")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--node-timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="do not delete the pods at the end")
    ap.add_argument("--keep-dir", action="store_true", help="keep the work dir (logs)")
    ap.add_argument("--delete-collection", action="store_true")
    ap.add_argument("--tracemalloc", default="", metavar="FILE",
                    help="trace the controller's allocations; the top sites once all pods run go to FILE")
    ap.add_argument("--service", action="store_true",
                    help="put one Service (selecting every pod) in front of them first")
    ap.add_argument("--deployment", action="store_true",
                    help="create the pods through one Deployment (replicas = --pods)")
    ap.add_argument("--backlog", action="store_true",
                    help="the scheduler's throughput from a backlog (scheduler_perf's measure): the pods are "
                         "created pending (the claim they use does not exist yet), then the claim is made")
    ap.add_argument("--no-token", action="store_true",
                    help="pods with automountServiceAccountToken: false (no token request, no CA ConfigMap "
                         "read per pod by the agents: the figures of the sessions before pods had tokens)")
    args = ap.parse_args()
    if args.backlog:
        HOLD["volumes"] = [{"name": "gate", "persistentVolumeClaim": {"claimName": GATE}}]
    if args.no_token:
        AUTOMOUNT["automountServiceAccountToken"] = False
    if args.quick:
        args.nodes, args.pods = 100, 2000
    if not args.hollow_procs:
        args.hollow_procs = max(1, min(8, (args.nodes + 249) // 250))
    # a SIGTERM (timeout(1), a CI's kill) ends the run as Ctrl-C does, and the controller and the
    # hollow processes are stopped with it: they had been left running, on the other core
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return asyncio.run(run(args))
    finally:
        for cl in STARTED:
            cl.stop()


if __name__ == "__main__":
    sys.exit(main())
