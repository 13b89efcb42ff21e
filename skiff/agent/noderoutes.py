"""Routes to the other nodes' pods (flannel's "host-gw" backend, in the agent).

Every Node has a podCIDR (given by the controller's node IPAM) and an InternalIP. The agent
watches the Nodes and keeps, for every other node whose InternalIP is on a subnet this host
is directly attached to, ``podCIDR via InternalIP`` in the main routing table; a node that
is deleted, or changes address, has its route removed or replaced. Nodes on other subnets are
left out (host-gw needs one L2 segment; say so in the log).

Ownership: the routes carry their own protocol number, ``proto 149`` (``ip route`` shows it),
and the agent records which ones it made in ``<root>/agent/node-routes.json``, so that it
removes only its own (two agents of one host, tests, never remove each other's) and finds
them again after a crash. A route for the same destination that someone else made is never
replaced. The agent removes its routes when it stops.

The pod network's own rules are told the routed podCIDRs and their nodes' addresses (the
runtime's ``set_pod_peers``): traffic from this node's pods to those pods is not masqueraded,
and new connections from those pods and nodes to this node's pods are let in (a node port's
traffic reaches a pod of another node masqueraded to its node's address).
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import os

from skiff.agent.syncloop import cancel, next_wake, stop_informers

log = logging.getLogger("skiff.agent.noderoutes")

RTPROT_SKIFF = 149          # an unassigned protocol number (see /etc/iproute2/rt_protos)
RT_TABLE_MAIN = 254
RTN_UNICAST = 1


def _v4_cidr(text) -> str | None:
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
        return None


def node_pod_cidr(node: dict) -> str | None:
    spec = node.get("spec") or {}
    for c in [spec.get("podCIDR")] + list(spec.get("podCIDRs") or []):
        cidr = _v4_cidr(c) if c else None
        if cidr:
            return cidr
    return None


def node_internal_ip(node: dict) -> str | None:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            try:
                return str(ipaddress.IPv4Address(a.get("address")))
            except (ipaddress.AddressValueError, ValueError, TypeError):
                continue
    return None


def desired_routes(nodes: list[dict], self_name: str, own_cidr: str = "") -> dict[str, str]:
    """{podCIDR: InternalIP} of every other node that has both (pure). A podCIDR overlapping
    this node's own, or claimed by two nodes, is left out."""
    own = ipaddress.IPv4Network(own_cidr, strict=False) if own_cidr else None
    out: dict[str, str] = {}
    dup: set[str] = set()
    for n in sorted(nodes, key=lambda n: (n.get("metadata") or {}).get("name") or ""):
        if (n.get("metadata") or {}).get("name") == self_name:
            continue
        cidr, ip = node_pod_cidr(n), node_internal_ip(n)
        if not cidr or not ip:
            continue
        if own is not None and ipaddress.IPv4Network(cidr).overlaps(own):
            continue
        if cidr in out:
            dup.add(cidr)
        out[cidr] = ip
    for c in dup:
        del out[c]
    return out


def slim_node(node: dict) -> dict:
    """What the routes need of a Node (an informer transform: the cache stays small)."""
    md = node.get("metadata") or {}
    return {"metadata": {k: md[k] for k in ("name", "uid", "resourceVersion") if k in md},
            "spec": {k: v for k, v in (node.get("spec") or {}).items() if k in ("podCIDR", "podCIDRs")},
            "status": {"addresses": (node.get("status") or {}).get("addresses") or []}}


# ------------------------------------------------------------------------------ the kernel side

class KernelRoutes:
    """Routes in the main table through rtnetlink (pyroute2's asyncio API: the agent's event
    loop is running, so the blocking IPRoute cannot be used), plus the pod network's peers."""

    def __init__(self, runtime, state_path: str):
        self.runtime = runtime
        self.state_path = state_path
        self._warned: set[tuple[str, str]] = set()

    # -- the record of our routes --
    def _load(self) -> dict[str, str]:
        try:
            with open(self.state_path) as f:
                data = json.load(f)
            return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self, owned: dict[str, str]) -> None:
        from skiff.runtime.fsutil import atomic_write
        os.makedirs(os.path.dirname(self.state_path), mode=0o700, exist_ok=True)
        atomic_write(self.state_path, json.dumps(owned, sort_keys=True) + "\n", mode=0o600)

    def _warn(self, cidr: str, why: str) -> None:
        if (cidr, why) not in self._warned:
            self._warned.add((cidr, why))
            log.warning("no route to the pods of %s: %s", cidr, why)

    # -- sync --
    async def sync(self, want: dict[str, str]) -> dict[str, str]:
        """Make our routes ``want`` ({podCIDR: gateway}) as far as the host allows; returns the
        routes in place. Routes we made that are no longer wanted are deleted."""
        import socket

        from pyroute2 import AsyncIPRoute
        owned = self._load()
        placed: dict[str, str] = {}
        async with AsyncIPRoute() as ipr:
            current: dict[str, tuple[int, str | None]] = {}
            async for m in await ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
                if m.get("RTA_DST") is None:
                    continue
                current[f"{m.get('RTA_DST')}/{m['dst_len']}"] = (m["proto"], m.get("RTA_GATEWAY"))
            for cidr, gw in sorted(want.items()):
                have = current.get(cidr)
                if have is not None and not (have[0] == RTPROT_SKIFF and cidr in owned):
                    self._warn(cidr, f"a route to it that skiff did not make is there (proto {have[0]})")
                    continue
                why = await self._not_direct(ipr, gw)
                if why:
                    self._warn(cidr, f"its node's address {gw} {why} (host-gw needs the nodes on one subnet)")
                    continue
                if have is not None and have[1] == gw and owned.get(cidr) == gw:
                    placed[cidr] = gw
                    continue
                owned[cidr] = gw
                self._save(owned)            # first the record, then the kernel: a crash leaks nothing
                try:
                    await ipr.route("replace", dst=cidr, gateway=gw, proto=RTPROT_SKIFF, table=RT_TABLE_MAIN)
                except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError
                    self._warn(cidr, f"route via {gw}: {e}")
                    continue
                log.info("route to the pods of %s via %s", cidr, gw)
                placed[cidr] = gw
                self._warned = {w for w in self._warned if w[0] != cidr}
            for cidr in sorted(set(owned) - set(placed)):
                have = current.get(cidr)
                if have is not None and have[0] == RTPROT_SKIFF:
                    try:
                        await ipr.route("del", dst=cidr, proto=RTPROT_SKIFF, table=RT_TABLE_MAIN,
                                        **({"gateway": have[1]} if have[1] else {}))
                        log.info("route to %s removed", cidr)
                    except Exception as e:  # noqa: BLE001
                        if getattr(e, "code", None) != errno.ESRCH:
                            log.warning("cannot remove the route to %s: %s", cidr, e)
                            continue
                del owned[cidr]
        if owned != self._load():
            self._save(owned)
        return placed

    async def _not_direct(self, ipr, gw: str) -> str:
        """Why ``gw`` is not a neighbour on a directly attached subnet ("" when it is)."""
        try:
            r = (await ipr.route("get", dst=gw))[0]
        except Exception as e:  # noqa: BLE001
            return f"is unreachable ({e})"
        if r["type"] != RTN_UNICAST:
            return "is an address of this host"
        if r.get("RTA_GATEWAY"):
            return f"is reached through the router {r.get('RTA_GATEWAY')}"
        return ""

    async def remove_all(self) -> None:
        await self.sync({})

    def set_pod_peers(self, cidrs: list[str], hosts: list[str] = ()) -> None:
        self.runtime.set_pod_peers(cidrs, hosts)


# ------------------------------------------------------------------------------ the loop

class NodeRoutes:
    """Watches the Nodes and keeps the backend's routes (and pod network peers) in step."""

    def __init__(self, client, node: str, pod_cidr: str, backend, *, min_interval: float = 0.25,
                 resync: float = 30.0, max_backoff: float = 10.0):
        self.client, self.node, self.pod_cidr, self.backend = client, node, pod_cidr, backend
        self.min_interval, self.resync, self.max_backoff = min_interval, resync, max_backoff
        self.nodes = None
        self.routes: dict[str, str] = {}       # in place
        self.synced = asyncio.Event()
        self.failures = 0
        self._wanted: dict[str, str] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from skiff.api.informer import Informer
        self.nodes = Informer(self.client, "nodes", transform=slim_node, name="routes-nodes")
        self.nodes.add_handler(self._changed)
        self._task = asyncio.create_task(self._run(), name="node-routes")

    def _changed(self, etype: str, obj: dict, old: dict | None = None) -> None:
        if etype == "MODIFIED" and old is not None and \
                (node_pod_cidr(obj), node_internal_ip(obj)) == (node_pod_cidr(old), node_internal_ip(old)):
            return
        self._wake.set()

    def desired(self) -> dict[str, str]:
        return desired_routes(self.nodes.list(), self.node, self.pod_cidr)

    async def _run(self) -> None:
        await self.nodes.start()
        backoff = self.min_interval
        while True:
            delay = None
            try:
                want = self.desired()
                placed = await self.backend.sync(want)
                self.backend.set_pod_peers(sorted(placed), sorted(set(placed.values())))
                self.routes = placed
                self.synced.set()
                backoff = self.min_interval
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self.failures += 1
                log.error("node routes sync failed (retry in %.1f s): %s: %s", backoff, type(e).__name__, e)
                delay, backoff = backoff, min(backoff * 2, self.max_backoff)
            if delay is not None:
                await asyncio.sleep(delay)
                continue
            await next_wake(self._wake, self.min_interval, self.resync)

    async def stop(self, cleanup: bool = True) -> None:
        t, self._task = self._task, None
        await cancel(t)
        await stop_informers(self.nodes)
        if cleanup:
            try:
                await self.backend.remove_all()
                self.backend.set_pod_peers([])
            except Exception as e:  # noqa: BLE001
                log.warning("cannot remove the node routes: %s", e)
