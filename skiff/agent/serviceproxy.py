"""Services on the node: what kube-proxy does in its nftables mode, inside the agent.

The agent watches every Service and EndpointSlice, computes what its nftables table should
hold with a pure function (:func:`desired_state`, then :func:`render`), and puts the whole
table in place in one libnftables transaction when that changed. Bursts of changes are
coalesced (at most one sync per ``min_interval``); a periodic resync puts the table back if
someone deleted it.

The table (family ``ip``, one per agent: ``skiffsvc-<pod bridge>``) has kube-proxy's layout::

    map service-ips         ClusterIP|externalIP . proto . port : goto <service chain>
    map service-nodeports   proto . nodePort : goto <external chain>   (any local address but 127/8)
    map no-endpoint-services / no-endpoint-nodeports : goto reject-chain (connection refused)
    set cluster-ips         every ClusterIP: a port no Service serves is refused, never routed on
    svc-…   (cluster traffic)   marks traffic not from this node's pods for masquerade, then
                                numgen random mod N vmap { i : goto ep-… }
    ext-…   (nodePort, externalIPs)  marks for masquerade and goes to svc-… (Cluster policy), or
                                to this node's endpoints only, unmasqueraded (Local policy)
    ep-…    marks hairpin traffic (a pod reaching itself) for masquerade; dnat to IP:port
            (the pod bridge's ports are put in hairpin mode, as the kubelet's hairpin-veth)
    nat prerouting/output (dstnat) -> services; nat postrouting (srcnat) masquerades marked
    packets; filter prerouting/output (dstnat + 10: after DNAT, before routing) refuse what is
    still addressed to a service without endpoints, or to a cluster IP's unserved port.

Without br_netfilter (bridge-nf-call-iptables=0) a reply from a pod of this node to a pod of this
node would be switched by the bridge past conntrack, so the DNAT would not be undone: then
traffic from this node's pods to an endpoint on this node is masqueraded too.

Left out: sessionAffinity ClientIP (every connection picks an endpoint anew), topology hints,
IPv6, SCTP, loadBalancerSourceRanges, and the clearing of UDP conntrack entries of endpoints
that went away (kube-proxy deletes them; here such a flow lingers until its entry expires).
A full table is written on every change (kube-proxy writes only the difference): fine for
hundreds of Services.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from dataclasses import dataclass

from skiff.agent.syncloop import cancel, drop_state, next_wake, stop_informers

log = logging.getLogger("skiff.agent.serviceproxy")

MASQUERADE_MARK = 0x4000
TABLE_PREFIX = "skiffsvc-"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}

# base chains: name -> (type, hook, priority). The filter chains come right after DNAT (dstnat
# + 10): what is still addressed to a service address there was not DNATed, and is refused
# before routing could send it anywhere (even on a host without a route to the service CIDR).
BASE_CHAINS = {
    "nat-prerouting": ("nat", "prerouting", -100),
    "nat-output": ("nat", "output", -100),
    "nat-postrouting": ("nat", "postrouting", 100),
    "filter-prerouting": ("filter", "prerouting", -90),
    "filter-output": ("filter", "output", -90),
}


def table_name_for(bridge: str) -> str:
    """The agent's table: one per pod bridge, so that two agents of one host never share it."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in bridge) or "pods"
    return TABLE_PREFIX + safe


# ------------------------------------------------------------------------------ desired state

@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    local: bool        # on this node


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, as the node serves it."""
    name: str                                  # "ns/svc:port/proto", for logs
    key: str                                   # "ns/svc/proto/portname": names its chains
    proto: str                                 # tcp | udp
    chain: str                                 # the cluster chain (svc-…)
    endpoints: tuple[Endpoint, ...]            # cluster traffic picks among these
    ext_chain: str = ""                        # nodePort / externalIP traffic (ext-…), "" if none
    ext_local: bool = False                    # externalTrafficPolicy: Local
    local_endpoints: tuple[Endpoint, ...] = ()  # ext_local: the endpoints on this node


@dataclass(frozen=True)
class ProxyState:
    pod_cidr: str = ""
    masquerade_local: bool = False            # no br_netfilter (see the module's doc)
    ports: tuple[ServicePort, ...] = ()
    vips: tuple[tuple[str, str, int, str], ...] = ()          # (ip, proto, port, chain)
    nodeports: tuple[tuple[str, int, str], ...] = ()          # (proto, nodePort, chain)
    no_endpoints: tuple[tuple[str, str, int], ...] = ()       # (ip, proto, port): refused
    no_endpoint_nodeports: tuple[tuple[str, int], ...] = ()   # (proto, nodePort): refused
    cluster_ips: tuple[str, ...] = ()

    def summary(self) -> str:
        served = sum(1 for p in self.ports if p.endpoints)
        return (f"{len(self.ports)} service ports ({served} with endpoints), {len(self.vips)} "
                f"virtual IP ports, {len(self.nodeports)} node ports, "
                f"{len(self.no_endpoints) + len(self.no_endpoint_nodeports)} refused")


def _v4(text) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


def _chain(kind: str, key: str, suffix: str = "") -> str:
    h = hashlib.sha256((key + suffix).encode()).hexdigest()[:8]
    return f"{kind}-{h}-{key}{suffix}"


def _ready(ep: dict) -> tuple[bool, bool, bool]:
    """(ready, serving, terminating) as EndpointSlice consumers read them: an unset ready or
    serving means true, an unset terminating false."""
    c = ep.get("conditions") or {}
    ready = c.get("ready") is not False
    serving = c.get("serving") if c.get("serving") is not None else ready
    return ready, bool(serving), bool(c.get("terminating"))


def _slice_endpoints(slices: list[dict], port_name: str, proto: str, node: str,
                     in_pod_cidr) -> list[Endpoint]:
    """The usable endpoints of one service port over all its slices: the ready ones, or, when
    none is ready, those serving while terminating (kube-proxy's fallback)."""
    ready: dict[tuple[str, int], Endpoint] = {}
    fallback: dict[tuple[str, int], Endpoint] = {}
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        port = None
        for p in s.get("ports") or []:
            if (p.get("name") or "") == port_name and PROTOCOLS.get(p.get("protocol") or "TCP") == proto:
                port = p.get("port")
                break
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            continue
        for ep in s.get("endpoints") or []:
            is_ready, serving, terminating = _ready(ep)
            if not (is_ready or (serving and terminating)):
                continue
            node_name = ep.get("nodeName")
            for addr in ep.get("addresses") or []:
                ip = _v4(addr)
                if ip is None:
                    continue
                local = node_name == node if node_name else in_pod_cidr(ip)
                e = Endpoint(ip, port, local)
                (ready if is_ready else fallback)[(ip, port)] = e
    chosen = ready or fallback
    return [chosen[k] for k in sorted(chosen, key=lambda k: (ipaddress.IPv4Address(k[0]), k[1]))]


def desired_state(services: list[dict], slices: list[dict], node: str, pod_cidr: str = "",
                  masquerade_local: bool = False) -> ProxyState:
    """What this node's table should hold for these Services and EndpointSlices (pure)."""
    net = ipaddress.ip_network(pod_cidr, strict=False) if pod_cidr else None

    def in_pod_cidr(ip: str) -> bool:
        return net is not None and ipaddress.IPv4Address(ip) in net

    by_service: dict[tuple[str, str], list[dict]] = {}
    for s in slices:
        md = s.get("metadata") or {}
        svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc and not md.get("deletionTimestamp"):
            by_service.setdefault((md.get("namespace") or "default", svc), []).append(s)

    ports: list[ServicePort] = []
    vips: list[tuple[str, str, int, str]] = []
    nodeports: list[tuple[str, int, str]] = []
    no_eps: list[tuple[str, str, int]] = []
    no_ep_nodeports: list[tuple[str, int]] = []
    cluster_ips: set[str] = set()
    for svc in sorted(services, key=lambda o: ((o.get("metadata") or {}).get("namespace") or "",
                                               (o.get("metadata") or {}).get("name") or "")):
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = md.get("namespace") or "default", md.get("name") or ""
        stype = spec.get("type") or "ClusterIP"
        if stype == "ExternalName" or not name:
            continue
        ips = [_v4(ip) for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])]
        ips = [ip for ip in ips if ip]
        if not ips:          # headless ("None"), not allocated yet, or IPv6 only
            continue
        cluster_ips.update(ips)
        external_ips = sorted({ip for ip in map(_v4, spec.get("externalIPs") or []) if ip} |
                              {ip for ip in (_v4(i.get("ip")) for i in
                                             ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
                               if ip})
        node_ports = stype in ("NodePort", "LoadBalancer")
        ext_local = spec.get("externalTrafficPolicy") == "Local"
        int_local = spec.get("internalTrafficPolicy") == "Local"
        svc_slices = by_service.get((ns, name), [])
        for p in spec.get("ports") or []:
            proto = PROTOCOLS.get(p.get("protocol") or "TCP")
            port = p.get("port")
            if proto is None or not isinstance(port, int):
                continue          # SCTP: not served by skiff
            pname = p.get("name") or ""
            key = f"{ns}/{name}/{proto}/{pname}"
            eps = _slice_endpoints(svc_slices, pname, proto, node, in_pod_cidr)
            local_eps = tuple(e for e in eps if e.local)
            cluster_eps = local_eps if int_local else tuple(eps)
            node_port = p.get("nodePort") if node_ports else None
            if not isinstance(node_port, int) or not 0 < node_port < 65536:
                node_port = None
            has_ext = bool(external_ips) or node_port is not None
            sp = ServicePort(name=f"{ns}/{name}:{pname or port}/{proto}", key=key, proto=proto,
                             chain=_chain("svc", key), endpoints=cluster_eps,
                             ext_chain=_chain("ext", key) if has_ext else "",
                             ext_local=ext_local and has_ext, local_endpoints=local_eps if ext_local else ())
            if not eps:     # nothing anywhere: refuse at once, as kube-proxy does
                no_eps += [(ip, proto, port) for ip in ips + external_ips]
                if node_port is not None:
                    no_ep_nodeports.append((proto, node_port))
                continue
            ports.append(sp)
            vips += [(ip, proto, port, sp.chain) for ip in ips]
            vips += [(ip, proto, port, sp.ext_chain) for ip in external_ips]
            if node_port is not None:
                nodeports.append((proto, node_port, sp.ext_chain))
    return ProxyState(pod_cidr=str(net) if net else "", masquerade_local=masquerade_local,
                      ports=tuple(ports), vips=tuple(_unique(vips, 3)),
                      nodeports=tuple(_unique(nodeports, 2)), no_endpoints=tuple(_unique(no_eps, 3)),
                      no_endpoint_nodeports=tuple(_unique(no_ep_nodeports, 2)),
                      cluster_ips=tuple(sorted(cluster_ips, key=ipaddress.IPv4Address)))


def _unique(items: list[tuple], n: int) -> list[tuple]:
    """The first of the items sharing their first ``n`` fields (two Services claiming one
    address and port: the first by namespace/name wins, as an nftables map needs)."""
    seen, out = set(), []
    for it in items:
        if it[:n] not in seen:
            seen.add(it[:n])
            out.append(it)
    return out


# ------------------------------------------------------------------------------ nftables JSON

def _rule(table: str, chain: str, *expr) -> dict:
    return {"add": {"rule": {"family": "ip", "table": table, "chain": chain, "expr": list(expr)}}}


def _m(left, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(proto: str, fld: str) -> dict:
    return {"payload": {"protocol": proto, "field": fld}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _cidr(cidr: str):
    net = ipaddress.IPv4Network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == 32 else \
        {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _goto(chain: str) -> dict:
    return {"goto": {"target": chain}}


def _jump(chain: str) -> dict:
    return {"jump": {"target": chain}}


_DST_TUPLE = {"concat": [_payload("ip", "daddr"), _meta("l4proto"), _payload("th", "dport")]}
_DST_PORT = {"concat": [_meta("l4proto"), _payload("th", "dport")]}
_LOCAL_DADDR = [_m({"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
                _m(_payload("ip", "daddr"), {"prefix": {"addr": "127.0.0.0", "len": 8}}, "!=")]
_LOCAL_SADDR = _m({"fib": {"result": "type", "flags": ["saddr"]}}, "local")


def _pick(table: str, chain: str, targets: list[str]) -> dict:
    """One endpoint chain at random among ``targets`` (a drop when there is none)."""
    if not targets:
        return _rule(table, chain, {"drop": None})
    if len(targets) == 1:
        return _rule(table, chain, _goto(targets[0]))
    return _rule(table, chain, {"vmap": {
        "key": {"numgen": {"mode": "random", "mod": len(targets), "offset": 0}},
        "data": {"set": [[i, _goto(t)] for i, t in enumerate(targets)]}}})


def render(state: ProxyState, table: str) -> list[dict]:
    """The nftables commands that make ``table`` hold ``state``: the table deleted and made
    anew, in one transaction (a table left by an earlier agent is replaced)."""
    T = {"family": "ip", "table": table}
    cmds: list[dict] = [{"add": {"table": {"family": "ip", "name": table}}},
                        {"delete": {"table": {"family": "ip", "name": table}}},
                        {"add": {"table": {"family": "ip", "name": table}}}]
    for name, (typ, hook, prio) in BASE_CHAINS.items():
        cmds.append({"add": {"chain": {**T, "name": name, "type": typ, "hook": hook, "prio": prio,
                                       "policy": "accept"}}})
    chains = ["services", "masquerading", "mark-for-masquerade", "endpoints-check",
              "cluster-ips-check", "reject-chain"]
    ep_chains_of: dict[tuple[str, Endpoint], str] = {}     # (service chain, endpoint) -> chain
    for p in state.ports:
        chains += [p.chain] + ([p.ext_chain] if p.ext_chain else [])
        for e in dict.fromkeys(p.endpoints + p.local_endpoints):
            ep_chains_of[(p.chain, e)] = _chain("ep", p.key, f"__{e.ip}/{e.port}")
    chains += list(dict.fromkeys(ep_chains_of.values()))
    cmds += [{"add": {"chain": {**T, "name": c}}} for c in chains]
    for name, key in (("service-ips", ["ipv4_addr", "inet_proto", "inet_service"]),
                      ("service-nodeports", ["inet_proto", "inet_service"]),
                      ("no-endpoint-services", ["ipv4_addr", "inet_proto", "inet_service"]),
                      ("no-endpoint-nodeports", ["inet_proto", "inet_service"])):
        cmds.append({"add": {"map": {**T, "name": name, "type": key, "map": "verdict"}}})
    cmds.append({"add": {"set": {**T, "name": "cluster-ips", "type": "ipv4_addr"}}})

    # base chains and the fixed chains
    cmds += [_rule(table, "nat-prerouting", _jump("services")),
             _rule(table, "nat-output", _jump("services")),
             _rule(table, "nat-postrouting", _jump("masquerading"))]
    new = _m({"ct": {"key": "state"}}, "new", "in")
    for c in ("filter-prerouting", "filter-output"):
        cmds += [_rule(table, c, new, _jump("endpoints-check")),
                 _rule(table, c, new, _jump("cluster-ips-check"))]
    mark = _meta("mark")
    cmds += [
        _rule(table, "mark-for-masquerade", {"mangle": {"key": mark, "value": {"|": [mark, MASQUERADE_MARK]}}}),
        _rule(table, "masquerading", _m({"&": [mark, MASQUERADE_MARK]}, 0), {"return": None}),
        _rule(table, "masquerading", {"mangle": {"key": mark, "value": {"^": [mark, MASQUERADE_MARK]}}}),
        _rule(table, "masquerading", {"masquerade": {"flags": "fully-random"}}),
        _rule(table, "services", {"vmap": {"key": _DST_TUPLE, "data": "@service-ips"}}),
        _rule(table, "services", *_LOCAL_DADDR, {"vmap": {"key": _DST_PORT, "data": "@service-nodeports"}}),
        _rule(table, "endpoints-check", {"vmap": {"key": _DST_TUPLE, "data": "@no-endpoint-services"}}),
        _rule(table, "endpoints-check", *_LOCAL_DADDR,
              {"vmap": {"key": _DST_PORT, "data": "@no-endpoint-nodeports"}}),
        # a cluster IP on a port that no Service serves: refused here, never routed on
        _rule(table, "cluster-ips-check", _m(_payload("ip", "daddr"), "@cluster-ips"),
              {"reject": {"type": "icmp", "expr": "port-unreachable"}}),
        _rule(table, "reject-chain", {"reject": {"type": "icmp", "expr": "port-unreachable"}}),
    ]
    local_src = _m(_payload("ip", "saddr"), _cidr(state.pod_cidr)) if state.pod_cidr else None
    for p in state.ports:
        # cluster traffic: from anywhere but this node's pods (the host, a router) is masqueraded
        if local_src is not None:
            cmds.append(_rule(table, p.chain, _m(_payload("ip", "saddr"), _cidr(state.pod_cidr), "!="),
                              _jump("mark-for-masquerade")))
        else:
            cmds.append(_rule(table, p.chain, _jump("mark-for-masquerade")))
        cmds.append(_pick(table, p.chain, [ep_chains_of[(p.chain, e)] for e in p.endpoints]))
        if p.ext_chain:
            if not p.ext_local:
                cmds += [_rule(table, p.ext_chain, _jump("mark-for-masquerade")),
                         _rule(table, p.ext_chain, _goto(p.chain))]
            else:   # Local: the client's address is kept; only this node's endpoints
                if local_src is not None:
                    cmds.append(_rule(table, p.ext_chain, local_src, _goto(p.chain)))
                cmds += [_rule(table, p.ext_chain, _LOCAL_SADDR, _jump("mark-for-masquerade")),
                         _rule(table, p.ext_chain, _LOCAL_SADDR, _goto(p.chain)),
                         _pick(table, p.ext_chain, [ep_chains_of[(p.chain, e)] for e in p.local_endpoints])]
        for e in dict.fromkeys(p.endpoints + p.local_endpoints):
            c = ep_chains_of[(p.chain, e)]
            if state.masquerade_local and e.local and local_src is not None:
                cmds.append(_rule(table, c, local_src, _jump("mark-for-masquerade")))
            else:   # hairpin: a pod reaching itself would see its own address as the source
                cmds.append(_rule(table, c, _m(_payload("ip", "saddr"), e.ip), _jump("mark-for-masquerade")))
            cmds.append(_rule(table, c, _m(_meta("l4proto"), p.proto), {"dnat": {"addr": e.ip, "port": e.port}}))

    def elements(name: str, elem: list) -> None:
        if elem:
            cmds.append({"add": {"element": {**T, "name": name, "elem": elem}}})
    elements("service-ips", [[{"concat": [ip, proto, port]}, _goto(c)] for ip, proto, port, c in state.vips])
    elements("service-nodeports", [[{"concat": [proto, port]}, _goto(c)] for proto, port, c in state.nodeports])
    elements("no-endpoint-services", [[{"concat": [ip, proto, port]}, _goto("reject-chain")]
                                      for ip, proto, port in state.no_endpoints])
    elements("no-endpoint-nodeports", [[{"concat": [proto, port]}, _goto("reject-chain")]
                                       for proto, port in state.no_endpoint_nodeports])
    elements("cluster-ips", list(state.cluster_ips))
    return cmds


# ------------------------------------------------------------------------------ the kernel side

class NftServiceBackend:
    """The agent's service table in the kernel (libnftables). Used by the real runtime only."""

    def __init__(self, table: str, bridge: str = ""):
        from skiff.runtime.network.nft import Nft
        self.table, self.bridge = table, bridge
        self.nft = Nft()

    def apply(self, state: ProxyState) -> None:
        from skiff.runtime.network.nft import NftError, parse_error
        try:
            self.nft.run({"nftables": render(state, self.table)})
        except NftError as e:
            raise NftError(f"nftables: writing table ip {self.table}: {parse_error(e.detail)}", e.detail) from None

    def present(self) -> bool:
        out = self.nft.run("list tables") or {}
        return any(o.get("table", {}).get("family") == "ip" and o["table"].get("name") == self.table
                   for o in out.get("nftables", ()))

    def remove(self) -> bool:
        from skiff.runtime.network.nft import NftError
        try:
            self.nft.run({"nftables": [{"delete": {"table": {"family": "ip", "name": self.table}}}]})
            return True
        except NftError as e:
            if e.not_found:
                return False
            raise

    async def ensure_hairpin(self) -> int:
        """Hairpin mode on every port of the pod bridge (the kubelet's hairpin-veth): with
        br_netfilter, a pod's packet DNATed back to the pod itself is bridged, not routed, and
        the bridge sends nothing out of the port it came in on unless the port says hairpin.
        Returns how many ports were changed."""
        if not self.bridge:
            return 0
        from pyroute2 import AsyncIPRoute
        changed = 0
        async with AsyncIPRoute() as ipr:
            found = await ipr.link_lookup(ifname=self.bridge)
            if not found:
                return 0
            async for m in await ipr.get_links():
                if m.get("IFLA_MASTER") != found[0]:
                    continue
                info = m.get("IFLA_LINKINFO")
                port = info.get("IFLA_INFO_SLAVE_DATA") if info is not None else None
                if port is not None and port.get("IFLA_BRPORT_MODE") == 1:
                    continue
                try:
                    await ipr.link("set", index=m["index"], kind="bridge_slave", mode=1)
                    changed += 1
                except Exception as e:  # noqa: BLE001 - a veth going away with its pod
                    log.debug("hairpin mode on %s: %s", m.get("IFLA_IFNAME"), e)
        return changed

    def bridge_netfilter(self) -> bool:
        """Whether bridged IPv4 traffic goes through netfilter (br_netfilter), in this netns."""
        try:
            with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
                return f.read().strip() == "1"
        except OSError:
            return False

    def close(self) -> None:
        self.nft.close()


# ------------------------------------------------------------------------------ the loop

@dataclass
class _Stats:
    syncs: int = 0           # table writes
    failures: int = 0
    last_error: str = ""


class ServiceProxy:
    """Keeps the backend's table equal to the desired state of the watched Services and
    EndpointSlices. ``backend`` is the runtime's (:meth:`PodRuntime.service_backend`; the fake
    runtime's keeps the state in memory)."""

    def __init__(self, client, node: str, pod_cidr: str, backend, *, min_interval: float = 0.25,
                 resync: float = 30.0, max_backoff: float = 10.0):
        self.client, self.node, self.pod_cidr, self.backend = client, node, pod_cidr, backend
        self.min_interval, self.resync, self.max_backoff = min_interval, resync, max_backoff
        self.services = None
        self.slices = None
        self.applied: ProxyState | None = None
        self.stats = _Stats()
        self.synced = asyncio.Event()      # set after the first successful write
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start watching and syncing; returns at once (the first sync follows the first lists)."""
        from skiff.api.informer import Informer, strip_managed_fields
        self.services = Informer(self.client, "services", transform=strip_managed_fields, name="proxy-services")
        self.slices = Informer(self.client, "endpointslices", transform=strip_managed_fields,
                               name="proxy-endpointslices")
        for inf in (self.services, self.slices):
            inf.add_handler(self._changed)
        self._task = asyncio.create_task(self._run(), name="service-proxy")

    async def stop(self, cleanup: bool = True) -> None:
        """Stop; with ``cleanup`` the table is removed."""
        t, self._task = self._task, None
        await cancel(t)
        await stop_informers(self.services, self.slices)
        drop_state(self.backend, cleanup, "service table", log)

    def _changed(self, *_args) -> None:
        self._wake.set()

    def desired(self) -> ProxyState:
        return desired_state(self.services.list(), self.slices.list(), self.node, self.pod_cidr,
                             masquerade_local=not self.backend.bridge_netfilter())

    async def _run(self) -> None:
        await asyncio.gather(self.services.start(), self.slices.start())
        backoff = self.min_interval
        while True:
            try:
                state = self.desired()
                if state != self.applied or not self.backend.present():
                    self.backend.apply(state)
                    self.applied = state
                    self.stats.syncs += 1
                    log.info("services synced: %s", state.summary(),
                             extra={"fields": {"node": self.node, "ports": len(state.ports)}})
                if any(e.local for p in state.ports for e in p.endpoints + p.local_endpoints):
                    await self.backend.ensure_hairpin()
                self.synced.set()
                backoff = self.min_interval
                delay = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - retry with backoff
                self.applied = None
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.error("service sync failed (retry in %.1f s): %s", backoff, self.stats.last_error)
                delay, backoff = backoff, min(backoff * 2, self.max_backoff)
            if delay is not None:
                await asyncio.sleep(delay)
                continue
            await next_wake(self._wake, self.min_interval, self.resync)     # coalesces a burst of changes
