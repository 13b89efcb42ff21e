"""LimitRanges and ResourceQuotas: validation, the LimitRanger and ResourceQuota admission of a
real ControlPlane in-process, the quota controller's status, and quantities printed as
Kubernetes prints them. The expected messages are those of the Kubernetes docs' walkthroughs
(admin/resource: cpu-constraints, memory-defaults, quota-mem-cpu)."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import pytest_asyncio

from skiff.agent.quantity import format_quantity
from skiff.api.errors import APIError
from skiff.api.protobuf import decode
from skiff.api.tables import cells
from skiff.api.validation import ValidationError, validate
from skiff.api.validation_limits import show_quantity
from skiff.controller.controlplane import ControlPlane
from skiff.controller.quota import ResourceQuotaController, missing_requests, object_usage
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402


def causes(obj) -> dict:
    with pytest.raises(ValidationError) as ei:
        validate(obj)
    return {c["field"]: c["message"] for c in ei.value.causes}


def limitrange(*items, name="lr"):
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name}, "spec": {"limits": list(items)}}


def pod(name, **resources):
    c = {"name": "c", "image": "busybox"}
    if resources:
        c["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def test_quantities_print_canonically():
    assert [format_quantity(q) for q in ("1.5", "1000m", "2048Mi", "1.5Gi", "0.5", "129e6", "0")] == \
        ["1500m", "1", "2Gi", "1536Mi", "500m", "129M", "0"]
    assert show_quantity(Decimal(629145600)) == "600Mi" and show_quantity(Decimal("0.4")) == "400m"


def test_limitrange_rules():
    cs = causes(limitrange({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"},
                            "maxLimitRequestRatio": {"cpu": "0.5"}},
                           {"type": "Pod", "default": {"cpu": "1"}}, {"type": "Container"}))
    assert cs == {
        "spec.limits[0].min[cpu]": 'Invalid value: "2": min value 2 is greater than max value 1',
        "spec.limits[0].maxLimitRequestRatio[cpu]": 'Invalid value: "500m": ratio 500m is less than 1',
        "spec.limits[1].default": "Forbidden: may not be specified when `type` is 'Pod'",
        "spec.limits[2].type": 'Duplicate value: "Container"'}
    with pytest.raises(ValidationError) as ei:
        validate(limitrange({"type": "Container", "default": {"memory": "256Mi"}, "defaultRequest": {"memory": "1Gi"},
                             "max": {"memory": "512Mi"}}))
    assert [(c["field"], c["message"]) for c in ei.value.causes] == [
        ("spec.limits[0].defaultRequest[memory]", 'Invalid value: "1Gi": default request value 1Gi is greater than '
                                                  'default limit value 256Mi'),
        ("spec.limits[0].defaultRequest[memory]", 'Invalid value: "1Gi": default request value 1Gi is greater than '
                                                  'max value 512Mi')]


def test_quota_and_container_resource_rules():
    q = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
         "spec": {"hard": {"pods": "1.5", "requests.cpu": "-1", "bogus": "1"}, "scopes": ["Forever"]}}
    assert causes(q) == {
        "spec.hard[pods]": 'Invalid value: "1500m": must be an integer',
        "spec.hard[requests.cpu]": 'Invalid value: "-1": must be greater than or equal to 0',
        "spec.hard[bogus]": 'Invalid value: "bogus": must be a standard resource for quota',
        "spec.scopes[0]": 'Unsupported value: "Forever": supported values: "Terminating", "NotTerminating", '
                          '"BestEffort", "NotBestEffort"'}
    assert causes(pod("p", requests={"cpu": "2"}, limits={"cpu": "500m"})) == {
        "spec.containers[0].resources.requests[cpu]": 'Invalid value: "2": must be less than or equal to cpu limit '
                                                      'of 500m'}


def test_what_objects_use():
    p = pod("p", requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "1"})
    p["spec"]["initContainers"] = [{"name": "i", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]
    u = object_usage("pods", p)
    assert (u["pods"], u["requests.cpu"], u["cpu"], u["requests.memory"], u["limits.cpu"]) == \
        (1, Decimal(2), Decimal(2), Decimal(64 * 2 ** 20), Decimal(1))
    svc = {"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}
    assert object_usage("services", svc) == {"count/services": 1, "services": 1, "services.nodeports": 2}
    assert object_usage("deployments", {}) == {"count/deployments.apps": 1}
    two = pod("p")
    two["spec"]["containers"].append({"name": "d", "image": "busybox", "resources": {"limits": {"cpu": "1"}}})
    assert missing_requests(two, {"limits.cpu", "requests.memory", "pods"}) == \
        "must specify limits.cpu for: c; requests.memory for: c,d"


def test_kubectl_create_quota_protobuf():
    # what `kubectl create quota q --hard=pods=2,requests.cpu=1` sends (k8s\0 + runtime.Unknown)
    def ld(num, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    def entry(k, v):
        return ld(1, k.encode()) + ld(2, ld(1, v.encode()))
    raw = ld(1, ld(1, b"q")) + ld(2, ld(1, entry("pods", "2")) + ld(1, entry("requests.cpu", "1")))
    body = b"k8s\x00" + ld(1, ld(1, b"v1") + ld(2, b"ResourceQuota")) + ld(2, raw)
    assert decode(body) == {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                            "spec": {"hard": {"pods": "2", "requests.cpu": "1"}}}


# -- admission and the controller, live ---------------------------------------------------------
@pytest_asyncio.fixture
async def cp(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()

    async def quota(client):
        await ResourceQuotaController(client, shared=shared, resync=1.0).run()
    cp.add_controller(quota)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


async def _forbidden(coro) -> str:
    with pytest.raises(APIError) as ei:
        await coro
    assert ei.value.code == 403
    return ei.value.message


@pytest.mark.asyncio
async def test_limit_ranger_defaults_and_bounds(cp):
    c = cp.local_client()
    await c.create("limitranges", limitrange({"type": "Container", "max": {"cpu": "800m"}, "min": {"cpu": "200m"},
                                              "defaultRequest": {"memory": "256Mi"}}), "default")
    lr = await c.get("limitranges", "lr", "default")
    assert lr["spec"]["limits"][0]["default"] == {"cpu": "800m"}                  # from max
    assert lr["spec"]["limits"][0]["defaultRequest"] == {"memory": "256Mi", "cpu": "800m"}
    made = await c.create("pods", pod("ok", requests={"cpu": "500m"}), "default")
    assert made["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "800m"},
                                                          "requests": {"cpu": "500m", "memory": "256Mi"}}
    assert made["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == \
        "LimitRanger plugin set: memory request for container c; cpu limit for container c"
    msg = await _forbidden(c.create("pods", pod("big", limits={"cpu": "1.5"}, requests={"cpu": "500m"}), "default"))
    assert msg == 'pods "big" is forbidden: maximum cpu usage per Container is 800m, but limit is 1500m'
    msg = await _forbidden(c.create("pods", pod("small", limits={"cpu": "800m"}, requests={"cpu": "100m"}),
                                    "default"))
    assert msg == 'pods "small" is forbidden: minimum cpu usage per Container is 200m, but request is 100m'
    with pytest.raises(APIError) as ei:     # a default limit under the pod's own request: the pod's 422
        await c.create("pods", pod("over", requests={"cpu": "900m"}), "default")
    assert ei.value.code == 422 and "must be less than or equal to cpu limit of 800m" in ei.value.message


@pytest.mark.asyncio
async def test_quota_refuses_past_hard_and_its_status_follows(cp):
    c = cp.local_client()
    await c.create("resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "mem"},
                                      "spec": {"hard": {"requests.memory": "1Gi", "limits.memory": "2Gi",
                                                        "pods": "2"}}}, "default")
    await c.create("pods", pod("a", requests={"memory": "600Mi"}, limits={"memory": "800Mi"}), "default")
    msg = await _forbidden(c.create("pods", pod("b", requests={"memory": "700Mi"}, limits={"memory": "800Mi"}),
                                    "default"))
    assert msg == ('pods "b" is forbidden: exceeded quota: mem, requested: requests.memory=700Mi, '
                   'used: requests.memory=600Mi, limited: requests.memory=1Gi')
    msg = await _forbidden(c.create("pods", pod("c"), "default"))
    assert msg == ('pods "c" is forbidden: failed quota: mem: must specify limits.memory for: c; '
                   'requests.memory for: c')

    async def status(used):
        q = await c.get("resourcequotas", "mem", "default")
        return q if (q.get("status") or {}).get("used") == used else None
    q = await wait_for(lambda: status({"requests.memory": "600Mi", "limits.memory": "800Mi", "pods": "1"}))
    assert q["status"]["hard"] == {"requests.memory": "1Gi", "limits.memory": "2Gi", "pods": "2"}
    assert cells("resourcequotas", q)[2:] == ["pods: 1/2, requests.memory: 600Mi/1Gi", "limits.memory: 800Mi/2Gi"]
    await c.delete("pods", "a", "default", grace_period_seconds=0)
    await wait_for(lambda: status({"requests.memory": "0", "limits.memory": "0", "pods": "0"}))


@pytest.mark.asyncio
async def test_concurrent_creates_cannot_both_take_the_last_unit(cp):
    c = cp.local_client()
    await c.create("resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "n"},
                                      "spec": {"hard": {"count/configmaps": "3"}}}, "default")
    results = await asyncio.gather(*(c.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                             "metadata": {"name": f"cm{i}"}}, "default")
                                     for i in range(8)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 3
    assert all(r.code == 403 for r in results if isinstance(r, APIError))


def test_skiffctl_describe_layouts():
    from skiff.cli.ctl.describe_limits import describe_limitrange, describe_quota
    q = {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {"pods": "2", "limits.memory": "2Gi"}},
         "status": {"hard": {"pods": "2", "limits.memory": "2Gi"}, "used": {"pods": "1", "limits.memory": "800Mi"}}}
    assert describe_quota(q).splitlines() == [
        "Name:          q", "Namespace:     ns", "Resource       Used   Hard", "--------       ----   ----",
        "limits.memory  800Mi  2Gi", "pods           1      2"]
    lr = {"metadata": {"name": "lr", "namespace": "ns"},
          "spec": {"limits": [{"type": "Container", "min": {"cpu": "200m"}, "max": {"cpu": "800m"},
                               "default": {"cpu": "800m"}, "defaultRequest": {"cpu": "800m"}}]}}
    assert describe_limitrange(lr).splitlines()[2:] == [
        "Type        Resource  Min   Max   Default Request  Default Limit  Max Limit/Request Ratio",
        "----        --------  ---   ---   ---------------  -------------  -----------------------",
        "Container   cpu       200m  800m  800m             800m           -"]
