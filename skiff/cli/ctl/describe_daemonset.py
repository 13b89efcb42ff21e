"""``describe daemonset``: kubectl's layout of a DaemonSet (its describeDaemonSet), with the pod
template and its events."""
from __future__ import annotations

from . import printers as P
from .describe import W, annotations, events_section, kv_map, pod_template


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
    if pods is None:
        w.w(0, "Pods Status:\terror in fetching pods")
    else:
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        w.w(0, f"Pods Status:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
               f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")
    pod_template(w, spec.get("template"))
    events_section(w, events)
    return w.render()
