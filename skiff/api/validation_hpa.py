"""autoscaling/v2 HorizontalPodAutoscaler: defaults (SetDefaults_HorizontalPodAutoscaler) and the
rules beyond the schema (ValidateHorizontalPodAutoscaler), with kube-apiserver's messages.

Defaults: minReplicas 1; no metrics -> 80% average CPU utilization; a ``behavior`` that is given
gets its missing parts: scaleUp {stabilizationWindowSeconds 0, selectPolicy Max, policies
[Pods 4 / 15 s, Percent 100 / 15 s]}, scaleDown {stabilizationWindowSeconds 300, selectPolicy
Max, policies [Percent 100 / 15 s]}.

Metrics skiff can compute: Resource and ContainerResource (from metrics.k8s.io). Pods, Object
and External metrics need a custom or external metrics API, which skiff does not serve: they
are accepted with a warning, and the controller reports them as it does when such an API is
missing (ScalingActive False, FailedGet...Metric).
"""
from __future__ import annotations

from typing import Any

from skiff.api.validation import (FORBIDDEN, NOT_SUPPORTED, REQUIRED, Warning, _cause, _invalid, _label_selector,
                                  _short)

__all__ = ["check_hpa", "default_hpa", "scale_down_rules", "scale_up_rules", "DEFAULT_CPU_UTILIZATION"]

DEFAULT_CPU_UTILIZATION = 80
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")   # sorted, as Go's sets print
_SOURCE_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource",
                 "ContainerResource": "containerResource", "External": "external"}
_TARGET_TYPES = ("Utilization", "Value", "AverageValue")


def scale_up_rules(given: dict | None = None) -> dict:
    """GenerateHPAScaleUpRules: the given rules with Kubernetes' defaults for what is unset."""
    return _rules(given, 0, [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}])


def scale_down_rules(given: dict | None = None) -> dict:
    return _rules(given, 300, [{"type": "Percent", "value": 100, "periodSeconds": 15}])


def _rules(given: dict | None, window: int, policies: list[dict]) -> dict:
    out = {"stabilizationWindowSeconds": window, "selectPolicy": "Max", "policies": policies}
    for k, v in (given or {}).items():
        if v is not None:
            out[k] = v
    return out


def default_hpa(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    b = spec.get("behavior")
    if isinstance(b, dict):
        if isinstance(b.get("scaleUp"), (dict, type(None))):
            b["scaleUp"] = scale_up_rules(b.get("scaleUp"))
        if isinstance(b.get("scaleDown"), (dict, type(None))):
            b["scaleDown"] = scale_down_rules(b.get("scaleDown"))


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _quantity_sign(q: Any) -> int | None:
    from skiff.agent.quantity import parse_quantity
    try:
        d = parse_quantity(q)
    except Exception:  # noqa: BLE001 - the schema reports a malformed quantity
        return None
    return (d > 0) - (d < 0)


def _path_segment(v: str) -> list[str]:
    """IsValidPathSegmentName."""
    if v in (".", ".."):
        return [f"may not be '{v}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in v]


def _ref(ref: Any, f: str) -> list[dict]:
    causes: list[dict] = []
    if not isinstance(ref, dict):
        return causes
    for key in ("kind", "name"):
        v = ref.get(key)
        if not v:
            causes.append(_cause(f"{f}.{key}", REQUIRED, "Required value"))
        else:
            causes.extend(_invalid(f"{f}.{key}", v, msg) for msg in _path_segment(str(v)))
    return causes


def _target(t: Any, f: str) -> list[dict]:
    causes: list[dict] = []
    if not isinstance(t, dict):
        return causes
    typ = t.get("type")
    if not typ:
        causes.append(_cause(f + ".type", REQUIRED, "Required value: must specify a metric target type"))
    if typ not in _TARGET_TYPES:
        causes.append(_invalid(f + ".type", typ or "", "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        if t.get(key) is not None and _quantity_sign(t[key]) not in (1, None):
            causes.append(_invalid(f"{f}.{key}", t[key], "must be positive"))
    au = t.get("averageUtilization")
    if _int(au) and au < 1:
        causes.append(_invalid(f + ".averageUtilization", au, "must be greater than 0"))
    return causes


def _resource_source(src: dict, f: str, container: bool) -> list[dict]:
    causes: list[dict] = []
    if not src.get("name"):
        causes.append(_cause(f + ".name", REQUIRED, "Required value: must specify a resource name"))
    if container and not src.get("container"):
        causes.append(_cause(f + ".container", REQUIRED, "Required value: must specify a container"))
    t = src.get("target") if isinstance(src.get("target"), dict) else {}
    causes.extend(_target(t, f + ".target"))
    if t.get("averageUtilization") is None and t.get("averageValue") is None:
        causes.append(_cause(f + ".target.averageUtilization", REQUIRED,
                             "Required value: must set either a target raw value or a target utilization"))
    if t.get("averageUtilization") is not None and t.get("averageValue") is not None:
        causes.append(_cause(f + ".target.averageValue", FORBIDDEN,
                             "Forbidden: may not set both a target raw value and a target utilization"))
    return causes


def _custom_source(src: dict, f: str, kind: str) -> list[dict]:
    causes: list[dict] = []
    metric = src.get("metric") if isinstance(src.get("metric"), dict) else {}
    if not metric.get("name"):
        causes.append(_cause(f + ".metric.name", REQUIRED, "Required value: must specify a metric name"))
    if metric.get("selector") is not None:
        _label_selector(metric["selector"], f + ".metric.selector", causes)
    if kind == "Object":
        causes.extend(_ref(src.get("describedObject"), f + ".describedObject"))
    t = src.get("target") if isinstance(src.get("target"), dict) else {}
    causes.extend(_target(t, f + ".target"))
    if kind == "Pods" and t.get("averageValue") is None:
        causes.append(_cause(f + ".target.averageValue", REQUIRED, "Required value: must specify a positive target averageValue"))
    if kind in ("Object", "External") and t.get("value") is None and t.get("averageValue") is None:
        causes.append(_cause(f + ".target.value", REQUIRED,
                             "Required value: must set either a target value or averageValue"))
    return causes


def _metric(m: Any, f: str) -> list[dict]:
    causes: list[dict] = []
    if not isinstance(m, dict):
        return causes
    typ = m.get("type")
    if not typ:
        causes.append(_cause(f + ".type", REQUIRED, "Required value: must specify a metric source type"))
    present = [k for k in ("object", "pods", "resource", "containerResource", "external") if m.get(k) is not None]
    kinds = {v: k for k, v in _SOURCE_FIELD.items()}
    if present:   # the first source present is validated (Kubernetes validates it when it is the only one)
        src, kind = m[present[0]], kinds[present[0]]
        if isinstance(src, dict) and len(present) == 1:
            if kind in ("Resource", "ContainerResource"):
                causes.extend(_resource_source(src, f"{f}.{present[0]}", kind == "ContainerResource"))
            else:
                causes.extend(_custom_source(src, f"{f}.{present[0]}", kind))
    if typ in _SOURCE_FIELD:
        if m.get(_SOURCE_FIELD[typ]) is None:
            causes.append(_cause(f"{f}.{_SOURCE_FIELD[typ]}", REQUIRED,
                                 "Required value: must populate information for the given metric source"))
    elif typ:
        causes.append(_cause(f + ".type", NOT_SUPPORTED, f"Unsupported value: {_short(typ)}: supported values: "
                             + ", ".join(f'"{t}"' for t in _SOURCE_TYPES)))
    if len(present) > 1:
        for k in present:
            if k != _SOURCE_FIELD.get(typ):
                causes.append(_cause(f"{f}.{k}", FORBIDDEN, "Forbidden: must populate the given metric source only"))
    return causes


def _scaling_rules(r: Any, f: str) -> list[dict]:
    causes: list[dict] = []
    if not isinstance(r, dict):
        return causes
    w = r.get("stabilizationWindowSeconds")
    if _int(w) and w < 0:
        causes.append(_invalid(f + ".stabilizationWindowSeconds", w, "must be greater than or equal to zero"))
    if _int(w) and w > MAX_STABILIZATION_WINDOW_SECONDS:
        causes.append(_invalid(f + ".stabilizationWindowSeconds", w,
                               f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    sp = r.get("selectPolicy")
    if sp is not None and sp not in ("Disabled", "Max", "Min"):
        causes.append(_cause(f + ".selectPolicy", NOT_SUPPORTED, f'Unsupported value: {_short(sp)}: supported values: '
                             '"Disabled", "Max", "Min"'))
    pols = r.get("policies")
    if isinstance(pols, list) and not pols:
        causes.append(_cause(f + ".policies", REQUIRED, "Required value: must specify at least one Policy"))
    for i, p in enumerate(pols if isinstance(pols, list) else []):
        if not isinstance(p, dict):
            continue
        pf = f"{f}.policies[{i}]"
        if p.get("type") not in ("Pods", "Percent"):
            causes.append(_cause(pf + ".type", NOT_SUPPORTED, f'Unsupported value: {_short(p.get("type") or "")}: '
                                 'supported values: "Percent", "Pods"'))
        if _int(p.get("value")) and p["value"] <= 0:
            causes.append(_invalid(pf + ".value", p["value"], "must be greater than zero"))
        ps = p.get("periodSeconds")
        if _int(ps) and ps <= 0:
            causes.append(_invalid(pf + ".periodSeconds", ps, "must be greater than zero"))
        if _int(ps) and ps > MAX_PERIOD_SECONDS:
            causes.append(_invalid(pf + ".periodSeconds", ps, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return causes


def check_hpa(obj: dict) -> tuple[list[dict], list[Warning]]:
    """ValidateHorizontalPodAutoscaler's causes, and warnings for metrics skiff cannot read."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [], []
    causes = _ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    mn, mx = spec.get("minReplicas"), spec.get("maxReplicas")
    if _int(mn) and mn < 1:
        causes.append(_invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if _int(mx) and mx < 1:
        causes.append(_invalid("spec.maxReplicas", mx, "must be greater than 0"))
    if _int(mx) and _int(mn) and mx < mn:
        causes.append(_invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    warnings: list[Warning] = []
    for i, m in enumerate(spec.get("metrics") if isinstance(spec.get("metrics"), list) else []):
        causes.extend(_metric(m, f"spec.metrics[{i}]"))
        if isinstance(m, dict) and m.get("type") in ("Pods", "Object", "External"):
            f = f"spec.metrics[{i}].{_SOURCE_FIELD[m['type']]}"
            warnings.append(Warning(f, f"{f}: {m['type']} metrics are not supported by skiff (it serves no custom "
                                       "or external metrics API): the autoscaler reports this metric as unavailable"))
    b = spec.get("behavior")
    if isinstance(b, dict):
        causes.extend(_scaling_rules(b.get("scaleUp"), "spec.behavior.scaleUp"))
        causes.extend(_scaling_rules(b.get("scaleDown"), "spec.behavior.scaleDown"))
    return causes, warnings
