"""apps/v1 DaemonSet and ControllerRevision as API kinds: the RESOURCES entries, schemas,
validation rules with Kubernetes' wording, admission defaults, the registry's generation and
template generation, the server-side Table columns, discovery and OpenAPI."""
from __future__ import annotations

import copy
import json

import pytest

from skiff.api import tables as T
from skiff.api.resources import RESOURCES, lookup
from skiff.api.validation import ValidationError, validate, validate_update
from skiff.cli.ctl import printers as P
from skiff.controller import openapi as O
from skiff.controller.admission import admit
from skiff.controller.workloads.daemonlogic import TEMPLATE_GENERATION_ANNOTATION

from tests.unit.apitest import api_test_client

# https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/ (controllers/daemonset.yaml)
DOCS_DAEMONSET = {
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system", "labels": {"k8s-app": "fluentd-logging"}},
    "spec": {
        "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
        "template": {
            "metadata": {"labels": {"name": "fluentd-elasticsearch"}},
            "spec": {
                "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                 "effect": "NoSchedule"},
                                {"key": "node-role.kubernetes.io/master", "operator": "Exists",
                                 "effect": "NoSchedule"}],
                "containers": [{"name": "fluentd-elasticsearch",
                                "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                                "resources": {"limits": {"memory": "200Mi"},
                                              "requests": {"cpu": "100m", "memory": "200Mi"}},
                                "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]}],
                "terminationGracePeriodSeconds": 30,
                "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log"}}]}}}}


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c for c in ei.value.causes}, ei.value


def ds(**spec):
    d = copy.deepcopy(DOCS_DAEMONSET)
    d["spec"].update(spec)
    return d


def test_resources():
    r = RESOURCES["daemonsets"]
    assert (r.group, r.version, r.kind, r.namespaced, r.short_names, r.categories, r.subresources) == \
        ("apps", "v1", "DaemonSet", True, ("ds",), ("all",), ("status",))
    assert lookup("ds") is r and lookup("daemonset.apps") is r
    cr = RESOURCES["controllerrevisions"]
    assert (cr.api_version, cr.kind, cr.namespaced, cr.categories) == ("apps/v1", "ControllerRevision", True, ())


def test_docs_daemonset_validates_and_defaults():
    assert validate(copy.deepcopy(DOCS_DAEMONSET)) == []
    out, warns = admit(DOCS_DAEMONSET)
    assert warns == []
    spec = out["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10 and "minReadySeconds" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    # templates get no default NoExecute tolerations (the admission plugin acts on pods)
    assert len(spec["template"]["spec"]["tolerations"]) == 2
    # apps/v1 does not copy the template's labels to the DaemonSet's
    d = ds()
    del d["metadata"]["labels"]
    assert "labels" not in admit(d)[0]["metadata"]
    out, _ = admit(ds(updateStrategy={"type": "OnDelete"}))
    assert out["spec"]["updateStrategy"] == {"type": "OnDelete"}
    out, _ = admit(ds(updateStrategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}))
    assert out["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}


def test_daemonset_rules():
    d = ds()
    del d["spec"]["selector"]
    assert causes(d)[0]["spec.selector"]["message"] == "Required value"
    cs, err = causes(ds(selector={}))
    assert "empty selector is invalid for daemonset" in cs["spec.selector"]["message"]
    cs, err = causes(ds(selector={"matchLabels": {"name": "other"}}))
    assert cs["spec.template.metadata.labels"]["message"] == (
        'Invalid value: map[string]string{"name":"fluentd-elasticsearch"}: `selector` does not match template '
        '`labels`')
    st = err.to_status()
    assert st["code"] == 422 and st["details"]["kind"] == "DaemonSet"
    assert st["message"].startswith('DaemonSet.apps "fluentd-elasticsearch" is invalid: ')
    d = ds()
    d["spec"]["template"]["spec"].update(restartPolicy="OnFailure", activeDeadlineSeconds=5)
    cs, _ = causes(d)
    assert cs["spec.template.spec.restartPolicy"]["message"] == \
        'Unsupported value: "OnFailure": supported values: "Always"'
    assert cs["spec.template.spec.activeDeadlineSeconds"] == {
        "field": "spec.template.spec.activeDeadlineSeconds", "reason": "FieldValueInvalid",
        "message": "Invalid value: 5: activeDeadlineSeconds in DaemonSet is not Supported"}
    cs, _ = causes(ds(minReadySeconds=-1, revisionHistoryLimit=-2))
    assert cs["spec.minReadySeconds"]["message"] == "Invalid value: -1: must be greater than or equal to 0"
    assert cs["spec.revisionHistoryLimit"]["message"] == "Invalid value: -2: must be greater than or equal to 0"
    # exactly one of maxUnavailable and maxSurge is not zero
    ru = "spec.updateStrategy.rollingUpdate"
    cs, _ = causes(ds(updateStrategy={"rollingUpdate": {"maxSurge": 1}}))   # maxUnavailable defaults to 1
    assert cs[f"{ru}.maxSurge"]["message"] == "Invalid value: 1: may not be set when maxUnavailable is non-zero"
    cs, _ = causes(ds(updateStrategy={"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}))
    assert cs[f"{ru}.maxUnavailable"] == {"field": f"{ru}.maxUnavailable", "reason": "FieldValueRequired",
                                          "message": "Required value: cannot be 0 when maxSurge is 0"}
    cs, _ = causes(ds(updateStrategy={"rollingUpdate": {"maxSurge": "120%", "maxUnavailable": "x"}}))
    assert "must not be greater than 100%" in cs[f"{ru}.maxSurge"]["message"]
    assert "a valid percent string" in cs[f"{ru}.maxUnavailable"]["message"]
    cs, _ = causes(ds(updateStrategy={"type": "Recreate"}))
    assert cs["spec.updateStrategy.type"]["message"] == \
        'Unsupported value: "Recreate": supported values: "RollingUpdate", "OnDelete"'
    # before defaulting (skiffctl's check) a value not given counts as its default
    assert validate(ds(updateStrategy={"type": "RollingUpdate"})) == []
    assert validate(ds(updateStrategy={"rollingUpdate": {"maxSurge": 0}})) == []
    with pytest.raises(ValidationError) as ei:
        validate(ds(updateStrategy={"rollingUpdate": {"maxSurge": "25%"}}))
    assert ei.value.causes[0]["field"] == f"{ru}.maxSurge"
    # strict: replicas is no DaemonSet field
    cs, _ = causes(ds(replicas=3))
    assert cs["spec.replicas"]["message"] == 'unknown field "spec.replicas"'


def test_selector_is_immutable():
    cur, _ = admit(DOCS_DAEMONSET)
    new = copy.deepcopy(cur)
    new["spec"]["selector"] = {"matchLabels": {"name": "fluentd-elasticsearch", "x": "y"}}
    new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes[0]["field"] == "spec.selector"
    assert ei.value.causes[0]["message"].endswith("field is immutable")
    same = copy.deepcopy(cur)
    same["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox"
    validate_update(cur, same)


def test_controller_revision_rules():
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "web-5d4f"},
           "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 2}
    assert validate(copy.deepcopy(rev)) == []
    cs, _ = causes({**rev, "data": None, "revision": -1})
    assert cs["data"]["message"] == "Required value: data is mandatory"
    assert cs["revision"]["message"] == "Invalid value: -1: must be greater than or equal to 0"
    cs, _ = causes({k: v for k, v in rev.items() if k != "revision"})
    assert cs["revision"]["message"] == "Required value"
    validate_update(rev, {**rev, "revision": 5})
    with pytest.raises(ValidationError) as ei:
        validate_update(rev, {**rev, "data": {"spec": {}}})
    assert ei.value.causes[0]["field"] == "data" and ei.value.causes[0]["message"].endswith("field is immutable")


@pytest.mark.asyncio
async def test_registry_generation_template_generation_and_status(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        body = ds(minReadySeconds=0)
        body["status"] = {"numberReady": 5}
        body["metadata"]["annotations"] = {TEMPLATE_GENERATION_ANNOTATION: "7"}
        out = await reg.create("daemonsets", body, "kube-system")
        assert out["metadata"]["generation"] == 1 and "status" not in out       # status is the controller's
        assert out["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] == "7"   # given on create: kept
        # a spec change other than the template: generation only
        out = await reg.update("daemonsets", {**out, "spec": {**out["spec"], "minReadySeconds": 5}})
        assert out["metadata"]["generation"] == 2
        assert out["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] == "7"
        # a template change: both; the annotation is the server's (a client's value is replaced)
        new = copy.deepcopy(out)
        new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox"
        new["metadata"]["annotations"] = {TEMPLATE_GENERATION_ANNOTATION: "1", "a": "b"}
        out = await reg.update("daemonsets", new)
        assert out["metadata"]["generation"] == 3
        assert out["metadata"]["annotations"] == {TEMPLATE_GENERATION_ANNOTATION: "8", "a": "b"}
        # no change: nothing written
        assert (await reg.update("daemonsets", copy.deepcopy(out)))["metadata"]["resourceVersion"] == \
            out["metadata"]["resourceVersion"]
        # status through /status only
        st = {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1, "numberReady": 1,
              "observedGeneration": 3}
        out = await reg.update("daemonsets", {**out, "status": st}, subresource="status")
        assert out["status"] == st and out["metadata"]["generation"] == 3
        body = ds()
        body["metadata"]["name"] = "plain"
        assert (await reg.create("daemonsets", body, "kube-system"))["metadata"]["annotations"] == \
            {TEMPLATE_GENERATION_ANNOTATION: "1"}


def test_tables():
    d, _ = admit(ds(template={**DOCS_DAEMONSET["spec"]["template"],
                              "spec": {**DOCS_DAEMONSET["spec"]["template"]["spec"],
                                       "nodeSelector": {"disk": "ssd", "arch": "amd64"}}}))
    d["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    d["status"] = {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 1, "numberAvailable": 2, "numberMisscheduled": 0}
    assert P.headers_for("daemonsets") == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                           "NODE SELECTOR", "AGE"]
    assert P.headers_for("daemonsets", wide=True)[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    row = P.row_for("daemonsets", d, wide=True)
    assert row[:7] == ["fluentd-elasticsearch", "3", "3", "2", "1", "2", "arch=amd64,disk=ssd"]
    assert row[8:] == ["fluentd-elasticsearch", "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                       "name=fluentd-elasticsearch"]
    assert [c["type"] for c in T.columns("daemonsets")[1:6]] == ["integer"] * 5
    # no node selector, no status yet
    bare, _ = admit(DOCS_DAEMONSET)
    assert T.daemonset_cells(bare)[1:7] == [0, 0, 0, 0, 0, "<none>"]
    rev = {"metadata": {"name": "fluentd-elasticsearch-6d8f", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd-elasticsearch", "controller": True}]},
        "revision": 3}
    assert P.headers_for("controllerrevisions") == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert P.row_for("controllerrevisions", rev)[:3] == ["fluentd-elasticsearch-6d8f",
                                                         "daemonset.apps/fluentd-elasticsearch", "3"]
    assert T.controllerrevision_cells({"metadata": {"name": "x"}, "revision": 1})[1] == "<none>"


@pytest.mark.asyncio
async def test_http_table_discovery_and_openapi(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        auth = {"Authorization": f"Bearer {token}"}
        r = await client.post("/apis/apps/v1/namespaces/kube-system/daemonsets", data=json.dumps(DOCS_DAEMONSET),
                              headers={**auth, "Content-Type": "application/json"})
        assert r.status == 201, await r.text()
        r = await client.get("/apis/apps/v1/namespaces/kube-system/daemonsets",
                             headers={**auth, "Accept": T.TABLE_CONTENT_TYPE})
        t = await r.json()
        assert [c["name"] for c in t["columnDefinitions"]] == [
            "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
            "Containers", "Images", "Selector"]
        assert t["rows"][0]["cells"][:7] == ["fluentd-elasticsearch", 0, 0, 0, 0, 0, "<none>"]
        r = await client.get("/apis/apps/v1", headers=auth)
        res = {x["name"]: x for x in (await r.json())["resources"]}
        assert res["daemonsets"]["shortNames"] == ["ds"] and res["daemonsets"]["categories"] == ["all"]
        assert res["daemonsets/status"]["kind"] == "DaemonSet" and "controllerrevisions" in res
    doc = json.loads(O.document("apis/apps/v1")[0])
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.DaemonSet"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "DaemonSet"}]
    status = schemas["io.k8s.api.apps.v1.DaemonSetStatus"]["properties"]
    assert {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
            "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
            "collisionCount", "conditions"} == set(status)
    assert "/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/status" in doc["paths"]
    assert schemas["io.k8s.api.apps.v1.ControllerRevision"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "ControllerRevision"}]
