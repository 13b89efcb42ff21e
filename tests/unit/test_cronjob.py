"""batch/v1 CronJobs: the cron schedules (robfig/cron's standard parser), the kind's rules, its
table, and the controller against a real ControlPlane in-process with a clock the test moves
(the test plays the Job controller: it marks Jobs complete or failed)."""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import pytest
import pytest_asyncio

from skiff.api.cronsched import ScheduleError, parse
from skiff.api.errors import APIError
from skiff.api.tables import cells
from skiff.controller.controlplane import ControlPlane
from skiff.controller.cronjob import SCHEDULED_ANNOTATION, CronJobController, job_name
from skiff.controller.workloads.cronlogic import MANY_MISSED, NONE_MISSED, most_recent
from skiff.controller.gc import GarbageCollector
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402

UTC = dt.timezone.utc


def at(*args, tz=UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_schedules():
    sat = at(2026, 11, 28, 21, 47, 30)      # a Saturday
    cases = {"*/5 * * * *": at(2026, 11, 28, 21, 50), "0 9 * * MON-FRI": at(2026, 11, 30, 9, 0),
             "30 2 1,15 * *": at(2026, 12, 1, 2, 30), "@hourly": at(2026, 11, 28, 22, 0),
             "@daily": at(2026, 11, 29), "@every 90s": at(2026, 11, 28, 21, 49, 0),
             "0 0 13 * FRI": at(2026, 12, 4),          # day of month OR day of week
             "0 0 * JAN *": at(2027, 1, 1), "15 10 ? * sun": at(2026, 11, 29, 10, 15)}
    for text, want in cases.items():
        assert parse(text).next(sat) == want, text
    assert parse("0 0 30 2 *").next(sat) is None
    ny = zoneinfo.ZoneInfo("America/New_York")     # 2:30 does not exist on 2026-03-08
    assert parse("30 2 * * *").next(at(2026, 3, 7, 12, 0, tz=ny)) == at(2026, 3, 9, 2, 30, tz=ny)
    for bad, msg in {"* * * *": "expected exactly 5 fields, found 4: [* * * *]",
                     "61 * * * *": "end of range (61) above maximum (59): 61",
                     "* * * * 7": "end of range (7) above maximum (6): 7",
                     "x * * * *": 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
                     "@sometimes": "unrecognized descriptor: @sometimes"}.items():
        with pytest.raises(ScheduleError) as ei:
            parse(bad)
        assert str(ei.value) == msg


def test_most_recent_time_and_the_missed_limit():
    s = parse("* * * * *")
    t0 = at(2026, 1, 1)
    assert most_recent(s, t0, t0 + dt.timedelta(seconds=30)) == (None, NONE_MISSED)
    assert most_recent(s, t0, t0 + dt.timedelta(minutes=1, seconds=5)) == (t0 + dt.timedelta(minutes=1), NONE_MISSED)
    t, missed = most_recent(s, t0, t0 + dt.timedelta(minutes=3, seconds=5))
    assert t == t0 + dt.timedelta(minutes=3) and missed != MANY_MISSED
    t, missed = most_recent(s, t0, t0 + dt.timedelta(days=30, seconds=5))
    assert missed == MANY_MISSED and t == t0 + dt.timedelta(days=30)        # only the latest runs
    assert job_name("hello", at(2026, 1, 1, 0, 1)) == f"hello-{int(at(2026, 1, 1, 0, 1).timestamp()) // 60}"


CJ = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
      "spec": {"schedule": "* * * * *", "jobTemplate": {
          "metadata": {"labels": {"team": "a"}},
          "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                         "containers": [{"name": "hello", "image": "busybox",
                                                         "command": ["date"]}]}}}}}}


def cronjob(name="hello", **spec):
    import copy
    cj = copy.deepcopy(CJ)
    cj["metadata"]["name"] = name
    cj["spec"].update(spec)
    return cj


def test_table_row():
    cj = cronjob(timeZone="Europe/Paris")
    cj["metadata"]["creationTimestamp"] = "2026-11-28T20:00:00Z"
    cj["status"] = {"active": [{"name": "x"}], "lastScheduleTime": "2026-11-28T20:59:00Z"}
    now = dt.datetime(2026, 11, 28, 21, 0, tzinfo=UTC).timestamp()
    assert cells("cronjobs", {**cj, "spec": {**cj["spec"], "suspend": False}}, now) == \
        ["hello", "* * * * *", "Europe/Paris", "False", 1, "60s", "60m", "hello", "busybox", "<none>"]


class Clock:
    def __init__(self):
        self.t = time.time()

    def __call__(self):
        return self.t


@pytest_asyncio.fixture
async def env(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()
    clock = Clock()
    holder = {}

    async def cron(client):
        holder["c"] = CronJobController(client, shared=shared, clock=clock)
        await holder["c"].run()

    async def gc(client):
        await GarbageCollector(client, shared=shared).run()
    cp.add_controller(cron)
    cp.add_controller(gc)
    await cp.start()
    try:
        yield cp.local_client(), clock, holder
    finally:
        await cp.stop()


async def _jobs(c, cj="hello"):
    items = (await c.list("jobs", "default"))["items"]
    return sorted([j for j in items if j["metadata"]["name"].startswith(cj + "-")],
                  key=lambda j: j["metadata"]["name"])


async def _tick(c, clock, holder, minutes: float, name="hello"):
    """Move the clock and have the controller look (as its timer would)."""
    clock.t += minutes * 60
    holder["c"].queue.add(f"default/{name}")


async def _finish(c, job, typ="Complete"):
    now = "2026-11-28T21:00:00Z"
    st = {"conditions": [{"type": typ, "status": "True", "lastTransitionTime": now}], "startTime": now}
    if typ == "Complete":
        st["completionTime"] = now
    await c.update("jobs", {**job, "status": st}, subresource="status")


async def _events(c, reason):
    items = (await c.list("events", "default"))["items"]
    return [e for e in items if e["reason"] == reason]


@pytest.mark.asyncio
async def test_runs_at_its_times_and_tracks_its_jobs(env):
    c, clock, holder = env
    cj = await c.create("cronjobs", cronjob(successfulJobsHistoryLimit=1), "default")
    assert cj["spec"]["concurrencyPolicy"] == "Allow" and cj["spec"]["failedJobsHistoryLimit"] == 1
    await _tick(c, clock, holder, 1.05)
    (job,) = await wait_for(lambda: _jobs(c))
    t = int(job["metadata"]["name"].rsplit("-", 1)[1]) * 60
    assert t <= clock.t and job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    assert job["metadata"]["labels"] == {"team": "a"} or job["metadata"]["labels"]["team"] == "a"
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "hello", True)

    async def status(pred):
        st = (await c.get("cronjobs", "hello", "default")).get("status") or {}
        return st if pred(st) else None
    st = await wait_for(lambda: status(lambda s: len(s.get("active") or []) == 1))
    assert st["active"][0]["name"] == job["metadata"]["name"] and st["lastScheduleTime"]
    assert (await wait_for(lambda: _events(c, "SuccessfulCreate")))[0]["message"] == \
        f"Created job {job['metadata']['name']}"
    await _finish(c, job)
    st = await wait_for(lambda: status(lambda s: not s.get("active") and s.get("lastSuccessfulTime")))
    ev = await wait_for(lambda: _events(c, "SawCompletedJob"))
    assert ev[0]["message"] == f"Saw completed job: {job['metadata']['name']}, condition: Complete"
    # the next minute: a second Job; once it completes too, the history limit (1) removes the first
    await _tick(c, clock, holder, 1.0)
    jobs = await wait_for(lambda: _n(_jobs(c), 2))
    await _finish(c, jobs[1])
    await wait_for(lambda: _only(_jobs(c), jobs[1]["metadata"]["name"]))


async def _n(coro, n):
    items = await coro
    return items if len(items) >= n else None


async def _only(coro, name):
    items = await coro
    return items if [j["metadata"]["name"] for j in items] == [name] else None


@pytest.mark.asyncio
async def test_concurrency_policies_and_suspend(env):
    c, clock, holder = env
    await c.create("cronjobs", cronjob("forbid", concurrencyPolicy="Forbid"), "default")
    await c.create("cronjobs", cronjob("replace", concurrencyPolicy="Replace"), "default")
    for name in ("forbid", "replace"):
        await _tick(c, clock, holder, 0, name)
    await _tick(c, clock, holder, 1.05, "forbid")
    holder["c"].queue.add("default/replace")
    (f1,) = await wait_for(lambda: _jobs(c, "forbid"))
    (r1,) = await wait_for(lambda: _jobs(c, "replace"))
    await _tick(c, clock, holder, 1.0, "forbid")
    holder["c"].queue.add("default/replace")
    ev = await wait_for(lambda: _events(c, "JobAlreadyActive"))
    assert ev[0]["message"] == ("Not starting job because prior execution is running and concurrency policy "
                                "is Forbid")
    assert [j["metadata"]["name"] for j in await _jobs(c, "forbid")] == [f1["metadata"]["name"]]

    async def replaced():
        names = [j["metadata"]["name"] for j in await _jobs(c, "replace") if not j["metadata"].get("deletionTimestamp")]
        return names if len(names) == 1 and names[0] != r1["metadata"]["name"] else None
    await wait_for(replaced)
    assert any(e["message"] == f"Deleted job {r1['metadata']['name']}" for e in await _events(c, "SuccessfulDelete"))
    # suspended: no new Job, whatever the time
    await c.patch("cronjobs", "forbid", {"spec": {"suspend": True}}, "default")
    await _finish(c, f1)
    await _tick(c, clock, holder, 5.0, "forbid")
    import asyncio
    await asyncio.sleep(0.5)
    assert len(await _jobs(c, "forbid")) == 1


@pytest.mark.asyncio
async def test_too_many_missed_times_runs_the_latest_once(env):
    c, clock, holder = env
    await c.create("cronjobs", cronjob(), "default")
    await _tick(c, clock, holder, 24 * 60)      # a day later: 1440 missed minutes
    (job,) = await wait_for(lambda: _jobs(c))
    assert int(job["metadata"]["name"].rsplit("-", 1)[1]) == int(clock.t) // 60
    ev = await wait_for(lambda: _events(c, "TooManyMissedTimes"))
    assert ev[0]["type"] == "Warning" and "Set or decrease .spec.startingDeadlineSeconds" in ev[0]["message"]
    # deleting the CronJob deletes its Jobs (owner references, the garbage collector)
    await c.delete("cronjobs", "hello", "default")
    await wait_for(lambda: _none(_jobs(c)))


async def _none(coro):
    return not await coro


def test_validation_messages():
    from skiff.api.validation import ValidationError, validate
    bad = cronjob("x" * 53, schedule="TZ=UTC 0 * * * *", timeZone="Mars/Olympus", concurrencyPolicy="Sometimes",
                  startingDeadlineSeconds=-1)
    with pytest.raises(ValidationError) as ei:
        validate(bad)
    got = {c["field"]: c["message"] for c in ei.value.causes}
    assert got["metadata.name"].endswith("must be no more than 52 characters")
    assert got["spec.schedule"] == ('Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
                                    'use timeZone field instead')
    assert got["spec.timeZone"] == 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'
    assert got["spec.concurrencyPolicy"] == ('Unsupported value: "Sometimes": supported values: "Allow", '
                                             '"Forbid", "Replace"')
    assert got["spec.startingDeadlineSeconds"] == "Invalid value: -1: must be greater than or equal to 0"
    with pytest.raises(ValidationError) as ei:
        validate(cronjob(schedule="61 * * * *"))
    assert ei.value.causes[0]["message"] == 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
    nojob = cronjob()
    nojob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ValidationError) as ei:
        validate(nojob)
    assert ei.value.causes[0]["field"] == "spec.jobTemplate.spec.template.spec.restartPolicy"


@pytest.mark.asyncio
async def test_api_refuses_a_bad_schedule(env):
    c, _, _ = env
    with pytest.raises(APIError) as ei:
        await c.create("cronjobs", cronjob(schedule="* * *"), "default")
    assert ei.value.code == 422 and "expected exactly 5 fields, found 3" in ei.value.message
