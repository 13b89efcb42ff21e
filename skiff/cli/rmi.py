"""skiff rmi: untag or delete images; refused while a container uses one, unless -f."""

from __future__ import annotations

import sys

from ..errors import SkiffError
from .parser import Command, Opt

COMMAND = Command("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", [
    Opt(("-f", "--force"), "force", help="Force removal of the image"),
], min_args=1)


def main(ctx, values, args) -> int:
    code = 0
    for ref in args:
        try:
            for line in ctx.images.remove(ref, force=values["force"],
                                          in_use=ctx.containers.users_of_image):
                print(line)
        except SkiffError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code
