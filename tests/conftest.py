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


@pytest.fixture
def skiff_root(tmp_path):
    root = str(tmp_path / "root")
    yield root
    cleanup_root(root)


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
    for d in glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}"):
        for sub in sorted((w[0] for w in os.walk(d)), key=len, reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
