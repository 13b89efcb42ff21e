"""The issue-6 kinds: Deployment, ReplicaSet (apps/v1), ConfigMap, Secret (v1): schemas,
validation rules, admission defaults, the default NoExecute tolerations of pods, and the
RESOURCES entries."""
from __future__ import annotations

import base64
import copy

import pytest

from skiff.api.resources import RESOURCES, lookup, path_for
from skiff.api.validation import DecodeError, ValidationError, format_label_selector, validate, validate_update
from skiff.controller.admission import admit

# https://kubernetes.io/docs/concepts/workloads/controllers/deployment/ (controllers/nginx-deployment.yaml)
DOCS_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
             "template": {"metadata": {"labels": {"app": "nginx"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                   "ports": [{"containerPort": 80}]}]}}},
}
# https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/ (controllers/frontend.yaml)
DOCS_REPLICASET = {
    "apiVersion": "apps/v1", "kind": "ReplicaSet",
    "metadata": {"name": "frontend", "labels": {"app": "guestbook", "tier": "frontend"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"tier": "frontend"}},
             "template": {"metadata": {"labels": {"tier": "frontend"}},
                          "spec": {"containers": [{"name": "php-redis",
                                                   "image": "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5"}]}}},
}


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c for c in ei.value.causes}, ei.value


def test_resources_table():
    d, rs = RESOURCES["deployments"], RESOURCES["replicasets"]
    assert (d.group, d.version, d.kind, d.namespaced, d.short_names, d.categories) == \
        ("apps", "v1", "Deployment", True, ("deploy",), ("all",))
    assert set(d.subresources) == {"status", "scale"} and set(rs.subresources) == {"status", "scale"}
    assert rs.short_names == ("rs",) and rs.categories == ("all",)
    assert RESOURCES["configmaps"].short_names == ("cm",) and RESOURCES["configmaps"].api_version == "v1"
    assert RESOURCES["secrets"].kind == "Secret" and RESOURCES["secrets"].namespaced
    assert lookup("deploy") is d and lookup("rs") is rs and lookup("cm").plural == "configmaps"
    assert path_for("deployments", "default", "web", "scale") == "/apis/apps/v1/namespaces/default/deployments/web/scale"
    assert "finalize" in RESOURCES["namespaces"].subresources


def test_docs_deployment_and_replicaset_validate_unchanged():
    assert validate(copy.deepcopy(DOCS_DEPLOYMENT)) == []
    assert validate(copy.deepcopy(DOCS_REPLICASET)) == []
    out, warns = admit(DOCS_DEPLOYMENT)
    assert warns == []


def test_deployment_defaults():
    out, _ = admit(DOCS_DEPLOYMENT)
    spec = out["spec"]
    assert out["metadata"]["namespace"] == "default"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["minReadySeconds"] == 0 and spec["replicas"] == 3
    pspec = spec["template"]["spec"]
    assert pspec["restartPolicy"] == "Always" and pspec["terminationGracePeriodSeconds"] == 30
    assert pspec["dnsPolicy"] == "ClusterFirst" and pspec["schedulerName"] == "default-scheduler"
    assert pspec["containers"][0]["ports"][0]["protocol"] == "TCP"
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    del d["spec"]["replicas"]
    d["spec"]["strategy"] = {"type": "Recreate"}
    out, _ = admit(d)
    assert out["spec"]["replicas"] == 1 and out["spec"]["strategy"] == {"type": "Recreate"}
    r2 = copy.deepcopy(DOCS_REPLICASET)
    del r2["spec"]["replicas"]
    rs, _ = admit(r2)
    assert rs["spec"]["replicas"] == 1 and "strategy" not in rs["spec"]


def test_selector_must_match_template_labels():
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    d["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "x"}
    cs, err = causes(d)
    c = cs["spec.template.metadata.labels"]
    assert c["message"] == ('Invalid value: map[string]string{"app":"web", "tier":"x"}: '
                            '`selector` does not match template `labels`')
    st = err.to_status()
    assert st["code"] == 422 and st["reason"] == "Invalid" and st["details"]["kind"] == "Deployment"
    assert st["message"].startswith('Deployment.apps "nginx-deployment" is invalid: spec.template.metadata.labels')
    d["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}
    assert validate(d) == []


def test_workload_rules():
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    del d["spec"]["selector"]
    cs, _ = causes(d)
    assert cs["spec.selector"]["message"] == "Required value"
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    d["spec"]["selector"] = {}
    cs, _ = causes(d)
    assert "empty selector is invalid for deployment" in cs["spec.selector"]["message"]
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    d["spec"]["replicas"] = -1
    d["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    cs, _ = causes(d)
    assert cs["spec.template.spec.restartPolicy"]["message"] == 'Unsupported value: "Never": supported values: "Always"'
    assert cs["spec.replicas"]["message"] == "Invalid value: -1: must be greater than or equal to 0"
    assert "may not be specified when strategy `type` is 'Recreate'" in cs["spec.strategy.rollingUpdate"]["message"]
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    cs, _ = causes(d)
    assert "may not be 0 when `maxSurge` is 0" in cs["spec.strategy.rollingUpdate.maxUnavailable"]["message"]
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": "x", "maxUnavailable": "150%"}}
    cs, _ = causes(d)
    assert "a valid percent string" in cs["spec.strategy.rollingUpdate.maxSurge"]["message"]
    assert "must not be greater than 100%" in cs["spec.strategy.rollingUpdate.maxUnavailable"]["message"]
    # the template's pod spec gets the pod rules, with its own paths
    d = copy.deepcopy(DOCS_DEPLOYMENT)
    d["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "x"})
    cs, _ = causes(d)
    assert cs["spec.template.spec.containers[1].name"]["message"] == 'Duplicate value: "nginx"'
    # unknown fields are rejected (strict schema)
    x = copy.deepcopy(DOCS_DEPLOYMENT)
    x["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    x["spec"]["strategyy"] = {}
    cs, _ = causes(x)
    assert set(cs) >= {"spec.strategyy", "spec.template.spec.containers[0].imagePullPolicyy"}


def test_selector_is_immutable_on_update():
    cur, _ = admit(DOCS_DEPLOYMENT)
    new = copy.deepcopy(cur)
    new["spec"]["selector"] = {"matchLabels": {"app": "nginx", "x": "y"}}
    new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes[0]["field"] == "spec.selector" and "field is immutable" in ei.value.causes[0]["message"]
    same = copy.deepcopy(cur)
    same["spec"]["replicas"] = 5
    validate_update(cur, same)


def test_secret_stringdata_and_base64():
    s, _ = admit({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                  "data": {"user": base64.b64encode(b"admin").decode()},
                  "stringData": {"password": "s3cr3t", "user": "root"}})
    assert "stringData" not in s and s["type"] == "Opaque"
    assert base64.b64decode(s["data"]["password"]) == b"s3cr3t"
    assert base64.b64decode(s["data"]["user"]) == b"root"   # stringData wins, as in Kubernetes
    with pytest.raises(DecodeError) as ei:
        admit({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"k": "not base64!"}})
    st = ei.value.to_status()
    assert st["code"] == 400 and st["reason"] == "BadRequest" and "illegal base64 data at input byte" in st["message"]
    cs, _ = causes({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "YQ=="}})
    assert cs['data["tls.key"]']["message"] == "Required value"
    cs, _ = causes({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"bad key": "v"}})
    assert "a valid config key" in cs['data["bad key"]']["message"]
    cur, _ = admit({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "immutable": True,
                    "stringData": {"a": "1"}})
    new, _ = admit({**cur, "stringData": {"a": "2"}})
    with pytest.raises(ValidationError):
        validate_update(cur, new)
    with pytest.raises(ValidationError):
        validate_update(cur, {**cur, "type": "kubernetes.io/tls"})


def test_configmap():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game-config"},
          "data": {"player_initial_lives": "3", "game.properties": "enemy.types=aliens\n"},
          "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}, "immutable": False}
    assert validate(cm) == []
    cs, _ = causes({**cm, "data": {"a b": "1", "blob": "x"}})
    assert "a valid config key" in cs['data["a b"]']["message"]
    assert "duplicate of key present in" in cs["binaryData.blob"]["message"]
    cs, _ = causes({**cm, "spec": {}})
    assert cs["spec"]["message"] == 'unknown field "spec"'


def test_pods_get_default_tolerations():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    out, _ = admit(pod)
    assert out["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    out, _ = admit(pod, toleration_seconds=7)
    assert {t["tolerationSeconds"] for t in out["spec"]["tolerations"]} == {7}
    # a pod that already tolerates one of them keeps its own
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 5}
    out, _ = admit({**pod, "spec": {**pod["spec"], "tolerations": [mine]}})
    assert out["spec"]["tolerations"] == [mine, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                 "effect": "NoExecute", "tolerationSeconds": 300}]
    # templates do not get them (the admission plugin acts on pods)
    d, _ = admit(DOCS_DEPLOYMENT)
    assert "tolerations" not in d["spec"]["template"]["spec"]


def test_format_label_selector():
    assert format_label_selector({"matchLabels": {"b": "2", "a": "1"},
                                  "matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]},
                                                       {"key": "old", "operator": "DoesNotExist"}]}) == \
        "a=1,b=2,t in (x,y),!old"


def test_pod_eviction_timeout_option():
    from skiff.cli.controller import CONTROLLER_OPTS, controlplane_options
    from skiff.cli.parser import UsageError
    assert any("--pod-eviction-timeout" in o.names for o in CONTROLLER_OPTS)
    assert controlplane_options({"pod_eviction_timeout": "300"})["pod_eviction_timeout"] == 300
    assert controlplane_options({"pod_eviction_timeout": "5"})["pod_eviction_timeout"] == 5
    with pytest.raises(UsageError):
        controlplane_options({"pod_eviction_timeout": "soon"})


def test_namespace_carries_its_name_as_a_label():
    from skiff.controller.admission import apply_defaults
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"a": "b"}}})
    assert ns["metadata"]["labels"] == {"a": "b", "kubernetes.io/metadata.name": "team"}
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "other"}}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
