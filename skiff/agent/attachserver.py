"""The agent's attach endpoint, as the kubelet serves it to the API server:
``GET /attach/{namespace}/{pod}/{container}?stdin=&stdout=&stderr=&tty=``, upgraded to a
WebSocket in one of the channel.k8s.io subprotocols (:mod:`skiff.api.remotecommand`).

The client joins the running container's own stdin and output through its monitor's attach
socket (:mod:`skiff.runtime.containers.attach`): the output from now on, stdin (when the
container has one and the client asked for it), terminal resizes. When the container exits
the session ends with a Success status; when the client leaves first the container goes on,
but for a container with ``stdinOnce`` its stdin is closed, as the kubelet does (so
``kubectl run -it --rm`` ends its shell).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import struct

from aiohttp import WSMsgType, web

from skiff.api import remotecommand as rc
from skiff.errors import SkiffError

from .env import container_spec

log = logging.getLogger("skiff.agent")


def _flag(q, name: str) -> bool:
    return (q.get(name) or "").lower() in ("1", "true", "yes")


async def serve_attach(agent, request: web.Request, ns: str, pod: str, cname: str) -> web.StreamResponse:
    from .execserver import serve_channels
    q = request.query
    return await serve_channels(
        request, f"attach to {ns}/{pod} {cname}", "error attaching to container",
        lambda ws, proto: _run(agent, ws, proto, ns, pod, cname, _flag(q, "stdin"),
                               _flag(q, "stdout") or _flag(q, "stderr"), _flag(q, "tty")))


async def _run(agent, ws, proto, ns, pod, cname, want_in, want_out, tty) -> dict:
    info = agent.container_instance(ns, pod, cname)
    if info is None:
        return rc.error_status(f'container "{cname}" in pod "{pod}" not found', "NotFound", 404)
    attach = getattr(agent.runtime, "attach", None)
    if attach is None:
        return rc.error_status(f"node {getattr(agent, 'name', '')} runs no real containers (its runtime "
                               f"cannot attach)", "BadRequest", 400)
    obj = agent.informer.cache.get(f"{ns}/{pod}") if agent.informer else None
    spec = container_spec(obj or {}, cname) or {}
    try:
        att = attach(info.id)
    except SkiffError as e:
        return rc.error_status(str(e), "BadRequest", 400)
    log.info("attach to %s/%s %s", ns, pod, cname)
    loop = asyncio.get_running_loop()
    frames_in: asyncio.Queue = asyncio.Queue()
    from skiff.runtime.containers import frames
    reader = frames.Reader()
    os.set_blocking(att.rfd, False)

    def readable() -> None:
        try:
            data = os.read(att.rfd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(att.rfd)
            frames_in.put_nowait(None)
            return
        for f in reader.feed(data):
            frames_in.put_nowait(f)
    loop.add_reader(att.rfd, readable)

    async def outbound() -> None:
        while (f := await frames_in.get()) is not None:
            kind, payload = f
            if kind in (frames.STDOUT, frames.STDERR) and want_out:
                await ws.send_bytes(bytes([rc.STDOUT if kind == frames.STDOUT or tty else rc.STDERR]) + payload)
            elif kind == frames.EXIT:
                return

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == rc.STDIN and want_in:
                att.send(frames.STDIN, data)
            elif ch == rc.RESIZE and tty:
                try:
                    size = json.loads(data)
                    att.send(frames.RESIZE, struct.pack("HHHH", int(size.get("Height", 0)),
                                                        int(size.get("Width", 0)), 0, 0))
                except (ValueError, TypeError, AttributeError):
                    pass
            elif ch == rc.CLOSE and data[:1] == bytes([rc.STDIN]) and want_in and spec.get("stdinOnce"):
                att.send(frames.STDIN_EOF)      # otherwise stdin stays open for the next session

    out, inp = asyncio.ensure_future(outbound()), asyncio.ensure_future(inbound())
    try:
        await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
        if inp.done() and not out.done() and spec.get("stdinOnce") and want_in:
            att.send(frames.STDIN_EOF)      # the first session was the only one stdin had
    finally:
        for t in (out, inp):
            t.cancel()
        await asyncio.gather(out, inp, return_exceptions=True)
        loop.remove_reader(att.rfd)
        att.close()
    return {"metadata": {}, "status": "Success"}
