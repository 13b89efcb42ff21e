"""The ``kubernetes`` Service of the ``default`` namespace, as kube-apiserver keeps it: how pods
find the API server (client libraries' in-cluster configuration reads KUBERNETES_SERVICE_HOST and
KUBERNETES_SERVICE_PORT, which the agents derive from this Service).

- The Service: ClusterIP, the first address of the service CIDR (kept for it by the allocator),
  port 443 named https, targetPort the API server's port, labels component=apiserver and
  provider=kubernetes, no selector.
- Its Endpoints and EndpointSlice (both named ``kubernetes``, written here as kube-apiserver's
  endpoint reconciler does): the advertise address and the API server's port. The advertise
  address is ``--advertise-address``, else the listen address when it is a routable one, else
  (listening on every address) the host's first non-loopback IPv4 address. A controller that
  listens on loopback only cannot be reached from pods: the Service then has no endpoints, so a
  pod's connection is refused at once rather than hanging.
- Written at start and checked again every ``interval`` seconds: a deleted or edited object comes
  back as it should be.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from skiff.api.errors import APIError

__all__ = ["KUBERNETES", "advertise_address", "service_object", "endpoints_object", "endpointslice_object",
           "reconcile_kubernetes_service", "run_kubernetes_service"]

log = logging.getLogger("skiff.controlplane")

KUBERNETES = "kubernetes"
NAMESPACE = "default"
PORT_NAME = "https"


def _host_ipv4() -> str | None:
    """The host's first non-loopback, non-link-local IPv4 address (read from the kernel, no traffic)."""
    try:
        from pyroute2 import IPRoute
    except ImportError:         # pragma: no cover - pyroute2 is a dependency
        return None
    with IPRoute() as ipr:
        for a in ipr.get_addr(family=2):
            ip = a.get_attr("IFA_ADDRESS")
            if ip and not ipaddress.ip_address(ip).is_loopback and not ipaddress.ip_address(ip).is_link_local:
                return ip
    return None


def advertise_address(listen_host: str, explicit: str | None = None) -> str | None:
    """Where pods reach the API server, or None when they cannot (a loopback-only listener)."""
    if explicit:
        return explicit
    try:
        a = ipaddress.ip_address(listen_host.strip("[]"))
    except ValueError:
        return None     # a host name: not an endpoint address
    if a.is_loopback:
        return None
    if a.is_unspecified:
        return _host_ipv4()
    return str(a)


def service_object(cluster_ip: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": KUBERNETES, "namespace": NAMESPACE,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                     "ports": [{"name": PORT_NAME, "port": 443, "protocol": "TCP", "targetPort": port}]}}


def endpoints_object(ip: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": KUBERNETES, "namespace": NAMESPACE,
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}]}


def endpointslice_object(ip: str, port: int) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": KUBERNETES, "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": KUBERNETES}},
            "addressType": "IPv6" if ":" in ip else "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}


def _differs(cur: dict, want: dict) -> bool:
    """Whether ``cur`` lacks something of ``want`` (its labels, spec or subsets...)."""
    for k, v in want.items():
        if k == "metadata":
            if any((cur.get("metadata") or {}).get("labels", {}).get(lk) != lv
                   for lk, lv in (v.get("labels") or {}).items()):
                return True
        elif k == "spec":
            spec = cur.get("spec") or {}
            if any(spec.get(sk) != sv for sk, sv in v.items() if sk not in ("ports",)):
                return True
            if [{f: p.get(f) for f in ("name", "port", "protocol", "targetPort")} for p in spec.get("ports") or ()] \
                    != v["ports"]:
                return True
        elif k not in ("apiVersion", "kind") and cur.get(k) != v:
            return True
    return False


async def _ensure(registry, resource: str, want: dict | None) -> None:
    try:
        cur = await registry.get(resource, KUBERNETES, NAMESPACE)
    except APIError as e:
        if e.code != 404:
            raise
        cur = None
    if want is None:
        if cur is not None:
            await registry.delete(resource, KUBERNETES, NAMESPACE)
        return
    if cur is None:
        await registry.create(resource, want, NAMESPACE)
        return
    if _differs(cur, want):
        merged = {**cur, **{k: v for k, v in want.items() if k != "metadata"},
                  "metadata": {**cur["metadata"], "labels": {**(cur["metadata"].get("labels") or {}),
                                                            **want["metadata"]["labels"]}}}
        if resource == "services":      # the cluster IP and the server-set fields stay
            merged["spec"] = {**cur.get("spec", {}), **want["spec"]}
        await registry.update(resource, merged, NAMESPACE)


async def reconcile_kubernetes_service(registry, cluster_ip: str, advertise: str | None, port: int) -> None:
    await _ensure(registry, "services", service_object(cluster_ip, port))
    await _ensure(registry, "endpoints", endpoints_object(advertise, port) if advertise else None)
    await _ensure(registry, "endpointslices", endpointslice_object(advertise, port) if advertise else None)


async def run_kubernetes_service(registry, cluster_ip: str, advertise: str | None, port: int,
                                 interval: float = 10.0) -> None:
    """Keep the objects as they should be, until cancelled."""
    while True:
        try:
            await reconcile_kubernetes_service(registry, cluster_ip, advertise, port)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - retried at the next interval
            log.warning("cannot write the kubernetes service: %s", e)
        await asyncio.sleep(interval)
