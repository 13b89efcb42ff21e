"""skiff push: an image to a registry, byte for byte as stored."""

from __future__ import annotations

from ..errors import InvalidArgument, SkiffError
from .parser import Command, Opt

COMMAND = Command("push", "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry", [
    Opt(("--insecure",), "insecure", help="Allow plain HTTP to this registry"),
], min_args=1, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.images.push import push
    try:
        push(ctx.images, args[0], insecure=values["insecure"])
    except SkiffError as e:
        if not isinstance(e, InvalidArgument):
            e.exit_code = 1  # docker: a failed push exits 1
        raise
    return 0
