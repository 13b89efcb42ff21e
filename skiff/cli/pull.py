"""skiff pull: an image from a registry, every digest verified."""

from __future__ import annotations

from ..errors import InvalidArgument, SkiffError
from .parser import Command, Opt

COMMAND = Command("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", [
    Opt(("--insecure",), "insecure", help="Allow plain HTTP to this registry"),
    Opt(("--platform",), "platform", "str", "Set platform if the image is multi-platform (os/arch)", "string"),
], min_args=1, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.images.pull import pull
    plat = None
    if values["platform"]:
        os_, _, arch = values["platform"].partition("/")
        plat = (os_, arch.split("/")[0] or "amd64")
    try:
        pull(ctx.images, args[0], insecure=values["insecure"], platform_=plat)
    except SkiffError as e:
        if not isinstance(e, InvalidArgument):
            e.exit_code = 1  # docker: a failed pull exits 1
        raise
    return 0
