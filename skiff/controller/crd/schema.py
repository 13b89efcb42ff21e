"""Custom resources against their CRD's structural schema (openAPIV3Schema), as the
apiextensions-apiserver treats them: :func:`prune` drops the fields the schema does not
specify (x-kubernetes-preserve-unknown-fields keeps them; the root's apiVersion/kind/metadata
and an x-kubernetes-embedded-resource's are always kept), :func:`apply_defaults` fills
``default`` values, :func:`validate` returns the field errors with Kubernetes' paths and
messages (``spec.size: Invalid value: "huge": spec.size in body must be of type integer:
"string"``).

Every function takes the schema as stored in the CRD (plain dicts) and the object, and only
reads the schema.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import re
import uuid
from datetime import datetime
from typing import Any

from skiff.api.jsontree import json_copy
from skiff.api.validation import json_path

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
TYPE_INVALID = "FieldValueTypeInvalid"

PRESERVE = "x-kubernetes-preserve-unknown-fields"
EMBEDDED = "x-kubernetes-embedded-resource"
INT_OR_STRING = "x-kubernetes-int-or-string"
_META_KEYS = ("apiVersion", "kind", "metadata")


# ------------------------------------------------------------------ pruning

def prune(obj: Any, schema: dict, *, root: bool = True) -> list[list]:
    """Remove (in place) every field ``schema`` does not specify; returns their paths
    (lists of keys), in the order met."""
    dropped: list[list] = []
    _prune(obj, schema or {}, [], dropped, root or bool((schema or {}).get(EMBEDDED)))
    return dropped


def _prune(value: Any, s: dict, path: list, dropped: list, keep_meta: bool) -> None:
    if isinstance(value, dict):
        props = s.get("properties")
        addl = s.get("additionalProperties")
        preserve = bool(s.get(PRESERVE))
        for k in list(value):
            if keep_meta and k in _META_KEYS:
                continue
            if props is not None and k in props:
                sub = props[k] or {}
                _prune(value[k], sub, path + [k], dropped, bool(sub.get(EMBEDDED)))
            elif isinstance(addl, dict):
                _prune(value[k], addl, path + [k], dropped, bool(addl.get(EMBEDDED)))
            elif addl is True or preserve:
                continue
            else:
                dropped.append(path + [k])
                del value[k]
    elif isinstance(value, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                _prune(v, items, path + [i], dropped, bool(items.get(EMBEDDED)))


# ------------------------------------------------------------------ defaulting

def apply_defaults(value: Any, s: dict) -> None:
    """Fill ``default`` values (in place) of absent or null (non-nullable) properties,
    depth first as Kubernetes' structural defaulting."""
    if not isinstance(s, dict):
        return
    if isinstance(value, dict):
        props = s.get("properties") or {}
        for k, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if "default" in sub and (k not in value or (value[k] is None and not sub.get("nullable"))):
                value[k] = json_copy(sub["default"])
        for k, v in value.items():
            sub = props.get(k)
            if isinstance(sub, dict):
                apply_defaults(v, sub)
            elif isinstance(s.get("additionalProperties"), dict):
                apply_defaults(v, s["additionalProperties"])
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for i, v in enumerate(value):
            if v is None and "default" in s["items"] and not s["items"].get("nullable"):
                value[i] = json_copy(s["items"]["default"])
            apply_defaults(value[i], s["items"])


# ------------------------------------------------------------------ validation

def _type_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _is(v: Any, t: str) -> bool:
    actual = _type_of(v)
    return actual == t or (t == "number" and actual == "integer")


def show(v: Any) -> str:
    """A value as Kubernetes' field errors print it."""
    if v is None:
        return '"null"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, int) or not v.is_integer() else str(int(v))
    if isinstance(v, str):
        return json.dumps(v)
    s = json.dumps(v, separators=(",", ":"), sort_keys=True)
    return s if len(s) <= 80 else s[:77] + "..."


def _num(n: Any) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() else str(n)


def _cause(path: list, reason: str, message: str) -> dict:
    return {"field": json_path(path), "reason": reason, "message": message}


_DURATION = re.compile(r"^[-+]?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$|^0$")
_HOSTNAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _format_ok(fmt: str, v: str) -> bool:
    try:
        if fmt == "date-time":
            datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
            return "T" in v.upper()
        if fmt == "date":
            datetime.strptime(v, "%Y-%m-%d")
        elif fmt == "uuid":
            uuid.UUID(v)
            return len(v) == 36
        elif fmt == "ipv4":
            ipaddress.IPv4Address(v)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(v)
        elif fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
        elif fmt == "byte":
            base64.b64decode(v, validate=True)
        elif fmt == "hostname":
            return len(v) <= 255 and bool(_HOSTNAME.match(v))
        elif fmt == "email":
            return bool(_EMAIL.match(v))
        elif fmt == "duration":
            return bool(_DURATION.match(v))
    except (ValueError, TypeError):
        return False
    return True


def validate(value: Any, s: dict, path: list | None = None) -> list[dict]:
    """The field errors of ``value`` against the structural schema ``s``."""
    out: list[dict] = []
    _validate(value, s or {}, path or [], out)
    return out


def _validate(v: Any, s: dict, path: list, out: list) -> None:
    name = json_path(path)
    if v is None:
        if s.get("nullable") or (not s.get("type") and not s.get(INT_OR_STRING)):
            return
        t = s.get("type") or "integer,string"
        out.append(_cause(path, TYPE_INVALID, f'Invalid value: "null": {name} in body must be of type {t}: "null"'))
        return
    t = s.get("type")
    if s.get(INT_OR_STRING):
        if _type_of(v) not in ("integer", "string"):
            out.append(_cause(path, TYPE_INVALID, f"Invalid value: {show(v)}: {name} in body must be of type "
                                                  f'integer,string: "{_type_of(v)}"'))
            return
    elif t and not _is(v, t):
        out.append(_cause(path, TYPE_INVALID,
                          f'Invalid value: {show(v)}: {name} in body must be of type {t}: "{_type_of(v)}"'))
        return
    if "enum" in s and isinstance(s["enum"], list) and v not in s["enum"]:
        out.append(_cause(path, NOT_SUPPORTED, f"Unsupported value: {show(v)}: supported values: "
                                               + ", ".join(show(e) for e in s["enum"])))
    if isinstance(v, str):
        if "maxLength" in s and len(v) > s["maxLength"]:
            n = s["maxLength"]
            out.append(_cause(path, TOO_LONG, f"Too long: may not be more than {n} byte{'' if n == 1 else 's'}"))
        if "minLength" in s and len(v) < s["minLength"]:
            out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body should be at least "
                                             f"{s['minLength']} chars long"))
        if s.get("pattern"):
            try:
                ok = re.search(s["pattern"], v) is not None
            except re.error:
                ok = True
            if not ok:
                out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body should match "
                                                 f"'{s['pattern']}'"))
        fmt = s.get("format")
        if fmt and fmt != "int-or-string" and not _format_ok(fmt, v):
            out.append(_cause(path, TYPE_INVALID, f"Invalid value: {show(v)}: {name} in body must be of type "
                                                  f"{fmt}: {show(v)}"))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        if "maximum" in s:
            mx = s["maximum"]
            if (v >= mx) if s.get("exclusiveMaximum") else (v > mx):
                rel = "less than" if s.get("exclusiveMaximum") else "less than or equal to"
                out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body should be {rel} {_num(mx)}"))
        if "minimum" in s:
            mn = s["minimum"]
            if (v <= mn) if s.get("exclusiveMinimum") else (v < mn):
                rel = "greater than" if s.get("exclusiveMinimum") else "greater than or equal to"
                out.append(_cause(path, INVALID,
                                  f"Invalid value: {show(v)}: {name} in body should be {rel} {_num(mn)}"))
        if s.get("multipleOf") and (v / s["multipleOf"]) % 1:
            out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body should be a multiple of "
                                             f"{_num(s['multipleOf'])}"))
    elif isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            out.append(_cause(path, TOO_MANY, f"Too many: {len(v)}: must have at most {s['maxItems']} items"))
        if "minItems" in s and len(v) < s["minItems"]:
            out.append(_cause(path, INVALID, f"Invalid value: {len(v)}: {name} in body should have at least "
                                             f"{s['minItems']} items"))
        if s.get("uniqueItems") or s.get("x-kubernetes-list-type") == "set":
            seen: list = []
            for i, e in enumerate(v):
                if e in seen:
                    out.append(_cause(path + [i], "FieldValueDuplicate", f"Duplicate value: {show(e)}"))
                seen.append(e)
        items = s.get("items")
        if isinstance(items, dict):
            for i, e in enumerate(v):
                _validate(e, items, path + [i], out)
    elif isinstance(v, dict):
        for req in s.get("required") or []:
            if req not in v:
                out.append(_cause(path + [req], REQUIRED, "Required value"))
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            out.append(_cause(path, TOO_MANY, f"Too many: {len(v)}: must have at most {s['maxProperties']} items"))
        if "minProperties" in s and len(v) < s["minProperties"]:
            out.append(_cause(path, INVALID, f"Invalid value: {len(v)}: {name} in body should have at least "
                                             f"{s['minProperties']} properties"))
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, e in sorted(v.items()):
            sub = props.get(k)
            if isinstance(sub, dict):
                _validate(e, sub, path + [k], out)
            elif isinstance(addl, dict):
                _validate(e, addl, path + [k], out)
        if s.get(EMBEDDED) and path:
            for k in ("apiVersion", "kind"):
                if not v.get(k):
                    out.append(_cause(path + [k], REQUIRED, f"Required value: {k} is required"))
    for key in ("allOf", "anyOf", "oneOf"):
        subs = s.get(key)
        if not isinstance(subs, list):
            continue
        results = [validate(v, sub, path) for sub in subs if isinstance(sub, dict)]
        if key == "allOf":
            for r in results:
                out.extend(r)
        elif key == "anyOf" and results and all(results):
            out.append(results[0][0])
        elif key == "oneOf" and results and sum(1 for r in results if not r) != 1:
            out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body must validate one and "
                                             f"only one schema (oneOf)"))
    if isinstance(s.get("not"), dict) and not validate(v, s["not"], path):
        out.append(_cause(path, INVALID, f"Invalid value: {show(v)}: {name} in body must not validate the "
                                         f"schema (not)"))
