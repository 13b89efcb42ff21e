"""rtnl (hand-rolled rtnetlink) and bridge (pyroute2) against the real kernel (root only).

Every test names its links, namespaces and bridges "skt" + 8 hex digits, and its finalizers
delete each of them (and kill what runs inside the namespaces) even when the test fails.
Traffic goes only between the host and namespaces these tests create (10.214.x.0/24).
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from skiff.runtime.network import bridge
from skiff.runtime.network.rtnl import Netlink

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

PY = sys.executable
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def uname() -> str:
    return "skt" + uuid.uuid4().hex[:8]


def ip(*args: str, check: bool = True) -> str:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr}")
    return p.stdout


def ipj(*args: str):
    return json.loads(ip("-j", *args) or "[]")


def host_links() -> set[str]:
    return {link["ifname"] for link in ipj("link", "show")}


class Made:
    """What a test created; undone in reverse order by the finalizer."""

    def __init__(self):
        self.links: list[str] = []
        self.bridges: list[str] = []
        self.netns: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.fds: list[int] = []

    def name(self) -> str:
        return uname()

    def ns(self) -> tuple[str, int]:
        name = uname()
        self.netns.append(name)
        ip("netns", "add", name)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        return name, fd

    def bridge(self, mtu: int | None = None) -> tuple[str, int, str]:
        name = uname()
        self.bridges.append(name)
        net = f"10.214.{random.randrange(1, 255)}"
        index = bridge.ensure_bridge(name, f"{net}.1/24", mtu=mtu)
        return name, index, net

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for fd in self.fds:
            os.close(fd)
        for name in self.netns:
            for pid in ip("netns", "pids", name, check=False).split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            ip("netns", "del", name, check=False)
        for name in self.links:
            ip("link", "del", name, check=False)
        for name in self.bridges:
            ip("link", "del", name, check=False)
        left = host_links() & set(self.links + self.bridges)
        assert not left, f"left behind: {left}"


@pytest.fixture
def made():
    m = Made()
    yield m
    m.cleanup()


def wait_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    import select
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    assert r, "no output from the helper process in time"
    return proc.stdout.readline().strip()


SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(1)
    print("ready", flush=True)
    c, peer = s.accept()
    data = c.recv(100)
    c.sendall(b"pong:" + data + b" from " + peer[0].encode())
    c.close()
""")


def container_net(made: Made, mtu: int | None = None):
    """The per-container path as skiff runs it: bridge, netns, veth (peer born as eth0 in the
    netns, host end on the bridge and up), then address, lo/eth0 up, default route from inside."""
    br, br_index, net = made.bridge(mtu=mtu)
    ns, fd = made.ns()
    host_end = made.name()
    made.links.append(host_end)
    with Netlink() as nl:
        bridge_mtu = nl.link_mtu(br)
        nl.create_veth(host_end, "eth0", peer_netns_fd=fd, mtu=bridge_mtu, master_index=br_index,
                       up=True)
    with Netlink(fd) as inner:
        inner.add_address("eth0", f"{net}.2/24")
        inner.set_up("lo")
        inner.set_up("eth0")
        inner.add_default_route(f"{net}.1")
    return br, br_index, net, ns, fd, host_end


def test_container_network_end_to_end(made):
    br, br_index, net, ns, fd, host_end = container_net(made)

    # Host side: the veth is on the bridge and up; the bridge has its gateway.
    (link,) = ipj("link", "show", host_end)
    assert link["master"] == br and "UP" in link["flags"]
    assert bridge.bridge_address(br) == [f"{net}.1/24"]
    # Inside: eth0 with the address and broadcast, lo up, the default route via the gateway.
    addr = ip("-n", ns, "addr", "show", "eth0")
    assert f"inet {net}.2/24 brd {net}.255 scope global eth0" in addr
    assert "state UP" in addr or "LOWER_UP" in addr
    assert "UP" in ipj("-n", ns, "link", "show", "lo")[0]["flags"]
    assert f"default via {net}.1 dev eth0" in ip("-n", ns, "route")
    assert host_end not in ip("-n", ns, "link")            # only the peer was born inside

    # Host -> container over TCP, through the bridge.
    port = random.randrange(20000, 60000)
    server = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-S", "-c", SERVER, f"{net}.2",
                               str(port)], stdout=subprocess.PIPE, text=True)
    made.procs.append(server)
    assert wait_line(server) == "ready"
    with socket.create_connection((f"{net}.2", port), timeout=5) as c:
        c.sendall(b"ping")
        reply = c.recv(200)
    assert reply == f"pong:ping from {net}.1".encode()
    server.wait(timeout=10)

    # Container -> host over TCP through the default route: a host address outside the
    # container's subnet (a /32 on the bridge) is reachable only via the gateway.
    far = f"10.215.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    ip("addr", "add", f"{far}/32", "dev", br)
    port2 = random.randrange(20000, 60000)
    hostsrv = subprocess.Popen([PY, "-S", "-c", SERVER, far, str(port2)], stdout=subprocess.PIPE,
                               text=True)
    made.procs.append(hostsrv)
    assert wait_line(hostsrv) == "ready"
    client = subprocess.run(
        ["ip", "netns", "exec", ns, PY, "-S", "-c",
         "import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])), 5);"
         "c.sendall(b'hi'); print(c.recv(200).decode())", far, str(port2)],
        capture_output=True, text=True, timeout=30)
    assert client.stdout.strip() == f"pong:hi from {net}.2", client.stderr
    assert f"via {net}.1 dev eth0" in ip("-n", ns, "route", "get", far)

    # Teardown: deleting the host end removes the pair; then the bridge.
    with Netlink() as nl:
        assert nl.delete_link(host_end) is True
        assert nl.link_index(host_end) is None
        assert nl.delete_link(host_end) is False
    assert "eth0" not in ip("-n", ns, "link")
    assert bridge.delete_bridge(br) is True
    assert bridge.delete_bridge(br) is False
    assert not host_links() & {host_end, br}


def test_mtu_follows_the_bridge(made):
    br, br_index, net, ns, fd, host_end = container_net(made, mtu=1400)
    assert ipj("link", "show", br)[0]["mtu"] == 1400          # pinned: ports do not move it
    assert ipj("link", "show", host_end)[0]["mtu"] == 1400
    assert ipj("-n", ns, "link", "show", "eth0")[0]["mtu"] == 1400
    with Netlink(fd) as inner:
        assert inner.link_mtu("eth0") == 1400
        inner.set_mtu("eth0", 1300)
        assert inner.link_mtu("eth0") == 1300


def test_netns_socket_leaves_the_thread_where_it_was(made):
    ns, fd = made.ns()
    before = os.readlink("/proc/thread-self/ns/net")
    inner = Netlink(fd)
    try:
        assert os.readlink("/proc/thread-self/ns/net") == before
        # The socket speaks to the namespace it was born in: only lo there.
        assert inner.link_index("lo") == 1
        assert inner.link_index("eth0") is None
        inner.set_up("lo")
    finally:
        inner.close()
    assert "UP" in ipj("-n", ns, "link", "show", "lo")[0]["flags"]


def test_set_master_down_and_release(made):
    br, br_index, _net = made.bridge()
    a, b = made.name(), made.name()
    made.links.append(a)
    with Netlink() as nl:
        nl.create_veth(a, b)                          # both ends here, down, no master
        assert ipj("link", "show", a)[0].get("master") is None
        index = nl.link_index(a)
        nl.set_master(index, br_index)
        assert ipj("link", "show", a)[0]["master"] == br
        assert nl.get_link(a)["master"] == br_index
        nl.set_up(a)
        nl.set_up(b)
        assert "UP" in ipj("link", "show", a)[0]["flags"]
        nl.set_down(a)
        assert "UP" not in ipj("link", "show", a)[0]["flags"]
        nl.set_master(a, 0)
        assert ipj("link", "show", a)[0].get("master") is None
        assert nl.delete_link(b) is True              # either end takes the pair
        assert nl.link_index(a) is None


def test_errors_carry_errno_and_what(made):
    ns, fd = made.ns()
    a = made.name()
    made.links.append(a)
    with Netlink() as nl:
        nl.create_veth(a, "eth0", peer_netns_fd=fd)
        with pytest.raises(FileExistsError, match=rf"netlink: create veth {a}/eth1: File exists"):
            nl.create_veth(a, "eth1", peer_netns_fd=fd)
        with pytest.raises(OSError) as e:
            nl.add_address("sktnosuch0", "10.214.0.2/24")
        assert e.value.errno == errno.ENODEV
        with pytest.raises(OSError) as e:
            nl.set_up("sktnosuch0")
        assert e.value.errno == errno.ENODEV
        assert nl.delete_link("sktnosuch0") is False
        with pytest.raises(OSError) as e:
            nl.link_mtu("sktnosuch0")
        assert e.value.errno == errno.ENODEV
    with Netlink(fd) as inner:
        inner.add_address("eth0", "10.214.0.2/24")
        with pytest.raises(FileExistsError):
            inner.add_address("eth0", "10.214.0.2/24")
        with pytest.raises(OSError) as e:                # eth0 is down: no route via it yet
            inner.add_default_route("10.214.0.1")
        assert e.value.errno in (errno.ENETDOWN, errno.ENETUNREACH)
        inner.set_up("eth0")
        with pytest.raises(OSError) as e:                # not on any link
            inner.add_default_route("10.99.0.1")
        assert e.value.errno == errno.ENETUNREACH


def test_ipv6_address_without_dad(made):
    ns, fd = made.ns()
    a = made.name()
    made.links.append(a)
    with Netlink() as nl:
        nl.create_veth(a, "eth0", peer_netns_fd=fd, up=True)
    with Netlink(fd) as inner:
        inner.set_up("eth0")
        inner.add_address("eth0", "fd00:214::2/64")
        inner.add_default_route("fd00:214::1", "eth0")
    out = ip("-n", ns, "-6", "addr", "show", "eth0")
    (line,) = [x for x in out.splitlines() if "fd00:214::2/64" in x]
    assert "scope global" in line and "tentative" not in line
    assert "default via fd00:214::1 dev eth0" in ip("-n", ns, "-6", "route")


def test_netlink_after_unshare_in_the_process_itself():
    """A container's init: unshare(CLONE_NEWNET), then Netlink() configures its own netns."""
    code = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from skiff.runtime.kernel import kernel, CLONE_NEWNET
        from skiff.runtime.network.rtnl import Netlink
        kernel.unshare(CLONE_NEWNET)
        with Netlink() as nl:
            before = nl.get_link("lo")["flags"] & 1
            nl.set_up("lo")
            print(before, nl.get_link("lo")["flags"] & 1, nl.link_index("eth0"))
    """)
    out = subprocess.run([PY, "-S", "-c", code, REPO], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["0", "1", "None"], out.stderr


def test_ensure_bridge_idempotent_and_race_safe(made):
    name = made.name()
    made.bridges.append(name)
    cidr = f"10.214.{random.randrange(1, 255)}.1/24"
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "from skiff.runtime.network.bridge import ensure_bridge;"
            "print(ensure_bridge(sys.argv[2], sys.argv[3], 1450))")
    procs = [subprocess.Popen([PY, "-c", code, REPO, name, cidr], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    indexes = {int(o[0]) for o in outs}
    assert len(indexes) == 1
    assert bridge.ensure_bridge(name, cidr, 1450) in indexes
    assert bridge.bridge_address(name) == [cidr]
    info = bridge.link_info(name)
    assert info["kind"] == "bridge" and info["mtu"] == 1450 and info["up"]
    assert ipj("-d", "link", "show", name)[0]["linkinfo"]["info_kind"] == "bridge"
    # A non-bridge of that name is not taken over.
    other = made.name()
    made.links.append(other)
    ip("link", "add", other, "type", "veth", "peer", "name", made.name())
    with pytest.raises(FileExistsError):
        bridge.ensure_bridge(other, cidr)
    with pytest.raises(OSError):
        bridge.delete_bridge(other)
    assert bridge.delete_bridge(name) is True
    assert bridge.bridge_address(name) == []
    assert bridge.link_info(name) is None


def test_bridge_mac_is_fixed_as_ports_come_and_go(made):
    br, br_index, _net = made.bridge()
    mac = ipj("link", "show", br)[0]["address"]
    a = made.name()
    made.links.append(a)
    with Netlink() as nl:
        nl.create_veth(a, made.name(), master_index=br_index, up=True, mac="02:00:00:00:00:01")
        assert ipj("link", "show", br)[0]["address"] == mac
        nl.delete_link(a)
    assert ipj("link", "show", br)[0]["address"] == mac


def test_many_containers_on_one_bridge_timing(made):
    """Ten container setups in a row: all work, and each stays far under the 15 ms budget."""
    br, br_index, net = made.bridge()
    times = []
    for i in range(10):
        ns, fd = made.ns()
        host_end = made.name()
        made.links.append(host_end)
        t = time.perf_counter()
        with Netlink() as nl:
            nl.create_veth(host_end, "eth0", peer_netns_fd=fd, mtu=1500, master_index=br_index,
                           up=True)
        with Netlink(fd) as inner:
            inner.add_address("eth0", f"{net}.{10 + i}/24")
            inner.set_up("lo")
            inner.set_up("eth0")
            inner.add_default_route(f"{net}.1")
        times.append((time.perf_counter() - t) * 1000)
    masters = {link["ifname"]: link.get("master") for link in ipj("link", "show")}
    assert all(masters[n] == br for n in made.links)
    times.sort()
    assert times[len(times) // 2] < 15, times
