"""``describe`` of kinds skiffctl has no describer for (custom resources): kubectl's generic
describer, which prints the object's fields as labelled sections (``cronSpec`` -> ``Cron Spec:``),
sorted, nested maps indented, after Name/Namespace/Labels/Annotations/API Version/Kind."""
from __future__ import annotations

import re

_ACRONYMS = ("API", "URL", "UID", "OSB", "GUID")
_SKIP = (".metadata.managedFields", ".metadata.name", ".metadata.namespace", ".metadata.labels",
         ".metadata.annotations", ".apiVersion", ".kind")


def smart_label(field: str) -> str:
    """kubectl's smartLabelFor: camelCase split into capitalized words."""
    if any(not (c.isalpha() or c == "-") for c in field):
        return field
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|-", field)
    out = []
    for p in parts:
        out.append(p.upper() if p.upper() in _ACRONYMS else p[:1].upper() + p[1:])
    return " ".join(out)


def _scalar(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "<nil>"
    return str(v)


def write_content(w, level: int, content: dict, prefix: str = "") -> None:
    for field in sorted(content):
        value = content[field]
        expr = f"{prefix}.{field}"
        if expr in _SKIP:
            continue
        if isinstance(value, dict):
            w.w(level, f"{smart_label(field)}:")
            write_content(w, level + 1, value, expr)
        elif isinstance(value, list):
            w.w(level, f"{smart_label(field)}:")
            for child in value:
                if isinstance(child, dict):
                    write_content(w, level + 1, child, expr)
                else:
                    w.w(level + 1, _scalar(child))
        else:
            w.w(level, f"{smart_label(field)}:\t{_scalar(value)}")
