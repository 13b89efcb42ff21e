"""A ``grpc`` probe, as the kubelet's: the standard health check ``grpc.health.v1.Health/Check``
over plaintext HTTP/2 (h2c with prior knowledge, no TLS), for the probe's ``service``.

SERVING is a success. Anything else is a failure with the kubelet's message: the status the
server answered (``service unhealthy (responded with "NOT_SERVING")``), a server without the
health service (``Unimplemented``), an RPC error (``rpc error: code = NotFound desc = ...``),
or no connection or answer within ``timeoutSeconds``.

The HTTP/2 framing and header compression are the ``h2`` library's; the request message is
small enough to write here (HealthCheckRequest{1: service}), the response is read with
skiff.api.protobuf (HealthCheckResponse{1: status}).
"""
from __future__ import annotations

import asyncio
import urllib.parse

from skiff.api.timefmt import go_duration

from .probes import FAILURE, SUCCESS, dial_error
PATH = "/grpc.health.v1.Health/Check"
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CODE_NAMES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
              "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
              "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]
UNIMPLEMENTED, DEADLINE_EXCEEDED = 12, 4
USER_AGENT = "kube-probe/1.32"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def request_message(service: str) -> bytes:
    """A gRPC length-prefixed HealthCheckRequest (field 1: the service name; empty: the server)."""
    raw = service.encode()
    body = b"\x0a" + _varint(len(raw)) + raw if raw else b""
    return b"\x00" + len(body).to_bytes(4, "big") + body


def response_status(data: bytes) -> int:
    """The ``status`` of a length-prefixed HealthCheckResponse (0, UNKNOWN, when absent)."""
    from skiff.api.protobuf import fields
    if len(data) < 5 or data[0] != 0:
        raise ValueError("not an uncompressed gRPC message")
    body = data[5:5 + int.from_bytes(data[1:5], "big")]
    return next((v for num, wt, v in fields(body) if num == 1 and wt == 0), 0)


async def grpc_probe(host: str, port: int, service: str = "", timeout: float = 1) -> tuple[str, str]:
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        why = "context deadline exceeded" if isinstance(e, (asyncio.TimeoutError, TimeoutError)) \
            else dial_error(host, port, e)
        return FAILURE, f'timeout: failed to connect service "{addr}" within {go_duration(timeout)}: {why}'
    try:
        return await asyncio.wait_for(_check(reader, writer, addr, service),
                                      max(0.001, deadline - loop.time()))
    except (asyncio.TimeoutError, TimeoutError):
        return FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}"
    except (OSError, ValueError, EOFError) as e:
        return FAILURE, f"error: health rpc probe failed: {e}"
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, addr: str,
                 service: str) -> tuple[str, str]:
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", PATH), (":authority", addr),
                            ("content-type", "application/grpc"), ("te", "trailers"),
                            ("user-agent", USER_AGENT)])
    conn.send_data(sid, request_message(service), end_stream=True)
    writer.write(conn.data_to_send())
    headers: dict[str, str] = {}
    data = bytearray()
    done = False
    while not done:
        chunk = await reader.read(65536)
        if not chunk:
            raise EOFError("the server closed the connection before answering")
        for ev in conn.receive_data(chunk):
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)) and ev.stream_id == sid:
                headers.update((k, v) for k, v in ev.headers)
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                done = True
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                raise EOFError(f"the server reset the stream (error code {ev.error_code})")
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise EOFError(f"the server ended the connection (error code {ev.error_code})")
        pending = conn.data_to_send()
        if pending:
            writer.write(pending)
    if headers.get(":status", "200") != "200":
        raise ValueError(f"rpc error: code = Unknown desc = unexpected HTTP status code "
                         f"received from server: {headers.get(':status')}")
    code = int(headers.get("grpc-status", "2") or 2)
    if code != 0:
        desc = urllib.parse.unquote(headers.get("grpc-message", ""))
        name = CODE_NAMES[code] if 0 <= code < len(CODE_NAMES) else f"Code({code})"
        if code == UNIMPLEMENTED:
            return FAILURE, ("timeout: this server does not implement the grpc health protocol "
                             f"(grpc.health.v1.Health): {desc}")
        if code == DEADLINE_EXCEEDED:
            raise asyncio.TimeoutError
        return FAILURE, f"error: health rpc probe failed: rpc error: code = {name} desc = {desc}"
    status = response_status(bytes(data))
    if status != 1:
        return FAILURE, f'service unhealthy (responded with "{STATUS_NAMES.get(status, status)}")'
    return SUCCESS, "service healthy"
