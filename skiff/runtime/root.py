"""The runtime's root directory and its layout (DESIGN.md section 3).

All state lives under one directory, ``/var/lib/skiff`` by default, overridden by
``--root`` or ``SKIFF_ROOT`` so that isolated instances can run side by side.
"""

from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/skiff"


class Root:
    """Paths of one runtime root. Creating it makes the directories it needs."""

    def __init__(self, path: str | None = None):
        path = path or os.environ.get("SKIFF_ROOT") or DEFAULT_ROOT
        self.path = os.path.abspath(path)
        self.blobs = os.path.join(self.path, "blobs", "sha256")
        self.layers = os.path.join(self.path, "layers")
        self.images = os.path.join(self.path, "images")
        self.refs = os.path.join(self.path, "refs.json")
        self.containers = os.path.join(self.path, "containers")
        self.names = os.path.join(self.path, "names")
        self.networks = os.path.join(self.path, "networks")
        self.tmp = os.path.join(self.path, "tmp")
        self.locks = os.path.join(self.path, "locks")

    def ensure(self) -> "Root":
        for d in (self.blobs, self.layers, self.images, self.containers,
                  self.names, self.networks, self.tmp, self.locks):
            os.makedirs(d, mode=0o711, exist_ok=True)
        return self

    def lock_path(self, name: str) -> str:
        return os.path.join(self.locks, name + ".lock")

    def __repr__(self) -> str:
        return f"Root({self.path!r})"
