"""batch/v1 CronJobs with the real kubectl 1.32 on skiff (controller + a real agent running busybox
containers): `kubectl create cronjob` (a protobuf body), `get cronjobs|cj` with kubectl's
columns (and -o wide), `describe cronjob`, `patch` of suspend, `create job --from=cronjob/X`
(built client side) running to completion, the server's validation messages as kubectl prints
them, a CronJob in a time zone running on its schedule, and deletion taking the Jobs along."""
from __future__ import annotations

import re

from tests.integration.kubectl import kube, row, table  # noqa: F401 (kube is a fixture)


def jobs_of(k, prefix: str) -> list[dict]:
    return [j for j in k.json("get", "jobs")["items"] if j["metadata"]["name"].startswith(prefix)]


def complete(j: dict) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True"
               for c in (j.get("status") or {}).get("conditions") or [])


def test_create_get_describe_patch_and_create_job_from(kube):
    k = kube.kubectl
    try:
        assert k.ok("create", "cronjob", "nightly", "--image=busybox", "--schedule=0 3 * * *",
                    "--", "echo", "from-cron") == "cronjob.batch/nightly created\n"
        cj = k.json("get", "cronjob", "nightly")
        spec = cj["spec"]
        assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
                spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
        assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"

        head, _ = table(k.ok("get", "cronjobs"))
        assert head == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
        r = row(k.ok("get", "cj", "nightly"), "nightly")
        assert (r["SCHEDULE"], r["TIMEZONE"], r["SUSPEND"], r["ACTIVE"], r["LAST SCHEDULE"]) == \
            ("0 3 * * *", "<none>", "False", "0", "<none>")
        wide = row(k.ok("get", "cronjobs", "nightly", "-o", "wide"), "nightly")
        assert (wide["CONTAINERS"], wide["IMAGES"], wide["SELECTOR"]) == ("nightly", "busybox", "<none>")

        out = k.ok("describe", "cronjob", "nightly")
        for pattern in (r"^Schedule:\s+0 3 \* \* \*$", r"^Concurrency Policy:\s+Allow$", r"^Suspend:\s+False$",
                        r"^Successful Job History Limit:\s+3$", r"^Failed Job History Limit:\s+1$",
                        r"^Starting Deadline Seconds:\s+<unset>$", r"^Last Schedule Time:\s+<unset>$",
                        r"^Active Jobs:\s+<none>$", r"^\s+Image:\s+busybox$"):
            assert re.search(pattern, out, re.M), (pattern, out)

        assert k.ok("patch", "cronjob", "nightly", "-p", '{"spec":{"suspend":true}}') == \
            "cronjob.batch/nightly patched\n"
        assert row(k.ok("get", "cronjobs"), "nightly")["SUSPEND"] == "True"

        # create job --from: kubectl copies the template and names the CronJob as owner
        assert k.ok("create", "job", "nightly-manual", "--from=cronjob/nightly") == \
            "job.batch/nightly-manual created\n"
        j = k.json("get", "job", "nightly-manual")
        assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
        ref = j["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"]) == ("CronJob", "nightly", cj["metadata"]["uid"])
        kube.wait(lambda: complete(k.json("get", "job", "nightly-manual")), 60, "the manual Job to complete")
        assert k.ok("logs", "job/nightly-manual").strip() == "from-cron"
        # it is not the CronJob's own run: status.active stays empty
        assert not (k.json("get", "cronjob", "nightly").get("status") or {}).get("active")

        # deleting the CronJob deletes the Job it owns
        assert k.ok("delete", "cronjob", "nightly") == 'cronjob.batch "nightly" deleted\n'
        kube.wait(lambda: not jobs_of(k, "nightly"), 60, "the Job of the deleted CronJob to go")
    finally:
        k("delete", "cronjob", "nightly", "--ignore-not-found", "--wait=false")
        k("delete", "job", "nightly-manual", "--ignore-not-found", "--wait=false")


def test_validation_messages_through_kubectl(kube):
    k = kube.kubectl
    bad = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bad"},
           "spec": {"schedule": "TZ=UTC 0 * * * *", "timeZone": "Mars/Olympus",
                    "jobTemplate": {"spec": {"template": {"spec": {
                        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    err = k.fails("apply", "-f", kube.file("bad-cj.yaml", bad))
    assert 'The CronJob "bad" is invalid' in err, err
    assert 'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use ' \
           'timeZone field instead' in err, err
    assert 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' in err, err
    err = k.fails("create", "cronjob", "bad2", "--image=busybox", "--schedule=61 * * * *")
    assert 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' in err, err
    err = k.fails("create", "cronjob", "x" * 53, "--image=busybox", "--schedule=* * * * *")
    assert "must be no more than 52 characters" in err, err


def test_runs_on_its_schedule_in_a_time_zone(kube):
    """Every minute, read in Asia/Kolkata (UTC+05:30): the Job is named after the minute and
    carries the scheduled time in that zone; the history limit keeps one successful Job."""
    k = kube.kubectl
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "kol"},
          "spec": {"schedule": "* * * * *", "timeZone": "Asia/Kolkata", "successfulJobsHistoryLimit": 1,
                   "jobTemplate": {"metadata": {"labels": {"from": "kol"}}, "spec": {"template": {"spec": {
                       "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": "busybox", "command": ["echo", "namaste"]}]}}}}}}
    try:
        assert k.ok("apply", "-f", kube.file("kol.yaml", cj)) == "cronjob.batch/kol created\n"
        done = kube.wait(lambda: [j for j in jobs_of(k, "kol-") if complete(j)], 100, "a scheduled Job to complete")
        j = done[0]
        minutes = int(j["metadata"]["name"].rsplit("-", 1)[1])
        stamp = j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        assert stamp.endswith("+05:30"), stamp
        import datetime as dt
        assert int(dt.datetime.fromisoformat(stamp).timestamp()) == minutes * 60
        assert j["metadata"]["labels"]["from"] == "kol"
        assert k.ok("logs", f"job/{j['metadata']['name']}").strip() == "namaste"
        st = kube.wait(lambda: (k.json("get", "cronjob", "kol").get("status") or {}).get("lastSuccessfulTime")
                       and k.json("get", "cronjob", "kol")["status"], 30, "lastSuccessfulTime")
        assert st["lastScheduleTime"] and row(k.ok("get", "cj"), "kol")["TIMEZONE"] == "Asia/Kolkata"
        out = k.ok("describe", "cronjob", "kol")
        assert re.search(r"Normal\s+SuccessfulCreate\s+.*cronjob-controller\s+Created job kol-\d+", out), out
        assert re.search(r"Normal\s+SawCompletedJob\s+.*cronjob-controller\s+Saw completed job: kol-\d+, "
                         r"condition: Complete", out), out
    finally:
        k("delete", "cronjob", "kol", "--ignore-not-found", "--wait=false")
        kube.wait(lambda: not jobs_of(k, "kol-"), 60, "the CronJob's Jobs to go with it")
