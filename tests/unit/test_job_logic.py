"""The pure Job logic (skiff/controller/workloads/joblogic.py) against plain dicts: how many pods
to run, which finished pods count and how they are counted once, the back-off, the conditions
and the status, the TTL; and the Job's row in `get jobs` (skiff/api/tables.py)."""
from __future__ import annotations

import time

from skiff.api import tables as T
from skiff.api.timefmt import rfc3339
from skiff.controller.workloads import joblogic as J

FIN = J.TRACKING_FINALIZER


def job(completions=3, parallelism=2, backoff=6, restart="Never", status=None, **spec):
    s = {"parallelism": parallelism, "backoffLimit": backoff, "completionMode": "NonIndexed",
         "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "j-uid"}},
         "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "j-uid", "job-name": "x"}},
                      "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}},
         **spec}
    if completions is not None:
        s["completions"] = completions
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x", "namespace": "default", "uid": "j-uid"}, "spec": s, "status": status or {}}


def pod(name, phase="Running", finalizer=True, deleted=False, grace=30, finished=None, restarts=0, ready=False):
    md = {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": rfc3339(1000)}
    if finalizer:
        md["finalizers"] = [FIN]
    if deleted:
        md["deletionTimestamp"] = rfc3339(2000)
        md["deletionGracePeriodSeconds"] = grace
    st = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts, "state": {}}]}
    if finished is not None:
        st["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                                              "finishedAt": rfc3339(finished)}}
    if ready:
        st["conditions"] = [{"type": "Ready", "status": "True"}]
    return {"metadata": md, "spec": {"nodeName": "n1"}, "status": st}


def empty_uncounted():
    return {"succeeded": [], "failed": []}


# -- how many pods ---------------------------------------------------------------------------------
def test_want_active_is_remaining_completions_capped_by_parallelism():
    assert J.want_active(job(completions=5, parallelism=2), succeeded=0, active=0) == 2
    assert J.want_active(job(completions=5, parallelism=2), succeeded=4, active=0) == 1
    assert J.want_active(job(completions=5, parallelism=2), succeeded=5, active=1) == 0
    assert J.want_active(job(completions=5, parallelism=2), succeeded=7, active=0) == 0
    assert J.want_active(job(completions=5, parallelism=0), succeeded=0, active=0) == 0
    # parallelism only: parallelism of them until one succeeds, then what runs finishes
    assert J.want_active(job(completions=None, parallelism=3), succeeded=0, active=1) == 3
    assert J.want_active(job(completions=None, parallelism=3), succeeded=1, active=2) == 2


def test_complete():
    assert J.is_complete(job(completions=3), succeeded=3, active=0)
    assert not J.is_complete(job(completions=3), succeeded=3, active=1)
    assert not J.is_complete(job(completions=3), succeeded=2, active=0)
    assert J.is_complete(job(completions=None), succeeded=1, active=0)
    assert not J.is_complete(job(completions=None), succeeded=1, active=1)
    assert not J.is_complete(job(completions=None), succeeded=0, active=0)


def test_pods_to_remove_prefers_unscheduled_pending_not_ready():
    a, b, c = pod("a", ready=True), pod("b", phase="Pending"), pod("c")
    b["spec"] = {}
    assert [p["metadata"]["name"] for p in J.pods_to_remove([a, b, c], 2)] == ["b", "c"]
    assert J.pods_to_remove([a], 0) == []


def test_pod_from_template_carries_the_finalizer_and_the_job_as_controller():
    p = J.pod_from_template(job())
    m = p["metadata"]
    assert m["generateName"] == "x-" and m["namespace"] == "default" and m["finalizers"] == [FIN]
    assert m["labels"] == {"batch.kubernetes.io/controller-uid": "j-uid", "job-name": "x"}
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "x", "uid": "j-uid",
                                     "controller": True, "blockOwnerDeletion": True}]
    assert p["spec"]["restartPolicy"] == "Never"
    assert p["spec"] is not job()["spec"]["template"]["spec"]


# -- which pods count --------------------------------------------------------------------------------
def test_new_finished_pods_counts_each_pod_once():
    j = job()
    s, f = pod("s", "Succeeded"), pod("f", "Failed")
    gone = pod("gone", deleted=True)                   # deleted before it succeeded: a failure
    done = pod("done", "Succeeded", finalizer=False)   # counted already (its finalizer is gone)
    running = pod("r")
    pods = [s, f, gone, done, running]
    succ, fail = J.new_finished_pods(j, pods, empty_uncounted(), set())
    assert [p["metadata"]["name"] for p in succ] == ["s"]
    assert [p["metadata"]["name"] for p in fail] == ["f", "gone"]
    # in uncountedTerminatedPods already, or its finalizer removal not seen yet: not new
    succ, fail = J.new_finished_pods(j, pods, {"succeeded": ["uid-s"], "failed": []}, {"uid-f"})
    assert succ == [] and [p["metadata"]["name"] for p in fail] == ["gone"]


def test_pod_replacement_policy_failed_waits_until_the_pod_stopped():
    j = job(podReplacementPolicy="Failed")
    stopping = pod("a", deleted=True, grace=30)
    confirmed = pod("b", deleted=True, grace=0)        # its agent stopped it and confirmed
    assert not J.is_pod_failed(stopping, j) and J.is_pod_failed(confirmed, j)
    assert J.is_pod_failed(stopping, job())            # TerminatingOrFailed: at once
    assert J.is_terminating(stopping) and not J.is_terminating(confirmed)
    assert J.count_terminating([stopping, confirmed, pod("c"), pod("d", "Failed", deleted=True)]) == 1


def test_track_then_remove_then_count():
    """uids go to uncountedTerminatedPods first, the counters only once the finalizer is gone."""
    j = job()
    st = J.status_of(j)
    s, f, running = pod("s", "Succeeded"), pod("f", "Failed"), pod("r")
    to_remove, full = J.track_finished(j, [s, f, running], st, set(), None)
    assert [p["metadata"]["name"] for p in to_remove] == ["s", "f"] and not full
    assert st["uncountedTerminatedPods"] == {"succeeded": ["uid-s"], "failed": ["uid-f"]}
    assert st["succeeded"] == st["failed"] == 0
    # the finalizer of s is removed, f's removal failed: only s is counted
    assert J.clean_uncounted(st, with_finalizer={"uid-f", "uid-r"})
    assert (st["succeeded"], st["failed"]) == (1, 0)
    assert st["uncountedTerminatedPods"] == {"succeeded": [], "failed": ["uid-f"]}
    # the next sync: s is seen without its finalizer (nothing new), f is tracked already
    s2 = pod("s", "Succeeded", finalizer=False)
    to_remove, _ = J.track_finished(j, [s2, f, running], st, set(), None)
    assert [p["metadata"]["name"] for p in to_remove] == ["f"]
    assert st["uncountedTerminatedPods"] == {"succeeded": [], "failed": ["uid-f"]}
    assert J.clean_uncounted(st, with_finalizer={"uid-r"}) and (st["succeeded"], st["failed"]) == (1, 1)
    assert not J.clean_uncounted(st, with_finalizer={"uid-r"})


def test_track_when_the_job_fails_or_succeeds():
    j = job()
    running = pod("r")
    st = J.status_of(j)
    failing = J.new_condition(J.FAILURE_TARGET, "True", *J.BACKOFF_LIMIT_EXCEEDED, "t")
    to_remove, _ = J.track_finished(j, [running], st, set(), failing)
    assert to_remove == [running] and st["uncountedTerminatedPods"]["failed"] == ["uid-r"]
    st = J.status_of(j)
    met = J.success_condition(time.time())
    to_remove, _ = J.track_finished(j, [running], st, set(), met)
    assert to_remove == [running] and st["uncountedTerminatedPods"] == empty_uncounted()


def test_track_stops_at_max_uncounted(monkeypatch):
    monkeypatch.setattr(J, "MAX_UNCOUNTED", 2)
    st = J.status_of(job())
    to_remove, full = J.track_finished(job(), [pod(f"p{i}", "Succeeded") for i in range(5)], st, set(), None)
    assert full and len(to_remove) == 2 and len(st["uncountedTerminatedPods"]["succeeded"]) == 2


# -- failing -----------------------------------------------------------------------------------------
def test_finishing_condition_backoff_limit():
    now = time.time()
    j = job(backoff=1)
    assert J.finishing_condition(j, J.status_of(j), [], failed=1, now=now) is None
    c = J.finishing_condition(j, J.status_of(j), [], failed=2, now=now)
    assert (c["type"], c["status"], c["reason"], c["message"]) == (
        "FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert J.finishing_condition(job(backoff=0), J.status_of(j), [], failed=1, now=now)["type"] == "FailureTarget"
    # an earlier FailureTarget becomes Failed; an earlier SuccessCriteriaMet stands
    st = {"conditions": [c]}
    f = J.finishing_condition(j, st, [], failed=0, now=now)
    assert (f["type"], f["reason"]) == ("Failed", "BackoffLimitExceeded")
    met = J.success_condition(now)
    assert J.finishing_condition(j, {"conditions": [met]}, [], failed=5, now=now) is met


def test_restarts_count_with_restart_policy_on_failure():
    now = time.time()
    j = job(backoff=2, restart="OnFailure")
    one, two = pod("a", restarts=1), pod("b", restarts=1)
    assert J.finishing_condition(j, {}, [one], 0, now) is None
    assert J.finishing_condition(j, {}, [one, two], 0, now)["reason"] == "BackoffLimitExceeded"
    assert J.finishing_condition(job(backoff=0, restart="OnFailure"), {}, [one], 0, now) is not None
    # finished pods' restarts and restartPolicy Never do not count
    assert J.finishing_condition(j, {}, [one, pod("c", "Failed", restarts=5)], 0, now) is None
    assert J.finishing_condition(job(backoff=2), {}, [one, two], 0, now) is None


def test_active_deadline():
    now = time.time()
    j = job(activeDeadlineSeconds=30)
    st = {"startTime": rfc3339(now - 10)}
    assert J.finishing_condition(j, st, [], 0, now) is None
    assert 19 <= J.deadline_left(j, st, now) <= 20
    c = J.finishing_condition(j, {"startTime": rfc3339(now - 31)}, [], 0, now)
    assert (c["type"], c["reason"], c["message"]) == (
        "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline")
    assert J.deadline_left(job(activeDeadlineSeconds=30, suspend=True), st, now) is None
    assert J.deadline_left(job(), st, now) is None


def test_backoff_doubles_from_ten_seconds_up_to_six_minutes():
    t = 1000.0
    rec = J.Backoff()
    assert J.backoff_left(rec, t) == 0
    rec = J.next_backoff(rec, [], [pod("a", "Failed", finished=t)])
    assert (rec.failures, rec.last_failure) == (1, t)
    assert J.backoff_left(rec, t) == 10 and J.backoff_left(rec, t + 4) == 6 and J.backoff_left(rec, t + 11) == 0
    rec = J.next_backoff(rec, [], [pod("b", "Failed", finished=t + 20)])
    assert J.backoff_left(rec, t + 20) == 20
    waits = []
    for i in range(2, 10):
        rec = J.Backoff(i + 1, t)
        waits.append(J.backoff_left(rec, t))
    assert waits == [40, 80, 160, 320, 360, 360, 360, 360]
    # a success resets it; the failures after the latest success still count
    rec = J.next_backoff(J.Backoff(4, t), [pod("s", "Succeeded", finished=t + 5)],
                         [pod("f1", "Failed", finished=t + 1), pod("f2", "Failed", finished=t + 9)])
    assert (rec.failures, rec.last_failure) == (1, t + 9)
    assert J.next_backoff(J.Backoff(4, t), [pod("s", "Succeeded", finished=t)], []) == J.Backoff()
    assert J.next_backoff(rec, [], []) is rec


# -- conditions and status ---------------------------------------------------------------------------
def test_interim_then_final_conditions():
    now = time.time()
    st = J.status_of(job())
    target = J.new_condition(J.FAILURE_TARGET, "True", *J.DEADLINE_EXCEEDED, rfc3339(now))
    final = J.interim_condition(st, target, now)
    assert [c["type"] for c in st["conditions"]] == ["FailureTarget"] and final["type"] == "Failed"
    assert not J.enact_finished(st, final, terminating=1)       # a pod still stopping
    st["uncountedTerminatedPods"]["failed"] = ["u"]
    assert not J.enact_finished(st, final, terminating=0)       # a pod not counted yet
    st["uncountedTerminatedPods"]["failed"] = []
    assert J.enact_finished(st, final, terminating=0)
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [
        ("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]
    assert "completionTime" not in st
    st = J.status_of(job())
    final = J.interim_condition(st, J.success_condition(now), now)
    assert J.enact_finished(st, final, 0)
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
        ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")]
    assert st["completionTime"] == rfc3339(now)
    assert J.interim_condition(st, None, now) is None


def test_suspend_and_resume():
    now = time.time()
    st = J.status_of(job())
    assert J.suspend_transition(job(), st, now) is None and st["conditions"] == []   # never suspended
    assert J.suspend_transition(job(suspend=True), st, now) == "Suspended"
    assert st["conditions"][0]["status"] == "True" and st["conditions"][0]["reason"] == "JobSuspended"
    assert J.suspend_transition(job(suspend=True), st, now) is None
    assert J.suspend_transition(job(), st, now + 5) == "Resumed"
    assert (st["conditions"][0]["status"], st["conditions"][0]["reason"], st["conditions"][0]["message"]) == (
        "False", "JobResumed", "Job resumed")
    assert st["startTime"] == rfc3339(now + 5)      # activeDeadlineSeconds counts from the resume


def test_status_json_as_kubernetes_writes_it():
    st = J.status_of(job(status={"active": 2, "startTime": "t"}))
    st.update(active=0, ready=0, terminating=0)
    assert J.status_json(st) == {"startTime": "t", "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}
    st.update(succeeded=3)
    st["uncountedTerminatedPods"]["failed"] = ["u"]
    assert J.status_json(st)["succeeded"] == 3 and J.status_json(st)["uncountedTerminatedPods"] == {"failed": ["u"]}


def test_ttl_expires_at():
    done = J.new_condition(J.COMPLETE, "True", *J.COMPLETIONS_REACHED, rfc3339(5000))
    assert J.ttl_expires_at(job(ttlSecondsAfterFinished=30, status={"conditions": [done]})) == 5030
    assert J.ttl_expires_at(job(ttlSecondsAfterFinished=30)) is None                     # not finished
    assert J.ttl_expires_at(job(status={"conditions": [done]})) is None                  # no TTL
    failed = dict(done, type="Failed")
    assert J.ttl_expires_at(job(ttlSecondsAfterFinished=0, status={"conditions": [failed]})) == 5000
    gone = job(ttlSecondsAfterFinished=0, status={"conditions": [failed]})
    gone["metadata"]["deletionTimestamp"] = rfc3339(5001)
    assert J.ttl_expires_at(gone) is None


def test_managed_elsewhere():
    assert not J.managed_elsewhere(job()) and not J.managed_elsewhere(job(managedBy="kubernetes.io/job-controller"))
    assert J.managed_elsewhere(job(managedBy="example.com/mine"))


# -- get jobs ----------------------------------------------------------------------------------------
def test_job_cells():
    now = time.time()
    j = job(completions=3, status={"succeeded": 1, "startTime": rfc3339(now - 65)})
    j["metadata"]["creationTimestamp"] = rfc3339(now - 70)
    assert T.job_cells(j, now) == ["x", "Running", "1/3", "65s", "70s", "c", "busybox",
                                   "batch.kubernetes.io/controller-uid=j-uid"]
    done = J.new_condition(J.COMPLETE, "True", *J.COMPLETIONS_REACHED, rfc3339(now))
    j["status"].update(succeeded=3, completionTime=rfc3339(now - 5), conditions=[done])
    assert T.job_cells(j, now)[1:4] == ["Complete", "3/3", "60s"]
    assert T.job_cells(job(completions=None, parallelism=3), now)[1:4] == ["Running", "0/1 of 3", ""]
    assert T.job_cells(job(completions=None, parallelism=1), now)[2] == "0/1"
    for typ in ("Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet"):
        assert T.job_status(job(status={"conditions": [{"type": typ, "status": "True"}]})) == typ
    assert T.job_status(job(status={"conditions": [{"type": "Suspended", "status": "False"}]})) == "Running"
    deleting = job(status={"conditions": [{"type": "Suspended", "status": "True"}]})
    deleting["metadata"]["deletionTimestamp"] = rfc3339(now)
    assert T.job_status(deleting) == "Terminating"
    assert [c["name"] for c in T.columns("jobs")] == ["Name", "Status", "Completions", "Duration", "Age",
                                                      "Containers", "Images", "Selector"]
    assert [c["priority"] for c in T.columns("jobs")] == [0, 0, 0, 0, 0, 1, 1, 1]


def test_describe_job_layout():
    from skiff.cli.ctl.describe_job import describe_job
    j = job(completions=3, parallelism=2, backoff=1, activeDeadlineSeconds=60, ttlSecondsAfterFinished=100,
            suspend=False,
            status={"active": 0, "ready": 0, "succeeded": 3, "startTime": "2026-01-02T15:20:11Z",
                    "completionTime": "2026-01-02T15:21:16Z"})
    j["metadata"]["labels"] = {"job-name": "x"}
    ev = [{"type": "Normal", "reason": "Completed", "firstTimestamp": rfc3339(time.time() - 30),
           "count": 1, "source": {"component": "job-controller"}, "message": "Job completed"}]
    lines = describe_job(j, ev).splitlines()
    assert lines[:16] == [
        "Name:                        x",
        "Namespace:                   default",
        "Selector:                    batch.kubernetes.io/controller-uid=j-uid",
        "Labels:                      job-name=x",
        "Annotations:                 <none>",
        "Parallelism:                 2",
        "Completions:                 3",
        "Completion Mode:             NonIndexed",
        "Suspend:                     false",
        "Backoff Limit:               1",
        "TTL Seconds After Finished:  100",
        "Start Time:                  Fri, 02 Jan 2026 15:20:11 +0000",
        "Completed At:                Fri, 02 Jan 2026 15:21:16 +0000",
        "Duration:                    65s",
        "Active Deadline Seconds:     60s",
        "Pods Statuses:               0 Active (0 Ready) / 3 Succeeded / 0 Failed"]
    assert lines[16] == "Pod Template:" and lines[17].split() == ["Labels:", "batch.kubernetes.io/controller-uid=j-uid"]
    e = lines.index("Events:")
    assert lines[e + 3].split()[:2] == ["Normal", "Completed"]
    assert lines[e + 3].endswith("job-controller  Job completed")
    # a parallelism-only Job; no ready count (a status written before there was one)
    j = job(completions=None, parallelism=3, status={"active": 3})
    lines = describe_job(j, None).splitlines()
    assert "Completions:      <unset>" in lines and "Pods Statuses:    3 Active / 0 Succeeded / 0 Failed" in lines


# -- Indexed Jobs --------------------------------------------------------------------------------
def ipod(name, index, phase="Running", ready=False, created=1000):
    p = pod(name, phase, ready=ready)
    p["metadata"]["creationTimestamp"] = rfc3339(created)
    if index is not None:
        p["metadata"]["annotations"] = {J.INDEX_KEY: str(index)}
    return p


def test_completed_indexes_round_trip():
    assert J.format_indexes({0, 1, 3, 5, 6, 7}) == "0-1,3,5-7"
    assert J.format_indexes(set()) == ""
    assert J.parse_indexes("0-1,3,5-7") == {0, 1, 3, 5, 6, 7}
    assert J.parse_indexes("") == set() and J.parse_indexes("x,2") == {2}


def test_an_index_counts_once_and_only_below_completions():
    j = job(completions=4, completionMode="Indexed", status={"completedIndexes": "0"})
    pods = [ipod("a", 0, "Succeeded"), ipod("b", 2, "Succeeded"), ipod("c", 2, "Succeeded"),
            ipod("d", 9, "Succeeded"), ipod("e", None, "Succeeded"), ipod("f", 3, "Failed")]
    assert J.succeeded_indexes(j, j["status"], pods) == {0, 2}
    assert J.completion_index(ipod("g", "07")) is None      # not a plain decimal


def test_indexed_plan_deletes_strays_and_fills_the_lowest_missing_indexes():
    j = job(completions=6, parallelism=3, completionMode="Indexed")
    dup_old, dup_ready = ipod("a", 1, created=1000), ipod("b", 1, ready=True, created=1001)
    stray, done_one = ipod("c", None), ipod("d", 0)
    extra, missing = J.indexed_plan(j, [dup_old, dup_ready, stray, done_one], done={0})
    # the ready one of index 1 stays; no index, an index already succeeded: deleted
    assert {p["metadata"]["name"] for p in extra} == {"a", "c", "d"}
    assert missing == [2, 3]                     # parallelism 3, one (index 1) active
    _, missing = J.indexed_plan(j, [], done={0, 1, 2, 3, 4})
    assert missing == [5]                        # completions - succeeded leaves room for one


def test_an_indexed_pod_carries_its_index():
    j = job(completions=2, completionMode="Indexed")
    j["spec"]["template"]["spec"]["initContainers"] = [{"name": "i", "image": "busybox"}]
    p = J.with_index(J.pod_from_template(j), j, 1)
    assert p["metadata"]["generateName"] == "x-1-"
    assert p["metadata"]["annotations"][J.INDEX_KEY] == "1" and p["metadata"]["labels"][J.INDEX_KEY] == "1"
    assert p["spec"]["hostname"] == "x-1"
    for c in p["spec"]["containers"] + p["spec"]["initContainers"]:
        assert c["env"] == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    assert "env" not in j["spec"]["template"]["spec"]["containers"][0]     # the template is untouched


def test_indexed_succeeded_pods_skip_the_uncounted_list():
    j = job(completions=2, completionMode="Indexed")
    st = J.status_of(j)
    to_remove, _ = J.track_finished(j, [ipod("a", 0, "Succeeded"), ipod("b", 1, "Failed")], st, set(), None)
    assert {p["metadata"]["name"] for p in to_remove} == {"a", "b"}
    assert st["uncountedTerminatedPods"] == {"succeeded": [], "failed": ["uid-b"]}


def test_describe_shows_completed_indexes():
    from skiff.cli.ctl.describe_job import _cap_indexes, describe_job
    j = job(completions=200, completionMode="Indexed", status={"completedIndexes": "0-2,5"})
    assert "Completed Indexes:  0-2,5" in describe_job(j, []).splitlines()
    long = ",".join(str(i) for i in range(0, 200, 2))
    assert _cap_indexes(long).endswith(",...") and len(_cap_indexes(long)) < 60
    assert _cap_indexes("") == "<none>"



# -- podFailurePolicy ----------------------------------------------------------------------------
POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}


def failed_pod(name, code=None, container="c", conditions=None, init=False):
    p = pod(name, "Failed")
    st = p["status"]
    if code is not None:
        cs = [{"name": container, "state": {"terminated": {"exitCode": code}}}]
        st["initContainerStatuses" if init else "containerStatuses"] = cs
    if conditions:
        st["conditions"] = conditions
    return p


def test_failure_policy_first_matching_rule_decides():
    j = job(podFailurePolicy=POLICY, podReplacementPolicy="Failed")
    action, msg = J.match_failure_policy(j, failed_pod("a", 42))
    assert (action, msg) == ("FailJob", "Container c for pod default/a failed with exit code 42 matching "
                                        "FailJob rule at index 0")
    assert J.match_failure_policy(j, failed_pod("b", 42, container="other"))[0] == "Count"  # not c: NotIn 1,2
    assert J.match_failure_policy(j, failed_pod("c", 3, init=True))[0] == "Ignore"         # init containers too
    assert J.match_failure_policy(j, failed_pod("d", 1))[0] is None                        # no rule: counted
    dis = failed_pod("e", conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert J.match_failure_policy(j, dis) == ("Ignore", "Pod default/e has condition DisruptionTarget "
                                                        "matching Ignore rule at index 3")
    assert J.match_failure_policy(j, failed_pod("f", 0))[0] is None     # exit code 0 matches nothing
    assert not J.counts_as_failed(j, failed_pod("g", 3)) and J.counts_as_failed(j, failed_pod("h", 1))
    assert J.match_failure_policy(job(), failed_pod("i", 42)) == (None, None)


def test_fail_job_rule_makes_the_failure_target_and_ignored_pods_are_not_counted():
    j = job(podFailurePolicy=POLICY, podReplacementPolicy="Failed")
    st = J.status_of(j)
    cond = J.finishing_condition(j, st, [failed_pod("a", 42)], 1, time.time())
    assert (cond["type"], cond["reason"]) == ("FailureTarget", "PodFailurePolicy")
    assert cond["message"].startswith("Container c for pod default/a failed with exit code 42")
    assert J.finishing_condition(j, st, [failed_pod("b", 3)], 0, time.time()) is None
    _, _ = J.track_finished(j, [failed_pod("b", 3), failed_pod("c", 1)], st, set(), None)
    assert st["uncountedTerminatedPods"]["failed"] == ["uid-c"]


# -- backoffLimitPerIndex, maxFailedIndexes, successPolicy --------------------------------------
def ifailed(name, index, failures=0, code=1, finished=2000.0):
    p = failed_pod(name, code)
    p["metadata"]["annotations"] = {J.INDEX_KEY: str(index), J.FAILURE_COUNT_KEY: str(failures)}
    p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = rfc3339(finished)
    return p


def test_an_index_fails_past_its_own_backoff_limit():
    j = job(completions=4, completionMode="Indexed", backoffLimitPerIndex=1, podReplacementPolicy="Failed",
            podFailurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}},
                                        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]})
    pods = [ifailed("a", 0, 0), ifailed("b", 1, 0), ifailed("c", 1, 1, finished=2100.0),
            ifailed("d", 2, 0, code=7), ifailed("e", 3, 1, code=3)]
    assert J.failed_indexes(j, {}, pods) == {1, 2}      # 1: a second failure; 2: FailIndex; 3: ignored
    f = J.index_failures(j, pods)
    assert (f[0].failures, f[1].failures, f[3].failures, f[3].ignored) == (1, 2, 1, 1)
    assert f[1].last_failure == 2100.0                  # the newest failed pod of the index
    p = J.with_index(J.pod_from_template(j), j, 0, f[0])
    assert p["metadata"]["annotations"][J.FAILURE_COUNT_KEY] == "1"
    assert J.IGNORED_FAILURE_COUNT_KEY not in p["metadata"]["annotations"]
    assert J.with_index(J.pod_from_template(j), j, 3, f[3])["metadata"]["annotations"][
        J.IGNORED_FAILURE_COUNT_KEY] == "1"


def test_indexed_finishing_conditions():
    now = time.time()
    j = job(completions=4, completionMode="Indexed", backoffLimitPerIndex=1, maxFailedIndexes=1)
    c = J.indexed_finishing(j, {0}, {1, 2}, now)
    assert (c["type"], c["reason"], c["message"]) == ("FailureTarget", "MaxFailedIndexesExceeded",
                                                      "Job has exceeded the specified maximal number of failed indexes")
    assert J.indexed_finishing(j, {0, 2}, {1}, now) is None          # index 3 still to run
    c = J.indexed_finishing(j, {0, 2, 3}, {1}, now)
    assert (c["reason"], c["message"]) == ("FailedIndexes", "Job has failed indexes")
    j = job(completions=5, completionMode="Indexed", successPolicy={"rules": [
        {"succeededIndexes": "0,2-3"}, {"succeededCount": 4}, {"succeededIndexes": "1-4", "succeededCount": 2}]})
    assert J.indexed_finishing(j, {0, 2}, set(), now) is None
    c = J.indexed_finishing(j, {0, 2, 3}, set(), now)
    assert (c["type"], c["reason"], c["message"]) == ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0")
    assert J.indexed_finishing(j, {1, 4}, set(), now)["message"] == "Matched rules at index 2"
    assert J.indexed_finishing(j, {0, 1}, set(), now) is None
