"""fieldValidation=Strict|Warn|Ignore on POST/PUT/PATCH (and server-side apply) as Kubernetes:
Strict -> 400 BadRequest "strict decoding error: unknown field ..." (duplicate JSON fields too),
Warn (the default) -> dropped with a Warning header each, Ignore -> dropped silently; other
schema errors stay 422 Invalid with causes. Request bodies in JSON or YAML; protobuf -> 415 with
what to do instead. Over aiohttp's test server with a real SQLite store."""
from __future__ import annotations

import copy
import json

import pytest
import pytest_asyncio
import yaml

from skiff.api.validation import StrictDecodingError, ValidationError, validate
from tests.unit.apitest import api_test_client

pytestmark = pytest.mark.asyncio

PODS = "/api/v1/namespaces/default/pods"
DEPS = "/apis/apps/v1/namespaces/default/deployments"
STRICT_POD = 'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '


def pod(name="web", **extra_spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **extra_spec}}


def deployment(name="d"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def bad_pod(name="bad"):
    p = pod(name, foo=1)
    p["spec"]["containers"][0]["bar"] = True
    return p


@pytest_asyncio.fixture
async def api(tmp_path):
    async with api_test_client(tmp_path) as (client, _reg, token):
        async def call(method, path, body=None, *, ctype="application/json", fv=None, raw=None, params=None):
            headers = {"Authorization": f"Bearer {token}"}
            params = dict(params or {})
            if fv is not None:
                params["fieldValidation"] = fv
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            if data is not None:
                headers["Content-Type"] = ctype
            async with client.request(method, path, data=data, headers=headers, params=params) as r:
                text = await r.text()
                try:
                    out = json.loads(text)
                except ValueError:
                    out = text
                return r.status, out, r.headers.getall("Warning", [])
        yield call


async def test_strict_rejects_unknown_fields_with_400(api):
    st, body, _ = await api("POST", PODS, bad_pod(), fv="Strict")
    assert st == 400 and body["reason"] == "BadRequest" and body["code"] == 400
    assert body["message"] == STRICT_POD + 'unknown field "spec.containers[0].bar", unknown field "spec.foo"' \
        or body["message"] == STRICT_POD + 'unknown field "spec.foo", unknown field "spec.containers[0].bar"'
    st, _, _ = await api("GET", PODS + "/bad")
    assert st == 404
    st, body, _ = await api("POST", PODS, pod("one", foo=1), fv="Strict")
    assert st == 400 and body["message"] == STRICT_POD + 'unknown field "spec.foo"'
    # other groups: the version alone, as Kubernetes prints it
    d = deployment()
    d["spec"]["template"]["spec"]["nodeSelectorr"] = {}
    st, body, _ = await api("POST", DEPS, d, fv="Strict")
    assert st == 400 and body["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: strict '
                                             'decoding error: unknown field "spec.template.spec.nodeSelectorr"')
    # the decoder runs first: unknown fields win over invalid values
    p = pod("both", foo=1)
    p["spec"]["containers"][0]["image"] = ""
    st, body, _ = await api("POST", PODS, p, fv="Strict")
    assert st == 400 and "strict decoding error" in body["message"]
    # a clean object passes under Strict
    st, _, warns = await api("POST", PODS, pod("ok"), fv="Strict")
    assert st == 201 and warns == []


async def test_strict_on_put_patch_and_apply(api):
    st, cur, _ = await api("POST", PODS, pod("web"))
    assert st == 201
    new = copy.deepcopy(cur)
    new["spec"]["foo"] = 1
    st, body, _ = await api("PUT", PODS + "/web", new, fv="Strict")
    assert st == 400 and body["message"] == STRICT_POD + 'unknown field "spec.foo"'
    for ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        st, body, _ = await api("PATCH", PODS + "/web", {"metadata": {"labelz": {"a": "b"}}}, ctype=ctype, fv="Strict")
        assert st == 400 and body["message"] == STRICT_POD + 'unknown field "metadata.labelz"', ctype
    st, body, _ = await api("PATCH", PODS + "/web", [{"op": "add", "path": "/spec/foo", "value": 1}],
                            ctype="application/json-patch+json", fv="Strict")
    assert st == 400 and body["message"] == STRICT_POD + 'unknown field "spec.foo"'
    # server-side apply (kubectl apply --server-side sends fieldValidation=Strict)
    cfg = pod("web")
    cfg["spec"]["foo"] = 1
    st, body, _ = await api("PATCH", PODS + "/web", raw=json.dumps(cfg), ctype="application/apply-patch+yaml",
                            fv="Strict", params={"fieldManager": "kubectl"})
    assert st == 400 and body["message"] == STRICT_POD + 'unknown field "spec.foo"'
    st, body, _ = await api("PATCH", PODS + "/new", raw=json.dumps(pod("new", foo=1)),
                            ctype="application/apply-patch+yaml", fv="Strict", params={"fieldManager": "kubectl"})
    assert st == 400 and "strict decoding error" in body["message"]
    st, live, _ = await api("GET", PODS + "/web")
    assert "foo" not in live["spec"] and "labelz" not in live["metadata"]


async def test_warn_is_the_default_and_drops_unknown_fields(api):
    for fv, name in ((None, "dflt"), ("Warn", "warn")):
        st, body, warns = await api("POST", PODS, bad_pod(name), fv=fv)
        assert st == 201, body
        assert sorted(warns) == ['299 - "unknown field \\"spec.containers[0].bar\\""',
                                 '299 - "unknown field \\"spec.foo\\""']
        assert "foo" not in body["spec"] and "bar" not in body["spec"]["containers"][0]
        st, live, _ = await api("GET", PODS + "/" + name)
        assert "foo" not in live["spec"] and "bar" not in live["spec"]["containers"][0]
    # PUT and PATCH warn as well
    st, cur, _ = await api("GET", PODS + "/warn")
    cur["metadata"]["labels"] = {"a": "b"}
    cur["extra"] = 1
    st, body, warns = await api("PUT", PODS + "/warn", cur)
    assert st == 200 and warns == ['299 - "unknown field \\"extra\\""'] and "extra" not in body
    assert body["metadata"]["labels"] == {"a": "b"}
    st, body, warns = await api("PATCH", PODS + "/warn", {"spec": {"zzz": 1}, "metadata": {"labels": {"c": "d"}}},
                                ctype="application/merge-patch+json", fv="Warn")
    assert st == 200 and warns == ['299 - "unknown field \\"spec.zzz\\""'] and body["metadata"]["labels"]["c"] == "d"
    # a skiff "accepted but not supported" warning and an unknown-field warning together
    st, body, warns = await api("POST", PODS, pod("both", runtimeClassName="gvisor", foo=1))
    assert st == 201 and len(warns) == 2 and any("unknown field" in w for w in warns) \
        and any("spec.runtimeClassName" in w for w in warns)


async def test_ignore_drops_silently(api):
    st, body, warns = await api("POST", PODS, bad_pod("quiet"), fv="Ignore")
    assert st == 201 and warns == [] and "foo" not in body["spec"]
    st, body, warns = await api("PATCH", PODS + "/quiet", {"spec": {"zzz": 1}}, ctype="application/merge-patch+json",
                                fv="Ignore")
    assert st == 200 and warns == [] and "zzz" not in body["spec"]


async def test_other_errors_stay_422_with_causes(api):
    for fv in (None, "Warn", "Ignore", "Strict"):
        p = pod("inv")
        p["spec"]["containers"][0]["image"] = ""
        if fv != "Strict":
            p["spec"]["foo"] = 1   # dropped (with a warning under Warn); the image error remains
        st, body, _ = await api("POST", PODS, p, fv=fv)
        assert st == 422 and body["reason"] == "Invalid", (fv, body)
        assert body["details"]["causes"] == [{"field": "spec.containers[0].image", "reason": "FieldValueRequired",
                                              "message": "Required value"}], (fv, body)
    st, body, _ = await api("POST", PODS, pod("x"), fv="strict")
    assert st == 400 and body["reason"] == "BadRequest" and "fieldValidation" in body["message"]


async def test_duplicate_fields(api):
    raw = ('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","name":"dup2"},'
           '"spec":{"containers":[{"name":"c","image":"a","image":"b"}]}}')
    st, body, _ = await api("POST", PODS, raw=raw, fv="Strict")
    assert st == 400 and body["message"] == STRICT_POD + ('duplicate field "metadata.name", '
                                                          'duplicate field "spec.containers[0].image"')
    st, body, _ = await api("POST", PODS, raw=raw)   # Warn: the last one wins, as encoding/json
    assert st == 201 and body["metadata"]["name"] == "dup2" and body["spec"]["containers"][0]["image"] == "b"


from tests.unit.pbenc import envelope, fld  # noqa: E402


async def test_yaml_and_protobuf_bodies(api):
    text = yaml.safe_dump(pod("fromyaml"))
    st, body, _ = await api("POST", PODS, raw=text, ctype="application/yaml")
    assert st == 201 and body["metadata"]["name"] == "fromyaml"
    body["metadata"]["labels"] = {"y": "1"}
    st, body, _ = await api("PUT", PODS + "/fromyaml", raw=yaml.safe_dump(body), ctype="application/yaml")
    assert st == 200 and body["metadata"]["labels"] == {"y": "1"}
    st, body, _ = await api("POST", PODS, raw=yaml.safe_dump(pod("yamlbad", foo=1)), ctype="application/yaml",
                            fv="Strict")
    assert st == 400 and body["message"] == STRICT_POD + 'unknown field "spec.foo"'
    st, body, _ = await api("POST", PODS, raw="a: [", ctype="application/yaml")
    assert st == 400 and body["reason"] == "BadRequest"
    # protobuf (kubectl 1.32's `create namespace|configmap|secret|deployment`): the small kinds are
    # read, the others get a 415 saying what to do instead
    pb = envelope("v1", "Namespace", fld(1, fld(1, b"pbns") + fld(11, fld(1, b"team") + fld(2, b"a"))))
    st, body, _ = await api("POST", "/api/v1/namespaces", raw=pb, ctype="application/vnd.kubernetes.protobuf")
    assert st == 201 and body["metadata"]["name"] == "pbns"
    assert body["metadata"]["labels"] == {"team": "a", "kubernetes.io/metadata.name": "pbns"}
    cm = envelope("v1", "ConfigMap", fld(1, fld(1, b"cfg")) + fld(2, fld(1, b"k") + fld(2, b"v"))
                  + fld(3, fld(1, b"bin") + fld(2, b"\x00\x01")))
    st, body, _ = await api("POST", "/api/v1/namespaces/pbns/configmaps", raw=cm,
                            ctype="application/vnd.kubernetes.protobuf")
    assert st == 201 and body["data"] == {"k": "v"} and body["binaryData"] == {"bin": "AAE="}
    # a Deployment is read for the fields kubectl writes; one it does not read (resourceClaims) is refused
    claim = fld(39, fld(1, b"gpu"))
    dep = envelope("apps/v1", "Deployment", fld(1, fld(1, b"d")) + fld(2, fld(3, fld(2, claim))))
    st, body, _ = await api("POST", DEPS, raw=dep, ctype="application/vnd.kubernetes.protobuf")
    assert st == 415 and body["reason"] == "UnsupportedMediaType" and body["code"] == 415
    assert "(got Deployment: spec.template.spec: field 39 is not one skiff reads from protobuf)" in body["message"]
    assert "kubectl create deployment x --image=y --dry-run=client -o yaml | kubectl apply -f -" in body["message"]
    st, body, _ = await api("POST", "/api/v1/namespaces", raw=b"k8s\x00\n\xff", ctype="application/vnd.kubernetes.protobuf")
    assert st == 415                                     # garbage: refused, nothing made
    st, body, _ = await api("POST", PODS, raw="<pod/>", ctype="application/xml")
    assert st == 415 and body["reason"] == "UnsupportedMediaType"
    st, _, _ = await api("GET", "/api/v1/namespaces/pbns")
    assert st == 200


async def test_validate_keeps_reporting_unknown_fields_without_a_directive():
    # skiffctl validates locally with validate(obj): unknown fields are causes there
    with pytest.raises(ValidationError) as ei:
        validate(bad_pod())
    assert {c["field"] for c in ei.value.causes} == {"spec.foo", "spec.containers[0].bar"}
    with pytest.raises(StrictDecodingError):
        validate(bad_pod(), "Strict")
    obj = bad_pod()
    warns = validate(obj, "Warn")
    assert [str(w) for w in warns] == ['unknown field "spec.containers[0].bar"', 'unknown field "spec.foo"'] \
        or [str(w) for w in warns] == ['unknown field "spec.foo"', 'unknown field "spec.containers[0].bar"']
    assert obj == pod("bad")
    obj = bad_pod()
    assert validate(obj, "Ignore") == [] and obj == pod("bad")
