"""The foreground side of `run`: relay the container's output and the user's input.

With -t and a terminal on stdin, the terminal goes to raw mode and its size (and
every SIGWINCH) is sent along, so `skiff run -it IMAGE sh` is a real shell.
Without a tty, SIGINT/SIGTERM/SIGHUP are passed to the container (docker's sig-proxy).
"""

from __future__ import annotations

import _signal as signal  # the C module: `signal` imports enum, a few ms on every run
import os
import select
import struct

from ..runtime import fastjson as json
from ..runtime.containers import frames


def terminal_size(fd: int = 0) -> tuple[int, int] | None:
    try:
        import fcntl
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, 0x5413, b"\0" * 8))  # TIOCGWINSZ
        return rows, cols
    except OSError:
        return None


class RawTerminal:
    """Put the terminal on ``fd`` in raw mode for the duration of a `with` block."""

    def __init__(self, fd: int = 0):
        self.fd, self.saved = fd, None

    def __enter__(self):
        if os.isatty(self.fd):
            import termios
            import tty
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


def attach_and_wait(c, att, tty: bool, interactive: bool, close_stdin: bool = True) -> int:
    """Relay until the container exits; returns its exit status. At the end of our stdin the
    container's is closed (``close_stdin``: a foreground run's), or left open (a later attach)."""
    code = None
    pid = att.pid
    forward = {}
    if not tty:
        def proxy(sig, _frame):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            forward[sig] = signal.signal(sig, proxy)
    else:
        def resize(_sig, _frame):
            size = terminal_size(0) or terminal_size(1)
            if size:
                att.send(frames.RESIZE, struct.pack("HHHH", size[0], size[1], 0, 0))
        signal.signal(signal.SIGWINCH, resize)
    stdin_open = interactive
    with RawTerminal(0) if (tty and interactive) else _nullctx():
        poller = select.poll()
        poller.register(att.rfd, select.POLLIN)
        if stdin_open:
            poller.register(0, select.POLLIN)
        pending = att.pending
        att.pending = []
        done = False
        while not done:
            batch = pending
            pending = []
            if not batch:
                try:
                    events = poller.poll()
                except InterruptedError:
                    continue
                for fd, ev in events:
                    if fd == 0:
                        data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                        if data:
                            att.send(frames.STDIN, data)
                        else:
                            if close_stdin:
                                att.send(frames.STDIN_EOF)
                            poller.unregister(0)
                    elif fd == att.rfd:
                        got = att.next_frames()
                        if not got:
                            done = True
                        batch += got
            for kind, payload in batch:
                if kind == frames.STDOUT:
                    _write_all(1, payload)
                elif kind == frames.STDERR:
                    _write_all(2, payload)
                elif kind == frames.EXIT:
                    code = json.loads(payload)["code"]
                    done = True
    att.close()
    for sig, old in forward.items():
        signal.signal(sig, old)
    if code is None:  # the monitor went away without a word
        from ..runtime.containers.stop import wait_stopped
        code = wait_stopped(c, 5).exit_code
    return code


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
