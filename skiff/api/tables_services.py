"""The Table columns and cells of Services, Endpoints and EndpointSlices, as the kube-apiserver
prints them (``kubectl get svc,ep,endpointslices``). Part of :mod:`skiff.api.tables`, which
merges :data:`COLUMNS` and :data:`CELLS` into its own: import them through that module.

    NAME   TYPE       CLUSTER-IP      EXTERNAL-IP   PORT(S)        AGE   SELECTOR
    web    NodePort   10.96.14.201    <none>        80:30080/TCP   5m    app=web

    NAME   ENDPOINTS                                      AGE
    web    10.244.0.5:80,10.244.0.6:80,10.244.1.4:80 + 1 more...   5m

    NAME        ADDRESSTYPE   PORTS   ENDPOINTS               AGE
    web-x7k2p   IPv4          80      10.244.0.5,10.244.0.6   5m
"""
from __future__ import annotations

from skiff.api import tables as _T

NONE = _T.NONE
_MAX_LISTED = 3     # kubectl's printers list 3 addresses, then "+ N more..."

COLUMNS: dict[str, list[dict]] = {
    "services": [
        _T.NAME_COLUMN,
        _T._col("Type", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
                        "ExternalName, ClusterIP, NodePort, and LoadBalancer."),
        _T._col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly. If "
                              "an address is specified manually, is in-range (as per system configuration), and "
                              "is not in use, it will be allocated to the service; otherwise creation of the "
                              "service will fail."),
        _T._col("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also "
                               "accept traffic for this service. These IPs are not managed by Kubernetes."),
        _T._col("Port(s)", "The list of ports that are exposed by this service."),
        _T.AGE_COLUMN,
        _T._col("Selector", "Route service traffic to pods with label keys and values matching this selector. If "
                            "empty or not present, the service is assumed to have an external process managing "
                            "its endpoints, which Kubernetes will not modify.", priority=1),
    ],
    "endpoints": [
        _T.NAME_COLUMN,
        _T._col("Endpoints", "The set of all endpoints is the union of all subsets. Addresses are placed into "
                             "subsets according to the IPs they share. A single address with multiple ports, some "
                             "of which are ready and some of which are not (because they come from different "
                             "containers) will result in the address being displayed in different subsets for the "
                             "different ports."),
        _T.AGE_COLUMN,
    ],
    "endpointslices": [
        _T.NAME_COLUMN,
        _T._col("AddressType", "addressType specifies the type of address carried by this EndpointSlice. All "
                               "addresses in this slice must be the same type."),
        _T._col("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
        _T._col("Endpoints", "endpoints is a list of unique endpoints in this slice."),
        _T.AGE_COLUMN,
    ],
}


def port_string(ports: list | None) -> str:
    """PORT(S): 80/TCP, or 80:30080/TCP with a node port, comma-separated."""
    out = []
    for p in ports or []:
        if not isinstance(p, dict):
            continue
        proto = p.get("protocol") or "TCP"
        np = p.get("nodePort")
        out.append(f"{p.get('port')}:{np}/{proto}" if np else f"{p.get('port')}/{proto}")
    return ",".join(out)


def load_balancer_ips(svc: dict) -> list[str]:
    """The load balancer's ingress IPs (or host names), sorted, without duplicates."""
    ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    seen = {i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)}
    return sorted(x for x in seen if x)


def external_ip(svc: dict) -> str:
    """EXTERNAL-IP: the external IPs; a LoadBalancer's ingress first (<pending> while it has
    none); an ExternalName service's name."""
    spec = svc.get("spec") or {}
    typ = spec.get("type") or "ClusterIP"
    ext = list(spec.get("externalIPs") or [])
    if typ in ("ClusterIP", "NodePort"):
        return ",".join(ext) or NONE
    if typ == "LoadBalancer":
        lb = load_balancer_ips(svc)
        return ",".join(lb + ext) or "<pending>"
    if typ == "ExternalName":
        return spec.get("externalName") or ""
    return _T.UNKNOWN


def label_string(m: dict | None) -> str:
    """labels.FormatLabels: k=v,... sorted by key; <none> when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((m or {}).items())) or NONE


def service_cells(svc: dict, now: float | None = None) -> list:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_T.meta(svc).get("name", ""), spec.get("type") or "", ips[0] if ips else NONE, external_ip(svc),
            port_string(spec.get("ports")) or NONE, _T._age(svc, now), label_string(spec.get("selector"))]


def _more(listed: list[str], count: int, unset: str) -> str:
    text = ",".join(listed)
    if count > len(listed):
        return f"{text} + {count - len(listed)} more..."
    return text or unset


def host_port(ip: str, port) -> str:
    """net.JoinHostPort: an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def endpoints_string(ep: dict) -> str:
    """ENDPOINTS of an Endpoints: ip:port of the ready addresses (only ips for a subset without
    ports), 3 of them then "+ N more..."; <none> without subsets."""
    subsets = ep.get("subsets") or []
    if not subsets:
        return NONE
    listed: list[str] = []
    count = 0
    for ss in subsets:
        addrs = [a.get("ip", "") for a in ss.get("addresses") or [] if isinstance(a, dict)]
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            listed += addrs[:max(0, _MAX_LISTED - len(listed))]
            continue
        for p in ports:
            count += len(addrs)
            for ip in addrs:
                if len(listed) == _MAX_LISTED:
                    break
                listed.append(host_port(ip, p.get("port")))
    return _more(listed, count, "")


def endpoints_cells(ep: dict, now: float | None = None) -> list:
    return [_T.meta(ep).get("name", ""), endpoints_string(ep), _T._age(ep, now)]


def slice_ports(ports: list | None) -> str:
    """PORTS of an EndpointSlice: the numbers (the name of a port without one, * for neither)."""
    items = [p for p in ports or [] if isinstance(p, dict)]
    listed = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in items[:_MAX_LISTED]]
    return _more(listed, len(items), "<unset>")


def slice_endpoints(endpoints: list | None) -> str:
    """ENDPOINTS of an EndpointSlice: its addresses, 3 of them then "+ N more..."."""
    addrs = [a for e in endpoints or [] if isinstance(e, dict) for a in e.get("addresses") or []]
    return _more(addrs[:_MAX_LISTED], len(addrs), "<unset>")


def endpointslice_cells(es: dict, now: float | None = None) -> list:
    return [_T.meta(es).get("name", ""), es.get("addressType") or "", slice_ports(es.get("ports")),
            slice_endpoints(es.get("endpoints")), _T._age(es, now)]


CELLS = {"services": service_cells, "endpoints": endpoints_cells, "endpointslices": endpointslice_cells}
