"""``skiffctl describe hpa``: kubectl's layout of a HorizontalPodAutoscaler
(describeHorizontalPodAutoscalerV2): reference, each metric as "current / target", bounds,
behavior, pods current / desired, conditions and events."""
from __future__ import annotations

from . import printers as P
from .describe import W, annotations, events_section, fmt_time, kv_map


def _metric_lines(spec: dict, status: dict | None) -> tuple[str, str]:
    """(label, "current / target") of one metric, as kubectl words them."""
    typ, st = spec.get("type"), status or {}
    if typ in ("Resource", "ContainerResource"):
        key = "resource" if typ == "Resource" else "containerResource"
        src = spec.get(key) or {}
        cur = ((st.get(key) or {}).get("current")) or {}
        target = src.get("target") or {}
        name = src.get("name", "")
        where = f"resource {name} of container \"{src.get('container', '')}\"" if key == "containerResource" \
            else f"resource {name}"
        if target.get("averageValue") is not None:
            current = cur.get("averageValue", "<unknown>")
            return f"{where} on pods:", f"{current} / {target['averageValue']}"
        current = "<unknown>"
        if cur.get("averageUtilization") is not None:
            current = f"{cur['averageUtilization']}% ({cur.get('averageValue', '')})"
        goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
        return f"{where} on pods  (as a percentage of request):", f"{current} / {goal}"
    if typ == "Pods":
        src = spec.get("pods") or {}
        cur = (((st.get("pods") or {}).get("current")) or {}).get("averageValue", "<unknown>")
        return f"\"{(src.get('metric') or {}).get('name', '')}\" on pods:", \
            f"{cur} / {(src.get('target') or {}).get('averageValue', '')}"
    if typ in ("Object", "External"):
        key = typ.lower()
        src = spec.get(key) or {}
        target = src.get("target") or {}
        cur = ((st.get(key) or {}).get("current")) or {}
        name = (src.get("metric") or {}).get("name", "")
        if typ == "Object":
            ref = src.get("describedObject") or {}
            label = f"\"{name}\" on {ref.get('kind', '')}/{ref.get('name', '')}"
        else:
            label = f"\"{name}\" (target value)" if target.get("value") is not None else \
                f"\"{name}\" (target average value)"
        if target.get("averageValue") is not None:
            return label + ":", f"{cur.get('averageValue', '<unknown>')} / {target['averageValue']}"
        return label + ":", f"{cur.get('value', '<unknown>')} / {target.get('value', '')}"
    return "<unknown metric type>:", ""


def _rules(w: W, title: str, rules: dict | None) -> None:
    if not rules:
        return
    w.w(1, f"{title}:")
    if rules.get("stabilizationWindowSeconds") is not None:
        w.w(2, f"Stabilization Window: {rules['stabilizationWindowSeconds']} seconds")
    w.w(2, f"Select Policy: {rules.get('selectPolicy', 'Max')}")
    w.w(2, "Policies:")
    for p in rules.get("policies") or []:
        w.w(3, f"- Type: {p.get('type')}  Value: {p.get('value')}  Period: {p.get('periodSeconds')} seconds")


def describe_hpa(hpa: dict, events) -> str:
    md, spec, st = P.meta(hpa), hpa.get("spec") or {}, hpa.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.get('creationTimestamp'))}")
    ref = spec.get("scaleTargetRef") or {}
    w.w(0, f"Reference:\t{ref.get('kind', '')}/{ref.get('name', '')}")
    w.w(0, "Metrics:\t( current / target )")
    statuses = st.get("currentMetrics") or []
    for i, m in enumerate(spec.get("metrics") or []):
        label, value = _metric_lines(m, statuses[i] if i < len(statuses) else None)
        w.w(1, f"{label}\t{value}")
    mn = spec.get("minReplicas")
    w.w(0, f"Min replicas:\t{'<unset>' if mn is None else mn}")
    w.w(0, f"Max replicas:\t{spec.get('maxReplicas', 0)}")
    b = spec.get("behavior")
    if b:
        w.w(0, "Behavior:")
        _rules(w, "Scale Up", b.get("scaleUp"))
        _rules(w, "Scale Down", b.get("scaleDown"))
    w.w(0, f"{ref.get('kind', '')} pods:\t{int(st.get('currentReplicas') or 0)} current / "
           f"{int(st.get('desiredReplicas') or 0)} desired")
    conds = st.get("conditions") or []
    if conds:
        w.w(0, "Conditions:")
        w.w(1, "Type\tStatus\tReason\tMessage")
        w.w(1, "----\t------\t------\t-------")
        for c in conds:
            w.w(1, f"{c.get('type', '')}\t{c.get('status', '')}\t{c.get('reason', '')}\t{c.get('message', '')}")
    events_section(w, events)
    return w.render()
