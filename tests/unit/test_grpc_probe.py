"""The grpc probe (skiff.agent.grpcprobe) against a real gRPC server: grpcio with the standard
health service (grpcio-health-checking), on loopback."""
from __future__ import annotations

import asyncio
import socket
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from skiff.agent.grpcprobe import FAILURE, SUCCESS, grpc_probe, request_message, response_status


@pytest.fixture
def server():
    """A gRPC server on 127.0.0.1 (a free port) with the health service: the whole server and
    "etcd" SERVING, "db" NOT_SERVING."""
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    h = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(h, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    h.set("", health_pb2.HealthCheckResponse.SERVING)
    h.set("etcd", health_pb2.HealthCheckResponse.SERVING)
    h.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    yield port, h
    srv.stop(None).wait()


def run(coro):
    return asyncio.run(coro)


def test_serving_and_not_serving(server):
    port, h = server
    assert run(grpc_probe("127.0.0.1", port, "", 2)) == (SUCCESS, "service healthy")
    assert run(grpc_probe("127.0.0.1", port, "etcd", 2)) == (SUCCESS, "service healthy")
    assert run(grpc_probe("127.0.0.1", port, "db", 2)) == (FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
    result, msg = run(grpc_probe("127.0.0.1", port, "nosuch", 2))
    assert result == FAILURE and msg.startswith("error: health rpc probe failed: rpc error: code = NotFound desc = ")
    h.set("etcd", health_pb2.HealthCheckResponse.NOT_SERVING)          # the server changed its mind
    assert run(grpc_probe("127.0.0.1", port, "etcd", 2))[0] == FAILURE


def test_a_server_without_the_health_service():
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        result, msg = run(grpc_probe("127.0.0.1", port, "", 2))
    finally:
        srv.stop(None).wait()
    assert result == FAILURE
    assert msg.startswith("timeout: this server does not implement the grpc health protocol (grpc.health.v1.Health)")


def test_nothing_listening_and_a_server_that_never_answers():
    with socket.socket() as s:          # a port nobody listens on: bound, not listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert run(grpc_probe("127.0.0.1", port, "", 1)) == (
            FAILURE, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: '
                     f'dial tcp 127.0.0.1:{port}: connect: connection refused')
    with socket.socket() as s:          # accepts the connection, says nothing
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert run(grpc_probe("127.0.0.1", port, "", 0.3)) == (
            FAILURE, "timeout: health rpc did not complete within 300ms")


def test_messages():
    assert request_message("") == b"\x00\x00\x00\x00\x00"
    assert request_message("etcd") == b"\x00\x00\x00\x00\x06\x0a\x04etcd"
    assert response_status(b"\x00\x00\x00\x00\x02\x08\x02") == 2
    assert response_status(b"\x00\x00\x00\x00\x00") == 0          # proto3: UNKNOWN is not sent
    with pytest.raises(ValueError):
        response_status(b"\x01\x00\x00\x00\x00")                   # compressed: not asked for
