"""Container networking. Issue 2 has the `none` and `host` modes; bridges, IPAM and port
publishing build on the same seam: a mode decides whether the container's init unshares
a network namespace and what it does inside it before the command starts."""

from .modes import NetworkMode, parse_mode

__all__ = ["NetworkMode", "parse_mode"]
