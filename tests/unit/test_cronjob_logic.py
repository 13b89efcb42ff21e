"""The CronJob controller's decisions (skiff/controller/workloads/cronlogic.py) with the clock
given by the test: which scheduled time runs, missed times and startingDeadlineSeconds,
Forbid/Replace/suspend, the time zone, status.active bookkeeping and the history limits; and
robfig/cron's standard parser (fields, names, ranges, steps, descriptors, errors, next times)."""
from __future__ import annotations

import copy
import datetime as dt
import zoneinfo

import pytest

from skiff.api.cronsched import ScheduleError, parse
from skiff.controller.workloads import cronlogic as C

UTC = dt.timezone.utc
CREATED = dt.datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)      # a Monday


def at(*args, tz=UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def cronjob(**spec) -> dict:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob",
          "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid",
                       "creationTimestamp": "2026-03-02T10:00:00Z"},
          "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                   "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                   "jobTemplate": {"metadata": {"labels": {"app": "tick"}, "annotations": {"note": "x"}},
                                   "spec": {"template": {"spec": {
                                       "restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox"}]}}}}},
          "status": {}}
    cj["spec"].update(spec)
    return cj


def job(name: str, finished: str | None = None, start: str | None = "2026-03-02T10:05:00Z",
        done: str | None = "2026-03-02T10:06:00Z", uid: str | None = None) -> dict:
    st: dict = {}
    if start:
        st["startTime"] = start
    if finished:
        st["conditions"] = [{"type": finished, "status": "True"}]
        if finished == "Complete":
            st["completionTime"] = done
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": uid or name + "-uid",
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                                              "uid": "cj-uid", "controller": True}]},
            "status": st}


def reasons(d) -> list[str]:
    return [e.reason for e in d.events]


# -- the parser ----------------------------------------------------------------------------------
def test_fields_names_ranges_steps_and_descriptors():
    sat = at(2026, 11, 28, 21, 47, 30)      # a Saturday
    cases = {"*/5 * * * *": at(2026, 11, 28, 21, 50), "0 9 * * MON-FRI": at(2026, 11, 30, 9, 0),
             "0 9 * * mon-fri": at(2026, 11, 30, 9, 0), "30 2 1,15 * *": at(2026, 12, 1, 2, 30),
             "10-20/5 22 * * *": at(2026, 11, 28, 22, 10), "5/20 * * * *": at(2026, 11, 28, 22, 5),
             "0 0 1 FEB,jun *": at(2027, 2, 1), "0 12 * * 0": at(2026, 11, 29, 12),
             "@yearly": at(2027, 1, 1), "@annually": at(2027, 1, 1), "@monthly": at(2026, 12, 1),
             "@weekly": at(2026, 11, 29), "@daily": at(2026, 11, 29), "@midnight": at(2026, 11, 29),
             "@hourly": at(2026, 11, 28, 22, 0), "@every 90s": at(2026, 11, 28, 21, 49, 0),
             "@every 1m30.5s": at(2026, 11, 28, 21, 49, 0), "15 10 ? * sun": at(2026, 11, 29, 10, 15)}
    for text, want in cases.items():
        assert parse(text).next(sat) == want, text
    assert parse("0 0 30 2 *").next(sat) is None            # never: no time within five years


def test_day_of_month_or_day_of_week():
    """Both restricted: either matches (cron's rule); one of them * (even */1): the other alone."""
    after = at(2026, 11, 28)                 # Saturday; the 4th of December is a Friday
    assert parse("0 0 13 * FRI").next(after) == at(2026, 12, 4)     # Friday the 4th: dow matches
    assert parse("0 0 13 * *").next(after) == at(2026, 12, 13)
    assert parse("0 0 * * FRI").next(after) == at(2026, 12, 4)
    assert parse("0 0 */1 * FRI").next(after) == at(2026, 12, 4)  # */1 is a star, as in robfig
    assert parse("0 0 1-31/2 * FRI").next(after) == at(2026, 11, 29)  # a step > 1 is not: the 29th
    assert parse("0 0 13 * ?").next(after) == at(2026, 12, 13)


def test_parse_errors_in_robfigs_words():
    for bad, msg in {"* * * *": "expected exactly 5 fields, found 4: [* * * *]",
                     "* * * * * *": "expected exactly 5 fields, found 6: [* * * * * *]",
                     "": "empty spec string",
                     "61 * * * *": "end of range (61) above maximum (59): 61",
                     "* 24 * * *": "end of range (24) above maximum (23): 24",
                     "* * 0 * *": "beginning of range (0) below minimum (1): 0",
                     "* * * 13 *": "end of range (13) above maximum (12): 13",
                     "* * * * 7": "end of range (7) above maximum (6): 7",
                     "5-1 * * * *": "beginning of range (5) beyond end of range (1): 5-1",
                     "1-2-3 * * * *": "too many hyphens: 1-2-3",
                     "*/2/3 * * * *": "too many slashes: */2/3",
                     "*/0 * * * *": "step of range should be a positive number: */0",
                     "x * * * *": 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
                     "* * * FOO *": 'failed to parse int from FOO: strconv.Atoi: parsing "FOO": invalid syntax',
                     "@sometimes": "unrecognized descriptor: @sometimes",
                     "@every 5": 'failed to parse duration @every 5: time: missing unit in duration "5"',
                     "@every 5x": 'failed to parse duration @every 5x: time: unknown unit "x" in duration "5x"',
                     "TZ=Nowhere/Land 0 * * * *": "provided bad location Nowhere/Land: unknown time zone "
                                                  "Nowhere/Land"}.items():
        with pytest.raises(ScheduleError) as ei:
            parse(bad)
        assert str(ei.value) == msg, bad


def test_next_in_a_time_zone():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")          # no DST at all
    s = parse("0 9 * * *")
    assert s.next(at(2026, 6, 1, 12, tz=paris)) == at(2026, 6, 2, 9, tz=paris)
    assert s.next(at(2026, 6, 1, 12, tz=paris)).astimezone(UTC) == at(2026, 6, 2, 7)     # CEST = UTC+2
    assert s.next(at(2026, 1, 1, 12, tz=tokyo)).astimezone(UTC) == at(2026, 1, 2, 0)     # JST = UTC+9
    # a TZ= prefix reads the schedule in that zone whatever zone the time is in
    assert parse("TZ=Asia/Tokyo 0 9 * * *").next(at(2026, 1, 1, 12)) == at(2026, 1, 2, 0)
    # DST, as robfig: 02:30 does not exist on 2026-03-08 in New York (skipped), 01:30 happens
    # twice on 2026-11-01 (both run)
    ny = zoneinfo.ZoneInfo("America/New_York")
    assert parse("30 2 * * *").next(at(2026, 3, 7, 12, tz=ny)) == at(2026, 3, 9, 2, 30, tz=ny)
    s = parse("30 1 * * *")
    first = s.next(at(2026, 10, 31, 12, tz=ny))
    second = s.next(first)
    assert first.astimezone(UTC) == at(2026, 11, 1, 5, 30) and second.astimezone(UTC) == at(2026, 11, 1, 6, 30)
    assert s.next(second).astimezone(UTC) == at(2026, 11, 2, 6, 30)


# -- which time runs -----------------------------------------------------------------------------
def test_nothing_before_the_first_time_then_requeued_for_it():
    d = C.decide(cronjob(), at(2026, 3, 2, 10, 2, 0))
    assert d.create is None and d.events == []
    assert d.requeue == pytest.approx(3 * 60 + 0.1)       # 10:05 plus 100 ms, not a poll


def test_creates_the_job_of_the_scheduled_time():
    cj = cronjob()
    d = C.decide(cj, at(2026, 3, 2, 10, 5, 3))
    t = at(2026, 3, 2, 10, 5)
    assert d.scheduled == t
    j = d.create
    assert j["metadata"]["name"] == f"tick-{int(t.timestamp()) // 60}"
    assert j["metadata"]["labels"] == {"app": "tick"}
    assert j["metadata"]["annotations"] == {"note": "x", C.SCHEDULED_ANNOTATION: "2026-03-02T10:05:00Z"}
    ref = j["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("CronJob", "tick", "cj-uid", True)
    assert j["spec"] == cj["spec"]["jobTemplate"]["spec"] and j["spec"] is not cj["spec"]["jobTemplate"]["spec"]
    assert d.requeue == pytest.approx(5 * 60 - 3 + 0.1)    # the 10:10 run
    # once lastScheduleTime says so, the time is not run again
    st = {}
    C.record_scheduled(st, {"metadata": {"name": j["metadata"]["name"], "namespace": "default", "uid": "u1"}}, t)
    assert st["lastScheduleTime"] == "2026-03-02T10:05:00Z" and st["active"][0]["uid"] == "u1"
    assert C.decide({**cj, "status": st}, at(2026, 3, 2, 10, 7)).create is None


def test_missed_times_run_once_the_latest():
    cj = cronjob(schedule="0 * * * *")        # hourly
    d = C.decide(cj, at(2026, 3, 2, 15, 20))  # five hours missed: only 15:00 runs
    assert d.scheduled == at(2026, 3, 2, 15, 0) and "TooManyMissedTimes" not in reasons(d)
    d = C.decide(cronjob(schedule="* * * * *"), at(2026, 3, 3, 10, 0, 30))     # 1440 missed
    assert d.scheduled == at(2026, 3, 3, 10, 0)
    ev = [e for e in d.events if e.reason == "TooManyMissedTimes"]
    assert ev and ev[0].type == "Warning" and ev[0].message == (
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
    # exactly 100 missed is not too many
    d = C.decide(cronjob(schedule="* * * * *"), at(2026, 3, 2, 11, 40, 30))
    assert "TooManyMissedTimes" not in reasons(d) and d.scheduled == at(2026, 3, 2, 11, 40)


def test_starting_deadline():
    """The deadline bounds how far back the times are looked for (mostRecentScheduleTime): a
    time missed by more than startingDeadlineSeconds is skipped, and the next one waited for."""
    cj = cronjob(schedule="0 * * * *", startingDeadlineSeconds=600)
    d = C.decide(cj, at(2026, 3, 2, 11, 20))        # 11:00 missed by 20 minutes (> 600 s)
    assert d.create is None and d.events == []
    assert d.requeue == pytest.approx(40 * 60 + 0.1)
    d = C.decide(cj, at(2026, 3, 2, 11, 9))         # within the deadline: it runs late
    assert d.scheduled == at(2026, 3, 2, 11, 0)
    # a day of missed minutes but a deadline of 2 minutes: not "too many", the latest runs
    d = C.decide(cronjob(schedule="* * * * *", startingDeadlineSeconds=120), at(2026, 3, 3, 10, 0, 30))
    assert d.scheduled == at(2026, 3, 3, 10, 0) and reasons(d) == []
    # a deadline of 0: every time is already too late (as in Kubernetes: nothing ever runs)
    cj = cronjob(startingDeadlineSeconds=0)
    assert C.decide(cj, at(2026, 3, 2, 10, 5, 0)).create is None
    assert C.decide(cj, at(2026, 3, 2, 10, 5, 0, 300)).create is None
    assert C.decide(cronjob(startingDeadlineSeconds=1), at(2026, 3, 2, 10, 5, 0, 300)).create is not None
    assert C.rfc1123z(at(2026, 3, 2, 10, 5)) == "Mon, 02 Mar 2026 10:05:00 +0000"      # MissSchedule's format


def test_time_zone():
    cj = cronjob(schedule="0 9 * * *", timeZone="Asia/Tokyo")       # 09:00 JST = 00:00 UTC
    d = C.decide(cj, at(2026, 3, 3, 0, 0, 30))
    assert d.scheduled == at(2026, 3, 3, 0, 0)
    assert d.create["metadata"]["annotations"][C.SCHEDULED_ANNOTATION] == "2026-03-03T09:00:00+09:00"
    assert d.create["metadata"]["name"] == f"tick-{int(at(2026, 3, 3).timestamp()) // 60}"
    assert C.decide(cj, at(2026, 3, 2, 23, 59)).create is None
    # an unknown zone (an object stored before validation knew better): an event, nothing runs
    d = C.decide(cronjob(timeZone="Mars/Olympus"), at(2026, 3, 2, 10, 5, 3))
    assert d.create is None and d.requeue is None
    assert [(e.type, e.reason, e.message) for e in d.events] == [
        ("Warning", "UnknownTimeZone", 'invalid timeZone: "Mars/Olympus": unknown time zone Mars/Olympus')]


def test_unparseable_and_invalid_schedules():
    d = C.decide(cronjob(schedule="* * *"), at(2026, 3, 2, 10, 5))
    assert [(e.reason, e.message) for e in d.events] == [
        ("UnparseableSchedule", 'unparseable schedule: "* * *" : expected exactly 5 fields, found 3: [* * *]')]
    assert d.requeue is None
    d = C.decide(cronjob(schedule="0 0 30 2 *"), at(2026, 3, 2, 10, 5))
    assert [(e.reason, e.message) for e in d.events] == [
        ("InvalidSchedule", "invalid schedule: 0 0 30 2 * : time difference between two schedules is less than "
                            "1 second")]


# -- concurrency and suspend ---------------------------------------------------------------------
def test_forbid_skips_while_a_job_is_active():
    cj = cronjob(concurrencyPolicy="Forbid")
    cj["status"] = {"active": [{"name": "tick-1", "uid": "u1"}], "lastScheduleTime": "2026-03-02T10:05:00Z"}
    d = C.decide(cj, at(2026, 3, 2, 10, 10, 1))
    assert d.create is None
    assert [(e.type, e.reason, e.message) for e in d.events] == [
        ("Normal", "JobAlreadyActive",
         "Not starting job because prior execution is running and concurrency policy is Forbid")]
    assert d.requeue == pytest.approx(5 * 60 - 1 + 0.1)
    cj["status"]["active"] = []
    assert C.decide(cj, at(2026, 3, 2, 10, 10, 1)).create is not None


def test_replace_deletes_the_active_jobs_first():
    cj = cronjob(concurrencyPolicy="Replace")
    cj["status"] = {"active": [{"name": "tick-1", "uid": "u1", "namespace": "default"}],
                    "lastScheduleTime": "2026-03-02T10:05:00Z"}
    d = C.decide(cj, at(2026, 3, 2, 10, 10, 1))
    assert [r["name"] for r in d.replace] == ["tick-1"] and d.create is not None
    d = C.decide(cronjob(), at(2026, 3, 2, 10, 10, 1))      # Allow: nothing deleted
    assert d.replace == [] and d.create is not None


def test_suspend_and_deletion_stop_new_runs():
    assert C.decide(cronjob(suspend=True), at(2026, 3, 2, 10, 5, 1)) == C.Decision()
    cj = cronjob()
    cj["metadata"]["deletionTimestamp"] = "2026-03-02T10:04:00Z"
    assert C.decide(cj, at(2026, 3, 2, 10, 5, 1)) == C.Decision()
    # resumed later: only the most recent missed time runs
    cj = cronjob()
    cj["status"] = {"lastScheduleTime": "2026-03-02T10:05:00Z"}
    d = C.decide(cj, at(2026, 3, 2, 10, 31))
    assert d.scheduled == at(2026, 3, 2, 10, 30)


# -- status.active and history -------------------------------------------------------------------
def test_check_jobs():
    cj = cronjob()
    cj["status"] = {"active": [{"name": "tick-1", "uid": "tick-1-uid"}, {"name": "tick-2", "uid": "tick-2-uid"},
                               {"name": "gone", "uid": "gone-uid"}],
                    "lastSuccessfulTime": "2026-03-02T09:00:00Z"}
    jobs = [job("tick-1", "Complete", done="2026-03-02T10:06:00Z"), job("tick-2", "Failed"), job("tick-3"),
            job("old", "Complete", done="2026-03-02T08:00:00Z")]
    c = C.check_jobs(cj, jobs)
    assert [r["name"] for r in c.status["active"]] == ["gone"]
    assert [r["name"] for r in c.missing] == ["gone"]
    assert [j["metadata"]["name"] for j in c.unexpected] == ["tick-3"]     # not adopted
    assert [(e.reason, e.message) for e in c.events] == [
        ("SawCompletedJob", "Saw completed job: tick-1, condition: Complete"),
        ("SawCompletedJob", "Saw completed job: tick-2, condition: Failed")]
    assert c.status["lastSuccessfulTime"] == "2026-03-02T10:06:00Z" and c.changed
    assert cj["status"]["active"][0]["name"] == "tick-1"          # the CronJob given is not touched
    # nothing new: nothing changed
    cj["status"] = c.status
    c = C.check_jobs(cj, jobs[:3] + [job("gone")])
    assert not c.changed and c.events == [] and c.missing == []


def test_history_limits_oldest_first():
    cj = cronjob(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=0)
    jobs = [job("s3", "Complete", start="2026-03-02T10:15:00Z"), job("s1", "Complete", start="2026-03-02T10:05:00Z"),
            job("s2", "Complete", start="2026-03-02T10:10:00Z"), job("s0", "Complete", start=None),
            job("f1", "Failed", start="2026-03-02T10:05:00Z"), job("run", None)]
    names = [j["metadata"]["name"] for j in C.history_to_delete(cj, jobs)]
    assert names == ["s1", "s2", "f1"]         # never-started Jobs sort last; running ones are kept
    assert C.history_to_delete(cronjob(successfulJobsHistoryLimit=None, failedJobsHistoryLimit=None), jobs) == []
    assert C.history_to_delete(cronjob(), copy.deepcopy(jobs[:3])) == []
