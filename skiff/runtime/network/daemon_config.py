"""skiff's daemon config file, the counterpart of docker's ``/etc/docker/daemon.json``.

skiff has no daemon, but the file plays the same role: host-wide settings that every
skiff process reads. It is ``<root>/daemon.json`` if that exists, else
``/etc/skiff/daemon.json``, else nothing (all defaults). The two files are not merged.

Keys (docker's names and meanings)::

    {
      "bip": "10.88.0.1/16",          gateway address/prefix of the default `bridge` network
      "bridge": "skiff0",             the Linux bridge of the default network (docker: docker0)
      "mtu": 1500,                    MTU of the bridges and the containers' eth0
      "dns": ["10.0.0.2"],            nameservers for containers (when --dns is not given)
      "dns-search": ["example.com"],  search domains for containers
      "dns-opts": ["ndots:2"],        resolv.conf options for containers
      "insecure-registries": [...],   registries reached over plain HTTP
      "default-address-pools": [{"base": "10.89.0.0/16", "size": 24}]
                                      where `network create` without --subnet picks subnets
    }

Unknown keys are kept and ignored. A file that is not valid JSON, or a key with a bad
value, is an error naming the file and the key.
"""

from __future__ import annotations

import os

from ...errors import SkiffError
from .. import fastjson

ETC_DAEMON_JSON = "/etc/skiff/daemon.json"

DEFAULT_BIP = "10.88.0.1/16"
"""The default bridge's gateway/prefix when daemon.json has no "bip".

Not docker's 172.17.0.1/16 on purpose: skiff is meant to run next to docker, and
docker0 already owns 172.17.0.0/16 on such hosts (or left its route behind), so two
bridges would claim the same subnet and the host would route replies to the wrong one.
10.88.0.0/16 is podman's default network, the convention of the other daemonless
runtime, and the issue's own example; set "bip" to move it."""

DEFAULT_MTU = 1500
DEFAULT_BRIDGE = "skiff0"

DEFAULT_POOLS = [{"base": f"10.{i}.0.0/16", "size": 24} for i in range(89, 256)]
"""`network create` without --subnet: a /24 from 10.89.0.0/16 upward (10.89.0.0/24,
10.89.1.0/24, ... 10.255.255.0/24), as podman does."""

_LIST_KEYS = ("dns", "dns-search", "dns-opts", "insecure-registries")


def find_daemon_config(root, etc_path: str | None = None) -> str | None:
    """The daemon.json in effect for ``root`` (a Root or a path), or None."""
    root_dir = getattr(root, "path", root)
    for path in (os.path.join(root_dir, "daemon.json"), etc_path or ETC_DAEMON_JSON):
        if os.path.isfile(path):
            return path
    return None


def load_daemon_config(root, etc_path: str | None = None) -> dict:
    """The settings of ``<root>/daemon.json``, else ``/etc/skiff/daemon.json`` (``etc_path``
    for tests), else {} — with defaults filled in for "bip", "bridge", "mtu" and the list keys."""
    path = find_daemon_config(root, etc_path)
    cfg: dict = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise SkiffError(f"cannot read daemon config {path}: {e.strerror or e}") from None
        try:
            cfg = fastjson.loads(data) if data.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise SkiffError(f"daemon config {path} is not valid JSON: {e}") from None
        if not isinstance(cfg, dict):
            raise SkiffError(f"daemon config {path} must be a JSON object")
    return validate(cfg, path or "daemon.json")


def _bad(path: str, key: str, why: str) -> SkiffError:
    return SkiffError(f'daemon config {path}: invalid "{key}": {why}')


def validate(cfg: dict, path: str = "daemon.json") -> dict:
    from .ipam import format_ip, mask, parse_cidr, parse_ip
    out = dict(cfg)
    bip = cfg.get("bip", DEFAULT_BIP)
    if not isinstance(bip, str):
        raise _bad(path, "bip", f"{bip!r} is not a string like {DEFAULT_BIP!r}")
    try:
        addr, plen = parse_cidr(bip)
    except SkiffError:
        raise _bad(path, "bip", f"{bip!r} is not an IPv4 address with a prefix length, "
                                f"like {DEFAULT_BIP!r}") from None
    if plen > 30:
        raise _bad(path, "bip", f"{bip!r}: the prefix must be /30 or shorter to leave room for containers")
    host = addr & ~mask(plen) & 0xFFFFFFFF
    if host == 0 or host == ~mask(plen) & 0xFFFFFFFF:
        raise _bad(path, "bip", f"{bip!r} is the {'network' if host == 0 else 'broadcast'} address: "
                                f"give the gateway's address, like {format_ip((addr & mask(plen)) + 1)}/{plen}")
    out["bip"] = bip

    bridge = cfg.get("bridge", DEFAULT_BRIDGE)
    if (not isinstance(bridge, str) or not 1 <= len(bridge) <= 15 or bridge in (".", "..", "none")
            or any(c in bridge for c in "/: \t\n\0")):
        raise _bad(path, "bridge", f"{bridge!r} is not a link name (1 to 15 characters, no '/', ':' "
                                   f"or spaces; \"none\" is not supported)")
    out["bridge"] = bridge

    mtu = cfg.get("mtu", DEFAULT_MTU)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
        raise _bad(path, "mtu", f"{mtu!r} is not a number between 68 and 65535")
    out["mtu"] = mtu

    for key in _LIST_KEYS:
        value = cfg.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(path, key, "it must be a list of strings")
        out[key] = list(value)
    for server in out["dns"]:
        if not _is_ip(server, parse_ip):
            raise _bad(path, "dns", f"{server!r} is not an IP address")

    if "default-address-pools" in cfg:
        pools = cfg["default-address-pools"]
        if not isinstance(pools, list) or not pools:
            raise _bad(path, "default-address-pools", 'it must be a list like [{"base": "10.89.0.0/16", "size": 24}]')
        for pool in pools:
            try:
                base, bplen = parse_cidr(pool["base"])
                size = pool["size"]
                ok = (not isinstance(size, bool) and isinstance(size, int)
                      and bplen <= size <= 30 and not base & ~mask(bplen) & 0xFFFFFFFF)
            except (SkiffError, TypeError, KeyError):
                ok = False
            if not ok:
                raise _bad(path, "default-address-pools",
                           f"{pool!r}: each pool needs a \"base\" subnet and a \"size\" prefix length "
                           f"between the base's and 30")
    return out


def _is_ip(text: str, parse_ip) -> bool:
    try:
        parse_ip(text)
        return True
    except SkiffError:
        pass
    import _socket
    try:
        _socket.inet_pton(_socket.AF_INET6, text)
        return True
    except OSError:
        return False


def address_pools(cfg: dict) -> list[dict]:
    """Where automatic subnets come from: daemon.json's "default-address-pools" or DEFAULT_POOLS."""
    return cfg.get("default-address-pools") or DEFAULT_POOLS
