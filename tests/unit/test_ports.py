"""-p parsing and holding host ports (loopback only, port 0)."""

import socket

import pytest

from skiff.errors import Conflict, InvalidArgument
from skiff.runtime.network.ports import format_binding, hold, parse_publish


@pytest.mark.parametrize("spec,want", [
    ("8080:80", ("", 8080, 80, "tcp")),
    ("127.0.0.1:5432:5432", ("127.0.0.1", 5432, 5432, "tcp")),
    ("80", ("", 0, 80, "tcp")),
    ("127.0.0.1::80/udp", ("127.0.0.1", 0, 80, "udp")),
    ("53/udp", ("", 0, 53, "udp")),
])
def test_parse_publish(spec, want):
    p = parse_publish(spec)
    assert (p["host_ip"], p["host_port"], p["container_port"], p["proto"]) == want


@pytest.mark.parametrize("spec", ["x:80", "80/sctp", "1:2:3:4", "70000", "0", "300.1.1.1:80:80"])
def test_parse_publish_rejects(spec):
    with pytest.raises(InvalidArgument):
        parse_publish(spec)


def test_hold_picks_a_port_and_refuses_a_taken_one():
    bindings, fds = hold([parse_publish("127.0.0.1::80")])
    try:
        port = bindings[0]["host_port"]
        assert port > 0
        s = socket.socket()
        with pytest.raises(OSError):
            s.bind(("127.0.0.1", port))  # held: nobody else gets it
        s.close()
        with pytest.raises(Conflict) as ei:
            hold([parse_publish(f"127.0.0.1:{port}:80")])
        assert "port is already allocated" in str(ei.value)
    finally:
        import os
        for fd in fds:
            os.close(fd)
    assert format_binding(bindings[0]) == f"127.0.0.1:{port}->80/tcp"
