"""``describe job``: kubectl's layout of a Job (its describeJob), with the pod template and
its events."""
from __future__ import annotations

from . import printers as P
from .describe import W, events_section, fmt_time, owner_header, pod_template


def describe_job(job: dict, events) -> str:
    spec, st = job.get("spec") or {}, job.get("status") or {}
    w = W()
    owner_header(w, job)
    if spec.get("parallelism") is not None:
        w.w(0, f"Parallelism:\t{spec['parallelism']}")
    w.w(0, f"Completions:\t{spec['completions'] if spec.get('completions') is not None else '<unset>'}")
    for label, field in (("Completion Mode", "completionMode"), ("Suspend", "suspend"),
                         ("Backoff Limit", "backoffLimit"), ("TTL Seconds After Finished", "ttlSecondsAfterFinished")):
        v = spec.get(field)
        if v is not None:
            w.w(0, f"{label}:\t{str(v).lower() if isinstance(v, bool) else v}")
    if st.get("startTime"):
        w.w(0, f"Start Time:\t{fmt_time(st['startTime'])}")
    if st.get("completionTime"):
        w.w(0, f"Completed At:\t{fmt_time(st['completionTime'])}")
    start, end = P.parse_time(st.get("startTime")), P.parse_time(st.get("completionTime"))
    if start is not None and end is not None:
        w.w(0, f"Duration:\t{P.human_duration(end - start)}")
    if spec.get("activeDeadlineSeconds") is not None:
        w.w(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s")
    counts = " / ".join(f"{int(st.get(k) or 0)} {k.capitalize()}" for k in ("succeeded", "failed"))
    ready = f" ({int(st['ready'])} Ready)" if st.get("ready") is not None else ""
    w.w(0, f"Pods Statuses:\t{int(st.get('active') or 0)} Active{ready} / {counts}")
    if spec.get("completionMode") == "Indexed":
        w.w(0, f"Completed Indexes:\t{_cap_indexes(st.get('completedIndexes') or '')}")
    if spec.get("backoffLimitPerIndex") is not None:
        w.w(0, f"Failed Indexes:\t{_cap_indexes(st.get('failedIndexes') or '')}")
    pod_template(w, spec.get("template"))
    events_section(w, events)
    return w.render()


def _cap_indexes(text: str, soft_limit: int = 50) -> str:
    """kubectl's capIndexesListOrNone: "<none>", or the list cut at the first comma past
    ``soft_limit`` characters, then "..."."""
    if not text:
        return "<none>"
    cut = text.find(",", soft_limit)
    return text if cut < 0 else text[:cut + 1] + "..."
