"""The rules of core/v1 Services and Endpoints and discovery.k8s.io/v1 EndpointSlices beyond their
schemas, worded as Kubernetes words them (its ValidateService, ValidateServiceUpdate,
ValidateEndpoints and ValidateEndpointSlice), called by :func:`skiff.api.validation.validate`
and :func:`skiff.api.validation.validate_update`:

- Service: the ports (a DNS-label name, required and unique when there are several; 1..65535;
  TCP, UDP or SCTP; a targetPort that is a port number or an IANA service name; no two with
  the same port and protocol, no two with the same nodePort and protocol), the type's rules
  (ExternalName needs externalName and no cluster IP; "None" (headless) is refused for NodePort
  and LoadBalancer services; nodePort is forbidden for ClusterIP services), clusterIP and
  clusterIPs in step and well formed, selector labels, session affinity, external IPs, the
  traffic policies and the LoadBalancer-only fields. On update the cluster IPs and IP families
  may not change once set (unless the service becomes or stops being an ExternalName one).
- Endpoints: each subset has addresses (valid, non-special IPs) and ports (named when there are
  several).
- EndpointSlice: its addresses match its addressType (immutable), at most 1000 endpoints of 1
  to 100 addresses, at most 100 ports with unique names.

The allocation of cluster IPs and node ports (and its errors) is the registry's, see
:mod:`skiff.controller.serviceips`.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from skiff.api.validation import (FORBIDDEN, INVALID, LABEL_VALUE, NOT_SUPPORTED, REQUIRED, Warning, _cause,
                                  _invalid, _qualified_name_error, dns1123_label_error, dns1123_subdomain_error)

__all__ = ["check_service", "check_service_update", "check_endpoints", "check_endpointslice",
           "check_endpointslice_update", "is_headless", "externally_accessible", "needs_health_check",
           "go_value", "DUPLICATE", "SERVICE_TYPES", "PROTOCOLS", "KUBELET_PORT"]

DUPLICATE = "FieldValueDuplicate"
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
IP_FAMILIES = ("IPv4", "IPv6")
TRAFFIC_DISTRIBUTIONS = ("PreferClose",)
MAX_AFFINITY_SECONDS = 86400
KUBELET_PORT = 10250
MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_PORTS = 100
MAX_ENDPOINT_ADDRESSES = 100

_PORT_RANGE_WHY = "must be between 1 and 65535, inclusive"
_IP_WHY = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_WHY = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_LABEL_VALUE_WHY = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
                    "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")


# ---------------------------------------------------------------- values as Go prints them

def go_value(v: Any, go_type: str = "string") -> str:
    """A value as Go's %#v prints it in Kubernetes' messages: []string{"a", "b"} for a list of
    ``go_type``, "x" for a string, 80 for a number."""
    if isinstance(v, list):
        return f"[]{go_type}{{" + ", ".join(json.dumps(x) if isinstance(x, str) else str(x) for x in v) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


def _go_service_port(p: dict) -> str:
    """The (protocol, port) key of a duplicate port as Kubernetes prints it (a core.ServicePort
    with only those two set)."""
    return (f'core.ServicePort{{Name:"", Protocol:{json.dumps(p.get("protocol") or "")}, AppProtocol:(*string)(nil), '
            f'Port:{p.get("port")}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def _go_invalid(field: str, value: Any, why: str, go_type: str = "string") -> dict:
    return _cause(field, INVALID, f"Invalid value: {go_value(value, go_type)}: {why}")


def _required(field: str, detail: str = "") -> dict:
    return _cause(field, REQUIRED, "Required value" + (f": {detail}" if detail else ""))


def _forbidden(field: str, detail: str) -> dict:
    return _cause(field, FORBIDDEN, f"Forbidden: {detail}")


def _duplicate(field: str, shown: str) -> dict:
    return _cause(field, DUPLICATE, f"Duplicate value: {shown}")


def _not_supported(field: str, value: Any, supported) -> dict:
    return _cause(field, NOT_SUPPORTED, f"Unsupported value: {json.dumps(value)}: supported values: "
                  + ", ".join(f'"{s}"' for s in supported))


# ---------------------------------------------------------------- small checks

def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def port_num_error(v: Any) -> str | None:
    return None if _int(v) and 1 <= v <= 65535 else _PORT_RANGE_WHY


def port_name_errors(name: str) -> list[str]:
    """IsValidPortName: an IANA service name (at most 15 characters, a-z, 0-9 and single '-',
    at least one letter)."""
    errs = []
    if len(name) > 15:
        errs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    elif not re.search("[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def parse_ip(v: Any):
    """An ipaddress object, or None when ``v`` is not an IP as Kubernetes reads one."""
    if not isinstance(v, str) or not v or "%" in v:
        return None
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


def _non_special_ip(ip: str, field: str) -> list[dict]:
    """ValidateNonSpecialIP: an address a client may route to (not 0.0.0.0, loopback, link-local)."""
    a = parse_ip(ip)
    if a is None:
        return [_invalid(field, ip, "must be a valid IP address")]
    out = []
    if a.is_unspecified:
        out.append(_invalid(field, ip, f"may not be unspecified ({ip})"))
    if a.is_loopback:
        out.append(_invalid(field, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if a.is_link_local and not a.is_multicast:
        out.append(_invalid(field, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if a.is_multicast and (a in ipaddress.ip_network("224.0.0.0/24") if a.version == 4
                           else a in ipaddress.ip_network("ff02::/16")):
        out.append(_invalid(field, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return out


def _labels(m: Any, field: str) -> list[dict]:
    """ValidateLabels: qualified-name keys and label values (both reported on ``field``)."""
    out = []
    if not isinstance(m, dict):
        return out
    for k, v in m.items():
        if isinstance(k, str) and (why := _qualified_name_error(k)):
            out.append(_invalid(field, k, why))
        if isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v)):
            out.append(_invalid(field, v, "must be no more than 63 characters" if len(v) > 63 else _LABEL_VALUE_WHY))
    return out


def _app_protocol(v: Any, field: str) -> list[dict]:
    if isinstance(v, str) and (why := _qualified_name_error(v)):
        return [_invalid(field, v, why)]
    return []


# ---------------------------------------------------------------- services

def is_headless(spec: dict) -> bool:
    ips = spec.get("clusterIPs")
    return isinstance(ips, list) and len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _check_service_port(p: dict, f: str, require_name: bool, names: set) -> list[dict]:
    out = []
    name = p.get("name")
    if require_name and not name:
        out.append(_required(f + ".name"))
    elif isinstance(name, str) and name:
        if why := dns1123_label_error(name):
            out.append(_invalid(f + ".name", name, why))
        if name in names:
            out.append(_duplicate(f + ".name", json.dumps(name)))
        names.add(name)
    port = p.get("port")
    if _int(port) and (why := port_num_error(port)):
        out.append(_invalid(f + ".port", port, why))
    tp = p.get("targetPort")
    if _int(tp):
        if why := port_num_error(tp):
            out.append(_invalid(f + ".targetPort", tp, why))
    elif isinstance(tp, str):
        out += [_invalid(f + ".targetPort", tp, why) for why in port_name_errors(tp)]
    out += _app_protocol(p.get("appProtocol"), f + ".appProtocol")
    np = p.get("nodePort")
    if _int(np) and np != 0 and (why := port_num_error(np)):
        out.append(_invalid(f + ".nodePort", np, why))
    return out


def _check_cluster_ips(spec: dict) -> list[dict]:
    """ValidateServiceClusterIPsRelatedFields (not for ExternalName services)."""
    out: list[dict] = []
    cip, cips = spec.get("clusterIP") or "", spec.get("clusterIPs") or []
    if not isinstance(cips, list):
        return out
    if cip:
        if not cips:
            out.append(_required("spec.clusterIPs"))
        elif cips[0] != cip:
            out.append(_go_invalid("spec.clusterIPs", cips, "first value must match `clusterIP`"))
    elif cips:
        out.append(_go_invalid("spec.clusterIPs", cips, "must be empty when `clusterIP` is not specified"))
    fams = spec.get("ipFamilies") or []
    seen = set()
    for i, fam in enumerate(fams if isinstance(fams, list) else []):
        if fam in seen:
            out.append(_duplicate(f"spec.ipFamilies[{i}]", json.dumps(fam)))
        seen.add(fam)
    bad_ips = False
    for i, ip in enumerate(cips):
        if i == 0 and ip == "None":
            if len(cips) > 1:
                bad_ips = True
                out.append(_go_invalid("spec.clusterIPs", cips, "'None' must be the first and only value"))
            continue
        if parse_ip(ip) is None:
            bad_ips = True
            out.append(_invalid(f"spec.clusterIPs[{i}]", ip, _IP_WHY))
    if len(cips) > 2:
        out.append(_go_invalid("spec.clusterIPs", cips, "may only hold up to 2 values"))
    if bad_ips:
        return out
    if len(cips) > 1 and len({parse_ip(ip).version for ip in cips}) != len(cips):
        out.append(_go_invalid("spec.clusterIPs", cips, "may specify no more than one IP for each IP family"))
    if not is_headless(spec) and cips and isinstance(fams, list):
        for i, ip in enumerate(cips[:len(fams)]):
            fam = "IPv6" if parse_ip(ip).version == 6 else "IPv4"
            if fams[i] in IP_FAMILIES and fams[i] != fam:
                out.append(_invalid(f"spec.clusterIPs[{i}]", ip,
                                    f"expected an {fams[i]} value as indicated by `ipFamilies[{i}]`"))
    return out


def _effective(spec: dict) -> dict:
    """``spec`` with what the server's defaulting fills in where it is missing (skiffctl checks
    manifests before the server defaults them): type, sessionAffinity, the ports' protocol,
    clusterIPs from clusterIP, the traffic policies, allocateLoadBalancerNodePorts (and no
    sessionAffinityConfig without ClientIP affinity)."""
    spec = {k: v for k, v in spec.items() if v is not None}
    typ = spec.setdefault("type", "ClusterIP") or "ClusterIP"
    spec["type"] = typ
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    cfg = spec.get("sessionAffinityConfig")
    cip = cfg.get("clientIP") if isinstance(cfg, dict) else None
    if spec["sessionAffinity"] == "ClientIP" and (not isinstance(cip, dict) or cip.get("timeoutSeconds") is None):
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if isinstance(spec.get("ports"), list):
        spec["ports"] = [{**p, "protocol": p.get("protocol") or "TCP"} if isinstance(p, dict) else p
                         for p in spec["ports"]]
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if externally_accessible(spec):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if typ in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if typ == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    return spec


def check_service(obj: dict) -> tuple[list[dict], list[Warning]]:
    """The causes and warnings of a Service's own rules (ValidateService). The server checks
    it defaulted; a manifest is checked as it would be defaulted."""
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return [], []
    spec = _effective(spec)
    out: list[dict] = []
    warnings: list[Warning] = []
    typ = spec.get("type")
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)] if isinstance(spec.get("ports"), list) else []
    headless = is_headless(spec)
    if not ports and not headless and typ != "ExternalName":
        out.append(_required("spec.ports"))
    if typ == "LoadBalancer":
        for i, p in enumerate(ports):
            if p.get("port") == KUBELET_PORT:
                out.append(_invalid(f"spec.ports[{i}]", KUBELET_PORT, f"may not expose port {KUBELET_PORT} externally "
                                                                       f"since it is used by kubelet"))
    if typ in ("LoadBalancer", "NodePort") and headless:
        out.append(_invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {typ} services"))
    if typ == "ExternalName":
        if spec.get("clusterIPs"):
            out.append(_forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            out.append(_forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            out.append(_forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = spec.get("externalName") or ""
        cname = cname[:-1] if isinstance(cname, str) and cname.endswith(".") else cname
        if not cname:
            out.append(_required("spec.externalName"))
        elif isinstance(cname, str) and (why := dns1123_subdomain_error(cname)):
            out.append(_invalid("spec.externalName", cname, why))
    names: set = set()
    for i, p in enumerate(ports):
        out += _check_service_port(p, f"spec.ports[{i}]", len(ports) > 1, names)
    out += _labels(spec.get("selector"), "spec.selector")
    aff = spec.get("sessionAffinity")
    if aff == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        why = "when session affinity type is ClientIP"
        if not isinstance(cfg, dict):
            out.append(_required("spec.sessionAffinityConfig", why))
        elif not isinstance(cfg.get("clientIP"), dict):
            out.append(_required("spec.sessionAffinityConfig.clientIP", why))
        elif cfg["clientIP"].get("timeoutSeconds") is None:
            out.append(_required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", why))
        else:
            t = cfg["clientIP"]["timeoutSeconds"]
            if _int(t) and not 0 < t <= MAX_AFFINITY_SECONDS:
                out.append(_invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                                    f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"))
    if typ != "ExternalName":
        out += _check_cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        if parse_ip(ip) is None:
            out.append(_invalid(f"spec.externalIPs[{i}]", ip, _IP_WHY))
        else:
            out += _non_special_ip(ip, f"spec.externalIPs[{i}]")
    if typ in ("ClusterIP", "ExternalName"):
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                out.append(_forbidden(f"spec.ports[{i}].nodePort", f"may not be used when `type` is '{typ}'"))
    node_ports: set = set()
    for i, p in enumerate(ports):
        np = p.get("nodePort")
        if not np:
            continue
        key = (p.get("protocol"), np)
        if key in node_ports:
            out.append(_duplicate(f"spec.ports[{i}].nodePort", str(np)))
        node_ports.add(key)
    seen_ports: set = set()
    for i, p in enumerate(ports):
        key = (p.get("protocol"), p.get("port"))
        if key in seen_ports:
            out.append(_duplicate(f"spec.ports[{i}]", _go_service_port(p)))
        seen_ports.add(key)
    ranges = spec.get("loadBalancerSourceRanges")
    if ranges:
        if typ != "LoadBalancer":
            out.append(_forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, r in enumerate(ranges):
            try:
                ipaddress.ip_network(r.strip(), strict=False)
                if "/" not in r:
                    raise ValueError
            except (ValueError, AttributeError, TypeError):
                out.append(_invalid(f"spec.LoadBalancerSourceRanges[{i}]", r, _CIDR_WHY))
    if spec.get("allocateLoadBalancerNodePorts") is not None and typ != "LoadBalancer":
        out.append(_forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    lbc = spec.get("loadBalancerClass")
    if lbc is not None:
        if typ != "LoadBalancer":
            out.append(_forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
        elif isinstance(lbc, str) and (why := _qualified_name_error(lbc)):
            out.append(_invalid("spec.loadBalancerClass", lbc, why))
    etp = spec.get("externalTrafficPolicy")
    if not externally_accessible(spec):
        if etp:
            out.append(_invalid("spec.externalTrafficPolicy", etp,
                                "may only be set for externally-accessible services"))
    hc = spec.get("healthCheckNodePort")
    if not needs_health_check(spec):
        if hc:
            out.append(_invalid("spec.healthCheckNodePort", hc,
                                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    elif hc and (why := port_num_error(hc)):
        out.append(_invalid("spec.healthCheckNodePort", hc, why))
    td = spec.get("trafficDistribution")
    if td is not None and td not in TRAFFIC_DISTRIBUTIONS:
        out.append(_not_supported("spec.trafficDistribution", td, TRAFFIC_DISTRIBUTIONS))
    return out, warnings


def _check_upgrade_downgrade(cur: dict, new: dict, field: str, go_type: str) -> list[dict]:
    """validateUpgradeDowngradeClusterIPs / IPFamilies: the first value may not change; a
    second may be added or removed."""
    old, now = cur.get(field) or [], new.get(field) or []
    out = []
    if len(old) == len(now):
        for i, v in enumerate(old):
            if v != now[i]:
                out.append(_go_invalid(f"spec.{field}[{i}]", now, "may not change once set", go_type))
    elif len(old) > len(now):
        if not now:
            what = "clusterIP" if field == "clusterIPs" else "ipFamily"
            out.append(_go_invalid(f"spec.{field}[0]", now, f"primary {what} can not be unset", go_type))
        elif old and now[0] != old[0]:
            out.append(_go_invalid(f"spec.{field}[0]", now, "may not change once set", go_type))
    elif old and now[0] != old[0]:      # upgraded: the primary stays
        out.append(_go_invalid(f"spec.{field}[0]", now, "may not change once set", go_type))
    return out


def check_service_update(cur: dict, new: dict) -> list[dict]:
    """ValidateServiceUpdate's own rules (after the registry kept what the client left out)."""
    ospec, nspec = cur.get("spec") or {}, new.get("spec") or {}
    if not isinstance(ospec, dict) or not isinstance(nspec, dict):
        return []
    out: list[dict] = []
    if "ExternalName" not in (ospec.get("type"), nspec.get("type")):
        if not (is_headless(ospec) and is_headless(nspec)):
            out += _check_upgrade_downgrade(ospec, nspec, "clusterIPs", "string")
        out += _check_upgrade_downgrade(ospec, nspec, "ipFamilies", "core.IPFamily")
    if ospec.get("type") == "LoadBalancer" and nspec.get("type") == "LoadBalancer" and \
            ospec.get("loadBalancerClass") != nspec.get("loadBalancerClass"):
        out.append(_invalid("spec.loadBalancerClass", nspec.get("loadBalancerClass"), "may not change once set"))
    return out


# ---------------------------------------------------------------- endpoints

def _check_endpoint_port(p: dict, f: str, require_name: bool) -> list[dict]:
    out = []
    name = p.get("name")
    if require_name and not name:
        out.append(_required(f + ".name"))
    elif isinstance(name, str) and name and (why := dns1123_label_error(name)):
        out.append(_invalid(f + ".name", name, why))
    port = p.get("port")
    if _int(port) and (why := port_num_error(port)):
        out.append(_invalid(f + ".port", port, why))
    if p.get("protocol") == "":
        out.append(_required(f + ".protocol"))
    out += _app_protocol(p.get("appProtocol"), f + ".appProtocol")
    return out


def _check_endpoint_address(a: dict, f: str) -> list[dict]:
    out = []
    ip = a.get("ip")
    if parse_ip(ip) is None:
        out.append(_invalid(f + ".ip", ip, _IP_WHY))
    else:
        out += _non_special_ip(ip, f + ".ip")
    hn = a.get("hostname")
    if isinstance(hn, str) and hn and (why := dns1123_label_error(hn)):
        out.append(_invalid(f + ".hostname", hn, why))
    nn = a.get("nodeName")
    if isinstance(nn, str) and (why := dns1123_subdomain_error(nn)):
        out.append(_invalid(f + ".nodeName", nn, why))
    return out


def check_endpoints(obj: dict) -> list[dict]:
    """ValidateEndpoints: every subset has addresses; valid addresses and ports."""
    out: list[dict] = []
    subsets = obj.get("subsets")
    for i, ss in enumerate(subsets if isinstance(subsets, list) else []):
        if not isinstance(ss, dict):
            continue
        f = f"subsets[{i}]"
        if not ss.get("addresses") and not ss.get("notReadyAddresses"):
            out.append(_required(f, "must specify `addresses` or `notReadyAddresses`"))
        for group in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(ss.get(group) or []):
                if isinstance(a, dict):
                    out += _check_endpoint_address(a, f"{f}.{group}[{j}]")
        ports = [p for p in ss.get("ports") or [] if isinstance(p, dict)]
        for j, p in enumerate(ports):
            out += _check_endpoint_port(p, f"{f}.ports[{j}]", len(ports) > 1)
    return out


# ---------------------------------------------------------------- endpoint slices

def _address_error(addr: str, typ: str) -> str | None:
    if typ == "IPv4":
        a = parse_ip(addr)
        return None if a is not None and a.version == 4 else "must be a valid IPv4 address"
    if typ == "IPv6":
        a = parse_ip(addr)
        return None if a is not None and a.version == 6 else "must be a valid IPv6 address"
    if typ == "FQDN":
        return dns1123_subdomain_error(addr)
    return None


def check_endpointslice(obj: dict) -> list[dict]:
    """ValidateEndpointSlice: addresses of the slice's addressType, the limits, unique port names."""
    out: list[dict] = []
    typ = obj.get("addressType")
    eps = obj.get("endpoints") if isinstance(obj.get("endpoints"), list) else []
    if len(eps) > MAX_SLICE_ENDPOINTS:
        out.append(_cause("endpoints", "FieldValueTooMany", f"Too many: {len(eps)}: must have at most "
                                                            f"{MAX_SLICE_ENDPOINTS} items"))
    for i, ep in enumerate(eps):
        if not isinstance(ep, dict):
            continue
        f = f"endpoints[{i}]"
        addrs = ep.get("addresses") if isinstance(ep.get("addresses"), list) else []
        if not addrs:
            out.append(_required(f + ".addresses", "must contain at least 1 address"))
        elif len(addrs) > MAX_ENDPOINT_ADDRESSES:
            out.append(_cause(f + ".addresses", "FieldValueTooMany", f"Too many: {len(addrs)}: must have at most "
                                                                     f"{MAX_ENDPOINT_ADDRESSES} items"))
        for j, a in enumerate(addrs):
            if isinstance(a, str) and (why := _address_error(a, typ)):
                out.append(_invalid(f"{f}.addresses[{j}]", a, why))
        hn = ep.get("hostname")
        if isinstance(hn, str) and hn and (why := dns1123_label_error(hn)):
            out.append(_invalid(f + ".hostname", hn, why))
        nn = ep.get("nodeName")
        if isinstance(nn, str) and (why := dns1123_subdomain_error(nn)):
            out.append(_invalid(f + ".nodeName", nn, why))
    ports = obj.get("ports") if isinstance(obj.get("ports"), list) else []
    if len(ports) > MAX_SLICE_PORTS:
        out.append(_cause("ports", "FieldValueTooMany", f"Too many: {len(ports)}: must have at most "
                                                        f"{MAX_SLICE_PORTS} items"))
    names: set = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        f = f"ports[{i}]"
        name = p.get("name")
        if isinstance(name, str):
            if name and (why := dns1123_label_error(name)):
                out.append(_invalid(f + ".name", name, why))
            if name in names:
                out.append(_duplicate(f + ".name", json.dumps(name)))
            names.add(name)
        port = p.get("port")
        if port is not None and _int(port) and (why := port_num_error(port)):
            out.append(_invalid(f + ".port", port, why))
        out += _app_protocol(p.get("appProtocol"), f + ".appProtocol")
    return out


def check_endpointslice_update(cur: dict, new: dict) -> list[dict]:
    if cur.get("addressType") != new.get("addressType"):
        return [_invalid("addressType", new.get("addressType"), "field is immutable")]
    return []
