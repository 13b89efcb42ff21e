"""The HorizontalPodAutoscaler without a cluster: Kubernetes' replica arithmetic
(skiff.controller.hpa_calc), defaults and validation messages, v1 <-> v2 conversion, and the
`kubectl get hpa` cells."""
from __future__ import annotations

import copy

import pytest

from skiff.api import tables as T
from skiff.api.validation import ValidationError
from skiff.controller import hpa_calc as C
from skiff.controller.admission import admit
from skiff.controller.hpa import _go_seconds, milli, milli_quantity, pod_samples
from skiff.controller.hpa_v1 import to_v1, to_v2

NOW = 1_000_000.0


def ready_pod(name, usage, request=100, start=NOW - 3600, **kw):
    return C.PodSample(name, request=request, usage=usage, start=start, ready="True", ready_since=start + 5,
                       timestamp=NOW, window=15.0, **kw)


# ---------------------------------------------------------------- replicas from utilization

def test_desired_is_ceil_of_current_times_ratio():
    pods = [ready_pod("a", 150), ready_pod("b", 150)]          # 150% of requests, target 50%
    assert C.resource_replicas(2, 50, pods, "cpu", NOW) == (6, 150, 150)
    pods = [ready_pod("a", 20), ready_pod("b", 30)]            # 25% vs 50%: half
    assert C.resource_replicas(2, 50, pods, "cpu", NOW) == (1, 25, 25)


def test_tolerance_keeps_current():
    pods = [ready_pod("a", 54), ready_pod("b", 54)]            # ratio 1.08: within 0.1
    assert C.resource_replicas(2, 50, pods, "cpu", NOW)[0] == 2
    pods = [ready_pod("a", 56), ready_pod("b", 56)]            # ratio 1.12
    assert C.resource_replicas(2, 50, pods, "cpu", NOW)[0] == 3


def test_utilization_is_integer_percent_of_summed_requests():
    pods = [ready_pod("a", 100, request=200), ready_pod("b", 50, request=100)]
    _, util, raw = C.resource_replicas(2, 50, pods, "cpu", NOW)
    assert util == 50 and raw == 75


def test_missing_request_is_an_error_with_kubernetes_message():
    pods = [ready_pod("a", 100), C.PodSample("b", request=None, missing_request="sidecar", usage=5,
                                             start=NOW - 3600, ready="True", ready_since=NOW - 3000,
                                             timestamp=NOW, window=15)]
    with pytest.raises(C.MetricError, match="^missing request for cpu in container sidecar of Pod b$"):
        C.resource_replicas(2, 50, pods, "cpu", NOW)


def test_no_pods_and_no_metrics():
    with pytest.raises(C.MetricError, match="no pods returned by selector while calculating replica count"):
        C.resource_replicas(1, 50, [], "cpu", NOW)
    with pytest.raises(C.MetricError, match=r"did not receive metrics for targeted pods \(pods might be unready\)"):
        C.resource_replicas(1, 50, [C.PodSample("a", phase="Pending", request=100)], "cpu", NOW)


def test_missing_pods_count_as_zero_on_scale_up_and_full_on_scale_down():
    # up: 2 pods at 200% vs 100% target, one pod without metrics counted at 0 -> ratio 4/3
    pods = [ready_pod("a", 200), ready_pod("b", 200), C.PodSample("c", request=100, start=NOW - 3600)]
    assert C.resource_replicas(3, 100, pods, "cpu", NOW)[0] == 4
    # down: 2 pods at 10% vs 50% target; the missing one at 100% -> (10+10+100)/300 = 40% -> 0.8 -> 3 pods
    pods = [ready_pod("a", 10), ready_pod("b", 10), C.PodSample("c", request=100, start=NOW - 3600)]
    assert C.resource_replicas(3, 50, pods, "cpu", NOW)[0] == 3
    # ... and if that flips the direction, nothing changes: 2 x 40% + missing 100% = 60% vs 50%
    pods = [ready_pod("a", 40), ready_pod("b", 40), C.PodSample("c", request=100, start=NOW - 3600)]
    assert C.resource_replicas(3, 50, pods, "cpu", NOW)[0] == 3


def test_unready_pods_count_as_zero_on_scale_up():
    # one ready pod at 300%, one unready (Ready False within the initialization period) -> 3/2 -> 3
    young = C.PodSample("b", request=100, usage=300, start=NOW - 10, ready="False", ready_since=NOW - 10,
                        timestamp=NOW, window=15)
    assert C.resource_replicas(2, 100, [ready_pod("a", 300), young], "cpu", NOW)[0] == 3
    ready, unready, missing, ignored = C.group_pods(
        [ready_pod("a", 1), young, C.PodSample("p", phase="Pending"), C.PodSample("f", phase="Failed"),
         C.PodSample("d", deleting=True), C.PodSample("m", start=NOW - 1000)], True, NOW)
    assert (ready, unready, missing, ignored) == (1, {"b", "p"}, {"m"}, {"f", "d"})


def test_metric_taken_before_a_window_after_readiness_is_unready():
    p = C.PodSample("a", request=100, usage=100, start=NOW - 60, ready="True", ready_since=NOW - 5,
                    timestamp=NOW, window=15)
    assert C.group_pods([p], True, NOW)[1] == {"a"}
    assert C.group_pods([p], False, NOW)[0] == 1      # only CPU looks at readiness


def test_average_value_target():
    pods = [ready_pod("a", 300), ready_pod("b", 100)]
    assert C.average_value_replicas(2, 100, pods, "memory", NOW) == (4, 200)


# ---------------------------------------------------------------- normalization

def test_downscale_stabilization_keeps_highest_recent_recommendation():
    h = C.History()
    h.record_initial(4, NOW - 100)
    n = C.normalize(h, 4, 1, 1, 10, NOW)
    assert n.replicas == 4 and n.able_reason == "ScaleDownStabilized"
    assert (n.limited, n.limited_reason) == (False, "DesiredWithinRange")
    # 5 minutes later the old recommendations are out of the window
    n = C.normalize(h, 4, 1, 1, 10, NOW + 301)
    assert n.replicas == 1 and n.able_reason == "ReadyForNewScale"


def test_min_max_and_scale_up_limit():
    n = C.normalize(C.History(), 2, 12, 1, 10, NOW)
    assert (n.replicas, n.limited, n.limited_reason) == (4, True, "ScaleUpLimit")   # max(2*2, 4)
    n = C.normalize(C.History(), 5, 12, 1, 8, NOW)
    assert (n.replicas, n.limited_reason) == (8, "TooManyReplicas")
    assert n.limited_message == "the desired replica count is more than the maximum replica count"
    n = C.normalize(C.History(), 3, 1, 2, 8, NOW)
    assert (n.replicas, n.limited_reason) == (2, "TooFewReplicas")


def full(**b):
    from skiff.api.validation_hpa import scale_down_rules, scale_up_rules
    return {"scaleUp": scale_up_rules(b.get("scaleUp")), "scaleDown": scale_down_rules(b.get("scaleDown"))}


def test_behavior_stabilization_window_seconds():
    h = C.History()
    b = full(scaleDown={"stabilizationWindowSeconds": 60})
    h.record_initial(5, NOW)
    n = C.normalize_with_behavior(h, b, 5, 2, 1, 10, NOW + 30)
    assert n.replicas == 5 and n.able_reason == "ScaleDownStabilized"
    n = C.normalize_with_behavior(h, b, 5, 2, 1, 10, NOW + 61)
    assert n.replicas == 2 and n.able_reason == "ReadyForNewScale"
    # a zero window scales down at once
    h2 = C.History()
    h2.record_initial(5, NOW)
    assert C.normalize_with_behavior(h2, full(scaleDown={"stabilizationWindowSeconds": 0}), 5, 2, 1, 10,
                                     NOW + 1).replicas == 2


def test_behavior_policies_limit_the_rate():
    h = C.History()
    b = full(scaleUp={"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
             scaleDown={"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]})
    n = C.normalize_with_behavior(h, b, 2, 10, 1, 20, NOW)
    assert (n.replicas, n.limited_reason) == (3, "ScaleUpLimit")
    h.store_scale_event(b, 2, 3, NOW)
    n = C.normalize_with_behavior(h, b, 3, 10, 1, 20, NOW + 10)    # the period's budget is spent
    assert n.replicas == 3
    n = C.normalize_with_behavior(h, b, 3, 10, 1, 20, NOW + 61)
    assert n.replicas == 4
    n = C.normalize_with_behavior(C.History(), b, 8, 1, 1, 20, NOW)
    assert (n.replicas, n.limited_reason) == (4, "ScaleDownLimit")
    off = full(scaleUp={"selectPolicy": "Disabled"})
    assert C.normalize_with_behavior(C.History(), off, 2, 9, 1, 20, NOW).replicas == 2


# ---------------------------------------------------------------- pods and metrics as the controller sees them

def test_pod_samples_from_pods_and_pod_metrics():
    pods = [{"metadata": {"name": "a"}, "spec": {"containers": [
        {"name": "x", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "y", "resources": {"requests": {"cpu": "0.2"}}}]},
        "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}]}},
        {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "x"}]}, "status": {"phase": "Running"}}]
    metrics = [{"metadata": {"name": "a"}, "timestamp": "2026-01-01T00:10:00Z", "window": "1m0.5s",
                "containers": [{"name": "x", "usage": {"cpu": "150000000n", "memory": "1Ki"}},
                               {"name": "y", "usage": {"cpu": "50m", "memory": "2Ki"}}]}]
    a, b = pod_samples(pods, metrics, "cpu", None)
    assert (a.request, a.usage, a.ready, a.window) == (300, 200, "True", 60.5)
    assert a.timestamp - a.start == 600 and a.ready_since - a.start == 5
    assert (b.request, b.missing_request, b.usage) == (None, "x", None)
    only_y = pod_samples(pods, metrics, "cpu", "y")[0]
    assert (only_y.request, only_y.usage) == (200, 50)
    assert milli("1Ki") == 1024000 and milli_quantity(250) == "250m" and milli_quantity(3000) == "3"
    assert _go_seconds("15s") == 15 and _go_seconds("1.002s") == pytest.approx(1.002)


# ---------------------------------------------------------------- API: defaults, validation, v1

BASE = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}}


def causes(spec):
    obj = copy.deepcopy(BASE)
    obj["spec"].update(spec)
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c["message"] for c in ei.value.causes}


def test_defaults():
    obj = copy.deepcopy(BASE)
    obj["spec"]["behavior"] = {"scaleUp": {"stabilizationWindowSeconds": 30}}
    obj, _ = admit(obj)
    s = obj["spec"]
    assert s["minReplicas"] == 1
    assert s["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert s["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 30, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert s["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    plain, _ = admit(copy.deepcopy(BASE))
    assert "behavior" not in plain["spec"]


def test_validation_messages():
    c = causes({"minReplicas": 0, "maxReplicas": 0})
    assert c["spec.minReplicas"] == "Invalid value: 0: must be greater than or equal to 1"
    assert c["spec.maxReplicas"] == "Invalid value: 0: must be greater than 0"
    c = causes({"minReplicas": 4, "maxReplicas": 3})
    assert c["spec.maxReplicas"] == "Invalid value: 3: must be greater than or equal to `minReplicas`"
    c = causes({"scaleTargetRef": {"kind": "", "name": "a%b"}})
    assert c["spec.scaleTargetRef.kind"] == "Required value"
    assert c["spec.scaleTargetRef.name"] == "Invalid value: \"a%b\": may not contain '%'"
    c = causes({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                        "averageUtilization": 0}}}]})
    assert c["spec.metrics[0].resource.target.averageUtilization"] == "Invalid value: 0: must be greater than 0"
    c = causes({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]})
    assert c["spec.metrics[0].resource.target.averageUtilization"] == \
        "Required value: must set either a target raw value or a target utilization"
    c = causes({"metrics": [{"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                    "averageUtilization": 5}}}]})
    assert c["spec.metrics[0].pods"] == "Required value: must populate information for the given metric source"
    c = causes({"behavior": {"scaleDown": {"stabilizationWindowSeconds": -1, "selectPolicy": "Fast",
                                           "policies": [{"type": "Pods", "value": 0, "periodSeconds": 1801}]}}})
    assert c["spec.behavior.scaleDown.stabilizationWindowSeconds"] == \
        "Invalid value: -1: must be greater than or equal to zero"
    assert c["spec.behavior.scaleDown.selectPolicy"] == \
        'Unsupported value: "Fast": supported values: "Disabled", "Max", "Min"'
    assert c["spec.behavior.scaleDown.policies[0].value"] == "Invalid value: 0: must be greater than zero"
    assert c["spec.behavior.scaleDown.policies[0].periodSeconds"] == \
        "Invalid value: 1801: must be less than or equal to 1800"
    c = causes({"behavior": {"scaleUp": {"policies": []}}})
    assert c["spec.behavior.scaleUp.policies"] == "Required value: must specify at least one Policy"


def test_custom_metrics_are_accepted_with_a_warning():
    obj = copy.deepcopy(BASE)
    obj["spec"]["metrics"] = [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                        "target": {"type": "AverageValue", "averageValue": "10"}}}]
    _, warnings = admit(obj)
    assert any("not supported by skiff" in str(w) for w in warnings)


def test_v1_round_trip():
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}
    v2 = to_v2(v1)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50}}}]
    stored = copy.deepcopy(v2)
    stored["spec"]["metrics"].append({"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "100Mi"}}})
    stored["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 10}}
    stored["status"] = {"currentReplicas": 2, "desiredReplicas": 2, "conditions": [{"type": "AbleToScale"}],
                        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                            "averageUtilization": 42, "averageValue": "42m"}}}]}
    back = to_v1(stored)
    assert back["spec"]["targetCPUUtilizationPercentage"] == 50
    assert back["status"] == {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 42}
    ann = back["metadata"]["annotations"]
    assert "memory" in ann["autoscaling.alpha.kubernetes.io/metrics"]
    assert "AbleToScale" in ann["autoscaling.alpha.kubernetes.io/conditions"]
    # a v1 update keeps what v1 cannot say
    v1["spec"]["targetCPUUtilizationPercentage"] = 70
    upd = to_v2(v1, stored)
    assert [m["resource"]["name"] for m in upd["spec"]["metrics"]] == ["cpu", "memory"]
    assert upd["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert upd["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 10}}
    with pytest.raises(Exception, match='unknown field "spec.metrics"'):
        to_v2({**v1, "spec": {**v1["spec"], "metrics": []}})


def test_get_hpa_cells():
    obj, _ = admit(copy.deepcopy(BASE))
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    cells = T.cells("horizontalpodautoscalers", obj, now=1767225600.0 + 120)
    assert cells[:6] == ["web", "Deployment/web", "cpu: <unknown>/80%", 1, 5, 0] and cells[6] == "2m"
    obj["status"] = {"currentReplicas": 3, "currentMetrics": [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 12, "averageValue": "12m"}}}]}
    assert T.cells("horizontalpodautoscalers", obj)[2:6] == ["cpu: 12%/80%", 1, 5, 3]
    obj["spec"]["metrics"] += [{"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "100Mi"}}}] * 2
    assert T.cells("horizontalpodautoscalers", obj)[2] == "cpu: 12%/80%, memory: <unknown>/100Mi + 1 more..."
    assert [c["name"] for c in T.columns("horizontalpodautoscalers")] == \
        ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]


def test_skiffctl_describe_hpa_layout():
    from skiff.cli.ctl.describe_hpa import describe_hpa
    obj, _ = admit({**copy.deepcopy(BASE), "spec": {**BASE["spec"], "behavior": {
        "scaleDown": {"stabilizationWindowSeconds": 60}}}})
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 95, "averageValue": "95m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                        "message": "the HPA controller was able to update the target scale to 3"}]}
    text = describe_hpa(obj, [])
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "web"]
    assert any(ln.split() == ["Reference:", "Deployment/web"] for ln in lines)
    assert any("resource cpu on pods  (as a percentage of request):" in ln and ln.endswith("95% (95m) / 80%")
               for ln in lines), text
    assert any(ln.split() == ["Deployment", "pods:", "2", "current", "/", "3", "desired"] for ln in lines)
    assert "Stabilization Window: 60 seconds" in text and "- Type: Percent  Value: 100  Period: 15 seconds" in text
    assert any(ln.split()[:3] == ["AbleToScale", "True", "SucceededRescale"] for ln in lines)


# ---------------------------------------------------------------- over the REST API (v2 stored, v1 converted)

@pytest.mark.asyncio
async def test_rest_v2_and_v1(tmp_path):
    import json

    from tests.unit.apitest import api_test_client
    async with api_test_client(tmp_path) as (client, reg, token):
        async def call(method, path, body=None, ctype="application/json", accept=None, raw=None):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
            if accept:
                headers["Accept"] = accept
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            async with client.request(method, path, data=data, headers=headers) as r:
                return r.status, await r.json()

        st, groups = await call("GET", "/apis")
        auto = next(g for g in groups["groups"] if g["name"] == "autoscaling")
        assert [v["version"] for v in auto["versions"]] == ["v2", "v1"] and auto["preferredVersion"]["version"] == "v2"
        st, agg = await call("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        auto = next(i for i in agg["items"] if i["metadata"]["name"] == "autoscaling")
        assert [v["version"] for v in auto["versions"]] == ["v2", "v1"]
        st, v1res = await call("GET", "/apis/autoscaling/v1")
        assert st == 200 and v1res["resources"][0]["name"] == "horizontalpodautoscalers"
        st, v2res = await call("GET", "/apis/autoscaling/v2")
        hpa_res = next(r for r in v2res["resources"] if r["name"] == "horizontalpodautoscalers")
        assert hpa_res["shortNames"] == ["hpa"] and hpa_res["categories"] == ["all"]

        v1path = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
        body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                         "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}}
        st, out = await call("POST", v1path, body)
        assert st == 201 and out["apiVersion"] == "autoscaling/v1", out
        assert out["spec"] == {"scaleTargetRef": body["spec"]["scaleTargetRef"], "minReplicas": 1,
                               "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}
        st, v2 = await call("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
        assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
        # v2 adds a memory metric; a v1 PUT of the target keeps it
        v2["spec"]["metrics"].append({"type": "Resource", "resource": {"name": "memory", "target": {
            "type": "AverageValue", "averageValue": "64Mi"}}})
        st, v2 = await call("PUT", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web", v2)
        assert st == 200, v2
        st, cur1 = await call("GET", v1path + "/web")
        cur1["spec"]["targetCPUUtilizationPercentage"] = 70
        st, put = await call("PUT", v1path + "/web", cur1)
        assert st == 200 and put["spec"]["targetCPUUtilizationPercentage"] == 70, put
        st, v2 = await call("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
        assert [m["resource"]["name"] for m in v2["spec"]["metrics"]] == ["cpu", "memory"]
        st, pat = await call("PATCH", v1path + "/web", {"spec": {"maxReplicas": 6}},
                             ctype="application/merge-patch+json")
        assert st == 200 and pat["spec"]["maxReplicas"] == 6
        st, lst = await call("GET", v1path)
        assert lst["kind"] == "HorizontalPodAutoscalerList" and lst["items"][0]["apiVersion"] == "autoscaling/v1"
        st, tbl = await call("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
                             accept="application/json;as=Table;v=v1;g=meta.k8s.io")
        assert tbl["rows"][0]["cells"][:6] == ["web", "Deployment/web", "cpu: <unknown>/70%, memory: <unknown>/64Mi",
                                               1, 6, 0]
        bad = {**body, "spec": {**body["spec"], "maxReplicas": 0}}
        bad["metadata"] = {"name": "bad"}
        st, err = await call("POST", v1path, bad)
        assert st == 422 and "spec.maxReplicas: Invalid value: 0: must be greater than 0" in err["message"]
        st, err = await call("POST", v1path, {**body, "spec": {**body["spec"], "frob": 1}})
        assert st == 400 and err["message"] == 'strict decoding error: unknown field "spec.frob"'
        st, _ = await call("DELETE", v1path + "/web")
        assert st == 200
        # the metrics API with no nodes: empty lists, kubectl's discovery sees the group
        st, res = await call("GET", "/apis/metrics.k8s.io/v1beta1")
        assert {r["name"]: r["kind"] for r in res["resources"]} == {"nodes": "NodeMetrics", "pods": "PodMetrics"}
        st, nm = await call("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
        assert (st, nm["items"]) == (200, [])


def test_kubectl_autoscale_protobuf_body():
    """What `kubectl autoscale` sends (autoscaling/v1 in protobuf) decodes to the JSON form."""
    from skiff.api import protobuf

    def fld(num, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    def var(num, v: int) -> bytes:
        return bytes([num << 3, v])
    ref = fld(1, b"Deployment") + fld(2, b"web") + fld(3, b"apps/v1")
    spec = fld(1, ref) + var(2, 1) + var(3, 5) + var(4, 50)
    raw = fld(1, fld(1, b"web")) + fld(2, spec)
    env = fld(1, fld(1, b"autoscaling/v1") + fld(2, b"HorizontalPodAutoscaler")) + fld(2, raw)
    obj = protobuf.decode(b"k8s\x00" + env)
    assert obj == {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                            "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}
