"""The cluster DNS (skiff.agent.clusterdns): answers built from Service and EndpointSlice
dicts, the pod's resolv.conf for ClusterFirst, and real queries over UDP and TCP to a server on
127.0.0.1 (forwarding only to a fake upstream on 127.0.0.1)."""
from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from skiff.agent.clusterdns import ClusterDNS, PodDNS, StaticSource, read_resolv_conf
from skiff.agent.podruntime import pod_dns


def svc(name, ns="default", cluster_ip="10.96.0.10", ports=None, **spec):
    s = {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip] if cluster_ip else [],
         "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}
    s.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": s}


def eps_slice(name, service, ns="default", endpoints=(), ports=None):
    return {"metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def ep(ip, ready=True, hostname=None):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


SERVICES = [
    svc("web"),
    svc("db", cluster_ip="None"),
    svc("ext", cluster_ip=None, type="ExternalName", externalName="db.example.org"),
    svc("alias", cluster_ip=None, type="ExternalName", externalName="web.default.svc.cluster.local"),
    svc("api", ns="team", cluster_ip="10.96.0.20"),
]
SLICES = [
    eps_slice("db-a", "db", endpoints=[ep("10.244.1.5", hostname="db-0"), ep("10.244.2.6")]),
    eps_slice("db-b", "db", endpoints=[ep("10.244.3.7", ready=False)]),
    eps_slice("web-a", "web", endpoints=[ep("10.244.1.9")]),
]


def dns(**kw) -> ClusterDNS:
    d = ClusterDNS("cluster.local", **kw)
    d.attach(StaticSource(SERVICES), StaticSource(SLICES))
    return d


def ask(d: ClusterDNS, name: str, qtype: str = "A") -> DNSRecord:
    reply, _ = d.answer(DNSRecord.question(name, qtype))
    assert reply is not None
    return reply


def values(reply: DNSRecord, rtype: str | None = None) -> list[str]:
    return sorted(str(r.rdata) for r in reply.rr if rtype is None or QTYPE[r.rtype] == rtype)


def test_cluster_ip_service():
    d = dns()
    r = ask(d, "web.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NOERROR and r.header.aa
    assert values(r) == ["10.96.0.10"]
    assert values(ask(d, "WEB.Default.svc.cluster.local.")) == ["10.96.0.10"]   # any case
    assert values(ask(d, "api.team.svc.cluster.local")) == ["10.96.0.20"]


def test_known_name_other_type_is_nodata():
    d = dns()
    for qtype in ("AAAA", "MX", "TXT"):
        r = ask(d, "web.default.svc.cluster.local", qtype)
        assert r.header.rcode == RCODE.NOERROR and not r.rr
        assert [QTYPE[a.rtype] for a in r.auth] == ["SOA"]     # for negative caching


def test_unknown_names_are_nxdomain():
    d = dns()
    for name in ("nope.default.svc.cluster.local", "web.other.svc.cluster.local",
                 "x.cluster.local", "a.b.c.d.e.f.cluster.local", "web.default.pod.cluster.local",
                 "other.svc.cluster.local"):
        assert ask(d, name).header.rcode == RCODE.NXDOMAIN, name
    # names that exist without records of their own
    for name in ("cluster.local", "svc.cluster.local", "default.svc.cluster.local"):
        r = ask(d, name)
        assert r.header.rcode == RCODE.NOERROR and not r.rr, name


def test_headless_service_gives_ready_endpoints():
    d = dns()
    r = ask(d, "db.default.svc.cluster.local")
    assert values(r) == ["10.244.1.5", "10.244.2.6"]        # not the unready 10.244.3.7
    assert values(ask(d, "db-0.db.default.svc.cluster.local")) == ["10.244.1.5"]
    assert values(ask(d, "10-244-2-6.db.default.svc.cluster.local")) == ["10.244.2.6"]
    assert ask(d, "db-1.db.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_slice_changes_are_followed():
    d = ClusterDNS()
    slices = StaticSource([])
    d.attach(StaticSource(SERVICES), slices)
    assert ask(d, "db.default.svc.cluster.local").rr == []
    s = eps_slice("db-x", "db", endpoints=[ep("10.244.9.9")])
    d._on_slice("ADDED", s)
    assert values(ask(d, "db.default.svc.cluster.local")) == ["10.244.9.9"]
    d._on_slice("MODIFIED", {**s, "endpoints": [ep("10.244.9.8")]})
    assert values(ask(d, "db.default.svc.cluster.local")) == ["10.244.9.8"]
    d._on_slice("DELETED", s)
    assert ask(d, "db.default.svc.cluster.local").rr == []


def test_external_name_is_a_cname():
    d = dns()
    r, chase = d.answer(DNSRecord.question("ext.default.svc.cluster.local", "A"))
    assert values(r, "CNAME") == ["db.example.org."] and chase == "db.example.org."
    # a target inside the cluster domain is resolved at once
    r, chase = d.answer(DNSRecord.question("alias.default.svc.cluster.local", "A"))
    assert chase is None
    assert values(r, "CNAME") == ["web.default.svc.cluster.local."] and values(r, "A") == ["10.96.0.10"]


def test_srv_for_named_ports():
    d = dns()
    r = ask(d, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(x.rdata.port, str(x.rdata.target)) for x in r.rr] == [(80, "web.default.svc.cluster.local.")]
    assert [str(x.rdata) for x in r.ar] == ["10.96.0.10"]
    r = ask(d, "_http._tcp.db.default.svc.cluster.local", "SRV")
    assert sorted((x.rdata.port, str(x.rdata.target)) for x in r.rr) == [
        (8080, "10-244-2-6.db.default.svc.cluster.local."), (8080, "db-0.db.default.svc.cluster.local.")]
    assert ask(d, "_grpc._tcp.web.default.svc.cluster.local", "SRV").header.rcode == RCODE.NXDOMAIN


def test_pod_names():
    d = dns()
    assert values(ask(d, "10-244-1-9.default.pod.cluster.local")) == ["10.244.1.9"]
    assert ask(d, "10-244-1.default.pod.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_servfail_until_the_informers_listed_and_outside_names_are_not_ours():
    d = ClusterDNS()
    r, _ = d.answer(DNSRecord.question("web.default.svc.cluster.local"))
    assert r.header.rcode == RCODE.SERVFAIL
    assert dns().answer(DNSRecord.question("example.org")) == (None, None)
    assert dns().answer(DNSRecord.question("cluster.local.example.org")) == (None, None)


def test_other_domain():
    d = ClusterDNS("Corp.Test.")
    d.attach(StaticSource(SERVICES), StaticSource(SLICES))
    assert values(ask(d, "web.default.svc.corp.test")) == ["10.96.0.10"]
    assert d.answer(DNSRecord.question("web.default.svc.cluster.local")) == (None, None)
    with pytest.raises(ValueError):
        ClusterDNS("bad domain")


def test_pod_resolv_conf_for_cluster_first(tmp_path):
    cluster = PodDNS("10.244.0.1", "cluster.local", ("corp.test",))
    want_search = ["team.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.test"]
    assert pod_dns({}, "team", cluster) == (["10.244.0.1"], want_search, ["ndots:5"])
    assert pod_dns({"dnsPolicy": "ClusterFirstWithHostNet"}, "team", cluster)[0] == ["10.244.0.1"]
    # dnsConfig is merged in, as the kubelet does
    got = pod_dns({"dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["x.example"],
                                 "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
                  "team", cluster)
    assert got == (["10.244.0.1", "192.0.2.1"], want_search + ["x.example"], ["ndots:2", "edns0"])
    # Default, None, a hostNetwork pod's ClusterFirst, and no cluster DNS: as before
    assert pod_dns({"dnsPolicy": "Default"}, "team", cluster) == ([], [], [])
    assert pod_dns({"hostNetwork": True}, "team", cluster) == ([], [], [])
    assert pod_dns({}, "team", None) == ([], [], [])
    assert pod_dns({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"]}}, "team",
                   cluster) == (["192.0.2.1"], [], [])
    f = tmp_path / "resolv.conf"
    f.write_text("# x\nnameserver 127.0.0.53\nnameserver bogus\nsearch a.test b.test\noptions edns0\n")
    assert read_resolv_conf(str(f)) == (["127.0.0.53"], ["a.test", "b.test"])
    assert read_resolv_conf(str(tmp_path / "missing")) == ([], [])


# -- real sockets on 127.0.0.1 -------------------------------------------------------------------

class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A query with 192.0.2.1 (and records the names asked)."""

    def __init__(self):
        self.asked: list[str] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        q = DNSRecord.parse(data)
        self.asked.append(str(q.q.qname))
        r = q.reply(aa=0)
        r.add_answer(RR(q.q.qname, QTYPE.A, ttl=60, rdata=A("192.0.2.1")))
        self.transport.sendto(r.pack(), addr)


async def udp_query(port: int, name: str, qtype: str = "A", timeout: float = 5.0) -> DNSRecord:
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
        q = DNSRecord.question(name, qtype)
        await loop.sock_sendall(s, q.pack())
        data = await asyncio.wait_for(loop.sock_recv(s, 65535), timeout)
        r = DNSRecord.parse(data)
        assert r.header.id == q.header.id
        return r
    finally:
        s.close()


async def tcp_query(port: int, name: str, qtype: str = "A") -> DNSRecord:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = DNSRecord.question(name, qtype).pack()
        writer.write(struct.pack("!H", len(data)) + data)
        n = struct.unpack("!H", await reader.readexactly(2))[0]
        return DNSRecord.parse(await reader.readexactly(n))
    finally:
        writer.close()


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


@pytest.mark.asyncio
async def test_udp_and_tcp_queries_and_forwarding():
    loop = asyncio.get_running_loop()
    up_transport, upstream = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    up_port = up_transport.get_extra_info("sockname")[1]
    dead = free_udp_port()          # nothing listens there: the next upstream is asked
    d = dns(upstreams=[("127.0.0.1", dead), ("127.0.0.1", up_port)], timeout=1.0)
    port = await d.start("127.0.0.1", 0)
    try:
        r = await udp_query(port, "web.default.svc.cluster.local")
        assert values(r) == ["10.96.0.10"]
        r = await tcp_query(port, "db.default.svc.cluster.local")
        assert values(r) == ["10.244.1.5", "10.244.2.6"]
        r = await udp_query(port, "nope.default.svc.cluster.local")
        assert r.header.rcode == RCODE.NXDOMAIN
        # outside the cluster domain: forwarded to the (fake) upstream
        r = await udp_query(port, "outside.test")
        assert values(r) == ["192.0.2.1"] and upstream.asked == ["outside.test."]
        # an ExternalName's outside target is chased upstream
        r = await udp_query(port, "ext.default.svc.cluster.local")
        assert values(r, "CNAME") == ["db.example.org."] and values(r, "A") == ["192.0.2.1"]
        # garbage gets no answer, and the server still serves
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"\x01", ("127.0.0.1", port))
        s.close()
        assert values(await udp_query(port, "web.default.svc.cluster.local")) == ["10.96.0.10"]
    finally:
        await d.stop()
        up_transport.close()
    # stopped: the sockets are closed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


@pytest.mark.asyncio
async def test_upstream_failure_is_servfail_and_a_taken_port_raises():
    dead = free_udp_port()
    d = dns(upstreams=[("127.0.0.1", dead)], timeout=0.5)
    port = await d.start("127.0.0.1", 0)
    try:
        r = await udp_query(port, "outside.test")
        assert r.header.rcode == RCODE.SERVFAIL
        other = ClusterDNS()
        with pytest.raises(OSError):
            await other.start("127.0.0.1", port)
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_large_udp_answer_is_truncated_and_tcp_has_it_all():
    many = [ep(f"10.244.{i // 200}.{i % 200 + 1}") for i in range(100)]
    d = ClusterDNS()
    d.attach(StaticSource([svc("big", cluster_ip="None")]), StaticSource([eps_slice("big-a", "big", endpoints=many)]))
    port = await d.start("127.0.0.1", 0)
    try:
        r = await udp_query(port, "big.default.svc.cluster.local")
        assert r.header.tc and not r.rr
        r = await tcp_query(port, "big.default.svc.cluster.local")
        assert len(r.rr) == 100
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_agent_falls_back_when_port_53_is_taken(tmp_path):
    from types import SimpleNamespace

    from skiff.agent.agent import Agent, AgentConfig
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nsearch corp.test\n")
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        cfg = AgentConfig(server="https://127.0.0.1:1", node_name="n1", node_ip="127.0.0.1",
                          resolv_conf=str(resolv), dns_port=taken.getsockname()[1])
        agent = Agent(cfg)
        agent.runtime = SimpleNamespace(pod_gateway=lambda: "127.0.0.1", cluster_dns=None)
        await agent._start_cluster_dns()
        assert agent.cluster_dns is None and agent.runtime.cluster_dns is None   # ClusterFirst = Default
        cfg.dns_port = 0
        await agent._start_cluster_dns()
        try:
            assert agent.runtime.cluster_dns == PodDNS("127.0.0.1", "cluster.local", ("corp.test",))
            assert agent.cluster_dns.upstreams == [("127.0.0.1", 53)]
        finally:
            await agent.cluster_dns.stop()
    finally:
        taken.close()


@pytest.mark.asyncio
async def test_port_0_takes_a_port_free_for_udp_and_tcp(monkeypatch):
    """Another program may hold the TCP side of the UDP port the kernel picked (loopback is
    shared): that port is let go and another tried, so TCP is served too."""
    import errno
    import socket as S
    real = S.socket
    refused = []

    class Taken(real):
        def bind(self, addr):
            if self.type == S.SOCK_STREAM and not refused:
                refused.append(addr[1])
                raise OSError(errno.EADDRINUSE, "Address already in use")
            return super().bind(addr)
    monkeypatch.setattr(S, "socket", Taken)
    d = ClusterDNS()
    d.attach(StaticSource([svc("web", cluster_ip="10.96.0.10")]), StaticSource([]))
    port = await d.start("127.0.0.1", 0)
    monkeypatch.setattr(S, "socket", real)
    try:
        assert refused and d._tcp is not None
        r = await tcp_query(port, "web.default.svc.cluster.local")
        assert [str(x.rdata) for x in r.rr] == ["10.96.0.10"]
    finally:
        await d.stop()
