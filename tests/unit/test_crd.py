"""CustomResourceDefinitions: the structural schema's pruning, defaulting and validation
(Kubernetes' messages and paths), the CRD's own validation, and the API over a real socket
(a CRD established, its resources served with discovery, Table columns, the status
subresource, generation, patches, fieldValidation, deletion of the CRD)."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_asyncio

from skiff.controller.crd import definition as D
from skiff.controller.crd import schema as S
from skiff.controller.crd.printing import jsonpath

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "image": {"type": "string", "minLength": 2, "maxLength": 10},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "when": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "nested": {"type": "object", "default": {},
                           "properties": {"level": {"type": "string", "default": "info"}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def msgs(obj):
    return [f"{c['field']}: {c['message']}" for c in S.validate(obj, SCHEMA)]


def test_type_errors_have_kubernetes_messages():
    assert msgs({"spec": {"cronSpec": "* * * * */5", "replicas": "huge"}}) == [
        'spec.replicas: Invalid value: "huge": spec.replicas in body must be of type integer: "string"']
    assert msgs({"spec": {"cronSpec": 5}}) == [
        'spec.cronSpec: Invalid value: 5: spec.cronSpec in body must be of type string: "integer"']
    assert msgs({"spec": []}) == ['spec: Invalid value: []: spec in body must be of type object: "array"']


def test_required_enum_pattern_bounds():
    assert msgs({"spec": {}}) == ["spec.cronSpec: Required value"]
    out = msgs({"spec": {"cronSpec": "bad", "mode": "c", "replicas": 0, "image": "x", "tags": []}})
    assert out == [
        "spec.cronSpec: Invalid value: \"bad\": spec.cronSpec in body should match "
        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
        'spec.image: Invalid value: "x": spec.image in body should be at least 2 chars long',
        'spec.mode: Unsupported value: "c": supported values: "a", "b"',
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
    ]
    out = msgs({"spec": {"cronSpec": "* * * * *", "replicas": 11, "image": "x" * 11, "tags": ["a", "b", "c"]}})
    assert out == ["spec.image: Too long: may not be more than 10 bytes",
                   "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                   "spec.tags: Too many: 3: must have at most 2 items"]


def test_int_or_string_formats_nullable_maps():
    ok = {"spec": {"cronSpec": "* * * * *", "port": "http", "when": "2024-01-02T03:04:05Z", "note": None,
                   "labels": {"a": "b"}}}
    assert msgs(ok) == []
    assert msgs({"spec": {"cronSpec": "* * * * *", "port": 8080}}) == []
    assert msgs({"spec": {"cronSpec": "* * * * *", "port": True}}) == [
        'spec.port: Invalid value: true: spec.port in body must be of type integer,string: "boolean"']
    assert msgs({"spec": {"cronSpec": "* * * * *", "when": "yesterday"}}) == [
        'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"']
    assert msgs({"spec": {"cronSpec": "* * * * *", "image": None}}) == [
        'spec.image: Invalid value: "null": spec.image in body must be of type string: "null"']
    assert msgs({"spec": {"cronSpec": "* * * * *", "labels": {"a": 1}}}) == [
        'spec.labels.a: Invalid value: 1: spec.labels.a in body must be of type string: "integer"']
    assert msgs({"spec": {"cronSpec": "* * * * *", "template": {"metadata": {}}}}) == [
        "spec.template.apiVersion: Required value: apiVersion is required",
        "spec.template.kind: Required value: kind is required"]


def test_pruning_keeps_what_the_schema_specifies():
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "extra": 1,
           "spec": {"cronSpec": "* * * * *", "bogus": {"deep": 1}, "free": {"any": {"thing": 1}},
                    "labels": {"k": "v"},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}},
           "status": {"replicas": 1, "other": 2}}
    dropped = S.prune(obj, SCHEMA)
    assert dropped == [["extra"], ["spec", "bogus"], ["status", "other"]]
    assert obj["metadata"] == {"name": "a"} and obj["spec"]["free"] == {"any": {"thing": 1}}
    assert obj["spec"]["template"]["spec"] == {"x": 1} and obj["spec"]["labels"] == {"k": "v"}


def test_defaulting_fills_absent_fields_depth_first():
    obj = {"spec": {"cronSpec": "* * * * *"}}
    S.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["nested"] == {"level": "info"}
    obj = {"spec": {"replicas": 3, "nested": {"level": "debug"}}}
    S.apply_defaults(obj, SCHEMA)
    assert obj["spec"] == {"replicas": 3, "nested": {"level": "debug"}}


def test_jsonpath_of_printer_columns():
    o = {"spec": {"a": [{"n": 1}, {"n": 2}]},
         "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]},
         "metadata": {"labels": {"app.kubernetes.io/name": "w"}}}
    assert jsonpath(o, ".spec.a[*].n") == [1, 2]
    assert jsonpath(o, ".spec.a[1].n") == [2]
    assert jsonpath(o, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath(o, ".metadata.labels['app.kubernetes.io/name']") == ["w"]
    assert jsonpath(o, ".spec.missing") == []


def crd(group="stable.example.com", plural="crontabs", kind="CronTab", **spec):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": ["ct"],
                               "categories": ["all"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": SCHEMA},
                                   "subresources": {"status": {}},
                                   "additionalPrinterColumns": [
                                       {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                                       {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                                       {"name": "Image", "type": "string", "priority": 1,
                                        "jsonPath": ".spec.image"},
                                       {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}],
                     **spec}}


def crd_msgs(obj):
    D.default_crd(obj)
    errs, _ = D.validate_crd(obj)
    return [f"{c['field']}: {c['message']}" for c in errs]


def test_crd_validation():
    assert crd_msgs(crd()) == []
    bad = crd()
    bad["metadata"]["name"] = "wrong"
    assert crd_msgs(bad) == ['metadata.name: Invalid value: "wrong": must be spec.names.plural+"."+spec.group']
    bad = crd(scope="Global")
    assert crd_msgs(bad) == ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']
    bad = crd()
    bad["spec"]["versions"][0]["storage"] = False
    assert crd_msgs(bad) == ["spec.versions: Invalid value: []v1.CustomResourceDefinitionVersion{...}: "
                             "must have exactly one version marked as storage version"]
    bad = crd()
    del bad["spec"]["versions"][0]["schema"]
    assert crd_msgs(bad) == ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
    bad = crd()
    bad["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {}}}}
    assert crd_msgs(bad) == ["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
                             "must not be empty for specified object fields"]
    bad = crd(group="nodots")
    bad["metadata"]["name"] = "crontabs.nodots"
    assert crd_msgs(bad) == ['spec.group: Invalid value: "nodots": should be a domain with at least one dot']
    bad = crd()
    bad["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = "text"
    assert crd_msgs(bad) == ['spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "text": '
                             'supported values: "integer", "number", "string", "boolean", "date"']
    cel = crd()
    cel["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object", "x-kubernetes-validations": [{"rule": "self.x > 0"}]}
    D.default_crd(cel)
    errs, warns = D.validate_crd(cel)
    assert errs == [] and "not enforced" in warns[0]


# ------------------------------------------------------------------ over the API

pytestmark_api = pytest.mark.asyncio


@pytest_asyncio.fixture
async def api_crd(tmp_path):
    import aiohttp
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.crd.controller import CRDController
    from tests.unit.test_apiserver import API
    c = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", watch_cache_capacity=50, bookmark_interval=0.2)

    async def ctl(client):
        await CRDController(client).run()
    c.add_controller(ctl)
    await c.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=c.client_ssl())) as s:
            yield API(c, s)
    finally:
        await c.stop()


async def wait_established(api, name, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        code, body, _ = await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        if code == 200 and any(c["type"] == "Established" and c["status"] == "True"
                               for c in (body.get("status") or {}).get("conditions") or []):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} not established: {body}")


@pytest.mark.asyncio
async def test_crd_served_over_the_api(api_crd):
    from skiff.api.resources import RESOURCES
    api = api_crd
    g = f"t{uuid.uuid4().hex[:8]}.example.com"
    base = f"/apis/{g}/v1/namespaces/default/crontabs"
    code, body, _ = await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(group=g))
    assert code == 201, body
    assert D.FINALIZER in body["metadata"]["finalizers"]
    got = await wait_established(api, f"crontabs.{g}")
    st = got["status"]
    assert st["acceptedNames"]["kind"] == "CronTab" and st["storedVersions"] == ["v1"]
    assert {c["type"]: c["reason"] for c in st["conditions"]} == {"NamesAccepted": "NoConflicts",
                                                                 "Established": "InitialNamesAccepted"}
    try:
        # discovery
        code, body, _ = await api("GET", f"/apis/{g}/v1")
        assert code == 200
        res = {r["name"]: r for r in body["resources"]}
        assert res["crontabs"]["shortNames"] == ["ct"] and res["crontabs"]["categories"] == ["all"]
        assert "crontabs/status" in res
        # create: defaulting, pruning with a warning
        w1 = {"apiVersion": f"{g}/v1", "kind": "CronTab", "metadata": {"name": "w1"},
              "spec": {"cronSpec": "* * * * */5", "image": "img", "bogus": 1}}
        code, body, headers = await api("POST", base, w1)
        assert code == 201, body
        assert body["spec"] == {"cronSpec": "* * * * */5", "image": "img", "replicas": 1, "nested": {"level": "info"}}
        assert 'unknown field \\"spec.bogus\\"' in headers.get("Warning", "") or \
            'unknown field "spec.bogus"' in headers.get("Warning", "")
        code, body, _ = await api("POST", base, {**w1, "metadata": {"name": "w2"}},
                                  params={"fieldValidation": "Strict"})
        assert code == 400 and 'strict decoding error: unknown field "spec.bogus"' in body["message"], body
        # invalid
        bad = {**w1, "metadata": {"name": "w3"}, "spec": {"cronSpec": "* * * * *", "replicas": "huge"}}
        code, body, _ = await api("POST", base, bad)
        assert code == 422
        assert body["message"] == (f'CronTab.{g} "w3" is invalid: spec.replicas: Invalid value: "huge": '
                                   f'spec.replicas in body must be of type integer: "string"')
        assert body["details"]["kind"] == "CronTab" and body["details"]["group"] == g
        # status subresource: a write of the object ignores status, generation goes up on spec only
        code, body, _ = await api("PATCH", f"{base}/w1", {"spec": {"replicas": 3}, "status": {"replicas": 9}},
                                  ctype="application/merge-patch+json")
        assert code == 200 and body["spec"]["replicas"] == 3 and "status" not in body
        assert body["metadata"]["generation"] == 2
        code, body, _ = await api("PATCH", f"{base}/w1/status", {"status": {"replicas": 3}},
                                  ctype="application/merge-patch+json")
        assert code == 200 and body["status"] == {"replicas": 3} and body["metadata"]["generation"] == 2
        code, body, _ = await api("PATCH", f"{base}/w1/status", {"status": {"replicas": "x", "junk": 1}},
                                  ctype="application/merge-patch+json")
        assert code == 422 and body["message"] == (f'CronTab.{g} "w1" is invalid: status.replicas: Invalid value: '
                                                   f'"x": status.replicas in body must be of type integer: "string"')
        code, body, _ = await api("PATCH", f"{base}/w1/status", {"status": {"junk": 1}},
                                  ctype="application/merge-patch+json")
        assert code == 200 and body["status"] == {"replicas": 3}, body    # pruned
        code, body, _ = await api("PATCH", f"{base}/w1", {"spec": {"replicas": 4}},
                                  ctype="application/strategic-merge-patch+json")
        assert code == 415, body
        code, body, _ = await api("PATCH", f"{base}/w1", [{"op": "replace", "path": "/spec/image", "value": "i2"}],
                                  ctype="application/json-patch+json")
        assert code == 200 and body["spec"]["image"] == "i2"
        # list with a field selector, and the Table
        code, body, _ = await api("GET", f"/apis/{g}/v1/crontabs", params={"fieldSelector": "metadata.name=w1"})
        assert code == 200 and [o["metadata"]["name"] for o in body["items"]] == ["w1"]
        async with api.s.get(api.cp.url + base, headers={
                "Authorization": f"Bearer {api.token}",
                "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
            t = await r.json()
        assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Image", "Age"]
        assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 1, 0]
        assert t["rows"][0]["cells"][:4] == ["w1", "* * * * */5", 3, "i2"]
        # deleting the CRD deletes its resources and stops serving them
        code, body, _ = await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.{g}")
        assert code == 200
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while loop.time() < end:
            code, _, _ = await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.{g}")
            if code == 404:
                break
            await asyncio.sleep(0.05)
        assert code == 404
        assert "crontabs" not in RESOURCES
        code, body, _ = await api("GET", base)
        assert code == 404
        items, _, _ = await api.cp.registry.storage.list_keyed("/crontabs/")
        assert items == []
    finally:
        from skiff.controller.crd import unregister
        unregister("crontabs")


async def _until(fn, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        out = await fn()
        if out:
            return out
        if loop.time() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_crds_survive_a_restart_and_namespace_deletion_removes_crs(tmp_path):
    import aiohttp
    from skiff.api.resources import RESOURCES
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.crd import unregister
    from skiff.controller.crd.controller import CRDController
    from skiff.controller.namespace import NamespaceController
    from tests.unit.test_apiserver import API

    async def ctl(client):
        await CRDController(client).run()

    async def nsctl(client):
        await NamespaceController(client).run()
    g = f"r{uuid.uuid4().hex[:8]}.example.com"
    c1 = crd(group=g, plural="widgets", kind="Widget", scope="Cluster")
    c1["spec"]["names"]["shortNames"] = ["wdg"]
    c2 = crd(group=g)
    try:
        for round_ in (1, 2):
            cp = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", watch_cache_capacity=50)
            cp.add_controller(ctl)
            cp.add_controller(nsctl)
            await cp.start()
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cp.client_ssl())) as s:
                    api = API(cp, s)
                    if round_ == 1:
                        for c in (c1, c2):
                            code, body, _ = await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                                      c)
                            assert code == 201, body
                        await wait_established(api, f"widgets.{g}")
                        await wait_established(api, f"crontabs.{g}")
                        code, body, _ = await api("POST", f"/apis/{g}/v1/widgets", {
                            "apiVersion": f"{g}/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "x"},
                            "spec": {"cronSpec": "* * * * *"}})
                        assert code == 201 and "namespace" not in body["metadata"], body
                        code, body, _ = await api("POST", "/api/v1/namespaces",
                                                  {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "crd-ns"}})
                        assert code == 201
                        code, body, _ = await api("POST", f"/apis/{g}/v1/namespaces/crd-ns/crontabs", {
                            "apiVersion": f"{g}/v1", "kind": "CronTab", "metadata": {"name": "c1"},
                            "spec": {"cronSpec": "* * * * *"}})
                        assert code == 201, body
                    else:
                        # served again once the controller has listed the stored CRDs
                        async def served():
                            code, body, _ = await api("GET", f"/apis/{g}/v1/widgets/w1")
                            return code == 200 and body
                        w = await _until(served)
                        assert w["spec"]["replicas"] == 1
                        code, body, _ = await api("GET", f"/apis/{g}/v1")
                        assert {r["name"] for r in body["resources"]} >= {"widgets", "crontabs", "crontabs/status"}
                        # deleting the namespace deletes the custom resources in it
                        code, body, _ = await api("DELETE", "/api/v1/namespaces/crd-ns")
                        assert code == 200, body

                        async def ns_gone():
                            code, _, _ = await api("GET", "/api/v1/namespaces/crd-ns")
                            return code == 404
                        await _until(ns_gone, 10)
                        items, _, _ = await cp.registry.storage.list_keyed("/crontabs/")
                        assert items == []
                        for name in (f"widgets.{g}", f"crontabs.{g}"):
                            code, _, _ = await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                                             f"{name}")
                            assert code == 200

                        async def all_gone():
                            code, body, _ = await api("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                            return code == 200 and not body["items"]
                        await _until(all_gone)
                        assert "widgets" not in RESOURCES
            finally:
                await cp.stop()
            # a new process knows nothing of them until its controller reads the store
            unregister("widgets")
            unregister("crontabs")
    finally:
        unregister("widgets")
        unregister("crontabs")


@pytest.mark.asyncio
async def test_a_plural_in_use_is_not_accepted(api_crd):
    api = api_crd
    g = f"c{uuid.uuid4().hex[:8]}.example.com"
    c = crd(group=g, plural="pods", kind="MyPod")
    c["spec"]["names"]["shortNames"] = []
    code, body, _ = await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c)
    assert code == 201, body

    async def named():
        code, body, _ = await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pods.{g}")
        return body.get("status", {}).get("conditions") and body
    body = await _until(named)
    conds = {x["type"]: x for x in body["status"]["conditions"]}
    assert (conds["NamesAccepted"]["status"], conds["NamesAccepted"]["reason"],
            conds["NamesAccepted"]["message"]) == ("False", "PluralConflict", '"pods" is already in use')
    assert (conds["Established"]["status"], conds["Established"]["reason"]) == ("False", "NotAccepted")
    from skiff.api.resources import RESOURCES
    assert RESOURCES["pods"].group == ""
    code, _, _ = await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pods.{g}")
    assert code == 200

    async def gone():
        code, _, _ = await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pods.{g}")
        return code == 404
    await _until(gone)


@pytest.mark.asyncio
async def test_garbage_collection_follows_custom_resources(tmp_path):
    import aiohttp
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.crd import unregister
    from skiff.controller.crd.controller import CRDController
    from skiff.controller.gc import GarbageCollector
    from tests.unit.test_apiserver import API

    async def ctl(client):
        await CRDController(client).run()

    async def gc(client):
        await GarbageCollector(client, resources=("configmaps",)).run()
    g = f"g{uuid.uuid4().hex[:8]}.example.com"
    cp = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", watch_cache_capacity=50)
    cp.add_controller(ctl)
    cp.add_controller(gc)
    await cp.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cp.client_ssl())) as s:
            api = API(cp, s)
            code, body, _ = await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(group=g))
            assert code == 201
            await wait_established(api, f"crontabs.{g}")
            base = f"/apis/{g}/v1/namespaces/default/crontabs"

            def ct(name, owner=None):
                md = {"name": name}
                if owner:
                    md["ownerReferences"] = [owner]
                return {"apiVersion": f"{g}/v1", "kind": "CronTab", "metadata": md, "spec": {"cronSpec": "* * * * *"}}

            def cm(name, owner=None):
                md = {"name": name}
                if owner:
                    md["ownerReferences"] = [owner]
                return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
            code, parent, _ = await api("POST", "/api/v1/namespaces/default/configmaps", cm("gc-parent"))
            assert code == 201
            ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "gc-parent", "uid": parent["metadata"]["uid"]}
            code, owned_ct, _ = await api("POST", base, ct("gc-child", ref))
            assert code == 201, owned_ct
            code, owner_ct, _ = await api("POST", base, ct("gc-owner"))
            cref = {"apiVersion": f"{g}/v1", "kind": "CronTab", "name": "gc-owner", "uid": owner_ct["metadata"]["uid"]}
            code, _, _ = await api("POST", "/api/v1/namespaces/default/configmaps", cm("gc-dep", cref))
            assert code == 201
            # a custom resource whose owner goes is deleted; so is an object whose custom owner goes
            assert (await api("DELETE", "/api/v1/namespaces/default/configmaps/gc-parent"))[0] == 200
            assert (await api("DELETE", f"{base}/gc-owner"))[0] == 200

            async def collected():
                a = (await api("GET", f"{base}/gc-child"))[0]
                b = (await api("GET", "/api/v1/namespaces/default/configmaps/gc-dep"))[0]
                return a == 404 and b == 404
            await _until(collected, 10)
            await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.{g}")
    finally:
        await cp.stop()
        unregister("crontabs")


@pytest.mark.asyncio
async def test_a_terminating_crd_waits_for_finalizers_and_takes_no_new_objects(api_crd):
    api = api_crd
    g = f"f{uuid.uuid4().hex[:8]}.example.com"
    name = f"crontabs.{g}"
    try:
        assert (await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(group=g)))[0] == 201
        await wait_established(api, name)
        base = f"/apis/{g}/v1/namespaces/default/crontabs"
        obj = {"apiVersion": f"{g}/v1", "kind": "CronTab",
               "metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "spec": {"cronSpec": "* * * * *"}}
        assert (await api("POST", base, obj))[0] == 201
        assert (await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"))[0] == 200

        async def terminating():
            code, body, _ = await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = {c["type"]: c for c in body["status"]["conditions"]}
            return "Terminating" in conds and body
        body = await _until(terminating)
        assert body["status"]["conditions"][-1]["reason"] == "InstanceDeletionInProgress"
        code, body, _ = await api("POST", base, {**obj, "metadata": {"name": "new"}})
        assert (code, body["message"]) == (405, "create not allowed while custom resource definition is terminating")
        async def marked():
            code, held, _ = await api("GET", f"{base}/held")
            return code == 200 and held["metadata"].get("deletionTimestamp")
        await _until(marked)
        code, _, _ = await api("PATCH", f"{base}/held", {"metadata": {"finalizers": None}},
                               ctype="application/merge-patch+json")
        assert code == 200

        async def gone():
            return (await api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"))[0] == 404
        await _until(gone)
    finally:
        from skiff.controller.crd import unregister
        unregister("crontabs")


@pytest.mark.asyncio
async def test_the_scale_subresource_uses_the_crd_paths(api_crd):
    api = api_crd
    g = f"s{uuid.uuid4().hex[:8]}.example.com"
    c = crd(group=g)
    c["spec"]["versions"][0]["subresources"] = {
        "status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                "labelSelectorPath": ".status.selector"}}
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object", "properties": {"spec": SCHEMA["properties"]["spec"], "status": {
            "type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}
    try:
        assert (await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c))[0] == 201
        await wait_established(api, f"crontabs.{g}")
        base = f"/apis/{g}/v1/namespaces/default/crontabs"
        obj = {"apiVersion": f"{g}/v1", "kind": "CronTab", "metadata": {"name": "sc"},
               "spec": {"cronSpec": "* * * * *", "replicas": 2}}
        assert (await api("POST", base, obj))[0] == 201
        await api("PATCH", f"{base}/sc/status", {"status": {"replicas": 2, "selector": "app=sc"}},
                  ctype="application/merge-patch+json")
        code, scale, _ = await api("GET", f"{base}/sc/scale")
        assert code == 200 and (scale["kind"], scale["spec"], scale["status"]) == (
            "Scale", {"replicas": 2}, {"replicas": 2, "selector": "app=sc"})
        code, scale, _ = await api("PATCH", f"{base}/sc/scale", {"spec": {"replicas": 5}},
                                   ctype="application/merge-patch+json")
        assert code == 200 and scale["spec"]["replicas"] == 5, scale
        code, body, _ = await api("GET", f"{base}/sc")
        assert body["spec"]["replicas"] == 5 and body["metadata"]["generation"] == 2
        code, body, _ = await api("PATCH", f"{base}/sc/scale", {"spec": {"replicas": 50}},
                                  ctype="application/merge-patch+json")
        assert code == 422 and "spec.replicas in body should be less than or equal to 10" in body["message"], body
        code, doc, _ = await api("GET", f"/openapi/v3/apis/{g}/v1")
        assert code == 200 and f"com.example.{g.split('.')[0]}.v1.CronTab" in doc["components"]["schemas"]
        assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"] or \
            any(k.endswith(".Scale") for k in doc["components"]["schemas"])
        await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.{g}")
    finally:
        from skiff.controller.crd import unregister
        unregister("crontabs")


@pytest.mark.asyncio
async def test_other_served_versions_share_the_stored_objects(api_crd):
    api = api_crd
    g = f"v{uuid.uuid4().hex[:8]}.example.com"
    c = crd(group=g)
    v1 = c["spec"]["versions"][0]
    c["spec"]["versions"] = [{**v1, "name": "v1beta1", "storage": False}, v1,
                             {**v1, "name": "v1alpha1", "storage": False, "served": False}]
    try:
        assert (await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c))[0] == 201
        await wait_established(api, f"crontabs.{g}")
        code, body, _ = await api("GET", f"/apis/{g}")
        assert [v["version"] for v in body["versions"]] == ["v1", "v1beta1"], body
        code, body, _ = await api("GET", f"/apis/{g}/v1beta1")
        assert code == 200 and body["groupVersion"] == f"{g}/v1beta1" and body["resources"][0]["name"] == "crontabs"
        assert (await api("GET", f"/apis/{g}/v1alpha1"))[0] == 404
        b1 = f"/apis/{g}/v1beta1/namespaces/default/crontabs"
        obj = {"apiVersion": f"{g}/v1beta1", "kind": "CronTab", "metadata": {"name": "old"},
               "spec": {"cronSpec": "* * * * *"}}
        code, body, _ = await api("POST", b1, obj)
        assert code == 201 and body["apiVersion"] == f"{g}/v1beta1" and body["spec"]["replicas"] == 1, body
        code, body, _ = await api("GET", f"/apis/{g}/v1/namespaces/default/crontabs/old")
        assert code == 200 and body["apiVersion"] == f"{g}/v1"
        code, body, _ = await api("GET", b1)
        assert body["apiVersion"] == f"{g}/v1beta1" and body["items"][0]["apiVersion"] == f"{g}/v1beta1"
        code, body, _ = await api("PATCH", f"{b1}/old", {"spec": {"replicas": 2}}, ctype="application/merge-patch+json")
        assert code == 200 and body["apiVersion"] == f"{g}/v1beta1" and body["spec"]["replicas"] == 2
        code, body, _ = await api("POST", b1, {**obj, "apiVersion": f"{g}/v1"})
        assert code == 400, body
        code, body, _ = await api("DELETE", f"{b1}/old")
        assert code == 200
        assert (await api("GET", f"/apis/{g}/v1/namespaces/default/crontabs/old"))[0] == 404
        await api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.{g}")
    finally:
        from skiff.controller.crd import unregister
        unregister("crontabs")
    from skiff.controller.crd.versions import ALT
    assert not any(gv[0] == g for gv in ALT)
