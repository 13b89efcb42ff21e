"""json-file logs: streams, the file format, --tail, -t, rotation, and -f across rotations."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import inspect, run_d, wait_exited, wait_for

pytestmark = [needs_root, pytest.mark.root]

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def _log_path(skiff, ref: str) -> str:
    return os.path.join(skiff.root, "containers", inspect(skiff, ref)["Id"], "log")


def _entries(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_logs_keep_stdout_and_stderr_apart(busybox):
    busybox.ok("run", "--name", "lg", "busybox", "sh", "-c", "echo o1; echo e1 >&2; echo o2")
    p = busybox("logs", "lg")
    assert p.returncode == 0
    assert p.stdout == "o1\no2\n"
    assert p.stderr == "e1\n"


def test_log_file_is_json_lines(busybox):
    busybox.ok("run", "--name", "js", "busybox", "sh", "-c", "echo hello; echo oops >&2")
    entries = _entries(_log_path(busybox, "js"))
    assert all(set(e) == {"log", "stream", "time"} for e in entries), entries
    assert all(RFC3339.match(e["time"]) for e in entries), entries
    assert sorted((e["stream"], e["log"]) for e in entries) == [("stderr", "oops\n"),
                                                               ("stdout", "hello\n")]


def test_logs_tail(busybox):
    busybox.ok("run", "--name", "tl", "busybox", "seq", "1", "5")
    assert busybox.ok("logs", "--tail", "2", "tl") == "4\n5\n"
    assert busybox.ok("logs", "-n", "1", "tl") == "5\n"
    assert busybox.ok("logs", "--tail", "0", "tl") == ""
    assert busybox.ok("logs", "--tail", "all", "tl") == "1\n2\n3\n4\n5\n"


def test_logs_timestamps(busybox):
    busybox.ok("run", "--name", "ts", "busybox", "sh", "-c", "echo a; echo b")
    lines = busybox.ok("logs", "-t", "ts").splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, ("a", "b")):
        stamp, _, rest = line.partition(" ")
        assert RFC3339.match(stamp), line
        assert rest == text
    assert busybox.ok("logs", "ts") == "a\nb\n"


def test_rotation_keeps_max_file_files_of_max_size(busybox):
    busybox.ok("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
               "busybox", "seq", "1", "2000")
    path = _log_path(busybox, "rot")
    files = [path, path + ".1", path + ".2"]
    for f in files:
        assert os.path.isfile(f), f
    assert not os.path.exists(path + ".3")
    longest = 0
    seq: list[int] = []
    for f in reversed(files):  # oldest first
        size = os.path.getsize(f)
        with open(f, "rb") as fh:
            lines = fh.read().splitlines(keepends=True)
        longest = max([longest, *map(len, lines)])
        assert size <= 1024 + longest, (f, size)
        if f != path:
            assert size > 512, (f, size)  # rotated ones were filled, not rotated early
        seq += [int(json.loads(line)["log"]) for line in lines]
    assert seq == list(range(seq[0], 2001)), "the kept files are not one contiguous tail"
    out = [int(x) for x in busybox.ok("logs", "rot").split()]
    assert out == seq


def test_follow_across_rotations(busybox):
    n = 100
    script = f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line-$i; sleep 0.02; done"
    cid = run_d(busybox, "--log-opt", "max-size=1k", "--log-opt", "max-file=5", "busybox",
                "sh", "-c", script)
    follower = busybox.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    st = wait_exited(busybox, cid)
    assert st["ExitCode"] == 0
    got = out.split()
    assert got == [f"line-{i}" for i in range(1, n + 1)], got
    path = os.path.join(busybox.root, "containers", cid, "log")
    assert os.path.exists(path + ".3"), "the log did not rotate several times"


def test_follow_waits_for_new_lines_and_exits_with_the_container(busybox):
    # the pause after /tmp/go appears: the exec'd `touch` must be gone before the container
    # exits, or the PID namespace's end kills it (137), as in docker
    cid = run_d(busybox, "busybox", "sh", "-c",
                "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; sleep 0.3; echo second")
    follower = busybox.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        os.set_blocking(follower.stdout.fileno(), False)
        buf = b""

        def read_some():
            nonlocal buf
            try:
                buf += follower.stdout.read() or b""
            except BlockingIOError:
                pass
            return buf

        wait_for(lambda: b"first\n" in read_some(), 10, what="the first line")
        assert follower.poll() is None, "logs -f exited while the container runs"
        busybox.ok("exec", cid, "touch", "/tmp/go")
        wait_for(lambda: follower.poll() is not None, 10, what="logs -f to exit")
        read_some()
        assert buf == b"first\nsecond\n"
        assert follower.returncode == 0
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
