"""skiff tag: another name for the same image id."""

from __future__ import annotations

from .parser import Command

COMMAND = Command("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                  "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], min_args=2, max_args=2)


def main(ctx, values, args) -> int:
    ctx.images.tag(args[0], args[1])
    return 0
