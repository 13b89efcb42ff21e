"""How kubectl prints objects: table columns per kind, AGE, the pod STATUS column,
Go's tabwriter layout, and -o yaml|json|name."""
from __future__ import annotations

import json

from skiff.api import tables as T
from skiff.api.tables import (NONE, human_duration, meta, node_address, node_roles, node_status,  # noqa: F401
                              parse_time, pod_ip, pod_status, selector_string, since)


# ------------------------------------------------------------------ tabwriter

def tabwrite(rows: list[list[str]], padding: int = 3, minwidth: int = 6) -> str:
    """Go's text/tabwriter as kubectl uses it: every cell but a line's last is padded to its
    column block's width (max cell + padding, at least minwidth). Blocks are runs of
    consecutive lines that have a cell in that column."""
    n = len(rows)
    widths: list[dict[int, int]] = [dict() for _ in range(n)]

    def fmt(line0: int, line1: int, col: int) -> None:
        i = line0
        while i < line1:
            if len(rows[i]) - 1 > col:
                j = i
                w = minwidth
                while j < line1 and len(rows[j]) - 1 > col:
                    w = max(w, len(rows[j][col]) + padding)
                    j += 1
                for k in range(i, j):
                    widths[k][col] = w
                fmt(i, j, col + 1)
                i = j
            else:
                i += 1

    fmt(0, n, 0)
    out = []
    for r, row in enumerate(rows):
        cells = [c.ljust(widths[r][ci]) if ci in widths[r] else c for ci, c in enumerate(row)]
        out.append("".join(cells))
    return "\n".join(out) + ("\n" if out else "")


# ------------------------------------------------------------------ helpers

def labels_str(obj: dict) -> str:
    lb = meta(obj).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(lb.items())) or NONE


def kind_name(res, obj: dict | None = None, name: str | None = None) -> str:
    """kubectl's "pod/web" (lease.coordination.k8s.io/x for grouped kinds)."""
    prefix = res.singular + (f".{res.group}" if res.group else "")
    return f"{prefix}/{name if name is not None else meta(obj).get('name', '')}"


# ------------------------------------------------------------------ table rows
# The columns and cells are the API server's (skiff.api.tables): one implementation for both.
# skiffctl lists kinds without a server-side Table as NAME/AGE, like kubectl's fallback.

_GENERIC = [{"name": "Name", "priority": 0}, {"name": "Age", "priority": 0}]


def _columns(plural: str) -> list[dict]:
    return T.COLUMNS.get(plural, _GENERIC)


def _cells(plural: str, obj: dict) -> list:
    if plural in T.CELLS:
        return T.CELLS[plural](obj, None)
    return generic_row(obj)


def _shown(plural: str, values: list, wide: bool) -> list[str]:
    cols = _columns(plural)
    return [v if isinstance(v, str) else str(v) for c, v in zip(cols, values) if wide or not c["priority"]]


def pod_row(pod: dict, wide: bool = False) -> list[str]:
    return _shown("pods", T.pod_cells(pod), wide)


def node_row(node: dict, wide: bool = False) -> list[str]:
    return _shown("nodes", T.node_cells(node), wide)


def namespace_row(ns: dict, wide: bool = False) -> list[str]:
    return _shown("namespaces", T.namespace_cells(ns), wide)


def event_row(ev: dict, wide: bool = False) -> list[str]:
    return _shown("events", T.event_cells(ev), wide)


def lease_row(lease: dict, wide: bool = False) -> list[str]:
    return _shown("leases", T.lease_cells(lease), wide)


def deployment_row(d: dict, wide: bool = False) -> list[str]:
    return _shown("deployments", T.deployment_cells(d), wide)


def replicaset_row(rs: dict, wide: bool = False) -> list[str]:
    return _shown("replicasets", T.replicaset_cells(rs), wide)


def configmap_row(cm: dict, wide: bool = False) -> list[str]:
    return _shown("configmaps", T.configmap_cells(cm), wide)


def secret_row(s: dict, wide: bool = False) -> list[str]:
    return _shown("secrets", T.secret_cells(s), wide)


def generic_row(obj: dict, wide: bool = False) -> list[str]:
    return [meta(obj).get("name", ""), since(meta(obj).get("creationTimestamp"))]


def event_source(ev: dict) -> str:
    """The event's source as describe prints it ("<unknown>" when there is none)."""
    return T.event_source_cell(ev) or "<unknown>"


def event_sort_key(ev: dict) -> float:
    for k in ("lastTimestamp", "eventTime", "firstTimestamp"):
        t = parse_time(ev.get(k))
        if t is not None:
            return t
    if ev.get("series"):
        t = parse_time(ev["series"].get("lastObservedTime"))
        if t is not None:
            return t
    return parse_time(meta(ev).get("creationTimestamp")) or 0.0


def headers_for(plural: str, wide: bool = False, all_namespaces: bool = False,
                show_labels: bool = False) -> list[str]:
    h = [c["name"].upper() for c in _columns(plural) if wide or not c["priority"]]
    if all_namespaces:
        h = ["NAMESPACE"] + h
    if show_labels:
        h.append("LABELS")
    return h


def row_for(plural: str, obj: dict, wide: bool = False, all_namespaces: bool = False,
            show_labels: bool = False, name_prefix: str = "") -> list[str]:
    row = _shown(plural, _cells(plural, obj), wide)
    if name_prefix and plural != "events":
        row[0] = name_prefix + row[0]
    if all_namespaces:
        row = [meta(obj).get("namespace", "")] + row
    if show_labels:
        row.append(labels_str(obj))
    return row


# ------------------------------------------------------------------ -o json|yaml

def to_json(obj) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def to_yaml(obj) -> str:
    import yaml
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(obj, Dumper=dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
