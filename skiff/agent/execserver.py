"""The agent's exec endpoint, as the kubelet serves it to the API server:
``GET /exec/{namespace}/{pod}/{container}?command=...&stdin=&stdout=&stderr=&tty=`` (also
``input``/``output``/``error``), upgraded to a WebSocket in one of the channel.k8s.io
subprotocols (:mod:`skiff.api.remotecommand`).

The command runs in the container's namespaces and cgroup (the runtime's exec), with pipes,
or with a new pseudo-terminal when ``tty`` is set (its size follows the resize channel).
Its output goes out as it comes; stdin comes in until the client closes it (v5) or leaves.
When the command exits, its status goes on the error channel and the socket is closed. When
the client leaves first, the command is killed. Failures before the command starts (no such
container, not running, no command) are reported on the error channel too, so the client
sees the message.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import struct
import termios

from aiohttp import WSMsgType, web

from skiff.api import remotecommand as rc
from skiff.errors import SkiffError

from .probes import kill_tree, wait_pidfd

log = logging.getLogger("skiff.agent")

# After the command exits, how long its output pipes may take to reach EOF (a background
# child of the command may keep them open; its status is sent anyway).
DRAIN_SECONDS = 1.0


def _flag(q, *names: str) -> bool:
    return any((q.get(n) or "").lower() in ("1", "true", "yes") for n in names)


async def serve_exec(agent, request: web.Request, ns: str, pod: str, cname: str) -> web.StreamResponse:
    q = request.query
    return await serve_channels(
        request, f"exec in {ns}/{pod} {cname}", "error executing command in container",
        lambda ws, proto: _run(agent, ws, proto, ns, pod, cname, q.getall("command", []),
                               _flag(q, "stdin", "input"), _flag(q, "stdout", "output"),
                               _flag(q, "stderr", "error"), _flag(q, "tty")))


async def serve_channels(request: web.Request, what: str, failure: str, run) -> web.StreamResponse:
    """A channel.k8s.io WebSocket session (exec, attach): ``run(ws, protocol)`` does the work
    and returns the Status for the error channel, which is sent before the socket closes (a
    failure of ``run`` itself too, as ``failure: <error>``)."""
    ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, max_msg_size=0)
    if not ws.can_prepare(request).ok:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                                  "reason": "BadRequest", "message": "Upgrade request required"}, status=400)
    await ws.prepare(request)
    proto = ws.ws_protocol
    try:
        status = await run(ws, proto)
    except Exception as e:  # noqa: BLE001 - whatever it is, the client hears of it
        log.exception("%s failed", what)
        status = rc.error_status(f"{failure}: {e}")
    if not ws.closed:
        try:
            await ws.send_bytes(rc.error_frame(proto, status))
            await ws.close()
        except (ConnectionError, RuntimeError):
            pass
    return ws


async def _run(agent, ws, proto, ns, pod, cname, argv, want_in, want_out, want_err, tty) -> dict:
    info = agent.container_instance(ns, pod, cname)
    if info is None:
        return rc.error_status(f'container "{cname}" in pod "{pod}" not found', "NotFound", 404)
    rt = agent.runtime
    start = getattr(rt, "exec_start", None)
    if start is None:
        return rc.error_status(f"node {getattr(agent, 'name', '')} runs no real containers (its runtime "
                               f"has no exec)", "BadRequest", 400)
    if not rt.is_running(info.id):
        return rc.error_status(f'container "{cname}" in pod "{pod}" is not running', "BadRequest", 400)
    if not argv:
        return rc.error_status("you must specify at least one command for the container", "BadRequest", 400)
    if not (want_in or want_out or want_err):
        return rc.error_status("you must specify at least 1 of stdin, stdout, stderr", "BadRequest", 400)
    child_fds: list[int] = []     # the command's ends: closed here once it has them
    outputs: list[tuple[int, int]] = []   # (our read end, channel)
    inp = _Input(tty)
    if tty:
        try:
            master, slave = rt.exec_pty(info.id)
        except (SkiffError, OSError) as e:
            return rc.error_status(f"cannot allocate a terminal in the container: {e}")
        child_fds.append(slave)
        stdio = (slave, slave, slave)
        outputs.append((master, rc.STDOUT))
        inp.fd = os.dup(master)   # stdin and resizes (the pump closes the master)
    else:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        child_fds.append(null)
        fds = [null, null, null]
        if want_in:
            r, inp.fd = os.pipe()
            fds[0] = r
            child_fds.append(r)
        for i, (want, ch) in enumerate(((want_out, rc.STDOUT), (want_err, rc.STDERR)), start=1):
            if want:
                r, w = os.pipe()
                fds[i] = w
                child_fds.append(w)
                outputs.append((r, ch))
        stdio = tuple(fds)
    try:
        pid = start(info.id, argv, stdio, tty)
    except SkiffError as e:
        for fd, _ in outputs:
            os.close(fd)
        inp.close()
        return rc.error_status(f"error executing command in container: {e}")
    finally:
        for fd in child_fds:
            os.close(fd)
    log.info("exec in %s/%s %s: %s (pid %d)", ns, pod, cname, argv, pid)
    if inp.fd is not None:
        os.set_blocking(inp.fd, False)
    if tty and not want_in:
        inp.writable = False
    pidfd = os.pidfd_open(pid)
    pumps = [asyncio.ensure_future(_pump(ws, fd, ch)) for fd, ch in outputs]
    inbound = asyncio.ensure_future(_from_client(ws, inp))
    exited = asyncio.ensure_future(wait_pidfd(pidfd, None))
    try:
        await asyncio.wait({exited, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():     # the client left: stop the command
            kill_tree(pid)
            await exited
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        code = 128 - code if code < 0 else code
        if pumps:
            await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
    finally:
        for t in [*pumps, inbound, exited]:
            t.cancel()
        await asyncio.gather(*pumps, inbound, exited, return_exceptions=True)
        os.close(pidfd)
        inp.close()
    return rc.exit_status(code, argv)


async def _pump(ws, fd: int, channel: int) -> None:
    """The command's output on ``fd``, to the client on ``channel``, until EOF (or EIO: the
    terminal's other side is gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    try:
        while True:
            try:
                data = await reader.read(1 << 16)
            except OSError:
                return
            if not data:
                return
            await ws.send_bytes(bytes([channel]) + data)
    finally:
        transport.close()


async def _write_all(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)


class _Input:
    """Our end of the command's stdin (a pipe), or a second fd of the terminal's master
    (stdin and resizes); closed once, whoever closes it first."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.fd: int | None = None
        self.writable = True

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


async def _from_client(ws, inp: _Input) -> None:
    """Stdin, resizes and close signals, until the client goes."""
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data:
            continue
        ch, data = msg.data[0], msg.data[1:]
        if ch == rc.STDIN and inp.fd is not None and inp.writable:
            try:
                await _write_all(inp.fd, data)
            except OSError:      # the command closed its stdin
                if not inp.tty:
                    inp.close()
        elif ch == rc.RESIZE and inp.tty and inp.fd is not None:
            try:
                size = json.loads(data)
                fcntl.ioctl(inp.fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0))
            except (ValueError, TypeError, AttributeError, OSError):
                pass
        elif ch == rc.CLOSE and data[:1] == bytes([rc.STDIN]) and not inp.tty:
            inp.close()    # EOF for the command
