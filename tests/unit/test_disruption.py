"""PodDisruptionBudgets and the pods/eviction subresource, against a real ControlPlane in-process
with the disruption controller (the test plays the kubelet: it marks pods Ready)."""
from __future__ import annotations

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.tables import cells
from skiff.api.validation import ValidationError, validate
from skiff.controller.controlplane import ControlPlane
from skiff.controller.disruption import EVICTION_DENIED, DisruptionController, budget_status
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402


def pod(name, ready=True, labels=None, owner=None, phase="Running"):
    md = {"name": name, "namespace": "default", "labels": labels or {"app": "web"}}
    if owner:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "uid": owner, "controller": True, "name": "rs",
                                  "apiVersion": "apps/v1"}]
    return {"metadata": md, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(**spec):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def test_budget_arithmetic():
    pods = [pod("a", owner="rs1"), pod("b", owner="rs1"), pod("c", ready=False, owner="rs1"),
            pod("d", phase="Succeeded")]
    scale = lambda ref: 4 if ref.get("uid") == "rs1" else None  # noqa: E731
    st = budget_status(pdb(minAvailable="50%"), pods, scale, 0)
    assert (st["expectedPods"], st["currentHealthy"], st["desiredHealthy"], st["disruptionsAllowed"]) == (4, 2, 2, 0)
    assert st["conditions"][0]["reason"] == "InsufficientPods"
    st = budget_status(pdb(maxUnavailable=1), pods, lambda ref: 2, 0)
    assert (st["desiredHealthy"], st["disruptionsAllowed"]) == (1, 1)
    st = budget_status(pdb(minAvailable=1), pods, scale, 0)
    assert st["disruptionsAllowed"] == 1 and st["conditions"][0]["reason"] == "SufficientPods"
    assert cells("poddisruptionbudgets", {**pdb(minAvailable=1), "status": st})[:4] == ["web", "1", "N/A", 1]


class _Inf:
    def __init__(self, *objs):
        self.objs = list(objs)

    def list(self):
        return self.objs


def test_scale_finders_count_a_deployment_once_across_its_replicasets():
    """getPodDeployment: pods of two ReplicaSets of one Deployment (mid-rollout) expect the
    Deployment's replicas, not the sum of its ReplicaSets'; a bare ReplicaSet, a
    ReplicationController and a StatefulSet give their own."""
    ctl = DisruptionController(None)
    dref = {"kind": "Deployment", "uid": "d1", "controller": True, "name": "web", "apiVersion": "apps/v1"}
    rs = lambda uid, n, owner=None: {"metadata": {"uid": uid, "ownerReferences": [owner] if owner else []},  # noqa: E731
                                     "spec": {"replicas": n}}
    ctl.scalers = {"ReplicaSet": _Inf(rs("rs-old", 2, dref), rs("rs-new", 2, dref), rs("rs-bare", 5)),
                   "Deployment": _Inf(rs("d1", 3)), "ReplicationController": _Inf(rs("rc1", 4)),
                   "StatefulSet": _Inf(rs("s1", 6))}

    def owned(name, kind, uid):
        p = pod(name)
        p["metadata"]["ownerReferences"] = [{"kind": kind, "uid": uid, "controller": True, "name": "x"}]
        return p
    pods = [owned("a", "ReplicaSet", "rs-old"), owned("b", "ReplicaSet", "rs-new"), owned("c", "ReplicaSet", "rs-new")]
    assert budget_status(pdb(minAvailable=1), pods, ctl._scale_of, 0)["expectedPods"] == 3
    for kind, uid, n in (("ReplicaSet", "rs-bare", 5), ("ReplicationController", "rc1", 4), ("StatefulSet", "s1", 6)):
        assert budget_status(pdb(minAvailable=1), [owned("a", kind, uid), owned("b", kind, uid)],
                             ctl._scale_of, 0)["expectedPods"] == n
    # an unknown controller: each pod counts itself
    assert budget_status(pdb(minAvailable=1), [owned("a", "Job", "j1"), owned("b", "Job", "j1")],
                         ctl._scale_of, 0)["expectedPods"] == 2


def test_validation():
    with pytest.raises(ValidationError) as ei:
        validate(pdb(minAvailable="150%", maxUnavailable=1))
    got = {c["field"]: c["message"] for c in ei.value.causes}
    assert got["spec"].endswith("minAvailable and maxUnavailable cannot be both set")
    assert got["spec.minAvailable"] == 'Invalid value: "150%": must not be greater than 100%'


@pytest_asyncio.fixture
async def c(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()

    async def disruption(client):
        await DisruptionController(client, shared=shared).run()
    cp.add_controller(disruption)
    await cp.start()
    try:
        yield cp.local_client()
    finally:
        await cp.stop()


async def _make_pod(c, name, labels=None):
    await c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or
                                                                          {"app": "web"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")
    await c.patch("pods", name, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
                  "default", subresource="status")


async def _evict(c, name):
    return await c.create("pods", {"apiVersion": "policy/v1", "kind": "Eviction",
                                   "metadata": {"name": name, "namespace": "default"}}, "default",
                          subresource="eviction", name=name)


@pytest.mark.asyncio
async def test_eviction_honours_the_budget(c):
    for n in ("a", "b", "c"):
        await _make_pod(c, n)
    await _make_pod(c, "other", {"app": "db"})
    await c.create("poddisruptionbudgets", pdb(minAvailable=2), "default")

    async def allowed(n):
        st = (await c.get("poddisruptionbudgets", "web", "default")).get("status") or {}
        return st if st.get("disruptionsAllowed") == n and st.get("currentHealthy") == 3 - (1 - n) * 0 else None
    await wait_for(lambda: allowed(1))
    await _evict(c, "a")                                   # one disruption allowed: a goes
    with pytest.raises(APIError):
        await c.get("pods", "a", "default")
    with pytest.raises(APIError) as ei:                    # the budget is used up
        await _evict(c, "b")
    assert ei.value.code == 429 and ei.value.message == EVICTION_DENIED
    assert ei.value.status["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert (await c.get("pods", "b", "default"))["metadata"]["name"] == "b"
    await _evict(c, "other")                               # no budget covers it: deleted
    with pytest.raises(APIError):
        await c.get("pods", "other", "default")
    await _make_pod(c, "d")                                # a replacement is Ready: one more may go
    st = await wait_for(lambda: _status(c, lambda s: s.get("disruptionsAllowed") == 1 and s.get("currentHealthy") == 3))
    assert st["desiredHealthy"] == 2 and "a" not in (st.get("disruptedPods") or {})
    await _evict(c, "b")


async def _status(c, pred):
    st = (await c.get("poddisruptionbudgets", "web", "default")).get("status") or {}
    return st if pred(st) else None
