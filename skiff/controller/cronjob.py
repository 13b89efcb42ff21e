"""CronJob controller: runs a CronJob's Job at each time of its schedule, as Kubernetes'
CronJobControllerV2 (1.32) does, over the shared cronjobs and jobs informers. The decisions are
in skiff/controller/workloads/cronlogic.py (pure, tested with any clock); this module reads the
informers, makes the API calls and records the events.

- The times are the schedule's in ``spec.timeZone`` (UTC without one), from the last scheduled
  time (or the CronJob's creation) to now; the most recent one that has not run yet is started.
  More than 100 missed times give the Warning ``TooManyMissedTimes``; a time missed by more than
  ``startingDeadlineSeconds`` is skipped (``MissSchedule``).
- The Job is named ``<cronjob>-<scheduled time in minutes since the epoch>`` (the name makes a
  second run of one time impossible), made from the job template (its labels and annotations),
  with the CronJob as its controller and the ``batch.kubernetes.io/cronjob-scheduled-timestamp``
  annotation.
- concurrencyPolicy: Allow starts it anyway; Forbid skips the time while status.active lists a
  Job (``JobAlreadyActive``); Replace deletes the listed Jobs first (background propagation).
- ``suspend`` stops new runs; running Jobs go on.
- status.active lists the running Jobs (ObjectReferences); a Job that finishes leaves it
  (``SawCompletedJob``), a succeeded Job's completion time is ``lastSuccessfulTime``;
  ``lastScheduleTime`` is the latest time a Job was started for. A running Job the CronJob
  controls but did not start (``kubectl create job --from=cronjob/...``) is reported
  (``UnexpectedJob``), not listed; a listed Job that is gone leaves the list (``MissingJob``).
- Finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted,
  oldest first, with their pods (``SuccessfulDelete``).
- A CronJob is looked at again when it or its Jobs change, and otherwise at its next scheduled
  time (not polled).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import cronlogic as C
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.cronlogic import SCHEDULED_ANNOTATION, job_name
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["CronJobController", "job_name", "SCHEDULED_ANNOTATION"]

log = logging.getLogger("skiff.cronjob")

COMPONENT = "cronjob-controller"


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

    def _event(self, cj: dict, ev: C.Event) -> None:
        self.recorder.record(cj, ev.type, ev.reason, ev.message)

    async def reconcile(self, key: str) -> float | None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return None
        try:
            requeue = await self._sync(cj)
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                return 0.5
            raise
        return None if requeue is None else max(requeue, 0.01)

    async def _sync(self, cj: dict) -> float | None:
        jobs = self._jobs_of(cj)
        check = C.check_jobs(cj, jobs)
        st, changed = check.status, check.changed
        for ev in check.events:
            self._event(cj, ev)
        if check.unexpected:
            fresh = await self.client.get("cronjobs", L.md(cj)["name"], L.md(cj).get("namespace"))
            listed = {r.get("uid") for r in (fresh.get("status") or {}).get("active") or ()}
            for j in check.unexpected:
                if L.md(j).get("uid") not in listed:
                    self.recorder.record(cj, "Warning", "UnexpectedJob",
                                         f"Saw a job that the controller did not create or forgot: "
                                         f"{L.md(j).get('name')}")
        for ref in check.missing:       # not in the informer: ask the API before dropping it
            try:
                await self.client.get("jobs", ref.get("name"), ref.get("namespace"))
            except APIError as e:
                if e.code != 404:
                    raise
                self.recorder.record(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                st["active"] = [r for r in st["active"] if r.get("uid") != ref.get("uid")]
                changed = True
        now = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        d = C.decide({**cj, "status": st}, now)
        for ev in d.events:
            self._event(cj, ev)
        requeue = d.requeue
        if d.create is not None:
            try:
                changed |= await self._start(cj, st, d)
            except Exception:
                if changed or st.get("active") != ((cj.get("status") or {}).get("active") or []):
                    await self._write_status(cj, st)
                raise
        if not L.md(cj).get("deletionTimestamp"):
            for j in C.history_to_delete(cj, jobs):
                if await self._delete_job(cj, j):
                    st["active"] = [r for r in st["active"] if r.get("uid") != L.md(j).get("uid")]
                    changed = True
        if changed:
            await self._write_status(cj, st)
        return requeue

    async def _start(self, cj: dict, st: dict, d: C.Decision) -> bool:
        """Replace's deletions, then the Job; True when the status changed."""
        md = L.md(cj)
        ns = md.get("namespace")
        changed = False
        for ref in d.replace:
            try:
                job = await self.client.get("jobs", ref.get("name"), ref.get("namespace") or ns)
            except APIError as e:
                self.recorder.record(cj, "Warning", "FailedGet", f"Get job: {e.message}")
                raise
            if not await self._delete_job(cj, job):
                raise RuntimeError(f"could not replace job {ns}/{ref.get('name')}")
            st["active"] = [r for r in st["active"] if r.get("uid") != L.md(job).get("uid")]
            changed = True
        name = d.create["metadata"]["name"]
        try:
            made = await self.client.create("jobs", d.create, ns)
        except APIError as e:
            if e.code != 409:
                self.recorder.record(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
                raise
            made = await self.client.get("jobs", name, ns)      # made by an earlier sync
            if (L.controller_of(made) or {}).get("uid") != md.get("uid"):
                return changed          # someone else's Job of that name
            if any(r.get("uid") == L.md(made).get("uid") for r in st.get("active") or ()):
                return changed
            log.info("job already exists", extra={"fields": {"cronjob": f"{ns}/{md.get('name')}", "job": name}})
        else:
            self.recorder.record(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
            log.info("created job", extra={"fields": {"cronjob": f"{ns}/{md.get('name')}", "job": name,
                                                      "scheduledTime": C.rfc3339_in(d.scheduled, dt.timezone.utc)}})
        C.record_scheduled(st, made, d.scheduled)
        return True

    async def _delete_job(self, cj: dict, job: dict) -> bool:
        """deleteJob: the Job and, in the background, its pods; False when the API refused."""
        jm = L.md(job)
        try:
            await self.client.delete("jobs", jm["name"], jm.get("namespace"), propagation_policy="Background")
        except APIError as e:
            self.recorder.record(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
            log.warning("could not delete job", extra={"fields": {"job": f"{jm.get('namespace')}/{jm['name']}",
                                                                  "error": e.message}})
            return False
        self.recorder.record(cj, "Normal", "SuccessfulDelete", f"Deleted job {jm['name']}")
        return True

    async def _write_status(self, cj: dict, st: dict) -> None:
        wire = {k: v for k, v in st.items() if v not in (None, "")}
        if not wire.get("active"):
            wire.pop("active", None)
        await self.client.update("cronjobs", {**cj, "status": wire}, subresource="status")
