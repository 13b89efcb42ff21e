"""skiff controller: the control plane (API server, store, controllers) in one process.

    skiff controller --data-dir DIR [--listen 127.0.0.1:PORT] [--log-format text|json]
                     [--lease-grace SECONDS] [--pod-eviction-timeout SECONDS]
                     [--service-cidr CIDR] [--service-node-port-range MIN-MAX]

Runs the API server and the standard controllers (scheduler, node lifecycle, node IPAM).

Runs until SIGINT or SIGTERM, then stops cleanly (exit status 0).
"""
from __future__ import annotations

from .parser import Command, Opt, UsageError

CONTROLLER_OPTS = [
    Opt(names=("--lease-grace",), dest="lease_grace", kind="str", metavar="SECONDS",
        default="40", help="Seconds without a Lease renewal before a node is NotReady (default 40)"),
    Opt(names=("--cluster-cidr",), dest="cluster_cidr", kind="str", metavar="CIDR",
        default="10.244.0.0/16", help="Range the nodes' pod CIDRs are taken from (default 10.244.0.0/16)"),
    Opt(names=("--node-cidr-mask-size",), dest="node_mask", kind="int", metavar="BITS",
        help="Prefix length of each node's pod CIDR (default 24)"),
    Opt(names=("--advertise-address",), dest="advertise_address", kind="str", metavar="IP",
        help="The address pods reach the API server at (the kubernetes Service's endpoint; default: the "
             "listen address, or the host's first IPv4 address when listening on all)"),
    Opt(names=("--tls-san",), dest="tls_san", kind="list", metavar="NAME",
        help="Another host name or IP for the API server's certificate (repeatable)"),
    Opt(names=("--pod-eviction-timeout",), dest="pod_eviction_timeout", kind="str", metavar="SECONDS",
        default="300", help="Seconds pods tolerate their node being NotReady or unreachable before they "
                            "are evicted (the default tolerationSeconds; default 300)"),
    Opt(names=("--service-cidr",), dest="service_cidr", kind="str", metavar="CIDR",
        default="10.96.0.0/12", help="Range Services' cluster IPs are allocated from (default 10.96.0.0/12; "
                                     "its first address is reserved for the kubernetes service)"),
    Opt(names=("--service-node-port-range",), dest="node_port_range", kind="str", metavar="MIN-MAX",
        default="30000-32767", help="Range of the node ports of NodePort and LoadBalancer Services "
                                    "(default 30000-32767)"),
]


def controlplane_options(values) -> dict:
    """ControlPlane keyword arguments from CONTROLLER_OPTS."""
    raw = values.get("pod_eviction_timeout")
    if raw is None:
        raw = "300"
    try:
        t = float(raw)
        if t < 0 or t != int(t):
            raise ValueError
    except ValueError:
        raise UsageError(f'invalid argument "{raw}" for "--pod-eviction-timeout": must be a whole number '
                         f'of seconds >= 0') from None
    from ..controller.serviceips import (DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR, parse_port_range,
                                         parse_service_cidr)
    cidr = values.get("service_cidr") or DEFAULT_SERVICE_CIDR
    try:
        cidr = str(parse_service_cidr(cidr))
    except ValueError as e:
        raise UsageError(f'invalid argument "{cidr}" for "--service-cidr": {e}') from None
    ports = values.get("node_port_range") or DEFAULT_NODE_PORT_RANGE
    try:
        lo, hi = parse_port_range(ports)
    except ValueError as e:
        raise UsageError(f'invalid argument "{ports}" for "--service-node-port-range": {e}') from None
    adv = values.get("advertise_address")
    if adv:
        import ipaddress
        try:
            ipaddress.ip_address(adv)
        except ValueError:
            raise UsageError(f'invalid argument "{adv}" for "--advertise-address": not an IP address') from None
    return {"pod_eviction_timeout": int(t), "tls_sans": tuple(values.get("tls_san") or ()),
            "advertise_address": adv or None,
            "service_cidr": cidr, "node_port_range": f"{lo}-{hi}"}


def controllers_from(values) -> list:
    """The standard controllers, configured by CONTROLLER_OPTS."""
    import ipaddress
    try:
        lease_grace = float(values["lease_grace"])
    except ValueError:
        raise UsageError(f'invalid argument "{values["lease_grace"]}" for "--lease-grace": not a number') from None
    try:
        net = ipaddress.ip_network(values["cluster_cidr"])
    except ValueError as e:
        raise UsageError(f'invalid argument "{values["cluster_cidr"]}" for "--cluster-cidr": {e}') from None
    mask = values["node_mask"]
    if mask is None:
        mask = max(24, net.prefixlen)
    if not net.prefixlen <= mask <= 30:
        raise UsageError(f"--node-cidr-mask-size {mask} does not fit in --cluster-cidr {net}")
    from ..controller.controllers import standard_controllers
    return standard_controllers(lease_grace=lease_grace, cluster_cidr=str(net), node_mask=mask)


COMMAND = Command(
    "controller", "controller --data-dir DIR [OPTIONS]",
    "Run the skiff control plane (API server, store and controllers)",
    [Opt(names=("--data-dir",), dest="data_dir", kind="str", metavar="DIR",
         help="State directory (state.db, kubeconfig)"),
     Opt(names=("--listen",), dest="listen", kind="str", metavar="ADDR",
         default="127.0.0.1:6443", help="Address to serve the API on (default 127.0.0.1:6443)"),
     Opt(names=("--log-format",), dest="log_format", kind="str", metavar="FORMAT",
         default="text", help="Log format: text or json"),
     *CONTROLLER_OPTS],
    min_args=0, max_args=0)


def setup_logging(fmt: str) -> None:
    try:
        from ..logutil import setup_logging as setup  # the shared logging module, when present
    except ImportError:
        setup = None
    if setup is not None:
        setup(fmt=fmt)
        return
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def serve(data_dir: str, listen: str, log_format: str, controllers=(), **cp_options) -> None:
    import asyncio
    import signal
    import sys

    from .. import gctune
    from ..controller.controlplane import ControlPlane

    gctune.for_daemon()
    cp = ControlPlane(data_dir, listen=listen, log_format=log_format, **cp_options)
    for c in controllers:
        cp.add_controller(c)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await cp.start()
    gctune.started()
    try:
        sys.stderr.write(f"skiff controller: serving on {cp.url}; kubeconfig {cp.kubeconfig_path}\n")
        sys.stderr.flush()
        await stop.wait()
    finally:
        await cp.stop()


def main(ctx, values, args) -> int:
    import asyncio

    if not values.get("data_dir"):
        raise UsageError("flag is required: --data-dir\nSee 'skiff controller --help'.")
    if values["log_format"] not in ("text", "json"):
        raise UsageError(f'invalid argument "{values["log_format"]}" for "--log-format": must be text or json')
    controllers = controllers_from(values)
    cp_options = controlplane_options(values)
    setup_logging(values["log_format"])
    try:
        asyncio.run(serve(values["data_dir"], values["listen"], values["log_format"], controllers, **cp_options))
    except OSError as e:
        from ..errors import SkiffError
        raise SkiffError(f"cannot start the controller: {e}") from None
    return 0
