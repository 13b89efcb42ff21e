"""Network definitions: daemon.json, the default bridge from "bip", create/get/list/remove
rules, automatic subnets, and the `skiff network` verb."""

import json
import os

import pytest

from skiff.cli import network as cli
from skiff.cli.main import Context
from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.runtime.fsutil import read_json
from skiff.runtime.network import ipam
from skiff.runtime.network.daemon_config import load_daemon_config
from skiff.runtime.network.store import NetworkStore, container_exists, host_routes
from skiff.runtime.root import Root


@pytest.fixture
def root(tmp_path):
    return Root(str(tmp_path / "root"))


@pytest.fixture
def etc(tmp_path):
    return str(tmp_path / "etc-daemon.json")


@pytest.fixture
def store(root, etc):
    s = NetworkStore(root, etc_config=etc)
    s.host_routes = lambda: []
    return s


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def daemon_json(root):
    return os.path.join(root.path, "daemon.json")


# -- daemon.json -------------------------------------------------------------------------

def test_config_missing_gives_defaults(root, etc):
    cfg = load_daemon_config(root, etc)
    assert cfg["bip"] == "10.88.0.1/16" and cfg["mtu"] == 1500 and cfg["bridge"] == "skiff0"
    assert cfg["dns"] == [] and cfg["insecure-registries"] == []


def test_config_good(root, etc):
    write(daemon_json(root), {"bip": "192.168.200.1/24", "mtu": 1450, "dns": ["10.0.0.2", "fd00::1"],
                              "insecure-registries": ["reg.local:5000"], "unknown": 1})
    cfg = load_daemon_config(root, etc)
    assert (cfg["bip"], cfg["mtu"], cfg["dns"]) == ("192.168.200.1/24", 1450, ["10.0.0.2", "fd00::1"])
    assert cfg["insecure-registries"] == ["reg.local:5000"] and cfg["unknown"] == 1


def test_config_etc_is_the_fallback_and_root_wins(root, etc):
    write(etc, {"bip": "10.1.0.1/16"})
    assert load_daemon_config(root, etc)["bip"] == "10.1.0.1/16"
    write(daemon_json(root), {"bip": "10.2.0.1/16"})
    assert load_daemon_config(root, etc)["bip"] == "10.2.0.1/16"


def test_config_bad_json_names_the_file(root, etc):
    write(daemon_json(root), '{"bip": "10.88.0.1/16",')
    with pytest.raises(SkiffError, match="daemon.json is not valid JSON"):
        load_daemon_config(root, etc)
    write(daemon_json(root), '["bip"]')
    with pytest.raises(SkiffError, match="must be a JSON object"):
        load_daemon_config(root, etc)


@pytest.mark.parametrize("bip", ["nonsense", "10.88.0.1", "10.88.0.0/16", "10.88.255.255/16",
                                 "10.88.0.1/31", "10.88.0.1/33", "300.1.1.1/8", 42])
def test_config_bad_bip_names_the_file_and_key(root, etc, bip):
    write(daemon_json(root), {"bip": bip})
    with pytest.raises(SkiffError) as e:
        load_daemon_config(root, etc)
    assert daemon_json(root) in str(e.value) and '"bip"' in str(e.value)


@pytest.mark.parametrize("key,value", [("mtu", "1500"), ("mtu", 20), ("mtu", True), ("dns", "1.1.1.1"),
                                       ("dns", ["not-an-ip"]), ("insecure-registries", [1]),
                                       ("default-address-pools", [{"base": "10.0.0.0/8", "size": 4}])])
def test_config_bad_values(root, etc, key, value):
    write(daemon_json(root), {key: value})
    with pytest.raises(SkiffError, match=f'"{key}"'):
        load_daemon_config(root, etc)


def test_bad_config_surfaces_through_the_store(store, root):
    write(daemon_json(root), "{")
    with pytest.raises(SkiffError, match="daemon.json"):
        store.default()


# -- the default network -----------------------------------------------------------------

def test_default_network_from_defaults(store):
    net = store.default()
    assert (net["Name"], net["Driver"], net["Bridge"]) == ("bridge", "bridge", "skiff0")
    assert (net["Subnet"], net["Gateway"], net["MTU"]) == ("10.88.0.0/16", "10.88.0.1", 1500)
    assert len(net["Id"]) == 64 and int(net["Id"], 16) >= 0
    assert read_json(store.path_of("bridge")) == net
    assert store.default() == net and store.get("bridge") == net


def test_default_network_from_bip(store, root):
    write(daemon_json(root), {"bip": "192.168.77.1/24", "mtu": 1400})
    net = store.default()
    assert (net["Subnet"], net["Gateway"], net["MTU"]) == ("192.168.77.0/24", "192.168.77.1", 1400)
    assert ipam.allocate(store, "bridge", "c1") == "192.168.77.2/24"


def test_default_network_bridge_name_from_config(store, root):
    write(daemon_json(root), {"bip": "10.77.0.1/24", "bridge": "sktest0"})
    net = store.default()
    assert net["Bridge"] == "sktest0"
    write(daemon_json(root), {"bip": "10.77.0.1/24", "bridge": "sktest1"})
    assert store.default()["Bridge"] == "sktest1"  # unused: remade with the new name
    assert store.create("other")["Bridge"].startswith("sk-")


@pytest.mark.parametrize("bridge", ["", "x" * 16, "a/b", "a b", "none", 0])
def test_config_bad_bridge(root, etc, bridge):
    write(daemon_json(root), {"bridge": bridge})
    with pytest.raises(SkiffError, match='"bridge"'):
        load_daemon_config(root, etc)


def test_default_network_is_remade_when_bip_changes_and_unused(store, root):
    old = store.default()
    write(daemon_json(root), {"bip": "10.99.0.1/24"})
    torn = []
    new = store.default(teardown=torn.append)
    assert (new["Subnet"], new["Gateway"], new["Bridge"]) == ("10.99.0.0/24", "10.99.0.1", "skiff0")
    assert new["Id"] != old["Id"] and torn == [old]


def test_default_network_is_kept_while_in_use(store, root, monkeypatch):
    ipam.allocate(store, "bridge", "c1")
    old = store.default()
    write(daemon_json(root), {"bip": "10.99.0.1/24"})
    assert store.default() == old
    assert store.default(is_alive=lambda cid: False) == old  # still within the grace period
    monkeypatch.setattr(ipam, "STALE_GRACE", 0)
    assert store.default(is_alive=lambda cid: True) == old
    assert store.default(is_alive=lambda cid: False)["Subnet"] == "10.99.0.0/24"  # c1 died


def test_default_network_applies_new_bip_after_rm(store, root):
    ipam.allocate(store, "bridge", "c1")
    write(daemon_json(root), {"bip": "10.99.0.1/24"})
    with pytest.raises(Conflict, match="has active endpoints"):
        store.remove("bridge")
    ipam.release(store, "bridge", "c1")
    store.remove("bridge")
    assert not store.exists("bridge")
    assert store.list() == []
    assert ipam.allocate(store, "bridge", "c2") == "10.99.0.2/24"


def test_bip_overlapping_a_network_is_refused(store, root):
    store.create("mine", subnet="10.99.0.0/24")
    write(daemon_json(root), {"bip": "10.99.0.1/16"})
    with pytest.raises(Conflict) as e:
        store.default()
    assert '"bip"' in str(e.value) and daemon_json(root) in str(e.value) and "mine" in str(e.value)


# -- create / get / list / remove --------------------------------------------------------

def test_create(store):
    net = store.create("front", subnet="10.50.0.0/24", labels={"team": "a"})
    assert net["Name"] == "front" and len(net["Id"]) == 64
    assert net["Bridge"] == "sk-" + net["Id"][:12] and len(net["Bridge"]) <= 15
    assert (net["Subnet"], net["Gateway"], net["Driver"]) == ("10.50.0.0/24", "10.50.0.1", "bridge")
    assert net["Labels"] == {"team": "a"} and net["Allocations"] == {} and net["MTU"] == 1500
    assert net["Created"].endswith("Z")
    assert read_json(store.path_of("front")) == net
    gw = store.create("back", subnet="10.51.0.0/24", gateway="10.51.0.254", mtu=9000)
    assert (gw["Gateway"], gw["MTU"]) == ("10.51.0.254", 9000)


def test_create_rules(store):
    store.create("front")
    with pytest.raises(Conflict) as e:
        store.create("front")
    assert str(e.value) == "network with name front already exists"
    for name in ("bridge", "host", "none", "default"):
        with pytest.raises(Conflict):
            store.create(name)
    for name in ("", "-x", ".x", "a b", "a/b", "x" * 201, "container:x"):
        with pytest.raises(InvalidArgument):
            store.create(name)
    store.create("a")  # one character is enough, as in docker
    store.create("A_b.c-1")
    with pytest.raises(InvalidArgument, match="corresponding subnet"):
        store.create("g", gateway="10.0.0.1")
    with pytest.raises(InvalidArgument, match="should be 10.52.0.0/24"):
        store.create("g", subnet="10.52.0.9/24")
    for subnet, gateway in (("10.52.0.0/24", "10.53.0.1"), ("10.52.0.0/24", "10.52.0.0"),
                            ("10.52.0.0/24", "10.52.0.255"), ("10.52.0.0/31", None), ("fd00::/64", None)):
        with pytest.raises(InvalidArgument):
            store.create("g", subnet=subnet, gateway=gateway)
    assert not store.exists("g")


def test_overlapping_subnets_are_refused(store):
    store.create("one", subnet="10.50.0.0/24")
    with pytest.raises(Conflict, match="overlaps with network one"):
        store.create("two", subnet="10.50.0.0/16")
    with pytest.raises(Conflict, match="overlaps with network one"):
        store.create("two", subnet="10.50.0.128/25")
    # the default network's subnet, even before it has been made
    with pytest.raises(Conflict, match="overlaps with network bridge"):
        store.create("two", subnet="10.88.3.0/24")
    assert not store.exists("bridge")


def test_automatic_subnets_avoid_overlap(store, root):
    assert store.create("a")["Subnet"] == "10.89.0.0/24"
    store.create("b", subnet="10.89.1.0/24")
    store.create("c", subnet="10.89.2.0/23")
    assert store.create("d")["Subnet"] == "10.89.4.0/24"
    store.remove("a")
    assert store.create("e")["Subnet"] == "10.89.0.0/24"
    # a default bridge moved into the pool is avoided too
    write(daemon_json(root), {"bip": "10.89.128.1/17"})
    store.host_routes = lambda: [(ipam.parse_ip("10.89.5.0"), 24)]  # a route of the host's own
    assert store.create("f")["Subnet"] == "10.89.6.0/24"
    for i in range(7, 128):
        store.create(f"fill{i}", subnet=f"10.89.{i}.0/24")
    assert store.create("g")["Subnet"] == "10.90.0.0/24"


def test_address_pools_from_daemon_json(store, root):
    write(daemon_json(root), {"default-address-pools": [{"base": "172.30.0.0/16", "size": 28}]})
    assert store.create("a")["Subnet"] == "172.30.0.0/28"
    assert store.create("b")["Subnet"] == "172.30.0.16/28"


def test_host_routes_reads_proc():
    routes = host_routes()
    assert all(isinstance(a, int) and 0 < p <= 32 for a, p in routes)


def test_get(store):
    a = store.create("alpha", subnet="10.50.0.0/24")
    store.create("beta", subnet="10.51.0.0/24")
    assert store.get("alpha") == a
    assert store.get(a["Id"]) == a
    assert store.get(a["Id"][:5]) == a
    with pytest.raises(NotFound) as e:
        store.get("nope")
    assert str(e.value) == "network nope not found"
    with pytest.raises(NotFound):
        store.get("../alpha")
    with pytest.raises(NotFound):
        store.get("")


def test_list(store):
    store.create("zed")
    store.create("abc")
    assert [n["Name"] for n in store.list()] == ["abc", "zed"]
    store.default()
    assert [n["Name"] for n in store.list()] == ["abc", "bridge", "zed"]


def test_remove(store, monkeypatch):
    net = store.create("front", subnet="10.50.0.0/24")
    ipam.allocate(store, "front", "c1")
    with pytest.raises(Conflict) as e:
        store.remove("front")
    assert str(e.value) == f"error while removing network: network front id {net['Id']} has active endpoints"
    with pytest.raises(Conflict):  # still young: never taken for stale
        store.remove("front", lambda cid: False)
    monkeypatch.setattr(ipam, "STALE_GRACE", 0)
    with pytest.raises(Conflict):
        store.remove("front", lambda cid: True)
    torn = []
    assert store.remove(net["Id"][:10], lambda cid: False, teardown=torn.append)["Name"] == "front"
    assert [t["Bridge"] for t in torn] == [net["Bridge"]]
    assert not store.exists("front")
    with pytest.raises(NotFound):
        store.remove("front")
    for name in ("host", "none", "default"):
        with pytest.raises(Conflict, match="pre-defined"):
            store.remove(name)
    with pytest.raises(NotFound):
        store.remove("bridge")  # not made yet


def test_failed_teardown_keeps_the_definition(store):
    store.create("front")

    def fail(net):
        raise OSError(1, "Operation not permitted")
    with pytest.raises(OSError):
        store.remove("front", teardown=fail)
    assert store.exists("front")


def test_container_exists(root):
    alive = container_exists(root)
    assert not alive("abc")
    os.makedirs(os.path.join(root.containers, "abc"))
    open(os.path.join(root.containers, "abc", "config.json"), "w").close()
    assert alive("abc")


# -- the CLI -----------------------------------------------------------------------------

@pytest.fixture
def cli_root(root):
    write(daemon_json(root), {"bip": "10.88.0.1/16"})  # pin it: /etc/skiff/daemon.json may exist
    return root


@pytest.fixture(autouse=True)
def no_kernel_teardown(monkeypatch):
    """`network rm` in these tests must not reach nftables or netlink: record instead."""
    torn = []
    monkeypatch.setattr(NetworkStore, "teardown", lambda self, net: torn.append(net["Name"]))
    return torn


def skiff_network(root, capsys, *args):
    code = cli.main(Context(root.path), {}, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_create_ls_inspect_rm(cli_root, capsys, no_kernel_teardown):
    code, out, _ = skiff_network(cli_root, capsys, "create", "--subnet", "10.50.0.0/24",
                                 "--gateway", "10.50.0.254", "--label", "a=b",
                                 "-o", "com.docker.network.driver.mtu=9000", "front")
    net_id = out.strip()
    assert code == 0 and len(net_id) == 64

    code, out, _ = skiff_network(cli_root, capsys, "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = [line.split() for line in lines[1:]]
    assert [r[1:] for r in rows] == [["bridge", "bridge", "local"], ["front", "bridge", "local"],
                                     ["host", "host", "local"], ["none", "null", "local"]]
    assert rows[1][0] == net_id[:12] and all(len(r[0]) == 12 for r in rows)
    _, out, _ = skiff_network(cli_root, capsys, "ls", "-q", "--no-trunc", "-f", "name=fro")
    assert out == net_id + "\n"

    store = NetworkStore(cli_root)
    ipam.allocate(store, "front", "c" * 64)
    code, out, _ = skiff_network(cli_root, capsys, "inspect", "front")
    [doc] = json.loads(out)
    assert code == 0
    assert (doc["Name"], doc["Id"], doc["Driver"], doc["Scope"], doc["EnableIPv6"]) == \
        ("front", net_id, "bridge", "local", False)
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.50.0.0/24", "Gateway": "10.50.0.254"}]
    assert doc["Containers"]["c" * 64]["IPv4Address"] == "10.50.0.1/24"
    assert doc["Options"] == {"com.docker.network.bridge.name": "sk-" + net_id[:12],
                              "com.docker.network.driver.mtu": "9000"}
    assert doc["Labels"] == {"a": "b"} and doc["Created"]

    code, out, err = skiff_network(cli_root, capsys, "rm", "front")
    assert code == 1 and "has active endpoints" in err and out == ""
    ipam.release(store, "front", "c" * 64)
    code, out, err = skiff_network(cli_root, capsys, "rm", "front", "nope")
    assert code == 1 and out == "front\n" and "network nope not found" in err
    assert no_kernel_teardown == ["front"]


def test_cli_inspect_default_and_predefined(cli_root, capsys):
    code, out, _ = skiff_network(cli_root, capsys, "inspect", "bridge", "host", "none")
    bridge, host, none = json.loads(out)
    assert bridge["Options"]["com.docker.network.bridge.name"] == "skiff0"
    assert bridge["IPAM"]["Config"] == [{"Subnet": "10.88.0.0/16", "Gateway": "10.88.0.1"}]
    assert (host["Driver"], none["Driver"]) == ("host", "null")
    code, out, _ = skiff_network(cli_root, capsys, "inspect", "-f", "{{.Name}} {{.Driver}}", "bridge")
    assert out == "bridge bridge\n"
    code, out, err = skiff_network(cli_root, capsys, "inspect", "nope")
    assert code == 1 and json.loads(out) == [] and "network nope not found" in err


def test_cli_errors_and_help(cli_root, capsys):
    with pytest.raises(InvalidArgument):
        skiff_network(cli_root, capsys, "create", "-d", "overlay", "x")
    with pytest.raises(InvalidArgument):
        skiff_network(cli_root, capsys, "create", "-o", "foo=bar", "x")
    with pytest.raises(InvalidArgument):
        skiff_network(cli_root, capsys, "frobnicate")
    code, out, _ = skiff_network(cli_root, capsys, "create", "--help")
    assert code == 0 and "--subnet" in out
    code, out, _ = skiff_network(cli_root, capsys)
    assert code == 0 and "inspect" in out
    code, out, err = skiff_network(cli_root, capsys, "rm", "host")
    assert code == 1 and "pre-defined" in err
    assert sorted(os.listdir(cli_root.networks)) == []  # nothing was made by those


def test_delete_bridge_of(monkeypatch):
    from skiff.runtime.network import store as store_mod
    assert store_mod.delete_bridge_of({"Name": "x", "Bridge": ""}) is False
    # no such link: nothing to delete, and no netlink needed
    assert store_mod.delete_bridge_of({"Name": "x", "Bridge": "sk-nosuchbridge"}) is False
    # a bridge (the name is host-wide) with another root's veth on it is left alone
    monkeypatch.setattr(store_mod, "DRAIN_SECONDS", 0.1)
    real = os.listdir
    monkeypatch.setattr(store_mod.os, "listdir",
                        lambda p: ["vethabc"] if p == "/sys/class/net/skiff0/brif" else real(p))
    with pytest.raises(Conflict, match="vethabc"):
        store_mod.delete_bridge_of({"Name": "bridge", "Bridge": "skiff0"})


def test_delete_bridge_of_waits_for_an_exited_containers_veth(monkeypatch):
    """The veth of a container that has just exited leaves with its netns, in the kernel's
    background: it may still be on the bridge for a moment (CI saw it), and is waited for."""
    from skiff.runtime.network import bridge, store as store_mod
    reads = []

    def listdir(p):
        assert p == "/sys/class/net/skiff0/brif"
        reads.append(p)
        return ["vethgoing"] if len(reads) < 4 else []
    monkeypatch.setattr(store_mod.os, "listdir", listdir)
    deleted = []
    monkeypatch.setattr(bridge, "delete_bridge", lambda name: deleted.append(name) or True)
    assert store_mod.delete_bridge_of({"Name": "bridge", "Bridge": "skiff0"}) is True
    assert deleted == ["skiff0"] and len(reads) == 4


class FakeTable:
    def __init__(self, fail=False, other_rules=()):
        self.removed, self.fail, self.other, self.deleted = [], fail, list(other_rules), False

    def remove(self, owner):
        if self.fail:
            raise SkiffError("nft: Operation not permitted")
        self.removed.append(owner)
        return 1

    def exists(self):
        return not self.deleted

    def rules(self):
        return self.other

    def delete_table(self):
        self.deleted = True
        return True


def fake_endpoint(monkeypatch, table):
    import sys
    import types
    mod = types.ModuleType("skiff.runtime.network.endpoint")
    mod.nft_table = lambda root_path: table
    monkeypatch.setitem(sys.modules, "skiff.runtime.network.endpoint", mod)


def test_teardown_network_removes_rules_then_bridge(root, monkeypatch):
    from skiff.runtime.network import store as store_mod
    table, deleted = FakeTable(), []
    fake_endpoint(monkeypatch, table)
    monkeypatch.setattr(store_mod, "_bridge_ports", lambda name: [])
    monkeypatch.setattr(store_mod, "delete_bridge_of", lambda net: deleted.append(net["Bridge"]))
    net = {"Name": "front", "Id": "ab" * 32, "Bridge": "sk-abababababab"}
    store_mod.teardown_network(root, net)
    assert table.removed == ["net:" + "ab" * 6] and deleted == ["sk-abababababab"]
    assert table.deleted  # no rule left: the table goes too
    busy = FakeTable(other_rules=[{"comment": "skiff:other"}])
    fake_endpoint(monkeypatch, busy)
    store_mod.teardown_network(root, net)
    assert not busy.deleted  # other networks' rules still there: the table stays
    # the bridge exists and nftables fails: stop, so that the definition stays
    fake_endpoint(monkeypatch, FakeTable(fail=True))
    with pytest.raises(SkiffError):
        store_mod.teardown_network(root, net)
    # no bridge (never used here): an unreadable nftables is no reason to refuse `rm`
    monkeypatch.setattr(store_mod, "_bridge_ports", lambda name: None)
    store_mod.teardown_network(root, net)
    # another root's veth stays on the bridge: refused after one drain wait, no rule touched
    import time
    monkeypatch.setattr(store_mod, "DRAIN_SECONDS", 0.2)
    monkeypatch.setattr(store_mod, "_bridge_ports", lambda name: ["vethother"])
    kept = FakeTable()
    fake_endpoint(monkeypatch, kept)
    t0 = time.monotonic()
    with pytest.raises(Conflict, match="vethother"):
        store_mod.teardown_network(root, net)
    assert time.monotonic() - t0 < 0.35 and kept.removed == [] and not kept.deleted
