"""skiff attach: connect this terminal to a running container's stdin and output, as docker
attach does (the container must have been run with -i or -t; its monitor listens for it).

The output from now on is shown; with --no-stdin nothing is sent. The end of our stdin
leaves the container's open (docker's, for a container not run attached). Detach keys are not
implemented: the attach ends with the container, or kill the client (the container goes on).
"""
from __future__ import annotations

import os
import struct

from .parser import Command, Opt

COMMAND = Command("attach", "attach [OPTIONS] CONTAINER",
                  "Attach local standard input, output, and error streams to a running container", [
                      Opt(("--no-stdin",), "no_stdin", help="Do not attach STDIN"),
                  ], min_args=1, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.containers import frames
    from ..runtime.containers.attach import connect
    from .attach import attach_and_wait, terminal_size
    c = ctx.containers.get(args[0])
    att = connect(c)
    interactive = bool(c.spec.stdin) and not values["no_stdin"]
    if c.spec.tty and interactive and os.isatty(0):
        size = terminal_size(0)
        if size:
            att.send(frames.RESIZE, struct.pack("HHHH", size[0], size[1], 0, 0))
    return attach_and_wait(c, att, bool(c.spec.tty), interactive, close_stdin=False)
