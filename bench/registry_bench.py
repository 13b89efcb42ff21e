"""Push and pull one ~200 MB random layer against a local CNCF registry: skiff vs skopeo.

Run by hand (as root):  .venv/bin/python bench/registry_bench.py [SIZE_MB]

skiff: `skiff import` a tar of one random file, `skiff push`, then `skiff pull` into a fresh root
(pull includes unpacking the layer into the store). skopeo: `skopeo copy docker://... oci:DIR`
(pull) and `skopeo copy oci:DIR docker://...` to a new repository (push), with its blob-info
cache deleted first so that it uploads the blob.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.integration.registry_fixture import start_registry  # noqa: E402

SKOPEO_CACHE = "/var/lib/containers/cache/blob-info-cache-v1.boltdb"


def timed(argv, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = tempfile.mkdtemp(prefix="skiff-regbench-")
    os.environ["SKIFF_CONFIG"] = os.path.join(work, "cfg")
    reg = start_registry(os.path.join(work, "registry"))
    try:
        rootfs = os.path.join(work, "rootfs")
        os.makedirs(rootfs)
        with open(os.path.join(rootfs, "random.bin"), "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
        tar = os.path.join(work, "layer.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        mb = os.path.getsize(tar) / 1e6
        sk = [sys.executable, "-m", "skiff", "--root"]
        r1, r2 = os.path.join(work, "r1"), os.path.join(work, "r2")
        subprocess.run([*sk, r1, "import", tar, f"{reg.host}/bench/a:1"], check=True, capture_output=True)

        res = {}
        res["skiff push"] = timed([*sk, r1, "push", f"{reg.host}/bench/a:1"])
        oci = os.path.join(work, "oci")
        for f in (SKOPEO_CACHE,):
            if os.path.exists(f):
                os.unlink(f)
        res["skopeo pull"] = timed(["skopeo", "copy", "--src-tls-verify=false",
                                    "--dest-oci-accept-uncompressed-layers",
                                    f"docker://{reg.host}/bench/a:1", f"oci:{oci}"])
        res["skiff pull"] = timed([*sk, r2, "pull", f"{reg.host}/bench/a:1"])
        if os.path.exists(SKOPEO_CACHE):
            os.unlink(SKOPEO_CACHE)
        res["skopeo push"] = timed(["skopeo", "copy", "--dest-tls-verify=false",
                                    f"oci:{oci}", f"docker://{reg.host}/bench/b:1"])
        print(f"layer: {mb:.0f} MB (uncompressed tar)")
        for k, v in res.items():
            print(f"{k:<12} {v:6.2f} s  {mb / v:7.1f} MB/s")
        print(f"push ratio skiff/skopeo: {res['skopeo push'] / res['skiff push']:.2f}x")
        print(f"pull ratio skiff/skopeo: {res['skopeo pull'] / res['skiff pull']:.2f}x "
              "(skiff's pull also unpacks the layer)")
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
