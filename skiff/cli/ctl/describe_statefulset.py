"""``describe statefulset``: kubectl's layout of a StatefulSet (its describeStatefulSet): replicas,
update strategy, the pods' status, the pod template and the volume claim templates, events."""
from __future__ import annotations

from . import printers as P
from .describe import W, annotations, events_section, fmt_time, kv_map, pod_template, pods_status


def describe_statefulset(sts: dict, events, pods: list[dict] | None) -> str:
    """``pods``: the pods the StatefulSet controls (None: they could not be listed)."""
    md, spec, st = P.meta(sts), sts.get("spec") or {}, sts.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.get('creationTimestamp'))}")
    w.w(0, f"Selector:\t{P.selector_string(spec.get('selector'))}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"Replicas:\t{int(spec.get('replicas', 1) or 0)} desired | {int(st.get('replicas') or 0)} total")
    strategy = spec.get("updateStrategy") or {}
    w.w(0, f"Update Strategy:\t{strategy.get('type', '')}")
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, dict) and ru.get("partition") is not None:
        w.w(1, f"Partition:\t{int(ru['partition'])}")
        if ru.get("maxUnavailable") is not None:
            w.w(1, f"MaxUnavailable:\t{ru['maxUnavailable']}")
    pods_status(w, pods)
    pod_template(w, spec.get("template"))
    claims = spec.get("volumeClaimTemplates") or []
    if not claims:
        w.w(0, "Volume Claims:\t<none>")
    else:
        w.w(0, "Volume Claims:")
        for c in claims:
            cm, cs = c.get("metadata") or {}, c.get("spec") or {}
            w.w(1, f"Name:\t{cm.get('name', '')}")
            sc = cs.get("storageClassName")
            if sc is None:
                sc = (cm.get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class", "")
            w.w(1, f"StorageClass:\t{sc}")
            kv_map(w, "Labels", cm.get("labels"), 1)
            kv_map(w, "Annotations", cm.get("annotations"), 1)
            cap = ((cs.get("resources") or {}).get("requests") or {}).get("storage")
            w.w(1, f"Capacity:\t{cap if cap is not None else '<default>'}")
            w.w(1, f"Access Modes:\t[{' '.join(cs.get('accessModes') or [])}]")
    events_section(w, events)
    return w.render()
