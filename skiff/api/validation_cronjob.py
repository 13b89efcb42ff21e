"""The rules of batch/v1 CronJobs beyond their schema (Kubernetes' ValidateCronJob): a name of
at most 52 characters (its Jobs add 11), a schedule cron parses (no TZ= in it), an IANA
timeZone, concurrencyPolicy Allow/Forbid/Replace, non-negative deadline and history limits, and
the jobTemplate's spec checked as a Job's (under ``spec.jobTemplate.spec``)."""
from __future__ import annotations

from typing import Any

from skiff.api.cronsched import ScheduleError, parse
from skiff.api.validation import NOT_SUPPORTED, REQUIRED, Warning, _cause, _invalid, _prefixed, _short

__all__ = ["check_cronjob", "zone"]

POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME = 52


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def zone(name: str | None):
    """The tzinfo of a CronJob's timeZone (UTC when unset); ValueError when unknown."""
    import datetime as dt
    import zoneinfo
    if not name:
        return dt.timezone.utc
    if name == "Local" or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"unknown time zone {name}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None


def check_cronjob(obj: dict) -> tuple[list[dict], list[Warning]]:
    causes: list[dict] = []
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and len(name) > MAX_NAME:
        causes.append(_invalid("metadata.name", name, f"must be no more than {MAX_NAME} characters"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes, []
    sched = spec.get("schedule")
    if isinstance(sched, str):
        if not sched.strip():
            causes.append(_cause("spec.schedule", REQUIRED, "Required value"))
        elif "TZ" in sched:
            causes.append(_invalid("spec.schedule", sched,
                                   "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
        else:
            try:
                parse(sched)
            except ScheduleError as e:
                causes.append(_invalid("spec.schedule", sched, str(e)))
    tz = spec.get("timeZone")
    if isinstance(tz, str):
        try:
            zone(tz)
        except ValueError as e:
            causes.append(_invalid("spec.timeZone", tz, str(e)))
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in POLICIES:
        causes.append(_cause("spec.concurrencyPolicy", NOT_SUPPORTED, f"Unsupported value: {_short(policy)}: "
                             "supported values: " + ", ".join(f'"{p}"' for p in POLICIES)))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        v = spec.get(f)
        if _int(v) and v < 0:
            causes.append(_invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    tmpl = spec.get("jobTemplate")
    warnings: list[Warning] = []
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        from skiff.api.validation_job import check_job
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name or ""}, "spec": tmpl["spec"]}
        more, warns = check_job(job)
        causes += _prefixed([c for c in more if c["field"] != "metadata.name"], "spec", "spec.jobTemplate.spec")
        for w in warns:
            nf = "spec.jobTemplate.spec" + w.field[len("spec"):]
            warnings.append(Warning(nf, str(w).replace(w.field, nf, 1)))
    return causes, warnings
