"""JSON for the container start path, without importing the json package.

`import json` pulls in re, enum, functools and collections: about 9 ms of a
~45 ms `skiff run`. The C accelerator behind json (`_json`) needs none of them;
this module drives it directly, and falls back to json where `_json` is missing.
Output is compact, the same bytes json.dumps(..., separators=(",", ":")) gives.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

_INF = float("inf")
_CONSTANTS = {"NaN": float("nan"), "Infinity": _INF, "-Infinity": -_INF}


class _Context:
    """The attributes _json.make_scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_CONSTANTS.__getitem__)
    memo: dict = {}


_scanner = _json.make_scanner(_Context()) if _json else None
_WS = " \t\n\r"


def loads(s: str | bytes):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8")
    if _scanner is None:
        import json
        return json.loads(s)
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scanner(s, start)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at character {e.value}") from None
    if s[end:].strip(_WS):
        raise ValueError(f"extra data after JSON at character {end}")
    return obj


def _default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj, sort_keys: bool = False, ensure_ascii: bool = True) -> str:
    if _json is None:
        import json
        return json.dumps(obj, sort_keys=sort_keys, ensure_ascii=ensure_ascii, separators=(",", ":"))
    enc = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    encoder = _json.make_encoder({}, _default, enc, None, ":", ",", sort_keys, False, True)
    return "".join(encoder(obj, 0))
