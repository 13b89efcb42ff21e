"""Forward one or more local ports to a pod.

Usage:
  skiffctl port-forward (POD | TYPE/NAME) [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]

TYPE/NAME: pod/NAME, or deploy/NAME, rs/NAME and job/NAME for one of their pods (running and ready first).
A LOCAL_PORT of 0 or none (":8080") picks a free one. Each local connection becomes a pair of
SPDY streams in one WebSocket to the API server, as kubectl's (pods/NAME/portforward).

Examples:
  skiffctl port-forward pod/web 8080:80
  skiffctl port-forward deploy/web :8080 9090
"""
from __future__ import annotations

import sys

from .client import CtlError
from .common import pod_for
from .flags import Flag

FLAGS = [
    Flag("--address", "address", "str", default="127.0.0.1",
         help="Addresses to listen on (comma separated); default 127.0.0.1"),
]


def parse_ports(specs: list[str]) -> list[tuple[int, int]]:
    """``[LOCAL:]REMOTE`` pairs as (local, remote); local 0 picks a free port."""
    out = []
    for spec in specs:
        local, sep, remote = spec.partition(":")
        if not sep:
            local, remote = spec, spec
        try:
            lp, rp = int(local or 0), int(remote)
        except ValueError:
            raise CtlError(f"error: invalid port: {spec!r} (expected [LOCAL_PORT:]REMOTE_PORT)") from None
        if not (0 <= lp < 65536 and 0 < rp < 65536):
            raise CtlError(f"error: port out of range in {spec!r}")
        out.append((lp, rp))
    return out


def run(ctx, args: list[str], opts: dict) -> int:
    if len(args) < 2:
        raise CtlError("error: TYPE/NAME and list of ports are required for port-forward")
    ports = parse_ports(args[1:])
    client = ctx.client()
    pod = pod_for(client, ctx.namespace, args[0])
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise CtlError(f"error: unable to forward port because pod is not running. Current status={phase}")
    from skiff.api.resources import path_for
    path = path_for("pods", ctx.namespace, pod["metadata"]["name"], "portforward")
    import asyncio
    try:
        return asyncio.run(_forward(ctx.config, path, ports, [a.strip() for a in opts["address"].split(",")]))
    except KeyboardInterrupt:
        return 0


class _Client:
    """The client's side of the SPDY session: streams it opens, replies and data it gets."""

    def __init__(self, ws):
        import asyncio
        from skiff.api import spdy
        self.ws, self.spdy, self.codec = ws, spdy, spdy.Codec()
        self.lock = asyncio.Lock()
        self.next_id = 1
        self.request = 0
        self.replies: dict[int, asyncio.Future] = {}
        self.inbox: dict[int, asyncio.Queue] = {}

    async def open(self, headers: dict, fin: bool = False) -> int:
        import asyncio
        async with self.lock:      # ids and the header compressor go in the order sent
            sid, self.next_id = self.next_id, self.next_id + 2
            self.replies[sid] = asyncio.get_running_loop().create_future()
            self.inbox[sid] = asyncio.Queue()
            await self.ws.send_bytes(self.codec.syn_stream(sid, headers, fin=fin))
        await self.replies[sid]
        return sid

    async def send(self, frame: bytes) -> None:
        async with self.lock:
            await self.ws.send_bytes(frame)

    async def read_loop(self) -> None:
        import aiohttp
        s = self.spdy
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            for f in self.codec.feed(msg.data):
                if f.type == s.SYN_REPLY and f.stream_id in self.replies:
                    self.replies[f.stream_id].set_result(True)
                elif f.type == 0 and f.stream_id in self.inbox:
                    if f.data:
                        self.inbox[f.stream_id].put_nowait(f.data)
                    if f.fin:
                        self.inbox[f.stream_id].put_nowait(None)
                elif f.type == s.RST_STREAM and f.stream_id in self.inbox:
                    self.inbox[f.stream_id].put_nowait(None)
                elif f.type == s.PING:
                    await self.send(self.codec.ping(f.ping_id))
        for q in self.inbox.values():
            q.put_nowait(None)


async def _forward(config, path: str, ports: list[tuple[int, int]], addresses: list[str]) -> int:
    import asyncio
    import aiohttp
    from skiff.controller.portforward import WS_PROTOCOL
    from .client import ssl_context
    url = config.server.rstrip("/") + path
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    ssl = ssl_context(config) if url.startswith("https") else None
    async with aiohttp.ClientSession() as s:
        try:
            ws = await s.ws_connect(url, headers=headers, protocols=(WS_PROTOCOL,), ssl=ssl, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            raise CtlError(f"error: unable to upgrade connection: {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise CtlError(f"Unable to connect to the server: {e}") from None
        c = _Client(ws)
        reader = asyncio.ensure_future(c.read_loop())
        servers = []
        for local, remote in ports:
            for addr in addresses:
                try:
                    srv = await asyncio.start_server(lambda r, w, rp=remote: _handle(c, r, w, rp), addr, local)
                except OSError as e:
                    raise CtlError(f"error: unable to listen on port {local}: {e.strerror}") from None
                servers.append(srv)
                local = srv.sockets[0].getsockname()[1]
                host = f"[{addr}]" if ":" in addr else addr
                print(f"Forwarding from {host}:{local} -> {remote}", flush=True)
        try:
            await reader          # the connection to the API server ending ends the forward
        finally:
            for srv in servers:
                srv.close()
            await ws.close()
        print("error: lost connection to pod", file=sys.stderr)
        return 1


async def _handle(c: _Client, reader, writer, remote: int) -> None:
    import asyncio
    local = writer.get_extra_info("sockname")[1]
    print(f"Handling connection for {local}", flush=True)
    rid = str(c.request)
    c.request += 1
    hdr = {"streamType": "error", "port": str(remote), "requestID": rid}
    err = await c.open(hdr, fin=True)         # the client never writes to its error stream
    data = await c.open(dict(hdr, streamType="data"))

    async def up():
        while chunk := await reader.read(65536):
            await c.send(c.codec.data(data, chunk))
        await c.send(c.codec.data(data, fin=True))

    async def errors():
        msg = b""
        while (chunk := await c.inbox[err].get()) is not None:
            msg += chunk
        if msg:
            print(f"error: an error occurred forwarding {local} -> {remote}: {msg.decode(errors='replace')}",
                  file=sys.stderr, flush=True)

    pump, watch = asyncio.ensure_future(up()), asyncio.ensure_future(errors())
    try:
        while (chunk := await c.inbox[data].get()) is not None:
            writer.write(chunk)
            await writer.drain()
        await watch
    except (ConnectionError, OSError):
        pass
    finally:
        pump.cancel()
        await asyncio.gather(pump, watch, return_exceptions=True)
        writer.close()
        c.inbox.pop(data, None)
        c.inbox.pop(err, None)
