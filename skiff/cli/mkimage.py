"""skiff mkimage busybox [NAME:TAG]: a runnable base image from the host's busybox-static,
so the quick start needs no registry (the idea of docker's contrib/mkimage scripts)."""

from __future__ import annotations

from ..errors import InvalidArgument
from .parser import Command, Opt

COMMAND = Command("mkimage", "mkimage busybox [NAME[:TAG]]",
                  "Make a base image from the host's busybox (Debian busybox-static)", [
    Opt(("--busybox",), "busybox", "str", "Path of the static busybox binary (default: from $PATH)", "path"),
], min_args=1, max_args=2)


def main(ctx, values, args) -> int:
    if args[0] != "busybox":
        raise InvalidArgument(f'unknown base "{args[0]}": skiff can make "busybox"')
    from ..runtime.images.busybox import make_busybox_image
    kwargs = {"busybox": values["busybox"]} if values["busybox"] else {}
    img = make_busybox_image(ctx.images, args[1] if len(args) > 1 else "busybox:latest", **kwargs)
    print(img.id)
    return 0
