"""skiff's nftables table against the real kernel: each test has a table of its own
(`skiff_t_<hex>`), deleted even when the test fails; traffic goes only to loopback and to a
network namespace the test makes."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid

import pytest

from skiff.errors import SkiffError
from skiff.runtime.network.nft import Nft, SkiffTable

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]


def nft_json(*args: str) -> dict:
    """The `nft` command line tool's view, independent of the binding under test."""
    out = subprocess.run(["nft", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def listed(family: str, name: str, kind: str) -> list[dict]:
    return [o[kind] for o in nft_json("list", "table", family, name)["nftables"] if kind in o]


def table_names() -> set[tuple[str, str]]:
    return {(o["table"]["family"], o["table"]["name"])
            for o in nft_json("list", "tables")["nftables"] if "table" in o}


def make_table(family: str, tmp_path) -> SkiffTable:
    return SkiffTable(Nft(), family=family, name=f"skiff_t_{uuid.uuid4().hex[:10]}",
                      lock_path=str(tmp_path / "locks" / "nft.lock"))


@pytest.fixture
def table(tmp_path):
    t = make_table("inet", tmp_path)
    try:
        yield t
    finally:
        subprocess.run(["nft", "delete", "table", t.family, t.name], capture_output=True)
        assert (t.family, t.name) not in table_names()


@pytest.fixture
def ip_table(tmp_path):
    t = make_table("ip", tmp_path)
    try:
        yield t
    finally:
        subprocess.run(["nft", "delete", "table", t.family, t.name], capture_output=True)
        assert (t.family, t.name) not in table_names()


EXPECTED_CHAINS = {
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
    "forward": ("filter", "forward", 0),
}


def chain_shapes(t: SkiffTable) -> dict:
    return {c["name"]: (c["type"], c["hook"], c["prio"], c["policy"])
            for c in listed(t.family, t.name, "chain")}


def test_ensure_creates_the_table_and_base_chains_once(table):
    assert not table.exists()
    assert table.rules() == []  # a missing table has no rules; listing it is no error
    table.ensure()
    assert table.exists()
    assert chain_shapes(table) == {k: (*v, "accept") for k, v in EXPECTED_CHAINS.items()}
    handles = {c["name"]: c["handle"] for c in listed(table.family, table.name, "chain")}
    table.ensure()
    assert {c["name"]: c["handle"] for c in listed(table.family, table.name, "chain")} == handles
    assert listed(table.family, table.name, "rule") == []


def test_publish_then_remove_leaves_no_rule(table):
    assert table.publish("c1", None, 18080, "tcp", "10.213.0.2", 80, "skt0") == 3
    assert table.publish("c1", "127.0.0.1", 18081, "udp", "10.213.0.2", 53, "skt0") == 3
    assert table.publish("c1", "192.0.2.10", 18082, "tcp", "10.213.0.2", 443, "skt0") == 2
    rules = listed(table.family, table.name, "rule")
    assert len(rules) == 8
    assert {r["comment"] for r in rules} == {"skiff:c1"}
    assert sorted(r["chain"] for r in rules) == sorted(
        ["prerouting", "output", "postrouting"] * 2 + ["prerouting", "output"])
    text = subprocess.run(["nft", "list", "table", "inet", table.name], capture_output=True,
                          text=True, check=True).stdout
    assert 'meta nfproto ipv4 fib daddr type local tcp dport 18080 dnat ip to 10.213.0.2:80 ' \
           'comment "skiff:c1"' in text
    assert 'ip daddr 127.0.0.1 udp dport 18081 dnat ip to 10.213.0.2:53' in text
    assert 'ip saddr 127.0.0.0/8 oifname "skt0" ip daddr 10.213.0.2 tcp dport 80 masquerade' in text
    assert len(table.rules("c1")) == 8 and table.rules("c2") == []

    assert table.remove("c1") == 8
    assert listed(table.family, table.name, "rule") == []
    assert table.remove("c1") == 0  # idempotent
    assert len(listed(table.family, table.name, "chain")) == 4  # the chains stay


def test_publish_is_idempotent_and_all_or_nothing(table):
    bindings = [{"host_ip": "", "host_port": 18090, "proto": "tcp", "container_port": 80},
                {"host_ip": "127.0.0.1", "host_port": 18091, "proto": "udp", "container_port": 53}]
    assert table.publish_many("c1", bindings, "10.213.0.2", "skt0") == 6
    assert table.publish_many("c1", bindings, "10.213.0.2", "skt0") == 0
    assert table.publish("c1", None, 18090, "tcp", "10.213.0.2", 80, "skt0") == 0
    assert len(table.rules()) == 6
    assert table.remove("c1") == 6


def test_remove_takes_only_the_owners_rules(table):
    table.publish("c1", None, 18100, "tcp", "10.213.0.2", 80, "skt0")
    table.publish("c2", None, 18101, "tcp", "10.213.0.3", 80, "skt0")
    table.masquerade_subnet("net:a", "10.213.0.0/24", "skt0")
    table.accept_forward("net:a", "skt0")
    before = {r["handle"]: r for r in listed(table.family, table.name, "rule")}
    assert table.remove("c1") == 3
    after = {r["handle"]: r for r in listed(table.family, table.name, "rule")}
    assert after == {h: r for h, r in before.items() if r["comment"] != "skiff:c1"}
    assert {r["comment"] for r in after.values()} == {"skiff:c2", "skiff:net:a"}


def test_masquerade_and_forward_are_idempotent(table):
    assert table.masquerade_subnet("net:a", "10.213.7.1/24", "skt0") == 1
    assert table.masquerade_subnet("net:a", "10.213.7.0/24", "skt0") == 0
    assert table.accept_forward("net:a", "skt0") == 2
    assert table.accept_forward("net:a", "skt0") == 0
    text = subprocess.run(["nft", "list", "table", "inet", table.name], capture_output=True,
                          text=True, check=True).stdout
    assert 'ip saddr 10.213.7.0/24 oifname != "skt0" masquerade comment "skiff:net:a"' in text
    assert 'iifname "skt0" accept comment "skiff:net:a"' in text
    assert 'oifname "skt0" ct state established,related accept comment "skiff:net:a"' in text
    assert table.remove("net:a") == 3
    assert table.rules() == []


def test_ip_family_table(ip_table):
    ip_table.ensure()
    assert chain_shapes(ip_table) == {k: (*v, "accept") for k, v in EXPECTED_CHAINS.items()}
    assert ip_table.publish("c1", None, 18110, "tcp", "10.213.0.2", 80, "skt0") == 3
    assert ip_table.publish("c1", None, 18110, "tcp", "10.213.0.2", 80, "skt0") == 0
    assert ip_table.remove("c1") == 3
    assert listed("ip", ip_table.name, "rule") == []


def test_a_failing_transaction_changes_nothing(table):
    table.ensure()
    table.publish("c1", None, 18120, "tcp", "10.213.0.2", 80, "skt0")
    before = listed(table.family, table.name, "rule")
    good = {"add": {"rule": {"family": "inet", "table": table.name, "chain": "output",
                             "comment": "skiff:c9", "expr": [{"accept": None}]}}}
    bad = {"add": {"rule": {"family": "inet", "table": table.name, "chain": "no_such_chain",
                            "comment": "skiff:c9", "expr": [{"accept": None}]}}}
    with pytest.raises(SkiffError) as e:
        table.nft.run({"nftables": [good, bad]})
    assert str(e.value) == "nftables: Could not process rule: No such file or directory"
    assert listed(table.family, table.name, "rule") == before
    # The context stays usable after an error.
    assert table.nft.run("list tables")["nftables"][0]["metainfo"]["version"]
    # ensure() puts back a base chain that went missing.
    table.nft.run({"nftables": [{"delete": {"chain": {"family": "inet", "table": table.name,
                                                      "name": "forward"}}}]})
    table.ensure()
    assert "forward" in chain_shapes(table)


def test_a_failing_publish_says_what_and_adds_nothing(table):
    # Someone made the table's `output` a filter chain: skiff's `add chain ... type nat` clashes,
    # and the whole transaction (chains and rules) is refused.
    subprocess.run(["nft", "add", "table", "inet", table.name], check=True)
    subprocess.run(["nft", "add", "chain", "inet", table.name, "output",
                    "{ type filter hook output priority 0; policy accept; }"], check=True)
    with pytest.raises(SkiffError) as e:
        table.publish("c1", None, 18125, "tcp", "10.213.0.2", 80, "skt0")
    assert str(e.value) == ("nftables: publishing 0.0.0.0:18125/tcp -> 10.213.0.2:80: "
                            "Could not process rule: Operation not supported")
    assert [c["name"] for c in listed(table.family, table.name, "chain")] == ["output"]
    assert listed(table.family, table.name, "rule") == []


def test_delete_table_is_idempotent_and_touches_no_other_table(table, tmp_path):
    other = make_table("inet", tmp_path)
    try:
        subprocess.run(["nft", "add", "table", "inet", other.name], check=True)
        subprocess.run(["nft", "add", "chain", "inet", other.name, "c_forward",
                        "{ type filter hook forward priority 0; policy accept; }"], check=True)
        subprocess.run(["nft", "add", "rule", "inet", other.name, "c_forward", "iifname", "skt0",
                        "accept", "comment", '"skiff:c1"'], check=True)
        snapshot = nft_json("list", "table", "inet", other.name)
        table.publish("c1", None, 18130, "tcp", "10.213.0.2", 80, "skt0")
        assert table.remove("c1") == 3  # the other table's rule with the same comment stays
        assert table.delete_table() is True
        assert table.delete_table() is False
        assert not table.exists()
        assert nft_json("list", "table", "inet", other.name) == snapshot
    finally:
        subprocess.run(["nft", "delete", "table", "inet", other.name], capture_output=True)


def test_concurrent_publishers_with_the_lock_add_each_rule_once(table):
    # Eight processes publish the same ports for the same owner at once: the flock around
    # list-then-add means every rule exists exactly once.
    code = ("import sys; from skiff.runtime.network.nft import Nft, SkiffTable; "
            "t = SkiffTable(Nft(), name=sys.argv[1], lock_path=sys.argv[2]); "
            "[t.publish('c1', None, p, 'tcp', '10.213.0.2', p - 10000, 'skt0') for p in range(18140, 18150)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, table.name, table.lock_path],
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    rules = listed(table.family, table.name, "rule")
    assert len(rules) == 30
    assert table.remove("c1") == 30


# ---------------------------------------------------------------------------------------------
# Real traffic: host 127.0.0.1:HOSTPORT -> a server inside a network namespace.

def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def free_subnet() -> str:
    for _ in range(50):
        prefix = f"10.213.{random.randint(1, 254)}"
        if not ip("-4", "addr", "show", "to", f"{prefix}.0/24").stdout.strip() and \
                not ip("-4", "route", "show", "to", "match", f"{prefix}.1").stdout.count(prefix):
            return prefix
    pytest.skip("no free 10.213.x.0/24 subnet")


def free_host_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(("hello-" + sys.argv[2] + " from " + peer[0] + "\\n").encode())
    c.close()
"""


@pytest.fixture
def netns_server():
    """A netns with a TCP server, joined to a host bridge by a veth. Yields a dict."""
    tag = uuid.uuid4().hex[:8]
    ns, br, veth, peer = f"sktn{tag}", f"sktb{tag}", f"sktv{tag}", f"sktp{tag}"
    sysctl = f"/proc/sys/net/ipv4/conf/{br}/route_localnet"
    server = old_localnet = None
    try:
        prefix = free_subnet()
        ip("netns", "add", ns)
        ip("link", "add", br, "type", "bridge")
        ip("addr", "add", f"{prefix}.1/24", "dev", br)
        ip("link", "set", br, "up")
        ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", veth, "master", br, "up")
        ip("link", "set", peer, "netns", ns)
        ip("-n", ns, "addr", "add", f"{prefix}.2/24", "dev", peer)
        ip("-n", ns, "link", "set", peer, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        with open(sysctl) as f:
            old_localnet = f.read().strip()
        port = random.randint(20000, 60000)  # a fresh namespace has nothing listening
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-I", "-c", SERVER,
                                   str(port), tag], stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        yield {"ns": ns, "bridge": br, "ip": f"{prefix}.2", "gateway": f"{prefix}.1",
               "port": port, "tag": tag, "sysctl": sysctl, "old_localnet": old_localnet}
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if old_localnet is not None and os.path.exists(sysctl):
            with open(sysctl, "w") as f:
                f.write(old_localnet)
        ip("netns", "del", ns, check=False)
        ip("link", "del", veth, check=False)
        ip("link", "del", br, check=False)
        assert ns not in ip("netns", "list").stdout
        assert ip("link", "show", br, check=False).returncode != 0
        assert ip("link", "show", veth, check=False).returncode != 0


def fetch(port: int, timeout: float = 2.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(256)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


def test_published_loopback_port_reaches_the_namespace(table, netns_server):
    s = netns_server
    host_port = free_host_port()
    with pytest.raises(OSError):  # nothing there before publishing
        fetch(host_port, timeout=1)
    with open(s["sysctl"], "w") as f:
        f.write("1")
    table.publish("ctr1", "127.0.0.1", host_port, "tcp", s["ip"], s["port"], s["bridge"])
    # The reply comes from the server in the namespace, and it saw the masqueraded source:
    # the bridge's address, not 127.0.0.1 (which it could not have answered).
    assert fetch(host_port) == f"hello-{s['tag']} from {s['gateway']}"
    assert fetch(host_port) == f"hello-{s['tag']} from {s['gateway']}"

    assert table.remove("ctr1") == 3
    start = time.monotonic()
    with pytest.raises((ConnectionRefusedError, TimeoutError, socket.timeout)):
        fetch(host_port, timeout=2)
    assert time.monotonic() - start < 3


def test_published_any_address_port_reaches_the_namespace(table, netns_server):
    s = netns_server
    host_port = free_host_port()
    with open(s["sysctl"], "w") as f:
        f.write("1")
    table.publish("ctr2", None, host_port, "tcp", s["ip"], s["port"], s["bridge"])
    assert fetch(host_port) == f"hello-{s['tag']} from {s['gateway']}"
    table.remove("ctr2")
    with pytest.raises((ConnectionRefusedError, TimeoutError, socket.timeout)):
        fetch(host_port, timeout=2)
