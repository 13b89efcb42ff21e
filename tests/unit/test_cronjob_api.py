"""batch/v1 CronJobs in the API: the RESOURCES entry, Kubernetes' defaults, ValidateCronJob's
rules with kube-apiserver's messages and field paths (schedule, TZ=, timeZone, policies, the
job template as a Job spec, the 52-character name); over the REST API: discovery, create,
the status subresource, the Table (kubectl's columns), a merge patch of suspend, a Job such
as ``kubectl create job --from=cronjob/X`` sends; and skiffctl's describe cronjob."""
from __future__ import annotations

import copy
import json

import pytest

from skiff.api.resources import RESOURCES, lookup, path_for
from skiff.api.validation import ValidationError
from skiff.controller.admission import admit
from tests.unit.apitest import api_test_client

# https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ (application/job/cronjob.yaml)
DOCS_CRONJOB = {
    "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
    "spec": {"schedule": "* * * * *",
             "jobTemplate": {"spec": {"template": {"spec": {
                 "containers": [{"name": "hello", "image": "busybox:1.28", "imagePullPolicy": "IfNotPresent",
                                 "command": ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]}],
                 "restartPolicy": "OnFailure"}}}}},
}


def cronjob(name="hello", **spec):
    cj = copy.deepcopy(DOCS_CRONJOB)
    cj["metadata"]["name"] = name
    cj["metadata"]["uid"] = "u-1"
    cj["spec"].update(spec)
    return cj


def causes(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    out: dict[str, list[str]] = {}
    for c in ei.value.causes:
        out.setdefault(c["field"], []).append(c["message"])
    return out


def test_resource():
    r = RESOURCES["cronjobs"]
    assert (r.group, r.version, r.kind, r.namespaced, r.categories, r.subresources, r.short_names) == \
        ("batch", "v1", "CronJob", True, ("all",), ("status",), ("cj",))
    assert lookup("cj") is r and lookup("cronjob") is r and lookup("cronjobs.batch") is r
    assert path_for("cronjobs", "default", "hello", "status") == \
        "/apis/batch/v1/namespaces/default/cronjobs/hello/status"


def test_defaults():
    out, warns = admit(cronjob())
    assert warns == []
    s = out["spec"]
    assert (s["concurrencyPolicy"], s["suspend"], s["successfulJobsHistoryLimit"], s["failedJobsHistoryLimit"]) == \
        ("Allow", False, 3, 1)
    pod = s["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    kept, _ = admit(cronjob(concurrencyPolicy="Forbid", suspend=True, successfulJobsHistoryLimit=0))
    assert (kept["spec"]["concurrencyPolicy"], kept["spec"]["suspend"], kept["spec"]["successfulJobsHistoryLimit"]) \
        == ("Forbid", True, 0)
    assert admit(cronjob(concurrencyPolicy=""))[0]["spec"]["concurrencyPolicy"] == "Allow"


@pytest.mark.parametrize("schedule", ["*/1 * * * *", "0 0 1 JAN *", "0 9 * * MON-FRI", "5,35 */2 1-15 * ?",
                                      "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                                      "@hourly", "@every 1h30m"])
def test_schedules_accepted(schedule):
    admit(cronjob(schedule=schedule))


def test_schedule_messages():
    assert causes(cronjob(schedule="* * * *")) == {
        "spec.schedule": ['Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]']}
    assert causes(cronjob(schedule="0 25 * * *")) == {
        "spec.schedule": ['Invalid value: "0 25 * * *": end of range (25) above maximum (23): 25']}
    assert causes(cronjob(schedule="@often")) == {
        "spec.schedule": ['Invalid value: "@often": unrecognized descriptor: @often']}
    assert causes(cronjob(schedule="")) == {"spec.schedule": ["Required value"]}
    for tz in ("TZ=UTC 0 * * * *", "CRON_TZ=Europe/Paris 0 * * * *"):
        assert causes(cronjob(schedule=tz)) == {"spec.schedule": [
            f'Invalid value: "{tz}": cannot use TZ or CRON_TZ in schedule, use timeZone field instead']}


def test_time_zone_messages():
    admit(cronjob(timeZone="Europe/Paris"))
    admit(cronjob(timeZone="UTC"))
    admit(cronjob(timeZone="Etc/GMT+5"))
    assert causes(cronjob(timeZone="Mars/Olympus")) == {
        "spec.timeZone": ['Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']}
    assert causes(cronjob(timeZone="")) == {
        "spec.timeZone": ['Invalid value: "": timeZone must be nil or non-empty string']}
    assert causes(cronjob(timeZone="Local")) == {"spec.timeZone": [
        'Invalid value: "Local": timeZone must be an explicit time zone as defined in '
        'https://www.iana.org/time-zones']}
    assert causes(cronjob(timeZone="../etc/passwd")) == {
        "spec.timeZone": ['Invalid value: "../etc/passwd": unknown time zone ../etc/passwd']}


def test_spec_messages():
    got = causes(cronjob("x" * 53, concurrencyPolicy="Sometimes", startingDeadlineSeconds=-1,
                         successfulJobsHistoryLimit=-1, failedJobsHistoryLimit=-2))
    assert got["metadata.name"] == [f'Invalid value: "{"x" * 53}": must be no more than 52 characters']
    assert got["spec.concurrencyPolicy"] == [
        'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']
    assert got["spec.startingDeadlineSeconds"] == ["Invalid value: -1: must be greater than or equal to 0"]
    assert got["spec.successfulJobsHistoryLimit"] == ["Invalid value: -1: must be greater than or equal to 0"]
    assert got["spec.failedJobsHistoryLimit"] == ["Invalid value: -2: must be greater than or equal to 0"]
    admit(cronjob("x" * 52))


def test_job_template_checked_as_a_job():
    cj = cronjob()
    js = cj["spec"]["jobTemplate"]["spec"]
    js["template"]["spec"]["restartPolicy"] = "Always"
    js["backoffLimit"] = -1
    got = causes(cj)
    assert got["spec.jobTemplate.spec.template.spec.restartPolicy"] == [
        'Required value: valid values: "OnFailure", "Never"']       # as validateJobSpec says it of Always
    assert got["spec.jobTemplate.spec.backoffLimit"] == ["Invalid value: -1: must be greater than or equal to 0"]
    cj = cronjob()
    cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert list(causes(cj)) == ["spec.jobTemplate.spec.template.spec.containers[0].image"]
    cj = cronjob()
    cj["spec"]["jobTemplate"]["spec"].update(selector={"matchLabels": {"a": "b"}}, manualSelector=True)
    cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"] = {"labels": {"a": "b"}}
    got = causes(cj)
    assert got["spec.jobTemplate.spec.selector"] == [
        'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
        'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated']
    assert got["spec.jobTemplate.spec.manualSelector"] == ['Unsupported value: true: supported values: "nil", "false"']
    cj = cronjob()
    cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nonsense"] = 1
    with pytest.raises(ValidationError):
        admit(cj)


CJS = "/apis/batch/v1/namespaces/default/cronjobs"


@pytest.mark.asyncio
async def test_over_rest(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        async def call(method, path, body=None, accept=None, ctype="application/json"):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
            if accept:
                headers["Accept"] = accept
            async with client.request(method, path, data=None if body is None else json.dumps(body),
                                      headers=headers) as r:
                return r.status, await r.json()

        st, res = await call("GET", "/apis/batch/v1")
        assert st == 200 and {"cronjobs", "cronjobs/status"} <= {r["name"] for r in res["resources"]}
        cjres = next(r for r in res["resources"] if r["name"] == "cronjobs")
        assert cjres["shortNames"] == ["cj"] and cjres["categories"] == ["all"] and cjres["kind"] == "CronJob"
        body = copy.deepcopy(DOCS_CRONJOB)
        body["spec"]["timeZone"] = "Europe/Paris"
        body["status"] = {"lastScheduleTime": "2026-01-01T00:00:00Z"}
        st, cj = await call("POST", CJS, body)
        assert st == 201, cj
        assert "status" not in cj or not cj["status"]          # the controller's alone
        assert cj["spec"]["concurrencyPolicy"] == "Allow"
        st, err = await call("POST", CJS, {**DOCS_CRONJOB, "metadata": {"name": "bad"},
                                          "spec": {**DOCS_CRONJOB["spec"], "schedule": "TZ=UTC * * * * *"}})
        assert st == 422 and err["reason"] == "Invalid"
        assert err["message"] == ('CronJob.batch "bad" is invalid: spec.schedule: Invalid value: '
                                  '"TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field '
                                  'instead'), err["message"]
        # the status subresource
        cj["status"] = {"lastScheduleTime": "2026-01-01T00:00:00Z",
                        "active": [{"kind": "Job", "name": "hello-1", "namespace": "default", "uid": "j1",
                                    "apiVersion": "batch/v1", "resourceVersion": "5"}]}
        st, upd = await call("PUT", CJS + "/hello/status", cj)
        assert st == 200 and upd["status"]["active"][0]["name"] == "hello-1"
        # a merge patch of suspend (kubectl patch cronjob hello -p '{"spec":{"suspend":true}}')
        st, p = await call("PATCH", CJS + "/hello", {"spec": {"suspend": True}},
                           ctype="application/strategic-merge-patch+json")
        assert st == 200 and p["spec"]["suspend"] is True
        # the Table, as kubectl get cronjobs asks for it
        st, tbl = await call("GET", CJS, accept="application/json;as=Table;v=v1;g=meta.k8s.io")
        assert st == 200
        assert [c["name"] for c in tbl["columnDefinitions"]] == [
            "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers", "Images",
            "Selector"]
        assert [c["priority"] for c in tbl["columnDefinitions"]][-3:] == [1, 1, 1]
        row = tbl["rows"][0]["cells"]
        assert row[:5] == ["hello", "* * * * *", "Europe/Paris", "True", 1]
        assert row[7:] == ["hello", "busybox:1.28", "<none>"]
        # the Job kubectl create job --from=cronjob/hello makes (client side)
        tmpl = p["spec"]["jobTemplate"]
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "manual", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                                                 "uid": p["metadata"]["uid"], "controller": True}]},
               "spec": tmpl["spec"]}
        st, j = await call("POST", "/apis/batch/v1/namespaces/default/jobs", job)
        assert st == 201, j
        assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
        assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"


def test_skiffctl_describe_cronjob():
    from skiff.cli.ctl.describe_cronjob import describe_cronjob
    cj, _ = admit(cronjob(startingDeadlineSeconds=30))
    cj["metadata"].update(namespace="default", labels={"team": "a"})
    cj["status"] = {"lastScheduleTime": "2026-03-02T10:05:00Z",
                    "active": [{"name": "hello-29541965"}, {"name": "hello-29541966"}]}
    events = [{"type": "Normal", "reason": "SuccessfulCreate", "message": "Created job hello-29541966",
               "source": {"component": "cronjob-controller"}, "lastTimestamp": "2026-03-02T10:06:00Z", "count": 1}]
    lines = describe_cronjob(cj, events).splitlines()
    assert lines[:14] == [
        "Name:                          hello",
        "Namespace:                     default",
        "Labels:                        team=a",
        "Annotations:                   <none>",
        "Schedule:                      * * * * *",
        "Concurrency Policy:            Allow",
        "Suspend:                       False",
        "Successful Job History Limit:  3",
        "Failed Job History Limit:      1",
        "Starting Deadline Seconds:     30s",
        "Selector:                      <unset>",
        "Parallelism:                   <unset>",
        "Completions:                   <unset>",
        "Pod Template:"], lines
    assert "Last Schedule Time:  Mon, 02 Mar 2026 10:05:00 +0000" in lines
    assert "Active Jobs:         hello-29541965, hello-29541966" in lines
    assert any(line.strip().startswith("Image:") and "busybox:1.28" in line for line in lines)
    assert lines[-1].endswith("cronjob-controller  Created job hello-29541966")
    bare, _ = admit(cronjob())
    out = describe_cronjob(bare, None)
    assert "Last Schedule Time:  <unset>" in out and "Active Jobs:         <none>" in out and "Events" not in out
