"""Small helpers shared by the container integration tests (not a test module)."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import time

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def wait_for(pred, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``pred`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_d(skiff, *args: str) -> str:
    """`skiff run -d ARGS...`; returns the container id."""
    out = skiff.ok("run", "-d", *args).strip()
    assert HEX64.match(out), out
    return out


def inspect(skiff, ref: str) -> dict:
    data = json.loads(skiff.ok("inspect", ref))
    assert len(data) == 1
    return data[0]


def state(skiff, ref: str) -> dict:
    return inspect(skiff, ref)["State"]


def wait_exited(skiff, ref: str, timeout: float = 10.0) -> dict:
    return wait_for(lambda: (lambda s: s if s["Status"] == "exited" else None)(state(skiff, ref)),
                    timeout, what=f"container {ref} to exit")


def logs(skiff, ref: str) -> tuple[str, str]:
    p = skiff("logs", ref)
    assert p.returncode == 0, p.stderr
    return p.stdout, p.stderr


def wait_log(skiff, ref: str, text: str, timeout: float = 10.0) -> str:
    return wait_for(lambda: (lambda o: o if text in o else None)(logs(skiff, ref)[0]), timeout,
                    what=f"{text!r} in the logs of {ref}")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def cgroup_dirs(cid: str) -> list[str]:
    """Every cgroup directory named after ``cid`` anywhere under /sys/fs/cgroup."""
    pats = [f"/sys/fs/cgroup/*/skiff/{cid}", f"/sys/fs/cgroup/skiff/{cid}",
            f"/sys/fs/cgroup/*/*/{cid}", f"/sys/fs/cgroup/*/{cid}"]
    out: set[str] = set()
    for p in pats:
        out.update(glob.glob(p))
    return sorted(out)


def host_mounts_under(path: str) -> list[str]:
    """Lines of this process's mountinfo that mention ``path``."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line]


def container_ids(root: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(root, "containers")))
    except FileNotFoundError:
        return []


def listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def one_error_line(stderr: str) -> str:
    """The single non-empty stderr line, which must start with "Error:"."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    assert lines[0].startswith("Error:"), lines[0]
    return lines[0]
