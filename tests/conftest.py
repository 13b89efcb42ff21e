"""Shared fixtures: an isolated skiff root per test, the CLI, and clean-up that always runs."""

from __future__ import annotations

import glob
import os
import signal
import uuid
import subprocess
import sys

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root and real kernel objects")


class Skiff:
    """Runs the real `skiff` CLI against one root directory."""

    def __init__(self, root: str):
        self.root = root
        self.argv = [sys.executable, "-m", "skiff", "--root", root]

    def __call__(self, *args: str, input: str | bytes | None = None, timeout: float = 60,
                 check: bool = False) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        p = subprocess.run([*self.argv, *args], input=input, capture_output=True, text=text,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"skiff {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen([*self.argv, *args], **kw)

    def ok(self, *args: str, **kw) -> str:
        return self(*args, check=True, **kw).stdout


def cleanup_root(root: str) -> None:
    """Kill and remove every container of ``root`` and its cgroups, whatever state it is in."""
    cdir = os.path.join(root, "containers")
    if not os.path.isdir(cdir):
        return
    from skiff.runtime.containers.state import State
    for cid in os.listdir(cdir):
        st = State.load(os.path.join(cdir, cid, "state.json"))
        for pid in (st.monitor_pid, st.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if st.cgroup:
            try:
                from skiff.runtime.containers.cgroups import detect
                detect().load(st.cgroup).destroy()
            except Exception:  # noqa: BLE001 - best effort in a finalizer
                pass
    subprocess.run([sys.executable, "-m", "skiff", "--root", root, "rm", "-f",
                    *os.listdir(cdir)], capture_output=True, timeout=60)
    from skiff.runtime.fsutil import unmount_under
    unmount_under(root)      # a pod's memory-backed emptyDir left by a failed test


def cleanup_networks(root: str) -> None:
    """Delete the bridges and nftables rules of ``root``'s networks, and skiff's table once
    nothing in it is left (other roots, or a user's containers, may still have rules there)."""
    ndir = os.path.join(root, "networks")
    names = os.listdir(ndir) if os.path.isdir(ndir) else []
    if not names:
        return
    import json
    owners = []
    for n in names:
        try:
            with open(os.path.join(ndir, n)) as f:
                net = json.load(f)
        except (OSError, ValueError):
            continue
        owners.append(f"net:{net.get('Id', '')[:12]}")
        if net.get("Bridge"):
            subprocess.run(["ip", "link", "del", net["Bridge"]], capture_output=True)
            # the service table of an agent on this bridge (left when the agent was killed)
            from skiff.agent.serviceproxy import table_name_for
            subprocess.run(["nft", "delete", "table", "ip", table_name_for(net["Bridge"])], capture_output=True)
            from skiff.agent.netpol import table_name_for as policy_table_for    # and its policy table
            subprocess.run(["nft", "delete", "table", "ip", policy_table_for(net["Bridge"])], capture_output=True)
    try:
        from skiff.runtime.network.nft import Nft, SkiffTable
        table = SkiffTable(Nft())
        if table.exists():
            for owner in owners:
                table.remove(owner)
            if not table.rules():
                table.delete_table()
    except Exception:  # noqa: BLE001 - best effort in a finalizer
        pass


def unique_daemon_config(root: str) -> dict:
    """A default bridge of this root's own (name and subnet), so tests never share one."""
    tag = uuid.uuid4().hex
    cfg = {"bridge": "skt" + tag[:8], "bip": f"10.{100 + int(tag[8:10], 16) % 100}.{int(tag[10:12], 16)}.1/24"}
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "daemon.json"), "w") as f:
        import json
        json.dump(cfg, f)
    return cfg


@pytest.fixture
def skiff_root(tmp_path):
    root = str(tmp_path / "root")
    unique_daemon_config(root)
    yield root
    cleanup_root(root)
    cleanup_networks(root)


@pytest.fixture
def skiff_factory(tmp_path):
    """More skiff roots for one test (a pulling side, a loading side), each with its own
    bridge and subnet, all cleaned up like ``skiff_root``."""
    made: list[str] = []

    def make(name: str) -> Skiff:
        root = str(tmp_path / name)
        unique_daemon_config(root)
        made.append(root)
        return Skiff(root)
    yield make
    for root in made:
        cleanup_root(root)
        cleanup_networks(root)


@pytest.fixture
def skiff(skiff_root) -> Skiff:
    return Skiff(skiff_root)


@pytest.fixture
def busybox(skiff) -> Skiff:
    """A skiff CLI whose root has the busybox:latest image."""
    skiff.ok("mkimage", "busybox")
    return skiff


@pytest.fixture
def cg_parent():
    """A unique --cgroup-parent; whatever is left under it is removed at the end."""
    name = "skiff-test-" + uuid.uuid4().hex[:10]
    yield name
    remove_cgroup_tree(name)


def remove_cgroup_tree(name: str) -> None:
    """Remove the cgroup ``name`` (and everything under it) wherever it is mounted."""
    for d in glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}"):
        for sub in sorted((w[0] for w in os.walk(d)), key=len, reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass


def _skiff_links() -> set[str]:
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return set()
    return {n for n in names if n.startswith(("veth", "skt", "sk-", "skiff"))}


def _skiff_tables() -> set[str]:
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return {line.strip() for line in p.stdout.splitlines() if "skiff" in line}


@pytest.fixture(scope="session", autouse=True)
def host_network_left_as_found():
    """The suite leaves the host's network state as it found it: no skiff links, bridges
    or nftables tables that were not there before (veths go with their namespaces, which
    the kernel dismantles in the background: allow it a few seconds)."""
    if os.geteuid() != 0:
        yield
        return
    links, tables = _skiff_links(), _skiff_tables()
    yield
    import time
    deadline = time.monotonic() + 15
    while True:
        extra_links, extra_tables = _skiff_links() - links, _skiff_tables() - tables
        if not extra_links and not extra_tables:
            return
        if time.monotonic() > deadline:
            for name in extra_links:  # clean up, then fail loudly
                subprocess.run(["ip", "link", "del", name], capture_output=True)
            for t in extra_tables:
                subprocess.run(["nft", "delete", *t.split()], capture_output=True)
            raise AssertionError(f"the tests left network state behind: links {sorted(extra_links)}, "
                                 f"nftables {sorted(extra_tables)}")
        time.sleep(0.1)
