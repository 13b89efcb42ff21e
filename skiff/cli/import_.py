"""skiff import: a rootfs tarball (as `tar -C dir -c .` writes it) becomes a one-layer image."""

from __future__ import annotations

from .parser import Command, Opt

COMMAND = Command("import", "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
                  "Import the contents from a tarball to create a filesystem image", [
    Opt(("-c", "--change"), "change", "list", "Apply Dockerfile instruction to the created image", "list"),
    Opt(("-m", "--message"), "message", "str", "Set commit message for imported image", "string"),
], min_args=1, max_args=2)


def main(ctx, values, args) -> int:
    from ..runtime.images.importer import import_rootfs
    img = import_rootfs(ctx.images, args[0], args[1] if len(args) > 1 else None,
                        values["change"], values["message"] or "")
    print(img.id)
    return 0
