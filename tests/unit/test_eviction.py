"""Taint-based eviction: pods leave an unreachable node once their toleration runs out."""
from __future__ import annotations

import asyncio
import time

import pytest

from skiff.controller.nodelifecycle import TAINT_UNREACHABLE, toleration_seconds
from tests.unit.test_controllers_live import GRACE, cluster, wait_for  # noqa: F401

pytestmark = pytest.mark.asyncio


def tol(seconds=None, key=TAINT_UNREACHABLE, effect="NoExecute", op="Exists"):
    t = {"key": key, "operator": op, "effect": effect}
    if seconds is not None:
        t["tolerationSeconds"] = seconds
    return t


@pytest.mark.parametrize("tols,want", [
    ([], None), ([tol(300)], 300), ([tol()], float("inf")), ([{"operator": "Exists"}], float("inf")),
    ([tol(5, key="node.kubernetes.io/not-ready")], None), ([tol(5, effect="NoSchedule")], None),
    ([tol(5), tol(60)], 60)])
async def test_toleration_seconds(tols, want):
    assert toleration_seconds({"spec": {"tolerations": tols}}, TAINT_UNREACHABLE) == want


async def test_pods_evicted_when_their_toleration_runs_out(cluster):  # noqa: F811
    await cluster.add_node("n1")
    for name, tols in (("quick", [tol(1)]), ("patient", [tol(600)]), ("forever", [tol()])):
        await cluster.c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                        "spec": {"tolerations": tols, "containers": [
                                            {"name": "c", "image": "busybox"}]}}, "default")
    for name in ("quick", "patient", "forever"):
        await wait_for(lambda: cluster.node_of(name))
    cluster.alive.discard("n1")            # the agent goes silent
    t0 = time.monotonic()

    async def evicted():
        return (await cluster.get("quick"))["metadata"].get("deletionTimestamp")
    await wait_for(evicted, timeout=GRACE + 6)
    took = time.monotonic() - t0
    assert took >= GRACE + 1 - 0.3, took    # not before the grace and the toleration have passed
    # the event is written in the background, after the deletion: wait for it
    evs = await wait_for(lambda: cluster.events("quick", "TaintManagerEviction"))
    assert evs[0]["message"] == "Marking for deletion Pod default/quick"
    await asyncio.sleep(1.0)
    for name in ("patient", "forever"):
        assert not (await cluster.get(name))["metadata"].get("deletionTimestamp")
