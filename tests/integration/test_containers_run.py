"""`skiff run` and the verbs around a container's life: ps, inspect, stop, kill, rm.

Every test works in its own skiff root (fixtures), whose containers conftest removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import (HEX64, cmdline, container_ids, inspect, listdir,
                                           logs, pid_alive, run_d, state, wait_exited, wait_for,
                                           wait_log)

pytestmark = [needs_root, pytest.mark.root]

NULL_TIME = "0001-01-01T00:00:00Z"


def test_foreground_streams_and_exit_status(busybox):
    p = busybox("run", "--rm", "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3")
    assert p.returncode == 3
    assert p.stdout == "out1\nout2\n"
    assert p.stderr == "err1\n"
    p = busybox("run", "--rm", "busybox", "sh", "-c", "exit 42")
    assert p.returncode == 42
    p = busybox("run", "--rm", "busybox", "true")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")


def test_large_streams_arrive_intact(busybox):
    data = os.urandom(2 << 20)
    p = busybox("run", "--rm", "-i", "busybox", "md5sum", input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == hashlib.md5(data).hexdigest().encode()
    p = busybox("run", "--rm", "busybox", "sh", "-c", "seq 1 50000; seq 1 20000 >&2")
    assert p.returncode == 0
    assert p.stdout == "".join(f"{i}\n" for i in range(1, 50001))
    assert p.stderr == "".join(f"{i}\n" for i in range(1, 20001))


def test_unknown_image_is_125_one_line(skiff):
    p = skiff("run", "--rm", "nosuchimage:1.0", "true")
    assert p.returncode == 125
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Unable to find image" in lines[0]
    assert "nosuchimage:1.0" in lines[0]
    assert p.stdout == ""


def test_not_executable_is_126(busybox):
    p = busybox("run", "busybox", "/etc")
    assert p.returncode == 126, p.stderr
    assert "/etc" in p.stderr
    assert container_ids(busybox.root) == []


def test_not_found_is_127(busybox):
    p = busybox("run", "busybox", "nosuchcmd")
    assert p.returncode == 127, p.stderr
    assert "nosuchcmd" in p.stderr
    assert container_ids(busybox.root) == []


def test_detach_prints_id_returns_fast_and_keeps_running(busybox):
    t0 = time.monotonic()
    p = busybox("run", "-d", "busybox", "sleep", "30")
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    assert HEX64.match(cid), p.stdout
    assert p.stdout == cid + "\n"
    assert elapsed < 5, f"run -d took {elapsed:.1f}s"
    ps = busybox.ok("ps")
    assert cid[:12] in ps
    assert "Up " in ps
    assert busybox.ok("ps", "-q").split() == [cid[:12]]
    pid = state(busybox, cid)["Pid"]
    assert pid > 0 and pid_alive(pid)
    assert cmdline(pid) == ["sleep", "30"]


def test_rm_flag_removes_container_after_exit(busybox):
    p = busybox("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "echo bye")
    assert p.returncode == 0 and p.stdout == "bye\n"
    assert busybox.ok("ps", "-a", "-q") == ""
    assert container_ids(busybox.root) == []
    assert listdir(os.path.join(busybox.root, "names")) == []
    # a detached --rm container goes away by itself once it exits
    cid = run_d(busybox, "--rm", "busybox", "sleep", "0.2")
    wait_for(lambda: cid not in container_ids(busybox.root), 10, what="--rm -d removal")
    assert busybox.ok("ps", "-a", "-q") == ""


def test_env(busybox):
    out = busybox.ok("run", "--rm", "-e", "K=V", "--env", "A=b c", "busybox",
                     "sh", "-c", 'echo "$K|$A"')
    assert out == "V|b c\n"
    assert busybox.ok("run", "--rm", "busybox", "sh", "-c", 'echo "[$K]"') == "[]\n"


def test_workdir(busybox):
    assert busybox.ok("run", "--rm", "-w", "/tmp/wd", "busybox", "pwd") == "/tmp/wd\n"
    assert busybox.ok("run", "--rm", "busybox", "pwd") == "/\n"


def test_user(busybox):
    out = busybox.ok("run", "--rm", "-u", "65534:65534", "busybox", "id")
    assert out.startswith("uid=65534")
    assert "gid=65534" in out
    assert busybox.ok("run", "--rm", "busybox", "id", "-u") == "0\n"


def test_hostname(busybox):
    assert busybox.ok("run", "--rm", "-h", "myhost", "busybox", "hostname") == "myhost\n"
    assert busybox.ok("run", "--rm", "--hostname", "other", "busybox", "cat",
                      "/etc/hostname") == "other\n"


def test_name(busybox):
    cid = run_d(busybox, "--name", "web", "busybox", "sleep", "30")
    info = inspect(busybox, "web")
    assert info["Id"] == cid
    assert info["Name"] == "/web"
    assert busybox.ok("ps").splitlines()[1].split()[-1] == "web"


def test_interactive_stdin(busybox):
    p = busybox("run", "--rm", "-i", "busybox", "cat", input="hi\nthere\n")
    assert (p.returncode, p.stdout) == (0, "hi\nthere\n"), p.stderr
    # without -i the container's stdin is empty
    p = busybox("run", "--rm", "busybox", "cat", input="hi\n")
    assert (p.returncode, p.stdout) == (0, "")


def test_refer_by_name_full_id_and_prefix(busybox):
    cid = run_d(busybox, "--name", "byname", "busybox", "sleep", "30")
    for ref in ("byname", cid, cid[:12], cid[:5]):
        assert busybox.ok("inspect", "-f", "{{.Id}}", ref).strip() == cid, ref
    p = busybox("inspect", "--type", "container", "nosuchname")
    assert p.returncode != 0
    assert "No such container" in p.stderr


def test_ps_all_quiet(busybox):
    running = run_d(busybox, "busybox", "sleep", "30")
    busybox.ok("run", "--name", "done", "busybox", "true")
    done = inspect(busybox, "done")["Id"]
    assert busybox.ok("ps", "-q").split() == [running[:12]]
    assert sorted(busybox.ok("ps", "-a", "-q").split()) == sorted([running[:12], done[:12]])
    assert sorted(busybox.ok("ps", "-a", "-q", "--no-trunc").split()) == sorted([running, done])
    table = busybox.ok("ps", "-a")
    assert "Exited (0)" in table and "done" in table


def test_inspect_fields(busybox):
    cid = run_d(busybox, "--name", "insp", "-m", "64m", "busybox", "sleep", "30")
    info = inspect(busybox, "insp")
    assert info["Id"] == cid
    assert info["Name"] == "/insp"
    st = info["State"]
    assert st["Status"] == "running" and st["Running"] is True
    assert st["Pid"] > 0 and cmdline(st["Pid"]) == ["sleep", "30"]
    assert st["ExitCode"] == 0
    assert st["StartedAt"] != NULL_TIME and st["StartedAt"].endswith("Z")
    assert st["FinishedAt"] == NULL_TIME
    assert info["Config"]["Cmd"] == ["sleep", "30"]
    assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
    out = busybox.ok("inspect", "-f", "{{.State.Status}} {{json .Config.Cmd}}", "insp")
    assert out == 'running ["sleep","30"]\n'

    busybox.ok("kill", "insp")
    st = wait_exited(busybox, "insp")
    assert st["Running"] is False
    assert st["Pid"] == 0
    assert st["ExitCode"] == 137
    assert st["FinishedAt"] != NULL_TIME
    assert st["FinishedAt"] >= st["StartedAt"]
    assert busybox.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid) == "exited 137\n"


def test_stop_trapped_term_exits_fast_with_own_code(busybox):
    cid = run_d(busybox, "busybox", "sh", "-c",
                'trap "echo got-term; exit 7" TERM; echo ready; sleep 100 & wait')
    wait_log(busybox, cid, "ready")
    t0 = time.monotonic()
    p = busybox("stop", "-t", "4", cid)  # a grace period well above what a handled TERM needs
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == cid
    assert elapsed < 3, f"stop took {elapsed:.1f}s for a container that handles TERM"
    st = state(busybox, cid)
    assert (st["Status"], st["ExitCode"]) == ("exited", 7)
    assert "got-term" in logs(busybox, cid)[0]


def test_container_starts_with_default_signal_dispositions(busybox):
    """Nothing the monitor (or Python) ignores may leak into the container: a shell cannot
    trap a signal that was ignored when it started, and SIGPIPE must kill writers."""
    out = busybox.ok("run", "--rm", "busybox", "grep", "SigIgn", "/proc/self/status")
    assert out.split() == ["SigIgn:", "0000000000000000"]


def test_stop_kills_after_timeout_when_term_ignored(busybox):
    cid = run_d(busybox, "busybox", "sh", "-c", "sleep 100")
    t0 = time.monotonic()
    p = busybox("stop", "-t", "1", cid)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert 0.9 <= elapsed < 5, f"stop -t 1 took {elapsed:.2f}s"
    st = state(busybox, cid)
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 137, False)


def test_kill_with_signal_is_delivered(busybox):
    cid = run_d(busybox, "busybox", "sh", "-c",
                "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 1 & wait $!; done")
    wait_log(busybox, cid, "ready")
    busybox.ok("kill", "-s", "USR1", cid)
    wait_log(busybox, cid, "got-usr1", timeout=5)
    assert state(busybox, cid)["Running"] is True  # a handled USR1 does not stop it
    busybox.ok("kill", "-s", "SIGUSR1", cid)
    wait_for(lambda: logs(busybox, cid)[0].count("got-usr1") == 2, 5, what="second USR1")


def test_rm_running_refused_without_force(busybox):
    cid = run_d(busybox, "--name", "busy", "busybox", "sleep", "30")
    pid = state(busybox, cid)["Pid"]
    p = busybox("rm", "busy")
    assert p.returncode != 0
    assert "running" in p.stderr
    assert cid in container_ids(busybox.root)
    assert state(busybox, cid)["Running"] is True and pid_alive(pid)

    p = busybox("rm", "-f", "busy")
    assert p.returncode == 0, p.stderr
    assert busybox.ok("ps", "-a", "-q") == ""
    assert container_ids(busybox.root) == []
    assert listdir(os.path.join(busybox.root, "names")) == []
    wait_for(lambda: not pid_alive(pid), 5, what="the container's process to die")


def test_rm_stopped_container(busybox):
    busybox.ok("run", "--name", "fin", "busybox", "true")
    assert len(container_ids(busybox.root)) == 1
    assert busybox.ok("rm", "fin").strip() == "fin"
    assert container_ids(busybox.root) == []
    p = busybox("inspect", "fin")
    assert p.returncode != 0 and json.loads(p.stdout or "[]") == []
