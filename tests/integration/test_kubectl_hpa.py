"""HorizontalPodAutoscalers with the real kubectl on a one-host cluster: `kubectl autoscale`
(autoscaling/v1, protobuf) on a deployment of busy containers scales it up from the CPU the
kernel counted; `kubectl get hpa` / `describe hpa` show it; pods without CPU requests get
Kubernetes' condition and events."""
from __future__ import annotations

import json
import re

import pytest

from tests.integration.kubectl import ctr, deployment, kube, row  # noqa: F401 (kube: the fixture)

pytestmark = pytest.mark.timeout(300)

BUSY = "trap 'exit 0' TERM; while :; do :; done"


def hpa(k, name: str) -> dict:
    return json.loads(k.ok("get", "hpa", name, "-o", "json"))


def condition(obj: dict, typ: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == typ), {})


def test_autoscale_scales_a_busy_deployment_up(kube):  # noqa: F811
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("burner.yaml", deployment("burner", 1, ctr(
        "main", BUSY, resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}))))
    kube.wait(lambda: "Running" in k("get", "pods", "-l", "app=burner", "-o",
                                     "jsonpath={.items[*].status.phase}").stdout, 60, "burner running")
    out = k.ok("autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=2")
    assert out.strip() == "horizontalpodautoscaler.autoscaling/burner autoscaled"
    # the controller reads the metrics API (two scrapes of the agent) and rescales through /scale
    obj = kube.wait(lambda: (lambda o: o if (o.get("status") or {}).get("desiredReplicas") == 2 else None)(
        hpa(k, "burner")), 90, "hpa desiredReplicas 2")
    assert obj["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    cur = obj["status"]["currentMetrics"][0]["resource"]
    assert cur["name"] == "cpu" and cur["current"]["averageUtilization"] > 55
    assert obj["status"]["lastScaleTime"]
    assert condition(obj, "ScalingActive")["reason"] == "ValidMetricFound"
    assert condition(obj, "AbleToScale")["status"] == "True"
    assert k.ok("get", "deploy", "burner", "-o", "jsonpath={.spec.replicas}") == "2"
    r = row(k.ok("get", "hpa"), "burner")
    assert list(r) == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert r["REFERENCE"] == "Deployment/burner" and r["MINPODS"] == "1" and r["MAXPODS"] == "2"
    assert re.fullmatch(r"cpu: \d+%/50%", r["TARGETS"]), r
    events = k.ok("get", "events", "--field-selector", "involvedObject.name=burner,reason=SuccessfulRescale",
                  "-o", "jsonpath={.items[*].message}")
    assert "New size: 2; reason: cpu resource utilization (percentage of request) above target" in events
    desc = k.ok("describe", "hpa", "burner")
    assert "Reference:" in desc and "Deployment/burner" in desc
    assert re.search(r"resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\d+m\) / 50%", desc), desc
    assert "SuccessfulRescale" in desc
    # autoscaling/v1, converted from the stored v2 object
    v1 = json.loads(k.ok("get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/burner"))
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert v1["status"]["currentCPUUtilizationPercentage"] > 55
    assert "autoscaling.alpha.kubernetes.io/conditions" in v1["metadata"]["annotations"]
    k.ok("delete", "hpa", "burner")
    k.ok("delete", "deploy", "burner", "--wait=false")


def test_pods_without_cpu_requests(kube):  # noqa: F811
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("norequest.yaml", deployment("norequest", 1, ctr("main"))))
    kube.wait(lambda: "Running" in k("get", "pods", "-l", "app=norequest", "-o",
                                     "jsonpath={.items[*].status.phase}").stdout, 60, "norequest running")
    k.ok("autoscale", "deploy", "norequest", "--cpu-percent=50", "--max=3")

    def failing():
        o = hpa(k, "norequest")
        c = condition(o, "ScalingActive")
        return o if c.get("reason") == "FailedGetResourceMetric" and "missing request" in c.get("message", "") else None
    obj = kube.wait(failing, 60, "ScalingActive False FailedGetResourceMetric")
    c = condition(obj, "ScalingActive")
    assert c["status"] == "False"
    assert re.fullmatch(r"the HPA was unable to compute the replica count: failed to get cpu utilization: "
                        r"missing request for cpu in container main of Pod norequest-[a-z0-9]+-[a-z0-9]+",
                        c["message"]), c
    assert row(k.ok("get", "hpa"), "norequest")["TARGETS"] == "cpu: <unknown>/50%"
    assert k.ok("get", "deploy", "norequest", "-o", "jsonpath={.spec.replicas}") == "1"
    reasons = k.ok("get", "events", "--field-selector", "involvedObject.name=norequest", "-o",
                   "jsonpath={.items[*].reason}").split()
    assert "FailedGetResourceMetric" in reasons and "FailedComputeMetricsReplicas" in reasons
    k.ok("delete", "hpa", "norequest")
    k.ok("delete", "deploy", "norequest", "--wait=false")


def test_hpa_validation_messages(kube):  # noqa: F811
    k = kube.kubectl
    bad = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "bad"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                    "minReplicas": 3, "maxReplicas": 2,
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000}}}}
    err = k.fails("apply", "-f", kube.file("bad-hpa.yaml", bad))
    assert 'The HorizontalPodAutoscaler "bad" is invalid' in err
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in err
    assert "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600" in err
    err = k.fails("autoscale", "deploy", "nosuch", "--max=3")
    assert 'deployments.apps "nosuch" not found' in err
