"""Bridges and link reads: the rare network operations, on pyroute2.

A bridge is created once per network and removed with it, so these calls are off the
per-container hot path (that one is rtnl.py, which does not import pyroute2). pyroute2 is
imported inside the functions: `import pyroute2` costs ~150 ms, and modules that merely
import this one (the CLI's network verbs, `ps`) should not pay it.

Everything here is idempotent and race-safe across processes: two `skiff run` creating the
default bridge at once both succeed (EEXIST is success), and the loser sees the winner's
bridge.
"""

from __future__ import annotations

import errno

from .rtnl import ipv4_broadcast, random_mac


def _ipr():
    from pyroute2 import IPRoute
    return IPRoute()


def _code(e: BaseException) -> int | None:
    """The errno of a pyroute2 NetlinkError (or an OSError)."""
    return getattr(e, "code", None) or getattr(e, "errno", None)


def _as_oserror(e: BaseException, what: str) -> OSError:
    code = _code(e) or errno.EIO
    import os
    return OSError(code, f"netlink: {what}: {os.strerror(code)}")


def _lookup(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _kind(msg) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def _v4_cidrs(ipr, index: int) -> list[str]:
    import socket
    out = []
    for msg in ipr.get_addr(index=index, family=socket.AF_INET):
        addr = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
        if addr:
            out.append(f"{addr}/{msg['prefixlen']}")
    return out


def ensure_bridge(name: str, gateway_cidr: str, mtu: int | None = None) -> int:
    """Make sure bridge ``name`` exists, carries ``gateway_cidr`` (e.g. "10.88.0.1/16"), has
    ``mtu`` when one is given, and is up. Returns its ifindex.

    A new bridge gets a fixed random MAC, so its address does not follow the lowest-numbered
    port MAC as containers come and go. Addresses the bridge already had are left alone (a
    changed config is applied by deleting and recreating the bridge). A link of that name
    that is not a bridge is an error (EEXIST)."""
    ip, _, plen = gateway_cidr.partition("/")
    if not plen:
        raise ValueError(f"gateway {gateway_cidr!r} needs a prefix length, e.g. 10.88.0.1/16")
    prefixlen = int(plen)
    with _ipr() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            # No mtu here: an MTU given at creation is not "set by user" for the bridge
            # driver, which then follows its ports' smallest MTU; the set below pins it.
            try:
                ipr.link("add", ifname=name, kind="bridge", address=random_mac())
            except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError
                if _code(e) != errno.EEXIST:
                    raise _as_oserror(e, f"create bridge {name}") from e
            index = _lookup(ipr, name)
            if index is None:  # created and deleted again under our feet
                raise OSError(errno.ENODEV, f"netlink: create bridge {name}: it vanished")
        link = ipr.get_links(index)[0]
        if _kind(link) != "bridge":
            raise OSError(errno.EEXIST, f"netlink: bridge {name}: a link of that name exists "
                                        f"and is a {_kind(link) or 'device'}, not a bridge")
        if mtu and link.get("IFLA_MTU") != mtu:
            try:
                ipr.link("set", index=index, mtu=mtu)
            except Exception as e:  # noqa: BLE001
                raise _as_oserror(e, f"set mtu {mtu} on {name}") from e
        if f"{ip}/{prefixlen}" not in _v4_cidrs(ipr, index):
            try:
                kw = {"index": index, "address": ip, "prefixlen": prefixlen}
                if prefixlen < 31:
                    kw["broadcast"] = _broadcast(ip, prefixlen)
                ipr.addr("add", **kw)
            except Exception as e:  # noqa: BLE001
                if _code(e) != errno.EEXIST:
                    raise _as_oserror(e, f"add address {gateway_cidr} to {name}") from e
        if not link["flags"] & 1:  # IFF_UP
            try:
                ipr.link("set", index=index, state="up")
            except Exception as e:  # noqa: BLE001
                raise _as_oserror(e, f"set up {name}") from e
        return index


def _broadcast(ip: str, prefixlen: int) -> str:
    import _socket
    packed = _socket.inet_pton(_socket.AF_INET, ip)
    return _socket.inet_ntop(_socket.AF_INET, ipv4_broadcast(packed, prefixlen))


def delete_bridge(name: str) -> bool:
    """Delete bridge ``name`` (its ports are released, not deleted). False when it did not
    exist. A link of that name that is not a bridge is left alone (EINVAL)."""
    with _ipr() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            return False
        links = ipr.get_links(index)
        if links and _kind(links[0]) != "bridge":
            raise OSError(errno.EINVAL, f"netlink: delete bridge {name}: it is a "
                                        f"{_kind(links[0]) or 'device'}, not a bridge")
        try:
            ipr.link("del", index=index)
        except Exception as e:  # noqa: BLE001
            if _code(e) == errno.ENODEV:
                return False
            raise _as_oserror(e, f"delete bridge {name}") from e
        return True


def bridge_address(name: str) -> list[str]:
    """The IPv4 CIDRs on ``name`` (e.g. ["10.88.0.1/16"]); [] when the link does not exist."""
    with _ipr() as ipr:
        index = _lookup(ipr, name)
        return [] if index is None else _v4_cidrs(ipr, index)


def link_info(name: str) -> dict | None:
    """What a link is: {'index', 'name', 'kind', 'mtu', 'up', 'master', 'address'}; None when
    there is no such link."""
    with _ipr() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            return None
        try:
            msg = ipr.get_links(index)[0]
        except Exception as e:  # noqa: BLE001
            if _code(e) == errno.ENODEV:
                return None
            raise _as_oserror(e, f"get link {name}") from e
        return {"index": index, "name": msg.get("IFLA_IFNAME"), "kind": _kind(msg),
                "mtu": msg.get("IFLA_MTU"), "up": bool(msg["flags"] & 1),
                "master": msg.get("IFLA_MASTER") or 0, "address": msg.get("IFLA_ADDRESS")}
