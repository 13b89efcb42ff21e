"""skiff kill: send a signal (default SIGKILL) to a running container."""

from __future__ import annotations

from .parser import Command, Opt
from .stop import for_each

COMMAND = Command("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", [
    Opt(("-s", "--signal"), "signal", "str", 'Signal to send to the container (default "KILL")', "string"),
], min_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.containers.signals import parse
    from ..runtime.containers.stop import kill
    sig = parse(values["signal"] or "KILL")
    return for_each(args, lambda ref: kill(ctx.containers.get(ref), sig))
