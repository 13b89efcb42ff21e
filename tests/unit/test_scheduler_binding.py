"""The scheduler's cycles do not wait for their bindings: a backlog of pending pods is assumed
and bound in the background, many bindings at once (kube-scheduler's binding goroutines)."""
from __future__ import annotations

import asyncio

import pytest

from skiff.controller.scheduler import Scheduler
from skiff.controller.scheduler.scheduler import MAX_INFLIGHT_BINDS

pytestmark = pytest.mark.asyncio


def node(name):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(i):
    return {"metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]},
            "status": {}}


class SlowBindings:
    """An API client whose bindings are answered only once ``release`` is set (a store whose
    commits are slow); counts the bindings waiting at once."""

    def __init__(self):
        self.release = asyncio.Event()
        self.waiting = 0
        self.most = 0
        self.bound: list[tuple[str, str]] = []

    async def create(self, resource, obj, namespace=None, *, subresource=None, name=None, **kw):
        if subresource == "binding":
            self.waiting += 1
            self.most = max(self.most, self.waiting)
            await self.release.wait()
            self.waiting -= 1
            self.bound.append((name, obj["target"]["name"]))
        return obj

    async def patch(self, resource, name, patch, namespace=None, **kw):
        return patch


class Pods:
    def __init__(self, pods):
        self.cache = {f"default/{p['metadata']['name']}": p for p in pods}

    def get(self, key):
        return self.cache.get(key)


async def test_a_backlog_is_bound_with_many_bindings_in_flight():
    n = 300                             # more than the 64 bindings the scheduler used to allow
    assert MAX_INFLIGHT_BINDS >= n
    client = SlowBindings()
    s = Scheduler(client)
    for i in range(20):
        s.cache.set_node(node(f"n{i}"))
    s.pods = Pods([pod(i) for i in range(n)])
    for key in s.pods.cache:
        assert await s.reconcile(key) is None
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.waiting == n          # every cycle done, each binding waiting for its commit
    client.release.set()
    for _ in range(100):
        if len(client.bound) == n:
            break
        await asyncio.sleep(0.01)
    assert len(client.bound) == n and s.bound == n
    assert len({name for name, _ in client.bound}) == n
    await s.recorder.close(1)


async def test_the_inflight_bindings_are_capped():
    client = SlowBindings()
    s = Scheduler(client, max_inflight_binds=5)
    s.cache.set_node(node("n0"))
    s.pods = Pods([pod(i) for i in range(8)])
    keys = list(s.pods.cache)
    for key in keys[:5]:
        await s.reconcile(key)
    sixth = asyncio.create_task(s.reconcile(keys[5]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.waiting == 5 and not sixth.done()     # the sixth cycle waits for a slot
    client.release.set()
    assert await asyncio.wait_for(sixth, 2) is None
    for _ in range(100):
        if len(client.bound) == 6:
            break
        await asyncio.sleep(0.01)
    assert len(client.bound) == 6
    await s.recorder.close(1)


async def test_node_changes_retry_each_unschedulable_pod_once_until_it_fails_again():
    """A node change retries the pods that failed: at once when their backoff since the failure
    is over (kube-scheduler's activeQ), else when it is over (its backoffQ). A thousand changes
    in a row (a label put on every node) cost one retry each, not one per change."""
    import time
    s = Scheduler(SlowBindings())
    s.cache.set_node(node("n0"))
    pods = [pod(i) for i in range(50)]
    for p in pods:
        p["spec"]["nodeSelector"] = {"pool": "open"}
    s.pods = Pods(pods)
    for key in s.pods.cache:
        assert await s.reconcile(key) == s.retry_interval     # unschedulable: no node matches
    assert len(s.unschedulable) == 50 and set(s._parked) == set(s.pods.cache)
    calls = []
    real = s.queue.add_after
    s.queue.add_after = lambda key, delay: (calls.append((key, delay)), real(key, delay))
    for key in list(s._parked)[:10]:           # these failed 5 s ago: backoff (1 s) over
        s._parked[key] -= 5.0
    for i in range(1, 200):
        labelled = node(f"n{i}")
        labelled["metadata"]["labels"]["pool"] = "open"
        s._on_node("ADDED", labelled, None)
    assert sorted(k for k, _ in calls) == sorted(s.pods.cache)        # each pod once
    assert sum(1 for _, d in calls if d <= 0) == 10                     # those at once
    assert all(0.9 < d <= 1.0 for _, d in calls if d > 0)               # the others after their 1 s
    assert len(s.queue) == 10 and len(s.queue._delayed) == 40
    # a pod that fails again is retried by the next change (its backoff doubled: 2 s)
    s.unschedulable["default/p0"] = 2
    s._parked["default/p0"] = time.monotonic()
    s._on_node("MODIFIED", node("n0"), node("n0"))         # nothing changed: no retry
    s._on_node("ADDED", node("n500"), None)
    assert [k for k, _ in calls].count("default/p0") == 2 and len(calls) == 51
    assert 1.9 < calls[-1][1] <= 2.0
    s.queue.shutdown()
    await s.recorder.close(1)
