"""The rules of batch/v1 CronJobs beyond their schema (Kubernetes' ValidateCronJob): a name of
at most 52 characters (its Jobs add 11), a schedule robfig/cron's standard parser reads, no TZ=
or CRON_TZ= in it, an IANA timeZone (validateTimeZone), concurrencyPolicy Allow/Forbid/Replace,
non-negative deadline and history limits, and the jobTemplate's spec checked as a Job's (under
``spec.jobTemplate.spec``) whose selector is left to the API server."""
from __future__ import annotations

import re
from typing import Any

from skiff.api.cronsched import ScheduleError, parse
from skiff.api.validation import (NOT_SUPPORTED, REQUIRED, Warning, _cause, _invalid, _prefixed, _short,
                                  go_label_selector)

__all__ = ["check_cronjob", "zone"]

POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME = 52
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def zone(name: str | None):
    """The tzinfo of a CronJob's timeZone (UTC when unset); ValueError when unknown."""
    from skiff.controller.workloads.cronlogic import time_zone
    return time_zone(name)


def _check_time_zone(tz: str) -> list[dict]:
    """validateTimeZone, with its messages."""
    f = "spec.timeZone"
    if tz == "":
        return [_invalid(f, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [_invalid(f, tz, f"unknown time zone {tz}")]
    causes = []
    if tz.lower() == "local":
        causes.append(_invalid(f, tz, "timeZone must be an explicit time zone as defined in "
                                      "https://www.iana.org/time-zones"))
    if tz != "Local":           # Go's time.LoadLocation("Local") is the host's zone, not an error
        try:
            zone(tz)
        except ValueError as e:
            causes.append(_invalid(f, tz, str(e)))
    return causes


def check_cronjob(obj: dict) -> tuple[list[dict], list[Warning]]:
    causes: list[dict] = []
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and len(name) > MAX_NAME:
        causes.append(_invalid("metadata.name", name, f"must be no more than {MAX_NAME} characters"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes, []
    sched = spec.get("schedule")
    if sched is None or sched == "":
        causes.append(_cause("spec.schedule", REQUIRED, "Required value"))
    elif isinstance(sched, str):
        try:
            parse(sched)
        except ScheduleError as e:
            causes.append(_invalid("spec.schedule", sched, str(e)))
        if "TZ" in sched:
            causes.append(_invalid("spec.schedule", sched,
                                   "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    f = "spec.startingDeadlineSeconds"
    if _int(spec.get("startingDeadlineSeconds")) and spec["startingDeadlineSeconds"] < 0:
        causes.append(_invalid(f, spec["startingDeadlineSeconds"], "must be greater than or equal to 0"))
    tz = spec.get("timeZone")
    if isinstance(tz, str):
        causes += _check_time_zone(tz)
    policy = spec.get("concurrencyPolicy")
    if policy == "":
        causes.append(_cause("spec.concurrencyPolicy", REQUIRED, "Required value"))
    elif policy is not None and policy not in POLICIES:
        causes.append(_cause("spec.concurrencyPolicy", NOT_SUPPORTED, f"Unsupported value: {_short(policy)}: "
                             "supported values: " + ", ".join(f'"{p}"' for p in POLICIES)))
    tmpl = spec.get("jobTemplate")
    warnings: list[Warning] = []
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        from skiff.api.validation_job import check_job
        tspec = {k: v for k, v in tmpl["spec"].items() if k not in ("selector", "manualSelector")}
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name or ""}, "spec": tspec}
        more, warns = check_job(job)
        causes += _prefixed([c for c in more if c["field"] != "metadata.name"], "spec", "spec.jobTemplate.spec")
        for w in warns:
            nf = "spec.jobTemplate.spec" + w.field[len("spec"):]
            warnings.append(Warning(nf, str(w).replace(w.field, nf, 1)))
        if tmpl["spec"].get("selector") is not None:
            causes.append(_cause("spec.jobTemplate.spec.selector", "FieldValueInvalid",
                                 f"Invalid value: {go_label_selector(tmpl['spec']['selector'])}: "
                                 "`selector` will be auto-generated"))
        if tmpl["spec"].get("manualSelector") is True:
            causes.append(_cause("spec.jobTemplate.spec.manualSelector", NOT_SUPPORTED,
                                 'Unsupported value: true: supported values: "nil", "false"'))
    for f in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        v = spec.get(f)
        if _int(v) and v < 0:
            causes.append(_invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    return causes, warnings
