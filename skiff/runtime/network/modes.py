"""Network modes as docker names them: `bridge` (the default network) or another network's
name, `host`, `none`, and `container:NAME` (join that container's network namespace)."""

from __future__ import annotations

from ...errors import InvalidArgument

NONE, HOST, BRIDGE, CONTAINER = "none", "host", "bridge", "container"
DEFAULT_NETWORK = "bridge"


class NetworkMode:
    def __init__(self, kind: str, network: str = "", container: str = ""):
        self.kind, self.network, self.container = kind, network, container

    @property
    def name(self) -> str:
        if self.kind == CONTAINER:
            return f"container:{self.container}"
        return self.network or self.kind

    @property
    def new_namespace(self) -> bool:
        """Whether the container's init unshares a network namespace of its own."""
        return self.kind in (NONE, BRIDGE)

    def setup_inside(self) -> None:
        """Runs in the container's init, inside its new network namespace."""
        if self.new_namespace:
            loopback_up()


def parse_mode(text: str) -> NetworkMode:
    if text in (NONE, HOST):
        return NetworkMode(text)
    if text.startswith("container:"):
        ref = text.split(":", 1)[1]
        if not ref:
            raise InvalidArgument('invalid network mode "container:": name a container')
        return NetworkMode(CONTAINER, container=ref)
    if text in ("", "default"):
        text = DEFAULT_NETWORK
    return NetworkMode(BRIDGE, network=text)


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
