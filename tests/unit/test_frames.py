"""Unit tests for skiff.runtime.containers.frames (monitor <-> client framing)."""

import json
import os
import struct

import pytest

from skiff.runtime.containers import frames
from skiff.runtime.containers.frames import (ERROR, EXIT, RESIZE, STARTED, STDERR, STDIN,
                                             STDIN_EOF, STDOUT, Reader, encode, json_payload,
                                             write_frame)


def test_kinds_are_distinct_bytes():
    kinds = [STDOUT, STDERR, STARTED, ERROR, EXIT, STDIN, STDIN_EOF, RESIZE]
    assert len(set(kinds)) == len(kinds)
    assert all(0 <= k < 256 for k in kinds)


def test_encode_layout():
    assert encode(STDOUT, b"hi") == b"\x01\x00\x00\x00\x02hi"
    assert encode(EXIT) == bytes([EXIT, 0, 0, 0, 0])


def test_encode_length_is_big_endian():
    payload = b"x" * 0x010203
    data = encode(STDERR, payload)
    assert data[:5] == bytes([STDERR, 0x00, 0x01, 0x02, 0x03])
    assert len(data) == 5 + 0x010203


def test_json_payload():
    assert json.loads(json_payload({"code": 3})) == {"code": 3}
    assert isinstance(json_payload([1]), bytes)


def test_reader_whole_frame():
    r = Reader()
    assert r.feed(encode(STDOUT, b"hello")) == [(STDOUT, b"hello")]
    assert r.buf == bytearray()


def test_reader_coalesced_frames():
    data = encode(STARTED) + encode(STDOUT, b"a") + encode(STDERR, b"bc") + encode(EXIT, b"0")
    assert Reader().feed(data) == [(STARTED, b""), (STDOUT, b"a"), (STDERR, b"bc"), (EXIT, b"0")]


def test_reader_split_byte_by_byte():
    data = encode(STDOUT, b"abc") + encode(STDERR, b"") + encode(EXIT, b"137")
    r = Reader()
    out = []
    for i in range(len(data)):
        got = r.feed(data[i:i + 1])
        out += got
        # a frame is returned exactly when its last byte arrives
        if got:
            assert i + 1 in (8, 13, 21)
    assert out == [(STDOUT, b"abc"), (STDERR, b""), (EXIT, b"137")]
    assert r.buf == bytearray()


def test_reader_split_inside_header():
    data = encode(STDOUT, b"payload")
    r = Reader()
    assert r.feed(data[:3]) == []
    assert r.feed(data[3:5]) == []
    assert r.feed(data[5:9]) == []
    assert r.feed(data[9:]) == [(STDOUT, b"payload")]


def test_reader_partial_tail_kept_for_next_feed():
    a, b = encode(STDOUT, b"first"), encode(STDERR, b"second")
    r = Reader()
    assert r.feed(a + b[:4]) == [(STDOUT, b"first")]
    assert bytes(r.buf) == b[:4]
    assert r.feed(b[4:] + a) == [(STDERR, b"second"), (STDOUT, b"first")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 4096])
def test_reader_any_chunking(chunk):
    msgs = [(STDOUT, os.urandom(n)) for n in (0, 1, 4, 5, 100, 3000)] + [(EXIT, b"0")]
    data = b"".join(encode(k, p) for k, p in msgs)
    r = Reader()
    out = []
    for i in range(0, len(data), chunk):
        out += r.feed(data[i:i + chunk])
    assert out == msgs


def test_reader_payload_containing_header_bytes():
    tricky = encode(STDERR, b"inner")  # a payload that looks like a frame
    r = Reader()
    assert r.feed(encode(STDOUT, tricky)) == [(STDOUT, tricky)]


def test_reader_returns_bytes():
    (kind, payload), = Reader().feed(encode(STDIN, b"x"))
    assert type(payload) is bytes and kind == STDIN


def test_resize_payload_round_trip():
    payload = struct.pack(">HH", 40, 120)
    (kind, p), = Reader().feed(encode(RESIZE, payload))
    assert kind == RESIZE and struct.unpack(">HH", p) == (40, 120)


def test_write_frame_through_pipe():
    r, w = os.pipe()
    try:
        write_frame(w, STDOUT, b"over the pipe")
        write_frame(w, EXIT, json_payload({"code": 0}))
        os.close(w)
        w = -1
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        out = Reader().feed(data)
        assert [(k, p if k != EXIT else json.loads(p)) for k, p in out] == [(STDOUT, b"over the pipe"), (EXIT, {"code": 0})]
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_write_frame_larger_than_pipe_buffer():
    import threading
    r, w = os.pipe()
    payload = os.urandom(300_000)
    received = bytearray()

    def drain():
        while chunk := os.read(r, 65536):
            received.extend(chunk)
    t = threading.Thread(target=drain)
    t.start()
    try:
        write_frame(w, STDERR, payload)
    finally:
        os.close(w)
        t.join(5)
        os.close(r)
    assert Reader().feed(bytes(received)) == [(STDERR, payload)]


def test_module_header_size():
    assert frames._HEAD.size == 5
