"""``skiff import``: a root filesystem tarball becomes a one-layer image."""

from __future__ import annotations

import os

from skiff.errors import InvalidArgument

from .changes import apply_changes
from .store import Image, ImageStore, utc_now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
         "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}


def host_architecture() -> str:
    """The host's architecture in OCI/Go terms (amd64, arm64, ...)."""
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def import_rootfs(store: ImageStore, source: str | BinaryIO, ref: str | None,
                  changes: list[str] | tuple[str, ...] = (), message: str = "",
                  *, created: str | None = None, created_by: str = "skiff import") -> Image:
    """Import a rootfs tar (gzip or not) as a one-layer image, like docker import.

    ``source`` is a path, ``"-"`` for standard input, or a binary file object.
    ``ref`` (name[:tag]) tags the image; None leaves it untagged. ``changes``
    are Dockerfile instructions (see changes.py), checked before anything is read.
    """
    from .reference import normalize_tag

    if ref:
        normalize_tag(ref)  # fail before reading the archive
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        raise InvalidArgument(f"importing from a URL is not supported: {source}")
    now = created or utc_now()
    config = {
        "architecture": host_architecture(),
        "os": "linux",
        "created": now,
        "config": {"Env": [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": now, "created_by": created_by,
                     "comment": message or f"Imported from {_display(source)}"}],
    }
    config = apply_changes(config, list(changes))
    if source == "-":
        import sys

        src: str | BinaryIO = sys.stdin.buffer
        name = "<stdin>"
    elif isinstance(source, str):
        if os.path.isdir(source):
            raise InvalidArgument(f"cannot import {source}: is a directory, not a tar archive")
        src, name = source, source
    else:
        src, name = source, _display(source)
    layer = store.add_layer_from_tar(src, name)
    try:
        return store.add_image(config, [layer], ref=ref)
    finally:
        store.release([layer])


def _display(source: object) -> str:
    if isinstance(source, str):
        return source
    return getattr(source, "name", None) if isinstance(getattr(source, "name", None), str) \
        else "archive"
