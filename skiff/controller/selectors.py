"""Label and field selectors, as in the Kubernetes query parameters ``labelSelector`` and
``fieldSelector``.

``parse_label_selector("app=web,tier in (a,b),!canary")``, ``selector_from(sel)`` (a
metav1.LabelSelector object: matchLabels and matchExpressions) and
``parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "pods")`` return a
selector whose ``matches(obj)`` says whether an object is selected. A syntax error or an
unsupported field raises :class:`skiff.api.errors.APIError` 400 BadRequest.

Label operators: ``=``, ``==``, ``!=``, ``in (...)``, ``notin (...)``, ``key`` (exists),
``!key`` (does not exist); requirements are ANDed by commas. ``!=`` and ``notin`` also
select objects without the label (Kubernetes' semantics).

Field selectors: ``=``, ``==``, ``!=``, ANDed by commas; ``\\,``, ``\\=``, ``\\\\`` escapes.
A missing field has the value "" (``spec.nodeName=`` selects unscheduled pods).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from skiff.api.errors import bad_request

# ------------------------------------------------------------------------------- labels

_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class LabelRequirement:
    __slots__ = ("key", "op", "values")

    def __init__(self, key: str, op: str, values: tuple[str, ...] = ()):
        self.key, self.op, self.values = key, op, values

    def matches(self, labels: dict) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        v = labels.get(self.key)
        if op in ("=", "=="):
            return v is not None and v == self.values[0]
        if op == "!=":
            return v is None or v != self.values[0]
        if op == "in":
            return v is not None and v in self.values
        if op == "notin":
            return v is None or v not in self.values
        return False

    def __repr__(self) -> str:
        return f"LabelRequirement({self.key!r}, {self.op!r}, {self.values!r})"


class LabelSelector:
    """ANDed requirements; an empty selector selects everything."""

    def __init__(self, requirements: list[LabelRequirement]):
        self.requirements = requirements

    def empty(self) -> bool:
        return not self.requirements

    def matches_labels(self, labels: dict | None) -> bool:
        labels = labels or {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def matches(self, obj: dict) -> bool:
        if not self.requirements:
            return True
        return self.matches_labels((obj.get("metadata") or {}).get("labels"))


def _label_error(sel: str, why: str):
    return bad_request(f"unable to parse requirement: {why}" if why else f"couldn't parse the selector string \"{sel}\"")


def _check_key(key: str, sel: str) -> None:
    if not key or len(key.rpartition("/")[2]) > 63 or not _KEY_RE.match(key):
        raise _label_error(sel, f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                                f"'-', '_' or '.', and must start and end with an alphanumeric character")


def _check_value(v: str, sel: str) -> None:
    if len(v) > 63 or not _VALUE_RE.match(v):
        raise _label_error(sel, f'Invalid value: "{v}": a valid label must be an empty string or consist of '
                                f"alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                f"alphanumeric character")


def _split_top(s: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unable to parse requirement: unexpected ')' in \"{s}\"")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise bad_request(f"unable to parse requirement: missing ')' in \"{s}\"")
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(sel: str | None) -> LabelSelector:
    if sel is None or not sel.strip():
        return LabelSelector([])
    reqs: list[LabelRequirement] = []
    for part in _split_top(sel):
        p = part.strip()
        if not p:
            raise _label_error(sel, "found '', expected: !, identifier, or 'end of string'")
        m = _SET_RE.match(p)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            _check_key(key, sel)
            values = tuple(v.strip() for v in vals.split(",")) if vals.strip() else ()
            if not values:
                raise _label_error(sel, f"for '{op}', 'notin' operators, values set can't be empty")
            for v in values:
                _check_value(v, sel)
            reqs.append(LabelRequirement(key, op, values))
            continue
        for op in ("!=", "==", "="):
            if op in p:
                key, _, value = p.partition(op)
                key, value = key.strip(), value.strip()
                _check_key(key, sel)
                _check_value(value, sel)
                reqs.append(LabelRequirement(key, op, (value,)))
                break
        else:
            if p.startswith("!"):
                key = p[1:].strip()
                _check_key(key, sel)
                reqs.append(LabelRequirement(key, "!"))
            else:
                if " " in p:
                    raise _label_error(sel, f"found '{p.split()[1]}', expected: ',', '!=', '=', '==', 'in', notin'")
                _check_key(p, sel)
                reqs.append(LabelRequirement(p, "exists"))
    return LabelSelector(reqs)


_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from(sel: dict | None) -> LabelSelector | None:
    """metav1.LabelSelectorAsSelector: None (nothing) for a nil selector; an empty one selects
    everything."""
    if sel is None:
        return None
    reqs = [LabelRequirement(k, "=", (str(v),)) for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or ():
        op = _OPS.get(e.get("operator"))
        if op is None:
            return None
        reqs.append(LabelRequirement(e.get("key"), op, tuple(e.get("values") or ())))
    return LabelSelector(reqs)


# ------------------------------------------------------------------------------- fields

def _path(*parts: str) -> Callable[[dict], Any]:
    def get(obj: dict) -> Any:
        cur: Any = obj
        for p in parts:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
        return cur
    return get


_COMMON = {"metadata.name": _path("metadata", "name"),
           "metadata.namespace": _path("metadata", "namespace")}

FIELDS: dict[str, dict[str, Callable[[dict], Any]]] = {
    "pods": {**_COMMON,
             "spec.nodeName": _path("spec", "nodeName"),
             "spec.restartPolicy": _path("spec", "restartPolicy"),
             "spec.schedulerName": _path("spec", "schedulerName"),
             "spec.serviceAccountName": _path("spec", "serviceAccountName"),
             "spec.hostNetwork": _path("spec", "hostNetwork"),
             "status.phase": _path("status", "phase"),
             "status.podIP": _path("status", "podIP"),
             "status.nominatedNodeName": _path("status", "nominatedNodeName")},
    "events": {**_COMMON,
               "involvedObject.kind": _path("involvedObject", "kind"),
               "involvedObject.namespace": _path("involvedObject", "namespace"),
               "involvedObject.name": _path("involvedObject", "name"),
               "involvedObject.uid": _path("involvedObject", "uid"),
               "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
               "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
               "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
               "reason": _path("reason"),
               "reportingComponent": _path("reportingComponent"),
               "source": _path("source", "component"),
               "type": _path("type")},
    "nodes": {**_COMMON, "spec.unschedulable": _path("spec", "unschedulable")},
    "namespaces": {**_COMMON, "status.phase": _path("status", "phase")},
    "leases": dict(_COMMON),
    "secrets": {**_COMMON, "type": _path("type")},
}


def _field_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class FieldRequirement:
    __slots__ = ("field", "op", "value", "get")

    def __init__(self, field: str, op: str, value: str, get: Callable[[dict], Any]):
        self.field, self.op, self.value, self.get = field, op, value, get

    def matches(self, obj: dict) -> bool:
        v = _field_str(self.get(obj))
        return (v == self.value) if self.op != "!=" else (v != self.value)

    def __repr__(self) -> str:
        return f"FieldRequirement({self.field!r}, {self.op!r}, {self.value!r})"


class FieldSelector:
    def __init__(self, requirements: list[FieldRequirement]):
        self.requirements = requirements

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: dict) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value an equality requirement on ``field`` demands, or None."""
        for r in self.requirements:
            if r.field == field and r.op != "!=":
                return r.value
        return None


def _split_escaped(s: str, sep: str) -> list[str]:
    out, cur, i = [], [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            if s[i + 1] not in "\\,=!":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{s[i + 1]}")
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _find_op(term: str) -> tuple[int, str] | None:
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        if term.startswith("!=", i):
            return i, "!="
        if term.startswith("==", i):
            return i, "=="
        if ch == "=":
            return i, "="
        i += 1
    return None


def parse_field_selector(sel: str | None, resource: str) -> FieldSelector:
    if sel is None or not sel.strip():
        return FieldSelector([])
    allowed = FIELDS.get(resource, _COMMON)
    reqs: list[FieldRequirement] = []
    for term in _split_escaped(sel, ","):
        if not term:
            continue
        found = _find_op(term)
        if found is None:
            raise bad_request(f"invalid selector: '{sel}'; can't understand '{term}'")
        i, op = found
        field = _unescape(term[:i]).strip()
        value = _unescape(term[i + len(op):])
        get = allowed.get(field)
        if get is None:
            raise bad_request(f'field label not supported: {field}')
        reqs.append(FieldRequirement(field, op, value, get))
    return FieldSelector(reqs)


class Selector:
    """A label and a field selector together."""

    __slots__ = ("labels", "fields")

    def __init__(self, labels: LabelSelector, fields: FieldSelector):
        self.labels, self.fields = labels, fields

    def empty(self) -> bool:
        return self.labels.empty() and self.fields.empty()

    def matches(self, obj: dict) -> bool:
        return self.labels.matches(obj) and self.fields.matches(obj)


def parse_selectors(resource: str, label_selector: str | None,
                    field_selector: str | None) -> Selector:
    return Selector(parse_label_selector(label_selector), parse_field_selector(field_selector, resource))
