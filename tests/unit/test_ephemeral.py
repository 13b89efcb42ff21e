"""Ephemeral containers (kubectl debug) in the API: the pods/ephemeralcontainers subresource of a
real ControlPlane in-process (only additions, nothing else of the pod changes), their rules, and
their statuses in the agent's pod status."""
from __future__ import annotations

import pytest
import pytest_asyncio

from skiff.agent.status import pod_status
from skiff.api.errors import APIError
from skiff.controller.controlplane import ControlPlane

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}
DBG = {"name": "dbg", "image": "busybox", "targetContainerName": "app", "stdin": True, "tty": True}


@pytest_asyncio.fixture
async def c(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    await cp.start()
    try:
        yield cp.local_client()
    finally:
        await cp.stop()


async def _invalid(coro) -> str:
    with pytest.raises(APIError) as ei:
        await coro
    assert ei.value.code == 422, ei.value.message
    return ei.value.message


@pytest.mark.asyncio
async def test_ephemeral_containers_are_added_through_their_subresource(c):
    await c.create("pods", POD, "default")
    out = await c.patch("pods", "web", {"spec": {"ephemeralContainers": [DBG], "containers": [
        {"name": "app", "image": "other"}]}}, "default", patch_type="strategic", subresource="ephemeralcontainers")
    eph = out["spec"]["ephemeralContainers"]
    assert [e["name"] for e in eph] == ["dbg"] and eph[0]["terminationMessagePolicy"] == "File"
    assert out["spec"]["containers"][0]["image"] == "busybox"     # only ephemeralContainers is taken
    assert (await c.get("pods", "web", "default", subresource="ephemeralcontainers"))["metadata"]["name"] == "web"
    msg = await _invalid(c.patch("pods", "web", {"spec": {"ephemeralContainers": [{**DBG, "image": "alpine"}]}},
                                 "default", patch_type="merge", subresource="ephemeralcontainers"))
    assert 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be changed' in msg
    msg = await _invalid(c.patch("pods", "web", {"spec": {"ephemeralContainers": []}}, "default",
                                 patch_type="merge", subresource="ephemeralcontainers"))
    assert 'existing ephemeral containers "dbg" may not be removed' in msg
    bad = {"name": "x", "image": "busybox", "ports": [{"containerPort": 80}], "targetContainerName": "nope",
           "readinessProbe": {"exec": {"command": ["true"]}}}
    msg = await _invalid(c.patch("pods", "web", {"spec": {"ephemeralContainers": [DBG, bad]}}, "default",
                                 patch_type="merge", subresource="ephemeralcontainers"))
    for m in ("spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container",
              "spec.ephemeralContainers[1].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
              'spec.ephemeralContainers[1].targetContainerName: Not found: "nope"'):
        assert m in msg
    msg = await _invalid(c.patch("pods", "web", {"spec": {"ephemeralContainers": [DBG, {**DBG}]}}, "default",
                                 patch_type="merge", subresource="ephemeralcontainers"))
    assert 'spec.ephemeralContainers[1].name: Duplicate value: "dbg"' in msg
    # not through the pod itself, and not on create
    msg = await _invalid(c.patch("pods", "web", {"spec": {"ephemeralContainers": [DBG, {**DBG, "name": "two"}]}},
                                 "default", patch_type="strategic"))
    assert "pod updates may not change fields" in msg
    msg = await _invalid(c.create("pods", {**POD, "metadata": {"name": "new"},
                                           "spec": {**POD["spec"], "ephemeralContainers": [DBG]}}, "default"))
    assert "spec.ephemeralContainers: Forbidden: cannot be set on create" in msg


def test_ephemeral_statuses_are_reported_never_ready():
    pod = {"metadata": {"name": "web", "uid": "u"},
           "spec": {"containers": [{"name": "app", "image": "busybox"}], "ephemeralContainers": [DBG]}}
    st = pod_status(pod, None, [], {}, True, "10.0.0.1", None)
    (e,) = st["ephemeralContainerStatuses"]
    assert (e["name"], e["ready"], e["state"]) == ("dbg", False, {"waiting": {"reason": "ContainerCreating"}})
    assert "started" not in e
