"""Network definitions on disk: one file per network, ``<root>/networks/<name>.json``.

A definition (docker's field names where docker has one)::

    {"Name": "front", "Id": "<64 hex>", "Driver": "bridge", "Created": "<RFC 3339>",
     "Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1", "Bridge": "sk-<12 hex>", "MTU": 1500,
     "Labels": {}, "Allocations": {"<container id>": "10.89.0.2"},
     "AllocatedAt": {"<container id>": <unix time>}}

The default network is named ``bridge`` and lives on the Linux bridge ``skiff0`` (or
daemon.json's "bridge"); its definition is made on first use (``default()``) from
daemon.json's "bip", and made again from the current "bip", "bridge" and "mtu" when
they changed and the network is unused.
``host`` and ``none`` are modes, not stored networks (see ``predefined``).

Nothing here touches the kernel: bridges are made by the endpoint code when the first
container joins. Locks: ``networks`` (names and subnets, for create/remove/default) is
always taken before ``net-<name>`` (one network's file, see ipam.py).
"""

from __future__ import annotations

import os
import time
if False:  # annotations only: typing costs ~8 ms to import on the start path
    from typing import Callable

from ...errors import Conflict, InvalidArgument, NotFound, SkiffError
from ..fsutil import FileLock, read_json, write_json
from ..root import Root
from . import ipam
from .daemon_config import DEFAULT_BRIDGE, address_pools, find_daemon_config, load_daemon_config

DEFAULT_NAME = "bridge"
PREDEFINED = {"host": "host", "none": "null"}  # name -> docker's driver name
RESERVED = ("bridge", "host", "none", "default")

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _ALNUM | frozenset("_.-")
MAX_NAME = 200  # the file name, its temp file and ".json" must fit NAME_MAX (255)


def check_name(name: str) -> str:
    """docker's network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*."""
    if not name or name[0] not in _ALNUM or not set(name) <= _REST or len(name) > MAX_NAME:
        raise InvalidArgument(f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                              f'are allowed (at most {MAX_NAME} characters)')
    return name


def bridge_name(name: str, net_id: str, default_bridge: str = DEFAULT_BRIDGE) -> str:
    """The Linux bridge of a network (IFNAMSIZ: at most 15 characters)."""
    return default_bridge if name == DEFAULT_NAME else "sk-" + net_id[:12]


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def host_routes() -> list[tuple[int, int]]:
    """The host's IPv4 routes (network, prefix length) but the default route, from
    /proc/net/route, so that automatic subnets avoid networks the host already reaches."""
    out = []
    try:
        with open("/proc/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest = int.from_bytes(bytes.fromhex(cols[1])[::-1], "big")
            m = int.from_bytes(bytes.fromhex(cols[7])[::-1], "big")
        except ValueError:
            continue
        if m:
            out.append((dest & m, bin(m).count("1")))
    return out


def predefined(name: str) -> dict | None:
    """A read-only definition for the ``host`` and ``none`` modes, for `network ls/inspect`."""
    driver = PREDEFINED.get(name)
    if driver is None:
        return None
    import hashlib
    return {"Name": name, "Id": hashlib.sha256(f"skiff predefined network {name}".encode()).hexdigest(),
            "Driver": driver, "Created": "", "Subnet": "", "Gateway": "", "Bridge": "", "MTU": 0,
            "Labels": {}, "Allocations": {}}


def _bridge_ports(name: str) -> list[str] | None:
    """The links enslaved to bridge ``name``, or None when there is no such bridge (read
    from sysfs: no netlink, no privilege needed)."""
    try:
        return os.listdir(f"/sys/class/net/{name}/brif")
    except (FileNotFoundError, NotADirectoryError):
        return None


DRAIN_SECONDS = 5.0  # how long an exited container's veth may take to leave its bridge


def _ports_after_drain(name: str) -> list[str] | None:
    """The bridge's ports once those that are going away have gone. An exited container's
    veth leaves with its network namespace, which the kernel dismantles in the background
    (endpoint.detach), so a veth of a container that has just exited may still be attached
    for a moment; the callers have already checked that no container of theirs is on the
    network. Waits up to DRAIN_SECONDS while any port remains."""
    ports = _bridge_ports(name)
    deadline = time.monotonic() + DRAIN_SECONDS
    while ports and time.monotonic() < deadline:
        time.sleep(0.02)
        ports = _bridge_ports(name)
    return ports


def _refuse_attached(net: dict, ports: list[str]) -> None:
    if ports:
        raise Conflict(f"bridge {net.get('Bridge')} of network {net['Name']} still has interfaces "
                       f"attached ({', '.join(sorted(ports))}): containers of another skiff root?")


def delete_bridge_of(net: dict) -> bool:
    """Delete a network's Linux bridge if the bridge module is there; False if there was no
    such bridge (or no module yet). Conflict if links are still attached to it once exited
    containers' veths have gone: bridge names are host-wide, so they belong to another skiff
    root's containers, or to someone else."""
    name = net.get("Bridge")
    if not name:
        return False
    ports = _ports_after_drain(name)
    if ports is None:
        return False
    _refuse_attached(net, ports)
    try:
        from .bridge import delete_bridge
        return bool(delete_bridge(name))
    except ImportError:
        return False


def teardown_network(root: Root, net: dict) -> None:
    """Undo what the first container on ``net`` made on the host: its masquerade/forward
    rules (owner ``net:<id12>`` in skiff's nftables table) and its bridge. For ``remove`` and
    ``default`` (``teardown=store.teardown``). Raises, leaving the definition in place, if
    the bridge cannot be deleted."""
    ports = _ports_after_drain(net.get("Bridge") or "")
    _refuse_attached(net, ports or [])  # before any rule is touched
    try:
        from .endpoint import nft_table
        table = nft_table(root.path)
        table.remove(f"net:{net['Id'][:12]}")
        if table.exists() and not table.rules():  # the last network gone: leave no table behind
            table.delete_table()
    except ImportError:
        pass
    except Exception:  # noqa: BLE001
        if ports is not None:
            raise  # the bridge exists, so its rules may too: do not go on half done
        # No bridge: the network was never used on this boot (or by this user), and an
        # unprivileged `network rm` must not fail on nftables it cannot read.
    delete_bridge_of(net)


def container_exists(root: Root) -> Callable[[str], bool]:
    """An ``is_alive`` for IPAM: the container still has its directory under the root."""
    return lambda cid: os.path.isfile(os.path.join(root.containers, cid, "config.json"))


class NetworkStore:
    def __init__(self, root: Root, etc_config: str | None = None):
        """``etc_config`` replaces /etc/skiff/daemon.json (for tests)."""
        self.root = root
        self.etc_config = etc_config
        self.host_routes: Callable[[], list[tuple[int, int]]] = host_routes
        for d in (root.networks, root.locks):
            os.makedirs(d, mode=0o711, exist_ok=True)

    # -- paths and files ---------------------------------------------------------------------
    def path_of(self, name: str) -> str:
        if not name or "/" in name or name[0] == "." or "\0" in name:
            raise NotFound(f"network {name} not found")
        return os.path.join(self.root.networks, name + ".json")

    def lock_of(self, name: str) -> str:
        return self.root.lock_path(f"net-{name}")

    def _global_lock(self) -> FileLock:
        return FileLock(self.root.lock_path("networks"))

    def exists(self, name: str) -> bool:
        try:
            return os.path.isfile(self.path_of(name))
        except NotFound:
            return False

    def _read(self, name: str) -> dict | None:
        try:
            return read_json(self.path_of(name))
        except (FileNotFoundError, NotFound):
            return None

    def _stored(self) -> list[dict]:
        nets = []
        try:
            names = os.listdir(self.root.networks)
        except FileNotFoundError:
            return nets
        for f in sorted(names):
            if f.endswith(".json") and not f.startswith("."):
                net = self._read(f[:-5])
                if net is not None:
                    nets.append(net)
        return nets

    def teardown(self, net: dict) -> None:
        """``teardown_network`` for this root: pass as ``teardown=`` to remove/default."""
        teardown_network(self.root, net)

    def config(self) -> dict:
        return load_daemon_config(self.root, self.etc_config)

    def config_path(self) -> str:
        return find_daemon_config(self.root, self.etc_config) or "daemon.json (defaults)"

    # -- lookup ------------------------------------------------------------------------------
    def get(self, name_or_id: str) -> dict:
        """A network by name, full id or unique id prefix; ``bridge`` is made on first use."""
        ref = name_or_id
        if ref == DEFAULT_NAME:
            return self.default()
        net = self._read(ref)
        if net is not None:
            return net
        if ref:
            nets = self._stored()
            for net in nets:
                if net.get("Id") == ref:
                    return net
            found = [n for n in nets if n.get("Id", "").startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(found)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def list(self) -> list[dict]:
        """The stored networks, by name (the default one only once it has been made)."""
        return sorted(self._stored(), key=lambda n: n["Name"])

    # -- create ------------------------------------------------------------------------------
    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               labels: dict | None = None, mtu: int | None = None,
               bridge: str | None = None) -> dict:
        """A new bridge network, like `docker network create [--subnet] [--gateway] NAME`
        (``bridge``: the Linux bridge's name, like docker's com.docker.network.bridge.name)."""
        check_name(name)
        if bridge is not None and (not bridge or len(bridge) > 15 or "/" in bridge
                                   or not bridge.isprintable() or " " in bridge):
            raise InvalidArgument(f'invalid bridge name "{bridge}": 1 to 15 characters, no "/" or spaces')
        if name == "default":
            raise Conflict(f"{name} is a pre-defined network and cannot be created")
        if name in RESERVED:
            raise Conflict(f"network with name {name} already exists")
        if gateway and not subnet:
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        if subnet:
            net_addr, plen = ipam.parse_subnet(subnet)
            subnet = f"{ipam.format_ip(net_addr)}/{plen}"
            first, last = ipam.host_range(subnet)
            if gateway:
                gw = ipam.parse_ip(gateway.split("/", 1)[0])
                if not first <= gw <= last:
                    raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
                gateway = ipam.format_ip(gw)
        labels = dict(labels or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise InvalidArgument("labels must map strings to strings")
        cfg = self.config()
        if mtu is None:
            mtu = cfg["mtu"]
        elif isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise InvalidArgument(f"invalid MTU {mtu!r}: it must be between 68 and 65535")
        with self._global_lock():
            if self.exists(name):
                raise Conflict(f"network with name {name} already exists")
            if bridge and any(n.get("Bridge") == bridge for n in self._stored()):
                raise Conflict(f"bridge {bridge} is already used by another network")
            taken = self._taken_subnets(cfg)
            if subnet:
                for other, other_subnet in taken:
                    if ipam.overlaps(subnet, other_subnet):
                        raise Conflict(f"invalid pool request: subnet {subnet} overlaps with network "
                                       f"{other} ({other_subnet})")
            else:
                subnet = self._pick_subnet(cfg, [s for _, s in taken])
            if not gateway:
                gateway = ipam.format_ip(ipam.host_range(subnet)[0])
            net_id = os.urandom(32).hex()
            net = {"Name": name, "Id": net_id, "Driver": "bridge", "Created": now_rfc3339(),
                   "Subnet": subnet, "Gateway": gateway, "Bridge": bridge or bridge_name(name, net_id),
                   "MTU": mtu, "Labels": labels, "Allocations": {}, "AllocatedAt": {}}
            write_json(self.path_of(name), net)
        return net

    def _taken_subnets(self, cfg: dict) -> list[tuple[str, str]]:
        """(network name, subnet) of every stored network, plus the default network's subnet
        from daemon.json (whether or not it has been made yet)."""
        taken = [(n["Name"], n["Subnet"]) for n in self._stored() if n.get("Subnet")]
        taken.append((DEFAULT_NAME, _subnet_of(cfg["bip"])))
        return taken

    def _pick_subnet(self, cfg: dict, taken: list[str]) -> str:
        avoid = [ipam.parse_cidr(s) for s in taken] + list(self.host_routes())
        for pool in address_pools(cfg):
            base, bplen = ipam.parse_cidr(pool["base"])
            size = int(pool["size"])
            step = 1 << (32 - size)
            for cand in range(base, base + (1 << (32 - bplen)), step):
                if not any(_overlap(cand, size, a, p) for a, p in avoid):
                    return f"{ipam.format_ip(cand)}/{size}"
        raise SkiffError("could not find an available, non-overlapping IPv4 address pool among the "
                         "defaults to assign to the network")

    # -- the default network -----------------------------------------------------------------
    def default(self, is_alive: Callable[[str], bool] | None = None,
                teardown: Callable[[dict], object] | None = None) -> dict:
        """The ``bridge`` network, made from daemon.json's "bip", "bridge" and "mtu" on first use, and
        made again when they changed and no container uses it (``is_alive`` drops stale
        allocations first; ``teardown(old)`` runs before an old definition is replaced, for
        example ``self.teardown`` so that the bridge is remade with the new address)."""
        cfg = self.config()
        want_subnet, want_gw = _subnet_of(cfg["bip"]), cfg["bip"].split("/", 1)[0]
        want = (want_subnet, want_gw, cfg["bridge"], cfg["mtu"])
        net = self._read(DEFAULT_NAME)
        if net is not None and (_matches(net, *want)
                                or (net.get("Allocations") and is_alive is None)):
            return net  # a fast path with no lock: up to date, or in use and kept as it is
        with self._global_lock(), FileLock(self.lock_of(DEFAULT_NAME)):
            net = self._read(DEFAULT_NAME)
            if net is not None:
                if _matches(net, *want):
                    return net
                if is_alive is not None and ipam._drop_stale(net, is_alive, time.time()):
                    write_json(self.path_of(DEFAULT_NAME), net)
                if net.get("Allocations"):
                    return net  # in use: the new address applies once it is unused
            for other, other_subnet in self._taken_subnets(cfg)[:-1]:
                if other != DEFAULT_NAME and ipam.overlaps(want_subnet, other_subnet):
                    raise Conflict(f'daemon config {self.config_path()}: "bip" {cfg["bip"]} overlaps '
                                   f'network {other} ({other_subnet}): change "bip" or remove network {other}')
            if net is not None and teardown is not None:
                teardown(net)
            net_id = os.urandom(32).hex()
            net = {"Name": DEFAULT_NAME, "Id": net_id, "Driver": "bridge", "Created": now_rfc3339(),
                   "Subnet": want_subnet, "Gateway": want_gw, "Bridge": cfg["bridge"],
                   "MTU": cfg["mtu"], "Labels": {}, "Allocations": {}, "AllocatedAt": {}}
            write_json(self.path_of(DEFAULT_NAME), net)
            return net

    # -- remove ------------------------------------------------------------------------------
    def remove(self, name_or_id: str, is_alive: Callable[[str], bool] | None = None,
               teardown: Callable[[dict], object] | None = None) -> dict:
        """Delete a network's definition; refused while containers hold addresses on it
        (``is_alive`` drops stale allocations first). ``teardown(net)`` runs under the lock
        before the file goes, for example ``self.teardown``. ``bridge`` may be removed
        when unused: its next use makes it again from daemon.json."""
        if name_or_id in PREDEFINED or name_or_id == "default":
            raise Conflict(f"{name_or_id} is a pre-defined network and cannot be removed")
        if name_or_id == DEFAULT_NAME:
            if not self.exists(DEFAULT_NAME):
                raise NotFound(f"network {DEFAULT_NAME} not found")
            name = DEFAULT_NAME
        else:
            name = self.get(name_or_id)["Name"]
        with self._global_lock(), FileLock(self.lock_of(name)):
            net = self._read(name)
            if net is None:
                raise NotFound(f"network {name_or_id} not found")
            if is_alive is not None and ipam._drop_stale(net, is_alive, time.time()):
                write_json(self.path_of(name), net)
            if net.get("Allocations"):
                raise Conflict(f"error while removing network: network {name} id {net['Id']} "
                               f"has active endpoints")
            if teardown is not None:
                teardown(net)
            os.unlink(self.path_of(name))
        return net


def _subnet_of(cidr: str) -> str:
    addr, plen = ipam.parse_cidr(cidr)
    return f"{ipam.format_ip(addr & ipam.mask(plen))}/{plen}"


def _overlap(a: int, pa: int, b: int, pb: int) -> bool:
    p = min(pa, pb)
    m = ipam.mask(p)
    return (a & m) == (b & m)


def _matches(net: dict, subnet: str, gateway: str, bridge: str, mtu: int) -> bool:
    return (net.get("Subnet") == subnet and net.get("Gateway") == gateway
            and net.get("Bridge") == bridge and net.get("MTU") == mtu)
