"""apps/v1 StatefulSet as an API kind: the RESOURCES entry, schema, admission defaults,
validation with kube-apiserver's messages and field paths, the update rule, the registry (status
on create, generation, /scale), the Table columns, discovery and OpenAPI."""
from __future__ import annotations

import copy
import json

import pytest

from skiff.api import tables as T
from skiff.api.resources import RESOURCES, lookup
from skiff.api.validation import ValidationError, validate_update
from skiff.cli.ctl import printers as P
from skiff.controller import openapi as O
from skiff.controller.admission import admit

from tests.unit.apitest import api_test_client

# https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/ (application/web/web.yaml)
DOCS_STATEFULSET = {
    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "nginx"}},
        "serviceName": "nginx", "replicas": 3, "minReadySeconds": 10,
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"terminationGracePeriodSeconds": 10,
                     "containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                                     "ports": [{"containerPort": 80, "name": "web"}],
                                     "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                  "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "my-storage-class",
                                           "resources": {"requests": {"storage": "1Gi"}}}}]}}


def sts(**spec):
    d = copy.deepcopy(DOCS_STATEFULSET)
    d["spec"].update(spec)
    return d


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c for c in ei.value.causes}, ei.value


def test_resources():
    r = RESOURCES["statefulsets"]
    assert (r.group, r.version, r.kind, r.namespaced, r.short_names, r.categories, r.subresources) == \
        ("apps", "v1", "StatefulSet", True, ("sts",), ("all",), ("status", "scale"))
    assert lookup("sts") is r and lookup("statefulset.apps") is r and lookup("StatefulSet") is r


def test_docs_statefulset_defaults():
    out, warns = admit(DOCS_STATEFULSET)
    assert warns == []
    spec = out["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10 and spec["replicas"] == 3 and spec["minReadySeconds"] == 10
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    claim = spec["volumeClaimTemplates"][0]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    # replicas 1 when not given; an explicit RollingUpdate without rollingUpdate gets no partition
    d = sts(updateStrategy={"type": "RollingUpdate"})
    del d["spec"]["replicas"]
    out, _ = admit(d)
    assert out["spec"]["replicas"] == 1 and out["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    out, _ = admit(sts(updateStrategy={"type": "OnDelete"}, podManagementPolicy="Parallel",
                       persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"}))
    assert out["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert out["spec"]["podManagementPolicy"] == "Parallel"
    assert out["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}


def test_validation_messages():
    d = sts()
    del d["spec"]["selector"]
    cs, _ = causes(d)
    assert cs["spec.selector"]["message"] == "Required value"
    cs, e = causes(sts(selector={"matchLabels": {"app": "other"}}))
    assert cs["spec.template.metadata.labels"]["message"] == \
        'Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`'
    assert str(e).startswith('StatefulSet.apps "web" is invalid: ')
    cs, _ = causes(sts(selector={}))
    assert cs["spec.selector"]["message"].endswith("empty selector is invalid for statefulset")
    d = sts()
    d["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    cs, _ = causes(d)
    assert cs["spec.template.spec.restartPolicy"]["message"] == 'Unsupported value: "OnFailure": supported values: ' \
                                                               '"Always"'
    assert cs["spec.template.spec.activeDeadlineSeconds"]["message"] == \
        "Forbidden: activeDeadlineSeconds in StatefulSet is not Supported"
    cs, _ = causes(sts(podManagementPolicy="Random"))
    assert cs["spec.podManagementPolicy"]["message"] == 'Invalid value: "Random": must be \'OrderedReady\' or ' \
                                                        '\'Parallel\''
    cs, _ = causes(sts(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}))
    assert cs["spec.updateStrategy.rollingUpdate"]["message"].endswith(
        ": only allowed for updateStrategy 'RollingUpdate'")
    cs, _ = causes(sts(updateStrategy={"type": "Sometimes"}))
    assert cs["spec.updateStrategy"]["message"].endswith(": must be 'RollingUpdate' or 'OnDelete'")
    cs, _ = causes(sts(replicas=-1, minReadySeconds=-2, ordinals={"start": -3},
                       updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -4}}))
    assert cs["spec.replicas"]["message"] == "Invalid value: -1: must be greater than or equal to 0"
    assert cs["spec.minReadySeconds"]["message"] == "Invalid value: -2: must be greater than or equal to 0"
    assert cs["spec.ordinals.start"]["message"] == "Invalid value: -3: must be greater than or equal to 0"
    assert cs["spec.updateStrategy.rollingUpdate.partition"]["message"] == \
        "Invalid value: -4: must be greater than or equal to 0"
    cs, _ = causes(sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Delete"}))
    assert cs["spec.persistentVolumeClaimRetentionPolicy.whenDeleted"]["message"] == \
        'Unsupported value: "Keep": supported values: "Delete", "Retain"'
    assert "spec.persistentVolumeClaimRetentionPolicy.whenScaled" not in cs
    # a pod name must be a DNS label: so must the set's name
    d = sts()
    d["metadata"]["name"] = "web.v1"
    cs, _ = causes(d)
    assert "metadata.name" in cs and "RFC 1123 label" in cs["metadata.name"]["message"]
    cs, _ = causes(sts(serviceName="Nginx"))
    assert "RFC 1123 label" in cs["spec.serviceName"]["message"]
    # a mount of a volume that is neither a volume nor a claim template
    d = sts()
    d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] = "data"
    cs, _ = causes(d)
    assert cs["spec.template.spec.containers[0].volumeMounts[0].name"]["message"] == 'Not found: "data"'
    # maxUnavailable (alpha in Kubernetes): accepted with a warning; 0 is refused
    _, warns = admit(sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}))
    assert [w.field for w in warns] == ["spec.updateStrategy.rollingUpdate.maxUnavailable"]
    cs, _ = causes(sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}))
    assert cs["spec.updateStrategy.rollingUpdate.maxUnavailable"]["message"] == "Invalid value: 0: must not be zero"
    # unknown fields are errors (strict)
    cs, _ = causes(sts(volumeClaimTemplate=[]))
    assert any("volumeClaimTemplate" in f or "volumeClaimTemplate" in c["message"] for f, c in cs.items())


def test_update_rule():
    cur, _ = admit(DOCS_STATEFULSET)
    ok = copy.deepcopy(cur)
    ok["spec"].update(replicas=5, minReadySeconds=0, revisionHistoryLimit=2, ordinals={"start": 1},
                      updateStrategy={"type": "OnDelete"},
                      persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    ok["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    validate_update(cur, ok)
    for change in ({"serviceName": "other"}, {"podManagementPolicy": "Parallel"},
                   {"selector": {"matchLabels": {"app": "nginx", "x": "y"}}},
                   {"volumeClaimTemplates": []}):
        bad = copy.deepcopy(cur)
        bad["spec"].update(change)
        if "selector" in change:
            bad["spec"]["template"]["metadata"]["labels"]["x"] = "y"
        with pytest.raises(ValidationError) as ei:
            validate_update(cur, bad)
        assert ei.value.causes == [{
            "field": "spec", "reason": "FieldValueForbidden",
            "message": "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                       "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                       "are forbidden"}], change


def test_tables():
    d, _ = admit(DOCS_STATEFULSET)
    d["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    d["status"] = {"replicas": 3, "readyReplicas": 2}
    assert P.headers_for("statefulsets") == ["NAME", "READY", "AGE"]
    assert P.headers_for("statefulsets", wide=True) == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    row = P.row_for("statefulsets", d, wide=True)
    assert row[:2] == ["web", "2/3"] and row[3:] == ["nginx", "registry.k8s.io/nginx-slim:0.24"]
    bare, _ = admit(DOCS_STATEFULSET)
    assert T.statefulset_cells(bare)[1] == "0/3"


@pytest.mark.asyncio
async def test_registry_scale_table_discovery_and_openapi(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        body = sts()
        body["status"] = {"replicas": 9}
        out = await reg.create("statefulsets", body, "default")
        assert "status" not in out and out["metadata"]["generation"] == 1      # the controller's alone
        auth = {"Authorization": f"Bearer {token}"}
        r = await client.get("/apis/apps/v1/namespaces/default/statefulsets/web/scale", headers=auth)
        scale = await r.json()
        assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 3} and scale["status"] == {"replicas": 0, "selector": "app=nginx"}
        r = await client.patch("/apis/apps/v1/namespaces/default/statefulsets/web/scale",
                               data=json.dumps({"spec": {"replicas": 5}}),
                               headers={**auth, "Content-Type": "application/merge-patch+json"})
        assert r.status == 200, await r.text()
        got = await reg.get("statefulsets", "web", "default")
        assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2
        r = await client.get("/apis/apps/v1/namespaces/default/statefulsets",
                             headers={**auth, "Accept": T.TABLE_CONTENT_TYPE})
        t = await r.json()
        assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Ready", "Age", "Containers", "Images"]
        assert t["rows"][0]["cells"][:2] == ["web", "0/5"]
        r = await client.get("/apis/apps/v1", headers=auth)
        res = {x["name"]: x for x in (await r.json())["resources"]}
        assert res["statefulsets"]["shortNames"] == ["sts"] and res["statefulsets"]["categories"] == ["all"]
        assert res["statefulsets/status"]["kind"] == "StatefulSet"
        assert res["statefulsets/scale"]["kind"] == "Scale" and res["statefulsets/scale"]["group"] == "autoscaling"
    doc = json.loads(O.document("apis/apps/v1")[0])
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.StatefulSet"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "StatefulSet"}]
    assert "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale" in doc["paths"]
