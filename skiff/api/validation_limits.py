"""The rules of LimitRanges and ResourceQuotas beyond their schema (Kubernetes' ValidateLimitRange
and ValidateResourceQuota), and a container's requests against its limits (ValidateResourceRequirements):

- LimitRange: one item per type; a Pod item has no default or defaultRequest; for each resource
  min <= defaultRequest <= default <= max, and 1 <= maxLimitRequestRatio <= max/min, with the
  kube-apiserver's messages (``min value 2 is greater than max value 1``);
- ResourceQuota: resource names as Kubernetes knows them (standard, ``count/<resource>[.<group>]``,
  a storage class's, extended ``requests.<domain>/<name>``), no negative amount, whole numbers
  for the object counts; scopes among Terminating, NotTerminating, BestEffort, NotBestEffort (a
  scopeSelector is refused: skiff has no PriorityClasses or cross-namespace affinity scopes);
- a container's request of a resource may not exceed its limit of it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from skiff.api.validation import (FORBIDDEN, INVALID, NOT_SUPPORTED, _cause, _invalid,
                                  _qualified_name_error, _short)

__all__ = ["check_limitrange", "check_resourcequota", "check_container_resources", "quantity",
           "QUOTA_SCOPES", "LIMIT_TYPES", "show_quantity"]

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort")
# quota resources counted in whole objects
_COUNTED = {"pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
            "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}
_STANDARD_QUOTA = _COUNTED | {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
                              "ephemeral-storage", "requests.ephemeral-storage", "limits.ephemeral-storage",
                              "requests.storage"}


def quantity(v: Any) -> Decimal | None:
    """A quantity's value, None when it does not parse (the schema reports that)."""
    from skiff.agent.quantity import parse_quantity
    try:
        return parse_quantity(v)
    except Exception:  # noqa: BLE001 - InvalidArgument, or a type the schema refuses
        return None


def _show(v: Any) -> str:
    """A quantity as Kubernetes prints one (its canonical form). A computed value (a Decimal: a
    sum) is shown in binary units when it is a whole number of KiB, as a sum of Mi and Gi
    amounts keeps their format in Kubernetes."""
    from skiff.agent.quantity import format_quantity
    try:
        if isinstance(v, Decimal) and v >= 1024 and v % 1024 == 0:
            return format_quantity(f"{int(v) // 1024}Ki")
        return format_quantity(v)
    except Exception:  # noqa: BLE001 - not a quantity: as it is
        return v if isinstance(v, str) else str(v)


def check_limitrange(obj: dict) -> list[dict]:
    spec = obj.get("spec")
    limits = spec.get("limits") if isinstance(spec, dict) else None
    if not isinstance(limits, list):
        return []
    causes: list[dict] = []
    seen: set = set()
    for i, item in enumerate(limits):
        if not isinstance(item, dict):
            continue
        path = f"spec.limits[{i}]"
        typ = item.get("type")
        if isinstance(typ, str):
            if typ in seen:
                causes.append(_cause(f"{path}.type", "FieldValueDuplicate", f"Duplicate value: {_short(typ)}"))
            seen.add(typ)
        if typ == "Pod":
            for f in ("default", "defaultRequest"):
                if item.get(f):
                    causes.append(_cause(f"{path}.{f}", FORBIDDEN,
                                         "Forbidden: may not be specified when `type` is 'Pod'"))
        causes += _check_item(path, item)
    return causes


# (the smaller, the larger, the field blamed, how the message names them): validateLimitRangeItem's order
_ORDER = (("min", "max", "min", ("min", "max")),
          ("defaultRequest", "default", "defaultRequest", ("default request", "default limit")),
          ("min", "default", "default", ("min", "default")),
          ("default", "max", "default", ("default", "max")),
          ("min", "defaultRequest", "defaultRequest", ("min", "default request")),
          ("defaultRequest", "max", "defaultRequest", ("default request", "max")))


def _check_item(path: str, item: dict) -> list[dict]:
    causes: list[dict] = []
    fields = ("min", "max", "default", "defaultRequest", "maxLimitRequestRatio")
    m = {f: {k: quantity(v) for k, v in (item.get(f) or {}).items()} if isinstance(item.get(f), dict) else {}
         for f in fields}
    raw = {f: item.get(f) if isinstance(item.get(f), dict) else {} for f in fields}
    for f in fields:
        for k in m[f]:
            if why := _qualified_name_error(k):
                causes.append(_invalid(f"{path}.{f}[{k}]", k, why))
    keys = set().union(*m.values())
    for k in sorted(keys):
        lo, hi, ratio = m["min"].get(k), m["max"].get(k), m["maxLimitRequestRatio"].get(k)
        show = {f: _show(raw[f].get(k)) for f in fields}
        for small, big, field, words in _ORDER:
            x, y = m[small].get(k), m[big].get(k)
            if x is not None and y is not None and x > y:
                causes.append(_invalid(f"{path}.{field}[{k}]", show[field],
                                       f"{words[0]} value {show[small]} is greater than {words[1]} value {show[big]}"))
        if ratio is not None:
            if ratio < 1:
                causes.append(_invalid(f"{path}.maxLimitRequestRatio[{k}]", show["maxLimitRequestRatio"],
                                       f"ratio {show['maxLimitRequestRatio']} is less than 1"))
            elif lo and hi is not None and ratio > hi / lo:
                causes.append(_invalid(f"{path}.maxLimitRequestRatio[{k}]", show["maxLimitRequestRatio"],
                                       f"ratio {show['maxLimitRequestRatio']} is greater than max/min = "
                                       f"{float(hi / lo):f}"))
    return causes


def _quota_name_ok(name: str) -> bool:
    if name in _STANDARD_QUOTA or name.startswith(("count/", "hugepages-", "requests.hugepages-")):
        return True
    if name.endswith((".storageclass.storage.k8s.io/requests.storage",
                      ".storageclass.storage.k8s.io/persistentvolumeclaims")):
        return True
    return "/" in name and _qualified_name_error(name) is None        # extended: requests.example.com/gpu


def check_resourcequota(obj: dict) -> list[dict]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[dict] = []
    for section in ("spec", "status"):
        src = obj.get(section) if isinstance(obj.get(section), dict) else {}
        for f in ("hard", "used") if section == "status" else ("hard",):
            for k, v in (src.get(f) or {}).items() if isinstance(src.get(f), dict) else ():
                path = f"{section}.{f}[{k}]"
                if not _quota_name_ok(k):
                    causes.append(_invalid(path, k, "must be a standard resource for quota"))
                    continue
                q = quantity(v)
                if q is None:
                    continue
                if q < 0:
                    causes.append(_invalid(path, _show(v), "must be greater than or equal to 0"))
                elif (k in _COUNTED or k.startswith("count/")) and q != q.to_integral_value():
                    causes.append(_invalid(path, _show(v), "must be an integer"))
    scopes = spec.get("scopes")
    for i, sc in enumerate(scopes if isinstance(scopes, list) else ()):
        if sc not in QUOTA_SCOPES:
            causes.append(_cause(f"spec.scopes[{i}]", NOT_SUPPORTED, f"Unsupported value: {_short(sc)}: supported "
                                 "values: " + ", ".join(f'"{s}"' for s in QUOTA_SCOPES)))
    if isinstance(scopes, list):
        if any(a in scopes and b in scopes
               for a, b in (("Terminating", "NotTerminating"), ("BestEffort", "NotBestEffort"))):
            causes.append(_cause("spec.scopes", INVALID, f"Invalid value: {_short(scopes)}: conflicting scopes"))
        if "BestEffort" in scopes:
            other = [k for k in (spec.get("hard") or {}) if k not in ("pods", "count/pods")]
            if other:
                causes.append(_cause("spec.hard", INVALID, f"Invalid value: {_short(other[0])}: unsupported "
                                                           "resource for the BestEffort scope (only pods)"))
    if spec.get("scopeSelector") is not None:
        causes.append(_cause("spec.scopeSelector", NOT_SUPPORTED, "spec.scopeSelector is not supported by skiff "
                                                                  "(use spec.scopes)"))
    return causes


def check_container_resources(spec: dict) -> list[dict]:
    """A container's requests may not exceed its limits (``must be less than or equal to cpu
    limit of 500m``), and no quantity is negative."""
    causes: list[dict] = []
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or ()):
            res = c.get("resources") if isinstance(c, dict) else None
            if not isinstance(res, dict):
                continue
            path = f"spec.{group}[{i}].resources"
            lim = res.get("limits") if isinstance(res.get("limits"), dict) else {}
            req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
            for f, src in (("limits", lim), ("requests", req)):
                for k, v in src.items():
                    q = quantity(v)
                    if q is not None and q < 0:
                        causes.append(_invalid(f"{path}.{f}[{k}]", _show(v), "must be greater than or equal to 0"))
            for k, v in req.items():
                q, lq = quantity(v), quantity(lim.get(k)) if k in lim else None
                if q is not None and lq is not None and q > lq:
                    causes.append(_invalid(f"{path}.requests[{k}]", _show(v),
                                           f"must be less than or equal to {k} limit of {_show(lim[k])}"))
    return causes


show_quantity = _show
