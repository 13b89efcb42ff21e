"""Job controller: runs the pods of batch/v1 Jobs until enough of them succeed.

As Kubernetes' pkg/controller/job (1.32), over the shared jobs and pods informers (a Job's pods
through the owner index, never by listing); the decisions are
:mod:`skiff.controller.workloads.joblogic`'s:

- Pods are made from the template (generateName ``<job>-``, the Job as controller with
  blockOwnerDeletion, the ``batch.kubernetes.io/job-tracking`` finalizer) until
  min(parallelism, completions - succeeded) are active (without completions: parallelism of
  them until one succeeds), in slow-start batches, at most 500 a sync. Surplus pods (a lower
  parallelism) are deleted, and so are all of a suspended Job's (condition Suspended).
- Every finished pod is counted once: its uid goes into status.uncountedTerminatedPods, then
  its finalizer is removed, then it moves into the succeeded or failed counter. A failed pod is
  replaced after a back-off (10 s after one failure, doubling, at most 6 min, from the latest;
  a success resets it).
- More failed pods than backoffLimit (restartPolicy OnFailure: as many container restarts), or
  activeDeadlineSeconds passed since startTime: condition FailureTarget, the active pods are
  deleted (and count as failed), then Failed (BackoffLimitExceeded, DeadlineExceeded) once none
  is left running. Enough successes: SuccessCriteriaMet, then Complete and completionTime.
- Expectations: until the pods it created (deleted) are seen in (gone from) the cache, a Job's
  pods are not managed again; finalizer removals are expected the same way, so a lagging cache
  never makes a pod count twice.
- Pods whose Job is gone or finished lose the finalizer. A Job adopts orphans its selector
  matches (manualSelector) and releases the pods it no longer selects. A Job whose
  spec.managedBy names another controller is left to that one.
- Events: SuccessfulCreate ``Created pod: NAME``, SuccessfulDelete ``Deleted pod: NAME``,
  FailedCreate, FailedDelete, Completed ``Job completed``, BackoffLimitExceeded,
  DeadlineExceeded, Suspended, Resumed.
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.api.timefmt import rfc3339
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import joblogic as J
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.expectations import PodExpectations
from skiff.controller.workloads.shared import OwnerIndex, OwnerKeys, SharedInformers

__all__ = ["JobController"]

log = logging.getLogger("skiff.job")

COMPONENT = "job-controller"
BURST = 500
_REMOVE_FINALIZER = {"metadata": {"$deleteFromPrimitiveList/finalizers": [J.TRACKING_FINALIZER]}}



class _Counts:
    """The active, ready and terminating pods of a sync, as its deletions and creations change them."""
    __slots__ = ("active", "ready", "terminating")

    def __init__(self, active: int, ready: int, terminating: int):
        self.active, self.ready, self.terminating = active, ready, terminating


def _is_job(ref: dict | None) -> bool:
    return ref is not None and ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1"


class JobController(QueueController):
    def __init__(self, client, *, workers: int = 4, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, batch: float = 0.1,
                 pod_failure_backoff: tuple[float, float] = (J.BACKOFF_BASE, J.BACKOFF_MAX)):
        self.client = client
        self.workers = workers
        self.batch = batch                  # pod changes are looked at together, after this long
        self.pod_failure_backoff = pod_failure_backoff
        self.shared = shared or SharedInformers()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.queue = WorkQueue("job")       # keys: "ns/job", or ("pod", "ns/pod") for orphans
        self.pod_index = OwnerIndex()
        self.owners = OwnerKeys()
        self.expectations = PodExpectations()
        self.removing: dict[str, set[str]] = {}      # job key -> pod uids losing the finalizer, not yet seen
        self.backoff: dict[str, J.Backoff] = {}
        self.jobs: Informer | None = None
        self.pods: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.jobs = await self.shared.acquire(self.client, "jobs")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)
        self.start_workers("job-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf, res in ((self.pods, "pods"), (self.jobs, "jobs")):
            if inf is not None:
                for h in (self._on_pod, self._on_job):
                    inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    # -- handlers -----------------------------------------------------------------------------
    def _on_job(self, typ: str, job: dict, old: dict | None) -> None:
        key, m = self.owners.handle(typ, job), L.md(job)
        uid = m.get("uid")
        if typ == "DELETED":
            for d in (self.expectations, self.removing, self.backoff):
                d.pop(key, None)
            self._release_pods_of(uid)
            return
        if J.is_finished(job):
            self.backoff.pop(key, None)
            self._release_pods_of(uid)      # the sync that finished it did; this is the backup
        elif old is None or L.md(old).get("generation") != m.get("generation"):
            self.queue.add(key)
        else:
            self.queue.add_after(key, self.batch)   # its own status writes, mostly

    def _release_pods_of(self, uid: str) -> None:
        for k in list(self.pod_index.owned(uid)):
            p = self.pods.get(k) if self.pods is not None else None
            if p is not None and J.has_finalizer(p):
                self.queue.add(("pod", k))

    def _job_done(self, ref: dict) -> bool:
        """The Job a pod's controller reference names is finished or not in the cache."""
        k = self.owners.for_uid(ref.get("uid"))
        job = self.jobs.get(k) if k is not None else None
        return job is None or J.is_finished(job)

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        self.pod_index.handle(typ, pod, old)
        ctrl = L.controller_of(pod)
        refs = [r for r in (ctrl, L.controller_of(old) if old is not None else None) if _is_job(r)]
        uid = L.md(pod).get("uid")
        for r in {r.get("uid"): r for r in refs}.values():
            k = self.owners.for_uid(r.get("uid"))
            if k is None:
                continue
            if typ == "DELETED" or not J.has_finalizer(pod):
                self._removal_observed(k, uid)
            self.queue.add_after(k, self.batch)
        if typ == "DELETED":
            return
        if J.has_finalizer(pod) and (ctrl is None or (_is_job(ctrl) and self._job_done(ctrl))):
            self.queue.add(("pod", key_of(pod)))
        if ctrl is None and (old is None or L.md(old).get("labels") != L.md(pod).get("labels")
                             or L.controller_of(old) is not None):
            for k in self.owners.selecting(pod, self.jobs):
                self.queue.add(k)       # it may adopt the orphan

    def _removal_observed(self, key: str, uid: str) -> None:
        s = self.removing.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self.removing[key]

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key) -> float | None:
        if isinstance(key, tuple):
            return await self._sync_orphan(key[1])
        try:
            return await self._sync(key)
        except APIError as e:
            if e.code == 404:       # the Job is gone: its DELETED event cleans up
                return None
            if e.code == 409:       # a stale Job: again, with the newer one
                return 0
            raise

    def _satisfied(self, key: str) -> bool:
        return self.expectations.satisfied(key, self.pods.cache)

    async def _sync(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        if J.managed_elsewhere(job) or J.is_finished(job):
            return None
        now = time.time()
        satisfied = self._satisfied(key)
        pods = await self._claim_pods(job)
        active_pods, ready = J.active_and_ready(pods)
        counts = _Counts(len(active_pods), ready, J.count_terminating(pods))
        st = J.status_of(job)
        expected_rm = set(self.removing.get(key, ()))
        unc = st["uncountedTerminatedPods"]
        new_succeeded, new_failed = J.new_finished_pods(job, pods, unc, expected_rm)
        failed_ix: set = set()
        if J.is_indexed(job):
            done_ix = J.succeeded_indexes(job, st, pods)
            st["completedIndexes"] = J.format_indexes(done_ix) or None
            st["succeeded"] = succeeded = len(done_ix)
            if J.per_index(job):
                failed_ix = J.failed_indexes(job, st, pods)
                st["failedIndexes"] = J.format_indexes(failed_ix)
        else:
            done_ix = None
            succeeded = st["succeeded"] + len(new_succeeded) + len(unc["succeeded"])
        failed = st["failed"] + sum(1 for p in new_failed if J.counts_as_failed(job, p)) + len(unc["failed"])
        if not st.get("startTime") and not J.suspended(job):
            st["startTime"] = rfc3339(now)
        backoff = J.next_backoff(self.backoff.get(key, J.Backoff()), new_succeeded, new_failed)
        finished = J.finishing_condition(job, st, pods, failed, now)
        if finished is None and done_ix is not None:
            finished = J.indexed_finishing(job, done_ix, failed_ix, now)
        left = J.deadline_left(job, st, now) if finished is None else None
        requeue = left if left is not None and left > 0 else None
        err: APIError | None = None
        if finished is not None:
            done, err = await self._delete(job, key, active_pods, counts, keep_finalizers=True)
            if done != len(active_pods) or not satisfied:
                finished = None     # pods or finalizers may remain: not finished yet
        else:
            managed = satisfied and not L.md(job).get("deletionTimestamp")
            if managed:
                wait, err = await self._manage(job, key, active_pods, succeeded, counts, backoff, now,
                                               None if done_ix is None else done_ix | failed_ix, pods)
                if wait is not None:
                    requeue = wait if requeue is None else min(requeue, wait)
            if J.is_complete(job, succeeded, counts.active):
                finished = J.success_condition(now)
            elif managed:
                reason = J.suspend_transition(job, st, now)
                if reason is not None:
                    self.recorder.record(job, "Normal", reason, f"Job {reason.lower()}")
        st.update(active=counts.active, ready=counts.ready, terminating=counts.terminating)
        await self._track(job, key, st, pods, expected_rm, finished, backoff, counts.terminating, now)
        if err is not None:
            raise err
        return requeue

    # -- pods of a Job ------------------------------------------------------------------------
    async def _claim_pods(self, job: dict) -> list[dict]:
        """ClaimPods: every pod (active or finished) the Job controls, after adopting the
        orphans its selector matches and releasing the pods it no longer does."""
        m = job["metadata"]
        uid, ns, deleting = m.get("uid"), m.get("namespace") or "", m.get("deletionTimestamp")
        sel = L.selector_from(J.spec(job).get("selector"))
        cache = self.pods.cache
        out, release, adopt = [], [], []
        for k in list(self.pod_index.owned(uid)):
            p = cache.get(k)
            if p is None:
                continue
            if L.selects(sel, p):
                out.append(p)
            elif not deleting:
                release.append(p)
        if not deleting:
            adopt = [p for p in (cache.get(k) for k in list(self.pod_index.orphans_in(ns)))
                     if p is not None and not L.md(p).get("deletionTimestamp") and L.selects(sel, p)]
        for p in release:
            await self._set_owner(p, job, False)
        if adopt:
            fresh = await self.client.get("jobs", m["name"], ns)
            if fresh["metadata"].get("uid") != uid or fresh["metadata"].get("deletionTimestamp"):
                return out
            for p in adopt:
                claimed = await self._set_owner(p, job, True)
                if claimed is not None:
                    out.append(claimed)
        return out

    async def _set_owner(self, pod: dict, job: dict, adopt: bool) -> dict | None:
        """Adopt (controller reference and the finalizer) or release ``pod``, with a CAS on its
        resourceVersion; the pod as written, None when it changed meanwhile or is gone. A
        released pod keeps the finalizer until its orphan sync removes it."""
        pm = pod["metadata"]
        uid = job["metadata"]["uid"]
        refs = [r for r in pm.get("ownerReferences") or () if r.get("uid") != uid]
        body: dict = {"resourceVersion": pm.get("resourceVersion")}
        if adopt:
            refs.append(L.controller_ref(job, "batch/v1", "Job"))
            fins = list(pm.get("finalizers") or ())
            body["finalizers"] = fins if J.TRACKING_FINALIZER in fins else fins + [J.TRACKING_FINALIZER]
        body["ownerReferences"] = refs or None
        try:
            out = await self.client.patch("pods", pm["name"], {"metadata": body}, pm.get("namespace"))
        except APIError as e:
            if e.code in (404, 409):
                return None
            raise
        log.info("adopted pod" if adopt else "released pod", extra={"fields": {
            "job": key_of(job), "pod": pm["name"]}})
        return out

    async def _manage(self, job: dict, key: str, active_pods: list, succeeded: int, counts: _Counts,
                      backoff: J.Backoff, now: float, done: set | None = None, pods: list = ()
                      ) -> tuple[float | None, APIError | None]:
        """manageJob: one step towards the wanted number of active pods; (seconds to wait for
        the back-off, the first error). ``done``: an Indexed Job's succeeded and failed indexes."""
        if J.suspended(job):
            _, err = await self._delete(job, key, active_pods, counts, keep_finalizers=False)
            return None, err
        if done is not None:
            return await self._manage_indexed(job, key, active_pods, counts, backoff, now, done, pods)
        want = J.want_active(job, succeeded, counts.active)
        surplus = counts.active - want
        if surplus > 0:
            victims = J.pods_to_remove(active_pods, min(surplus, BURST))
            _, err = await self._delete(job, key, victims, counts, keep_finalizers=False)
            return None, err
        missing = want - counts.active - (counts.terminating if J.only_replace_failed(job) else 0)
        if missing <= 0:
            return None, None
        wait = J.backoff_left(backoff, now, *self.pod_failure_backoff)
        if wait > 0:
            return max(wait, self.batch), None
        return None, await self._create(job, key, min(missing, BURST), counts)

    async def _manage_indexed(self, job: dict, key: str, active_pods: list, counts: _Counts,
                              backoff: J.Backoff, now: float, done: set,
                              pods: list) -> tuple[float | None, APIError | None]:
        """manageJob for an Indexed Job: pods without a valid index, of a finished index or a
        second one of an index go; the missing indexes get a pod each, lowest first, after the
        Job's back-off (with backoffLimitPerIndex: each index's own)."""
        extra, missing = J.indexed_plan(job, active_pods, done)
        if extra:
            _, err = await self._delete(job, key, extra[:BURST], counts, keep_finalizers=False)
            return None, err
        if not missing:
            return None, None
        fails = J.index_failures(job, pods) if J.per_index(job) else {}
        if not J.per_index(job):
            wait = J.backoff_left(backoff, now, *self.pod_failure_backoff)
            if wait > 0:
                return max(wait, self.batch), None
        waits = {}
        for ix in missing:
            f = fails.get(ix)
            if f is not None:
                waits[ix] = J.backoff_left(J.Backoff(f.failures + f.ignored, f.last_failure), now,
                                           *self.pod_failure_backoff)
        ready = [ix for ix in missing if waits.get(ix, 0) <= 0]
        later = [w for w in waits.values() if w > 0]
        wait = max(min(later), self.batch) if later else None
        if not ready:
            return wait, None
        return wait, await self._create(job, key, min(len(ready), BURST), counts, ready, fails)

    async def _create(self, job: dict, key: str, n: int, counts: _Counts,
                      indexes: list[int] | None = None, fails: dict | None = None) -> APIError | None:
        """Create ``n`` pods in slow-start batches (an Indexed Job's: one for each of ``indexes``)."""
        e = self.expectations.expect(key)
        template = J.pod_from_template(job)
        ns = job["metadata"].get("namespace")
        log.info("creating pods", extra={"fields": {"job": key, "count": n}})
        if indexes is None:
            bodies = (dict(template) for _ in range(n))
        else:
            bodies = (J.with_index(J.pod_from_template(job), job, ix, (fails or {}).get(ix)) for ix in indexes[:n])
        batch, done = 1, 0
        first_error: APIError | None = None
        while done < n:
            size = min(batch, n - done)
            results = await asyncio.gather(*(self.client.create("pods", next(bodies), ns) for _ in range(size)),
                                           return_exceptions=True)
            ok = 0
            for r in results:
                if isinstance(r, BaseException):
                    if not isinstance(r, APIError):
                        raise r
                    first_error = first_error or r
                    self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {r.message}")
                    log.warning("pod creation failed", extra={"fields": {"job": key, "error": r.message}})
                else:
                    ok += 1
                    e.creates.add(key_of(r))
                    self.recorder.record(job, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            counts.active += ok
            done += size
            if ok < size:
                break       # slow start: stop at the first failing batch
            batch *= 2
        return first_error

    async def _delete(self, job: dict, key: str, victims: list, counts: _Counts,
                      keep_finalizers: bool) -> tuple[int, APIError | None]:
        """Delete ``victims``: keeping their finalizers when they are to count as failed (the Job
        is failing), else removing them first (surplus and suspended pods do not count). Returns
        (how many are deleted, the first error)."""
        if not victims:
            return 0, None
        e = self.expectations.expect(key)
        log.info("deleting pods", extra={"fields": {"job": key, "count": len(victims)}})

        async def one(p: dict) -> APIError | None:
            pm = p["metadata"]
            e.deletes.add(key_of(p))
            try:
                if not keep_finalizers and J.has_finalizer(p):
                    await self.client.patch("pods", pm["name"], _REMOVE_FINALIZER, pm.get("namespace"),
                                            patch_type="strategic")
                await self.client.delete("pods", pm["name"], pm.get("namespace"),
                                         preconditions={"uid": pm.get("uid")})
            except APIError as err:
                e.deletes.discard(key_of(p))
                if err.code == 404:
                    return None
                self.recorder.record(job, "Warning", "FailedDelete", f"Error deleting: {err.message}")
                return err
            self.recorder.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pm['name']}")
            return None
        errs = await asyncio.gather(*(one(p) for p in victims))
        for p, err in zip(victims, errs):
            if err is None:
                counts.active -= 1
                counts.terminating += 1
                counts.ready -= 1 if L.is_pod_ready(p) else 0
        first = next((x for x in errs if x is not None), None)
        return sum(1 for x in errs if x is None), first

    # -- counting and status ------------------------------------------------------------------
    async def _track(self, job: dict, key: str, st: dict, pods: list, expected_rm: set, finished: dict | None,
                     backoff: J.Backoff, terminating: int, now: float) -> None:
        """trackJobStatusAndRemoveFinalizers: the finished pods' uids are written into
        uncountedTerminatedPods (with the interim FailureTarget / SuccessCriteriaMet), then their
        finalizers are removed, then they are counted, and the Job finishes when nothing is left
        uncounted or terminating."""
        with_finalizer = {L.md(p).get("uid") for p in pods
                          if J.has_finalizer(p) and L.md(p).get("uid") not in expected_rm}
        J.clean_uncounted(st, with_finalizer)
        to_remove, full = J.track_finished(job, pods, st, expected_rm, finished)
        final = J.interim_condition(st, finished, now)
        job = await self._flush(job, st)
        self.backoff[key] = backoff         # the new failures are in the status: they count once
        err = None
        if to_remove:
            removed, err = await self._remove_finalizers(key, to_remove)
            with_finalizer -= removed
        J.clean_uncounted(st, with_finalizer)
        done = err is None and not full and J.enact_finished(st, final, terminating)
        job = await self._flush(job, st)
        if err is not None:
            raise err
        if done:
            self._finished(job, final)

    async def _flush(self, job: dict, st: dict) -> dict:
        """Write the status when it differs from the Job's (CAS on its resourceVersion)."""
        wire = J.status_json(st)
        if wire == (job.get("status") or {}):
            return job
        out = await self.client.update("jobs", {**job, "status": wire}, subresource="status")
        log.info("job status", extra={"fields": {
            "job": key_of(job), "active": wire.get("active", 0), "succeeded": wire.get("succeeded", 0),
            "failed": wire.get("failed", 0)}})
        return out

    async def _remove_finalizers(self, key: str, pods: list) -> tuple[set, APIError | None]:
        """The pods' uids whose finalizer is gone (removed, or the pod is), and the first error."""
        expecting = self.removing.setdefault(key, set())

        async def one(p: dict) -> APIError | None:
            pm = p["metadata"]
            expecting.add(pm.get("uid"))
            try:
                await self.client.patch("pods", pm["name"], _REMOVE_FINALIZER, pm.get("namespace"),
                                        patch_type="strategic")
            except APIError as err:
                expecting.discard(pm.get("uid"))       # no change to see
                return None if err.code == 404 else err
            return None
        errs = await asyncio.gather(*(one(p) for p in pods))
        if not expecting:
            self.removing.pop(key, None)
        removed = {L.md(p).get("uid") for p, err in zip(pods, errs) if err is None}
        return removed, next((x for x in errs if x is not None), None)

    def _finished(self, job: dict, final: dict) -> None:
        st, s = job.get("status") or {}, J.spec(job)
        if final["type"] == J.COMPLETE:
            if s.get("completions") is not None and int(st.get("succeeded") or 0) > int(s["completions"]):
                self.recorder.record(job, "Warning", "TooManySucceededPods",
                                     "Too many succeeded pods running after completion count reached")
            self.recorder.record(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.record(job, "Warning", final["reason"], final["message"])
        log.info("job finished", extra={"fields": {"job": key_of(job), "condition": final["type"],
                                                   "reason": final["reason"]}})

    # -- orphans ------------------------------------------------------------------------------
    async def _sync_orphan(self, pod_key: str) -> None:
        """syncOrphanPod: the finalizer of a pod whose Job is gone or finished goes (a live GET
        confirms what the cache does not know)."""
        pod = self.pods.get(pod_key)
        if pod is None or not J.has_finalizer(pod):
            return None
        ref = L.controller_of(pod)
        if ref is not None:
            if not _is_job(ref) or not await self._job_gone_or_finished(pod, ref):
                return None
        pm = pod["metadata"]
        try:
            await self.client.patch("pods", pm["name"], _REMOVE_FINALIZER, pm.get("namespace"),
                                    patch_type="strategic")
        except APIError as e:
            if e.code != 404:
                raise
        log.info("removed the tracking finalizer of an orphan", extra={"fields": {"pod": pod_key}})
        return None

    async def _job_gone_or_finished(self, pod: dict, ref: dict) -> bool:
        k = self.owners.for_uid(ref.get("uid"))
        job = self.jobs.get(k) if k is not None else None
        if job is None:
            try:
                job = await self.client.get("jobs", ref.get("name"), L.md(pod).get("namespace"))
            except APIError as e:
                if e.code == 404:
                    return True
                raise
            if L.md(job).get("uid") != ref.get("uid"):
                return True
        return J.is_finished(job)
