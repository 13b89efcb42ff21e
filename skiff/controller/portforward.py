"""pods/NAME/portforward, the API server's side of ``kubectl port-forward``.

kubectl (1.31 and later) opens a WebSocket with the subprotocol ``SPDY/3.1+portforward.k8s.io``
and speaks SPDY/3 inside it (:mod:`skiff.api.spdy`). For each local connection it opens two
streams with the headers ``streamType`` (``error`` or ``data``), ``port`` and ``requestID``.
Once both streams of a request are there, :class:`Session` dials the agent of the pod's node
(``/portForward/{ns}/{pod}?port=N``, :mod:`skiff.agent.portforward`) and relays: the data
stream's bytes both ways, the client's FIN as the agent's ``eof`` message, the agent's text
messages (errors) to the error stream. When the pod's side closes, both streams are finished.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aiohttp

from skiff.api import spdy

log = logging.getLogger("skiff.apiserver")

PROTOCOL = "portforward.k8s.io"
WS_PROTOCOL = "SPDY/3.1+" + PROTOCOL
AGENT_EOF = "eof"


class Session:
    """One client connection: ``feed`` it the bytes that come in; it writes frames with
    ``write`` and reaches the pod through ``dial(port)`` (an aiohttp client WebSocket)."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]],
                 dial: Callable[[int], Awaitable[aiohttp.ClientWebSocketResponse]]):
        self.codec = spdy.Codec()
        self._write = write
        self._lock = asyncio.Lock()
        self.dial = dial
        self.requests: dict[str, dict[str, int]] = {}   # requestID -> {streamType: stream id}
        self.ports: dict[str, int] = {}
        self.inbox: dict[int, asyncio.Queue] = {}       # data stream -> client bytes (None: FIN)
        self.tasks: set[asyncio.Task] = set()
        self.closed = False

    async def write(self, frame: bytes) -> None:
        async with self._lock:
            if not self.closed:
                await self._write(frame)

    async def feed(self, data: bytes) -> None:
        for f in self.codec.feed(data):
            if f.type == spdy.SYN_STREAM:
                await self._new_stream(f)
            elif f.type == 0:
                q = self.inbox.get(f.stream_id)
                if q is not None:
                    if f.data:
                        q.put_nowait(f.data)
                    if f.fin:
                        q.put_nowait(None)
            elif f.type == spdy.PING:
                await self.write(self.codec.ping(f.ping_id))     # a pong is the same frame back
            elif f.type == spdy.RST_STREAM:
                q = self.inbox.pop(f.stream_id, None)
                if q is not None:
                    q.put_nowait(None)
            elif f.type == spdy.GOAWAY:
                self.closed = True

    async def _new_stream(self, f: spdy.Frame) -> None:
        kind, rid, port = f.headers.get("streamtype"), f.headers.get("requestid", ""), f.headers.get("port", "")
        try:
            number = int(port)
            ok = kind in ("error", "data") and 0 < number < 65536
        except ValueError:
            ok = False
        if not ok:
            await self.write(self.codec.rst_stream(f.stream_id, spdy.PROTOCOL_ERROR))
            return
        # the reply is made here, in the order the frames come: the header compressor is stateful
        await self.write(self.codec.syn_reply(f.stream_id))
        pair = self.requests.setdefault(rid, {})
        pair[kind] = f.stream_id
        self.ports[rid] = number
        if kind == "data":
            self.inbox[f.stream_id] = asyncio.Queue()
        if len(pair) == 2:
            t = asyncio.ensure_future(self._forward(rid))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def _forward(self, rid: str) -> None:
        pair, port = self.requests.pop(rid), self.ports.pop(rid)
        err_sid, data_sid = pair["error"], pair["data"]
        inbox = self.inbox[data_sid]
        try:
            agent = await self.dial(port)
        except Exception as e:  # noqa: BLE001 - the client hears of it on the error stream
            await self.write(self.codec.data(err_sid, f"error dialing backend: {e}".encode(), fin=True))
            await self.write(self.codec.data(data_sid, fin=True))
            self.inbox.pop(data_sid, None)
            return

        async def up():
            while True:
                chunk = await inbox.get()
                if chunk is None:
                    await agent.send_str(AGENT_EOF)
                    return
                await agent.send_bytes(chunk)

        pump = asyncio.ensure_future(up())
        try:
            async for msg in agent:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await self.write(self.codec.data(data_sid, msg.data))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await self.write(self.codec.data(err_sid, msg.data.encode()))
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await agent.close()
            self.inbox.pop(data_sid, None)
            await self.write(self.codec.data(data_sid, fin=True))
            await self.write(self.codec.data(err_sid, fin=True))

    async def close(self) -> None:
        self.closed = True
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
