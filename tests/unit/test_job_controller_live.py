"""The Job, TTL-after-finished and garbage-collector controllers against a real ControlPlane
in-process (LocalClient). No nodes, no agents: the test is the kubelet, writing the pods'
/status (Running, Succeeded, Failed, restarts). The Job controller's back-off after failures is
shortened (0.3 s doubling) so that the tests are quick."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.timefmt import rfc3339
from skiff.controller.controlplane import ControlPlane
from skiff.controller.gc import GarbageCollector
from skiff.controller.job import JobController
from skiff.controller.ttlafterfinished import TTLAfterFinishedController
from skiff.controller.workloads import joblogic as J
from skiff.controller.workloads.logic import get_condition, parse_time
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio

BACKOFF = (0.3, 5.0)


class Env:
    def __init__(self, cp):
        self.cp = cp
        self.c = cp.local_client()

    async def create(self, name="x", restart="Never", **spec):
        j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
             "spec": {"template": {"spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 0,
                                            "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}
        return await self.c.create("jobs", j, "default")

    async def job(self, name="x"):
        return await self.c.get("jobs", name, "default")

    async def pods(self, name="x"):
        items = (await self.c.list("pods", "default", label_selector=f"job-name={name}"))["items"]
        return sorted(items, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])

    async def active(self, name="x"):
        return [p for p in await self.pods(name) if p["status"].get("phase") in ("Pending", "Running")
                and not p["metadata"].get("deletionTimestamp")]

    async def kubelet(self, pod, phase, exit_code=None, restarts=0):
        """Write the pod's status as its kubelet would (to the microsecond: the back-off is
        counted from finishedAt, and it is short here)."""
        now = time.time()
        t = rfc3339(now)[:-1] + f"{now % 1:.6f}"[1:] + "Z"
        state = {"running": {"startedAt": t}} if phase == "Running" else \
            {"terminated": {"exitCode": exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1),
                            "reason": "Completed" if phase == "Succeeded" else "Error", "finishedAt": t}}
        await self.c.patch("pods", pod["metadata"]["name"], {"status": {
            "phase": phase, "containerStatuses": [{"name": "c", "image": "busybox", "restartCount": restarts,
                                                   "ready": phase == "Running", "state": state}]}},
            "default", subresource="status")

    async def condition(self, typ, name="x"):
        return get_condition((await self.job(name)).get("status"), typ)

    async def events(self, name="x", reason=None):
        items = (await self.c.list("events", "default", field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if reason is None or e["reason"] == reason]

    async def status(self, name="x", **want):
        st = (await self.job(name)).get("status") or {}
        return st if all(int(st.get(k) or 0) == v for k, v in want.items()) else None


@pytest_asyncio.fixture
async def env(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()

    async def job(client):
        await JobController(client, shared=shared, pod_failure_backoff=BACKOFF).run()

    async def ttl(client):
        await TTLAfterFinishedController(client, shared=shared).run()

    async def gc(client):
        await GarbageCollector(client, shared=shared).run()
    for f in (job, ttl, gc):
        cp.add_controller(f)
    await cp.start()
    try:
        yield Env(cp)
    finally:
        await cp.stop()


async def test_completions_with_parallelism(env):
    await env.create(completions=3, parallelism=2)
    most = 0
    for _ in range(3):
        pods = await wait_for(env.active)
        most = max(most, len(pods))
        assert all(J.TRACKING_FINALIZER in p["metadata"]["finalizers"] for p in pods)
        await env.kubelet(pods[0], "Succeeded")
        await asyncio.sleep(0.3)
        most = max(most, len(await env.active()))
    assert most == 2                            # min(parallelism, completions - succeeded)
    st = await wait_for(lambda: env.status(succeeded=3))
    j = await wait_for(lambda: env.condition("Complete"))
    st = (await env.job()).get("status")
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"), ("Complete", "True", "CompletionsReached")]
    assert st["completionTime"] == j["lastTransitionTime"] and st["startTime"] <= st["completionTime"]
    assert (st["ready"], st["terminating"], st["uncountedTerminatedPods"], st.get("active", 0)) == (0, 0, {}, 0)
    pods = await env.pods()
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    uid = (await env.job())["metadata"]["uid"]
    for p in pods:      # counted: the finalizer is gone; the Job stays their controller
        assert not p["metadata"].get("finalizers")
        assert p["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "x",
                                                     "uid": uid, "controller": True, "blockOwnerDeletion": True}]
        assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == uid
    created = await wait_for(lambda: _n(env.events(reason="SuccessfulCreate"), 3))
    assert sorted(e["message"] for e in created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    done = await wait_for(lambda: env.events(reason="Completed"))
    assert done[0]["message"] == "Job completed" and done[0]["source"]["component"] == "job-controller"


async def _n(coro, n):
    items = await coro
    return items if len(items) >= n else None


async def test_failures_back_off_then_the_backoff_limit(env):
    await env.create(backoffLimit=2)
    created = []
    for i in range(3):
        (p,) = await wait_for(env.active)
        created.append(time.monotonic())
        await env.kubelet(p, "Failed")
        if i < 2:
            await wait_for(lambda: env.status(failed=i + 1))
    # replaced after the back-off: 0.3 s after the first failure, 0.6 s after the second
    assert created[1] - created[0] >= 0.25 and created[2] - created[1] >= 0.55
    await wait_for(lambda: env.condition("Failed"))
    st = (await env.job()).get("status")
    assert st["failed"] == 3 and "succeeded" not in st and "completionTime" not in st
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    await asyncio.sleep(0.5)
    pods = await env.pods()
    assert len(pods) == 3 and [p["status"]["phase"] for p in pods] == ["Failed"] * 3
    ev = await wait_for(lambda: env.events(reason="BackoffLimitExceeded"))
    assert ev[0]["type"] == "Warning" and ev[0]["message"] == "Job has reached the specified backoff limit"


async def test_a_deleted_pod_counts_once_as_failed(env):
    await env.create()
    (p,) = await wait_for(env.active)
    await env.kubelet(p, "Running")
    await env.c.delete("pods", p["metadata"]["name"], "default")
    await wait_for(lambda: env.status(failed=1))
    # the finalizer held the pod until it was counted; then it went; a replacement runs
    (q,) = await wait_for(env.active)
    assert q["metadata"]["name"] != p["metadata"]["name"]
    await wait_for(lambda: _gone(env, p))
    await env.kubelet(q, "Succeeded")
    await wait_for(lambda: env.condition("Complete"))
    st = (await env.job())["status"]
    assert (st["failed"], st["succeeded"]) == (1, 1)


async def _gone(env, p):
    try:
        await env.c.get("pods", p["metadata"]["name"], "default")
    except APIError as e:
        return e.code == 404
    return False


async def test_active_deadline(env):
    await env.create(parallelism=2, completions=4, activeDeadlineSeconds=2)
    c = await wait_for(lambda: env.condition("Failed"), 6)
    assert (c["reason"], c["message"]) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    st = (await env.job())["status"]
    assert st["failed"] == 2 and st.get("active", 0) == 0     # the running pods were stopped, and count
    assert [x["type"] for x in st["conditions"]] == ["FailureTarget", "Failed"]
    await wait_for(lambda: _none(env.pods()))
    assert await wait_for(lambda: env.events(reason="DeadlineExceeded"))


async def _none(coro):
    return not await coro


async def test_suspend_and_resume(env):
    await env.create(suspend=True, parallelism=2, completions=2)
    c = await wait_for(lambda: env.condition("Suspended"))
    assert (c["status"], c["reason"], c["message"]) == ("True", "JobSuspended", "Job suspended")
    st = (await env.job())["status"]
    assert "startTime" not in st and await env.pods() == []
    await env.c.patch("jobs", "x", {"spec": {"suspend": False}}, "default")
    await wait_for(lambda: _n(env.active(), 2))
    c = await wait_for(lambda: _resumed(env))
    assert (c["status"], c["message"]) == ("False", "Job resumed")
    assert (await env.job())["status"]["startTime"]
    await env.c.patch("jobs", "x", {"spec": {"suspend": True}}, "default")
    await wait_for(lambda: _none(env.pods()))       # deleted, without the finalizer: not failures
    st = await wait_for(lambda: env.status(active=0))
    assert st.get("failed", 0) == 0 and get_condition(st, "Suspended")["status"] == "True"
    reasons = [e["reason"] for e in await env.events()]
    assert {"Suspended", "Resumed", "SuccessfulDelete"} <= set(reasons)


async def _resumed(env):
    c = await env.condition("Suspended")
    return c if c and c["reason"] == "JobResumed" else None


async def test_parallelism_without_completions(env):
    await env.create(parallelism=2)
    a, b = await wait_for(lambda: _n(env.active(), 2))
    await env.kubelet(a, "Succeeded")
    await wait_for(lambda: env.status(succeeded=1))
    await asyncio.sleep(0.3)
    assert [p["metadata"]["name"] for p in await env.active()] == [b["metadata"]["name"]]   # no new one
    assert await env.condition("Complete") is None          # not while b runs
    await env.kubelet(b, "Succeeded")
    await wait_for(lambda: env.condition("Complete"))
    assert (await env.job())["status"]["succeeded"] == 2


async def test_restarts_count_with_restart_policy_on_failure(env):
    await env.create(restart="OnFailure", backoffLimit=2)
    (p,) = await wait_for(env.active)
    await env.kubelet(p, "Running", restarts=1)
    await asyncio.sleep(0.3)
    assert await env.condition("FailureTarget") is None
    await env.kubelet(p, "Running", restarts=2)
    c = await wait_for(lambda: env.condition("Failed"))
    assert c["reason"] == "BackoffLimitExceeded"
    assert (await env.job())["status"]["failed"] == 1       # the running pod, stopped
    await wait_for(lambda: _none(env.pods()))


async def test_ttl_after_finished_deletes_the_job_and_its_pods(env):
    await env.create(ttlSecondsAfterFinished=1)
    (p,) = await wait_for(env.active)
    await env.kubelet(p, "Succeeded")
    done = await wait_for(lambda: env.condition("Complete"))
    t0 = time.time()
    await wait_for(lambda: _no_job(env), 10)
    assert time.time() >= parse_time(done["lastTransitionTime"]) + 1 - 0.01 and time.time() - t0 < 9
    await wait_for(lambda: _none(env.pods()))


async def _no_job(env, name="x"):
    try:
        await env.job(name)
    except APIError as e:
        return e.code == 404
    return False


async def test_deleting_a_job_deletes_its_pods(env):
    await env.create(parallelism=2, completions=3)
    pods = await wait_for(lambda: _n(env.active(), 2))
    await env.kubelet(pods[0], "Running")
    await env.c.delete("jobs", "x", "default", propagation_policy="Background")
    # their finalizers are removed (the Job is gone) and the garbage collector deletes them
    await wait_for(lambda: _none(env.pods()), 10)


async def test_manual_selector_adopts_an_orphan(env):
    await env.c.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "loose", "labels": {"app": "batch", "job-name": "x"}},
                                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
                       "default")
    await env.create(manualSelector=True, selector={"matchLabels": {"app": "batch"}},
                     template={"metadata": {"labels": {"app": "batch", "job-name": "x"}},
                               "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}})
    p = await wait_for(lambda: _adopted(env))
    assert J.TRACKING_FINALIZER in p["metadata"]["finalizers"]
    await asyncio.sleep(0.3)
    assert [q["metadata"]["name"] for q in await env.pods()] == ["loose"]    # no other pod: it runs
    await env.kubelet(p, "Succeeded")
    await wait_for(lambda: env.condition("Complete"))


async def _adopted(env):
    p = await env.c.get("pods", "loose", "default")
    return p if p["metadata"].get("ownerReferences") else None


async def test_indexed_job_runs_each_index_once(env):
    await env.create(completions=4, parallelism=2, completionMode="Indexed")
    pods = await wait_for(lambda: _n(env.active(), 2))
    index = lambda p: p["metadata"]["annotations"][J.INDEX_KEY]  # noqa: E731
    assert sorted(index(p) for p in pods) == ["0", "1"]            # the lowest indexes first
    for p in pods:
        i = index(p)
        assert p["metadata"]["name"].startswith(f"x-{i}-") and p["spec"]["hostname"] == f"x-{i}"
        assert p["metadata"]["labels"][J.INDEX_KEY] == i
        assert p["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    one = next(p for p in pods if index(p) == "1")
    await env.kubelet(one, "Failed")                               # index 1 fails: it gets a new pod
    await env.kubelet(next(p for p in pods if index(p) == "0"), "Succeeded")
    st = await wait_for(lambda: env.status(succeeded=1, failed=1))
    assert st["completedIndexes"] == "0"
    for _ in range(3):
        active = await wait_for(env.active)
        await env.kubelet(active[0], "Succeeded")
        await asyncio.sleep(0.2)
    await wait_for(lambda: env.condition("Complete"))
    st = (await env.job()).get("status")
    assert (st["succeeded"], st["failed"], st["completedIndexes"]) == (4, 1, "0-3")
    done = [p for p in await env.pods() if p["status"]["phase"] == "Succeeded"]
    assert sorted(index(p) for p in done) == ["0", "1", "2", "3"]  # one success for each index
    assert all(not p["metadata"].get("finalizers") for p in await env.pods())


async def test_pod_failure_policy_ignores_then_fails_the_job(env):
    await env.create(backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]})
    (p,) = await wait_for(env.active)
    await env.kubelet(p, "Failed", exit_code=3)          # ignored: replaced, not counted (backoffLimit 0)
    (q,) = await wait_for(lambda: _other(env.active(), p))
    st = (await env.job()).get("status")
    assert int(st.get("failed") or 0) == 0 and not (await env.condition("FailureTarget"))
    await env.kubelet(q, "Failed", exit_code=42)         # FailJob
    await wait_for(lambda: env.condition("Failed"))
    st = (await env.job()).get("status")
    msg = f"Container c for pod default/{q['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0"
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("FailureTarget", "PodFailurePolicy", msg), ("Failed", "PodFailurePolicy", msg)]
    assert st["failed"] == 1
    ev = await wait_for(lambda: env.events(reason="PodFailurePolicy"))
    assert ev[0]["type"] == "Warning" and ev[0]["message"] == msg


async def _other(coro, p):
    items = [x for x in await coro if x["metadata"]["uid"] != p["metadata"]["uid"]]
    return items or None


def _ix(p):
    return p["metadata"]["annotations"][J.INDEX_KEY]


async def test_backoff_limit_per_index_fails_only_that_index(env):
    await env.create(completions=3, parallelism=3, completionMode="Indexed", backoffLimitPerIndex=1)
    pods = await wait_for(lambda: _n(env.active(), 3))
    by = {_ix(p): p for p in pods}
    assert all(p["metadata"]["annotations"][J.FAILURE_COUNT_KEY] == "0" for p in pods)
    await env.kubelet(by["1"], "Failed")                     # index 1: first failure, retried
    retry = await wait_for(lambda: _index_pod(env, "1", by["1"]))
    assert retry["metadata"]["annotations"][J.FAILURE_COUNT_KEY] == "1"
    await env.kubelet(retry, "Failed")                       # second: index 1 has failed
    await env.kubelet(by["0"], "Succeeded")
    await env.kubelet(by["2"], "Succeeded")
    await wait_for(lambda: env.condition("Failed"))
    st = (await env.job()).get("status")
    assert (st["completedIndexes"], st["failedIndexes"], st["failed"], st["succeeded"]) == ("0,2", "1", 2, 2)
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [("FailureTarget", "FailedIndexes"),
                                                                   ("Failed", "FailedIndexes")]
    assert len([p for p in await env.pods() if _ix(p) == "1"]) == 2     # not retried a third time


async def _index_pod(env, ix, old):
    for p in await env.active():
        if _ix(p) == ix and p["metadata"]["uid"] != old["metadata"]["uid"]:
            return p
    return None


async def test_success_policy_completes_early(env):
    await env.create(completions=4, parallelism=4, completionMode="Indexed",
                     successPolicy={"rules": [{"succeededIndexes": "0", "succeededCount": 1}]})
    pods = await wait_for(lambda: _n(env.active(), 4))
    await env.kubelet(next(p for p in pods if _ix(p) == "0"), "Succeeded")
    await wait_for(lambda: env.condition("Complete"))
    st = (await env.job()).get("status")
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"),
        ("Complete", "SuccessPolicy", "Matched rules at index 0")]
    assert st["completedIndexes"] == "0" and int(st.get("failed") or 0) == 0   # the others were stopped, uncounted
    assert not await env.active()
