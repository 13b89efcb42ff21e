"""Cluster DNS on the node: what CoreDNS's kubernetes plugin does, inside the agent.

The agent answers DNS on its pod bridge's gateway address (the .1 of its podCIDR), port 53,
UDP and TCP; pods with ``dnsPolicy: ClusterFirst`` get it as their only nameserver (see
:func:`skiff.agent.podruntime.pod_dns`). The answers come from the service proxy's own
Service and EndpointSlice informers (no second watch):

    <svc>.<ns>.svc.<domain>            A: the ClusterIP; a headless Service (clusterIP None):
                                       its ready endpoints' addresses; ExternalName: a CNAME
                                       (and, for A/AAAA, the target's records when it resolves)
    <host>.<svc>.<ns>.svc.<domain>     A: a headless Service's endpoint, by its hostname or its
                                       dashed address (10-244-1-5)
    _<port>._<proto>.<svc>.<ns>.svc.<domain>   SRV for a named port (the bare service name
                                       gives every named port)
    <a-b-c-d>.<ns>.pod.<domain>        A: a-b-c-d (CoreDNS's "pods insecure")

A known name asked for another type gets NOERROR without answers; an unknown name under the
cluster domain NXDOMAIN (both with the zone's SOA, for negative caching). Until both informers
have listed once, names under the cluster domain get SERVFAIL. Every other name is forwarded
as it is to the host's nameservers (``--resolv-conf``; the forwarder runs on the host, so a
loopback stub resolver there is fine), one after the other, each with a timeout; SERVFAIL when
none answers.

Left out: PTR records for cluster addresses (reverse queries are forwarded), IPv6 service
addresses in headless answers beyond AAAA of IPv6 slices, DNSSEC, zone transfers, and a cache
of forwarded answers.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, EDNS0, QTYPE, RCODE, RR, SOA, SRV, A, DNSHeader, DNSRecord

log = logging.getLogger("skiff.agent.clusterdns")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_DOMAIN = "cluster.local"
TTL = 5                    # CoreDNS's kubernetes plugin's default
MAX_INFLIGHT = 256         # forwarded queries at once; more get SERVFAIL
TCP_IDLE = 10.0            # seconds a client's TCP connection may stay idle
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)   # bind the gateway before the bridge exists


@dataclass(frozen=True)
class PodDNS:
    """What a ClusterFirst pod's resolv.conf is made of (PodRuntime.cluster_dns)."""
    nameserver: str
    domain: str = DEFAULT_DOMAIN
    host_search: tuple[str, ...] = ()


def read_resolv_conf(path: str = "/etc/resolv.conf") -> tuple[list[str], list[str]]:
    """(nameservers, search domains) of a resolv.conf; a missing file has neither."""
    servers: list[str] = []
    search: list[str] = []
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return servers, search
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            try:
                servers.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
            except ValueError:
                continue
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
    return servers, search


def normalize_domain(domain: str) -> str:
    d = domain.strip().strip(".").lower()
    labels = d.split(".")
    if not d or any(not lab or len(lab) > 63 or not all(c.isalnum() or c == "-" for c in lab)
                    for lab in labels):
        raise ValueError(f"invalid cluster domain {domain!r}")
    return d


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


class StaticSource:
    """A fixed set of objects with the read API the DNS uses of an Informer (for tests and
    tools): ``get_object``, ``list``, ``add_handler`` (replays them), ``synced``."""

    def __init__(self, objs: list[dict]):
        self.cache = {f"{(o.get('metadata') or {}).get('namespace')}/{o['metadata']['name']}": o
                      for o in objs}
        self.synced = asyncio.Event()
        self.synced.set()

    def get_object(self, name: str, namespace: str | None = None) -> dict | None:
        return self.cache.get(f"{namespace}/{name}")

    def list(self) -> list[dict]:
        return list(self.cache.values())

    def add_handler(self, fn, *, replay: bool = True) -> None:
        for o in list(self.cache.values()):
            fn("ADDED", o, None)


@dataclass
class _Endpoint:
    ip: str
    hostname: str
    ports: list[tuple[str, str, int]] = field(default_factory=list)   # (name, protocol, port)


class ClusterDNS:
    """The records (from the attached informers), the answers, the forwarder and the sockets."""

    def __init__(self, domain: str = DEFAULT_DOMAIN, upstreams: list[tuple[str, int]] = (), *,
                 timeout: float = 2.0, ttl: int = TTL):
        self.domain = normalize_domain(domain)
        self.upstreams = list(upstreams)
        self.timeout, self.ttl = timeout, ttl
        self.services = None
        self.slices = None
        self._by_service: dict[tuple[str, str], dict[str, dict]] = {}  # (ns, svc) -> key -> slice
        self._owner: dict[str, tuple[str, str]] = {}                    # slice key -> (ns, svc)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._inflight = 0
        self.address: tuple[str, int] | None = None
        self.stats = {"queries": 0, "forwarded": 0, "failed": 0}

    # -- records ---------------------------------------------------------------------------
    def attach(self, services, slices) -> None:
        """Answer from these informers (the service proxy's)."""
        self.services, self.slices = services, slices
        slices.add_handler(self._on_slice)

    def ready(self) -> bool:
        return (self.services is not None and self.slices is not None
                and self.services.synced.is_set() and self.slices.synced.is_set())

    def _on_slice(self, etype: str, obj: dict, old: dict | None = None) -> None:
        md = obj.get("metadata") or {}
        key = f"{md.get('namespace')}/{md.get('name')}"
        prev = self._owner.pop(key, None)
        if prev is not None:
            group = self._by_service.get(prev)
            if group is not None:
                group.pop(key, None)
                if not group:
                    del self._by_service[prev]
        svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if etype != "DELETED" and svc:
            owner = (md.get("namespace") or "default", svc)
            self._owner[key] = owner
            self._by_service.setdefault(owner, {})[key] = obj

    def _endpoints(self, ns: str, svc: str, family: int) -> list[_Endpoint]:
        """The ready endpoints of a Service (of one address family), deduplicated by address."""
        want = "IPv4" if family == 4 else "IPv6"
        out: dict[str, _Endpoint] = {}
        for s in (self._by_service.get((ns, svc)) or {}).values():
            if s.get("addressType", "IPv4") != want:
                continue
            ports = [(p.get("name") or "", p.get("protocol") or "TCP", p.get("port"))
                     for p in s.get("ports") or [] if isinstance(p.get("port"), int)]
            for ep in s.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                for addr in ep.get("addresses") or []:
                    e = out.setdefault(addr, _Endpoint(addr, ep.get("hostname") or ""))
                    e.ports += [p for p in ports if p not in e.ports]
        return list(out.values())

    def _namespace_known(self, ns: str) -> bool:
        return any((s.get("metadata") or {}).get("namespace") == ns for s in self.services.list())

    # -- answers -----------------------------------------------------------------------------
    def in_domain(self, name: str) -> bool:
        n = name.rstrip(".").lower()
        return n == self.domain or n.endswith("." + self.domain)

    def answer(self, request: DNSRecord) -> tuple[DNSRecord | None, str | None]:
        """(reply, name to chase) for a query under the cluster domain; (None, None) for a
        name outside it (to forward). The name to chase is an ExternalName's target outside
        the cluster domain, whose A/AAAA records the caller may append."""
        q = request.q
        qname = str(q.qname)
        if not self.in_domain(qname):
            return None, None
        reply = DNSRecord(DNSHeader(id=request.header.id, bitmap=request.header.bitmap, qr=1,
                                    aa=1, ra=1), q=q)
        if not self.ready():
            reply.header.rcode = RCODE.SERVFAIL
            return reply, None
        chase = self._fill(reply, qname, q.qtype, depth=0)
        return reply, chase

    def _negative(self, reply: DNSRecord, nxdomain: bool) -> None:
        if nxdomain:
            reply.header.rcode = RCODE.NXDOMAIN
        d = self.domain + "."
        reply.add_auth(RR(d, QTYPE.SOA, ttl=self.ttl, rdata=SOA(
            "ns.dns." + d, "hostmaster." + d, (1, 7200, 1800, 86400, self.ttl))))

    def _fill(self, reply: DNSRecord, qname: str, qtype: int, depth: int) -> str | None:
        """Add the records of ``qname`` to ``reply``; the name to chase, if any."""
        name = qname.rstrip(".").lower()
        rel = name[:-len(self.domain)].rstrip(".")
        labels = rel.split(".") if rel else []
        if len(labels) <= 1 and labels in ([], ["svc"], ["pod"]):
            return self._negative(reply, False)
        if len(labels) == 2 and labels[1] in ("svc", "pod"):
            return self._negative(reply, not self._namespace_known(labels[0]))
        if len(labels) == 3 and labels[2] == "pod":
            ip = labels[0].replace("-", ".")
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                return self._negative(reply, True)
            if qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(qname, QTYPE.A, ttl=self.ttl, rdata=A(ip)))
            else:
                self._negative(reply, False)
            return None
        if len(labels) < 3 or labels[-1] != "svc":
            return self._negative(reply, True)
        svc_name, ns = labels[-3], labels[-2]
        svc = self.services.get_object(svc_name, ns)
        if svc is None:
            return self._negative(reply, True)
        fqdn = f"{svc_name}.{ns}.svc.{self.domain}."
        spec = svc.get("spec") or {}
        headless = spec.get("clusterIP") == "None"
        if len(labels) == 3:
            return self._service(reply, qname, qtype, svc, fqdn, depth)
        if len(labels) == 5 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv(reply, qname, qtype, svc, fqdn, labels[0][1:], labels[1][1:])
        if len(labels) == 4 and headless:
            for fam, rtype, cls in ((4, QTYPE.A, A), (6, QTYPE.AAAA, AAAA)):
                eps = [e for e in self._endpoints(ns, svc_name, fam)
                       if labels[0] in (e.hostname.lower(), dashed(e.ip))]
                if eps and qtype in (rtype, QTYPE.ANY):
                    for e in eps:
                        reply.add_answer(RR(qname, rtype, ttl=self.ttl, rdata=cls(e.ip)))
                if eps and not reply.rr:
                    self._negative(reply, False)
                if eps:
                    return None
        return self._negative(reply, True)

    def _service(self, reply, qname, qtype, svc, fqdn, depth) -> str | None:
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = md.get("namespace") or "default", md.get("name")
        if spec.get("type") == "ExternalName":
            target = (spec.get("externalName") or "").rstrip(".")
            if not target:
                return self._negative(reply, False)
            reply.add_answer(RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(target + ".")))
            if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
                if self.in_domain(target):
                    if depth < 8:
                        return self._fill(reply, target + ".", qtype, depth + 1)
                    return None
                return target + "."
            return None
        if qtype == QTYPE.SRV:
            return self._srv(reply, qname, qtype, svc, fqdn, None, None)
        if qtype not in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
            return self._negative(reply, False)
        if spec.get("clusterIP") == "None":
            fams = {QTYPE.A: [4], QTYPE.AAAA: [6], QTYPE.ANY: [4, 6]}[qtype]
            for fam in fams:
                for e in self._endpoints(ns, name, fam):
                    reply.add_answer(RR(qname, QTYPE.A if fam == 4 else QTYPE.AAAA, ttl=self.ttl,
                                        rdata=A(e.ip) if fam == 4 else AAAA(e.ip)))
        else:
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                try:
                    addr = ipaddress.ip_address(ip or "")
                except ValueError:
                    continue
                if addr.version == 4 and qtype in (QTYPE.A, QTYPE.ANY):
                    reply.add_answer(RR(qname, QTYPE.A, ttl=self.ttl, rdata=A(str(addr))))
                elif addr.version == 6 and qtype in (QTYPE.AAAA, QTYPE.ANY):
                    reply.add_answer(RR(qname, QTYPE.AAAA, ttl=self.ttl, rdata=AAAA(str(addr))))
        if not reply.rr:
            self._negative(reply, False)
        return None

    def _srv(self, reply, qname, qtype, svc, fqdn, port_name, proto) -> None:
        """SRV records of a Service's named ports (one port: ``port_name``/``proto``)."""
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = md.get("namespace") or "default", md.get("name")
        ports = [p for p in spec.get("ports") or [] if p.get("name")
                 and (port_name is None or (p["name"].lower() == port_name
                                            and (p.get("protocol") or "TCP").lower() == proto))]
        if not ports or spec.get("type") == "ExternalName":
            return self._negative(reply, port_name is not None)
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            return self._negative(reply, False)
        if spec.get("clusterIP") == "None":
            eps = self._endpoints(ns, name, 4) + self._endpoints(ns, name, 6)
            for e in eps:
                target = f"{e.hostname.lower() or dashed(e.ip)}.{fqdn}"
                for p in ports:
                    for pname, pproto, pnum in e.ports:
                        if pname == p["name"] and pproto == (p.get("protocol") or "TCP"):
                            reply.add_answer(RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=SRV(
                                0, 100, pnum, target)))
                rtype, cls = (QTYPE.A, A) if ":" not in e.ip else (QTYPE.AAAA, AAAA)
                reply.add_ar(RR(target, rtype, ttl=self.ttl, rdata=cls(e.ip)))
        else:
            for p in ports:
                reply.add_answer(RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=SRV(0, 100, p.get("port"), fqdn)))
            ip = spec.get("clusterIP")
            if ip and ":" not in ip:
                reply.add_ar(RR(fqdn, QTYPE.A, ttl=self.ttl, rdata=A(ip)))
        if not reply.rr:
            self._negative(reply, False)
        return None

    # -- one message -------------------------------------------------------------------------
    async def handle(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The reply to one DNS message (None: drop it)."""
        self.stats["queries"] += 1
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - DNSError, or anything a malformed message raises
            if len(data) >= 12 and not data[2] & 0x80:   # a query with a readable header
                return data[:2] + bytes([0x80 | (data[2] & 0x79), RCODE.FORMERR]) + b"\0" * 8
            return None
        if request.header.qr or len(request.questions) != 1 or request.header.opcode != 0:
            if request.header.qr:
                return None
            r = DNSRecord(DNSHeader(id=request.header.id, bitmap=request.header.bitmap, qr=1, ra=1))
            r.header.rcode = RCODE.NOTIMP if request.header.opcode else RCODE.FORMERR
            return r.pack()
        try:
            reply, chase = self.answer(request)
        except Exception as e:  # noqa: BLE001 - a bad object must not kill the server
            log.warning("cannot answer %s: %s", request.q.qname, e)
            reply, chase = request.reply(), None
            reply.header.rcode = RCODE.SERVFAIL
        if reply is None:
            return await self._forward(data, request, tcp)
        if chase is not None:
            await self._chase(reply, chase, request.q.qtype, tcp)
        return self._pack(reply, request, tcp)

    def _pack(self, reply: DNSRecord, request: DNSRecord, tcp: bool) -> bytes:
        edns = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
        limit = 65535 if tcp else 512
        if edns is not None:
            reply.add_ar(EDNS0(udp_len=1232))
            if not tcp:
                limit = max(512, min(int(edns.rclass), 1232))
        out = reply.pack()
        if len(out) > limit:     # too big for UDP: the header and question, TC set
            reply.rr, reply.auth, reply.ar = [], [], []
            reply.header.tc = 1
            out = reply.pack()
        return out

    async def _chase(self, reply: DNSRecord, target: str, qtype: int, tcp: bool) -> None:
        """Append an ExternalName target's records (resolved upstream) to ``reply``."""
        q = DNSRecord.question(target, QTYPE.get(qtype))
        data = await self._forward_raw(q.pack(), tcp)
        if data is None:
            return
        try:
            got = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001
            return
        if got.header.id == q.header.id:
            for rr in got.rr:
                reply.add_answer(rr)

    # -- forwarding ------------------------------------------------------------------------------
    async def _forward(self, data: bytes, request: DNSRecord, tcp: bool) -> bytes:
        self.stats["forwarded"] += 1
        out = await self._forward_raw(data, tcp)
        if out is None:
            self.stats["failed"] += 1
            reply = DNSRecord(DNSHeader(id=request.header.id, bitmap=request.header.bitmap,
                                        qr=1, ra=1), q=request.q)
            reply.header.aa = 0
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        return out

    async def _forward_raw(self, data: bytes, tcp: bool) -> bytes | None:
        """The first upstream's answer to ``data`` (sent as it is), or None."""
        if self._inflight >= MAX_INFLIGHT:
            return None
        self._inflight += 1
        try:
            for host, port in self.upstreams:
                try:
                    out = await asyncio.wait_for(
                        (_ask_tcp if tcp else _ask_udp)(host, port, data), self.timeout)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                    log.debug("upstream %s:%d: %s", host, port, e or type(e).__name__)
                    continue
                if out is not None:
                    return out
            return None
        finally:
            self._inflight -= 1

    # -- sockets ---------------------------------------------------------------------------------
    async def start(self, host: str, port: int = 53) -> int:
        """Listen on ``host``:``port`` (UDP, and TCP on the same port); returns the port (for
        port 0, one the kernel chose that is free for both). Raises OSError when UDP cannot
        bind; a TCP bind failure is logged and UDP alone serves."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        u, t, port = self._bind(family, host, port)
        try:
            u.setblocking(False)
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), sock=u)
        except BaseException:
            u.close()
            if t is not None:
                t.close()
            raise
        if t is not None:
            t.setblocking(False)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=t)
        self.address = (host, port)
        log.info("cluster DNS for %s on %s:%d", self.domain, host, port,
                 extra={"fields": {"domain": self.domain, "address": host, "port": port}})
        return port

    @staticmethod
    def _bind(family: int, host: str, port: int) -> tuple[socket.socket, socket.socket | None, int]:
        """The UDP and TCP sockets, bound to the same port. For port 0 a port whose TCP side
        is taken (by another program on a shared loopback) is let go and another one tried."""
        for attempt in range(20 if port == 0 else 1):
            u = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if family == socket.AF_INET:
                    u.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
                u.bind((host, port))
            except BaseException:
                u.close()
                raise
            chosen = u.getsockname()[1]
            t = socket.socket(family, socket.SOCK_STREAM)
            try:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET:
                    t.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
                t.bind((host, chosen))
                t.listen(64)
                return u, t, chosen
            except OSError as e:
                t.close()
                if port == 0 and e.errno == errno.EADDRINUSE and attempt < 19:
                    u.close()
                    continue
                log.warning("cluster DNS: no TCP on %s:%d (%s); UDP only", host, chosen, e)
                return u, None, chosen
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            try:
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
            self._tcp = None
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply_udp(self, data: bytes, addr) -> None:
        try:
            out = await self.handle(data, tcp=False)
        except Exception as e:  # noqa: BLE001
            log.warning("cluster DNS: %s", e)
            return
        if out is not None and self._udp is not None:
            self._udp.sendto(out, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                data = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), TCP_IDLE)
                out = await self.handle(data, tcp=True)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDNS):
        self.server = server

    def datagram_received(self, data: bytes, addr) -> None:
        self.server._spawn(self.server._reply_udp(data, addr))

    def error_received(self, exc: Exception) -> None:  # an ICMP error for an earlier reply
        pass


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes):
        self.query_id = query_id
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if data[:2] == self.query_id and len(data) >= 12 and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc) -> None:
        if not self.done.done():   # closed after a timeout: nobody waits any more
            self.done.cancel()


async def _ask_udp(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: _Answer(data[:2]),
                                                           remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await proto.done
    finally:
        transport.close()


async def _ask_tcp(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        n = struct.unpack("!H", await reader.readexactly(2))[0]
        out = await reader.readexactly(n)
        if out[:2] != data[:2]:
            raise ValueError("answer to another query")
        return out
    finally:
        writer.close()
