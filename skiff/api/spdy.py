"""SPDY/3 framing, the server's side, as far as kubectl's port-forward needs it.

kubectl's port-forward speaks SPDY/3.1 (through the moby/spdystream library): over a plain
HTTP upgrade (``Upgrade: SPDY/3.1``), or, since kubectl 1.31, tunnelled through a WebSocket
whose binary messages carry the SPDY byte stream (subprotocol
``SPDY/3.1+portforward.k8s.io``). Either way the bytes are the same, and this module turns
them into frames and back:

- control frames: ``1 | version(15) | type(16) | flags(8) | length(24) | data``;
  SYN_STREAM (1), SYN_REPLY (2), RST_STREAM (3), SETTINGS (4), PING (6), GOAWAY (7),
  HEADERS (8), WINDOW_UPDATE (9);
- data frames: ``0 | stream id(31) | flags(8) | length(24) | data``; flag FIN (1) ends a
  direction of a stream.

Header blocks (``count, (name length, name, value length, value)*``, 32-bit big-endian
lengths) are zlib-compressed, one stream per direction for the whole connection, with the
dictionary the SPDY/3 draft (section 2.6.10.1) defines. spdystream does no flow control, so
WINDOW_UPDATE and SETTINGS are read and ignored.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
MAX_FRAME = 1 << 24

# The SPDY/3 header dictionary: these words, each after its 32-bit length, then the tail.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    """The peer broke the protocol (the connection should be dropped)."""


@dataclass
class Frame:
    type: int                 # a control frame type, or 0 for a data frame
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""         # a data frame's payload
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0           # RST_STREAM / GOAWAY
    ping_id: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Codec:
    """One connection's framing state: ``feed`` bytes in, frames out; builders for the frames
    a server sends. Header compression keeps one zlib stream per direction."""

    def __init__(self):
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    # -- reading --
    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frame = self._parse(head, body)
            if frame is not None:
                out.append(frame)
        return out

    def _parse(self, head: bytes, body: bytes) -> Frame | None:
        flags = head[4]
        if not head[0] & 0x80:
            sid = struct.unpack(">I", head[:4])[0] & 0x7FFFFFFF
            return Frame(0, flags, sid, data=body)
        version = struct.unpack(">H", head[:2])[0] & 0x7FFF
        ftype = struct.unpack(">H", head[2:4])[0]
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        if ftype == SYN_STREAM:
            if len(body) < 10:
                raise SpdyError("short SYN_STREAM")
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            return Frame(ftype, flags, sid, headers=self._headers(body[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            return Frame(ftype, flags, sid, headers=self._headers(body[4:]))
        if ftype == RST_STREAM:
            sid, status = struct.unpack(">II", body[:8])
            return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
        if ftype == PING:
            return Frame(ftype, flags, ping_id=struct.unpack(">I", body[:4])[0])
        if ftype == GOAWAY:
            sid, status = struct.unpack(">II", body[:8]) if len(body) >= 8 else (0, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
        return None     # SETTINGS, WINDOW_UPDATE, NOOP, unknown: nothing to do

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise SpdyError(f"bad header block: {e}") from None
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            pos, out = 4, {}
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + n].decode()
                pos += 4 + n
                (n,) = struct.unpack_from(">I", raw, pos)
                out[name.lower()] = raw[pos + 4:pos + 4 + n].decode().split("\0")[0]
                pos += 4 + n
        except (struct.error, UnicodeDecodeError) as e:
            raise SpdyError(f"bad header block: {e}") from None
        return out

    # -- writing --
    def _control(self, ftype: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id) + self.header_block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """(For tests and clients.) Priority 0, no associated stream."""
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + self.header_block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def data(self, stream_id: int, payload: bytes = b"", fin: bool = False) -> bytes:
        out = []
        view = memoryview(payload)
        while len(view) > MAX_FRAME - 1:
            out.append(struct.pack(">II", stream_id, MAX_FRAME - 1) + view[:MAX_FRAME - 1])
            view = view[MAX_FRAME - 1:]
        out.append(struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(view)) + view)
        return b"".join(out)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))
