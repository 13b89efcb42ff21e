"""Short link names for layer directories (like docker overlay2's ``l/`` directory).

overlayfs takes its whole mount data in one page, so 100 lowerdirs named by
64-hex diff_ids do not fit even relative to the layers directory. Every layer
also gets ``<root>/links/<10-char base32 name> -> ../layers/<hex>`` (a sibling
of the layers directory, so that listing the layers lists layers only); the
container's init chdirs there and names each lowerdir in 10 characters. The
name is derived from the diff_id, so concurrent creators make the same link.

Imported on the ``skiff run`` path: no imports beyond os.
"""

from __future__ import annotations

import os

LINK_DIR = "links"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
LINK_LEN = 10       # 50 bits of the diff_id
LONG_LEN = 26       # docker's length (130 bits), used when a short name is taken


def link_name(diff_hex: str, length: int = LINK_LEN) -> str:
    """The base32 link name of a layer: the first 5*length bits of its diff_id."""
    n = int(diff_hex[:64].ljust(64, "0"), 16) >> (256 - 5 * length)
    return "".join(_B32[(n >> (5 * i)) & 31] for i in range(length - 1, -1, -1))


def links_dir(layers_root: str) -> str:
    """Where the links of the layers in ``layers_root`` live (its sibling ``links``)."""
    return os.path.join(os.path.dirname(layers_root.rstrip("/")), LINK_DIR)


def _target(layers_root: str, diff_hex: str) -> str:
    return f"../{os.path.basename(layers_root.rstrip('/'))}/{diff_hex}"


def link_path(layers_root: str, diff_hex: str, length: int = LINK_LEN) -> str:
    return os.path.join(links_dir(layers_root), link_name(diff_hex, length))


def ensure_link(layers_root: str, diff_hex: str) -> str:
    """Make (or check) the short link of a stored layer; returns its name in links_dir().

    Two layers whose short names collide (50 bits: crafted layers could) never take
    each other's link: the second gets docker's longer name.
    """
    d, target = links_dir(layers_root), _target(layers_root, diff_hex)
    for length in (LINK_LEN, LONG_LEN):
        name = link_name(diff_hex, length)
        if _make(os.path.join(d, name), target):
            return name
    raise OSError(f"cannot make a link for layer {diff_hex}: name taken")


def _make(path: str, target: str) -> bool:
    """True when ``path`` is (now) a link to ``target``; False when another layer has it."""
    for _ in range(3):
        try:
            os.symlink(target, path)
            return True
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), 0o711, exist_ok=True)
            continue
        except FileExistsError:
            pass
        try:
            current = os.readlink(path)
        except FileNotFoundError:
            continue  # removed meanwhile: try again
        except OSError:
            current = None
        if current == target:
            return True
        if current is not None and os.path.isdir(path):
            return False  # the name of another stored layer
        # stale (its layer is gone) or not a link: replace it atomically
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(target, tmp)
        os.replace(tmp, path)
        return True
    return False


def remove_link(layers_root: str, diff_hex: str) -> None:
    for length in (LINK_LEN, LONG_LEN):
        path = link_path(layers_root, diff_hex, length)
        try:
            if os.readlink(path) == _target(layers_root, diff_hex):
                os.unlink(path)
        except OSError:
            pass
