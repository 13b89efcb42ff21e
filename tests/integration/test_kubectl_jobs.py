"""batch/v1 Jobs with the real kubectl 1.32 on skiff (controller + a real agent running busybox
containers): a Job runs its pods to completion (`kubectl wait --for=condition=complete`, `get
jobs`, `logs job/NAME`, describe, and the same with skiffctl), a failing one stops at its backoff
limit, and deleting a Job deletes its pods."""
from __future__ import annotations

import re

from tests.integration.kubectl import kube, row, table  # noqa: F401 (kube is a fixture)


def job(name: str, script: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}}}}


def pods_of(k, name: str) -> list[dict]:
    return k.json("get", "pods", "-l", f"job-name={name}")["items"]


def delete_job(kube, name: str) -> None:
    """Delete the Job (kubectl waits until it is gone); its pods go with it (the garbage collector)."""
    k = kube.kubectl
    assert k.ok("delete", "job", name, "--ignore-not-found", timeout=60) in ("", f'job.batch "{name}" deleted\n')
    kube.wait(lambda: not pods_of(k, name), 30, f"the pods of job {name} to be gone")


def test_job_runs_to_completion(kube):
    k = kube.kubectl
    try:
        path = kube.file("done.yaml", job("done", "echo done", completions=3, parallelism=2))
        assert k.ok("apply", "-f", path) == "job.batch/done created\n"
        p = k("wait", "--for=condition=complete", "job/done", "--timeout=60s", timeout=75)
        assert p.returncode == 0 and p.stdout == "job.batch/done condition met\n", (p.stdout, p.stderr)
        # the generated selector and labels do not make the manifest differ from what runs
        assert k.ok("apply", "-f", path) == "job.batch/done unchanged\n"

        out = k.ok("get", "jobs")
        assert table(out)[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        r = row(out, "done")
        assert (r["STATUS"], r["COMPLETIONS"]) == ("Complete", "3/3") and re.fullmatch(r"\d+s", r["DURATION"]), out
        uid = k.ok("get", "job", "done", "-o", "jsonpath={.metadata.uid}")
        wide = row(k.ok("get", "jobs", "done", "-o", "wide"), "done")
        assert (wide["CONTAINERS"], wide["IMAGES"], wide["SELECTOR"]) == (
            "main", "busybox", f"batch.kubernetes.io/controller-uid={uid}")
        assert k.ok("logs", "job/done") == "done\n"

        pods = pods_of(k, "done")
        assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
        assert all(not p["metadata"].get("finalizers") for p in pods)      # each counted, once
        st = k.json("get", "job", "done")["status"]
        assert (st["succeeded"], st.get("failed", 0), st["completionTime"] >= st["startTime"]) == (3, 0, True)
        assert [c["type"] for c in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]

        out = k.ok("describe", "job", "done")
        assert re.search(r"^Pods Statuses:\s+0 Active \(0 Ready\) / 3 Succeeded / 0 Failed$", out, re.M), out
        assert re.search(r"^Completions:\s+3$", out, re.M) and re.search(r"^Parallelism:\s+2$", out, re.M), out
        assert re.search(r"Normal\s+Completed\s+.*job-controller\s+Job completed", out), out
        assert len(re.findall(r"Normal\s+SuccessfulCreate\s+.*job-controller\s+Created pod: done-", out)) == 3, out

        # skiffctl prints the same
        ctl = kube.host.ctl
        assert row(ctl("get", "jobs").stdout, "done")["COMPLETIONS"] == "3/3"
        assert ctl("logs", "job/done").stdout == "done\n"
        assert re.search(r"^Pods Statuses:\s+0 Active \(0 Ready\) / 3 Succeeded / 0 Failed$",
                         ctl("describe", "job", "done").stdout, re.M)

        # deleting the Job deletes its pods
        assert k.ok("delete", "job", "done", timeout=60) == 'job.batch "done" deleted\n'
        kube.wait(lambda: not pods_of(k, "done"), 30, "the pods of job done to be gone")
    finally:
        delete_job(kube, "done")


def test_job_fails_at_its_backoff_limit(kube):
    k = kube.kubectl
    try:
        k.ok("apply", "-f", kube.file("fail.yaml", job("fail", "echo trying; exit 1", backoffLimit=1)))
        # the first pod fails, a second one runs 10 s later and fails: 2 > backoffLimit
        p = k("wait", "--for=condition=failed", "job/fail", "--timeout=60s", timeout=75)
        assert p.returncode == 0 and p.stdout == "job.batch/fail condition met\n", (p.stdout, p.stderr)
        st = k.json("get", "job", "fail")["status"]
        assert st["failed"] == 2 and st.get("succeeded", 0) == 0 and "completionTime" not in st
        failed = next(c for c in st["conditions"] if c["type"] == "Failed")
        assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded",
                                                         "Job has reached the specified backoff limit")
        pods = pods_of(k, "fail")
        assert len(pods) == 2 and [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
        r = row(k.ok("get", "jobs"), "fail")
        assert (r["STATUS"], r["COMPLETIONS"]) == ("Failed", "0/1")
        out = k.ok("describe", "job", "fail")
        assert re.search(r"^Backoff Limit:\s+1$", out, re.M)
        assert re.search(r"^Pods Statuses:\s+0 Active \(0 Ready\) / 0 Succeeded / 2 Failed$", out, re.M), out
        assert re.search(r"Warning\s+BackoffLimitExceeded\s+.*job-controller\s+Job has reached the specified "
                         r"backoff limit", out), out
    finally:
        delete_job(kube, "fail")


def test_indexed_job_gives_each_pod_its_index(kube):
    """The docs' indexed-job pattern: each pod reads JOB_COMPLETION_INDEX (a downward API
    reference to its index annotation) and its hostname is <job>-<index>."""
    k = kube.kubectl
    try:
        path = kube.file("idx.yaml", job("idx", 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"',
                                         completions=3, parallelism=3, completionMode="Indexed"))
        assert k.ok("apply", "-f", path) == "job.batch/idx created\n"
        p = k("wait", "--for=condition=complete", "job/idx", "--timeout=60s", timeout=75)
        assert p.returncode == 0, (p.stdout, p.stderr)
        got = {}
        for pod in pods_of(k, "idx"):
            ix = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            got[ix] = k.ok("logs", pod["metadata"]["name"]).strip()
        assert got == {str(i): f"index={i} host=idx-{i}" for i in range(3)}
        assert k.json("get", "job", "idx")["status"]["completedIndexes"] == "0-2"
        assert re.search(r"Completed Indexes:\s+0-2\n", k.ok("describe", "job", "idx"))
    finally:
        delete_job(kube, "idx")


def test_pod_failure_policy_fail_job_on_exit_code(kube):
    """The docs' job-pod-failure-policy pattern: exit code 42 fails the whole Job at once,
    without retries up to backoffLimit."""
    k = kube.kubectl
    try:
        path = kube.file("pfp.yaml", job("pfp", "exit 42", completions=4, parallelism=2, backoffLimit=6,
                                         podFailurePolicy={"rules": [
                                             {"action": "FailJob", "onExitCodes": {
                                                 "containerName": "main", "operator": "In", "values": [42]}},
                                             {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}))
        assert k.ok("apply", "-f", path) == "job.batch/pfp created\n"
        p = k("wait", "--for=condition=failed", "job/pfp", "--timeout=60s", timeout=75)
        assert p.returncode == 0, (p.stdout, p.stderr)
        st = k.json("get", "job", "pfp")["status"]
        failed = [c for c in st["conditions"] if c["type"] == "Failed"][0]
        assert failed["reason"] == "PodFailurePolicy"
        assert re.fullmatch(r"Container main for pod default/pfp-\w+ failed with exit code 42 matching FailJob "
                            r"rule at index 0", failed["message"]), failed["message"]
        assert 1 <= st["failed"] <= 2           # not 7: no retries
    finally:
        delete_job(kube, "pfp")


def test_cronjob_runs_jobs(kube):
    """A CronJob (every 3 s: robfig's @every) starts Jobs that run to completion, shown by get cj."""
    k = kube.kubectl
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
          "spec": {"schedule": "@every 3s", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 2,
                   "jobTemplate": {"spec": {"template": {"spec": {
                       "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": "busybox", "command": ["echo", "tick"]}]}}}}}}
    try:
        assert k.ok("apply", "-f", kube.file("cj.yaml", cj)) == "cronjob.batch/tick created\n"

        def done():
            jobs = k.json("get", "jobs")["items"]
            return [j for j in jobs if j["metadata"]["name"].startswith("tick-")
                    and any(c["type"] == "Complete" for c in (j.get("status") or {}).get("conditions") or [])]
        jobs = kube.wait(done, 60, "a Job of the CronJob to complete")
        name = jobs[0]["metadata"]["name"]
        assert jobs[0]["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        assert k.ok("logs", f"job/{name}").strip() == "tick"
        head, rows = table(k.ok("get", "cronjobs"))
        assert head == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
        row = next(r for r in rows if r[0] == "tick")
        assert row[1:4] == ["@every 3s", "<none>", "False"]
        kube.wait(lambda: "SawCompletedJob" in k.ok("describe", "cronjob", "tick"), 30, "the controller's events")
    finally:
        k("delete", "cronjob", "tick", "--wait=false")
        kube.wait(lambda: not [j for j in k.json("get", "jobs")["items"] if j["metadata"]["name"].startswith("tick-")],
                  60, "the CronJob's Jobs to go with it")
