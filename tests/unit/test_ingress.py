"""networking.k8s.io/v1 Ingresses and IngressClasses: kube-apiserver's validation messages and
field paths, the IngressClass defaults, get's cells, and through a real control plane the
DefaultIngressClass admission, the cleared status on create and the /status subresource."""
from __future__ import annotations

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.tables import CELLS, COLUMNS
from skiff.api.validation import ValidationError
from skiff.controller.admission import admit
from skiff.controller.controlplane import ControlPlane

SVC = {"service": {"name": "web", "port": {"number": 80}}}


def ing(spec: dict, name: str = "i", annotations: dict | None = None) -> dict:
    md = {"name": name, "namespace": "default"}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md, "spec": spec}


def ic(spec: dict, name: str = "c") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": name}, "spec": spec}


def causes(obj: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        admit(obj)
    return [(c["field"], c["message"]) for c in e.value.causes]


def paths(*ps: dict, host: str | None = None) -> dict:
    rule: dict = {"http": {"paths": list(ps)}}
    if host is not None:
        rule["host"] = host
    return {"rules": [rule]}


def test_valid_ingress_is_stored_as_given():
    spec = {"ingressClassName": "nginx", "tls": [{"hosts": ["*.example.com", "a.example.com"], "secretName": "t"}],
            **paths({"path": "/", "pathType": "Prefix", "backend": SVC},
                    {"pathType": "ImplementationSpecific", "backend": {"service": {"name": "w", "port": {"name": "h"}}}},
                    host="*.example.com")}
    obj, _ = admit(ing(spec))
    assert obj["spec"] == spec


def test_rules_or_default_backend_required():
    assert causes(ing({})) == [("spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` "
                                        "or `rules` must be specified")]
    obj, _ = admit(ing({"defaultBackend": SVC}))
    assert obj["spec"]["defaultBackend"] == SVC


def test_path_type_required_and_supported():
    assert causes(ing(paths({"path": "/", "backend": SVC}))) == [
        ("spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified")]
    assert causes(ing(paths({"path": "/", "pathType": "Regex", "backend": SVC}))) == [
        ("spec.rules[0].http.paths[0].pathType",
         'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"')]


def test_paths_absolute_and_clean():
    f = "spec.rules[0].http.paths[0].path"
    assert causes(ing(paths({"path": "foo", "pathType": "Prefix", "backend": SVC}))) == [
        (f, 'Invalid value: "foo": must be an absolute path')]
    assert causes(ing(paths({"pathType": "Exact", "backend": SVC}))) == [
        (f, 'Invalid value: "": must be an absolute path')]
    assert causes(ing(paths({"path": "/a//b/.", "pathType": "Prefix", "backend": SVC}))) == [
        (f, "Invalid value: \"/a//b/.\": must not contain '//'"), (f, "Invalid value: \"/a//b/.\": cannot end with '/.'")]
    assert causes(ing(paths({"path": "rel", "pathType": "ImplementationSpecific", "backend": SVC}))) == [
        (f, 'Invalid value: "rel": must be an absolute path')]
    admit(ing(paths({"pathType": "ImplementationSpecific", "backend": SVC})))   # no path: fine
    assert causes(ing({"rules": [{"http": {"paths": []}}]})) == [("spec.rules[0].http.paths", "Required value")]


def test_hosts():
    f = "spec.rules[0].host"
    p = {"path": "/", "pathType": "Prefix", "backend": SVC}
    assert causes(ing(paths(p, host="10.0.0.1"))) == [(f, 'Invalid value: "10.0.0.1": must be a DNS name, not an IP '
                                                          'address')]
    got = causes(ing(paths(p, host="foo.*.com")))
    assert got[0][0] == f and got[0][1].startswith('Invalid value: "foo.*.com": a wildcard DNS-1123 subdomain must '
                                                   "start with '*.'")
    got = causes(ing(paths(p, host="Foo.com")))
    assert got[0][0] == f and "RFC 1123 subdomain" in got[0][1]
    got = causes(ing({"defaultBackend": SVC, "tls": [{"hosts": ["*"], "secretName": "Bad_"}]}))
    assert [c[0] for c in got] == ["spec.tls[0].hosts[0]", "spec.tls[0].secretName"]


def test_backends():
    f = "spec.defaultBackend"
    both = {**SVC, "resource": {"kind": "B", "name": "b"}}
    assert causes(ing({"defaultBackend": both})) == [(f, 'Invalid value: "": cannot set both resource and service '
                                                         'backends')]
    assert causes(ing({"defaultBackend": {}})) == [(f, 'Invalid value: "": resource or service backend is required')]
    assert causes(ing({"defaultBackend": {"service": {"name": "web", "port": {"name": "h", "number": 80}}}})) == [
        (f, 'Invalid value: "": cannot set both port name & port number')]
    assert causes(ing({"defaultBackend": {"service": {"name": "web"}}})) == [
        (f, "Required value: port name or number is required")]
    assert causes(ing({"defaultBackend": {"service": {"name": "1web", "port": {"number": 70000}}}})) == [
        (f + ".service.name", 'Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric '
                              "characters or '-', start with an alphabetic character, and end with an alphanumeric "
                              "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                              "'[a-z]([-a-z0-9]*[a-z0-9])?')"),
        (f + ".service.port.number", "Invalid value: 70000: must be between 1 and 65535, inclusive")]
    assert causes(ing({"defaultBackend": {"service": {"port": {"number": 80}}}})) == [
        (f + ".service.name", "Required value")]
    assert causes(ing({"defaultBackend": {"resource": {"apiGroup": "x", "kind": "a/b"}}})) == [
        (f + ".resource.kind", "Invalid value: \"a/b\": may not contain '/'"),
        (f + ".resource.name", "Required value: name is required")]


def test_class_name_and_annotation():
    got = causes(ing({"defaultBackend": SVC, "ingressClassName": "Nginx"}))
    assert got[0][0] == "spec.ingressClassName" and "RFC 1123 subdomain" in got[0][1]


def test_status_validation():
    obj = ing({"defaultBackend": SVC})
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "nope"}, {"hostname": "1.2.3.4"}]}}
    assert causes(obj) == [("status.loadBalancer.ingress[0].ip", 'Invalid value: "nope": must be a valid IP address'),
                           ("status.loadBalancer.ingress[1].hostname",
                            'Invalid value: "1.2.3.4": must be a DNS name, not an IP address')]


def test_ingressclass_validation_and_defaults():
    obj, _ = admit(ic({"controller": "k8s.io/nginx", "parameters": {"kind": "P", "name": "p"}}))
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    assert causes(ic({})) == [("spec.controller", "Required value")]
    assert causes(ic({"controller": "nginx"})) == [
        ("spec.controller", 'Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")')]
    assert causes(ic({"controller": "k8s.io/a b"})) == [
        ("spec.controller", "Invalid value: \"a b\": Invalid path (regex used for validation is "
                            "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')")]
    assert causes(ic({"controller": "k8s.io/x", "parameters": {"kind": "P", "name": "p", "scope": "Namespace"}})) == [
        ("spec.parameters.namespace", "Required value: `parameters.scope` is set to 'Namespace'")]
    assert causes(ic({"controller": "k8s.io/x", "parameters": {"kind": "P", "name": "p", "namespace": "a"}})) == [
        ("spec.parameters.namespace", "Forbidden: `parameters.scope` is set to 'Cluster'")]
    assert causes(ic({"controller": "k8s.io/x", "parameters": {"name": "p", "scope": "Node"}})) == [
        ("spec.parameters.kind", "Required value: kind is required"),
        ("spec.parameters.scope", 'Unsupported value: "Node": supported values: "Cluster", "Namespace"')]


def test_cells():
    assert [c["name"] for c in COLUMNS["ingresses"]] == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert [c["name"] for c in COLUMNS["ingressclasses"]] == ["Name", "Controller", "Parameters", "Age"]
    obj = ing({"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}], "tls": [{}]})
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.200"}, {"ip": "10.0.0.100"}, {"hostname": "x"}]}}
    assert CELLS["ingresses"](obj, None)[:5] == ["i", "<none>", "a,b,c + 2 more...", "10.0.0.100,10...", "80, 443"]
    assert CELLS["ingresses"](ing({"ingressClassName": "n", "rules": [{}]}), None)[1:5] == ["n", "*", "", "80"]
    assert CELLS["ingressclasses"](ic({"controller": "k8s.io/x", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "P", "name": "p"}}), None)[1:3] == ["k8s.io/x", "P.k8s.example.com/p"]
    assert CELLS["ingressclasses"](ic({"controller": "k8s.io/x"}), None)[2] == "<none>"


@pytest_asyncio.fixture
async def c(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    await cp.start()
    try:
        yield cp.local_client()
    finally:
        await cp.stop()


@pytest.mark.asyncio
async def test_default_class_status_and_immutable_controller(c):
    # no default class: the class stays unset
    got = await c.create("ingresses", ing({"defaultBackend": SVC}, "a"), "default")
    assert "ingressClassName" not in got["spec"]
    await c.create("ingressclasses", ic({"controller": "k8s.io/x"}, "plain"))
    dflt = ic({"controller": "k8s.io/nginx"}, "nginx")
    dflt["metadata"]["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    await c.create("ingressclasses", dflt)
    obj = ing({"defaultBackend": SVC}, "b")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    got = await c.create("ingresses", obj, "default")
    assert got["spec"]["ingressClassName"] == "nginx"
    assert not (got.get("status") or {}).get("loadBalancer")        # the status is the controller's alone
    # the old annotation keeps the class unset; together with the field it is refused
    got = await c.create("ingresses", ing({"defaultBackend": SVC}, "c", {"kubernetes.io/ingress.class": "x"}),
                         "default")
    assert "ingressClassName" not in got["spec"]
    with pytest.raises(APIError) as e:
        await c.create("ingresses", ing({"defaultBackend": SVC, "ingressClassName": "plain"}, "d",
                                        {"kubernetes.io/ingress.class": "x"}), "default")
    assert e.value.status["details"]["causes"] == [{
        "field": "annotations.kubernetes.io/ingress.class", "reason": "FieldValueInvalid",
        "message": 'Invalid value: "x": can not be set when the class field is also set'}]
    # /status
    got = await c.patch("ingresses", "b", {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}}, "default",
                        subresource="status")
    assert got["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.7"}]
    got = await c.patch("ingresses", "b", {"spec": {"ingressClassName": "plain"},
                                          "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.8"}]}}}, "default")
    assert got["spec"]["ingressClassName"] == "plain" and got["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.7"}]
    with pytest.raises(APIError) as e:
        await c.patch("ingresses", "b", {"status": {"loadBalancer": {"ingress": [{"ip": "x"}]}}}, "default",
                      subresource="status")
    assert e.value.status["code"] == 422
    with pytest.raises(APIError) as e:
        await c.patch("ingressclasses", "plain", {"spec": {"controller": "k8s.io/y"}})
    assert e.value.status["details"]["causes"][0]["message"] == 'Invalid value: "k8s.io/y": field is immutable'
