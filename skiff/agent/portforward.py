"""The agent's port-forward endpoint: ``GET /portForward/{namespace}/{pod}?port=N`` upgraded to
a WebSocket, one per forwarded connection (the API server opens one for each of kubectl's
SPDY stream pairs, :mod:`skiff.controller.portforward`).

The agent connects to ``localhost:N`` inside the pod's network namespace, as the kubelet does,
so a server bound to 127.0.0.1 in the pod is reachable too. Then bytes go both ways: binary
messages are data; a text message ``eof`` from the API server says the client has no more to
send (the connection's write side is shut, the reply still comes); a text message from the
agent is an error for the client's error stream. The socket closes when the pod's side does.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket

from aiohttp import WSMsgType, web

log = logging.getLogger("skiff.agent")

EOF = "eof"
CONNECT_TIMEOUT = 5.0
CLONE_NEWNET = 0x40000000


def connect_in_netns(netns: str, port: int) -> socket.socket:
    """A TCP connection to localhost:``port`` made inside network namespace ``netns`` (a
    /proc/PID/ns/net path): this thread enters it, makes the socket, and comes back (a
    socket stays in the namespace it was made in). IPv4 first, then IPv6."""
    from skiff.runtime.kernel import Kernel
    k = Kernel()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        k.setns(target, CLONE_NEWNET)
        try:
            errors = []
            for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                s.settimeout(CONNECT_TIMEOUT)
                try:
                    s.connect((addr, port))
                    s.settimeout(None)
                    return s
                except OSError as e:
                    s.close()
                    why = os.strerror(e.errno).lower() if e.errno else str(e)
                    tcp = "tcp4" if family == socket.AF_INET else "tcp6"
                    host = addr if family == socket.AF_INET else f"[{addr}]"
                    errors.append(f"dial {tcp} {host}:{port}: connect: {why}")
            raise ConnectionError(f"failed to connect to localhost:{port} inside namespace of the pod, "
                                  f"IPv4: {errors[0]} IPv6 {errors[1]}")
        finally:
            k.setns(home, CLONE_NEWNET)   # never leave a pool thread in the pod's namespace
    finally:
        os.close(home)
        os.close(target)


async def serve_port_forward(agent, request: web.Request, ns: str, pod: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    if not ws.can_prepare(request).ok:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                                  "reason": "BadRequest", "message": "Upgrade request required"}, status=400)
    await ws.prepare(request)
    try:
        port = int(request.query.get("port", ""))
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        await _fail(ws, f"invalid port {request.query.get('port')!r}")
        return ws
    obj = agent.informer.cache.get(f"{ns}/{pod}") if agent.informer else None
    netns = getattr(agent.runtime, "sandbox_netns", None)
    path = netns(obj["metadata"]["uid"]) if obj is not None and netns is not None else None
    if not path:
        await _fail(ws, f'pod "{pod}" has no running sandbox on this node')
        return ws
    loop = asyncio.get_running_loop()
    try:
        sock = await loop.run_in_executor(None, connect_in_netns, path, port)
    except (OSError, ConnectionError) as e:
        await _fail(ws, f"error forwarding port {port} to pod {pod}, uid {obj['metadata']['uid']}: {e}")
        return ws
    try:
        await _pump(ws, sock)
    finally:
        sock.close()
        if not ws.closed:
            await ws.close()
    return ws


async def _fail(ws, message: str) -> None:
    log.info("port-forward: %s", message)
    await ws.send_str(message)
    await ws.close()


async def _pump(ws, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)

    async def to_pod():
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await loop.sock_sendall(sock, msg.data)
            elif msg.type == WSMsgType.TEXT and msg.data == EOF:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    async def from_pod():
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except OSError as e:
                if e.errno not in (errno.ECONNRESET, errno.EPIPE):
                    await ws.send_str(f"error reading from the pod: {e}")
                return
            if not data:
                return
            await ws.send_bytes(data)

    up, down = asyncio.ensure_future(to_pod()), asyncio.ensure_future(from_pod())
    try:
        # the pod's side ending (or the client leaving) ends the forward
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        if up.done() and not down.done():
            down.cancel()
    finally:
        for t in (up, down):
            t.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
