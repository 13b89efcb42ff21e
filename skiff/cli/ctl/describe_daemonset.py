"""``describe daemonset``: kubectl's layout of a DaemonSet (its describeDaemonSet), with the pod
template and its events."""
from __future__ import annotations

from . import printers as P
from .describe import W, annotations, events_section, kv_map, pod_template, pods_status


def describe_daemonset(ds: dict, events, pods: list[dict] | None) -> str:
    """``pods``: the pods the DaemonSet controls (None: they could not be listed)."""
    md, spec, st = P.meta(ds), ds.get("spec") or {}, ds.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Selector:\t{P.selector_string(spec.get('selector'))}")
    w.w(0, "Node-Selector:\t" + (",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>"))
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    for title, field in (("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
                         ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
                         ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
                         ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
                         ("Number of Nodes Misscheduled", "numberMisscheduled")):
        w.w(0, f"{title}: {int(st.get(field) or 0)}")
    pods_status(w, pods)
    pod_template(w, spec.get("template"))
    events_section(w, events)
    return w.render()
