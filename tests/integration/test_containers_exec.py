"""`skiff exec`: a new process inside a running container's namespaces and cgroup."""

from __future__ import annotations

import os

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import one_error_line, run_d, wait_exited

pytestmark = [needs_root, pytest.mark.root]

NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


@pytest.fixture
def ctr(busybox):
    """A running container: (skiff, id)."""
    return busybox, run_d(busybox, "--pids-limit", "50", "busybox", "sleep", "30")


def test_exec_joins_all_namespaces(ctr):
    skiff, cid = ctr
    script = "for n in " + " ".join(NAMESPACES) + \
        "; do echo $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n); done"
    out = skiff.ok("exec", cid, "sh", "-c", script)
    rows = [ln.split() for ln in out.splitlines()]
    assert [r[0] for r in rows] == list(NAMESPACES), out
    for ns, mine, init in rows:
        assert mine == init, f"{ns}: exec'd process in {mine}, container in {init}"
        assert mine != os.readlink(f"/proc/self/ns/{ns}"), f"{ns} is the host's"
    # PID 1 seen from the exec'd process is the container's command
    assert skiff.ok("exec", cid, "cat", "/proc/1/cmdline").split("\0")[:2] == ["sleep", "30"]


def test_exec_joins_the_cgroup(ctr):
    skiff, cid = ctr
    out = skiff.ok("exec", cid, "sh", "-c", "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup")
    mine, init = out.split("---\n")
    assert sorted(mine.splitlines()) == sorted(init.splitlines())
    assert cid in init, init
    # and the cgroup's limits apply to it
    out = skiff.ok("exec", cid, "sh", "-c", "grep -E 'NoNewPrivs|CapBnd' /proc/self/status")
    assert "00000000a80425fb" in out and "NoNewPrivs:\t1" in out


def test_exec_exit_status_and_streams(ctr):
    skiff, cid = ctr
    p = skiff("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 9")
    assert (p.returncode, p.stdout, p.stderr) == (9, "out\n", "err\n")
    assert skiff("exec", cid, "true").returncode == 0
    assert skiff("exec", cid, "false").returncode == 1


def test_exec_env_user_workdir(ctr):
    skiff, cid = ctr
    out = skiff.ok("exec", "-e", "FOO=bar", cid, "sh", "-c", 'echo "$FOO $HOSTNAME"')
    assert out == f"bar {cid[:12]}\n"
    assert skiff.ok("exec", cid, "sh", "-c", 'echo "[$FOO]"') == "[]\n"
    assert skiff.ok("exec", "-u", "65534", cid, "id", "-u") == "65534\n"
    assert skiff.ok("exec", "-w", "/tmp", cid, "pwd") == "/tmp\n"


def test_exec_stdin(ctr):
    skiff, cid = ctr
    assert skiff.ok("exec", "-i", cid, "cat", input="piped\n") == "piped\n"


def test_exec_starts_with_default_signal_dispositions(ctr):
    skiff, cid = ctr
    out = skiff.ok("exec", cid, "grep", "SigIgn", "/proc/self/status")
    assert out.split() == ["SigIgn:", "0000000000000000"]


def test_exec_missing_command_is_127(ctr):
    skiff, cid = ctr
    p = skiff("exec", cid, "nosuchcmd")
    assert p.returncode == 127
    assert "nosuchcmd" in one_error_line(p.stderr)
    p = skiff("exec", cid, "/etc")
    assert p.returncode == 126


def test_exec_into_a_stopped_container_fails(busybox):
    busybox.ok("run", "--name", "done", "busybox", "true")
    wait_exited(busybox, "done")
    p = busybox("exec", "done", "true")
    assert p.returncode == 125
    assert "not running" in one_error_line(p.stderr)
    p = busybox("exec", "nosuchcontainer", "true")
    assert p.returncode == 125
    assert "No such container" in one_error_line(p.stderr)
