"""skiff port: the published ports of a container, as `docker port` prints them."""

from __future__ import annotations

from ..errors import NotFound
from .parser import Command

COMMAND = Command("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]",
                  "List port mappings or a specific mapping for the container", [],
                  min_args=1, max_args=2)


def main(ctx, values, args) -> int:
    c = ctx.containers.get(args[0])
    st = c.state()
    bindings = st.ports if st.running else []
    if len(args) > 1:
        port, _, proto = args[1].partition("/")
        bindings = [b for b in bindings
                    if str(b["container_port"]) == port and b["proto"] == (proto or "tcp")]
        if not bindings:
            raise NotFound(f"No public port '{args[1]}' published for {args[0]}")
        for b in bindings:
            print(f"{b['host_ip'] or '0.0.0.0'}:{b['host_port']}")
        return 0
    for b in bindings:
        print(f"{b['container_port']}/{b['proto']} -> {b['host_ip'] or '0.0.0.0'}:{b['host_port']}")
    return 0
