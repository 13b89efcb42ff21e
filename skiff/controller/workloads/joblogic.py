"""Pure Job logic over plain dicts, the decisions of Kubernetes' pkg/controller/job (1.32): which
pods count as succeeded or failed, how many should be active, the back-off after failures,
when a Job has failed or completed, its conditions and status, the pods it creates, and when
its TTL after finishing runs out. No I/O here: :mod:`skiff.controller.job` and
:mod:`skiff.controller.ttlafterfinished` call these and write the results.

Counting is exactly-once, with Kubernetes' ``batch.kubernetes.io/job-tracking`` finalizer: every
pod is created with it; a finished pod's uid first goes into
``status.uncountedTerminatedPods`` (written), then its finalizer is removed, then the uid moves
into the ``succeeded`` or ``failed`` counter. A pod deleted before it succeeded counts as failed
(it is held by its finalizer until counted); with ``podReplacementPolicy: Failed`` only once
it has stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from skiff.api.indexes import format_indexes, parse_indexes  # noqa: F401 - also J.format_indexes
from skiff.api.jsontree import json_copy
from skiff.api.timefmt import rfc3339
from skiff.api.validation_job import DEFAULT_MANAGER
from skiff.controller.workloads.logic import (controller_ref, get_condition, is_pod_active, is_pod_ready, md,
                                              parse_time, pods_to_delete)

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"    # annotation and label of an Indexed Job's pods
INDEX_ENV = "JOB_COMPLETION_INDEX"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"            # annotations, per index
IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
BACKOFF_BASE = 10.0         # s, after the first failure; doubled for each further one
BACKOFF_MAX = 360.0         # s
MAX_UNCOUNTED = 500         # uids in uncountedTerminatedPods (the status stays under ~20 KB)

COMPLETE = "Complete"
FAILED = "Failed"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
SUSPENDED = "Suspended"
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
POD_FAILURE_POLICY = "PodFailurePolicy"
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded",
                               "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
SUCCESS_POLICY = "SuccessPolicy"


# -- the Job -------------------------------------------------------------------------------------
def spec(job: dict) -> dict:
    return job.get("spec") or {}


def _true(status: dict | None, typ: str) -> dict | None:
    c = get_condition(status, typ)
    return c if c is not None and c.get("status") == "True" else None


def finished_condition(job: dict) -> dict | None:
    """The Job's Complete or Failed condition (status True), if it has finished."""
    return _true(job.get("status"), COMPLETE) or _true(job.get("status"), FAILED)


def is_finished(job: dict) -> bool:
    return finished_condition(job) is not None


def managed_elsewhere(job: dict) -> bool:
    """spec.managedBy names another controller: the Job is left to it."""
    m = spec(job).get("managedBy")
    return m is not None and m != DEFAULT_MANAGER


def suspended(job: dict) -> bool:
    return spec(job).get("suspend") is True


def only_replace_failed(job: dict) -> bool:
    return spec(job).get("podReplacementPolicy") == "Failed"


def backoff_limit(job: dict) -> int:
    v = spec(job).get("backoffLimit")
    return 6 if v is None else int(v)


# -- pods ----------------------------------------------------------------------------------------
def phase(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("phase")


def has_finalizer(pod: dict) -> bool:
    return TRACKING_FINALIZER in (md(pod).get("finalizers") or ())


def stopped(pod: dict) -> bool:
    """Nothing of the pod runs any more: a terminal phase, or a deletion its agent confirmed
    (grace 0; the kubelet would write phase Failed first, skiff's agent removes the pod)."""
    m = md(pod)
    return phase(pod) in ("Succeeded", "Failed") or (bool(m.get("deletionTimestamp"))
                                                     and m.get("deletionGracePeriodSeconds") == 0)


def is_terminating(pod: dict) -> bool:
    return bool(md(pod).get("deletionTimestamp")) and not stopped(pod)


def is_pod_failed(pod: dict, job: dict) -> bool:
    """isPodFailed: phase Failed; or deleted before it succeeded (with podReplacementPolicy
    Failed: once it has stopped), so that a pod that never reaches a phase still counts."""
    if phase(pod) == "Failed":
        return True
    if not md(pod).get("deletionTimestamp") or phase(pod) == "Succeeded":
        return False
    return stopped(pod) if only_replace_failed(job) else True


def finished_time(pod: dict) -> float:
    """getFinishedTime: when the last container terminated, else when the pod stopped being
    ready, else when it was deleted, else when it was created."""
    st = pod.get("status") or {}
    ends = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for c in st.get("containerStatuses") or ()]
    ends = [t for t in ends if t is not None]
    if ends:
        return max(ends)
    ready = get_condition(st, "Ready")
    for t in ((ready or {}).get("lastTransitionTime") if (ready or {}).get("status") == "False" else None,
              md(pod).get("deletionTimestamp"), md(pod).get("creationTimestamp")):
        v = parse_time(t)
        if v is not None:
            return v
    return time.time()


def restarts(pod: dict) -> int:
    st = pod.get("status") or {}
    return sum(int(c.get("restartCount") or 0)
               for group in ("initContainerStatuses", "containerStatuses") for c in st.get(group) or ())


def new_finished_pods(job: dict, pods: list, uncounted: dict, expected_rm: set) -> tuple[list, list]:
    """getNewFinishedPods: (succeeded, failed) pods not counted yet: they still hold the
    finalizer, are not in uncountedTerminatedPods and their finalizer is not being removed."""
    seen = set(uncounted.get("succeeded") or ()) | set(uncounted.get("failed") or ())
    succeeded, failed = [], []
    for p in pods:
        uid = md(p).get("uid")
        if not has_finalizer(p) or uid in seen or uid in expected_rm:
            continue
        if phase(p) == "Succeeded":
            succeeded.append(p)
        elif is_pod_failed(p, job):
            failed.append(p)
    return succeeded, failed


def match_failure_policy(job: dict, pod: dict) -> tuple[str | None, str | None]:
    """matchPodFailurePolicy for a failed pod: (the action of the first rule it matches, None
    when none does or the Job has no podFailurePolicy; the FailJob message). A rule matches by a
    container (init or not, the named one if given) that terminated with a non-zero exit code
    In / NotIn its values, or by a pod condition of its type with its status."""
    policy = spec(job).get("podFailurePolicy")
    if not policy:
        return None, None
    st = pod.get("status") or {}
    where = f"{md(pod).get('namespace')}/{md(pod).get('name')}"
    for i, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        codes = rule.get("onExitCodes")
        if codes is not None:
            hit = _exit_code_match(codes, st)
            if hit is not None:
                name, code = hit
                return action, (f"Container {name} for pod {where} failed with exit code {code} matching "
                                f"{action} rule at index {i}")
            continue
        for want in rule.get("onPodConditions") or ():
            c = get_condition(st, want.get("type"))
            if c is not None and c.get("status") == (want.get("status") or "True"):
                return action, f"Pod {where} has condition {want.get('type')} matching {action} rule at index {i}"
    return None, None


def _exit_code_match(codes: dict, status: dict) -> tuple[str, int] | None:
    values, name = set(codes.get("values") or ()), codes.get("containerName")
    for group in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(group) or ():
            if name is not None and cs.get("name") != name:
                continue
            term = (cs.get("state") or {}).get("terminated")
            code = (term or {}).get("exitCode")
            if not isinstance(code, int) or code == 0:
                continue
            if (code in values) == (codes.get("operator") == "In"):
                return cs.get("name"), code
    return None


def counts_as_failed(job: dict, pod: dict) -> bool:
    """A failed pod counts towards backoffLimit unless the podFailurePolicy rule it matches is Ignore."""
    return match_failure_policy(job, pod)[0] != "Ignore"


def fail_job_message(job: dict, pods: list) -> str | None:
    """getFailJobMessage: the message of the first failed pod that matches a FailJob rule."""
    if not spec(job).get("podFailurePolicy"):
        return None
    for p in pods:
        if is_pod_failed(p, job):
            action, msg = match_failure_policy(job, p)
            if action == "FailJob":
                return msg
    return None


def count_terminating(pods: list) -> int:
    return sum(1 for p in pods if is_terminating(p))


def pods_to_remove(active_pods: list, n: int) -> list:
    """activePodsForRemoval: the ``n`` pods to delete first (not scheduled, pending, not ready,
    ready for a shorter time, restarted more, newer)."""
    return pods_to_delete(active_pods, [], n) if n > 0 else []


def pod_from_template(job: dict) -> dict:
    """The pod a Job creates: its template, generateName ``<job>-``, the Job as controller, and
    the tracking finalizer."""
    tmpl = spec(job).get("template") or {}
    tmd = tmpl.get("metadata") or {}
    fins = list(tmd.get("finalizers") or ())
    if TRACKING_FINALIZER not in fins:
        fins.append(TRACKING_FINALIZER)
    m = {"generateName": f"{md(job)['name']}-", "namespace": md(job).get("namespace"),
         "labels": dict(tmd.get("labels") or {}), "finalizers": fins,
         "ownerReferences": [controller_ref(job, "batch/v1", "Job")]}
    if tmd.get("annotations"):
        m["annotations"] = dict(tmd["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": json_copy(tmpl.get("spec") or {})}


# -- Indexed Jobs ----------------------------------------------------------------------------------
def is_indexed(job: dict) -> bool:
    return spec(job).get("completionMode") == "Indexed"


def completion_index(pod: dict) -> int | None:
    """getCompletionIndex: the pod's index from its annotation (a plain decimal), else None."""
    v = (md(pod).get("annotations") or {}).get(INDEX_KEY)
    if not isinstance(v, str) or not v.isdigit() or (len(v) > 1 and v[0] == "0"):
        return None
    return int(v)


def valid_index(job: dict, pod: dict) -> int | None:
    """The pod's completion index when it is one of the Job's (below completions)."""
    ix = completion_index(pod)
    return ix if ix is not None and ix < int(spec(job).get("completions") or 0) else None


def succeeded_indexes(job: dict, status: dict, pods: list) -> set[int]:
    """The indexes that have succeeded: those of status.completedIndexes and of every succeeded
    pod with a valid index (an index is enough not to count a pod twice)."""
    done = {i for i in parse_indexes(status.get("completedIndexes")) if i < int(spec(job).get("completions") or 0)}
    for p in pods:
        if phase(p) == "Succeeded":
            ix = valid_index(job, p)
            if ix is not None:
                done.add(ix)
    return done


def per_index(job: dict) -> bool:
    return spec(job).get("backoffLimitPerIndex") is not None


def _count(pod: dict, key: str) -> int:
    v = (md(pod).get("annotations") or {}).get(key)
    return int(v) if isinstance(v, str) and v.isdigit() else 0


@dataclass(frozen=True)
class IndexFailures:
    """An index's failures so far (its newest failed pod's counts, with that pod), for
    backoffLimitPerIndex: what its next pod carries, and when the back-off started."""
    failures: int
    ignored: int
    last_failure: float


def index_failures(job: dict, pods: list) -> dict[int, IndexFailures]:
    """getNewIndexFailureCounts over each index's newest failed pod: its counts plus itself
    (as an ignored failure when a podFailurePolicy Ignore rule matches it)."""
    newest: dict[int, tuple[float, dict]] = {}
    for p in pods:
        if not is_pod_failed(p, job):
            continue
        ix = valid_index(job, p)
        if ix is None:
            continue
        t = finished_time(p)
        if ix not in newest or t > newest[ix][0]:
            newest[ix] = (t, p)
    out = {}
    for ix, (t, p) in newest.items():
        failures, ignored = _count(p, FAILURE_COUNT_KEY), _count(p, IGNORED_FAILURE_COUNT_KEY)
        if counts_as_failed(job, p):
            failures += 1
        else:
            ignored += 1
        out[ix] = IndexFailures(failures, ignored, t)
    return out


def failed_indexes(job: dict, status: dict, pods: list) -> set[int]:
    """calculateFailedIndexes: status.failedIndexes, and the index of every failed pod that
    matched a FailIndex rule or whose index has now failed more than backoffLimitPerIndex times."""
    limit = int(spec(job).get("backoffLimitPerIndex") or 0)
    completions = int(spec(job).get("completions") or 0)
    out = {i for i in parse_indexes(status.get("failedIndexes")) if i < completions}
    for p in pods:
        if not is_pod_failed(p, job):
            continue
        ix = valid_index(job, p)
        if ix is None or ix in out:
            continue
        action, _ = match_failure_policy(job, p)
        if action == "FailIndex" or (action != "Ignore" and _count(p, FAILURE_COUNT_KEY) + 1 > limit):
            out.add(ix)
    return out


def indexed_finishing(job: dict, done: set[int], failed: set[int], now: float) -> dict | None:
    """The finishing conditions of an Indexed Job once the others have not decided: too many
    failed indexes, every index succeeded or failed with some failed, or a successPolicy rule met."""
    s = spec(job)
    completions = int(s.get("completions") or 0)
    if per_index(job):
        most = s.get("maxFailedIndexes")
        if most is not None and len(failed) > int(most):
            return new_condition(FAILURE_TARGET, "True", *MAX_FAILED_INDEXES_EXCEEDED, rfc3339(now))
        if failed and len(failed) + len(done) >= completions:
            return new_condition(FAILURE_TARGET, "True", *FAILED_INDEXES, rfc3339(now))
    for i, rule in enumerate((s.get("successPolicy") or {}).get("rules") or ()):
        if success_rule_met(rule, done):
            return new_condition(SUCCESS_CRITERIA_MET, "True", SUCCESS_POLICY, f"Matched rules at index {i}",
                                 rfc3339(now))
    return None


def success_rule_met(rule: dict, done: set[int]) -> bool:
    """matchSuccessPolicy's rule: the succeededIndexes all succeeded, or succeededCount of them
    (of all indexes, without succeededIndexes) did."""
    ixs, count = rule.get("succeededIndexes"), rule.get("succeededCount")
    among = done & parse_indexes(ixs) if ixs is not None else done
    if count is not None:
        return len(among) >= int(count)
    return ixs is not None and parse_indexes(ixs) <= done


def indexed_plan(job: dict, active_pods: list, done: set[int]) -> tuple[list, list[int]]:
    """manageJob for an Indexed Job: (active pods to delete: without a valid index, of an index
    that has succeeded, or a second one of an index; the indexes that need a pod, lowest first,
    as many as parallelism leaves room for)."""
    s = spec(job)
    completions, parallelism = int(s.get("completions") or 0), int(s.get("parallelism") or 0)
    keep: dict[int, dict] = {}
    extra = []
    for p in sorted(active_pods, key=lambda p: (not is_pod_ready(p), md(p).get("creationTimestamp") or "")):
        ix = valid_index(job, p)
        if ix is None or ix in done or ix in keep:
            extra.append(p)
        else:
            keep[ix] = p
    room = min(parallelism, completions - len(done)) - len(keep)
    missing = []
    if room > 0:
        for ix in range(completions):
            if ix not in done and ix not in keep:
                missing.append(ix)
                if len(missing) >= room:
                    break
    return extra, missing


def with_index(pod: dict, job: dict, index: int, failures: IndexFailures | None = None) -> dict:
    """A pod from the template made the pod of ``index``: its name, the index annotation and
    label, the hostname ``<job>-<index>`` and JOB_COMPLETION_INDEX in every container; with
    backoffLimitPerIndex, the index's failure counts so far."""
    m = pod["metadata"]
    m["generateName"] = f"{md(job)['name']}-{index}-"
    m.setdefault("annotations", {})[INDEX_KEY] = str(index)
    if per_index(job):
        m["annotations"][FAILURE_COUNT_KEY] = str(failures.failures if failures else 0)
        if failures and failures.ignored:
            m["annotations"][IGNORED_FAILURE_COUNT_KEY] = str(failures.ignored)
    m["labels"][INDEX_KEY] = str(index)
    ps = pod["spec"]
    if not ps.get("hostname"):
        ps["hostname"] = f"{md(job)['name']}-{index}"[:63].rstrip("-.")
    ref = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
    for group in ("initContainers", "containers"):
        for c in ps.get(group) or ():
            env = c.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                env.append(dict(ref))
    return pod


# -- how many, and when ----------------------------------------------------------------------------
def want_active(job: dict, succeeded: int, active: int) -> int:
    """manageJob's target: completions - succeeded, at most parallelism; without completions,
    parallelism until one pod has succeeded, then no more new ones."""
    s = spec(job)
    parallelism = int(s.get("parallelism") or 0)
    if s.get("completions") is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(int(s["completions"]) - succeeded, parallelism))


def is_complete(job: dict, succeeded: int, active: int) -> bool:
    """Without completions: one pod succeeded and none is left running; else completions reached."""
    completions = spec(job).get("completions")
    if completions is None:
        return succeeded > 0 and active == 0
    return succeeded >= int(completions) and active == 0


def past_backoff_limit_on_failure(job: dict, pods: list) -> bool:
    """restartPolicy OnFailure: the restarts of the running and pending pods' containers
    reach backoffLimit (any restart, when it is 0)."""
    if ((spec(job).get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    n = sum(restarts(p) for p in pods if phase(p) in ("Running", "Pending"))
    limit = backoff_limit(job)
    return n > 0 if limit == 0 else n >= limit


def deadline_left(job: dict, status: dict, now: float) -> float | None:
    """Seconds until activeDeadlineSeconds runs out (<= 0: it has), None without a deadline,
    a start time, or while suspended."""
    ads = spec(job).get("activeDeadlineSeconds")
    start = parse_time(status.get("startTime"))
    if ads is None or start is None or suspended(job):
        return None
    return start + int(ads) - now


@dataclass(frozen=True)
class Backoff:
    """A Job's failures since its last success and when the latest of them happened."""
    failures: int = 0
    last_failure: float | None = None


def next_backoff(rec: Backoff, new_succeeded: list, new_failed: list) -> Backoff:
    """The record after newly counted pods: a success resets it, keeping only the failures
    that finished after the latest success."""
    if not new_succeeded:
        if not new_failed:
            return rec
        return Backoff(rec.failures + len(new_failed), max(finished_time(p) for p in new_failed))
    last_success = max(finished_time(p) for p in new_succeeded)
    later = [t for t in (finished_time(p) for p in new_failed) if t > last_success]
    return Backoff(len(later), max(later) if later else None)


def backoff_left(rec: Backoff, now: float, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds before a replacement pod may be created: ``base`` after one failure, doubling
    with each further one, at most ``cap``, from the latest failure."""
    if rec.failures == 0 or rec.last_failure is None:
        return 0.0
    delay = min(base * 2 ** min(rec.failures - 1, 32), cap)
    return max(0.0, delay - (now - rec.last_failure))


# -- conditions ----------------------------------------------------------------------------------
def new_condition(typ: str, status: str, reason: str, message: str, now: str) -> dict:
    return {"type": typ, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def ensure_condition(status: dict, typ: str, value: str, reason: str, message: str, now: str) -> bool:
    """ensureJobConditionStatus: set the condition (a new one when any of status, reason or
    message differs; none is added just to say False). True when the conditions changed."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == typ:
            if (c.get("status"), c.get("reason"), c.get("message")) == (value, reason, message):
                return False
            conds[i] = new_condition(typ, value, reason, message, now)
            return True
    if value == "False":
        return False
    conds.append(new_condition(typ, value, reason, message, now))
    return True


def finishing_condition(job: dict, status: dict, pods: list, failed: int, now: float) -> dict | None:
    """What syncJob decides before managing pods: an earlier SuccessCriteriaMet stands; an
    earlier FailureTarget becomes Failed; more failures than backoffLimit (or, OnFailure, as
    many restarts) or the active deadline passed make a new FailureTarget."""
    nows = rfc3339(now)
    met = _true(status, SUCCESS_CRITERIA_MET)
    if met is not None:
        return met
    target = _true(status, FAILURE_TARGET)
    if target is not None:
        return new_condition(FAILED, "True", target.get("reason", ""), target.get("message", ""), nows)
    policy_msg = fail_job_message(job, pods)
    if policy_msg is not None:
        return new_condition(FAILURE_TARGET, "True", POD_FAILURE_POLICY, policy_msg, nows)
    if failed > backoff_limit(job) or past_backoff_limit_on_failure(job, pods):
        return new_condition(FAILURE_TARGET, "True", *BACKOFF_LIMIT_EXCEEDED, nows)
    left = deadline_left(job, status, now)
    if left is not None and left <= 0:
        return new_condition(FAILURE_TARGET, "True", *DEADLINE_EXCEEDED, nows)
    return None


def success_condition(now: float) -> dict:
    return new_condition(SUCCESS_CRITERIA_MET, "True", *COMPLETIONS_REACHED, rfc3339(now))


def suspend_transition(job: dict, status: dict, now: float) -> str | None:
    """The Suspended condition after a sync that managed the pods: True (JobSuspended) while
    suspended; False (JobResumed) once resumed, which restarts the clock of
    activeDeadlineSeconds (startTime). Returns the event's reason ("Suspended", "Resumed"), or
    None when nothing changed."""
    nows = rfc3339(now)
    if suspended(job):
        return "Suspended" if ensure_condition(status, SUSPENDED, "True", "JobSuspended", "Job suspended",
                                               nows) else None
    if ensure_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed", nows):
        status["startTime"] = nows
        return "Resumed"
    return None


def interim_condition(status: dict, finished: dict | None, now: float) -> dict | None:
    """A new FailureTarget, or a SuccessCriteriaMet not yet there, goes into the status now,
    before any finalizer is removed; returns the final condition (Failed, Complete) that is set
    once every pod is counted and none is terminating."""
    if finished is None:
        return None
    if finished["type"] == FAILURE_TARGET:
        status.setdefault("conditions", []).append(finished)
        return new_condition(FAILED, "True", finished["reason"], finished["message"], rfc3339(now))
    if finished["type"] == SUCCESS_CRITERIA_MET:
        if _true(status, SUCCESS_CRITERIA_MET) is None:
            status.setdefault("conditions", []).append(finished)
        return new_condition(COMPLETE, "True", finished.get("reason", ""), finished.get("message", ""), rfc3339(now))
    return finished


def enact_finished(status: dict, final: dict | None, terminating: int) -> bool:
    """enactJobFinished: the final condition (and for Complete the completionTime) once no
    pod is left uncounted or terminating. True when the Job has finished now."""
    if final is None or terminating > 0:
        return False
    unc = status.get("uncountedTerminatedPods") or {}
    if unc.get("succeeded") or unc.get("failed"):
        return False
    ensure_condition(status, final["type"], final["status"], final["reason"], final["message"],
                     final["lastTransitionTime"])
    if final["type"] == COMPLETE:
        status["completionTime"] = final["lastTransitionTime"]
    return True


# -- counting ------------------------------------------------------------------------------------
def status_of(job: dict) -> dict:
    """A working copy of the Job's status: counters as ints, its own lists."""
    s = job.get("status") or {}
    unc = s.get("uncountedTerminatedPods") or {}
    out = dict(s)
    out.update(active=int(s.get("active") or 0), succeeded=int(s.get("succeeded") or 0),
               failed=int(s.get("failed") or 0), conditions=[dict(c) for c in s.get("conditions") or ()],
               uncountedTerminatedPods={"succeeded": list(unc.get("succeeded") or ()),
                                        "failed": list(unc.get("failed") or ())})
    return out


def status_json(status: dict) -> dict:
    """A working status as Kubernetes writes it: zero counters and empty lists left out, ready,
    terminating and uncountedTerminatedPods always there."""
    out = {}
    for k, v in status.items():
        if v is None or (k in ("active", "succeeded", "failed", "conditions") and not v):
            continue
        if k == "uncountedTerminatedPods":
            v = {kk: vv for kk, vv in v.items() if vv}
        out[k] = v
    return out


def track_finished(job: dict, pods: list, status: dict, expected_rm: set,
                   finished: dict | None) -> tuple[list, bool]:
    # (an Indexed Job's succeeded pods are counted by their index, in status.completedIndexes,
    # which is written before their finalizers go: they never enter uncountedTerminatedPods)
    """trackJobStatusAndRemoveFinalizers' first step: every finished pod still holding the
    finalizer goes into ``status``'s uncountedTerminatedPods (succeeded, or failed: deleted
    before succeeding, or still running when the Job fails). Returns the pods whose finalizer
    may now be removed (those, and every pod once the Job is finishing or being deleted) and
    whether MAX_UNCOUNTED stopped the walk (the rest waits for the next sync)."""
    unc = status["uncountedTerminatedPods"]
    succ, fail = set(unc["succeeded"]), set(unc["failed"])
    ending = finished is not None or bool(md(job).get("deletionTimestamp"))
    fails_all = finished is not None and finished["type"] != SUCCESS_CRITERIA_MET
    indexed = is_indexed(job)
    to_remove = []
    for p in pods:
        uid = md(p).get("uid")
        if not has_finalizer(p) or uid in expected_rm:
            continue
        failed = is_pod_failed(p, job)
        if not (ending or failed or phase(p) == "Succeeded"):
            continue
        to_remove.append(p)
        if phase(p) == "Succeeded" and uid not in fail:
            if uid not in succ and not indexed:
                unc["succeeded"].append(uid)
                succ.add(uid)
        elif (failed or fails_all) and uid not in fail:
            if not counts_as_failed(job, p):
                continue        # a podFailurePolicy Ignore rule: its finalizer goes, no count
            unc["failed"].append(uid)
            fail.add(uid)
        if len(unc["succeeded"]) + len(unc["failed"]) >= MAX_UNCOUNTED:
            return to_remove, True
    return to_remove, False


def clean_uncounted(status: dict, with_finalizer: set) -> bool:
    """cleanUncountedPodsWithoutFinalizers: the uncounted uids whose pods no longer hold the
    finalizer (removed, or the pod is gone) move into the counters. True when any did."""
    unc = status["uncountedTerminatedPods"]
    changed = False
    for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        keep = [u for u in unc[field] if u in with_finalizer]
        if len(keep) != len(unc[field]):
            status[counter] = int(status.get(counter) or 0) + len(unc[field]) - len(keep)
            unc[field] = keep
            changed = True
    return changed


def active_and_ready(pods: list) -> tuple[list, int]:
    """The active pods (not finished, not being deleted) and how many of them are Ready."""
    active = [p for p in pods if is_pod_active(p)]
    return active, sum(1 for p in active if is_pod_ready(p))


# -- TTL after finished --------------------------------------------------------------------------
def ttl_expires_at(job: dict) -> float | None:
    """When a finished Job with ttlSecondsAfterFinished is to be deleted (its Complete or Failed
    condition's time + the TTL); None when it is not (yet) to be, or is being deleted."""
    ttl = spec(job).get("ttlSecondsAfterFinished")
    cond = finished_condition(job)
    if ttl is None or cond is None or md(job).get("deletionTimestamp"):
        return None
    at = parse_time(cond.get("lastTransitionTime"))
    return None if at is None else at + int(ttl)
