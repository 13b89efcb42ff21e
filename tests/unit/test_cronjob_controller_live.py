"""The CronJob controller with the Job controller and the garbage collector against a real
ControlPlane in-process (SQLite store, LocalClient), its clock moved by the test. No nodes: the
test is the kubelet, writing the pods' /status. Covered: a scheduled run to completion through
real Jobs and pods (SawCompletedJob, lastSuccessfulTime), the requeue at the next time, a
Job made by hand from the template (UnexpectedJob, not listed, not blocking Forbid), a listed
Job that went missing (MissingJob), Replace with background deletion of the old Job's pods,
the failed-history limit, time zones in the scheduled-timestamp annotation, and deletion of the
CronJob taking its Jobs with it."""
from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import pytest_asyncio

from skiff.controller.controlplane import ControlPlane
from skiff.controller.cronjob import SCHEDULED_ANNOTATION, CronJobController
from skiff.controller.gc import GarbageCollector
from skiff.controller.job import JobController
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio


class Clock:
    """Starts on a whole minute plus 10 s, so each +60 s crosses exactly one scheduled time."""

    def __init__(self):
        self.t = (time.time() // 60) * 60 + 10

    def __call__(self):
        return self.t


class Env:
    def __init__(self, cp, clock, holder):
        self.cp, self.clock, self.holder = cp, clock, holder
        self.c = cp.local_client()

    @property
    def ctl(self) -> CronJobController:
        return self.holder["cron"]

    async def create(self, name, **spec):
        cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
              "spec": {"schedule": "* * * * *", "jobTemplate": {
                  "metadata": {"labels": {"cron": name}},
                  "spec": {"template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                                 "containers": [{"name": "c", "image": "busybox"}]}}}},
                       **spec}}
        return await self.c.create("cronjobs", cj, "default")

    async def tick(self, name, seconds=60.0):
        """Move the clock and let the controller look, as its timer would at that time."""
        self.clock.t += seconds
        self.ctl.queue.add(f"default/{name}")

    async def cj(self, name):
        return await self.c.get("cronjobs", name, "default")

    async def jobs(self, name, live=True):
        items = (await self.c.list("jobs", "default", label_selector=f"cron={name}"))["items"]
        return sorted([j for j in items if not (live and j["metadata"].get("deletionTimestamp"))],
                      key=lambda j: j["metadata"]["name"])

    async def pods(self, job_name):
        return (await self.c.list("pods", "default", label_selector=f"job-name={job_name}"))["items"]

    async def events(self, name, reason):
        items = (await self.c.list("events", "default", field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def kubelet(self, pod, phase):
        code = 0 if phase == "Succeeded" else 1
        state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        await self.c.patch("pods", pod["metadata"]["name"], {"status": {
            "phase": phase, "containerStatuses": [{"name": "c", "image": "busybox", "restartCount": 0,
                                                   "ready": False, "state": state}]}},
            "default", subresource="status")

    async def finish(self, job, typ):
        """Mark a Job finished as the Job controller would (for CronJobs whose Jobs are not run)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        st = {"conditions": [{"type": typ, "status": "True", "lastTransitionTime": now}], "startTime": now}
        if typ == "Complete":
            st["completionTime"] = now
        await self.c.update("jobs", {**job, "status": st}, subresource="status")


@pytest_asyncio.fixture
async def env(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()
    clock = Clock()
    holder: dict = {}

    async def cron(client):
        holder["cron"] = CronJobController(client, shared=shared, clock=clock)
        await holder["cron"].run()

    async def gc(client):
        await GarbageCollector(client, shared=shared).run()
    cp.add_controller(cron)
    async def job(client):
        await JobController(client, shared=shared).run()
    cp.add_controller(gc)
    cp.add_controller(job)
    await cp.start()
    try:
        await wait_for(lambda: _ready(holder))
        yield Env(cp, clock, holder)
    finally:
        await cp.stop()


async def _ready(holder):
    return holder.get("cron") is not None and holder["cron"].cronjobs is not None


async def test_a_run_through_real_jobs_and_pods(env):
    await env.create("hello")
    # before the first time: nothing, and the controller waits for that time (no polling)
    key = "default/hello"
    await wait_for(lambda: _has(env.ctl.cronjobs.get(key)))
    requeue = await env.ctl.reconcile(key)
    assert requeue == pytest.approx(50.1, abs=0.01)          # the clock is at :10, the time at :00 next
    assert await env.jobs("hello") == []
    await env.tick("hello")
    (job,) = await wait_for(lambda: env.jobs("hello"))
    t = int(job["metadata"]["name"].rsplit("-", 1)[1]) * 60
    assert t == env.clock.t - 10
    assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    (pod,) = await wait_for(lambda: env.pods(job["metadata"]["name"]))
    st = (await wait_for(lambda: _status(env, "hello", lambda s: len(s.get("active") or []) == 1)))
    assert st["active"][0]["uid"] == job["metadata"]["uid"]
    assert st["lastScheduleTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    await env.kubelet(pod, "Succeeded")
    st = await wait_for(lambda: _status(env, "hello", lambda s: not s.get("active") and s.get("lastSuccessfulTime")),
                        timeout=15)
    (ev,) = await wait_for(lambda: env.events("hello", "SawCompletedJob"))
    assert ev["message"] == f"Saw completed job: {job['metadata']['name']}, condition: Complete"
    done = await env.c.get("jobs", job["metadata"]["name"], "default")
    assert st["lastSuccessfulTime"] == done["status"]["completionTime"]


async def _has(x):
    return x


async def _status(env, name, pred):
    """The CronJob's status when ``pred`` holds for it (a dict that is true even when empty)."""
    st = (await env.cj(name)).get("status") or {}
    return _Status(st) if pred(st) else None


class _Status(dict):
    def __bool__(self):
        return True


async def test_a_job_made_by_hand_is_not_adopted(env):
    cj = await env.create("manual", concurrencyPolicy="Forbid")
    tmpl = cj["spec"]["jobTemplate"]
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "manual-by-hand", "labels": {"cron": "manual"},
                        "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "manual",
                                             "uid": cj["metadata"]["uid"], "controller": True}]},
           "spec": tmpl["spec"]}
    await env.c.create("jobs", job, "default")
    (ev,) = await wait_for(lambda: env.events("manual", "UnexpectedJob"))
    assert ev["type"] == "Warning" and ev["message"] == \
        "Saw a job that the controller did not create or forgot: manual-by-hand"
    # not listed, so Forbid does not hold the scheduled run back
    await env.tick("manual")
    await wait_for(lambda: _n(env.jobs("manual"), 2))
    st = await wait_for(lambda: _status(env, "manual", lambda s: len(s.get("active") or []) == 1))
    assert st["active"][0]["name"] != "manual-by-hand"


async def _n(coro, n):
    items = await coro
    return items if len(items) == n else None


async def test_a_listed_job_that_is_gone_leaves_the_list(env):
    cj = await env.create("ghost", suspend=True)
    cj["status"] = {"active": [{"kind": "Job", "apiVersion": "batch/v1", "namespace": "default",
                                "name": "ghost-1", "uid": "no-such-uid"}]}
    await env.c.update("cronjobs", cj, subresource="status")
    (ev,) = await wait_for(lambda: env.events("ghost", "MissingJob"))
    assert ev["message"] == "Active job went missing: ghost-1"
    await wait_for(lambda: _status(env, "ghost", lambda s: not s.get("active")))


async def test_replace_deletes_the_running_job_and_its_pods(env):
    await env.create("swap", concurrencyPolicy="Replace")
    await env.tick("swap")
    (first,) = await wait_for(lambda: env.jobs("swap"))
    await wait_for(lambda: env.pods(first["metadata"]["name"]))
    await wait_for(lambda: _status(env, "swap", lambda s: len(s.get("active") or []) == 1))
    await env.tick("swap")
    (second,) = await wait_for(lambda: _other(env.jobs("swap"), first))
    ev = await wait_for(lambda: env.events("swap", "SuccessfulDelete"))
    assert ev[0]["message"] == f"Deleted job {first['metadata']['name']}"
    # background propagation: the Job goes, the garbage collector takes its pods
    await wait_for(lambda: _gone(env, first))
    st = await wait_for(lambda: _status(env, "swap", lambda s: [r["name"] for r in s.get("active") or []]
                                        == [second["metadata"]["name"]]))
    assert st["active"][0]["uid"] == second["metadata"]["uid"]


async def _other(coro, first):
    items = await coro
    return items if len(items) == 1 and items[0]["metadata"]["name"] != first["metadata"]["name"] else None


async def _gone(env, job):
    jobs = [j["metadata"]["name"] for j in await env.jobs("swap", live=False)]
    return job["metadata"]["name"] not in jobs and not await env.pods(job["metadata"]["name"])


async def test_failed_history_limit_and_time_zone(env):
    await env.create("flaky", timeZone="Asia/Tokyo", failedJobsHistoryLimit=1, successfulJobsHistoryLimit=0,
                     suspend=False)
    names = []
    for _ in range(3):
        await env.tick("flaky")
        jobs = await wait_for(lambda: _new(env.jobs("flaky"), names))
        job = next(j for j in jobs if j["metadata"]["name"] not in names)
        names.append(job["metadata"]["name"])
        t = dt.datetime.fromtimestamp(int(job["metadata"]["name"].rsplit("-", 1)[1]) * 60, dt.timezone.utc)
        assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == \
            t.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y-%m-%dT%H:%M:%S+09:00")
        await wait_for(lambda: _status(env, "flaky", lambda s: any(r["name"] == names[-1]
                                                                  for r in s.get("active") or [])))
        await env.finish(await env.c.get("jobs", names[-1], "default"), "Failed")
        await wait_for(lambda: _status(env, "flaky", lambda s: not s.get("active")))
    # only the newest failed Job is kept, the older ones deleted oldest first
    await wait_for(lambda: _names(env.jobs("flaky"), names[-1:]))
    deleted = [e["message"] for e in await env.events("flaky", "SuccessfulDelete")]
    assert sorted(deleted) == sorted(f"Deleted job {n}" for n in names[:-1])
    # deleting the CronJob takes its Jobs with it (owner references, the garbage collector)
    await env.c.delete("cronjobs", "flaky", "default")
    await wait_for(lambda: _none(env.jobs("flaky", live=False)))


async def _new(coro, names):
    items = await coro
    return items if any(j["metadata"]["name"] not in names for j in items) else None


async def _names(coro, want):
    items = await coro
    return items if [j["metadata"]["name"] for j in items] == want else None


async def _none(coro):
    return not await coro


async def test_suspend_then_resume_runs_only_the_latest(env):
    await env.create("nap", suspend=True)
    await env.tick("nap", 5 * 60)
    await asyncio.sleep(0.3)
    assert await env.jobs("nap") == []
    await env.c.patch("cronjobs", "nap", {"spec": {"suspend": False}}, "default")
    (job,) = await wait_for(lambda: env.jobs("nap"))
    assert int(job["metadata"]["name"].rsplit("-", 1)[1]) == int(env.clock.t) // 60     # the latest minute
    await asyncio.sleep(0.3)
    assert len(await env.jobs("nap")) == 1
