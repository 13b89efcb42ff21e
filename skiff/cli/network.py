"""skiff network: create, list, inspect and remove networks, as docker does.

Only definitions are written here; no kernel object is made. A network's bridge is
made when its first container starts, and deleted by `network rm` (through the bridge
module, once it exists).
"""

from __future__ import annotations

import sys

from ..errors import InvalidArgument, SkiffError
from .parser import Command, HelpRequested, Opt, parse

_HELP = """Manage networks

Commands:
  create      Create a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  rm          Remove one or more networks

Run 'skiff network COMMAND --help' for more information on a command."""

COMMAND = Command("network", "network COMMAND", _HELP, [], interspersed=False)

CREATE = Command("network create", "network create [OPTIONS] NETWORK", "Create a network", [
    Opt(("-d", "--driver"), "driver", "str", "Driver to manage the Network (only bridge)", "string", "bridge"),
    Opt(("--subnet",), "subnet", "str", "Subnet in CIDR format that represents a network segment", "string"),
    Opt(("--gateway",), "gateway", "str", "IPv4 Gateway for the master subnet", "string"),
    Opt(("--label",), "labels", "list", "Set metadata on a network", "list"),
    Opt(("-o", "--opt"), "opts", "list", "Set driver specific options (com.docker.network.driver.mtu)", "map"),
], min_args=1, max_args=1)

LS = Command("network ls", "network ls [OPTIONS]", "List networks", [
    Opt(("-q", "--quiet"), "quiet", help="Only display network IDs"),
    Opt(("--no-trunc",), "no_trunc", help="Do not truncate the output"),
    Opt(("-f", "--filter"), "filters", "list", "Provide filter values (name=, id=, driver=, label=)", "filter"),
], max_args=0)

INSPECT = Command("network inspect", "network inspect [OPTIONS] NETWORK [NETWORK...]",
                  "Display detailed information on one or more networks", [
    Opt(("-f", "--format"), "format", "str", "Format output using a Go template", "string"),
], min_args=1)

RM = Command("network rm", "network rm NETWORK [NETWORK...]", "Remove one or more networks", [],
             min_args=1)

SUBCOMMANDS = {"create": "create", "ls": "ls", "list": "ls", "inspect": "inspect", "rm": "rm",
               "remove": "rm"}


def main(ctx, values, args) -> int:
    if not args:
        sys.stdout.write(COMMAND.format_help())
        return 0
    verb = SUBCOMMANDS.get(args[0])
    if verb is None:
        raise InvalidArgument(f"unknown command \"{args[0]}\" for \"skiff network\"\n"
                              f"See 'skiff network --help'.")
    sub, run = {"create": (CREATE, create), "ls": (LS, ls), "inspect": (INSPECT, inspect),
                "rm": (RM, rm)}[verb]
    try:
        opts, rest = parse(sub, args[1:])
    except HelpRequested:
        sys.stdout.write(sub.format_help())
        return 0
    from ..runtime.network.store import NetworkStore
    store = NetworkStore(ctx.root)
    return run(ctx, store, opts, rest)


# -- create --------------------------------------------------------------------------------

def create(ctx, store, opts, args) -> int:
    if opts["driver"] != "bridge":
        raise InvalidArgument(f'plugin "{opts["driver"]}" not found: skiff has only the bridge driver')
    mtu = None
    for item in opts["opts"]:
        key, eq, value = item.partition("=")
        if key == "com.docker.network.driver.mtu" and eq:
            try:
                mtu = int(value)
            except ValueError:
                raise InvalidArgument(f"invalid MTU {value!r}: not a number") from None
        else:
            raise InvalidArgument(f"unsupported network option {item!r} "
                                  f"(skiff knows com.docker.network.driver.mtu=N)")
    labels = {}
    for item in opts["labels"]:
        key, _, value = item.partition("=")
        labels[key] = value
    net = store.create(args[0], subnet=opts["subnet"], gateway=opts["gateway"], labels=labels, mtu=mtu)
    print(net["Id"])
    return 0


# -- ls ------------------------------------------------------------------------------------

def all_networks(store) -> list[dict]:
    """What `network ls` shows: the default bridge (made on first use), the stored networks,
    and the host and none modes, by name."""
    from ..runtime.network.store import PREDEFINED, predefined
    try:
        store.default()
    except SkiffError as e:  # a bad daemon.json must not hide the other networks
        sys.stderr.write(f"Warning: default network: {e}\n")
    nets = store.list() + [predefined(name) for name in PREDEFINED]
    return sorted(nets, key=lambda n: n["Name"])


def _filter(nets: list[dict], filters: list[str]) -> list[dict]:
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq or key not in ("name", "id", "driver", "label"):
            raise InvalidArgument(f"invalid filter '{f}' (name=, id=, driver= or label=)")
        if key == "name":
            nets = [n for n in nets if value in n["Name"]]
        elif key == "id":
            nets = [n for n in nets if n["Id"].startswith(value)]
        elif key == "driver":
            nets = [n for n in nets if n["Driver"] == value]
        else:
            lk, leq, lv = value.partition("=")
            nets = [n for n in nets if lk in (n.get("Labels") or {})
                    and (not leq or n["Labels"][lk] == lv)]
    return nets


def ls(ctx, store, opts, args) -> int:
    nets = _filter(all_networks(store), opts["filters"])
    ids = [n["Id"] if opts["no_trunc"] else n["Id"][:12] for n in nets]
    if opts["quiet"]:
        for i in ids:
            print(i)
        return 0
    from .table import print_table
    print_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                [[i, n["Name"], n["Driver"], "local"] for i, n in zip(ids, nets)])
    return 0


# -- inspect -------------------------------------------------------------------------------

def _container_name(ctx, cid: str) -> str:
    try:
        return ctx.containers.by_id(cid).name
    except Exception:  # noqa: BLE001 - a container half removed: show no name
        return ""


def inspect_network(ctx, net: dict) -> dict:
    """A definition with docker's field names."""
    plen = net["Subnet"].split("/")[1] if net.get("Subnet") else ""
    containers = {cid: {"Name": _container_name(ctx, cid), "EndpointID": "", "MacAddress": "",
                        "IPv4Address": f"{ip}/{plen}", "IPv6Address": ""}
                  for cid, ip in sorted((net.get("Allocations") or {}).items())}
    options = {}
    if net["Driver"] == "bridge":
        if net["Name"] == "bridge":
            options["com.docker.network.bridge.default_bridge"] = "true"
        options["com.docker.network.bridge.name"] = net["Bridge"]
        options["com.docker.network.driver.mtu"] = str(net.get("MTU") or 1500)
    config = [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}] if net.get("Subnet") else []
    return {
        "Name": net["Name"],
        "Id": net["Id"],
        "Created": net.get("Created", ""),
        "Scope": "local",
        "Driver": net["Driver"],
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": options,
        "Labels": dict(net.get("Labels") or {}),
    }


def inspect(ctx, store, opts, args) -> int:
    from ..runtime.network.store import predefined
    results, code = [], 0
    for ref in args:
        try:
            net = predefined(ref) or store.get(ref)
            results.append(inspect_network(ctx, net))
        except SkiffError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    from .inspect import print_objects
    print_objects(results, opts["format"])
    return code


# -- rm ------------------------------------------------------------------------------------

def rm(ctx, store, opts, args) -> int:
    from ..runtime.network.store import container_exists
    code = 0
    for ref in args:
        try:
            store.remove(ref, container_exists(ctx.root), teardown=store.teardown)
            print(ref)
        except SkiffError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
        except OSError as e:  # deleting the bridge failed: the definition is kept
            sys.stderr.write(f"Error: network {ref}: cannot delete its bridge or rules: {e}\n")
            code = 1
    return code
