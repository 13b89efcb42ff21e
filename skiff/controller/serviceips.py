"""Cluster IPs and node ports of Services, allocated by the registry as the kube-apiserver's
service REST storage allocates them.

One :class:`ServiceAllocator` per registry holds what is taken, in memory:

- cluster IPs from the service CIDR (``--service-cidr``, default 10.96.0.0/12), never its
  network address nor (IPv4) its broadcast address; the first address after the network one is
  reserved, as Kubernetes gives it to the ``kubernetes`` service. Dynamic picks are random,
  from the upper part of the range first (the lower part is left for requested IPs, as
  Kubernetes' allocator does);
- node ports from ``--service-node-port-range`` (default 30000-32767), for NodePort and
  LoadBalancer services (the ports of one service with the same number share one node port),
  and a LoadBalancer service's healthCheckNodePort when its externalTrafficPolicy is Local.

Its state is rebuilt from the stored Services before the first use (the controller does it at
start), so a restarted controller never hands out an IP twice. Every allocating write runs
inside :meth:`ServiceAllocator.transaction` (an asyncio lock held across the allocation and
the store write): what a failed write took is given back, what an update or a delete frees is
freed only once the write succeeded, and a dry run keeps nothing.

The errors are Kubernetes' (422 Invalid)::

    spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: failed to allocate IP 10.0.0.1: the provided IP
        (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12
    spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is
        already allocated
    spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid
        ports is 30000-32767
    spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated

:func:`fill_update` is the update half of the service strategy: an update that leaves out
the cluster IPs or node ports the server gave keeps them (``kubectl apply`` sends the manifest
without them), clusterIP and clusterIPs are kept in step, and fields a new type does not use
(cluster IPs for ExternalName, node ports for ClusterIP) are dropped when the client did not
change them.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from typing import Any, AsyncIterator

from skiff.api import errors as E
from skiff.api.validation_service import externally_accessible, go_value, is_headless, needs_health_check

log = logging.getLogger("skiff.serviceips")

__all__ = ["ServiceAllocator", "ServiceTxn", "fill_update", "parse_service_cidr", "parse_port_range",
           "DEFAULT_SERVICE_CIDR", "DEFAULT_NODE_PORT_RANGE"]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
_RANDOM_TRIES = 32


def parse_service_cidr(text: str):
    """The service CIDR (ValueError with a reason when it cannot be one)."""
    try:
        net = ipaddress.ip_network(str(text).strip(), strict=True)
    except ValueError as e:
        raise ValueError(str(e)) from None
    if net.max_prefixlen - net.prefixlen > 20:      # kube-apiserver's limit (its allocator is a bitmap)
        raise ValueError(f"{net} is too large; for {net.max_prefixlen}-bit addresses, the mask must be >= "
                         f"{net.max_prefixlen - 20}")
    usable = net.num_addresses - (2 if net.version == 4 else 1)
    if usable < 2:
        raise ValueError(f"{net} is too small: a service CIDR needs at least 2 usable addresses")
    return net


def parse_port_range(text: str) -> tuple[int, int]:
    """"30000-32767" (or one port) -> (30000, 32767); ValueError when it is no port range."""
    base, sep, last = str(text).strip().partition("-")
    try:
        lo = int(base)
        hi = int(last) if sep else lo
    except ValueError:
        raise ValueError(f"unable to parse port range: {text}") from None
    if not (1 <= lo <= hi <= 65535):
        raise ValueError(f"invalid port range: {text}")
    return lo, hi


def _range_offset(size: int, step: int, maximum: int) -> int:
    """How much of the bottom of a range dynamic picks leave to requested values (Kubernetes'
    min(max(16, size/step), max); 0 for ranges of 16 or fewer)."""
    if size <= 16:
        return 0
    return min(max(16, size // step), maximum)


def _pick(size: int, taken, offset: int) -> int | None:
    """A free index in [0, size): random from [offset, size) first, then any."""
    if size - len(taken) <= 0:
        return None
    upper = size - offset
    if upper > 0:
        for _ in range(_RANDOM_TRIES):
            i = offset + random.randrange(upper)
            if i not in taken:
                return i
        start = random.randrange(upper)
        for k in range(upper):
            i = offset + (start + k) % upper
            if i not in taken:
                return i
    for i in range(offset):
        if i not in taken:
            return i
    return None


def _svc_name(svc: dict) -> str:
    return str((svc.get("metadata") or {}).get("name") or "")


def _invalid(svc: dict, field: str, value_text: str, why: str) -> E.APIError:
    return E.invalid("Service", _svc_name(svc), [{"field": field, "reason": "FieldValueInvalid",
                                                  "message": f"Invalid value: {value_text}: {why}"}], "services")


def _node_ports(spec: dict) -> set[int]:
    return {p["nodePort"] for p in spec.get("ports") or []
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"]}


def _needs_node_ports(spec: dict) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def _should_allocate_node_ports(spec: dict) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


class ServiceAllocator:
    """What cluster IPs and node ports the stored services hold."""

    def __init__(self, service_cidr: str = DEFAULT_SERVICE_CIDR, node_port_range: str = DEFAULT_NODE_PORT_RANGE):
        self.network = parse_service_cidr(service_cidr)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        self.port_min, self.port_max = parse_port_range(node_port_range)
        # index i is the address network + 1 + i
        self._base = int(self.network.network_address) + 1
        self._ip_count = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        self._ip_offset = _range_offset(self._ip_count, 16, 256)
        self._port_count = self.port_max - self.port_min + 1
        self._port_offset = _range_offset(self._port_count, 32, 128)
        self.reserved_ip = str(ipaddress.ip_address(self._base))   # the kubernetes service's
        self._ips: set[int] = {0}
        self._ports: set[int] = set()
        self.lock = asyncio.Lock()
        self.loaded = False

    @property
    def cidr(self) -> str:
        return str(self.network)

    @property
    def port_range(self) -> str:
        return f"{self.port_min}-{self.port_max}"

    # ------------------------------------------------------------------ state
    def _ip_index(self, ip: str) -> int | None:
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if a.version != self.network.version or a not in self.network:
            return None
        i = int(a) - self._base
        return i if 0 <= i < self._ip_count else None

    def _ip_of(self, i: int) -> str:
        return str(ipaddress.ip_address(self._base + i))

    def in_use(self) -> tuple[set[str], set[int]]:
        """(cluster IPs, node ports) taken now (the reserved IP included)."""
        return {self._ip_of(i) for i in self._ips}, set(self._ports)

    def mark(self, svc: dict) -> None:
        """Record what a stored service holds (its values outside the ranges are ignored)."""
        spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
        if spec.get("type") != "ExternalName":
            for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
                i = self._ip_index(ip) if isinstance(ip, str) else None
                if i is not None:
                    if i in self._ips and i != 0:
                        log.warning("cluster IP %s is held by more than one service (%s/%s)", ip,
                                    (svc.get("metadata") or {}).get("namespace"), _svc_name(svc))
                    self._ips.add(i)
        for port in self._held_ports(spec):
            if self.port_min <= port <= self.port_max:
                self._ports.add(port)

    @staticmethod
    def _held_ports(spec: dict) -> set[int]:
        ports = _node_ports(spec)
        hc = spec.get("healthCheckNodePort")
        if isinstance(hc, int) and hc:
            ports.add(hc)
        return ports

    async def load(self, storage) -> None:
        """Rebuild the state from every stored service (once; call with the lock held or before
        serving)."""
        from skiff.controller.storage import prefix_for
        ips, ports = {0}, set()
        self._ips, self._ports = ips, ports
        items, _, _ = await storage.list_keyed(prefix_for("services", None))
        for _, svc in items:
            self.mark(svc)
        self.loaded = True
        log.info("service allocations loaded: %d cluster IPs, %d node ports in use", len(self._ips) - 1,
                 len(self._ports))

    async def ensure_loaded(self, storage) -> None:
        if not self.loaded:
            async with self.lock:
                if not self.loaded:
                    await self.load(storage)

    @contextlib.asynccontextmanager
    async def transaction(self, storage, dry_run: bool = False) -> AsyncIterator["ServiceTxn"]:
        """Allocate inside: on an exception what was taken is given back; otherwise what the
        transaction freed is freed (nothing is kept on a dry run)."""
        async with self.lock:
            if not self.loaded:
                await self.load(storage)
            txn = ServiceTxn(self)
            try:
                yield txn
            except BaseException:
                txn.revert()
                raise
            if dry_run:
                txn.revert()
            else:
                txn.commit()

    # ------------------------------------------------------------------ single values
    def take_ip(self, ip: str) -> str | None:
        """Take a requested IP; the reason it cannot be taken, or None."""
        i = self._ip_index(ip)
        if i is None:
            return (f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is "
                    f"{self.cidr}")
        if i in self._ips:
            return "provided IP is already allocated"
        self._ips.add(i)
        return None

    def next_ip(self) -> str | None:
        i = _pick(self._ip_count, self._ips, self._ip_offset)
        if i is None:
            return None
        self._ips.add(i)
        return self._ip_of(i)

    def free_ip(self, ip: str) -> None:
        i = self._ip_index(ip)
        if i is not None and i != 0:
            self._ips.discard(i)

    def take_port(self, port: int) -> str | None:
        if not self.port_min <= port <= self.port_max:
            return f"provided port is not in the valid range. The range of valid ports is {self.port_range}"
        if port in self._ports:
            return "provided port is already allocated"
        self._ports.add(port)
        return None

    def next_port(self) -> int | None:
        taken = {p - self.port_min for p in self._ports}
        i = _pick(self._port_count, taken, self._port_offset)
        if i is None:
            return None
        self._ports.add(self.port_min + i)
        return self.port_min + i

    def free_port(self, port: int) -> None:
        self._ports.discard(port)


class ServiceTxn:
    """The allocations of one write: ``taken`` is given back by :meth:`revert`, ``freed`` is
    released by :meth:`commit`."""

    def __init__(self, alloc: ServiceAllocator):
        self.alloc = alloc
        self.taken_ips: list[str] = []
        self.taken_ports: list[int] = []
        self.freed_ips: list[str] = []
        self.freed_ports: list[int] = []

    def commit(self) -> None:
        for ip in self.freed_ips:
            self.alloc.free_ip(ip)
        for port in self.freed_ports:
            if port not in self.taken_ports:
                self.alloc.free_port(port)
        self.taken_ips, self.taken_ports, self.freed_ips, self.freed_ports = [], [], [], []

    def revert(self) -> None:
        for ip in self.taken_ips:
            self.alloc.free_ip(ip)
        for port in self.taken_ports:
            self.alloc.free_port(port)
        self.taken_ips, self.taken_ports, self.freed_ips, self.freed_ports = [], [], [], []

    # ------------------------------------------------------------------ cluster IPs
    def _take_ip(self, svc: dict, ip: str) -> None:
        md = svc.get("metadata") or {}
        if ip == self.alloc.reserved_ip and md.get("name") == "kubernetes" and md.get("namespace") == "default":
            return          # the address kept for the API server's own Service (always held)
        why = self.alloc.take_ip(ip)
        if why:
            ips = (svc.get("spec") or {}).get("clusterIPs") or [ip]
            raise _invalid(svc, "spec.clusterIPs", go_value(ips), f"failed to allocate IP {ip}: {why}")
        self.taken_ips.append(ip)

    def _alloc_cluster_ip(self, svc: dict) -> None:
        spec = svc["spec"]
        if spec.get("type") == "ExternalName" or is_headless(spec):
            return
        ip = spec.get("clusterIP")
        if ip:
            self._take_ip(svc, ip)
        else:
            ip = self.alloc.next_ip()
            if ip is None:
                raise E.internal("failed to allocate a serviceIP: range is full")
            self.taken_ips.append(ip)
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _init_families(self, svc: dict, old: dict | None) -> None:
        """initIPFamilyFields for a single-family cluster: ipFamilyPolicy (the old one on
        update, RequireDualStack for a headless service without selector, else SingleStack) and
        ipFamilies (the cluster's family; a headless selectorless one gets both)."""
        spec = svc["spec"]
        if spec.get("type") == "ExternalName":
            return
        ospec = (old or {}).get("spec") or {}
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            if ospec.get("ipFamilyPolicy") is not None and ospec.get("type") != "ExternalName":
                spec["ipFamilyPolicy"] = ospec["ipFamilyPolicy"]
            elif headless_selectorless:
                spec["ipFamilyPolicy"] = "RequireDualStack"
            else:
                spec["ipFamilyPolicy"] = "SingleStack"
        policy = spec["ipFamilyPolicy"]
        causes = []
        fams = list(spec.get("ipFamilies") or [])
        if old is not None and policy == "SingleStack" and ospec.get("ipFamilies") == fams and len(fams) > 1:
            fams = fams[:1]
        for i, ip in enumerate(spec.get("clusterIPs") or []):
            if ip == "None":
                break
            fam = "IPv6" if ":" in ip else "IPv4"
            if i >= len(fams):
                if fam != self.alloc.family:
                    causes.append({"field": f"spec.clusterIPs[{i}]", "reason": "FieldValueInvalid",
                                   "message": f"Invalid value: {go_value(spec.get('clusterIPs'))}: {fam} is not "
                                              f"configured on this cluster"})
                else:
                    fams.append(fam)
        if not causes and headless_selectorless:
            if not fams:
                fams = [self.alloc.family]
            if len(fams) < 2 and policy != "SingleStack":
                fams.append("IPv6" if fams[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = fams
            return
        if policy == "RequireDualStack":
            causes.append({"field": "spec.ipFamilyPolicy", "reason": "FieldValueInvalid",
                           "message": f'Invalid value: "{policy}": this cluster is not configured for dual-stack '
                                      f'services'})
        for i, fam in enumerate(fams):
            if fam != self.alloc.family:
                causes.append({"field": f"spec.ipFamilies[{i}]", "reason": "FieldValueInvalid",
                               "message": f'Invalid value: "{fam}": not configured on this cluster'})
        if causes:
            raise E.invalid("Service", _svc_name(svc), causes, "services")
        spec["ipFamilies"] = fams or [self.alloc.family]

    # ------------------------------------------------------------------ node ports
    def _take_port(self, svc: dict, field: str, port: int) -> None:
        why = self.alloc.take_port(port)
        if why:
            raise _invalid(svc, field, str(port), why)
        self.taken_ports.append(port)

    def _next_port(self) -> int:
        port = self.alloc.next_port()
        if port is None:
            raise E.internal("failed to allocate a nodePort: range is full")
        self.taken_ports.append(port)
        return port

    def _init_node_ports(self, svc: dict) -> None:
        """Create: requested node ports taken, the others allocated (one per service port number)."""
        spec = svc["spec"]
        by_port: dict[Any, int] = {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        for i, p in enumerate(ports):
            if not p.get("nodePort") and not _should_allocate_node_ports(spec):
                continue
            have = by_port.get(p.get("port"))
            if not have:
                want = p.get("nodePort") or next((q.get("nodePort") for q in ports[i:]
                                                  if q.get("port") == p.get("port") and q.get("nodePort")), 0)
                if want:
                    self._take_port(svc, f"spec.ports[{i}].nodePort", want)
                    p["nodePort"] = want
                else:
                    p["nodePort"] = self._next_port()
                by_port[p.get("port")] = p["nodePort"]
            elif p.get("nodePort") != have:
                if not p.get("nodePort"):
                    p["nodePort"] = have
                elif p["nodePort"] not in self.taken_ports:
                    self._take_port(svc, f"spec.ports[{i}].nodePort", p["nodePort"])

    def _update_node_ports(self, svc: dict, old: dict) -> None:
        spec, ospec = svc["spec"], old.get("spec") or {}
        old_ports = _node_ports(ospec) if _needs_node_ports(ospec) else set()
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            if not p.get("nodePort") and not _should_allocate_node_ports(spec):
                continue
            np = p.get("nodePort")
            if np:
                if np not in old_ports and np not in self.taken_ports:
                    self._take_port(svc, f"spec.ports[{i}].nodePort", np)
            else:
                p["nodePort"] = self._next_port()
        self.freed_ports += sorted(old_ports - _node_ports(spec))

    def _health_check_port(self, svc: dict, old: dict | None) -> None:
        spec = svc["spec"]
        ospec = (old or {}).get("spec") or {}
        had = needs_health_check(ospec) if old is not None else False
        needs = needs_health_check(spec)
        old_hc = ospec.get("healthCheckNodePort") if had else None
        if needs:
            hc = spec.get("healthCheckNodePort")
            if had and old_hc and not hc:
                spec["healthCheckNodePort"] = old_hc
            elif hc and hc != old_hc:
                why = self.alloc.take_port(hc)
                if why:
                    raise _invalid(svc, "spec.healthCheckNodePort", str(hc), why)
                self.taken_ports.append(hc)
                if old_hc:
                    self.freed_ports.append(old_hc)
            elif not hc:
                spec["healthCheckNodePort"] = self._next_port()
        elif had and old_hc:
            self.freed_ports.append(old_hc)
            if spec.get("healthCheckNodePort") == old_hc:
                spec.pop("healthCheckNodePort", None)

    # ------------------------------------------------------------------ whole services
    def allocate_create(self, svc: dict) -> None:
        """Fill in (and take) a new service's IP families, cluster IP and node ports."""
        if not isinstance(svc.get("spec"), dict):
            return
        self._init_families(svc, None)
        self._alloc_cluster_ip(svc)
        if _needs_node_ports(svc["spec"]):
            self._init_node_ports(svc)
        self._health_check_port(svc, None)

    def allocate_update(self, old: dict, svc: dict) -> None:
        """The allocations of an update from ``old`` (values kept by :func:`fill_update`):
        cluster IPs for a service that stops being an ExternalName one (freed for one that
        becomes one), node ports for a NodePort/LoadBalancer service (the old ones it no longer
        uses freed), the health check node port."""
        spec, ospec = svc.get("spec"), old.get("spec") or {}
        if not isinstance(spec, dict):
            return
        self._init_families(svc, old)
        otype, ntype = ospec.get("type"), spec.get("type")
        if otype == "ExternalName" and ntype != "ExternalName":
            self._alloc_cluster_ip(svc)
        elif otype != "ExternalName" and ntype == "ExternalName" and not is_headless(ospec):
            self.freed_ips += [ip for ip in ospec.get("clusterIPs") or [] if ip != "None"]
        if _needs_node_ports(spec):
            self._update_node_ports(svc, old)
        elif _needs_node_ports(ospec):
            self.freed_ports += sorted(_node_ports(ospec))
        self._health_check_port(svc, old)

    def release_service(self, svc: dict) -> None:
        """Free what a deleted service held (on commit)."""
        spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
        if spec.get("type") != "ExternalName":
            self.freed_ips += [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip != "None"]
        self.freed_ports += sorted(ServiceAllocator._held_ports(spec))


# ---------------------------------------------------------------------- the update strategy

def _same(a: dict, b: dict, key: str) -> bool:
    return a.get(key) == b.get(key)


def fill_update(cur: dict, new: dict) -> None:
    """Before admission of an update of ``cur`` to ``new`` (changed in place): what the server
    allocated and the client left out is kept (Kubernetes' patchAllocatedValues), clusterIP and
    clusterIPs are kept in step (normalizeClusterIPs), and values a new type does not use are
    dropped when the client did not change them (dropTypeDependentFields)."""
    ospec, spec = cur.get("spec"), new.get("spec")
    if not isinstance(ospec, dict) or not isinstance(spec, dict):
        return
    otype, ntype = ospec.get("type") or "ClusterIP", spec.get("type") or "ClusterIP"
    # patchAllocatedValues
    if otype != "ExternalName" and ntype != "ExternalName":
        if not spec.get("clusterIP") and ospec.get("clusterIP"):
            spec["clusterIP"] = ospec["clusterIP"]
        if not spec.get("clusterIPs") and ospec.get("clusterIPs"):
            spec["clusterIPs"] = list(ospec["clusterIPs"])
        # what initIPFamilyFields infers for an update that leaves them out
        if spec.get("ipFamilyPolicy") is None and ospec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = ospec["ipFamilyPolicy"]
        if not spec.get("ipFamilies") and ospec.get("ipFamilies") and _same(ospec, spec, "clusterIPs"):
            spec["ipFamilies"] = list(ospec["ipFamilies"])
    if otype in ("NodePort", "LoadBalancer") and ntype in ("NodePort", "LoadBalancer"):
        oports = [p for p in ospec.get("ports") or [] if isinstance(p, dict)]
        nports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        used = _node_ports(ospec) & _node_ports(spec)
        by_name = {p.get("name") or "": p.get("nodePort") for p in oports}
        for p in nports:
            if not p.get("nodePort"):
                old = by_name.get(p.get("name") or "")
                if old and old not in used:
                    p["nodePort"] = old
    if needs_health_check(ospec) and needs_health_check({**spec, "type": ntype}) and \
            not spec.get("healthCheckNodePort") and ospec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
    # normalizeClusterIPs
    if ospec.get("clusterIP") != spec.get("clusterIP"):
        if _same(ospec, spec, "clusterIPs"):
            if not spec.get("clusterIP"):
                spec.pop("clusterIPs", None)
            elif spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"], *spec["clusterIPs"][1:]]
            else:
                spec["clusterIPs"] = [spec["clusterIP"]]
    elif not _same(ospec, spec, "clusterIPs"):
        if spec.get("clusterIPs"):
            spec["clusterIP"] = spec["clusterIPs"][0]
        else:
            spec.pop("clusterIP", None)
    # dropTypeDependentFields
    if otype != "ExternalName" and ntype == "ExternalName":
        if _same(ospec, spec, "clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if _same(ospec, spec, "ipFamilies"):
            spec.pop("ipFamilies", None)
        if _same(ospec, spec, "ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if otype in ("NodePort", "LoadBalancer") and ntype not in ("NodePort", "LoadBalancer"):
        if [p.get("nodePort") for p in ospec.get("ports") or [] if isinstance(p, dict)] == \
                [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]:
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
    if needs_health_check(ospec) and not needs_health_check({**spec, "type": ntype}) and \
            _same(ospec, spec, "healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if otype == "LoadBalancer" and ntype != "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is not None and \
                _same(ospec, spec, "allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts")
        if _same(ospec, spec, "loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    ospec_typed = {**ospec, "type": otype}
    if externally_accessible(ospec_typed) and not externally_accessible({**spec, "type": ntype}) and \
            _same(ospec, spec, "externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
