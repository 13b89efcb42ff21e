"""`start`: launch the monitor and wait until the container runs (or failed to)."""

from __future__ import annotations

import os

from ...errors import Conflict, SkiffError
from .. import fastjson as json
from . import frames
from .monitor import launch
from .state import RUNNING
from .store import Container


class Attachment:
    """The caller's end of a monitor's frame pipes (for foreground runs)."""

    def __init__(self, rfd: int, wfd: int, pid: int):
        self.rfd, self.wfd, self.pid = rfd, wfd, pid
        self.reader = frames.Reader()
        self.pending: list[tuple[int, bytes]] = []

    def next_frames(self) -> list[tuple[int, bytes]]:
        """Frames available now (blocks for at least one read); [] on EOF."""
        if self.pending:
            out, self.pending = self.pending, []
            return out
        while True:
            data = os.read(self.rfd, 65536)
            if not data:
                return []
            got = self.reader.feed(data)
            if got:
                return got

    def wait(self) -> int:
        """Discard output until the container exits; returns its exit status (for callers that
        only need the status, like the agent or a benchmark)."""
        try:
            while True:
                got = self.next_frames()
                if not got:
                    raise SkiffError("the container's monitor went away before reporting an exit")
                for kind, payload in got:
                    if kind == frames.EXIT:
                        return json.loads(payload)["code"]
        finally:
            self.close()

    def send(self, kind: int, payload: bytes = b"") -> None:
        if self.wfd >= 0:
            try:
                frames.write_frame(self.wfd, kind, payload)
            except OSError:
                pass

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                os.close(fd)
        self.rfd = self.wfd = -1


def start(c: Container, attach: bool = False, winsize: tuple[int, int] | None = None) -> Attachment:
    """Start ``c``; returns once its command was executed. Raises SkiffError (with docker's
    126/127 exit codes) when it could not be; then nothing of the container is left."""
    att = _launch(c, attach, winsize)
    while True:
        done = _started(c, att, att.next_frames(), attach)
        if done is not None:
            return done


async def start_async(c: Container) -> Attachment:
    """``start`` for an asyncio caller (the agent): the wait for the container's command to
    be executed yields to the event loop, so other pods go on meanwhile."""
    import asyncio
    att = _launch(c, False, None)
    loop = asyncio.get_running_loop()
    os.set_blocking(att.rfd, False)
    try:
        while True:
            ready = loop.create_future()
            loop.add_reader(att.rfd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(att.rfd)
            try:
                got = att.next_frames()
            except BlockingIOError:
                continue
            done = _started(c, att, got, False)
            if done is not None:
                return done
    except BaseException:
        if att.rfd >= 0:
            att.close()
        raise


def _launch(c: Container, attach: bool, winsize) -> Attachment:
    st = c.state()
    if st.status == RUNNING:
        raise Conflict(f"container {c.name} is already running")
    rfd, wfd = launch(c.store.root.path, c.id, attach, winsize)
    return Attachment(rfd, wfd, 0)


def _started(c: Container, att: Attachment, got: list, attach: bool) -> Attachment | None:
    """The attachment once STARTED is among ``got``; None to read on; raises on an error."""
    if not got:
        att.close()
        raise SkiffError(f"container {c.name}: the monitor exited before the container started")
    for i, (kind, payload) in enumerate(got):
        if kind == frames.STARTED:
            att.pid = json.loads(payload)["pid"]
            att.pending = got[i + 1:]
            if not attach:
                att.close()
            return att
        if kind == frames.ERROR:
            att.close()
            err = json.loads(payload)
            raise SkiffError(err["message"], err["code"])
    return None
