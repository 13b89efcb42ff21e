"""IP address management: which container holds which address of a network.

Allocations live in the network's own file, ``<root>/networks/<name>.json``, under
``"Allocations": {container_id: "a.b.c.d"}``. Every read-modify-write of that file
happens under ``FileLock(root.lock_path("net-<name>"))`` and is written atomically,
so concurrent ``skiff run`` processes never hand out the same address twice.

Policy: the *lowest free* address is handed out (docker's default IPAM does the
same for a fresh network); the network address, the gateway and the broadcast
address are never handed out. Reusing a just-freed address is harmless as long as
the container's MAC is derived from its IP the way docker does it (``mac_for``):
then a neighbour's ARP cache entry for that address stays right.

Stale allocations (a container that died without a clean stop, or a create that
crashed halfway) are dropped by ``release_stale`` with a caller-supplied
``is_alive(container_id)``. An allocation younger than ``STALE_GRACE`` seconds is
never considered stale: ``allocate`` runs before the container's files exist, so a
concurrent ``is_alive`` would otherwise see a container being created as dead.

IPv4 arithmetic is done here on plain ints: the ``ipaddress`` module pulls in
functools and costs import time on the container start path.
"""

from __future__ import annotations

import time
if False:  # annotations only: typing costs ~8 ms to import on the start path
    from typing import Callable

from ...errors import Conflict, InvalidArgument, NotFound, SkiffError
from ..fsutil import FileLock, read_json, write_json

STALE_GRACE = 60.0  # seconds an allocation is protected from release_stale


# -- IPv4 helpers --------------------------------------------------------------------------

def parse_ip(text: str) -> int:
    """A dotted-quad IPv4 address as an int; InvalidArgument if it is not one."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4:
        raise InvalidArgument(f"invalid IPv4 address: {text!r}")
    n = 0
    for p in parts:
        if not p.isdigit() or not p.isascii() or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            raise InvalidArgument(f"invalid IPv4 address: {text!r}")
        v = int(p)
        if v > 255:
            raise InvalidArgument(f"invalid IPv4 address: {text!r}")
        n = (n << 8) | v
    return n


def format_ip(n: int) -> str:
    return f"{(n >> 24) & 255}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def mask(prefix: int) -> int:
    return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF


def parse_cidr(text: str) -> tuple[int, int]:
    """``"a.b.c.d/len"`` -> (address as int, prefix length). The host bits are kept."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise InvalidArgument(f"invalid CIDR address: {text!r}")
    addr, _, plen = text.partition("/")
    if not plen.isdigit() or not plen.isascii() or int(plen) > 32:
        raise InvalidArgument(f"invalid CIDR address: {text!r}")
    return parse_ip(addr), int(plen)


def parse_subnet(text: str) -> tuple[int, int]:
    """A subnet (host bits all zero) -> (network address, prefix length)."""
    addr, plen = parse_cidr(text)
    if addr & ~mask(plen) & 0xFFFFFFFF:
        raise InvalidArgument(f"invalid subnet {text}: it should be {format_ip(addr & mask(plen))}/{plen}")
    return addr, plen


def overlaps(a: str, b: str) -> bool:
    """Whether two CIDR subnets share any address."""
    na, pa = parse_cidr(a)
    nb, pb = parse_cidr(b)
    p = min(pa, pb)
    return (na & mask(p)) == (nb & mask(p))


def host_range(subnet: str) -> tuple[int, int]:
    """(first, last) address of ``subnet`` that may be given to a host: neither the network
    address nor the broadcast address."""
    net, plen = parse_cidr(subnet)
    net &= mask(plen)
    if plen >= 31:
        raise InvalidArgument(f"subnet {subnet} is too small: it has no host addresses (use /30 or larger)")
    return net + 1, (net | ~mask(plen) & 0xFFFFFFFF) - 1


def mac_for(ip: str) -> str:
    """docker's MAC address for an IPv4 address: 02:42 followed by the address's four bytes."""
    n = parse_ip(ip.split("/", 1)[0])
    return "02:42:" + ":".join(f"{(n >> s) & 255:02x}" for s in (24, 16, 8, 0))


# -- allocation ----------------------------------------------------------------------------

def _path(store, name: str) -> str:
    return store.path_of(name)


def _load(store, name: str) -> dict:
    try:
        return read_json(_path(store, name))
    except FileNotFoundError:
        raise NotFound(f"network {name} not found") from None


def _drop_stale(net: dict, is_alive: Callable[[str], bool], now: float) -> list[str]:
    allocs = net.setdefault("Allocations", {})
    stamps = net.setdefault("AllocatedAt", {})
    gone = [cid for cid in allocs
            if now - float(stamps.get(cid, 0)) >= STALE_GRACE and not is_alive(cid)]
    for cid in gone:
        del allocs[cid]
        stamps.pop(cid, None)
    return gone


def _existing_name(store, network_name: str) -> str:
    """The file name of an existing network given by name, id or id prefix (never creates)."""
    if store.exists(network_name):
        return network_name
    if network_name == "bridge":
        raise NotFound("network bridge not found")
    return store.get(network_name)["Name"]


def _resolve_name(store, network_name: str) -> str:
    """The file name of a network given by name, id or id prefix, making the default one
    if it is the one asked for and does not exist yet."""
    if store.exists(network_name):
        return network_name
    if network_name == "bridge":
        return store.default()["Name"]
    return store.get(network_name)["Name"]


def allocate(store, network_name: str, container_id: str, requested_ip: str | None = None,
             is_alive: Callable[[str], bool] | None = None) -> str:
    """Give ``container_id`` an address of the network; returns it as CIDR ("10.88.0.2/16").

    With ``is_alive``, allocations of containers that are gone are dropped first (under the
    same lock). A container that already holds an address gets the same one back, unless it
    asks for a different ``requested_ip``.
    """
    name = _resolve_name(store, network_name)
    with FileLock(store.lock_of(name)):
        net = _load(store, name)
        now = time.time()
        if is_alive is not None:
            _drop_stale(net, is_alive, now)
        allocs: dict = net.setdefault("Allocations", {})
        stamps: dict = net.setdefault("AllocatedAt", {})
        subnet, plen = net["Subnet"], int(net["Subnet"].split("/")[1])
        first, last = host_range(subnet)
        gateway = parse_ip(net["Gateway"])
        held = allocs.get(container_id)
        if requested_ip:
            want = parse_ip(requested_ip.split("/", 1)[0])
            if not first <= want <= last:
                raise InvalidArgument(f"requested address {format_ip(want)} is not in network "
                                      f"{name}'s subnet {subnet}")
            if want == gateway:
                raise Conflict(f"requested address {format_ip(want)} is the gateway of network {name}")
            ip = format_ip(want)
            for cid, other in allocs.items():
                if other == ip and cid != container_id:
                    raise Conflict(f"Address already in use: {ip} on network {name}")
        elif held is not None:
            return f"{held}/{plen}"
        else:
            taken = {parse_ip(a) for a in allocs.values()}
            taken.add(gateway)
            n = first
            while n <= last and n in taken:
                n += 1
            if n > last:
                raise SkiffError(f"no available IPv4 addresses on network {name}")
            ip = format_ip(n)
        allocs[container_id] = ip
        stamps[container_id] = int(now * 1000) / 1000  # truncated, never later than now
        write_json(_path(store, name), net)
        return f"{ip}/{plen}"


def release(store, network_name: str, container_id: str) -> bool:
    """Give back ``container_id``'s address; True if it held one. NotFound if the network
    does not exist."""
    name = _existing_name(store, network_name)
    with FileLock(store.lock_of(name)):
        net = _load(store, name)
        if container_id not in net.get("Allocations", {}):
            return False
        del net["Allocations"][container_id]
        net.get("AllocatedAt", {}).pop(container_id, None)
        write_json(_path(store, name), net)
        return True


def release_stale(store, network_name: str, is_alive: Callable[[str], bool]) -> list[str]:
    """Drop the allocations of containers for which ``is_alive`` is false (and that are older
    than STALE_GRACE); returns their ids."""
    name = _existing_name(store, network_name)
    with FileLock(store.lock_of(name)):
        net = _load(store, name)
        gone = _drop_stale(net, is_alive, time.time())
        if gone:
            write_json(_path(store, name), net)
        return gone


def address_of(store, network_name: str, container_id: str) -> str | None:
    """The container's address on the network as CIDR, or None (a lock-free read)."""
    try:
        net = read_json(_path(store, network_name))
    except FileNotFoundError:
        return None
    ip = net.get("Allocations", {}).get(container_id)
    return f"{ip}/{net['Subnet'].split('/')[1]}" if ip else None
