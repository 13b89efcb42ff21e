#!/usr/bin/env python3
"""Per-container bridge-network setup: skiff's hand-rolled rtnl vs pyroute2's IPRoute.

One "setup" is what `skiff run --network bridge` does for a container whose network namespace
already exists: a veth pair with the peer born in the netns as eth0 and the host end on the
bridge (MTU, up), then from inside the netns: the address, lo up, eth0 up, the default route.
Namespace creation and teardown are outside the timed region. pyroute2 is timed with its
import already paid (it is measured separately, in fresh interpreters), in two flavours:
IPRoute(netns=NAME), its documented way into a netns, and IPRoute() opened after a setns
(the trick rtnl uses).

Medians over N runs (default 30), back to back and spaced 100 ms apart. Root only; traffic:
none (configuration only). Everything it creates is named "skb" + hex and removed at the end.

Run from the repository:  .venv/bin/python bench/netlink_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from skiff.runtime.network import bridge  # noqa: E402
from skiff.runtime.network.rtnl import Netlink  # noqa: E402

PREFIX = "skb" + uuid.uuid4().hex[:4]
_n = 0


def uname() -> str:
    global _n
    _n += 1
    return f"{PREFIX}{_n:04x}"   # 11 chars


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class NS:
    def __init__(self):
        self.name = uname()
        ip("netns", "add", self.name)
        self.path = f"/run/netns/{self.name}"
        self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self):
        os.close(self.fd)
        ip("netns", "del", self.name, check=False)


def setup_rtnl(ns: NS, host: str, br_index: int, net: str, i: int) -> None:
    with Netlink() as nl:
        nl.create_veth(host, "eth0", peer_netns_fd=ns.fd, mtu=1500, master_index=br_index,
                       up=True)
    with Netlink(ns.fd) as inner:
        inner.add_address("eth0", f"{net}.{i}/16")
        inner.set_up("lo")
        inner.set_up("eth0")
        inner.add_default_route(f"{net.rsplit('.', 1)[0]}.0.1")


def setup_pyroute2(ns: NS, host: str, br_index: int, net: str, i: int) -> None:
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        ipr.link("add", ifname=host, kind="veth", mtu=1500,
                 peer={"ifname": "eth0", "mtu": 1500, "net_ns_fd": ns.name})
        ipr.link("set", ifname=host, master=br_index, state="up")
    with IPRoute(netns=ns.name) as inner:
        idx = inner.link_lookup(ifname="eth0")[0]
        inner.addr("add", index=idx, address=f"{net}.{i}", prefixlen=16)
        inner.link("set", index=1, state="up")
        inner.link("set", index=idx, state="up")
        inner.route("add", dst="default", gateway=f"{net.rsplit('.', 1)[0]}.0.1")


def setup_pyroute2_setns(ns: NS, host: str, br_index: int, net: str, i: int) -> None:
    from pyroute2 import IPRoute

    from skiff.runtime.kernel import CLONE_NEWNET, kernel
    with IPRoute() as ipr:
        ipr.link("add", ifname=host, kind="veth", mtu=1500,
                 peer={"ifname": "eth0", "mtu": 1500, "net_ns_fd": ns.name})
        ipr.link("set", ifname=host, master=br_index, state="up")
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    kernel.setns(ns.fd, CLONE_NEWNET)
    try:
        inner = IPRoute()
    finally:
        kernel.setns(own, CLONE_NEWNET)
        os.close(own)
    with inner:
        idx = inner.link_lookup(ifname="eth0")[0]
        inner.addr("add", index=idx, address=f"{net}.{i}", prefixlen=16)
        inner.link("set", index=1, state="up")
        inner.link("set", index=idx, state="up")
        inner.route("add", dst="default", gateway=f"{net.rsplit('.', 1)[0]}.0.1")


def series(fn, runs: int, spacing: float, br_index: int, net: str) -> list[float]:
    out = []
    for i in range(runs):
        ns = NS()
        host = uname()
        try:
            if spacing:
                time.sleep(spacing)
            t = time.perf_counter()
            fn(ns, host, br_index, net, 2 + i)
            out.append((time.perf_counter() - t) * 1000)
        finally:
            ip("link", "del", host, check=False)
            ns.close()
    return out


def import_ms(module: str, runs: int) -> float:
    """Median wall time of `python -c 'import MODULE'` minus `python -c pass` (venv python)."""
    def once(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        return (time.perf_counter() - t) * 1000
    base = statistics.median(once("pass") for _ in range(runs))
    mod = statistics.median(once(f"import {module}") for _ in range(runs))
    return mod - base


def importtime_ms(module: str, runs: int) -> float:
    """Median cumulative time of MODULE from -X importtime (it includes the parent packages
    and everything the module pulled in). The wall-clock difference above is within process
    start-up noise for a ~2 ms module."""
    def once() -> int:
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                           capture_output=True, text=True, cwd=REPO, check=True)
        for line in reversed(p.stderr.splitlines()):
            parts = [x.strip() for x in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                return int(parts[1])
        return -1
    return statistics.median(once() for _ in range(runs)) / 1000


COLD = """
import os, sys, time
t = time.perf_counter()
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "rtnl":
    from skiff.runtime.network.rtnl import Netlink
    fd = os.open(sys.argv[3], os.O_RDONLY)
    with Netlink() as nl:
        nl.create_veth(sys.argv[4], "eth0", peer_netns_fd=fd, mtu=1500,
                       master_index=int(sys.argv[5]), up=True)
    with Netlink(fd) as inner:
        inner.add_address("eth0", sys.argv[6] + "/16")
        inner.set_up("lo")
        inner.set_up("eth0")
        inner.add_default_route(sys.argv[7])
else:
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        ipr.link("add", ifname=sys.argv[4], kind="veth", mtu=1500,
                 peer={"ifname": "eth0", "mtu": 1500, "net_ns_fd": sys.argv[3]})
        ipr.link("set", ifname=sys.argv[4], master=int(sys.argv[5]), state="up")
    with IPRoute(netns=os.path.basename(sys.argv[3])) as inner:
        idx = inner.link_lookup(ifname="eth0")[0]
        inner.addr("add", index=idx, address=sys.argv[6], prefixlen=16)
        inner.link("set", index=1, state="up")
        inner.link("set", index=idx, state="up")
        inner.route("add", dst="default", gateway=sys.argv[7])
print((time.perf_counter() - t) * 1000)
"""


def cold(kind: str, runs: int, br_index: int, net: str) -> list[float]:
    """Import + setup in a fresh interpreter each time (what one `skiff run` pays, if
    nothing else imported ctypes or pyroute2 before)."""
    out = []
    for i in range(runs):
        ns = NS()
        host = uname()
        try:
            p = subprocess.run([sys.executable, "-c", COLD, REPO, kind, ns.path, host,
                                str(br_index), f"{net}.{200 + i}", "10.213.0.1"],
                               capture_output=True, text=True, check=True)
            out.append(float(p.stdout))
        finally:
            ip("link", "del", host, check=False)
            ns.close()
    return out


def fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"median {statistics.median(xs):6.2f} ms   min {xs[0]:6.2f}   "
            f"p90 {xs[int(len(xs) * 0.9) - 1]:6.2f}   (n={len(xs)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--import-runs", type=int, default=15)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2

    br = uname()
    net = "10.213.0"
    br_index = bridge.ensure_bridge(br, "10.213.0.1/16")
    try:
        import pyroute2  # noqa: F401  - paid here, outside every timed region
        cases = [("rtnl", setup_rtnl), ("pyroute2 IPRoute(netns=)", setup_pyroute2),
                 ("pyroute2 IPRoute() after setns", setup_pyroute2_setns)]
        for fn in (setup_rtnl, setup_pyroute2, setup_pyroute2_setns):   # warm-up
            series(fn, 2, 0, br_index, net)
        print(f"per-container network setup (veth into netns + addr + lo/eth0 up + default "
              f"route), {args.runs} runs")
        for spacing in (0.0, 0.1):
            print(f"  {'back to back' if not spacing else 'spaced 100 ms'}:")
            for label, fn in cases:
                print(f"    {label:32s} {fmt(series(fn, args.runs, spacing, br_index, net))}")
        print(f"  cold: import + setup in a fresh interpreter, {args.import_runs} runs:")
        for kind in ("rtnl", "pyroute2"):
            print(f"    {kind:32s} {fmt(cold(kind, args.import_runs, br_index, net))}")
    finally:
        bridge.delete_bridge(br)

    print(f"import cost, fresh interpreter ({sys.executable}), median of {args.import_runs}:")
    for module in ("skiff.runtime.network.rtnl", "pyroute2"):
        print(f"    {module:32s} wall {import_ms(module, args.import_runs):7.1f} ms   "
              f"-X importtime {importtime_ms(module, args.import_runs):7.1f} ms")
    left = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left_ns = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    if PREFIX in left or PREFIX in left_ns:
        print("WARNING: left behind:", [x for x in (left + left_ns).split() if PREFIX in x])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
