"""skiff logs: a container's json-file log."""

from __future__ import annotations

import os

from ..errors import InvalidArgument
from .parser import Command, Opt

COMMAND = Command("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", [
    Opt(("-f", "--follow"), "follow", help="Follow log output"),
    Opt(("-n", "--tail"), "tail", "str", 'Number of lines to show from the end of the logs (default "all")', "string"),
    Opt(("-t", "--timestamps"), "timestamps", help="Show timestamps"),
], min_args=1, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.containers.logs import read_logs
    c = ctx.containers.get(args[0])
    tail = values["tail"]
    if tail in (None, "all"):
        n = None
    else:
        try:
            n = int(tail)
        except ValueError:
            raise InvalidArgument(f'invalid value "{tail}" for flag --tail: expected a number or "all"') from None
    is_running = lambda: c.state().running  # noqa: E731
    for stream, data in read_logs(c.dir + "/log", tail=n, follow=values["follow"],
                                  timestamps=values["timestamps"], is_running=is_running):
        fd = 1 if stream == "stdout" else 2
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return 0
