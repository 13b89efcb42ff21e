"""SPDY/3 framing (skiff.api.spdy) and the API server's port-forward session over it, with an
in-memory agent: streams pair by requestID, data goes both ways, FIN and errors are passed on."""
import asyncio
import zlib

import aiohttp
import pytest

from skiff.api import spdy
from skiff.controller.portforward import Session


def test_dictionary_is_the_spdy3_one():
    # the SPDY/3 draft's dictionary: 1423 bytes, Adler-32 0xe3c6a7c2 (its zlib dictionary id)
    assert len(spdy.DICTIONARY) == 1423 and zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_frames_round_trip_in_any_chunking():
    client, server = spdy.Codec(), spdy.Codec()
    wire = (client.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"})
            + client.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "0"})
            + client.data(3, b"GET /", fin=True) + client.ping(7) + client.rst_stream(1, spdy.CANCEL)
            + client._control(spdy.WINDOW_UPDATE, 0, b"\0\0\0\3\0\0\1\0"))
    frames = []
    for i in range(0, len(wire), 5):
        frames += server.feed(wire[i:i + 5])
    assert [(f.type, f.stream_id) for f in frames] == [(1, 1), (1, 3), (0, 3), (spdy.PING, 0), (spdy.RST_STREAM, 1)]
    assert frames[0].headers == {"streamtype": "error", "port": "80", "requestid": "0"}
    assert frames[2].data == b"GET /" and frames[2].fin and frames[3].ping_id == 7
    assert frames[4].status == spdy.CANCEL
    # the server's replies decode on the client side (one compression stream per direction)
    back = server.syn_reply(1) + server.syn_reply(3, {"x": "y"}) + server.data(3, b"x" * 70000)
    got = client.feed(back)
    assert [(f.type, f.headers) for f in got[:2]] == [(spdy.SYN_REPLY, {}), (spdy.SYN_REPLY, {"x": "y"})]
    assert got[2].data == b"x" * 70000


def test_bad_input_is_a_protocol_error():
    with pytest.raises(spdy.SpdyError):
        spdy.Codec().feed(b"\x80\x02\x00\x01\x00\x00\x00\x0a" + b"\0" * 10)     # SPDY/2
    c = spdy.Codec()
    with pytest.raises(spdy.SpdyError):
        c.feed(b"\x80\x03\x00\x01\x00\x00\x00\x0e" + b"\0\0\0\1\0\0\0\0\0\0" + b"junk")


class FakeAgent:
    """The agent's side of one forwarded connection: echoes data upper-cased, records eof."""

    def __init__(self, error: str | None = None):
        self.q: asyncio.Queue = asyncio.Queue()
        self.sent: list = []
        if error:
            self.q.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, error, None))
            self.q.put_nowait(None)

    async def send_bytes(self, b):
        self.sent.append(b)
        self.q.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, b.upper(), None))

    async def send_str(self, s):
        self.sent.append(s)
        self.q.put_nowait(None)      # the pod's side answers, then closes

    def __aiter__(self):
        return self

    async def __anext__(self):
        m = await self.q.get()
        if m is None:
            raise StopAsyncIteration
        return m

    async def close(self):
        pass


async def _run(agent_for, requests):
    out = bytearray()

    async def write(b):
        out.extend(b)
    dialed = []

    async def dial(port):
        dialed.append(port)
        return agent_for(port)
    s = Session(write, dial)
    c = spdy.Codec()
    for rid, port, payload in requests:
        await s.feed(c.syn_stream(10 * rid + 1, {"streamType": "error", "port": str(port), "requestID": str(rid)}))
        await s.feed(c.syn_stream(10 * rid + 3, {"streamType": "data", "port": str(port), "requestID": str(rid)}))
        await s.feed(c.data(10 * rid + 3, payload, fin=True))
    await s.feed(c.ping(1))
    for _ in range(50):
        await asyncio.sleep(0.01)
    await s.close()
    return dialed, c.feed(bytes(out))


@pytest.mark.asyncio
async def test_session_pairs_streams_and_relays_both_ways():
    agents = {}
    dialed, frames = await _run(lambda p: agents.setdefault(p, FakeAgent()), [(0, 80, b"hello"), (1, 81, b"bye")])
    assert dialed == [80, 81]
    assert agents[80].sent == [b"hello", "eof"] and agents[81].sent == [b"bye", "eof"]
    data = {}
    for f in frames:
        if f.type == 0:
            data.setdefault(f.stream_id, []).append((f.data, f.fin))
    assert data[3] == [(b"HELLO", False), (b"", True)] and data[13] == [(b"BYE", False), (b"", True)]
    assert data[1] == [(b"", True)]          # the error stream ends with nothing in it
    assert sum(f.type == spdy.SYN_REPLY for f in frames) == 4
    assert any(f.type == spdy.PING and f.ping_id == 1 for f in frames)


@pytest.mark.asyncio
async def test_session_reports_the_agents_error_on_the_error_stream():
    _, frames = await _run(lambda p: FakeAgent(error="connect: connection refused"), [(0, 80, b"x")])
    err = b"".join(f.data for f in frames if f.type == 0 and f.stream_id == 1)
    assert err == b"connect: connection refused"


@pytest.mark.asyncio
async def test_session_refuses_a_stream_without_a_valid_port():
    out = bytearray()

    async def write(b):
        out.extend(b)
    s = Session(write, None)
    c = spdy.Codec()
    await s.feed(c.syn_stream(1, {"streamType": "data", "port": "http", "requestID": "0"}))
    (f,) = c.feed(bytes(out))
    assert f.type == spdy.RST_STREAM and f.status == spdy.PROTOCOL_ERROR
