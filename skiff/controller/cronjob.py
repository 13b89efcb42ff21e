"""CronJob controller: runs a CronJob's Job at each time of its schedule, as Kubernetes'
CronJobControllerV2 (1.32) does, over the shared cronjobs and jobs informers.

- The times are the schedule's in ``spec.timeZone`` (UTC without one), from the last scheduled
  time (or the CronJob's creation) to now; the most recent one that has not run yet is started.
  More than 100 missed times give the Warning ``TooManyMissedTimes``; a time missed by more than
  ``startingDeadlineSeconds`` is skipped (``MissSchedule``).
- The Job is named ``<cronjob>-<scheduled time in minutes since the epoch>`` (the name makes a
  second run of one time impossible), made from the job template (its labels and annotations),
  with the CronJob as its controller and the ``batch.kubernetes.io/cronjob-scheduled-timestamp``
  annotation.
- concurrencyPolicy: Allow starts it anyway; Forbid skips the time while a Job runs
  (``JobAlreadyActive``); Replace deletes the running Jobs first.
- ``suspend`` stops new runs; running Jobs go on.
- status.active lists the running Jobs (ObjectReferences); a Job that finishes leaves it
  (``SawCompletedJob``), and its completion time is ``lastSuccessfulTime`` when it succeeded;
  ``lastScheduleTime`` is the latest time a Job was started for.
- Finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted,
  oldest first, with their pods (``SuccessfulDelete``).
- A CronJob is looked at again when its Jobs change, and otherwise at its next scheduled time
  (not polled).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from skiff.api.cronsched import ScheduleError, parse
from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.jsontree import json_copy
from skiff.api.timefmt import rfc3339
from skiff.api.validation_cronjob import zone
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import joblogic as J
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["CronJobController", "job_name", "due_times", "SCHEDULED_ANNOTATION"]

log = logging.getLogger("skiff.cronjob")

COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def job_name(cj_name: str, t: dt.datetime) -> str:
    return f"{cj_name}-{int(t.timestamp()) // 60}"


def _is_cronjob_ref(ref: dict | None) -> bool:
    return ref is not None and ref.get("kind") == "CronJob" and ref.get("apiVersion") == "batch/v1"


class CronJobController(QueueController):
    def __init__(self, client, *, workers: int = 2, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, clock=time.time):
        self.client = client
        self.workers = workers
        self.clock = clock
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue("cronjob")
        self.cronjobs: Informer | None = None
        self.jobs: Informer | None = None
        self._task: asyncio.Task | None = None
        self._uids: dict[str, str] = {}              # cronjob uid -> key

    async def start(self) -> None:
        self.cronjobs = await self.shared.acquire(self.client, "cronjobs")
        self.jobs = await self.shared.acquire(self.client, "jobs")
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)
        self.start_workers("cronjob-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res, h in ((self.jobs, "jobs", self._on_job), (self.cronjobs, "cronjobs", self._on_cronjob)):
            if inf is not None:
                inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_cronjob(self, typ: str, cj: dict, old: dict | None) -> None:
        m = L.md(cj)
        key = f"{m.get('namespace')}/{m.get('name')}"
        if typ == "DELETED":
            self._uids.pop(m.get("uid"), None)
            return
        self._uids[m.get("uid")] = key
        self.queue.add(key)

    def _on_job(self, typ: str, job: dict, old: dict | None) -> None:
        for j in (job, old):
            ref = L.controller_of(j) if j is not None else None
            if _is_cronjob_ref(ref):
                key = self._uids.get(ref.get("uid"))
                if key is not None:
                    self.queue.add_after(key, 0.05)

    # -- reconcile ----------------------------------------------------------------------------
    def _jobs_of(self, cj: dict) -> list[dict]:
        uid, ns = L.md(cj).get("uid"), L.md(cj).get("namespace")
        return [j for j in self.jobs.list()
                if L.md(j).get("namespace") == ns and (L.controller_of(j) or {}).get("uid") == uid]

    async def reconcile(self, key: str) -> float | None:
        cj = self.cronjobs.get(key)
        if cj is None or L.md(cj).get("deletionTimestamp"):
            return None
        try:
            return await self._sync(cj)
        except APIError as e:
            if e.code in (404, 409):
                return 0.5 if e.code == 409 else None
            raise

    async def _sync(self, cj: dict) -> float | None:
        spec, md = cj.get("spec") or {}, L.md(cj)
        st = json_copy(cj.get("status") or {})
        jobs = self._jobs_of(cj)
        by_uid = {L.md(j).get("uid"): j for j in jobs}
        # status.active: running Jobs only
        active, changed = [], False
        for ref in st.get("active") or ():
            j = by_uid.get(ref.get("uid"))
            if j is None:
                changed = True          # gone (deleted by someone): it leaves the list
                continue
            if J.is_finished(j):
                changed = True
                self._saw_finished(cj, j, st)
                continue
            active.append(ref)
        listed = {r.get("uid") for r in active}
        for j in jobs:
            if not J.is_finished(j) and L.md(j).get("uid") not in listed and not L.md(j).get("deletionTimestamp"):
                active.append(_ref(j))      # ours but not listed (a write that did not land)
                changed = True
        st["active"] = active
        await self._clean_history(cj, jobs)
        now = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        requeue = None
        try:
            schedule = parse(spec.get("schedule", ""))
            tz = zone(spec.get("timeZone"))
        except (ScheduleError, ValueError) as e:
            self.recorder.record(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {e}")
            schedule = None
        if schedule is not None and not spec.get("suspend"):
            changed |= await self._run_due(cj, schedule, tz, now, st, jobs)
            nxt = schedule.next(now.astimezone(tz))
            if nxt is not None:
                requeue = max((nxt - now).total_seconds(), 0) + 0.1
        if changed or st != (cj.get("status") or {}):
            await self._write_status(cj, st)
        return requeue

    async def _run_due(self, cj: dict, schedule, tz, now: dt.datetime, st: dict, jobs: list) -> bool:
        """Start the Job of the most recent unrun scheduled time, if any; True when the status changed."""
        spec, md = cj.get("spec") or {}, L.md(cj)
        last = L.parse_time(st.get("lastScheduleTime")) or L.parse_time(md.get("creationTimestamp"))
        earliest = dt.datetime.fromtimestamp(last if last is not None else now.timestamp(), dt.timezone.utc)
        sds = spec.get("startingDeadlineSeconds")
        if sds is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=int(sds)))
        times, too_many = due_times(schedule, earliest.astimezone(tz), now)
        if too_many:
            self.recorder.record(cj, "Warning", "TooManyMissedTimes",
                                 "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                                 "check clock skew")
        if not times:
            return False
        t = times[-1]
        if sds is not None and (now - t).total_seconds() > int(sds):
            self.recorder.record(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: "
                                                                f"{_rfc3339_in_zone(t)}")
            return False
        name = job_name(md["name"], t)
        if any(L.md(j).get("name") == name for j in jobs):
            return False        # this time has its Job already
        running = [j for j in jobs if not J.is_finished(j) and not L.md(j).get("deletionTimestamp")]
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and running:
            self.recorder.record(cj, "Normal", "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid")
            return False
        if policy == "Replace":
            for j in running:
                await self._delete_job(cj, j)
            st["active"] = []
        job = await self._create_job(cj, name, t)
        if job is None:
            return False
        st["active"] = [r for r in st["active"] if r.get("uid") != L.md(job).get("uid")] + [_ref(job)]
        st["lastScheduleTime"] = rfc3339(t.timestamp())
        return True

    async def _create_job(self, cj: dict, name: str, t: dt.datetime) -> dict | None:
        md = L.md(cj)
        tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
        tmd = tmpl.get("metadata") or {}
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": md.get("namespace"),
                            "labels": dict(tmd.get("labels") or {}),
                            "annotations": {**(tmd.get("annotations") or {}),
                                            SCHEDULED_ANNOTATION: _rfc3339_in_zone(t)},
                            "ownerReferences": [L.controller_ref(cj, "batch/v1", "CronJob")]},
               "spec": json_copy(tmpl.get("spec") or {})}
        try:
            made = await self.client.create("jobs", job, md.get("namespace"))
        except APIError as e:
            if e.code == 409:
                return None     # made by an earlier sync: the informer brings it
            self.recorder.record(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
            raise
        self.recorder.record(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        log.info("created job", extra={"fields": {"cronjob": f"{md.get('namespace')}/{md.get('name')}",
                                                  "job": name, "scheduledTime": _rfc3339_in_zone(t)}})
        return made

    async def _delete_job(self, cj: dict, job: dict) -> None:
        jm = L.md(job)
        try:
            await self.client.delete("jobs", jm["name"], jm.get("namespace"), propagation_policy="Background")
        except APIError as e:
            if e.code != 404:
                self.recorder.record(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
                raise
            return
        self.recorder.record(cj, "Normal", "SuccessfulDelete", f"Deleted job {jm['name']}")

    def _saw_finished(self, cj: dict, job: dict, st: dict) -> None:
        cond = J.finished_condition(job)
        self.recorder.record(cj, "Normal", "SawCompletedJob",
                             f"Saw completed job: {L.md(job).get('name')}, condition: {cond.get('type')}")
        if cond.get("type") == J.COMPLETE:
            done = (job.get("status") or {}).get("completionTime") or cond.get("lastTransitionTime")
            if done and (not st.get("lastSuccessfulTime") or done > st["lastSuccessfulTime"]):
                st["lastSuccessfulTime"] = done

    async def _clean_history(self, cj: dict, jobs: list) -> None:
        spec = cj.get("spec") or {}
        for typ, limit in ((J.COMPLETE, spec.get("successfulJobsHistoryLimit")),
                           (J.FAILED, spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = [j for j in jobs if (J.finished_condition(j) or {}).get("type") == typ
                    and not L.md(j).get("deletionTimestamp")]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or L.md(j).get("creationTimestamp")
                                     or "", L.md(j).get("name", "")))
            for j in done[:max(0, len(done) - int(limit))]:
                await self._delete_job(cj, j)

    async def _write_status(self, cj: dict, st: dict) -> None:
        wire = {k: v for k, v in st.items() if v not in (None, [], "")}
        await self.client.update("cronjobs", {**cj, "status": wire}, subresource="status")


def due_times(schedule, earliest: dt.datetime, now: dt.datetime) -> tuple[list, bool]:
    """The scheduled times in (earliest, now], oldest first, and whether more than MAX_MISSED
    were missed (then only the most recent one is given: it is the one that runs)."""
    out: list = []
    t = schedule.next(earliest)
    while t is not None and t <= now:
        out.append(t)
        if len(out) > MAX_MISSED:
            break
        t = schedule.next(t)
    else:
        return out, False
    for window in (3600, 86400, 32 * 86400, 366 * 86400, 5 * 366 * 86400):   # the most recent time
        start = max(earliest, (now - dt.timedelta(seconds=window)).astimezone(earliest.tzinfo))
        last, t = None, schedule.next(start)
        while t is not None and t <= now:
            last, t = t, schedule.next(t)
        if last is not None:
            return [last], True
    return out[-1:], True


def _rfc3339_in_zone(t: dt.datetime) -> str:
    """Go's time.RFC3339 of a time in its zone: ``2026-11-28T21:50:00Z`` or ``...T22:50:00+01:00``."""
    text = t.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _ref(job: dict) -> dict:
    m = L.md(job)
    return {"kind": "Job", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid"),
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion")}
