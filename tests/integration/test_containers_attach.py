"""skiff attach: a later client joins a running container's stdin and output through its
monitor's attach socket; the container outlives the client; only -i/-t containers listen."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.timeout(60)]


def _session(skiff, name: str, line: bytes) -> bytes:
    """One attach: send a line, read the answer, leave (killing the client)."""
    p = skiff.popen("attach", name, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(line)
        p.stdin.close()      # our EOF: the container's stdin stays open (not a foreground run)
        return p.stdout.readline()
    finally:
        p.kill()
        p.wait(timeout=10)
        p.stdout.close()
        p.stderr.close()


def test_attach_sends_stdin_and_shows_output(busybox):
    cid = busybox.ok("run", "-d", "-i", "--name", "att", "busybox", "sh", "-c",
                     "while read l; do echo got-$l; done; echo closed").strip()
    sock = os.path.join(busybox.root, "containers", cid, "attach.sock")
    assert os.path.exists(sock) and (os.stat(sock).st_mode & 0o777) == 0o600
    assert _session(busybox, "att", b"one\n") == b"got-one\n"
    assert _session(busybox, "att", b"two\n") == b"got-two\n"     # a second client, same stdin
    assert busybox.ok("logs", "att").splitlines() == ["got-one", "got-two"]
    busybox.ok("rm", "-f", "att")
    assert not os.path.exists(sock)


def test_attach_ends_with_the_container_and_returns_its_status(busybox):
    busybox.ok("run", "-d", "-t", "--name", "attx", "busybox", "sh", "-c", "sleep 0.5; echo bye; exit 7")
    p = busybox("attach", "--no-stdin", "attx", timeout=20)
    assert p.returncode == 7 and "bye" in p.stdout, p


def test_only_interactive_containers_can_be_attached(busybox):
    busybox.ok("run", "-d", "--name", "plain", "busybox", "sleep", "30")
    p = busybox("attach", "plain")
    assert p.returncode == 125 and "started without stdin or a terminal" in p.stderr, p
    busybox.ok("rm", "-f", "plain")


def test_pid_namespace_of_another_container(busybox):
    busybox.ok("run", "-d", "--name", "pidroot", "busybox", "sleep", "100")
    out = busybox.ok("run", "--rm", "--pid", "container:pidroot", "busybox", "ps", "-o", "pid,args")
    assert out.splitlines()[1].split() == ["1", "sleep", "100"]     # the other's init is PID 1 here
    p = busybox("run", "--rm", "--pid", "hots", "busybox", "true")
    assert p.returncode == 125 and 'invalid PID mode: "hots" (use \'host\' or container:NAME)' in p.stderr, p.stderr
    busybox.ok("rm", "-f", "pidroot")


def test_sysctl_in_the_containers_namespaces(busybox):
    out = busybox.ok("run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
                     "--sysctl", "kernel.shm_rmid_forced=1", "busybox", "sh", "-c",
                     "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced")
    assert out.split() == ["80", "1"]
    p = busybox("run", "--rm", "--sysctl", "kernel.hostname=x", "busybox", "true")
    assert p.returncode == 125 and "sysctl 'kernel.hostname' is not whitelisted" in p.stderr, p.stderr
    p = busybox("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.tcp_syncookies=1", "busybox", "true")
    assert p.returncode == 125 and "not allowed in host network mode" in p.stderr, p.stderr
