"""Published ports: docker's `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`, and the host sockets
that hold them.

skiff publishes with DNAT rules, which do not occupy the host port by themselves. Like
docker-proxy, the monitor therefore keeps a bound socket on every published host port:
another program (or another container) asking for the port gets EADDRINUSE, and a port
that is already taken is refused before the container starts.
"""

from __future__ import annotations

import os

from ...errors import Conflict, InvalidArgument


def parse_publish(spec: str) -> dict:
    """One `-p` value -> {"host_ip", "host_port" (0: pick one), "container_port", "proto"}."""
    text, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f'invalid proto "{proto}" in "{spec}": use tcp or udp')
    host_ip = ""
    if text.startswith("["):  # [::1]:80:80
        end = text.find("]")
        host_ip, text = text[1:end], text[end + 2:]
        parts = text.split(":")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise InvalidArgument(f'invalid publish spec "{spec}": use [IP:]HOSTPORT:CONTAINERPORT[/PROTO]')
    if len(parts) == 1:
        host_port, container_port = "", parts[0]
    else:
        host_port, container_port = parts
    try:
        cport = int(container_port)
        hport = int(host_port) if host_port else 0
    except ValueError:
        raise InvalidArgument(f'invalid publish spec "{spec}": ports must be numbers') from None
    if not 0 < cport < 65536 or not 0 <= hport < 65536:
        raise InvalidArgument(f'invalid publish spec "{spec}": ports must be between 1 and 65535')
    if host_ip:
        _check_ipv4(host_ip, spec)
    return {"host_ip": host_ip, "host_port": hport, "container_port": cport, "proto": proto}


def _check_ipv4(ip: str, spec: str) -> None:
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise InvalidArgument(f'invalid IP address "{ip}" in publish spec "{spec}" (IPv4 only for now)')


def hold(ports: list[dict]) -> tuple[list[dict], list[int]]:
    """Bind every host port; returns the bindings with the ports actually chosen and the
    socket fds to keep open. Raises Conflict (and closes what it bound) when one is taken."""
    import _socket
    held: list[int] = []
    out = []
    try:
        for p in ports:
            kind = _socket.SOCK_STREAM if p["proto"] == "tcp" else _socket.SOCK_DGRAM
            s = _socket.socket(_socket.AF_INET, kind)
            held.append(s.detach())
            s = _socket.socket(_socket.AF_INET, kind, 0, held[-1])
            ip = p["host_ip"] or "0.0.0.0"
            try:
                s.bind((ip, p["host_port"]))
            except OSError as e:
                s.detach()  # the fd is closed below, once: a later GC of ``s`` must not close it again
                raise Conflict(f"Bind for {ip}:{p['host_port']} failed: port is already allocated"
                               f" ({e.strerror})") from None
            port = s.getsockname()[1]
            s.detach()
            out.append({**p, "host_port": port})
    except BaseException:
        for fd in held:
            os.close(fd)
        raise
    return out, held


def format_binding(p: dict) -> str:
    """`0.0.0.0:8080->80/tcp`, as docker ps shows it."""
    return f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['proto']}"
