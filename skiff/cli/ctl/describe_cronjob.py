"""``describe cronjob``: kubectl's layout of a CronJob (its describeCronJob and
describeJobTemplate): the schedule and policies, the job template with its pod template, the
last schedule time, the active Jobs and the events."""
from __future__ import annotations

from . import printers as P
from .describe import W, annotations, events_section, fmt_time, kv_map, pod_template


def _unset(v, suffix: str = "") -> str:
    return "<unset>" if v is None else f"{v}{suffix}"


def describe_cronjob(cj: dict, events) -> str:
    md, spec, st = P.meta(cj), cj.get("spec") or {}, cj.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"Schedule:\t{spec.get('schedule', '')}")
    w.w(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}")
    suspend = spec.get("suspend")
    w.w(0, f"Suspend:\t{'<unset>' if suspend is None else ('True' if suspend else 'False')}")
    w.w(0, f"Successful Job History Limit:\t{_unset(spec.get('successfulJobsHistoryLimit'))}")
    w.w(0, f"Failed Job History Limit:\t{_unset(spec.get('failedJobsHistoryLimit'))}")
    w.w(0, f"Starting Deadline Seconds:\t{_unset(spec.get('startingDeadlineSeconds'), 's')}")
    js = (spec.get("jobTemplate") or {}).get("spec") or {}
    sel = js.get("selector")
    w.w(0, f"Selector:\t{'<unset>' if sel is None else P.selector_string(sel)}")
    w.w(0, f"Parallelism:\t{_unset(js.get('parallelism'))}")
    w.w(0, f"Completions:\t{_unset(js.get('completions'))}")
    if js.get("activeDeadlineSeconds") is not None:
        w.w(0, f"Active Deadline Seconds:\t{js['activeDeadlineSeconds']}s")
    pod_template(w, js.get("template"))
    w.w(0, f"Last Schedule Time:\t{fmt_time(st.get('lastScheduleTime'))}")
    active = [r.get("name", "") for r in st.get("active") or ()]
    w.w(0, f"Active Jobs:\t{', '.join(active) if active else '<none>'}")
    events_section(w, events)
    return w.render()
