"""OpenAPI v3 (skiff/controller/openapi.py and the /openapi routes): the index with hashed
URLs, one document per group-version generated from schemas/ with Kubernetes' component names,
a path for every resource and subresource with x-kubernetes-group-version-kind and
x-kubernetes-action, fieldValidation on EVERY patch operation (kubectl's probe picks any patch
op of the GVK, KUBECTL.md §3), strategic-merge-patch metadata (kubectl computes apply patches
from it), ETag / If-None-Match / hash redirects, hashes stable across processes, documents
served from a cache; and /openapi/v2 in gnostic's protobuf (kubectl's client-side validation of
`kind: List` manifests)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import pytest_asyncio

from skiff.api.resources import RESOURCES
from skiff.controller import openapi as O
from tests.unit.apitest import api_test_client

pytestmark = pytest.mark.asyncio

REF = "#/components/schemas/"


@pytest_asyncio.fixture
async def client(tmp_path):
    async with api_test_client(tmp_path) as (c, _reg, token):
        c.auth = {"Authorization": f"Bearer {token}"}
        yield c


def doc(key: str) -> dict:
    return json.loads(O.document(key)[0])


def resolve(d: dict, schema: dict) -> dict:
    """Follow $ref / single-element allOf to the component."""
    while True:
        if "$ref" in schema:
            schema = d["components"]["schemas"][schema["$ref"][len(REF):]]
        elif "allOf" in schema and len(schema["allOf"]) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            return schema


async def test_root_lists_every_group_version_with_its_hash(client):
    r = await client.get("/openapi/v3", headers=client.auth)
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    body = await r.json()
    assert set(body["paths"]) == {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1",
                                  "apis/discovery.k8s.io/v1", "apis/autoscaling/v2", "apis/policy/v1",
                                  "apis/networking.k8s.io/v1",
                                  "apis/storage.k8s.io/v1", "apis/scheduling.k8s.io/v1",
                                  "apis/apiextensions.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"}
    for key, entry in body["paths"].items():
        url = entry["serverRelativeURL"]
        assert url == f"/openapi/v3/{key}?hash={O.document(key)[1]}"
        r = await client.get(url, headers=client.auth)
        assert r.status == 200 and r.headers["ETag"] == f'"{O.document(key)[1]}"'
        assert r.headers["Cache-Control"] == "public, immutable"
        got = await r.read()
        assert got == O.document(key)[0]
        d = json.loads(got)
        assert d["openapi"].startswith("3.0") and d["paths"] and d["components"]["schemas"]
    # unauthenticated: 401 like every API path
    r = await client.get("/openapi/v3")
    assert r.status == 401
    # unknown group-version or version: 404
    for p in ("/openapi/v3/apis/batch/v2", "/openapi/v4"):
        r = await client.get(p, headers=client.auth)
        assert r.status == 404 and (await r.json())["reason"] == "NotFound"


async def test_etag_and_stale_hash(client):
    body, h = O.document("api/v1")
    r = await client.get("/openapi/v3/api/v1", headers={**client.auth, "If-None-Match": f'"{h}"'})
    assert r.status == 304
    r = await client.get("/openapi/v3/api/v1", headers=client.auth)
    assert r.status == 200 and r.headers["Cache-Control"] == "no-cache, private"
    # an old hash redirects to the current document (Kubernetes does the same)
    r = await client.get("/openapi/v3/api/v1?hash=0123", headers=client.auth, allow_redirects=False)
    assert r.status == 301 and r.headers["Location"] == f"/openapi/v3/api/v1?hash={h}"


async def test_every_patch_operation_carries_field_validation():
    for key in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1"):
        d = doc(key)
        patches = [(p, item["patch"]) for p, item in d["paths"].items() if "patch" in item]
        assert patches
        for p, op in patches:
            names = {(q["name"], q["in"]) for q in op["parameters"]}
            assert ("fieldValidation", "query") in names, p
            assert op["x-kubernetes-action"] == "patch"
        for p, item in d["paths"].items():
            for verb in ("post", "put"):
                if verb in item and item[verb]["x-kubernetes-action"] != "connect":
                    assert "fieldValidation" in {q["name"] for q in item[verb]["parameters"]}, (p, verb)
    # the probe kubectl runs: for the GVK, any patch operation (the status one included) has it
    pod = {"group": "", "version": "v1", "kind": "Pod"}
    ops = [(p, it["patch"]) for p, it in doc("api/v1")["paths"].items()
           if it.get("patch", {}).get("x-kubernetes-group-version-kind") == pod]
    assert sorted(p for p, _ in ops) == ["/api/v1/namespaces/{namespace}/pods/{name}",
                                         "/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers",
                                         "/api/v1/namespaces/{namespace}/pods/{name}/status"]


async def test_paths_for_every_resource_and_subresource():
    for r in RESOURCES.values():
        key = f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"
        d = doc(key)
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        coll = r.base + ("/namespaces/{namespace}" if r.namespaced else "") + "/" + r.plural
        item = coll + "/{name}"
        paths = d["paths"]
        assert {v: paths[coll][v]["x-kubernetes-action"] for v in ("get", "post", "delete")} == \
            {"get": "list", "post": "post", "delete": "deletecollection"}
        assert {v: paths[item][v]["x-kubernetes-action"] for v in ("get", "put", "patch", "delete")} == \
            {"get": "get", "put": "put", "patch": "patch", "delete": "delete"}
        for v in ("get", "put", "patch", "delete"):
            assert paths[item][v]["x-kubernetes-group-version-kind"] == gvk
        if r.namespaced:
            assert paths[f"{r.base}/{r.plural}"]["get"]["operationId"] == f"list{r.kind}ForAllNamespaces"
            assert paths[item]["patch"]["operationId"] == f"patchNamespaced{r.kind}"
        assert {p["name"] for p in paths[item]["parameters"] if p["in"] == "path"} == \
            ({"name", "namespace"} if r.namespaced else {"name"})
        for sub in r.subresources:
            ops = paths[f"{item}/{sub}"]
            if sub in ("status", "scale", "ephemeralcontainers"):
                assert set(ops) >= {"get", "put", "patch"}
                want = {"group": "autoscaling", "version": "v1", "kind": "Scale"} if sub == "scale" else gvk
                assert ops["patch"]["x-kubernetes-group-version-kind"] == want
            elif sub == "log":
                assert "text/plain" in ops["get"]["responses"]["200"]["content"]
                assert {"follow", "tailLines", "container", "previous"} <= {p["name"] for p in ops["get"]["parameters"]}
            elif sub == "binding":
                assert ops["post"]["x-kubernetes-group-version-kind"]["kind"] == "Binding"
            elif sub == "exec":
                assert ops["get"]["x-kubernetes-action"] == ops["post"]["x-kubernetes-action"] == "connect"
                assert {"command", "container", "stdin", "tty"} <= {p["name"] for p in ops["post"]["parameters"]}
        # every $ref resolves inside the document
        text = json.dumps(d)
        for part in text.split('"$ref": "')[1:]:
            assert part.split('"', 1)[0][len(REF):] in d["components"]["schemas"]


async def test_components_have_kubernetes_names_and_shapes():
    d = doc("api/v1")
    s = d["components"]["schemas"]
    for name in ("io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PodList", "io.k8s.api.core.v1.PodSpec",
                 "io.k8s.api.core.v1.Container", "io.k8s.api.core.v1.Node", "io.k8s.api.core.v1.Namespace",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "io.k8s.api.core.v1.Binding",
                 "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                 "io.k8s.apimachinery.pkg.api.resource.Quantity"):
        assert name in s, name
    assert s["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Pod"}]
    # what kubectl explain walks: Pod -> spec -> containers[] -> image
    spec = resolve(d, s["io.k8s.api.core.v1.Pod"]["properties"]["spec"])
    containers = spec["properties"]["containers"]
    assert containers["type"] == "array"
    c = resolve(d, containers["items"])
    assert c["properties"]["image"]["type"] == "string" and "name" in c.get("required", [])
    # OpenAPI 3.0, not JSON Schema 2020-12: no $defs/$id/const, no type lists, no file refs
    text = json.dumps(d)
    for bad in ('"$defs"', '"$id"', '"$schema"', '"const"', '.json#'):
        assert bad not in text, bad
    assert s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"] is True
    ts = resolve(d, s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["creationTimestamp"])
    assert ts["format"] == "date-time"
    apps = doc("apis/apps/v1")["components"]["schemas"]
    assert apps["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert "io.k8s.api.autoscaling.v1.Scale" in apps and "io.k8s.api.core.v1.PodTemplateSpec" in apps
    lease = doc("apis/coordination.k8s.io/v1")["components"]["schemas"]
    assert "io.k8s.api.coordination.v1.Lease" in lease
    bd = doc("apis/batch/v1")
    batch = bd["components"]["schemas"]
    assert batch["io.k8s.api.batch.v1.Job"]["x-kubernetes-group-version-kind"] == [
        {"group": "batch", "version": "v1", "kind": "Job"}]
    # kubectl explain job.spec.template.spec: the pod template the workloads share
    jspec = resolve(bd, batch["io.k8s.api.batch.v1.Job"]["properties"]["spec"])
    assert resolve(bd, jspec["properties"]["template"]) is batch["io.k8s.api.core.v1.PodTemplateSpec"]
    status = resolve(bd, batch["io.k8s.api.batch.v1.Job"]["properties"]["status"])
    assert {"active", "ready", "succeeded", "failed", "terminating", "startTime", "completionTime", "conditions",
            "uncountedTerminatedPods"} <= set(status["properties"])


async def test_generated_once_and_stable_across_processes():
    assert O.document("api/v1") is O.document("api/v1")   # cached, not regenerated
    code = ("from skiff.controller import openapi as O; "
            "print(O.root()[1], O.document('api/v1')[1], O.document('apis/apps/v1')[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == [O.root()[1], O.document("api/v1")[1], O.document("apis/apps/v1")[1]]


def _decode(buf: bytes) -> list[tuple[int, object]]:
    """A protobuf message as [(field number, bytes | int)] (enough for gnostic's openapi.v2)."""
    out, i = [], 0
    while i < len(buf):
        key, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        num, wire = key >> 3, key & 7
        n, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if wire == 2:
            out.append((num, buf[i:i + n]))
            i += n
        else:
            assert wire == 0
            out.append((num, n))
    return out


async def test_openapi_v2_for_client_side_validation(client):
    # kubectl validates `kind: List` manifests itself, from /openapi/v2 in gnostic's protobuf
    r = await client.get("/openapi/v2", headers={**client.auth,
                                                 "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert r.status == 200 and r.headers["Content-Type"] == O.V2_PROTOBUF and "@" not in O.V2_PROTOBUF
    top = _decode(await r.read())
    assert (1, b"2.0") in top
    defs = {}
    for num, named in _decode(dict(top)[9]):          # Definitions.additional_properties
        fields = dict(_decode(named))
        defs[fields[1].decode()] = _decode(fields[2])  # NamedSchema {name, value}
    assert {"io.k8s.api.core.v1.Pod", "io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.Container"} <= set(defs)
    pod = defs["io.k8s.api.core.v1.Pod"]
    assert (22, b"\n\x06object") in pod                # type: [object]
    ext = [dict(_decode(v)) for n, v in pod if n == 31]  # vendor extensions (NamedAny)
    gvk = next(e for e in ext if e[1] == b"x-kubernetes-group-version-kind")
    assert json.loads(dict(_decode(gvk[2]))[2]) == [{"group": "", "kind": "Pod", "version": "v1"}]
    props = {dict(_decode(p))[1].decode(): _decode(dict(_decode(p))[2]) for _, p in _decode(dict(pod)[25])}
    assert (1, b"#/definitions/io.k8s.api.core.v1.PodSpec") in props["spec"]
    # JSON for everyone else, with the same definitions
    r = await client.get("/openapi/v2", headers={**client.auth, "Accept": "application/json"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    doc = await r.json()
    assert doc["swagger"] == "2.0" and set(doc["definitions"]) == set(defs)
    assert doc["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["$ref"] == \
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    text = json.dumps(doc)
    assert "#/components/" not in text and '"nullable"' not in text and '"allOf"' not in text


async def test_patch_metadata_for_kubectl_apply():
    # kubectl 1.32 computes client-side apply patches from these documents: lists without a
    # merge key would be atomic to it, and every re-apply would resend defaulted lists
    s = doc("api/v1")["components"]["schemas"]
    c = s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert c["x-kubernetes-patch-merge-key"] == "name" and c["x-kubernetes-patch-strategy"] == "merge"
    assert s["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"] == \
        "merge,retainKeys"
    ports = s["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert s["io.k8s.api.core.v1.Container"]["properties"]["env"]["x-kubernetes-patch-merge-key"] == "name"
    assert "x-kubernetes-patch-merge-key" not in s["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"]
    fin = s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"]
    assert fin["x-kubernetes-patch-strategy"] == "merge"
    dep = doc("apis/apps/v1")["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
    assert dep["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    # a Service's ports merge by port (and protocol); the ports and addresses of endpoints are atomic
    sp = s["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert sp["x-kubernetes-patch-merge-key"] == "port" and sp["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    sub = s["io.k8s.api.core.v1.EndpointSubset"]["properties"]
    assert sub["addresses"]["x-kubernetes-list-type"] == "atomic" and sub["ports"]["x-kubernetes-list-type"] == "atomic"
    assert "x-kubernetes-patch-merge-key" not in sub["addresses"]
    es = doc("apis/discovery.k8s.io/v1")["components"]["schemas"]["io.k8s.api.discovery.v1.EndpointSlice"]
    assert es["properties"]["ports"]["x-kubernetes-list-type"] == "atomic"
    assert es["x-kubernetes-group-version-kind"] == [{"group": "discovery.k8s.io", "version": "v1",
                                                      "kind": "EndpointSlice"}]
