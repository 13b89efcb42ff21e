"""The framing between a monitor and the process attached to it (the foreground CLI).

Each frame is a 1-byte type, a 4-byte big-endian length, then the payload.
"""

from __future__ import annotations

import os
import struct

from .. import fastjson as json

STDOUT, STDERR, STARTED, ERROR, EXIT = 1, 2, 3, 4, 5      # monitor -> client
STDIN, STDIN_EOF, RESIZE = 10, 11, 12                      # client -> monitor

_HEAD = struct.Struct(">BI")


def encode(kind: int, payload: bytes = b"") -> bytes:
    return _HEAD.pack(kind, len(payload)) + payload


def json_payload(obj) -> bytes:
    return json.dumps(obj).encode()


def write_frame(fd: int, kind: int, payload: bytes = b"") -> None:
    data = memoryview(encode(kind, payload))
    while data:
        data = data[os.write(fd, data):]


class Reader:
    """Accumulates bytes from a stream and yields whole frames."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= _HEAD.size:
            kind, n = _HEAD.unpack_from(self.buf)
            if len(self.buf) < _HEAD.size + n:
                break
            out.append((kind, bytes(self.buf[_HEAD.size:_HEAD.size + n])))
            del self.buf[:_HEAD.size + n]
        return out
