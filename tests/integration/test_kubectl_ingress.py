"""networking.k8s.io/v1 Ingresses and IngressClasses with the real kubectl 1.32: discovery,
apply of a Service + Ingress manifest, get's columns, describe, kubectl create ingress, the
default IngressClass filling ingressClassName, kube-apiserver's validation messages and the
/status subresource."""
from __future__ import annotations

import json
import re
import uuid

from tests.integration.kubectl import kube  # noqa: F401 (kube is a fixture)

SFX = uuid.uuid4().hex[:6]
SVC_NAME, ING, CLS, DCLS = f"ing-web-{SFX}", f"ing-a-{SFX}", f"cls-{SFX}", f"dcls-{SFX}"


def _svc() -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SVC_NAME},
            "spec": {"selector": {"app": SVC_NAME}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def _ing() -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": ING},
            "spec": {"ingressClassName": CLS,
                     "tls": [{"hosts": ["foo.example.com"], "secretName": "foo-tls"}],
                     "rules": [{"host": "foo.example.com", "http": {"paths": [
                         {"path": "/", "pathType": "Prefix",
                          "backend": {"service": {"name": SVC_NAME, "port": {"number": 80}}}}]}},
                         {"http": {"paths": [{"path": "/api", "pathType": "Exact",
                                              "backend": {"service": {"name": SVC_NAME, "port": {"name": "http"}}}}]}}]}}


def test_ingress_with_kubectl(kube):
    k = kube.kubectl
    created = [f"ing-b-{SFX}", f"ing-c-{SFX}", f"ing-bad-{SFX}"]
    try:
        out = k.ok("api-resources", "--api-group=networking.k8s.io")
        assert re.search(r"^ingressclasses\s+networking.k8s.io/v1\s+false\s+IngressClass$", out, re.M), out
        assert re.search(r"^ingresses\s+ing\s+networking.k8s.io/v1\s+true\s+Ingress$", out, re.M), out
        cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": CLS},
               "spec": {"controller": "example.com/ingress",
                        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}
        k.ok("apply", "--dry-run=server", "-f", kube.file("ing.yaml", _svc(), cls, _ing()))
        assert kube.gone("ingress", ING)
        k.ok("apply", "-f", kube.file("ing.yaml", _svc(), cls, _ing()))
        lines = k.ok("get", "ing", ING).splitlines()
        assert re.split(r"\s{2,}", lines[0].strip()) == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        assert lines[1].split()[:5] == [ING, CLS, "foo.example.com", "80,", "443"], lines
        lines = k.ok("get", "ingressclass", CLS).splitlines()
        assert re.split(r"\s{2,}", lines[0].strip()) == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
        assert lines[1].split()[:3] == [CLS, "example.com/ingress", "IngressParameters.k8s.example.com/p"]
        assert k.json("get", "ingressclass", CLS)["spec"]["parameters"]["scope"] == "Cluster"

        text = k.ok("describe", "ingress", ING)
        assert re.search(rf"^Ingress Class:\s+{CLS}$", text, re.M), text
        assert re.search(rf"^\s+foo-tls terminates foo.example.com$", text, re.M), text
        assert re.search(rf"^\s+/\s+{SVC_NAME}:80 \(", text, re.M), text
        assert re.search(rf"^\s+/api\s+{SVC_NAME}:http \(", text, re.M), text
        assert "<error" not in text, text      # the backends' Endpoints exist

        # /status: written through the subresource, kept by spec writes
        k.ok("patch", "ingress", ING, "--subresource=status", "--type=merge",
             "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}))
        lines = k.ok("get", "ing", ING).splitlines()
        assert lines[1].split()[3] == "192.0.2.10", lines
        err = k.fails("patch", "ingress", ING, "--subresource=status", "--type=merge",
                      "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "nope"}]}}}))
        assert "status.loadBalancer.ingress[0].ip: Invalid value: \"nope\": must be a valid IP address" in err, err

        # the default class fills ingressClassName of an Ingress created without one
        dcls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": DCLS, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": "example.com/default"}}
        k.ok("apply", "-f", kube.file("dcls.yaml", dcls))
        k.ok("create", "ingress", created[0], f"--rule=bar.example.com/app*={SVC_NAME}:80,tls=bar-tls")
        got = k.json("get", "ingress", created[0])
        assert got["spec"]["ingressClassName"] == DCLS
        assert got["spec"]["rules"][0]["http"]["paths"][0] == {
            "path": "/app", "pathType": "Prefix", "backend": {"service": {"name": SVC_NAME, "port": {"number": 80}}}}
        assert got["spec"]["tls"] == [{"hosts": ["bar.example.com"], "secretName": "bar-tls"}]
        k.ok("create", "ingress", created[1], f"--class={CLS}", f"--default-backend={SVC_NAME}:http")
        got = k.json("get", "ingress", created[1])
        assert got["spec"]["ingressClassName"] == CLS
        assert got["spec"]["defaultBackend"] == {"service": {"name": SVC_NAME, "port": {"name": "http"}}}

        # invalid Ingresses are refused with kube-apiserver's messages
        bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": created[2]},
               "spec": {"rules": [{"host": "10.1.2.3", "http": {"paths": [
                   {"path": "rel", "pathType": "Prefix", "backend": {"service": {"name": SVC_NAME}}},
                   {"path": "/", "backend": {"service": {"name": SVC_NAME, "port": {"number": 80}}}}]}}]}}
        err = k.fails("apply", "-f", kube.file("bad.yaml", bad))
        assert f'The Ingress "{created[2]}" is invalid:' in err, err
        for msg in ('spec.rules[0].host: Invalid value: "10.1.2.3": must be a DNS name, not an IP address',
                    'spec.rules[0].http.paths[0].path: Invalid value: "rel": must be an absolute path',
                    "spec.rules[0].http.paths[0].backend: Required value: port name or number is required",
                    "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified"):
            assert msg in err, err
        err = k.fails("apply", "-f", kube.file("bad2.yaml", {**bad, "spec": {}}))
        assert "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be " \
               "specified" in err, err
        err = k.fails("patch", "ingressclass", CLS, "--type=merge", "-p", '{"spec":{"controller":"example.com/x"}}')
        assert 'spec.controller: Invalid value: "example.com/x": field is immutable' in err, err
    finally:
        k("delete", "ingress", ING, *created, "--ignore-not-found")
        k("delete", "ingressclass", CLS, DCLS, "--ignore-not-found")
        k("delete", "service", SVC_NAME, "--ignore-not-found")


def _svc_backend(name: str, port: int) -> dict:
    return {"service": {"name": name, "port": {"number": port}}}


def _rule(host: str | None, *paths: tuple[str, str, dict]) -> dict:
    rule: dict = {"http": {"paths": [{"path": p, "pathType": t, "backend": b} for p, t, b in paths]}}
    if host:
        rule["host"] = host
    return rule


def _docs_examples() -> list[dict]:
    """The Ingress and IngressClass examples of the Kubernetes documentation
    (kubernetes/website content/en/examples/service/networking/*ingress*.yaml, external-lb.yaml,
    namespaced-params.yaml), with unique names."""
    n = lambda s: f"{s}-{SFX}"  # noqa: E731
    ing = lambda name, spec: {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",  # noqa: E731
                              "metadata": {"name": n(name)}, "spec": spec}
    cls = lambda name, spec, **md: {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",  # noqa: E731
                                    "metadata": {"name": n(name), **md}, "spec": spec}
    bucket = lambda name: {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": name}}  # noqa
    return [
        cls("example-class", {"controller": "k8s.io/example-class"},
            labels={"app.kubernetes.io/component": "controller"},
            annotations={"ingressclass.kubernetes.io/is-default-class": "true"}),
        cls("external-lb", {"controller": "example.com/ingress-controller", "parameters": {
            "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}),
        cls("external-lb-ns", {"controller": "example.com/ingress-controller", "parameters": {
            "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb",
            "namespace": "external-configuration", "scope": "Namespace"}}),
        ing("minimal-ingress", {"ingressClassName": "nginx-example",
                                "rules": [_rule(None, ("/testpath", "Prefix", _svc_backend("test", 80)))]}),
        ing("ingress-resource-backend", {"defaultBackend": bucket("static-assets"), "rules": [
            _rule(None, ("/icons", "ImplementationSpecific", bucket("icon-assets")))]}),
        ing("ingress-wildcard-host", {"rules": [_rule("foo.bar.com", ("/bar", "Prefix", _svc_backend("service1", 80))),
                                                _rule("*.foo.com", ("/foo", "Prefix", _svc_backend("service2", 80)))]}),
        ing("name-virtual-host-ingress", {"rules": [
            _rule("foo.bar.com", ("/", "Prefix", _svc_backend("service1", 80))),
            _rule("bar.foo.com", ("/", "Prefix", _svc_backend("service2", 80)))]}),
        ing("simple-fanout-example", {"rules": [_rule("foo.bar.com", ("/foo", "Prefix", _svc_backend("service1", 4200)),
                                                      ("/bar", "Prefix", _svc_backend("service2", 8080)))]}),
        ing("tls-example-ingress", {"tls": [{"hosts": ["https-example.foo.com"], "secretName": "testsecret-tls"}],
                                    "rules": [_rule("https-example.foo.com",
                                                    ("/", "Prefix", _svc_backend("service1", 80)))]}),
        ing("test-ingress", {"defaultBackend": _svc_backend("test", 80)}),
    ]


def test_docs_examples_apply(kube):
    k = kube.kubectl
    objs = _docs_examples()
    path = kube.file("docs-examples.yaml", *objs)
    ings = [o["metadata"]["name"] for o in objs if o["kind"] == "Ingress"]
    classes = [o["metadata"]["name"] for o in objs if o["kind"] == "IngressClass"]
    try:
        k.ok("apply", "--dry-run=server", "-f", path)
        assert all(kube.gone("ingress", i) for i in ings)
        k.ok("apply", "-f", path)
        got = {i["metadata"]["name"]: i for i in k.json("get", "ingress")["items"] if i["metadata"]["name"] in ings}
        assert sorted(got) == sorted(ings)
        # the documentation's default class named every Ingress that named none
        assert got[f"minimal-ingress-{SFX}"]["spec"]["ingressClassName"] == "nginx-example"
        assert got[f"test-ingress-{SFX}"]["spec"]["ingressClassName"] == f"example-class-{SFX}"
        lines = k.ok("get", "ing", f"ingress-wildcard-host-{SFX}", f"tls-example-ingress-{SFX}").splitlines()
        assert lines[1].split()[2] == "foo.bar.com,*.foo.com", lines
        assert lines[2].split()[2:5] == ["https-example.foo.com", "80,", "443"], lines
        assert k.json("get", "ingressclass", f"external-lb-{SFX}")["spec"]["parameters"]["scope"] == "Cluster"
        # skiffctl applies and lists the kinds too
        sk = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": f"skiffctl-{SFX}"},
              "spec": {"ingressClassName": f"external-lb-{SFX}", "defaultBackend": _svc_backend("test", 80)}}
        ings.append(sk["metadata"]["name"])
        kube.host.ctl("apply", "-f", kube.file("sk.yaml", sk))
        ours = kube.host.ctl("get", "ingress", sk["metadata"]["name"]).stdout.splitlines()
        assert re.split(r"\s{2,}", ours[0].strip()) == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], ours
        assert ours[1].split()[:4] == [sk["metadata"]["name"], f"external-lb-{SFX}", "*", "80"], ours
        ours = kube.host.ctl("get", "ingressclass", f"external-lb-{SFX}").stdout.splitlines()
        assert ours[1].split()[:3] == [f"external-lb-{SFX}", "example.com/ingress-controller",
                                       "IngressParameters.k8s.example.com/external-lb"], ours
        out = k.ok("describe", "ingress", f"ingress-resource-backend-{SFX}")
        assert "APIGroup: k8s.example.com, Kind: StorageBucket, Name: static-assets" in out, out
    finally:
        k("delete", "ingress", *ings, "--ignore-not-found")
        k("delete", "ingressclass", *classes, "--ignore-not-found")
