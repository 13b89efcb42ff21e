"""`run -it` and `exec -it` driven through a real pseudo-terminal, as a user's terminal would."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import run_d

pytestmark = [needs_root, pytest.mark.root]


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """The outer terminal: `skiff ARGS` runs as the session leader on a fresh pty's slave side."""

    def __init__(self, skiff, args: list[str], rows: int = 24, cols: int = 80):
        self.master, slave = os.openpty()
        _set_size(self.master, rows, cols)

        def controlling_tty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([*skiff.argv, *args], stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, preexec_fn=controlling_tty,
                                     close_fds=True)
        os.close(slave)
        self.buf = b""

    def read_until(self, pattern: str, timeout: float = 10.0) -> re.Match:
        rx = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; got {self.buf!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the slave side is closed
                    data = b""
                if not data:
                    raise AssertionError(f"terminal closed waiting for {pattern!r}; got {self.buf!r}")
                self.buf += data

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def command(self, cmd: str, answer: str, timeout: float = 10.0) -> re.Match:
        """Type ``cmd`` and wait for a whole output line matching ``answer``."""
        self.send(cmd + "\r")
        return self.read_until(r"\n" + answer + r"\r?\n", timeout)

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:  # keep draining so the writer never blocks
            if time.monotonic() > deadline:
                raise AssertionError("skiff did not exit")
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.master, 65536)
                except OSError:
                    pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminals():
    made: list[Terminal] = []
    yield made
    for t in made:
        t.close()


def test_run_it_shell(busybox, terminals):
    term = Terminal(busybox, ["run", "-it", "--rm", "busybox", "sh"], rows=33, cols=97)
    terminals.append(term)
    term.read_until(r"# ")
    term.command("echo $((6*7))", "42")
    term.command("stty size", "33 97")
    term.command("tty", "/dev/pts/0")
    term.command("echo $TERM", "xterm")

    _set_size(term.master, 40, 120)  # SIGWINCH to skiff, the terminal's foreground process
    deadline = time.monotonic() + 5
    while True:
        term.send("stty size\r")
        m = term.read_until(r"\n(\d+ \d+)\r?\n")
        if m.group(1) == b"40 120":
            break
        assert time.monotonic() < deadline, f"the container still sees {m.group(1)!r}"
        time.sleep(0.05)

    term.send("exit 5\r")
    assert term.wait() == 5
    assert busybox.ok("ps", "-a", "-q") == ""  # --rm


def test_exec_it_shell(busybox, terminals):
    cid = run_d(busybox, "busybox", "sleep", "30")
    term = Terminal(busybox, ["exec", "-it", cid, "sh"], rows=30, cols=100)
    terminals.append(term)
    term.read_until(r"# ")
    term.command("echo $((6*7))", "42")
    term.command("hostname", cid[:12])  # inside the container
    term.command("stty size", "30 100")
    term.command("cat /proc/1/comm", "sleep")
    term.send("exit 3\r")
    assert term.wait() == 3
    assert busybox.ok("inspect", "-f", "{{.State.Running}}", cid) == "true\n"
