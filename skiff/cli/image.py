"""skiff image prune: remove unused images (`skiff image ls/rm/...` go to the other verbs)."""

from __future__ import annotations

import sys

from ..errors import SkiffError
from .parser import Command, Opt

COMMAND = Command("image", "image prune [OPTIONS]", "Remove unused images", [
    Opt(("-a", "--all"), "all", help="Remove all unused images, not just dangling ones"),
    Opt(("-f", "--force"), "force", help="Do not prompt for confirmation"),
], min_args=1, max_args=1)

WARN_DANGLING = "WARNING! This will remove all dangling images."
WARN_ALL = "WARNING! This will remove all images without at least one container associated to them."


def main(ctx, values, args) -> int:
    from .table import human_size

    if args[0] != "prune":
        raise SkiffError(f'skiff image: unknown command "{args[0]}"\n'
                         "See 'skiff image prune --help'.")
    if not values["force"]:
        warning = WARN_ALL if values["all"] else WARN_DANGLING
        if not sys.stdin.isatty():
            raise SkiffError(f"{warning}\nstdin is not a terminal, cannot ask for "
                             "confirmation: use -f to prune without it")
        sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    used = {c.spec.image_id for c in ctx.containers.list()}
    lines, reclaimed = ctx.images.prune(values["all"], used, ctx.containers.users_of_image)
    if lines:
        print("Deleted Images:")
        for line in lines:
            print(line)
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
