"""networking.k8s.io/v1 Ingresses and IngressClasses beyond their schema: the defaults of the
v1 API (an IngressClass's parameters are Cluster-scoped unless told otherwise; an Ingress's
pathType has no default and is required) and kube-apiserver's ValidateIngress /
ValidateIngressClass, with its field paths and messages:

- an Ingress has a defaultBackend or rules; a rule's host is a DNS name (not an IP), a
  wildcard only as the first label (``*.example.com``); an HTTP rule has paths; each path has
  a pathType (Exact, Prefix or ImplementationSpecific), absolute for Exact and Prefix, without
  ``//``, ``/./``, ``/../``, ``%2f`` nor a trailing ``/.`` or ``/..``;
- a backend is a service or a resource, never both; a service backend has a DNS-1035 name and
  a port name or a port number, never both;
- TLS hosts are (wildcard) DNS subdomains, secretName a DNS subdomain; ingressClassName a DNS
  subdomain, and not together with the kubernetes.io/ingress.class annotation on create;
- an IngressClass's controller is required, a domain-prefixed path of at most 250 characters,
  and immutable; its parameters have a kind and a name, a scope Cluster (no namespace) or
  Namespace (with one).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from skiff.api.validation import (FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, _cause, dns1035_label_error,
                                  dns1123_label_error, dns1123_subdomain_error)
from skiff.api.validation_service import _go_invalid, port_name_errors, port_num_error

__all__ = ["PATH_TYPES", "DEFAULT_CLASS_ANNOTATION", "default_ingressclass", "check_ingress",
           "check_ingress_create", "check_ingress_status", "check_ingressclass", "check_ingressclass_update",
           "is_default_class"]

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
SCOPES = ("Cluster", "Namespace")
_BAD_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_BAD_SUFFIXES = ("/..", "/.")
_WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HTTP_PATH = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_MAX_CONTROLLER = 250


def _d(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list:
    return v if isinstance(v, list) else []


def _subdomain_errors(v: str) -> list[str]:
    why = dns1123_subdomain_error(v)
    return [why] if why else []


def _wildcard_errors(v: str) -> list[str]:
    out = []
    if len(v) > 253:
        out.append("must be no more than 253 characters")
    if not _WILDCARD.match(v):
        out.append("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
                   "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
                   "character (e.g. '*.example.com', regex used for validation is "
                   r"'\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return out


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def _path_segment_errors(v: str) -> list[str]:
    for bad in ("..", "."):
        if v == bad:
            return [f"may not be '{bad}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in v]


def default_ingressclass(obj: dict) -> None:
    """SetDefaults_IngressClass (v1): parameters without a scope are Cluster-scoped."""
    params = _d(_d(obj.get("spec")).get("parameters"))
    if params and params.get("scope") is None:
        params["scope"] = "Cluster"


def is_default_class(ic: dict) -> bool:
    return _d(_d(ic.get("metadata")).get("annotations")).get(DEFAULT_CLASS_ANNOTATION) == "true"


def _typed_ref(ref: dict, f: str) -> list[dict]:
    """validateIngressTypedLocalObjectReference."""
    out: list[dict] = []
    group = ref.get("apiGroup")
    if isinstance(group, str):
        out += [_go_invalid(f + ".apiGroup", group, why) for why in _subdomain_errors(group)]
    for key in ("kind", "name"):
        v = ref.get(key)
        if not v:
            out.append(_cause(f"{f}.{key}", REQUIRED, f"Required value: {key} is required"))
        elif isinstance(v, str):
            out += [_go_invalid(f"{f}.{key}", v, why) for why in _path_segment_errors(v)]
    return out


def _backend(b: dict, f: str) -> list[dict]:
    """validateIngressBackend."""
    svc, res = b.get("service"), b.get("resource")
    if res is not None and svc is not None:
        return [_go_invalid(f, "", "cannot set both resource and service backends")]
    if res is not None:
        return _typed_ref(_d(res), f + ".resource")
    if svc is None:
        return [_go_invalid(f, "", "resource or service backend is required")]
    svc = _d(svc)
    out: list[dict] = []
    name = svc.get("name")
    if not name:
        out.append(_cause(f + ".service.name", REQUIRED, "Required value"))
    elif isinstance(name, str) and (why := dns1035_label_error(name)):
        out.append(_go_invalid(f + ".service.name", name, why))
    port = _d(svc.get("port"))
    pname, pnum = port.get("name") or "", port.get("number") or 0
    if pname and pnum:
        out.append(_go_invalid(f, "", "cannot set both port name & port number"))
    elif pname:
        out += [_go_invalid(f + ".service.port.name", pname, why) for why in port_name_errors(pname)]
    elif pnum:
        if (why := port_num_error(pnum)):
            out.append(_go_invalid(f + ".service.port.number", pnum, why))
    else:
        out.append(_cause(f, REQUIRED, "Required value: port name or number is required"))
    return out


def _http_path(p: dict, f: str) -> list[dict]:
    """validateHTTPIngressPath."""
    ptype = p.get("pathType")
    if ptype is None:
        return [_cause(f + ".pathType", REQUIRED, "Required value: pathType must be specified")]
    out: list[dict] = []
    path = p.get("path") or ""
    if ptype in ("Exact", "Prefix"):
        if not path.startswith("/"):
            out.append(_go_invalid(f + ".path", path, "must be an absolute path"))
        if path:
            out += [_go_invalid(f + ".path", path, f"must not contain '{s}'") for s in _BAD_SEQUENCES if s in path]
            out += [_go_invalid(f + ".path", path, f"cannot end with '{s}'") for s in _BAD_SUFFIXES
                    if path.endswith(s)]
    elif ptype == "ImplementationSpecific":
        if path and not path.startswith("/"):
            out.append(_go_invalid(f + ".path", path, "must be an absolute path"))
    else:
        out.append(_cause(f + ".pathType", NOT_SUPPORTED, f"Unsupported value: \"{ptype}\": supported values: "
                          + ", ".join(f'"{t}"' for t in PATH_TYPES)))
    return out + _backend(_d(p.get("backend")), f + ".backend")


def _host_errors(host: str, f: str) -> list[dict]:
    out = []
    if _is_ip(host):
        out.append(_go_invalid(f, host, "must be a DNS name, not an IP address"))
    errs = _wildcard_errors(host) if "*" in host else _subdomain_errors(host)
    return out + [_go_invalid(f, host, why) for why in errs]


def _go_rules(rules: Any) -> str:
    return "[]networking.IngressRule(nil)" if rules is None else "[]networking.IngressRule{}"


def check_ingress(obj: dict) -> list[dict]:
    """ValidateIngressSpec."""
    spec = _d(obj.get("spec"))
    out: list[dict] = []
    rules, default = spec.get("rules"), spec.get("defaultBackend")
    if not rules and default is None:
        out.append(_cause("spec", INVALID, f"Invalid value: {_go_rules(rules)}: either `defaultBackend` or "
                          "`rules` must be specified"))
    if default is not None:
        out += _backend(_d(default), "spec.defaultBackend")
    for i, rule in enumerate(_l(rules)):
        rule, f = _d(rule), f"spec.rules[{i}]"
        host = rule.get("host") or ""
        if host:
            out += _host_errors(host, f + ".host")
        http = rule.get("http")
        if http is not None:
            paths = _l(_d(http).get("paths"))
            if not paths:
                out.append(_cause(f + ".http.paths", REQUIRED, "Required value"))
            for j, p in enumerate(paths):
                out += _http_path(_d(p), f"{f}.http.paths[{j}]")
    for i, tls in enumerate(_l(spec.get("tls"))):
        tls = _d(tls)
        for j, host in enumerate(_l(tls.get("hosts"))):
            if isinstance(host, str):
                errs = _wildcard_errors(host) if "*" in host else _subdomain_errors(host)
                out += [_go_invalid(f"spec.tls[{i}].hosts[{j}]", host, why) for why in errs]
        secret = tls.get("secretName")
        if isinstance(secret, str) and secret:
            out += [_go_invalid(f"spec.tls[{i}].secretName", secret, why) for why in _subdomain_errors(secret)]
    cls = spec.get("ingressClassName")
    if isinstance(cls, str):
        out += [_go_invalid("spec.ingressClassName", cls, why) for why in _subdomain_errors(cls)]
    return out + check_ingress_status(obj)


def check_ingress_create(obj: dict) -> list[dict]:
    """ValidateIngressCreate: the class field and the old annotation are not set together."""
    ann = _d(_d(obj.get("metadata")).get("annotations")).get(CLASS_ANNOTATION)
    if _d(obj.get("spec")).get("ingressClassName") is not None and ann:
        return [_go_invalid("annotations." + CLASS_ANNOTATION, ann, "can not be set when the class field is also set")]
    return []


def check_ingress_status(obj: dict) -> list[dict]:
    """ValidateIngressLoadBalancerStatus."""
    out: list[dict] = []
    lbs = _l(_d(_d(obj.get("status")).get("loadBalancer")).get("ingress"))
    for i, lb in enumerate(lbs):
        lb, f = _d(lb), f"status.loadBalancer.ingress[{i}]"
        ip, hostname = lb.get("ip"), lb.get("hostname")
        if isinstance(ip, str) and ip and not _is_ip(ip):
            out.append(_go_invalid(f + ".ip", ip, "must be a valid IP address"))
        if isinstance(hostname, str) and hostname:
            out += [_go_invalid(f + ".hostname", hostname, why) for why in _subdomain_errors(hostname)]
            if _is_ip(hostname):
                out.append(_go_invalid(f + ".hostname", hostname, "must be a DNS name, not an IP address"))
        for j, p in enumerate(_l(lb.get("ports"))):
            p, pf = _d(p), f"{f}.ports[{j}]"
            if (why := port_num_error(p.get("port"))):
                out.append(_go_invalid(pf + ".port", p.get("port"), why))
            proto = p.get("protocol")
            if not proto:
                out.append(_cause(pf + ".protocol", REQUIRED, "Required value"))
            elif proto not in ("SCTP", "TCP", "UDP"):
                out.append(_cause(pf + ".protocol", NOT_SUPPORTED, f"Unsupported value: \"{proto}\": supported "
                                  'values: "SCTP", "TCP", "UDP"'))
    return out


def _controller_errors(ctl: Any) -> list[dict]:
    f = "spec.controller"
    if not ctl:
        return [_cause(f, REQUIRED, "Required value")]
    if not isinstance(ctl, str):
        return []
    out: list[dict] = []
    if len(ctl) > _MAX_CONTROLLER:
        out.append(_cause(f, "FieldValueTooLong", f"Too long: may not be more than {_MAX_CONTROLLER} bytes"))
    domain, slash, path = ctl.partition("/")
    if not slash or not domain or not path:
        return out + [_go_invalid(f, ctl, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    out += [_go_invalid(f, domain, why) for why in _subdomain_errors(domain)]
    if not _HTTP_PATH.match(path):
        out.append(_go_invalid(f, path, "Invalid path (regex used for validation is "
                                        "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"))
    return out


def check_ingressclass(obj: dict) -> list[dict]:
    """validateIngressClassSpec and validateIngressClassParametersReference."""
    spec = _d(obj.get("spec"))
    out = _controller_errors(spec.get("controller"))
    params = spec.get("parameters")
    if params is None:
        return out
    params, f = _d(params), "spec.parameters"
    out += _typed_ref(params, f)
    scope = params.get("scope")
    if scope is None:
        return out + [_cause(f + ".scope", REQUIRED, "Required value")]
    ns = params.get("namespace")
    if scope not in SCOPES:
        out.append(_cause(f + ".scope", NOT_SUPPORTED, f"Unsupported value: \"{scope}\": supported values: "
                          '"Cluster", "Namespace"'))
    elif scope == "Namespace":
        if ns is None:
            out.append(_cause(f + ".namespace", REQUIRED, "Required value: `parameters.scope` is set to 'Namespace'"))
        elif isinstance(ns, str) and (why := dns1123_label_error(ns)):
            out.append(_go_invalid(f + ".namespace", ns, why))
    elif ns is not None:
        out.append(_cause(f + ".namespace", FORBIDDEN, "Forbidden: `parameters.scope` is set to 'Cluster'"))
    return out


def check_ingressclass_update(cur: dict, new: dict) -> list[dict]:
    """validateIngressClassSpecUpdate: the controller is immutable."""
    old_ctl, new_ctl = _d(cur.get("spec")).get("controller"), _d(new.get("spec")).get("controller")
    if old_ctl != new_ctl:
        return [_go_invalid("spec.controller", new_ctl or "", "field is immutable")]
    return []
