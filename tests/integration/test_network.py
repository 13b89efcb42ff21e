"""Container networking with real traffic: bridges, published ports, container:NAME, DNS files.

Every test has its own root whose daemon.json names its own default bridge and subnet
(tests/conftest.py); traffic goes only to loopback and to namespaces the tests made.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root]

SERVE = "echo hello-from-{n} > /tmp/index.html; exec httpd -f -p {port} -h /tmp"
GET = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}"


def run_d(skiff, *args) -> str:
    return skiff.ok("run", "-d", *args).strip()


def inspect(skiff, ref) -> dict:
    return json.loads(skiff.ok("inspect", ref))[0]


def ip_of(skiff, ref) -> str:
    return inspect(skiff, ref)["NetworkSettings"]["IPAddress"]


def wait_port(host: str, port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode(errors="replace")


def output_until(fetch, needle: str, tries: int, pause: float = 0.1) -> str:
    """Call ``fetch()`` until its output holds ``needle`` (a server may still be starting)."""
    out = ""
    for _ in range(tries):
        out = fetch()
        if needle in out:
            break
        time.sleep(pause)
    return out


def change_bip(skiff) -> dict:
    """Give the root's default bridge a new random subnet in its daemon.json; returns the config."""
    cfg_path = os.path.join(skiff.root, "daemon.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    tag = uuid.uuid4().hex
    cfg["bip"] = f"10.{100 + int(tag[:2], 16) % 100}.{int(tag[2:4], 16)}.1/24"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return cfg


def released(skiff, cid: str) -> bool:
    return cid not in json.loads(skiff.ok("network", "inspect", "bridge"))[0]["Containers"]


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def test_bridge_gives_eth0_address_route_and_mtu(busybox):
    cfg = json.load(open(os.path.join(busybox.root, "daemon.json")))
    out = busybox.ok("run", "--rm", "busybox", "sh", "-c",
                     "ip -4 addr show eth0; ip route; cat /sys/class/net/eth0/mtu")
    prefix = cfg["bip"].rsplit(".", 1)[0] + "."
    assert f"inet {prefix}" in out
    assert f"default via {cfg['bip'].split('/')[0]} dev eth0" in out
    bridge_mtu = open(f"/sys/class/net/{cfg['bridge']}/mtu").read().strip()
    assert out.strip().splitlines()[-1] == bridge_mtu


def test_same_bridge_containers_talk_over_tcp(busybox):
    a = run_d(busybox, "busybox", "sh", "-c", SERVE.format(n="a", port=8080))
    ip = ip_of(busybox, a)
    assert ip
    out = output_until(lambda: busybox("run", "--rm", "busybox", "sh", "-c",
                                       GET.format(ip=ip, port=8080)).stdout, "hello-from-a", 50)
    assert "hello-from-a" in out


def test_different_networks_are_isolated(busybox):
    tag = uuid.uuid4().hex[:6]
    n1, n2 = f"n1{tag}", f"n2{tag}"
    busybox.ok("network", "create", n1)
    busybox.ok("network", "create", n2)
    a = run_d(busybox, "--network", n1, "busybox", "sh", "-c", SERVE.format(n="a", port=8080))
    ip = ip_of(busybox, a)
    same = busybox("run", "--rm", "--network", n1, "busybox", "sh", "-c",
                   "for i in 1 2 3 4 5 6 7 8 9 10; do " + GET.format(ip=ip, port=8080)
                   + " && exit 0; sleep 0.2; done; exit 1")
    assert "hello-from-a" in same.stdout
    other = busybox("run", "--rm", "--network", n2, "busybox", "sh", "-c",
                    GET.format(ip=ip, port=8080).replace("-w 3", "-w 1"))
    assert "hello-from-a" not in other.stdout


def test_published_port_reachable_from_host_loopback(busybox):
    c = run_d(busybox, "-p", "127.0.0.1::8080", "busybox", "sh", "-c", SERVE.format(n="p", port=8080))
    line = busybox.ok("port", c).strip()
    assert line.startswith("8080/tcp -> 127.0.0.1:")
    port = int(line.rsplit(":", 1)[1])
    assert busybox.ok("port", c, "8080").strip() == f"127.0.0.1:{port}"
    ps = busybox.ok("ps")
    assert f"127.0.0.1:{port}->8080/tcp" in ps
    wait_port("127.0.0.1", port)
    body = output_until(lambda: http_get("127.0.0.1", port), "hello-from-p", 30)
    assert "hello-from-p" in body
    ports = inspect(busybox, c)["NetworkSettings"]["Ports"]
    assert ports == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}


@pytest.fixture
def other_host():
    """A second 'host': a network namespace joined to this one by a veth pair."""
    tag = uuid.uuid4().hex[:8]
    ns, host_end, ns_end = f"skt-h{tag}", f"skh{tag}", f"skn{tag}"
    sub = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end,
                        "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{sub}.1/30", "dev", host_end], check=True)
        subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{sub}.2/30", "dev", ns_end],
                    ["ip", "link", "set", ns_end, "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns, f"{sub}.1"
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_published_port_reachable_from_another_host(busybox, other_host):
    ns, host_ip = other_host
    c = run_d(busybox, "-p", "8080", "busybox", "sh", "-c", SERVE.format(n="x", port=8080))
    port = int(busybox.ok("port", c, "8080").strip().rsplit(":", 1)[1])
    wait_port("127.0.0.1", port)
    code = ("import socket,sys\n"
            f"s=socket.create_connection(('{host_ip}',{port}),timeout=3)\n"
            "s.sendall(b'GET /index.html HTTP/1.0\\r\\n\\r\\n')\n"
            "d=b''\nwhile True:\n c=s.recv(4096)\n if not c: break\n d+=c\n"
            "sys.stdout.write(d.decode())\n")
    out = output_until(lambda: subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", code],
                                              capture_output=True, text=True, timeout=10).stdout,
                       "hello-from-x", 20)
    assert "hello-from-x" in out


def test_container_mode_shares_the_network_namespace(busybox):
    a = run_d(busybox, "--name", "net1", "busybox", "sleep", "30")
    show = "ip -4 -o addr show; readlink /proc/self/ns/net; ls /sys/class/net"
    in_a = busybox.ok("exec", a, "sh", "-c", show)
    in_b = busybox.ok("run", "--rm", "--network", "container:net1", "busybox", "sh", "-c", show)
    assert in_a == in_b
    assert ip_of(busybox, a) in in_b


def test_hostname_dns_and_hosts_files(busybox):
    out = busybox.ok("run", "--rm", "-h", "myhost", "--dns", "10.0.0.53", "--dns-search",
                     "example.test", "--add-host", "db:10.1.2.3", "busybox", "sh", "-c",
                     "hostname; cat /etc/resolv.conf; cat /etc/hosts; ip -4 -o addr show eth0;"
                     " grep -E ' /etc/(hosts|hostname|resolv.conf) ' /proc/self/mountinfo | wc -l")
    lines = out.splitlines()
    assert lines[0] == "myhost"
    assert "nameserver 10.0.0.53" in out and "search example.test" in out
    assert "10.1.2.3\tdb" in out
    ip = next(l for l in lines if "eth0" in l).split()[3].split("/")[0]
    assert f"{ip}\tmyhost" in out
    assert lines[-1].strip() == "3"  # bind-mounted files, as in docker


def test_port_conflict_fails_cleanly(busybox):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        before = host_links()
        p = busybox("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30")
        assert p.returncode == 125
        assert "port is already allocated" in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        assert busybox.ok("ps", "-a", "-q").strip() == ""
        assert host_links() <= before | {json.load(open(os.path.join(busybox.root, "daemon.json")))["bridge"]}
        nets = json.loads(busybox.ok("network", "inspect", "bridge"))
        assert nets[0]["Containers"] == {}
    finally:
        s.close()


def test_rm_leaves_nothing_behind(busybox):
    before = host_links()
    c = run_d(busybox, "-p", "127.0.0.1::8080", "busybox", "sleep", "30")
    veth = "veth" + c[:11]
    assert veth in host_links()
    rules = subprocess.run(["nft", "-j", "list", "table", "inet", "skiff"], capture_output=True, text=True).stdout
    assert c[:12] in rules or c in rules
    busybox.ok("rm", "-f", c)
    deadline = time.monotonic() + 5
    while veth in host_links() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert veth not in host_links()
    rules = subprocess.run(["nft", "-j", "list", "table", "inet", "skiff"], capture_output=True, text=True).stdout
    assert c not in rules and c[:12] not in rules
    assert json.loads(busybox.ok("network", "inspect", "bridge"))[0]["Containers"] == {}
    assert host_links() - before <= {json.load(open(os.path.join(busybox.root, "daemon.json")))["bridge"]}


def test_parallel_runs_get_distinct_addresses(busybox):
    procs = [busybox.popen("run", "-d", "busybox", "sleep", "30", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(20)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        ids.append(out.strip())
    ips = {ip_of(busybox, i) for i in ids}
    assert len(ips) == 20 and "" not in ips


def test_network_rm_refused_while_used_and_bridge_recreated_with_new_bip(busybox):
    c = run_d(busybox, "busybox", "sleep", "30")
    p = busybox("network", "rm", "bridge")
    assert p.returncode != 0 and "active endpoints" in p.stderr
    busybox.ok("rm", "-f", c)
    busybox.ok("network", "rm", "bridge")
    cfg = change_bip(busybox)
    out = busybox.ok("run", "--rm", "busybox", "ip", "route")
    assert f"default via {cfg['bip'].split('/')[0]}" in out


def test_address_released_when_the_container_exits_or_its_monitor_dies(busybox):
    c = run_d(busybox, "busybox", "sleep", "30")
    net = json.loads(busybox.ok("network", "inspect", "bridge"))[0]
    assert c in net["Containers"]
    busybox.ok("kill", c)
    assert output_until(lambda: "yes" if released(busybox, c) else "", "yes", 100, 0.05), \
        "address not released after exit"
    # a container whose monitor was killed (no clean stop): released when it is noticed
    d = run_d(busybox, "busybox", "sleep", "30")
    with open(os.path.join(busybox.root, "containers", d, "state.json")) as f:
        mon = json.load(f)["monitor_pid"]
    os.kill(mon, 9)
    # readers (ps) notice the dead monitor and clean up after it
    assert output_until(lambda: "yes" if busybox.ok("ps", "-a") and released(busybox, d) else "",
                        "yes", 100, 0.05), "address not released after the monitor died"


def test_changed_bip_applies_at_next_start_when_unused(busybox):
    busybox.ok("run", "--rm", "busybox", "true")  # the default network exists now
    cfg = change_bip(busybox)
    out = busybox.ok("run", "--rm", "busybox", "ip", "route")
    assert f"default via {cfg['bip'].split('/')[0]}" in out
    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show", cfg["bridge"]], capture_output=True,
                           text=True).stdout
    assert cfg["bip"] in addrs


@pytest.fixture
def outside_peer():
    """A namespace the test made, reached from the host over a veth (a stand-in for another
    host beyond the bridge): its address, and a one-line TCP greeter in it on a free port."""
    tag = uuid.uuid4().hex[:6]
    ns, host_end, peer_end = f"skt-out{tag}", f"skt-o{tag}", f"skt-p{tag}"
    b = int(tag[:2], 16)
    host_ip, peer_ip = f"198.18.{b}.1", f"198.18.{b}.2"
    server = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", peer_end,
                        "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_end], check=True)
        subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{peer_ip}/30", "dev", peer_end],
                    ["ip", "link", "set", peer_end, "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        code = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                f"s.bind(({peer_ip!r},0));s.listen(8);print(s.getsockname()[1],flush=True)\n"
                "while True:\n c,_=s.accept();c.sendall(b'hello-from-outside\\n');c.close()\n")
        server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code],
                                  stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        yield peer_ip, port
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.parametrize("user_network", [False, True])
def test_container_reaches_beyond_the_bridge_and_gets_replies(busybox, outside_peer, user_network):
    """A container's own outgoing connection leaves masqueraded, and the replies, coming back
    on another interface, are let in: the isolation of a network drops only what others start."""
    ip, port = outside_peer
    args = []
    if user_network:
        net = f"o{uuid.uuid4().hex[:6]}"
        busybox.ok("network", "create", net)
        args = ["--network", net]
    out = busybox("run", "--rm", *args, "busybox", "sh", "-c", f"nc -w 3 {ip} {port} </dev/null")
    assert "hello-from-outside" in out.stdout, out.stderr
