"""networking.k8s.io/v1 NetworkPolicies beyond their schema: Kubernetes' defaults
(SetDefaults_NetworkPolicy, SetDefaults_NetworkPolicyPort) and its ValidateNetworkPolicySpec,
with kube-apiserver's field paths and messages:

- ``spec.podSelector`` and every peer's selectors are valid label selectors;
- a port's protocol is TCP, UDP or SCTP; a numeric port is 1..65535 and may have an
  ``endPort`` (1..65535, not below ``port``); a named port is an IANA service name and has no
  ``endPort``; no ``endPort`` without ``port``;
- a peer gives a podSelector, a namespaceSelector (alone or together) or an ipBlock alone;
- an ipBlock's ``cidr`` is a CIDR and each ``except`` a strict subset of it;
- at most two policyTypes, each Ingress or Egress.
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any

from skiff.api.validation import FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, _cause, _label_selector
from skiff.api.validation_service import _go_invalid, go_value, port_name_errors, port_num_error

__all__ = ["check_networkpolicy", "default_networkpolicy", "PROTOCOLS", "POLICY_TYPES"]

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
_CIDR_WHY = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def default_networkpolicy(obj: dict) -> None:
    """Ports without a protocol get TCP; without policyTypes a policy is an Ingress policy,
    and an Egress one too when it has egress rules."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    spec.setdefault("podSelector", {})
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules if isinstance(rules, list) else ():
            ports = rule.get("ports") if isinstance(rule, dict) else None
            for p in ports if isinstance(ports, list) else ():
                if isinstance(p, dict) and p.get("protocol") is None:
                    p["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _port(p: Any, f: str) -> list[dict]:
    if not isinstance(p, dict):
        return []
    out: list[dict] = []
    proto = p.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        out.append(_cause(f + ".protocol", NOT_SUPPORTED, f"Unsupported value: {_go(proto)}: supported values: "
                          + ", ".join(f'"{x}"' for x in PROTOCOLS)))
    port, end = p.get("port"), p.get("endPort")
    if port is not None:
        if _int(port):
            if (why := port_num_error(port)):
                out.append(_go_invalid(f + ".port", port, why))
            if end is not None:
                if _int(end) and end < port:
                    out.append(_go_invalid(f + ".endPort", port, "must be greater than or equal to `port`"))
                if (why := port_num_error(end)):
                    out.append(_go_invalid(f + ".endPort", end, why))
        elif isinstance(port, str):
            if end is not None:
                out.append(_go_invalid(f + ".endPort", end, "may not be specified when `port` is non-numeric"))
            for why in port_name_errors(port):
                out.append(_go_invalid(f + ".port", port, why))
    elif end is not None:
        out.append(_go_invalid(f + ".endPort", end, "may not be specified when `port` is not specified"))
    return out


def _go(v: Any) -> str:
    return json.dumps(v) if isinstance(v, str) else str(v)


def _network(cidr: Any):
    if not isinstance(cidr, str) or "%" in cidr:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _ip_block(b: Any, f: str) -> list[dict]:
    if not isinstance(b, dict):
        return []
    cidr = b.get("cidr")
    if not cidr:
        return [_cause(f + ".cidr", REQUIRED, "Required value")]
    net = _network(cidr)
    if net is None:
        return [_go_invalid(f + ".cidr", cidr, _CIDR_WHY)]
    out: list[dict] = []
    excepts = b.get("except")
    for i, ex in enumerate(excepts if isinstance(excepts, list) else ()):
        exnet = _network(ex)
        if exnet is None:
            out.append(_go_invalid(f"{f}.except[{i}]", ex, _CIDR_WHY))
            continue
        if exnet.version != net.version or exnet.network_address not in net or net.prefixlen >= exnet.prefixlen:
            out.append(_go_invalid(f"{f}.except[{i}]", ex, "must be a strict subset of `cidr`"))
    return out


def _peer(peer: Any, f: str) -> list[dict]:
    if not isinstance(peer, dict):
        return []
    out: list[dict] = []
    n = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            n += 1
            _label_selector(peer[key], f"{f}.{key}", out)
    if peer.get("ipBlock") is not None:
        n += 1
        out += _ip_block(peer["ipBlock"], f + ".ipBlock")
    if n == 0:
        out.append(_cause(f, REQUIRED, "Required value: must specify a peer"))
    elif n > 1 and peer.get("ipBlock") is not None:
        out.append(_cause(f, FORBIDDEN, "Forbidden: may not specify both ipBlock and another peer"))
    return out


def check_networkpolicy(obj: dict) -> list[dict]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    causes: list[dict] = []
    if spec.get("podSelector") is not None:
        _label_selector(spec["podSelector"], "spec.podSelector", causes)
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        rules = spec.get(direction)
        for i, rule in enumerate(rules if isinstance(rules, list) else ()):
            if not isinstance(rule, dict):
                continue
            f = f"spec.{direction}[{i}]"
            for j, p in enumerate(rule.get("ports") if isinstance(rule.get("ports"), list) else ()):
                causes += _port(p, f"{f}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers_key) if isinstance(rule.get(peers_key), list) else ()):
                causes += _peer(peer, f"{f}.{peers_key}[{j}]")
    types = spec.get("policyTypes")
    if isinstance(types, list):
        if len(types) > len(POLICY_TYPES):
            shown = go_value(types, "networking.PolicyType")
            causes.append(_cause("spec.policyTypes", INVALID,
                                 f"Invalid value: &{shown}: may not specify more than two policyTypes"))
            return causes
        for i, t in enumerate(types):
            if t not in POLICY_TYPES:
                causes.append(_cause(f"spec.policyTypes[{i}]", NOT_SUPPORTED, f"Unsupported value: {_go(t)}: "
                                     "supported values: " + ", ".join(f'"{x}"' for x in POLICY_TYPES)))
    return causes
