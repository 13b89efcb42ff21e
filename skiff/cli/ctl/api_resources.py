"""Print the supported API resources.

Usage:
  skiffctl api-resources
"""
from __future__ import annotations

import sys

FLAGS = []


def run(ctx, args, opts) -> int:
    from skiff.api.resources import RESOURCES
    from .printers import tabwrite
    from .discovery import learn
    learn()     # the custom resources the server serves too
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    for r in sorted(RESOURCES.values(), key=lambda r: r.plural):
        rows.append([r.plural, ",".join(r.short_names), r.api_version, str(r.namespaced).lower(), r.kind])
    sys.stdout.write(tabwrite(rows))
    return 0
