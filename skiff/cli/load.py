"""skiff load: load images from a docker-archive or OCI layout tar (gzip or not)."""

from __future__ import annotations

from .parser import Command, Opt

COMMAND = Command("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN", [
    Opt(("-i", "--input"), "input", "str", "Read from tar archive file, instead of STDIN", "string"),
    Opt(("-q", "--quiet"), "quiet", help="Suppress the load output"),
], max_args=0)


def main(ctx, values, args) -> int:
    import sys

    from ..errors import SkiffError
    from ..runtime.images.archive import load
    from ..runtime.images.progress import Progress

    src = values["input"]
    if not src or src == "-":
        if sys.stdin.isatty():
            raise SkiffError("requested load from stdin, but stdin is empty")
        src, name = sys.stdin.buffer, "<stdin>"
    else:
        name = src
    with Progress(sys.stderr, quiet=values["quiet"]) as progress:
        lines = load(ctx.images, src, name, progress)
    for line in lines:
        print(line)
    return 0
