"""The Table columns and cells of Ingresses and IngressClasses, as kube-apiserver 1.32 prints
them (``kubectl get ing``, ``kubectl get ingressclass``). Part of :mod:`skiff.api.tables`,
which merges :data:`COLUMNS` and :data:`CELLS` into its own::

    NAME   CLASS   HOSTS         ADDRESS     PORTS     AGE
    web    nginx   foo.com,bar   10.0.0.10   80, 443   5m

    NAME    CONTROLLER             PARAMETERS                        AGE
    nginx   k8s.io/ingress-nginx   IngressParameters.k8s.example/x   5m
"""
from __future__ import annotations

from skiff.api import tables as _T

COLUMNS: dict[str, list[dict]] = {
    "ingresses": [
        _T.NAME_COLUMN,
        _T._col("Class", "The name of the IngressClass resource that should be used for this Ingress"),
        _T._col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
        _T._col("Address", "Address is a list containing ingress points for the load-balancer"),
        _T._col("Ports", "Ports of TLS configurations that open"),
        _T.AGE_COLUMN,
    ],
    "ingressclasses": [
        _T.NAME_COLUMN,
        _T._col("Controller", "Controller that is responsible for handling this class"),
        _T._col("Parameters", "A reference to a resource with additional parameters"),
        _T.AGE_COLUMN,
    ],
}

_LB_WIDTH = 16


def ingress_hosts(rules: list) -> str:
    """formatHosts: up to three hosts, "*" when no rule has one, "+ N more..." past three."""
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == 3:
            more = True
        host = (rule or {}).get("host") if isinstance(rule, dict) else None
        if not more and host:
            shown.append(host)
    if not shown:
        return "*"
    text = ",".join(shown)
    return f"{text} + {len(rules) - 3} more..." if more else text


def ingress_address(status: dict | None, wide: bool = False) -> str:
    """ingressLoadBalancerStatusStringer: the sorted, distinct IPs (else hostnames), cut to 16
    characters unless wide."""
    seen = set()
    for lb in ((status or {}).get("loadBalancer") or {}).get("ingress") or []:
        if not isinstance(lb, dict):
            continue
        if lb.get("ip"):
            seen.add(lb["ip"])
        elif lb.get("hostname"):
            seen.add(lb["hostname"])
    text = ",".join(sorted(seen))
    if not wide and len(text) > _LB_WIDTH:
        text = text[:_LB_WIDTH - 3] + "..."
    return text


def ingress_cells(ing: dict, now: float | None = None) -> list:
    spec = ing.get("spec") or {}
    cls = spec.get("ingressClassName")
    return [_T.meta(ing).get("name", ""), cls if cls is not None else _T.NONE, ingress_hosts(spec.get("rules") or []),
            ingress_address(ing.get("status")), "80, 443" if spec.get("tls") else "80", _T._age(ing, now)]


def ingressclass_parameters(params: dict | None) -> str:
    if not params:
        return _T.NONE
    kind = params.get("kind") or ""
    if params.get("apiGroup") is not None:
        kind = f"{kind}.{params['apiGroup']}"
    return f"{kind}/{params.get('name') or ''}"


def ingressclass_cells(ic: dict, now: float | None = None) -> list:
    spec = ic.get("spec") or {}
    return [_T.meta(ic).get("name", ""), spec.get("controller") or "", ingressclass_parameters(spec.get("parameters")),
            _T._age(ic, now)]


CELLS = {"ingresses": ingress_cells, "ingressclasses": ingressclass_cells}
