#!/usr/bin/env python3
"""Container start-up against real peers, in one run (DEVELOPERS.md rule 7).

  1. CLI: whole-process `skiff run --rm --network none IMAGE /bin/true` vs `runc run` on a
     bundle of the same rootfs; medians over N runs, back to back and spaced 100 ms apart
     (the first write into a fresh cgroup can stall for an RCU grace period). Also `skiff --help`.
  2. In process: the library calls create + start + wait (the agent's path) vs `crun run`.
     crun 1.8 refuses this hybrid cgroup host unless hugetlb has its own v1 mount: the
     benchmark mounts it and undoes that at the end.
  3. Bridge networking: `skiff run --rm busybox /bin/true` on the default bridge network
     against the same with --network none (goal: at most 15 ms more).
  4. Memory: peak RSS (VmHWM) of a per-container monitor.

Run as root from the repository:  .venv/bin/python bench/run_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(REPO, ".venv", "bin", "python")
SKIFF = os.path.join(REPO, ".venv", "bin", "skiff")


def timed(argv: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return (time.perf_counter() - t) * 1000


def series(fn, runs: int, spacing: float) -> list[float]:
    out = []
    for _ in range(runs):
        out.append(fn())
        if spacing:
            time.sleep(spacing)
    return out


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):6.1f} ms  (min {min(xs):.1f}, max {max(xs):.1f})"


def make_bundle(tmp: str, rootfs_src: str, runtime: str) -> str:
    bundle = os.path.join(tmp, f"bundle-{runtime}")
    os.makedirs(bundle)
    shutil.copytree(rootfs_src, os.path.join(bundle, "rootfs"), symlinks=True)
    subprocess.run([runtime, "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = False
    # the caller's hard nofile limit here is 20000: do not ask for more
    spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([VENV_PY, "-m", "compileall", "-q", os.path.join(REPO, "skiff")], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    tmp = tempfile.mkdtemp(prefix="skiff-bench-")
    root = os.path.join(tmp, "root")
    hugetlb_mounted = False
    os.makedirs(root)
    bridge = "skb" + os.urandom(4).hex()
    with open(os.path.join(root, "daemon.json"), "w") as f:  # a bridge of the bench's own
        json.dump({"bridge": bridge, "bip": "10.199.%d.1/24" % (os.getpid() % 250)}, f)
    try:
        subprocess.run([SKIFF, "--root", root, "mkimage", "busybox"], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        layer = json.loads(subprocess.run([SKIFF, "--root", root, "inspect", "busybox"], check=True,
                                          capture_output=True, text=True, env=env).stdout)[0]
        layer_dir = layer["GraphDriver"]["Data"]["LowerDir"].split(":")[0]
        if not os.path.isabs(layer_dir):
            layer_dir = os.path.join(root, "layers", layer_dir)
        skiff_run = [SKIFF, "--root", root, "run", "--rm", "--network", "none", "busybox", "/bin/true"]
        runc_bundle = make_bundle(tmp, layer_dir, "runc")
        runc_root = os.path.join(tmp, "runc-state")
        n = [0]

        def runc_once() -> float:
            n[0] += 1
            return timed(["runc", "--root", runc_root, "run", "-b", runc_bundle, f"bench{n[0]}"])

        print(f"== CLI, whole process, {args.runs} runs each ==")
        for label, spacing in (("back to back", 0.0), ("spaced 100 ms", 0.1)):
            for _ in range(3):  # warm up
                timed(skiff_run, env)
                runc_once()
            s = series(lambda: timed(skiff_run, env), args.runs, spacing)
            r = series(runc_once, args.runs, spacing)
            print(f"[{label}] skiff run --rm: {fmt(s)}")
            print(f"[{label}] runc run:       {fmt(r)}")
            print(f"[{label}] ratio skiff/runc: {statistics.median(s) / statistics.median(r):.2f}  (goal <= 2.0)")
        h = series(lambda: timed([SKIFF, "--help"], env), args.runs, 0)
        print(f"skiff --help: {fmt(h)}")

        print(f"\n== In process (library create+start+wait) vs crun run, {args.runs} runs ==")
        if not os.path.ismount("/sys/fs/cgroup/hugetlb") and os.path.isdir("/sys/fs/cgroup/unified"):
            os.makedirs("/sys/fs/cgroup/hugetlb", exist_ok=True)
            subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", "/sys/fs/cgroup/hugetlb"], check=True)
            hugetlb_mounted = True
        crun_bundle = make_bundle(tmp, layer_dir, "crun")
        crun_root = os.path.join(tmp, "crun-state")

        def crun_once() -> float:
            n[0] += 1
            return timed(["crun", "--root", crun_root, "run", "-b", crun_bundle, f"bench{n[0]}"])

        for label, spacing in (("back to back", 0.0), ("spaced 100 ms", 0.1)):
            for _ in range(3):
                crun_once()
            c = series(crun_once, args.runs, spacing)
            lib_times = json.loads(subprocess.run(
                [VENV_PY, os.path.join(REPO, "bench", "lib_run.py"), root, str(args.runs), str(spacing)],
                check=True, capture_output=True, text=True, env=env).stdout)
            print(f"[{label}] skiff library: {fmt(lib_times)}")
            print(f"[{label}] crun run:      {fmt(c)}")
            print(f"[{label}] ratio skiff/crun: {statistics.median(lib_times) / statistics.median(c):.2f}  (goal <= 1.5)")

        print(f"\n== Bridge networking vs none, {args.runs} runs each ==")
        bridge_run = [SKIFF, "--root", root, "run", "--rm", "busybox", "/bin/true"]
        for _ in range(3):
            timed(bridge_run, env)
        for label, spacing in (("back to back", 0.0), ("spaced 100 ms", 0.1)):
            nn = series(lambda: timed(skiff_run, env), args.runs, spacing)
            br = series(lambda: timed(bridge_run, env), args.runs, spacing)
            print(f"[{label}] --network none: {fmt(nn)}")
            print(f"[{label}] bridge:         {fmt(br)}")
            print(f"[{label}] bridge adds {statistics.median(br) - statistics.median(nn):.1f} ms  (goal <= 15)")

        print("\n== Monitor memory ==")
        cid = subprocess.run([SKIFF, "--root", root, "run", "-d", "busybox", "sh", "-c",
                              "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; sleep 30"],
                             check=True, capture_output=True, text=True, env=env).stdout.strip()
        time.sleep(2.0)
        with open(os.path.join(root, "containers", cid, "state.json")) as f:
            mpid = json.load(f)["monitor_pid"]
        with open(f"/proc/{mpid}/status") as f:
            status = {l.split(":")[0]: l.split(":")[1].strip() for l in f}
        print(f"monitor VmHWM (peak RSS) {status['VmHWM']}, VmRSS {status['VmRSS']}  (goal <= 12 MB) "
              f"after logging 20000 lines")
        subprocess.run([SKIFF, "--root", root, "rm", "-f", cid], check=True, stdout=subprocess.DEVNULL, env=env)
    finally:
        subprocess.run([SKIFF, "--root", root, "rm", "-f", *os.listdir(os.path.join(root, "containers"))]
                       if os.path.isdir(os.path.join(root, "containers")) and os.listdir(os.path.join(root, "containers"))
                       else ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        for rt, st in (("runc", os.path.join(tmp, "runc-state")), ("crun", os.path.join(tmp, "crun-state"))):
            if os.path.isdir(st):
                for cid in os.listdir(st):
                    subprocess.run([rt, "--root", st, "delete", "-f", cid], stderr=subprocess.DEVNULL)
        subprocess.run([SKIFF, "--root", root, "network", "rm", "bridge"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        if hugetlb_mounted:
            subprocess.run(["umount", "/sys/fs/cgroup/hugetlb"])
            try:
                os.rmdir("/sys/fs/cgroup/hugetlb")
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
