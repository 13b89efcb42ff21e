"""The service load balancer of a cluster without a cloud: k3s's ServiceLB, in the controller.

A Service of ``type: LoadBalancer`` (without a ``spec.loadBalancerClass``: that names another
implementation) is given the addresses of the cluster's nodes as its load balancer ingress
(``status.loadBalancer.ingress``: the EXTERNAL-IP of ``kubectl get svc``). Each agent's service
proxy already sends what reaches an ingress address at a service port to the service's
endpoints, so ``<any node's address>:<port>`` reaches the Service from outside the cluster.

- **The nodes:** Ready ones, without the label
  ``node.kubernetes.io/exclude-from-external-load-balancers``, by their ExternalIP, else their
  InternalIP. A loopback address is no address for others to reach, and is left out.
- **One port, one Service:** as the node ports of k3s's svclb pods, a port (and protocol) is
  held by the oldest LoadBalancer Service that asks for it. A later Service asking for a held
  port, or for the API server's own port, stays pending (no ingress) with a Warning event,
  until the port is free.
- A Service that is no longer a LoadBalancer has its ingress cleared.
"""
from __future__ import annotations

import ipaddress
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["ServiceLBController", "ingress_for", "held_ports"]

log = logging.getLogger("skiff.servicelb")

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def node_address(node: dict) -> str | None:
    """The node's ExternalIP, else its InternalIP; None for none, or a loopback one."""
    addrs = (node.get("status") or {}).get("addresses") or []
    for kind in ("ExternalIP", "InternalIP"):
        for a in addrs:
            if a.get("type") == kind and a.get("address"):
                try:
                    ip = ipaddress.ip_address(a["address"])
                except ValueError:
                    continue
                if not ip.is_loopback:
                    return str(ip)
    return None


def is_ours(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass") \
        and not (svc.get("metadata") or {}).get("deletionTimestamp")


def _ports(svc: dict) -> set[tuple[str, int]]:
    return {((p.get("protocol") or "TCP"), p["port"]) for p in (svc.get("spec") or {}).get("ports") or []
            if isinstance(p.get("port"), int)}


def _age(svc: dict) -> tuple[str, str, str]:
    md = svc.get("metadata") or {}
    return md.get("creationTimestamp") or "", md.get("namespace") or "", md.get("name") or ""


def held_ports(services: list[dict], reserved: set[tuple[str, int]] = frozenset()) -> dict[str, set]:
    """Service key -> the ports it wanted that are held by an older LoadBalancer Service or
    reserved (the API server's): empty for a Service that gets its ingress."""
    taken: set[tuple[str, int]] = set(reserved)
    out: dict[str, set] = {}
    for svc in sorted((s for s in services if is_ours(s)), key=_age):
        want = _ports(svc)
        clash = want & taken
        out[key_of(svc)] = clash
        if not clash:
            taken |= want
    return out


def _usable(node: dict) -> str | None:
    """The node's address for the load balancer, or None when it takes no part."""
    if not _ready(node) or EXCLUDE_LABEL in ((node.get("metadata") or {}).get("labels") or {}):
        return None
    return node_address(node)


def ingress_for(nodes: list[dict]) -> list[dict]:
    """The ingress of every LoadBalancer Service that holds its ports: one entry per usable node."""
    ips = {_usable(n) for n in nodes}
    ips.discard(None)
    return [{"ip": ip, "ipMode": "VIP"} for ip in sorted(ips, key=ipaddress.ip_address)]


class ServiceLBController(QueueController):
    def __init__(self, client, *, shared: SharedInformers | None = None, workers: int = 1):
        self.client = client
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("servicelb")
        self.services: Informer | None = None
        self.nodes: Informer | None = None
        self.endpoints: Informer | None = None
        self._warned: dict[str, tuple[str, str]] = {}   # service -> the warning last recorded
        from skiff.controller.events import EventRecorder
        self.events = EventRecorder(client, "service-lb-controller")

    async def start(self) -> None:
        self.services = await self.shared.acquire(self.client, "services")
        self.nodes = await self.shared.acquire(self.client, "nodes")
        # the API server's own port: from the kubernetes Service's Endpoints (none when it
        # listens on loopback only, where no node address can reach it anyway)
        self.endpoints = Informer(self.client, "endpoints", namespace="default",
                                  field_selector="metadata.name=kubernetes", name="servicelb-apiserver")
        self.services.add_handler(self._on_service)
        self.nodes.add_handler(self._on_node)
        self.endpoints.add_handler(self._on_endpoints)
        await self.endpoints.start()
        self.start_workers("servicelb-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        if self.services is not None:
            self.services.remove_handler(self._on_service)
            await self.shared.release(self.client, "services")
        if self.nodes is not None:
            self.nodes.remove_handler(self._on_node)
            await self.shared.release(self.client, "nodes")
        if self.endpoints is not None:
            await self.endpoints.stop()
        await self.events.close()

    def _on_service(self, typ: str, svc: dict, old: dict | None) -> None:
        if typ == "DELETED" or (old is not None and is_ours(old) and _ports(old) != _ports(svc)) \
                or (old is not None and is_ours(old) != is_ours(svc)):
            self._all()     # a port held may be free now, or taken
        else:
            self.queue.add(key_of(svc))

    def _on_node(self, typ: str, node: dict, old: dict | None) -> None:
        if typ in ("ADDED", "DELETED") or old is None or _usable(old) != _usable(node):
            self._all()

    def _on_endpoints(self, typ: str, obj: dict, old: dict | None) -> None:
        self._all()

    def _all(self) -> None:
        for svc in self.services.list():
            spec = svc.get("spec") or {}
            if spec.get("type") == "LoadBalancer" or ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                self.queue.add(key_of(svc))

    def _reserved(self) -> set[tuple[str, int]]:
        ep = self.endpoints.get("default/kubernetes") if self.endpoints else None
        return {((p.get("protocol") or "TCP"), p["port"]) for s in (ep or {}).get("subsets") or []
                if s.get("addresses") for p in s.get("ports") or [] if isinstance(p.get("port"), int)}

    async def reconcile(self, key: str) -> float | None:
        svc = self.services.get(key)
        if svc is None:
            self._warned.pop(key, None)
            return None
        spec = svc.get("spec") or {}
        cur = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if spec.get("loadBalancerClass") and spec.get("type") == "LoadBalancer":
            return None     # another implementation's
        warning: tuple[str, str] | None = None
        if not is_ours(svc):
            want: list[dict] = []
        elif clash := held_ports(self.services.list(), self._reserved()).get(key):
            want = []
            ports = ", ".join(f"{p}/{proto}" for proto, p in sorted(clash, key=lambda x: (x[1], x[0])))
            warning = ("PortInUse", f"the load balancer cannot take port {ports}: another LoadBalancer "
                                    f"Service or the API server holds it on the nodes; the service stays pending")
        else:
            want = ingress_for(self.nodes.list())
            if not want:
                warning = ("NoNodeAddress", "no Ready node has an address other hosts can reach (a loopback one "
                                            "does not count: a one-host cluster wants `skiff up --listen "
                                            "0.0.0.0:PORT`); the service stays pending")
        if warning is None:
            self._warned.pop(key, None)
        elif self._warned.get(key) != warning:     # said once, until it changes
            self._warned[key] = warning
            self.events.record(svc, "Warning", *warning)
        if want == cur:
            return None
        status = {**(svc.get("status") or {}), "loadBalancer": {"ingress": want} if want else {}}
        try:
            await self.client.update("services", {**svc, "status": status}, subresource="status")
        except APIError as e:
            if e.code == 409:
                return 0.5       # a newer version: look again
            if e.code == 404:
                return None
            raise
        log.info("load balancer ingress set", extra={"fields": {
            "service": key, "ingress": [i["ip"] for i in want]}})
        return None
