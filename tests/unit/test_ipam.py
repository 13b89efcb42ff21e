"""IPAM: lowest free address, never network/gateway/broadcast, exhaustion, release,
stale release, and atomic allocation across processes."""

import multiprocessing
import os

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.runtime.fsutil import read_json
from skiff.runtime.network import ipam
from skiff.runtime.network.store import NetworkStore
from skiff.runtime.root import Root


def make_store(root_path, etc_path):
    store = NetworkStore(Root(root_path), etc_config=etc_path)
    store.host_routes = lambda: []
    return store


@pytest.fixture
def paths(tmp_path):
    return str(tmp_path / "root"), str(tmp_path / "etc-daemon.json")


@pytest.fixture
def store(paths):
    return make_store(*paths)


def hosts(addrs):
    return [a.split("/")[0] for a in addrs]


# -- address helpers ---------------------------------------------------------------------

def test_parse_and_format_ip():
    assert ipam.format_ip(ipam.parse_ip("10.88.0.1")) == "10.88.0.1"
    assert ipam.parse_ip("0.0.0.1") == 1
    for bad in ("10.88.0", "10.88.0.256", "10.88.0.-1", "a.b.c.d", "010.1.1.1", "1.2.3.4.5", "", "١.2.3.4"):
        with pytest.raises(InvalidArgument):
            ipam.parse_ip(bad)


def test_subnets():
    assert ipam.parse_subnet("10.89.1.0/24") == (ipam.parse_ip("10.89.1.0"), 24)
    with pytest.raises(InvalidArgument, match="it should be 10.89.1.0/24"):
        ipam.parse_subnet("10.89.1.7/24")
    assert ipam.overlaps("10.88.0.0/16", "10.88.5.0/24")
    assert ipam.overlaps("10.88.5.0/24", "10.88.0.0/16")
    assert not ipam.overlaps("10.88.0.0/16", "10.89.0.0/24")
    first, last = ipam.host_range("10.0.0.0/30")
    assert (ipam.format_ip(first), ipam.format_ip(last)) == ("10.0.0.1", "10.0.0.2")
    with pytest.raises(InvalidArgument):
        ipam.host_range("10.0.0.0/31")


def test_mac_like_docker():
    assert ipam.mac_for("172.17.0.2/16") == "02:42:ac:11:00:02"


# -- allocation --------------------------------------------------------------------------

def test_lowest_free_address_and_cidr(store):
    store.create("n", subnet="10.50.0.0/24")
    assert ipam.allocate(store, "n", "a") == "10.50.0.2/24"
    assert ipam.allocate(store, "n", "b") == "10.50.0.3/24"
    assert ipam.allocate(store, "n", "c") == "10.50.0.4/24"
    assert ipam.release(store, "n", "b") is True
    assert ipam.allocate(store, "n", "d") == "10.50.0.3/24"  # the lowest free one again
    assert ipam.allocate(store, "n", "a") == "10.50.0.2/24"  # already holds one: the same
    net = read_json(store.path_of("n"))
    assert net["Allocations"] == {"a": "10.50.0.2", "c": "10.50.0.4", "d": "10.50.0.3"}
    assert ipam.address_of(store, "n", "c") == "10.50.0.4/24"
    assert ipam.address_of(store, "n", "zz") is None


def test_default_network_is_made_on_first_allocation(store):
    assert ipam.allocate(store, "bridge", "a") == "10.88.0.2/16"
    assert store.get("bridge")["Allocations"] == {"a": "10.88.0.2"}


def test_by_id_prefix(store):
    net = store.create("n", subnet="10.50.0.0/24")
    assert ipam.allocate(store, net["Id"][:8], "a") == "10.50.0.2/24"
    assert ipam.release(store, net["Id"], "a") is True


def test_never_network_gateway_or_broadcast(store):
    store.create("n", subnet="10.50.0.0/29", gateway="10.50.0.3")
    got = hosts(ipam.allocate(store, "n", f"c{i}") for i in range(5))
    assert got == ["10.50.0.1", "10.50.0.2", "10.50.0.4", "10.50.0.5", "10.50.0.6"]
    with pytest.raises(SkiffError, match="^no available IPv4 addresses on network n$"):
        ipam.allocate(store, "n", "one-too-many")


def test_exhaustion_on_a_slash_30(store):
    store.create("tiny", subnet="10.60.0.0/30")
    assert ipam.allocate(store, "tiny", "a") == "10.60.0.2/30"
    with pytest.raises(SkiffError) as e:
        ipam.allocate(store, "tiny", "b")
    assert str(e.value) == "no available IPv4 addresses on network tiny"
    ipam.release(store, "tiny", "a")
    assert ipam.allocate(store, "tiny", "b") == "10.60.0.2/30"


def test_requested_ip(store):
    store.create("n", subnet="10.50.0.0/24")
    assert ipam.allocate(store, "n", "a", requested_ip="10.50.0.77") == "10.50.0.77/24"
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(store, "n", "b", requested_ip="10.50.0.77")
    with pytest.raises(Conflict, match="gateway"):
        ipam.allocate(store, "n", "b", requested_ip="10.50.0.1")
    for bad in ("10.50.0.0", "10.50.0.255", "10.51.0.5"):
        with pytest.raises(InvalidArgument):
            ipam.allocate(store, "n", "b", requested_ip=bad)
    assert ipam.allocate(store, "n", "a", requested_ip="10.50.0.78/24") == "10.50.0.78/24"
    assert read_json(store.path_of("n"))["Allocations"] == {"a": "10.50.0.78"}


def test_release(store):
    store.create("n", subnet="10.50.0.0/24")
    ipam.allocate(store, "n", "a")
    assert ipam.release(store, "n", "a") is True
    assert ipam.release(store, "n", "a") is False
    with pytest.raises(NotFound, match="network gone not found"):
        ipam.release(store, "gone", "a")
    with pytest.raises(NotFound):  # the default network is not made just to release from it
        ipam.release(store, "bridge", "a")
    assert not store.exists("bridge")
    with pytest.raises(NotFound):
        ipam.allocate(store, "gone", "a")


def test_release_stale(store, monkeypatch):
    store.create("n", subnet="10.50.0.0/24")
    for cid in ("live", "dead1", "dead2"):
        ipam.allocate(store, "n", cid)
    alive = {"live"}
    # just allocated: protected, since `run` allocates before the container's files exist
    assert ipam.release_stale(store, "n", alive.__contains__) == []
    monkeypatch.setattr(ipam, "STALE_GRACE", 0)
    assert sorted(ipam.release_stale(store, "n", alive.__contains__)) == ["dead1", "dead2"]
    net = read_json(store.path_of("n"))
    assert net["Allocations"] == {"live": "10.50.0.2"}
    assert list(net["AllocatedAt"]) == ["live"]


def test_allocate_reclaims_dead_containers(store, monkeypatch):
    store.create("tiny", subnet="10.60.0.0/30")
    ipam.allocate(store, "tiny", "crashed")
    with pytest.raises(SkiffError, match="no available"):
        ipam.allocate(store, "tiny", "new", is_alive=lambda cid: True)
    monkeypatch.setattr(ipam, "STALE_GRACE", 0)
    assert ipam.allocate(store, "tiny", "new", is_alive=lambda cid: cid == "new") == "10.60.0.2/30"
    assert read_json(store.path_of("tiny"))["Allocations"] == {"new": "10.60.0.2"}


# -- across processes --------------------------------------------------------------------

def _allocate_in_child(root_path, etc_path, network, cid, barrier, queue):
    try:
        store = make_store(root_path, etc_path)
        barrier.wait(timeout=10)
        # is_alive says "dead" for everyone, as it would for containers still being created:
        # the grace period must keep those allocations.
        queue.put((cid, ipam.allocate(store, network, cid, is_alive=lambda c: False)))
    except BaseException as e:  # noqa: BLE001 - report to the parent
        queue.put((cid, f"error: {e!r}"))


def _create_in_child(root_path, etc_path, name, barrier, queue):
    try:
        store = make_store(root_path, etc_path)
        barrier.wait(timeout=10)
        queue.put((name, store.create(name)["Subnet"]))
    except BaseException as e:  # noqa: BLE001
        queue.put((name, f"error: {e!r}"))


def run_in_processes(target, argsets):
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(len(argsets)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, queue)) for a in argsets]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    return results


def test_twenty_processes_get_twenty_distinct_addresses(paths):
    root_path, etc_path = paths
    # the default network is made by whichever process comes first
    results = run_in_processes(_allocate_in_child,
                               [(root_path, etc_path, "bridge", f"c{i:02d}") for i in range(20)])
    assert not [r for r in results.values() if r.startswith("error")], results
    assert len(set(results.values())) == 20
    got = set(hosts(results.values()))
    assert not got & {"10.88.0.0", "10.88.0.1", "10.88.255.255"}
    assert got == {f"10.88.0.{i}" for i in range(2, 22)}  # lowest free, no holes
    net = read_json(make_store(*paths).path_of("bridge"))
    assert net["Allocations"] == {cid: ip.split("/")[0] for cid, ip in results.items()}


def test_twenty_processes_on_a_small_network(paths):
    store = make_store(*paths)
    store.create("small", subnet="10.70.0.0/27")  # 30 hosts, one is the gateway
    results = run_in_processes(_allocate_in_child,
                               [(*paths, "small", f"c{i:02d}") for i in range(20)])
    got = hosts(results.values())
    assert len(set(got)) == 20 and "10.70.0.1" not in got and "10.70.0.31" not in got


def test_concurrent_creates_get_distinct_subnets(paths):
    results = run_in_processes(_create_in_child, [(*paths, f"net{i}") for i in range(12)])
    subnets = list(results.values())
    assert not [s for s in subnets if s.startswith("error")], results
    assert sorted(subnets) == sorted(f"10.89.{i}.0/24" for i in range(12))
    assert len(os.listdir(make_store(*paths).root.networks)) == 12
