"""NetworkPolicies on the node: what k3s's built-in network policy controller (kube-router's)
does, inside the agent, in nftables.

The agent watches every NetworkPolicy and, once there is one, every Namespace and every Pod of
the cluster (a policy's peers may run on any node). A pure function (:func:`compile_policies`)
turns them into this node's ruleset, :func:`render` into nftables text, and the whole table is
put in place in one libnftables transaction when that text changed.

The table (family ``ip``, one per agent: ``skiffnp-<pod bridge>``)::

    chain forward   (filter, hook forward, priority filter - 5, policy accept)
        ct state established,related accept            replies of allowed connections
        ip saddr vmap @egress-pods                      a local pod isolated for egress: eg-… chain
        ip daddr vmap @ingress-pods                     a local pod isolated for ingress: in-… chain
    chain in-<pod>  one rule per (policy rule, port) that selects the pod; each allowed match
                    returns; the end drops what came through a Service (DNAT) and rejects the
                    rest (a TCP reset, or ICMP admin-prohibited)
    chain eg-<pod>  the same for what the pod sends
    set  p-…        the peers of one policy rule: the IPs of the pods its selectors match and its
                    ipBlocks less their excepts (an interval set)
    set  n-…        egress to named ports: destination pod IP . protocol . port

The forward hook comes after DNAT (the service proxy's prerouting chains) and before
masquerading, so that a policy sees the real pod address behind a ClusterIP and the client's
own address, as Kubernetes requires. With br_netfilter (bridge-nf-call-iptables=1) traffic
between two pods of one bridge goes through it too. Traffic between a pod and its own node (the
host, the cluster DNS on the bridge's gateway, probes) does not cross the forward hook and is
always allowed, as Kubernetes allows traffic from and to a pod's node.

Left out: IPv6, and policies on hostNetwork pods (which no policy selects, as in Kubernetes).
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass

from skiff.agent.syncloop import cancel, drop_state, next_wake, stop_informers
from skiff.api.validation import label_selector_matches

log = logging.getLogger("skiff.agent.netpol")

TABLE_PREFIX = "skiffnp-"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
PRIORITY = -5           # just before the filter chains (priority filter = 0)
# the end of a pod's chain: a connection DNATed here (through a Service) is dropped, since a reset
# or an ICMP error would carry the pod's address, not the one the client called; others are
# refused at once
DENY = ("ct status dnat drop", "meta l4proto tcp reject with tcp reset", "reject with icmp type admin-prohibited")


def table_name_for(bridge: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in bridge) or "pods"
    return TABLE_PREFIX + safe


# ------------------------------------------------------------------------------ the model

@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str
    node: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, str, int], ...]      # (name, protocol, containerPort) of named ports

    @property
    def label_map(self) -> dict:
        return dict(self.labels)


def pod_info(pod: dict) -> PodInfo | None:
    """What policies need of a pod: None for a pod without an IPv4 address yet, a finished one,
    or one on the host's network."""
    md, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or st.get("phase") in ("Succeeded", "Failed"):
        return None
    ip = None
    for cand in [st.get("podIP")] + [a.get("ip") for a in st.get("podIPs") or [] if isinstance(a, dict)]:
        try:
            ip = str(ipaddress.IPv4Address(cand))
            break
        except (ipaddress.AddressValueError, ValueError, TypeError):
            continue
    if ip is None:
        return None
    ports = []
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for p in (c or {}).get("ports") or []:
            if isinstance(p, dict) and p.get("name") and isinstance(p.get("containerPort"), int):
                ports.append((p["name"], p.get("protocol") or "TCP", p["containerPort"]))
    return PodInfo(md.get("namespace") or "default", md.get("name") or "", ip, spec.get("nodeName") or "",
                   tuple(sorted((md.get("labels") or {}).items())), tuple(ports))


def slim_pod(pod: dict) -> dict:
    """An informer transform: only what :func:`pod_info` reads."""
    md, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return {"metadata": {k: md[k] for k in ("name", "namespace", "labels", "resourceVersion", "uid") if k in md},
            "spec": {"nodeName": spec.get("nodeName"), "hostNetwork": spec.get("hostNetwork"),
                     "containers": [{"ports": c.get("ports")} for c in spec.get("containers") or [] if
                                    isinstance(c, dict) and c.get("ports")],
                     "initContainers": [{"ports": c.get("ports")} for c in spec.get("initContainers") or [] if
                                        isinstance(c, dict) and c.get("ports")]},
            "status": {k: st[k] for k in ("podIP", "podIPs", "phase") if k in st}}


# ------------------------------------------------------------------------------ the compiler

@dataclass(frozen=True)
class Ruleset:
    """What the table holds (pure data; equal rulesets render to equal text)."""
    sets: tuple[tuple[str, str, tuple[str, ...]], ...] = ()      # (name, kind "ip"|"named", elements)
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()          # (name, rules)
    ingress: tuple[tuple[str, str], ...] = ()                     # (pod IP, chain)
    egress: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        return (f"{len(self.ingress)} pods isolated for ingress, {len(self.egress)} for egress, "
                f"{len(self.sets)} peer sets, {sum(len(r) for _, r in self.chains)} rules")


def _h(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _chain_name(kind: str, pod: PodInfo) -> str:
    return f"{kind}-{_h(pod.namespace, pod.name)}-{_UNSAFE.sub('_', pod.namespace)}-{_UNSAFE.sub('_', pod.name)}"[:200]


def _ipblock_nets(block: dict) -> list:
    """An ipBlock as IPv4 networks: its cidr less its excepts (IPv6 blocks: nothing)."""
    try:
        net = ipaddress.ip_network(block.get("cidr") or "", strict=False)
    except ValueError:
        return []
    if net.version != 4:
        return []
    nets = [net]
    for ex in block.get("except") or []:
        try:
            exn = ipaddress.ip_network(ex, strict=False)
        except ValueError:
            continue
        out = []
        for n in nets:
            if exn.version == 4 and exn.subnet_of(n):
                out.extend(n.address_exclude(exn))
            elif exn.version == 4 and n.subnet_of(exn):
                continue
            else:
                out.append(n)
        nets = out
    return nets


class _Index:
    def __init__(self, pods: list[PodInfo], namespaces: dict[str, dict]):
        self.pods = pods
        self.namespaces = namespaces

    def peer_pods(self, peer: dict, policy_ns: str) -> list[PodInfo]:
        ps, nss = peer.get("podSelector"), peer.get("namespaceSelector")
        if ps is None and nss is None:
            return []
        out = []
        for p in self.pods:
            if nss is None:
                if p.namespace != policy_ns:
                    continue
            elif not label_selector_matches(nss, self.namespaces.get(p.namespace)):
                continue
            if ps is not None and not label_selector_matches(ps, p.label_map):
                continue
            out.append(p)
        return out


def _ports(rule_ports: list, pod: PodInfo | None) -> list[str] | None:
    """The nft matches of a rule's ports on target ``pod`` (named ports resolved from its
    containers; None: all ports). A named port the pod does not have matches nothing."""
    if not rule_ports:
        return None
    out = []
    for p in rule_ports:
        proto = (p or {}).get("protocol") or "TCP"
        l4 = PROTOCOLS.get(proto)
        if l4 is None:
            continue
        port, end = p.get("port"), p.get("endPort")
        if port is None:
            out.append(f"meta l4proto {l4}")
        elif isinstance(port, int):
            out.append(f"meta l4proto {l4} th dport {port}" + (f"-{end}" if isinstance(end, int) and end > port
                                                                else ""))
        elif pod is not None:
            for name, pproto, number in pod.ports:
                if name == port and pproto == proto:
                    out.append(f"meta l4proto {l4} th dport {number}")
    return out


def compile_policies(policies: list[dict], pods: list[dict], namespaces: list[dict], node: str) -> Ruleset:
    """This node's ruleset for these NetworkPolicies, Pods and Namespaces (pure)."""
    infos = sorted((i for i in map(pod_info, pods) if i is not None),
                   key=lambda i: (ipaddress.IPv4Address(i.ip), i.namespace, i.name))
    ns_labels = {(n.get("metadata") or {}).get("name"): (n.get("metadata") or {}).get("labels") or {}
                 for n in namespaces}
    index = _Index(infos, ns_labels)
    local = [i for i in infos if i.node == node]

    def _key(p: dict) -> tuple[str, str]:
        md = p.get("metadata") or {}
        return md.get("namespace") or "", md.get("name") or ""
    pols = sorted((p for p in policies if not (p.get("metadata") or {}).get("deletionTimestamp")), key=_key)

    sets: dict[str, tuple[str, tuple[str, ...]]] = {}

    def ip_set(pol_key: str, direction: str, i: int, peers: list, policy_ns: str) -> str:
        name = f"p-{_h(pol_key, direction, str(i))}"
        if name not in sets:
            nets = []
            for peer in peers:
                if not isinstance(peer, dict):
                    continue
                if peer.get("ipBlock") is not None:
                    nets += _ipblock_nets(peer["ipBlock"])
                else:
                    nets += [ipaddress.ip_network(p.ip) for p in index.peer_pods(peer, policy_ns)]
            sets[name] = ("ip", tuple(str(n) if n.prefixlen < 32 else str(n.network_address)
                                      for n in ipaddress.collapse_addresses(nets)))
        return name

    def named_set(pol_key: str, i: int, rule: dict, policy_ns: str) -> str | None:
        """Egress to named ports: (IP, protocol, port) of the peer pods that have them."""
        named = [p for p in rule.get("ports") or [] if isinstance((p or {}).get("port"), str)]
        if not named:
            return None
        name = f"n-{_h(pol_key, 'egress', str(i))}"
        if name in sets:        # the same for every local pod the policy selects
            return name
        peers = rule.get("to")
        cands = infos if not peers else [p for peer in peers if isinstance(peer, dict) and peer.get("ipBlock") is None
                                         for p in index.peer_pods(peer, policy_ns)]
        elems = set()
        for np_ in named:
            proto = np_.get("protocol") or "TCP"
            if proto not in PROTOCOLS:
                continue
            for pod in cands:
                for pname, pproto, number in pod.ports:
                    if pname == np_["port"] and pproto == proto:
                        elems.add((ipaddress.IPv4Address(pod.ip), PROTOCOLS[proto], number))
        sets[name] = ("named", tuple(f"{ip} . {l4} . {port}" for ip, l4, port in sorted(elems)))
        return name

    chains: list[tuple[str, tuple[str, ...]]] = []
    ingress: list[tuple[str, str]] = []
    egress: list[tuple[str, str]] = []
    for pod in local:
        for direction, ptype, peers_key, addr in (("ingress", "Ingress", "from", "saddr"),
                                                   ("egress", "Egress", "to", "daddr")):
            rules: list[str] = []
            selected = False
            for pol in pols:
                md, spec = pol.get("metadata") or {}, pol.get("spec") or {}
                pns = md.get("namespace") or "default"
                types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
                if pns != pod.namespace or ptype not in types:
                    continue
                if not label_selector_matches(spec.get("podSelector") or {}, pod.label_map):
                    continue
                selected = True
                key = f"{pns}/{md.get('name')}"
                for i, rule in enumerate(spec.get(direction) or []):
                    rule = rule or {}
                    peers = rule.get(peers_key) or []
                    peer_match = f"ip {addr} @{ip_set(key, direction, i, peers, pns)} " if peers else ""
                    if direction == "ingress":
                        ports = _ports(rule.get("ports") or [], pod)
                    else:   # named ports of the destination: matched through the n- set
                        numbered = [p for p in rule.get("ports") or [] if not isinstance((p or {}).get("port"), str)]
                        ports = _ports(numbered, None)
                        if rule.get("ports") and ports is None:
                            ports = []
                        nset = named_set(key, i, rule, pns)
                        if nset is not None:
                            rules.append(f"ip daddr . meta l4proto . th dport @{nset} return")
                    if ports is None:
                        rules.append(f"{peer_match}return")
                    else:
                        rules += [f"{peer_match}{m} return" for m in ports]
            if not selected:
                continue
            chain = _chain_name("in" if direction == "ingress" else "eg", pod)
            rules += DENY
            chains.append((chain, tuple(dict.fromkeys(rules))))
            (ingress if direction == "ingress" else egress).append((pod.ip, chain))
    used = {n for _, rules in chains for r in rules for n in re.findall(r"@([pn]-[0-9a-f]+)", r)}
    return Ruleset(sets=tuple((n, k, e) for n, (k, e) in sorted(sets.items()) if n in used),
                   chains=tuple(chains), ingress=tuple(_unique(ingress)), egress=tuple(_unique(egress)))


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for ip, c in pairs:
        if ip not in seen:      # two local pods with one IP (a stale one): the first wins
            seen.add(ip)
            out.append((ip, c))
    return out


def render(rs: Ruleset, table: str) -> str:
    """nftables text making ``table`` hold ``rs``: the table deleted and made anew in one
    transaction. An empty ruleset leaves an empty table (no hook: no cost per packet)."""
    lines = [f"add table ip {table}", f"delete table ip {table}", f"table ip {table} {{"]
    for name, kind, elems in rs.sets:
        typ = "ipv4_addr; flags interval" if kind == "ip" else "ipv4_addr . inet_proto . inet_service"
        body = f"type {typ};" + (f" elements = {{ {', '.join(elems)} }}" if elems else "")
        lines.append(f"  set {name} {{ {body} }}")
    if rs.ingress or rs.egress:
        for name, pairs in (("ingress-pods", rs.ingress), ("egress-pods", rs.egress)):
            elems = ", ".join(f"{ip} : jump {c}" for ip, c in pairs)
            lines.append(f"  map {name} {{ type ipv4_addr : verdict;" + (f" elements = {{ {elems} }}" if elems else "")
                         + " }")
        for name, rules in rs.chains:
            lines.append(f"  chain {name} {{")
            lines += [f"    {r}" for r in rules]
            lines.append("  }")
        lines += ["  chain forward {",
                  f"    type filter hook forward priority {PRIORITY}; policy accept;",
                  "    ct state established,related accept"]
        if rs.egress:
            lines.append("    ip saddr vmap @egress-pods")
        if rs.ingress:
            lines.append("    ip daddr vmap @ingress-pods")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the kernel side

class NftPolicyBackend:
    """The agent's policy table in the kernel (libnftables). Used with the real runtime only."""

    def __init__(self, table: str):
        from skiff.runtime.network.nft import Nft
        self.table = table
        self.nft = Nft()

    def apply(self, text: str) -> None:
        from skiff.runtime.network.nft import NftError, parse_error
        try:
            self.nft.run(text)
        except NftError as e:
            raise NftError(f"nftables: writing table ip {self.table}: {parse_error(e.detail)}", e.detail) from None

    def present(self) -> bool:
        out = self.nft.run("list tables") or ""
        want = f"table ip {self.table}"
        if isinstance(out, dict):
            return any(o.get("table", {}).get("family") == "ip" and o["table"].get("name") == self.table
                       for o in out.get("nftables", ()))
        return any(line.strip() == want for line in str(out).splitlines())

    def remove(self) -> bool:
        from skiff.runtime.network.nft import NftError
        try:
            self.nft.run(f"delete table ip {self.table}")
            return True
        except NftError as e:
            if e.not_found:
                return False
            raise

    def close(self) -> None:
        self.nft.close()


class MemoryPolicyBackend:
    """A hollow node's: the last text it was given, nothing in the kernel."""

    def __init__(self, table: str):
        self.table, self.text = table, None

    def apply(self, text: str) -> None:
        self.text = text

    def present(self) -> bool:
        return self.text is not None

    def remove(self) -> bool:
        had, self.text = self.text is not None, None
        return had


# ------------------------------------------------------------------------------ the loop

@dataclass
class _Stats:
    syncs: int = 0
    failures: int = 0
    last_error: str = ""
    last_sync_seconds: float = 0.0


class NetworkPolicyController:
    """Keeps the backend's table equal to what the watched policies, pods and namespaces say.
    Pods and namespaces are watched only once some NetworkPolicy exists."""

    def __init__(self, client, node: str, backend, *, min_interval: float = 0.2, resync: float = 30.0,
                 max_backoff: float = 10.0):
        self.client, self.node, self.backend = client, node, backend
        self.min_interval, self.resync, self.max_backoff = min_interval, resync, max_backoff
        self.policies = self.pods = self.namespaces = None
        self.applied: str | None = None
        self.ruleset: Ruleset | None = None
        self.stats = _Stats()
        self.synced = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from skiff.api.informer import Informer, strip_managed_fields
        self.policies = Informer(self.client, "networkpolicies", transform=strip_managed_fields,
                                 name="netpol-policies")
        self.policies.add_handler(self._changed)
        self._task = asyncio.create_task(self._run(), name="network-policies")

    async def _watch_peers(self) -> None:
        """Start (or restart, after a failed first list) the pod and namespace informers."""
        from skiff.api.informer import Informer, strip_managed_fields
        if self.pods is None:
            self.pods = Informer(self.client, "pods", transform=slim_pod, name="netpol-pods")
            self.namespaces = Informer(self.client, "namespaces", transform=strip_managed_fields,
                                       name="netpol-namespaces")
            for inf in (self.pods, self.namespaces):
                inf.add_handler(self._changed)
        await asyncio.gather(self.pods.start(), self.namespaces.start())

    def _peers_synced(self) -> bool:
        return self.pods is not None and self.pods.synced.is_set() and self.namespaces.synced.is_set()

    async def stop(self, cleanup: bool = True) -> None:
        t, self._task = self._task, None
        await cancel(t)
        await stop_informers(self.policies, self.pods, self.namespaces)
        drop_state(self.backend, cleanup, "network policy table", log)

    def _changed(self, *_args) -> None:
        self._wake.set()

    def desired(self) -> Ruleset:
        policies = self.policies.list()
        if not policies:
            return Ruleset()
        return compile_policies(policies, self.pods.list(), self.namespaces.list(), self.node)

    async def _run(self) -> None:
        import time
        await self.policies.start()
        backoff = self.min_interval
        while True:
            try:
                if self.policies.list() and not self._peers_synced():
                    # the table is written only from complete lists: until then, what is in
                    # place stays (an agent restarted keeps enforcing its predecessor's table)
                    await self._watch_peers()
                t0 = time.monotonic()
                rs = self.desired()
                text = render(rs, self.backend.table)
                if text != self.applied or not self.backend.present():
                    self.backend.apply(text)
                    self.applied, self.ruleset = text, rs
                    self.stats.syncs += 1
                    self.stats.last_sync_seconds = time.monotonic() - t0
                    log.info("network policies synced: %s", rs.summary(),
                             extra={"fields": {"node": self.node, "chains": len(rs.chains)}})
                self.synced.set()
                backoff = self.min_interval
                delay = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - retry with backoff
                self.applied = None
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.error("network policy sync failed (retry in %.1f s): %s", backoff, self.stats.last_error)
                delay, backoff = backoff, min(backoff * 2, self.max_backoff)
            if delay is not None:
                await asyncio.sleep(delay)
                continue
            await next_wake(self._wake, self.min_interval, self.resync)
