"""A container's life is its monitor's, not the CLI's; names and ids stay unique under load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import (HEX64, cgroup_dirs, cmdline, container_ids, inspect,
                                           listdir, one_error_line, pid_alive,
                                           run_d, state, wait_for)

pytestmark = [needs_root, pytest.mark.root]


def _state_json(root: str, cid: str) -> dict:
    with open(os.path.join(root, "containers", cid, "state.json")) as f:
        return json.load(f)


def test_container_outlives_the_cli(busybox):
    cli = busybox.popen("run", "--name", "fg", "busybox", "sleep", "30",
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: busybox.ok("ps", "-q").strip(), 10, what="the container in ps")
        pid = state(busybox, "fg")["Pid"]
        assert pid_alive(pid)
        cli.send_signal(signal.SIGKILL)
        assert cli.wait(timeout=10) == -signal.SIGKILL
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    time.sleep(0.2)  # a container dying with the CLI would be gone by now
    st = state(busybox, "fg")
    assert st["Running"] is True and st["Status"] == "running"
    assert pid_alive(pid) and cmdline(pid) == ["sleep", "30"]
    assert "fg" in busybox.ok("ps")
    # and it can still be stopped normally
    busybox.ok("kill", "fg")
    wait_for(lambda: not pid_alive(pid), 5, what="the container to die")


def test_killed_monitor_takes_the_container_with_it(busybox):
    cid = run_d(busybox, "--pids-limit", "20", "busybox", "sleep", "30")
    raw = _state_json(busybox.root, cid)
    monitor, pid = raw["monitor_pid"], raw["pid"]
    assert monitor and pid and monitor != pid
    assert pid_alive(monitor) and pid_alive(pid)
    assert cgroup_dirs(cid)
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 5, what="the container's process to die")
    ps = busybox.ok("ps", "-a")
    row = next(ln for ln in ps.splitlines() if ln.startswith(cid[:12]))
    assert "Exited" in row and "Up" not in row
    assert busybox.ok("ps", "-q") == ""
    st = state(busybox, cid)
    assert st["Running"] is False and st["Status"] == "exited"
    assert st["Pid"] == 0
    assert cgroup_dirs(cid) == []  # what the monitor would have removed is removed
    busybox.ok("rm", cid)
    assert container_ids(busybox.root) == []


def test_twenty_parallel_detached_runs(busybox):
    procs = [busybox.popen("run", "-d", "busybox", "sleep", "30", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(20)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=60)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(rc == 0 for rc, _, _ in results), [e for rc, _, e in results if rc]
    ids = [out.strip() for _, out, _ in results]
    assert all(HEX64.match(i) for i in ids), ids
    assert len(set(ids)) == 20
    assert sorted(container_ids(busybox.root)) == sorted(ids)
    assert sorted(busybox.ok("ps", "-q", "--no-trunc").split()) == sorted(ids)
    names = busybox.ok("inspect", "-f", "{{.Name}}", *ids).split()
    assert len(names) == 20 and len(set(names)) == 20, names
    assert sorted(listdir(os.path.join(busybox.root, "names"))) == sorted(n.lstrip("/") for n in names)
    pids = [s["Pid"] for s in (state(busybox, i) for i in ids)]
    assert len(set(pids)) == 20 and all(pid_alive(p) for p in pids)


def test_name_taken_twice(busybox):
    first = run_d(busybox, "--name", "x1", "busybox", "sleep", "30")
    p = busybox("run", "-d", "--name", "x1", "busybox", "sleep", "30")
    assert p.returncode == 125
    line = one_error_line(p.stderr)
    assert "already in use" in line and "x1" in line
    assert p.stdout == ""
    assert container_ids(busybox.root) == [first]
    with open(os.path.join(busybox.root, "names", "x1")) as f:
        assert f.read().strip() == first
    # an exited container keeps its name too
    busybox.ok("kill", "x1")
    p = busybox("run", "--name", "x1", "busybox", "true")
    assert p.returncode == 125 and "already in use" in p.stderr
    assert container_ids(busybox.root) == [first]
    assert inspect(busybox, "x1")["Id"] == first
    # and once removed, the name is free again
    busybox.ok("rm", "x1")
    second = run_d(busybox, "--name", "x1", "busybox", "sleep", "30")
    assert second != first and inspect(busybox, "x1")["Id"] == second
