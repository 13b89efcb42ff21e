"""batch/v1 Jobs in the API: the RESOURCES entry, the schema, Kubernetes' defaults (the generated
selector and labels from the Job's uid and name), its validation rules and messages, what
skiff refuses as not supported, the update rules; and over the REST API: create (uid before
admission, status cleared), generateName, discovery, the Table, immutable fields."""
from __future__ import annotations

import copy
import json

import pytest

from skiff.api.resources import RESOURCES, lookup, path_for
from skiff.api.validation import ValidationError, validate, validate_update
from skiff.controller.admission import admit
from tests.unit.apitest import api_test_client

UIDL, NAMEL = "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"

# https://kubernetes.io/docs/concepts/workloads/controllers/job/ (controllers/job.yaml)
DOCS_JOB = {
    "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
    "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34.0",
                                                   "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
                                   "restartPolicy": "Never"}},
             "backoffLimit": 4},
}


def job(**spec):
    j = copy.deepcopy(DOCS_JOB)
    j["metadata"]["uid"] = "u-1"        # the registry gives one before admission
    j["spec"].update(spec)
    return j


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c["message"] for c in ei.value.causes}


def test_resource():
    r = RESOURCES["jobs"]
    assert (r.group, r.version, r.kind, r.namespaced, r.categories, r.subresources, r.short_names) == \
        ("batch", "v1", "Job", True, ("all",), ("status",), ())
    assert lookup("job") is r and lookup("jobs.batch") is r
    assert path_for("jobs", "default", "pi", "status") == "/apis/batch/v1/namespaces/default/jobs/pi/status"


def test_defaults_and_generated_selector():
    out, warns = admit(job())
    assert warns == []
    s = out["spec"]
    assert (s["completions"], s["parallelism"], s["backoffLimit"], s["completionMode"], s["suspend"],
            s["manualSelector"], s["podReplacementPolicy"]) == (1, 1, 4, "NonIndexed", False, False,
                                                               "TerminatingOrFailed")
    assert s["selector"] == {"matchLabels": {UIDL: "u-1"}}
    generated = {UIDL: "u-1", NAMEL: "pi", "controller-uid": "u-1", "job-name": "pi"}
    assert s["template"]["metadata"]["labels"] == generated
    assert out["metadata"]["labels"] == generated        # a Job without labels gets its template's
    t = s["template"]["spec"]
    assert t["restartPolicy"] == "Never" and t["terminationGracePeriodSeconds"] == 30
    # parallelism alone: completions stays unset; a Job's own labels stay; template labels too
    j = job(parallelism=3)
    j["metadata"]["labels"] = {"team": "a"}
    j["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    out, _ = admit(j)
    assert "completions" not in out["spec"] and out["spec"]["parallelism"] == 3
    assert out["metadata"]["labels"] == {"team": "a"}
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "pi", **generated}
    j = job()
    j["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    out, _ = admit(j)
    assert out["metadata"]["labels"] == {"app": "pi"}   # SetDefaults_Job copies them before generating


def test_manual_selector():
    j = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    j["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    out, _ = admit(j)
    assert out["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}
    del j["spec"]["selector"]
    assert causes(j)["spec.selector"] == "Required value"
    j["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert causes(j)["spec.template.metadata.labels"] == ('Invalid value: map[string]string{"app":"pi"}: '
                                                          '`selector` does not match template `labels`')


def test_generated_selector_and_labels_are_checked():
    cs = causes(job(selector={"matchLabels": {"app": "pi"}}))
    assert cs["spec.selector"].endswith("`selector` not auto-generated")
    j = job()
    j["spec"]["template"]["metadata"] = {"labels": {"job-name": "other"}}
    cs = causes(j)
    assert cs['spec.template.metadata.labels["job-name"]'] == "Invalid value: \"other\": must be 'pi'"


def test_restart_policy_must_be_never_or_on_failure():
    j = job()
    del j["spec"]["template"]["spec"]["restartPolicy"]
    err = pytest.raises(ValidationError, admit, j).value
    assert str(err) == ('Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Required value: '
                        'valid values: "OnFailure", "Never"')
    assert err.to_status()["details"] == {"name": "pi", "kind": "Job", "group": "batch", "causes": err.causes}
    j["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert causes(j)["spec.template.spec.restartPolicy"] == 'Required value: valid values: "OnFailure", "Never"'
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert admit(j)[0]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_counts_and_modes():
    cs = causes(job(parallelism=-1, completions=-2, backoffLimit=-1, activeDeadlineSeconds=-5,
                    ttlSecondsAfterFinished=-1))
    for f, v in (("parallelism", -1), ("completions", -2), ("backoffLimit", -1), ("activeDeadlineSeconds", -5),
                 ("ttlSecondsAfterFinished", -1)):
        assert cs[f"spec.{f}"] == f"Invalid value: {v}: must be greater than or equal to 0"
    assert causes(job(completionMode="Sometimes"))["spec.completionMode"] == \
        'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'
    assert causes(job(podReplacementPolicy="Never"))["spec.podReplacementPolicy"] == \
        'Unsupported value: "Never": supported values: "TerminatingOrFailed", "Failed"'
    assert causes(job(managedBy="mine"))["spec.managedBy"] == \
        'Invalid value: "mine": must be a domain-prefixed path (such as "acme.io/foo")'
    out, _ = admit(job(managedBy="example.com/queue", podReplacementPolicy="Failed", parallelism=0))
    assert out["spec"]["managedBy"] == "example.com/queue" and out["spec"]["podReplacementPolicy"] == "Failed"


def test_indexed_jobs_need_completions():
    out, _ = admit(job(completionMode="Indexed", completions=3))
    assert out["spec"]["completionMode"] == "Indexed"
    cs = causes(job(completionMode="Indexed", parallelism=2))    # (without both, completions defaults to 1)
    assert cs["spec.completions"] == "Required value: when completion mode is Indexed"
    cs = causes(job(completionMode="Indexed", completions=3, parallelism=100001))
    assert cs["spec.parallelism"] == ("Invalid value: 100001: must be less than or equal to 100000 "
                                      "when completion mode is Indexed")


def test_per_index_backoff_and_success_policy_rules():
    out, _ = admit(job(completionMode="Indexed", completions=5, backoffLimitPerIndex=1, maxFailedIndexes=2,
                       successPolicy={"rules": [{"succeededIndexes": "0-2,4", "succeededCount": 3}]}))
    assert out["spec"]["backoffLimit"] == 4      # given; without it, the largest int32
    out, _ = admit(job(completionMode="Indexed", completions=5, backoffLimitPerIndex=1, backoffLimit=None))
    assert out["spec"]["backoffLimit"] == 2147483647
    cs = causes(job(backoffLimitPerIndex=1, maxFailedIndexes=2, successPolicy={"rules": [{"succeededCount": 1}]}))
    assert cs == {"spec.backoffLimitPerIndex": "Invalid value: 1: requires indexed completion mode",
                  "spec.maxFailedIndexes": "Invalid value: 2: must be less than or equal to completions",
                  "spec.completionMode": 'Invalid value: "NonIndexed": requires indexed completion mode'}
    cs = causes(job(completionMode="Indexed", completions=4, maxFailedIndexes=1, successPolicy={"rules": [
        {"succeededIndexes": "0-1,1"}, {"succeededIndexes": "5"}, {"succeededIndexes": "0,2", "succeededCount": 3},
        {}]}))
    r = "spec.successPolicy.rules"
    assert cs == {"spec.backoffLimitPerIndex": "Required value: when maxFailedIndexes is specified",
                  f"{r}[0].succeededIndexes": 'Invalid value: "0-1,1": error parsing succeededIndexes: '
                                              'non-increasing order, previous: 1, current: 1',
                  f"{r}[1].succeededIndexes": 'Invalid value: "5": error parsing succeededIndexes: too large index: "5"',
                  f"{r}[2].succeededCount": "Invalid value: 3: must be less than or equal to 2 (the number of indexes "
                                            "in the specified succeededIndexes field)",
                  f"{r}[3]": "Required value: at least one of succeededCount or succeededIndexes must be specified"}


def test_what_skiff_does_not_support_is_refused():
    # the pod rules apply to the template, under its path
    j = job()
    j["spec"]["template"]["spec"]["hostUsers"] = False
    j["spec"]["template"]["spec"]["runtimeClassName"] = "gvisor"
    assert causes(j)["spec.template.spec.hostUsers"] == "spec.template.spec.hostUsers is not supported by skiff"
    del j["spec"]["template"]["spec"]["hostUsers"]
    _, warns = admit(j)
    assert [w.field for w in warns] == ["spec.template.spec.runtimeClassName"]


def test_strict_schema():
    j = job()
    j["spec"]["completionz"] = 3
    j["status"] = {"active": 1, "bogus": 2}
    assert set(causes(j)) >= {"spec.completionz", "status.bogus"}


def test_skiffctl_checks_a_manifest_before_the_server_generates_its_selector():
    assert validate(copy.deepcopy(DOCS_JOB)) == []      # no uid, no selector: fine locally
    j = copy.deepcopy(DOCS_JOB)
    del j["spec"]["template"]["spec"]["restartPolicy"]
    with pytest.raises(ValidationError):
        validate(j)


def test_update_rules():
    cur, _ = admit(job(completions=3, parallelism=1))
    ok = copy.deepcopy(cur)
    ok["spec"]["parallelism"] = 3
    ok["spec"]["suspend"] = True
    ok["spec"]["activeDeadlineSeconds"] = 60
    validate_update(cur, ok)
    bad = copy.deepcopy(cur)
    bad["spec"]["completions"] = 5
    bad["spec"]["selector"] = {"matchLabels": {UIDL: "u-2"}}
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    bad["spec"]["completionMode"] = "Indexed"
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, bad)
    cs = {c["field"]: c["message"] for c in ei.value.causes}
    assert cs["spec.completions"] == "Invalid value: 5: field is immutable"
    assert cs["spec.selector"].endswith("field is immutable") and "u-2" in cs["spec.selector"]
    assert cs["spec.template"].endswith(": field is immutable")
    assert cs["spec.completionMode"] == 'Invalid value: "Indexed": field is immutable'
    # a suspended Job that never started may change its scheduling directives, not the rest
    sus, _ = admit(job(suspend=True))
    moved = copy.deepcopy(sus)
    t = moved["spec"]["template"]
    t["metadata"]["labels"]["queue"] = "a"
    t["spec"]["nodeSelector"] = {"disk": "ssd"}
    t["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    validate_update(sus, moved)
    started = {**sus, "status": {"startTime": "2026-01-01T00:00:00Z"}}
    with pytest.raises(ValidationError):
        validate_update(started, moved)
    moved["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    with pytest.raises(ValidationError):
        validate_update(sus, moved)


# -- over the REST API -----------------------------------------------------------------------------
JOBS = "/apis/batch/v1/namespaces/default/jobs"
TBL = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.mark.asyncio
async def test_rest(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        async def call(method, path, body=None, accept=None, ctype="application/json"):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
            if accept:
                headers["Accept"] = accept
            async with client.request(method, path, data=None if body is None else json.dumps(body),
                                      headers=headers) as r:
                return r.status, await r.json()

        st, res = await call("GET", "/apis/batch/v1")
        assert st == 200 and {"jobs", "jobs/status"} <= {r["name"] for r in res["resources"]}
        assert next(r for r in res["resources"] if r["name"] == "jobs")["categories"] == ["all"]
        body = copy.deepcopy(DOCS_JOB)
        body["status"] = {"succeeded": 5, "conditions": [{"type": "Complete", "status": "True"}]}
        st, j = await call("POST", JOBS, body)
        assert st == 201, j
        uid = j["metadata"]["uid"]
        assert j["spec"]["selector"] == {"matchLabels": {UIDL: uid}}          # the stored uid
        assert j["spec"]["template"]["metadata"]["labels"][NAMEL] == "pi"
        assert "status" not in j                                             # the controller's alone
        # generateName: the labels carry the name it got
        gen = copy.deepcopy(DOCS_JOB)
        gen["metadata"] = {"generateName": "pi-"}
        st, g = await call("POST", JOBS, gen)
        assert st == 201 and g["metadata"]["name"].startswith("pi-")
        assert g["spec"]["template"]["metadata"]["labels"]["job-name"] == g["metadata"]["name"]
        # a PUT may change parallelism, not completions
        j["spec"]["parallelism"] = 2
        st, j2 = await call("PUT", JOBS + "/pi", j)
        assert st == 200 and j2["spec"]["parallelism"] == 2 and j2["metadata"]["generation"] == 2
        j2["spec"]["completions"] = 4
        st, err = await call("PUT", JOBS + "/pi", j2)
        assert st == 422 and err["details"]["causes"][0]["field"] == "spec.completions", err
        st, err = await call("PATCH", JOBS + "/pi", {"spec": {"selector": {"matchLabels": {UIDL: "other"}}}},
                             ctype="application/merge-patch+json")
        assert st == 422 and "spec.selector" in {c["field"] for c in err["details"]["causes"]}, err
        # the Table kubectl prints
        st, t = await call("GET", JOBS, accept=TBL)
        assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Completions", "Duration", "Age",
                                                               "Containers", "Images", "Selector"]
        row = next(r for r in t["rows"] if r["cells"][0] == "pi")
        assert row["cells"][1:4] == ["Running", "0/1", ""] and row["cells"][5:7] == ["pi", "perl:5.34.0"]
        assert row["cells"][7] == f"{UIDL}={uid}"


DOCS_POLICY = {"rules": [  # the docs' job-pod-failure-policy-example.yaml
    {"action": "FailJob", "onExitCodes": {"containerName": "pi", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_pod_failure_policy_defaults_and_rules():
    out, _ = admit(job(podFailurePolicy=copy.deepcopy(DOCS_POLICY)))
    assert out["spec"]["podReplacementPolicy"] == "Failed"
    assert out["spec"]["podFailurePolicy"]["rules"][1]["onPodConditions"] == [{"type": "DisruptionTarget",
                                                                               "status": "True"}]
    bad = {"rules": [
        {"action": "Explode", "onExitCodes": {"containerName": "nope", "operator": "Is", "values": [3, 1, 1]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]},
         "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailIndex", "onPodConditions": [{"type": "DisruptionTarget", "status": "Maybe"}]},
        {"action": "Count"}]}
    j = job(podFailurePolicy=bad, podReplacementPolicy="TerminatingOrFailed")
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    cs = causes(j)
    r = "spec.podFailurePolicy.rules"
    assert cs == {
        "spec.template.spec.restartPolicy":
            'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
        "spec.podReplacementPolicy": 'Unsupported value: "TerminatingOrFailed": supported values: "Failed"',
        f"{r}[0].action": 'Unsupported value: "Explode": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
        f"{r}[0].onExitCodes.containerName":
            'Invalid value: "nope": must be one of the container or initContainer names in the pod template',
        f"{r}[0].onExitCodes.operator": 'Unsupported value: "Is": supported values: "In", "NotIn"',
        f"{r}[0].onExitCodes.values[1]": "Invalid value: 1: must be ordered",
        f"{r}[0].onExitCodes.values[2]": "Duplicate value: 1",
        f"{r}[1]": "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
        f"{r}[1].onExitCodes.values[0]": "Invalid value: 0: must not be 0 for the In operator",
        f"{r}[2].action": 'Invalid value: "FailIndex": valid only when backoffLimitPerIndex is set',
        f"{r}[2].onPodConditions[0].status": 'Unsupported value: "Maybe": supported values: "True", "False", "Unknown"',
        f"{r}[3]": "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"}
