"""Benchmark `skiff save` / `skiff load` of a ~300 MB single-layer image (run by hand, as root).

    .venv/bin/python bench/archive_bench.py [--mb 300] [--runs 3]

Makes a rootfs of random-ish data files in a temp dir, imports it as one layer,
then times `skiff save -o` (docker and oci), `skiff load -i` into fresh roots,
and `skopeo copy docker-archive:FILE oci:DIR` on the same archive for
comparison. Prints MB/s (archive bytes / wall time). Goal: >= 300 MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(HERE, ".venv", "bin", "python")
if not os.path.exists(PY):
    PY = sys.executable


def skiff(root: str, *args: str) -> str:
    p = subprocess.run([PY, "-m", "skiff", "--root", root, *args], capture_output=True,
                       text=True, cwd=HERE)
    if p.returncode:
        sys.exit(f"skiff {' '.join(args)}: {p.stderr}")
    return p.stdout


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drop_caches() -> None:
    subprocess.run(["sync"])


def make_rootfs(d: str, mb: int) -> None:
    """Files of 8 MB, each a random 64 kB block repeated with a counter (incompressible enough)."""
    os.makedirs(os.path.join(d, "data"))
    block = os.urandom(1 << 16)
    n = max(1, mb // 8)
    for i in range(n):
        with open(os.path.join(d, "data", f"f{i:03d}.bin"), "wb") as f:
            for j in range(128):
                f.write(j.to_bytes(4, "little") + i.to_bytes(4, "little") + block[8:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skiff-archive-bench-", dir="/var/tmp")
    try:
        rootfs = os.path.join(tmp, "rootfs")
        make_rootfs(rootfs, a.mb)
        layer = os.path.join(tmp, "layer.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", layer, "."], check=True)
        root = os.path.join(tmp, "root")
        skiff(root, "import", layer, "bench/big:1")
        print(f"layer: {os.path.getsize(layer) / 1e6:.0f} MB")
        results: dict[str, list[float]] = {}
        for run in range(a.runs):
            for fmt in ("docker", "oci"):
                out = os.path.join(tmp, f"save-{fmt}.tar")
                if os.path.exists(out):
                    os.unlink(out)
                drop_caches()
                t = timed(lambda: skiff(root, "save", "--format", fmt, "-o", out, "bench/big:1"))
                size = os.path.getsize(out) / 1e6
                results.setdefault(f"save {fmt}", []).append(size / t)
                other = os.path.join(tmp, f"load-{fmt}-{run}")
                drop_caches()
                t = timed(lambda: skiff(other, "load", "-q", "-i", out))
                results.setdefault(f"load {fmt}", []).append(size / t)
                shutil.rmtree(other)
            # stdout (pipe) path of save
            t0 = time.perf_counter()
            p = subprocess.Popen([PY, "-m", "skiff", "--root", root, "save", "bench/big:1"],
                                 stdout=subprocess.PIPE, cwd=HERE)
            n = 0
            while True:
                chunk = p.stdout.read(1 << 20)
                if not chunk:
                    break
                n += len(chunk)
            p.wait()
            results.setdefault("save docker | pipe", []).append(n / 1e6 / (time.perf_counter() - t0))
            if shutil.which("skopeo"):
                dest = os.path.join(tmp, f"skopeo-oci-{run}")
                src = os.path.join(tmp, "save-docker.tar")
                t = timed(lambda: subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{src}",
                                                  f"oci:{dest}:x"], check=True))
                results.setdefault("skopeo docker-archive->oci", []).append(
                    os.path.getsize(src) / 1e6 / t)
                shutil.rmtree(dest)
        for k, v in results.items():
            print(f"{k:<28} best {max(v):7.0f} MB/s   median {sorted(v)[len(v) // 2]:7.0f} MB/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
