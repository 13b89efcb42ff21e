"""The decisions of the CronJob controller, without I/O: what Kubernetes' CronJobControllerV2
(``syncCronJob``, ``cleanupFinishedJobs`` and utils.go) decides for one CronJob, its Jobs and
the time ``now`` (an aware datetime, so that tests pass any clock).

The controller (skiff/controller/cronjob.py) calls, in order:

1. ``check_jobs(cj, jobs)``: status.active against the Jobs the CronJob controls: finished Jobs
   leave it (``SawCompletedJob``), a succeeded Job's completion moves lastSuccessfulTime, a
   running Job it does not list is ``unexpected`` (an event, never adopted), a listed Job that
   is not among the Jobs is ``missing`` (the controller asks the API before dropping it).
2. ``decide(cj, now)``: whether a Job starts now, named ``<cronjob>-<minutes since the epoch>``
   for the most recent scheduled time not yet run, which running Jobs Replace deletes first,
   the events, and when to look again (the next scheduled time plus 100 ms).
3. ``history_to_delete(cj, jobs)``: the finished Jobs beyond the history limits, oldest first.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field

from skiff.api.cronsched import Schedule, ScheduleError, parse
from skiff.api.jsontree import json_copy
from skiff.controller.workloads import joblogic as J
from skiff.controller.workloads import logic as L

__all__ = ["SCHEDULED_ANNOTATION", "MAX_MISSED", "Event", "Check", "Decision", "job_name", "schedule_of",
           "time_zone", "most_recent", "requeue_after", "job_from_template", "check_jobs", "decide",
           "history_to_delete", "ref_of", "rfc3339_in", "rfc1123z"]

SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100                # more missed times than this: TooManyMissedTimes
NEXT_DELTA = 0.1                # seconds after the scheduled time the CronJob is looked at again
UTC = dt.timezone.utc

NONE_MISSED, FEW_MISSED, MANY_MISSED = "none", "few", "many"


@dataclass
class Event:
    type: str
    reason: str
    message: str


# -- times ---------------------------------------------------------------------------------------
def job_name(cj_name: str, t: dt.datetime) -> str:
    """getJobName: the scheduled time in minutes since the epoch, so a time runs once."""
    return f"{cj_name}-{int(t.timestamp()) // 60}"


def time_zone(name: str | None):
    """time.LoadLocation of spec.timeZone (UTC when unset or empty); ValueError with Go's
    message when it is not a zone."""
    import zoneinfo
    if not name or name == "UTC":
        return UTC
    if name == "Local" or name.startswith("/") or any(p in (".", "..") for p in name.split("/")):
        raise ValueError(f"unknown time zone {name}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


def schedule_of(spec: dict) -> Schedule:
    """formatSchedule + cron.ParseStandard: the schedule in spec.timeZone (a ``TZ=`` in the
    schedule itself wins, as Kubernetes reads it); ScheduleError when it does not parse."""
    text = spec.get("schedule") or ""
    sched = parse(text)
    if "TZ" not in text and spec.get("timeZone") is not None:
        sched = dataclasses.replace(sched, zone=time_zone(spec["timeZone"]))
    elif sched.zone is None:
        sched = dataclasses.replace(sched, zone=UTC)    # kube-controller-manager's Local; skiff's is UTC
    return sched


def _parse_time(text: str | None) -> dt.datetime | None:
    ts = L.parse_time(text)
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC)


def earliest_time(cj: dict, now: dt.datetime, with_deadline: bool) -> dt.datetime:
    """lastScheduleTime, else the creation time; not before now - startingDeadlineSeconds."""
    st, md, spec = cj.get("status") or {}, L.md(cj), cj.get("spec") or {}
    earliest = _parse_time(st.get("lastScheduleTime")) or _parse_time(md.get("creationTimestamp")) or now
    sds = spec.get("startingDeadlineSeconds")
    if with_deadline and sds is not None:
        earliest = max(earliest, now - dt.timedelta(seconds=int(sds)))
    return earliest


def most_recent(sched: Schedule, earliest: dt.datetime, now: dt.datetime) -> tuple[dt.datetime | None, str]:
    """mostRecentScheduleTime: the latest scheduled time in (earliest, now] and how many were
    missed (none, few, many: more than MAX_MISSED). The count is Kubernetes' estimate (the time
    since the first missed time over the gap between the first two), and so is the walk back
    to the latest one. ScheduleError when two times are less than a second apart (a schedule
    that never fires, such as ``0 0 30 2 *``)."""
    t1 = sched.next(earliest)
    if t1 is not None and now < t1:
        return None, NONE_MISSED
    t2 = sched.next(t1) if t1 is not None else None
    if t1 is not None and t2 is not None and now < t2:
        return t1, NONE_MISSED
    gap = round((t2 - t1).total_seconds()) if t1 is not None and t2 is not None else 0
    if gap < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // gap + 1
    latest = None
    t = sched.next(t1 + dt.timedelta(seconds=(missed - 2) * gap))
    while t is not None and t <= now:
        latest, t = t, sched.next(t)
    return latest, (MANY_MISSED if missed > MAX_MISSED else FEW_MISSED if missed > 0 else NONE_MISSED)


def requeue_after(cj: dict, sched: Schedule, now: dt.datetime) -> float | None:
    """nextScheduleTimeDuration: seconds until the next scheduled time after the most recent
    one (deadline ignored) plus 100 ms; None when the schedule has no next time."""
    earliest = earliest_time(cj, now, with_deadline=False)
    try:
        latest, missed = most_recent(sched, earliest, now)
    except ScheduleError:
        latest, missed = now, NONE_MISSED
    if latest is None:
        latest = earliest if missed == NONE_MISSED else now
    nxt = sched.next(latest)
    if nxt is None:
        return None
    return max((nxt - now).total_seconds() + NEXT_DELTA, 0.0)


def rfc3339_in(t: dt.datetime, tz) -> str:
    """Go's ``t.In(tz).Format(time.RFC3339)``: ``2026-11-28T21:50:00Z`` or ``...+01:00``."""
    text = t.astimezone(tz).replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rfc1123z(t: dt.datetime) -> str:
    """Go's ``t.UTC().Format(time.RFC1123Z)``: ``Sat, 28 Nov 2026 21:50:00 +0000``."""
    u = t.astimezone(UTC)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[u.weekday()]}, {u.day:02d} {months[u.month - 1]} {u.year} {u:%H:%M:%S} +0000"


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


# -- Jobs ----------------------------------------------------------------------------------------
def ref_of(job: dict) -> dict:
    """The ObjectReference status.active holds."""
    m = L.md(job)
    return {"kind": "Job", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid"),
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion")}


def job_from_template(cj: dict, t: dt.datetime) -> dict:
    """getJobFromTemplate2: the template's labels and annotations, the scheduled time
    annotation (RFC 3339 in spec.timeZone), the CronJob as controller, the template's spec."""
    md, spec = L.md(cj), cj.get("spec") or {}
    tmpl = spec.get("jobTemplate") or {}
    tmd = tmpl.get("metadata") or {}
    try:
        tz = time_zone(spec.get("timeZone"))
    except ValueError:
        tz = UTC
    meta = {"name": job_name(md["name"], t), "namespace": md.get("namespace"),
            "labels": dict(tmd.get("labels") or {}),
            "annotations": {**(tmd.get("annotations") or {}), SCHEDULED_ANNOTATION: rfc3339_in(t, tz)},
            "ownerReferences": [L.controller_ref(cj, "batch/v1", "CronJob")]}
    if not meta["labels"]:
        del meta["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": json_copy(tmpl.get("spec") or {})}


@dataclass
class Check:
    status: dict                                    # the CronJob's status after looking
    events: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)  # running Jobs it controls but does not list
    missing: list = field(default_factory=list)     # listed refs that are not among its Jobs
    changed: bool = False


def check_jobs(cj: dict, jobs: list[dict]) -> Check:
    """The first part of syncCronJob: the Jobs against status.active."""
    st = json_copy(cj.get("status") or {})
    active = list(st.get("active") or [])
    listed = {r.get("uid") for r in active}
    out = Check(st)
    mine = set()
    for j in jobs:
        uid = L.md(j).get("uid")
        mine.add(uid)
        cond = J.finished_condition(j)
        if cond is None:
            if uid not in listed:
                out.unexpected.append(j)
            continue
        if uid in listed:
            active = [r for r in active if r.get("uid") != uid]
            out.events.append(Event("Normal", "SawCompletedJob",
                                    f"Saw completed job: {L.md(j).get('name')}, condition: {cond.get('type')}"))
            out.changed = True
        if cond.get("type") == J.COMPLETE:
            done = (j.get("status") or {}).get("completionTime")
            last = st.get("lastSuccessfulTime")
            if done and (not last or (L.parse_time(done) or 0) > (L.parse_time(last) or 0)):
                st["lastSuccessfulTime"] = done
                out.changed = True
    out.missing = [r for r in active if r.get("uid") not in mine]
    st["active"] = active
    return out


@dataclass
class Decision:
    events: list = field(default_factory=list)
    replace: list = field(default_factory=list)     # refs of running Jobs to delete first (Replace)
    create: dict | None = None                      # the Job to create
    scheduled: dt.datetime | None = None
    requeue: float | None = None                    # seconds until the CronJob is looked at again


def decide(cj: dict, now: dt.datetime) -> Decision:
    """The rest of syncCronJob, for a CronJob whose status.active is up to date."""
    spec, md, st = cj.get("spec") or {}, L.md(cj), cj.get("status") or {}
    d = Decision()
    if md.get("deletionTimestamp"):
        return d
    tzname = spec.get("timeZone")
    if tzname is not None:
        try:
            time_zone(tzname) if tzname else None
        except ValueError as e:
            d.events.append(Event("Warning", "UnknownTimeZone", f"invalid timeZone: {_go_quote(tzname)}: {e}"))
            return d
    if spec.get("suspend"):
        return d
    text = spec.get("schedule") or ""
    if "TZ" in text:
        d.events.append(Event("Warning", "UnsupportedSchedule",
                              f"CRON_TZ or TZ used in schedule {_go_quote(text)} is not officially supported, see "
                              "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more "
                              "details"))
    try:
        sched = schedule_of(spec)
    except ScheduleError as e:
        d.events.append(Event("Warning", "UnparseableSchedule", f"unparseable schedule: {_go_quote(text)} : {e}"))
        return d
    try:
        t, missed = most_recent(sched, earliest_time(cj, now, with_deadline=True), now)
    except ScheduleError as e:
        d.events.append(Event("Warning", "InvalidSchedule", f"invalid schedule: {text} : {e}"))
        return d
    if t is not None and missed == MANY_MISSED:
        d.events.append(Event("Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                                                               ".spec.startingDeadlineSeconds or check clock skew"))
    d.requeue = requeue_after(cj, sched, now)
    if t is None:
        return d
    sds = spec.get("startingDeadlineSeconds")
    if sds is not None and t + dt.timedelta(seconds=int(sds)) < now:
        d.events.append(Event("Warning", "MissSchedule", f"Missed scheduled time to start a job: {rfc1123z(t)}"))
        return d
    name = job_name(md.get("name", ""), t)
    active = st.get("active") or []
    last = _parse_time(st.get("lastScheduleTime"))
    if any(r.get("name") == name for r in active) or (last is not None and last == t):
        return d                                    # this time has been processed
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        d.events.append(Event("Normal", "JobAlreadyActive",
                              "Not starting job because prior execution is running and concurrency policy is "
                              "Forbid"))
        return d
    if policy == "Replace":
        d.replace = [dict(r) for r in active]
    d.create = job_from_template(cj, t)
    d.scheduled = t
    after = {**cj, "status": {**st, "lastScheduleTime": _rfc3339(t)}}
    d.requeue = requeue_after(after, sched, now)
    return d


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_to_delete(cj: dict, jobs: list[dict]) -> list[dict]:
    """cleanupFinishedJobs: finished Jobs beyond successfulJobsHistoryLimit (Complete) and
    failedJobsHistoryLimit (Failed), oldest start time first (Jobs never started last, then by
    name)."""
    spec = cj.get("spec") or {}
    out: list[dict] = []
    for typ, limit in ((J.COMPLETE, spec.get("successfulJobsHistoryLimit")),
                       (J.FAILED, spec.get("failedJobsHistoryLimit"))):
        if limit is None:
            continue
        done = [j for j in jobs if (J.finished_condition(j) or {}).get("type") == typ]
        n = len(done) - int(limit)
        if n <= 0:
            continue

        def order(j):
            start = L.parse_time((j.get("status") or {}).get("startTime"))
            return (start is None, start or 0.0, L.md(j).get("name") or "")
        out += sorted(done, key=order)[:n]
    return out


def record_scheduled(st: dict, job: dict, t: dt.datetime) -> None:
    """The status after the Job of time ``t`` was made (or found made by this controller)."""
    st["active"] = [r for r in st.get("active") or [] if r.get("uid") != L.md(job).get("uid")] + [ref_of(job)]
    st["lastScheduleTime"] = _rfc3339(t)
