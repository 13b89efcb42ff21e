"""skiff rm: remove containers; -f kills running ones first."""

from __future__ import annotations

from .parser import Command, Opt
from .stop import for_each

COMMAND = Command("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", [
    Opt(("-f", "--force"), "force", help="Force the removal of a running container (uses SIGKILL)"),
], min_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.containers.remove import remove
    return for_each(args, lambda ref: remove(ctx.containers.get(ref), values["force"]))
