"""A small protobuf encoder for the tests of skiff's protobuf decoding (the tests' own, so that
the decoder is not checked against itself): length-delimited and varint fields, and the
``k8s\\0`` envelope kubectl sends."""
from __future__ import annotations


def varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def fld(num: int, payload: bytes | str) -> bytes:
    """One length-delimited field (a string, bytes or an embedded message)."""
    payload = payload.encode() if isinstance(payload, str) else payload
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def num(n: int, value: int) -> bytes:
    """One varint field (an integer or a bool)."""
    return varint(n << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + fld(1, fld(1, api_version) + fld(2, kind)) + fld(2, raw)
