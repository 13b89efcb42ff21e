"""skiff save: write images to a tar archive (docker-archive, or an OCI layout with --format oci)."""

from __future__ import annotations

from .parser import Command, Opt

COMMAND = Command("save", "save [OPTIONS] IMAGE [IMAGE...]",
                  "Save one or more images to a tar archive (streamed to STDOUT by default)", [
    Opt(("-o", "--output"), "output", "str", "Write to a file, instead of STDOUT", "string"),
    Opt(("--format",), "format", "str", "Archive format: docker (docker-archive) or oci", "string",
        default="docker"),
], min_args=1)


def main(ctx, values, args) -> int:
    import os
    import sys

    from ..errors import InvalidArgument, SkiffError
    from ..runtime.images.archive import save
    from ..runtime.images.progress import Progress

    fmt = (values["format"] or "docker").lower()
    if fmt not in ("docker", "oci", "docker-archive", "oci-archive"):
        raise InvalidArgument(f'unknown format "{values["format"]}" (use docker or oci)')
    out = values["output"]
    if not out or out == "-":
        if sys.stdout.isatty():
            raise SkiffError("cowardly refusing to save to a terminal. "
                             "Use the -o flag or redirect")
        save(ctx.images, args, sys.stdout.buffer, fmt)
        return 0
    for name in args:  # fail before creating the file
        ctx.images.resolve(name)
    tmp = os.path.join(os.path.dirname(os.path.abspath(out)),
                       f".{os.path.basename(out)}.skiff-{os.getpid()}")
    try:
        with open(tmp, "wb") as f, Progress(sys.stderr, plain=False) as progress:
            save(ctx.images, args, f, fmt, progress)
        os.rename(tmp, out)
    except OSError as e:
        raise SkiffError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0
