"""A container's place on a bridge network: the host side of its network sandbox.

Runs in the monitor, after the container's init has unshared its network
namespace and before it runs the command:

  bridge (made on first use, with its gateway address, route_localnet and the
  network's masquerade rule) -> veth pair, the peer born inside the container's
  namespace as eth0, the host end on the bridge -> eth0's address, MTU and
  default route -> published ports (DNAT rules in skiff's own nftables table).

The per-container steps use skiff's small rtnetlink client (rtnl.py), not pyroute2,
whose import alone costs ~150 ms; pyroute2 (bridge.py) is only loaded to make a bridge.
"""

from __future__ import annotations

import os


def host_veth_name(cid: str) -> str:
    return "veth" + cid[:11]  # IFNAMSIZ: 15 characters at most


def nft_table(root_path: str):
    from .nft import SkiffTable, Nft
    return SkiffTable(Nft(), lock_path=os.path.join(root_path, "locks", "nft.lock"))


def ensure_network(nl, spec, root_path: str) -> int:
    """The bridge's index, making the bridge (and its host-side rules) if it is missing."""
    index = nl.link_index(spec.bridge)
    if index:
        return index
    from .bridge import ensure_bridge
    from .rtnl import sysctl_set
    index = ensure_bridge(spec.bridge, spec.gateway_cidr, spec.mtu or None)
    sysctl_set(f"/proc/sys/net/ipv4/conf/{spec.bridge}/route_localnet", "1")
    sysctl_set("/proc/sys/net/ipv4/ip_forward", "1")
    table = nft_table(root_path)
    table.masquerade_subnet(f"net:{spec.network_id[:12]}", spec.subnet, spec.bridge)
    table.isolate(f"net:{spec.network_id[:12]}", spec.subnet, spec.bridge)
    table.accept_forward(f"net:{spec.network_id[:12]}", spec.bridge)
    return index


def attach(spec, netns_fd: int, root_path: str, bindings: list[dict]) -> str:
    """Wire the container (whose network namespace is ``netns_fd``) to its network."""
    from .rtnl import Netlink
    host = host_veth_name(spec.id)
    nl = Netlink()
    try:
        bridge_index = ensure_network(nl, spec, root_path)
        from .ipam import mac_for
        nl.create_veth(host, "eth0", peer_netns_fd=netns_fd, mtu=spec.mtu or None,
                       master_index=bridge_index, up=True, peer_mac=mac_for(spec.ip.split("/")[0]))
    finally:
        nl.close()
    inside = Netlink(netns_fd)
    try:
        inside.add_address("eth0", spec.ip)
        inside.set_up("eth0")
        inside.add_default_route(spec.gateway, "eth0")
    finally:
        inside.close()
    if bindings:  # all of a container's ports in one nftables transaction
        nft_table(root_path).publish_many(spec.id, bindings, spec.ip.split("/")[0], spec.bridge)
    return host


def detach(cid: str, root_path: str, had_ports: bool) -> None:
    """Undo attach: the port rules. The veth pair is not deleted here: it goes with the
    container's network namespace, which the kernel dismantles in the background once the
    last process in it is gone. Deleting it by hand waits for RCU grace periods in
    unregister_netdevice: ~40 ms measured, on every container exit."""
    if had_ports:
        nft_table(root_path).remove(cid)
