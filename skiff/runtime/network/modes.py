"""Network modes as docker names them: `none`, `host` (and, later, `bridge`, NAME, `container:NAME`)."""

from __future__ import annotations

from ...errors import InvalidArgument

SUPPORTED = ("none", "host")


class NetworkMode:
    def __init__(self, name: str):
        self.name = name

    @property
    def new_namespace(self) -> bool:
        """Whether the container gets a network namespace of its own."""
        return self.name != "host"

    def setup_inside(self) -> None:
        """Runs in the container's init, inside its new network namespace."""
        if self.name == "none":
            loopback_up()


def parse_mode(text: str) -> NetworkMode:
    if text in SUPPORTED:
        return NetworkMode(text)
    if text in ("bridge", "default") or text.startswith("container:"):
        raise InvalidArgument(f'network mode "{text}" is not available yet in this version of skiff: '
                              f'use --network none or --network host')
    raise InvalidArgument(f"network {text} not found")


def loopback_up() -> None:
    """Bring `lo` up in a fresh network namespace (an ioctl: no netlink import on the hot path)."""
    import _socket
    import fcntl
    import struct
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))  # SIOCSIFFLAGS IFF_UP
    finally:
        s.close()
