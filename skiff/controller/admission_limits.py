"""The LimitRanger admission of a pod create (Kubernetes' LimitRanger plugin), which needs the
store: the LimitRanges of the pod's namespace.

- Defaults (``Container`` items): a container without a limit (request) of a resource the item
  has a ``default`` (``defaultRequest``) for gets it, and the pod is annotated
  ``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory request for container web;
  cpu limit for container web``. The items themselves are defaulted when stored
  (:func:`default_limitrange`): ``default`` from ``max``, ``defaultRequest`` from ``default``,
  then from ``min``.
- Bounds: per container (``Container``) and summed over the pod (``Pod``): requests at least
  ``min``, limits at most ``max``, limit / request at most ``maxLimitRequestRatio``. A pod out of
  bounds is refused with 403 and Kubernetes' words: ``pods "web" is forbidden: maximum cpu usage
  per Container is 500m, but limit is 1`` (several reasons: ``[a, b]``).

The defaults go in before the pod's own validation runs again on the result (a default limit
below a request the pod has is the pod's 422, as in Kubernetes, whose validation follows
mutating admission).
"""
from __future__ import annotations

from decimal import Decimal

from skiff.api import errors as E
from skiff.api.validation import ValidationError
from skiff.api.validation_limits import check_container_resources, quantity, show_quantity as _s
from skiff.controller.storage import prefix_for

__all__ = ["default_limitrange", "admit_pod_limit_ranges", "LIMIT_RANGER_ANNOTATION"]

LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"


def default_limitrange(obj: dict) -> None:
    """SetDefaults_LimitRangeItem, for each Container item, in place."""
    spec = obj.get("spec")
    for item in (spec.get("limits") or ()) if isinstance(spec, dict) and isinstance(spec.get("limits"), list) else ():
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        if not all(isinstance(item.get(f) or {}, dict) for f in ("max", "min", "default", "defaultRequest")):
            continue
        default = item.setdefault("default", {}) if item.get("default") is not None else {}
        request = item.get("defaultRequest") if item.get("defaultRequest") is not None else {}
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _apply_defaults(pod: dict, item: dict) -> list[str]:
    """mergeContainerResources over every container: the annotation's parts."""
    parts = []
    spec = pod["spec"]
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or ():
            res = c.setdefault("resources", {})
            set_req, set_lim = [], []
            lim = res.get("limits") or {}
            for k, v in (item.get("default") or {}).items():
                if k not in lim:
                    lim[k] = v
                    set_lim.append(k)
            req = res.get("requests") or {}
            for k, v in (item.get("defaultRequest") or {}).items():
                if k not in req:
                    req[k] = v
                    set_req.append(k)
            if lim:
                res["limits"] = lim
            if req:
                res["requests"] = req
            if set_req:
                parts.append(f"{', '.join(set_req)} request for {_kind(group)} {c.get('name')}")
            if set_lim:
                parts.append(f"{', '.join(set_lim)} limit for {_kind(group)} {c.get('name')}")
    return parts


def _kind(group: str) -> str:
    return "init container" if group == "initContainers" else "container"


def _q(src: dict, k: str) -> Decimal | None:
    return quantity(src[k]) if k in src else None


def _bounds(item: dict, kind: str, requests: dict, limits: dict, errors: list[str]) -> None:
    """minConstraint, maxConstraint and limitRequestRatioConstraint of one container or pod
    (the first failure of each constraint)."""
    for k, v in (item.get("min") or {}).items():
        lo, req, lim = quantity(v), _q(requests, k), _q(limits, k)
        if lo is None:
            continue
        if req is None:
            errors.append(f"minimum {k} usage per {kind} is {_s(v)}.  No request is specified")
        elif req < lo:
            errors.append(f"minimum {k} usage per {kind} is {_s(v)}, but request is {_s(requests[k])}")
        elif lim is not None and lim < lo:
            errors.append(f"minimum {k} usage per {kind} is {_s(v)}, but limit is {_s(limits[k])}")
    for k, v in (item.get("max") or {}).items():
        hi, req, lim = quantity(v), _q(requests, k), _q(limits, k)
        if hi is None:
            continue
        if lim is None:
            errors.append(f"maximum {k} usage per {kind} is {_s(v)}.  No limit is specified")
        elif lim > hi:
            errors.append(f"maximum {k} usage per {kind} is {_s(v)}, but limit is {_s(limits[k])}")
        elif req is not None and req > hi:
            errors.append(f"maximum {k} usage per {kind} is {_s(v)}, but request is {_s(requests[k])}")
    for k, v in (item.get("maxLimitRequestRatio") or {}).items():
        ratio, req, lim = quantity(v), _q(requests, k), _q(limits, k)
        if ratio is None:
            continue
        if not req:
            errors.append(f"{k} max limit to request ratio per {kind} is {_s(v)}, but no request is specified or "
                          "request is 0")
        elif not lim:
            errors.append(f"{k} max limit to request ratio per {kind} is {_s(v)}, but no limit is specified or "
                          "limit is 0")
        elif lim / req > ratio:
            errors.append(f"{k} max limit to request ratio per {kind} is {_s(v)}, but provided ratio is "
                          f"{float(lim / req):f}")


def _fmt(v: Decimal) -> str:
    return format(v.normalize(), "f")


def _pod_totals(spec: dict) -> tuple[dict, dict]:
    """The pod's requests and limits: the containers' sums, or an init container's if larger."""
    out = []
    for field in ("requests", "limits"):
        total: dict[str, Decimal] = {}
        for c in spec.get("containers") or ():
            for k, v in ((c.get("resources") or {}).get(field) or {}).items():
                q = quantity(v)
                if q is not None:
                    total[k] = total.get(k, Decimal(0)) + q
        for c in spec.get("initContainers") or ():
            for k, v in ((c.get("resources") or {}).get(field) or {}).items():
                q = quantity(v)
                if q is not None and q > total.get(k, Decimal(0)):
                    total[k] = q
        out.append({k: _fmt(v) for k, v in total.items()})
    return out[0], out[1]


async def admit_pod_limit_ranges(storage, pod: dict, namespace: str, shown_name: str) -> None:
    """Apply and check the namespace's LimitRanges on ``pod`` (admitted, about to be created) in place."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    ranges, _, _ = await storage.list(prefix_for("limitranges", namespace))
    if not ranges:
        return
    items = [it for lr in ranges for it in ((lr.get("spec") or {}).get("limits") or ()) if isinstance(it, dict)]
    parts: list[str] = []
    for item in items:
        if item.get("type") == "Container":
            parts += _apply_defaults(pod, item)
    if parts:
        md = pod.setdefault("metadata", {})
        md["annotations"] = {**(md.get("annotations") or {}),
                             LIMIT_RANGER_ANNOTATION: "LimitRanger plugin set: " + "; ".join(parts)}
        causes = check_container_resources(spec)
        if causes:
            raise ValidationError(causes, "Pod", shown_name)
    errors: list[str] = []
    for item in items:
        if item.get("type") == "Container":
            for group in ("initContainers", "containers"):
                for c in spec.get(group) or ():
                    res = c.get("resources") or {}
                    _bounds(item, "Container", res.get("requests") or {}, res.get("limits") or {}, errors)
        elif item.get("type") == "Pod":
            req, lim = _pod_totals(spec)
            _bounds(item, "Pod", req, lim, errors)
    if errors:
        msg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise E.forbidden("pods", shown_name, msg)
