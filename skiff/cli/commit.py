"""skiff commit: create a new image from a container's changes."""

from __future__ import annotations

from .parser import Command, Opt

COMMAND = Command("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                  "Create a new image from a container's changes", [
    Opt(("-a", "--author"), "author", "str", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
        "string"),
    Opt(("-c", "--change"), "change", "list", "Apply Dockerfile instruction to the created image", "list"),
    Opt(("-m", "--message"), "message", "str", "Commit message", "string"),
    Opt(("-p", "--pause"), "pause", help="Accepted for docker compatibility; the container "
        "is not paused during commit", default=True),
], min_args=1, max_args=2)


def main(ctx, values, args) -> int:
    from ..runtime.images.commit import commit_container

    container = ctx.containers.get(args[0])
    img = commit_container(ctx.images, container, args[1] if len(args) > 1 else None,
                           message=values["message"] or "", author=values["author"] or "",
                           changes=values["change"])
    print(img.id)
    return 0
