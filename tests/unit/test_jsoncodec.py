"""skiff.api.jsoncodec: orjson on the hot paths, the stdlib behind it for what orjson refuses."""
import ctypes
import json

import pytest

from skiff.api import jsoncodec


def test_round_trip_and_compact():
    obj = {"a": [1, 2.5, None, True], "b": {"c": "é ☃"}, "d": ""}
    out = jsoncodec.dumps(obj)
    assert isinstance(out, bytes) and b" " not in out.replace("é ☃".encode(), b"")
    assert jsoncodec.loads(out) == obj
    assert jsoncodec.loads(jsoncodec.dumps_str(obj)) == obj
    assert isinstance(jsoncodec.dumps_str(obj), str)


@pytest.mark.parametrize("obj", [
    {"big": 2 ** 70},                 # past 64 bits: orjson refuses, the stdlib writes it
    {"lone": "\ud800"},               # a lone surrogate
    {1: "non-string key"},            # the stdlib writes "1"
])
def test_what_orjson_refuses_the_stdlib_encodes(obj):
    want = json.dumps(obj, separators=(",", ":"))
    assert jsoncodec.dumps(obj) == want.encode()
    assert jsoncodec.dumps_str(obj) == want


def test_what_orjson_refuses_the_stdlib_decodes():
    assert jsoncodec.loads(b'{"s":"\\ud800"}') == {"s": "\ud800"}
    assert jsoncodec.loads("[NaN]")[0] != jsoncodec.loads("[NaN]")[0]  # nan, as json.loads
    # past int64 a number decodes as a float, as the kube-apiserver's decoder does
    assert jsoncodec.loads(b'{"n":123456789012345678901234567890}')["n"] == 1.2345678901234568e29
    assert jsoncodec.loads(b'{"n":9223372036854775807}')["n"] == 2 ** 63 - 1


def test_errors_are_the_stdlibs_value_error():
    with pytest.raises(ValueError) as got:
        jsoncodec.loads(b'{"a": }')
    with pytest.raises(ValueError) as want:
        json.loads(b'{"a": }')
    assert str(got.value) == str(want.value)


def test_encoded_bytes_hold_only_their_size():
    """The store and the watch cache keep every object's bytes: orjson's own bytes keep their
    whole write buffer (8 KB for a 3 KB pod), the codec's do not."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_usable_size.restype = ctypes.c_size_t
    obj = {"items": [{"name": f"n{i}", "value": "v" * 30} for i in range(60)]}
    out = jsoncodec.dumps(obj)
    assert len(out) > 2000
    assert libc.malloc_usable_size(ctypes.c_void_p(id(out))) < len(out) + 256
