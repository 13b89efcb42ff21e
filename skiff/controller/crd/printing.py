"""Table columns of custom resources (``kubectl get crontabs``), as the apiextensions
table convertor: Name, then the version's additionalPrinterColumns (priority > 0 only with
``-o wide``; a ``date`` column shows an age) or, when it has none, Age; and the
CustomResourceDefinition's own NAME / CREATED AT.

:func:`jsonpath` evaluates the simple JSONPath of a printer column (``.spec.replicas``,
``.status.conditions[?(@.type=="Ready")].status``, ``.spec.items[*].name``, ``.metadata['x.y']``).
"""
from __future__ import annotations

import json
import re
from typing import Any

from skiff.api import tables as T

_STEP = re.compile(r"""\.([A-Za-z0-9_\-]+)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[(\*|-?\d+)\]"""
                   r"""|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)\]""")


def jsonpath(obj: Any, path: str) -> list:
    """Every value ``path`` reaches in ``obj`` (none when a step is missing)."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    if p.startswith("$"):
        p = p[1:]
    vals = [obj]
    pos = 0
    while pos < len(p):
        m = _STEP.match(p, pos)
        if m is None:
            return []
        pos = m.end()
        key = m.group(1) or m.group(2) or m.group(3)
        nxt = []
        for v in vals:
            if key is not None:
                if isinstance(v, dict) and key in v:
                    nxt.append(v[key])
            elif m.group(4) is not None:
                if not isinstance(v, list):
                    continue
                if m.group(4) == "*":
                    nxt.extend(v)
                else:
                    i = int(m.group(4))
                    if -len(v) <= i < len(v):
                        nxt.append(v[i])
            else:
                field, op = m.group(5), m.group(6)
                want = next((g for g in (m.group(7), m.group(8)) if g is not None), None)
                if want is None:
                    raw = m.group(9)
                    try:
                        want = json.loads(raw)
                    except ValueError:
                        want = raw
                for e in v if isinstance(v, list) else []:
                    got = jsonpath(e, "." + field)
                    hit = bool(got) and got[0] == want
                    if hit == (op == "=="):
                        nxt.append(e)
        vals = nxt
    return vals


def columns_for(ck) -> list[dict]:
    cols = [T.NAME_COLUMN]
    if not ck.columns:
        return cols + [T.AGE_COLUMN]
    for c in ck.columns:
        cols.append({"name": c.get("name", ""), "type": c.get("type", "string"), "format": c.get("format", ""),
                     "description": c.get("description", ""), "priority": int(c.get("priority") or 0)})
    return cols


def _cell(col: dict, obj: dict, now: float | None) -> Any:
    vals = jsonpath(obj, col.get("jsonPath") or "")
    if not vals:
        return None
    if col.get("type") == "date" and len(vals) == 1 and isinstance(vals[0], str):
        return T.since(vals[0], now)
    if len(vals) == 1:
        v = vals[0]
        if isinstance(v, (dict, list)):
            return json.dumps(v, separators=(",", ":"))
        return v
    return ",".join(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in vals)


def cells_for(ck):
    cols = list(ck.columns)

    def cells(obj: dict, now: float | None = None) -> list:
        name = (obj.get("metadata") or {}).get("name", "")
        if not cols:
            return [name, T._age(obj, now)]
        return [name] + [_cell(c, obj, now) for c in cols]
    return cells


CRD_COLUMNS = [T.NAME_COLUMN, T._col("Created At", "CreationTimestamp is a timestamp representing the server time "
                                                    "when this object was created.", "date")]


def crd_cells(obj: dict, now: float | None = None) -> list:
    md = obj.get("metadata") or {}
    return [md.get("name", ""), md.get("creationTimestamp")]
