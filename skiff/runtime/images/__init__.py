"""Images: the content-addressed store, layers, references and imports.

Public names are loaded on first use (PEP 562), so importing this package costs
nothing until a name is needed: ``skiff run`` must start in milliseconds.
"""

from __future__ import annotations

_EXPORTS = {
    "Reference": "reference",
    "parse_reference": "reference",
    "normalize_tag": "reference",
    "ImageStore": "store",
    "Image": "store",
    "LayerRecord": "store",
    "utc_now": "store",
    "import_rootfs": "importer",
    "apply_changes": "changes",
    "make_busybox_image": "busybox",
    "find_busybox": "busybox",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
