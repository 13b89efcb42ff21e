"""skiff stop: SIGTERM (or the image's STOPSIGNAL), then SIGKILL after the grace period."""

from __future__ import annotations

import sys

from ..errors import SkiffError
from .parser import Command, Opt

COMMAND = Command("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", [
    Opt(("-t", "--time"), "time", "int", "Seconds to wait before killing the container (default 10)", "int"),
    Opt(("-s", "--signal"), "signal", "str", "Signal to send to the container", "string"),
], min_args=1)


def for_each(args, fn) -> int:
    """Apply ``fn`` to each named container; report each failure on its own line, as docker does."""
    code = 0
    for ref in args:
        try:
            fn(ref)
            print(ref)
        except SkiffError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code


def main(ctx, values, args) -> int:
    from ..runtime.containers.stop import stop

    def one(ref):
        c = ctx.containers.get(ref)
        if values["signal"]:
            from ..runtime.containers.signals import parse
            parse(values["signal"])
            c.spec.stop_signal = values["signal"]
        stop(c, values["time"])
    return for_each(args, one)
