"""The Table columns and cells of HorizontalPodAutoscalers, as the kube-apiserver prints them
(``kubectl get hpa``). Part of :mod:`skiff.api.tables`, which merges :data:`COLUMNS` and
:data:`CELLS` into its own::

    NAME   REFERENCE        TARGETS          MINPODS   MAXPODS   REPLICAS   AGE
    web    Deployment/web   cpu: 12%/50%     1         5         1          3m
    api    Deployment/api   cpu: <unknown>/50%   1     5         0          10s
"""
from __future__ import annotations

from skiff.api import tables as _T

_UNKNOWN = "<unknown>"

COLUMNS: dict[str, list[dict]] = {
    "horizontalpodautoscalers": [
        _T.NAME_COLUMN,
        _T._col("Reference", "scaleTargetRef points to the target resource to scale, and is used to the pods for which "
                             "metrics should be collected, as well as to actually change the replica count."),
        _T._col("Targets", "metrics contains the specifications for which to use to calculate the desired replica "
                           "count (the maximum replica count across all metrics will be used)."),
        _T._col("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can "
                           "scale down.  It defaults to 1 pod."),
        _T._col("MaxPods", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can "
                           "scale up. It cannot be less that minReplicas."),
        _T._col("Replicas", "currentReplicas is current number of replicas of pods managed by this autoscaler, as "
                            "last seen by the autoscaler."),
        _T.AGE_COLUMN,
    ],
}


def _q(v) -> str:
    return str(v)


def metric_target(spec: dict, status: dict | None) -> str:
    """One metric's "current/target" as formatHPAMetrics prints it."""
    typ = spec.get("type")
    st = status or {}
    if typ in ("Resource", "ContainerResource"):
        key = "resource" if typ == "Resource" else "containerResource"
        src, cur = spec.get(key) or {}, ((st.get(key) or {}).get("current") or {})
        target = src.get("target") or {}
        name = src.get("name") or ""
        if target.get("averageValue") is not None:
            current = _q(cur["averageValue"]) if cur.get("averageValue") is not None else _UNKNOWN
            return f"{name}: {current}/{_q(target['averageValue'])}"
        current = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else _UNKNOWN
        goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
        return f"{name}: {current}/{goal}"
    if typ == "Pods":
        cur = ((st.get("pods") or {}).get("current") or {}).get("averageValue")
        return f"{_UNKNOWN if cur is None else _q(cur)}/{_q(((spec.get('pods') or {}).get('target') or {}).get('averageValue'))}"
    if typ in ("Object", "External"):
        key = typ.lower()
        target = (spec.get(key) or {}).get("target") or {}
        cur = (st.get(key) or {}).get("current") or {}
        if target.get("averageValue") is not None:
            c = cur.get("averageValue")
            return f"{_UNKNOWN if c is None else _q(c)}/{_q(target['averageValue'])} (avg)"
        c = cur.get("value")
        return f"{_UNKNOWN if c is None else _q(c)}/{_q(target.get('value'))}"
    return "<unknown type>"


def targets(hpa: dict) -> str:
    specs = (hpa.get("spec") or {}).get("metrics") or []
    if not specs:
        return "<none>"
    statuses = (hpa.get("status") or {}).get("currentMetrics") or []
    out = [metric_target(m, statuses[i] if i < len(statuses) else None) for i, m in enumerate(specs)]
    if len(out) > 2:
        return ", ".join(out[:2]) + f" + {len(out) - 2} more..."
    return ", ".join(out)


def hpa_cells(hpa: dict, now: float | None = None) -> list:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    mn = spec.get("minReplicas")
    return [_T.meta(hpa).get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}", targets(hpa),
            "<unset>" if mn is None else mn, spec.get("maxReplicas", 0), int(status.get("currentReplicas") or 0),
            _T._age(hpa, now)]


CELLS = {"horizontalpodautoscalers": hpa_cells}
