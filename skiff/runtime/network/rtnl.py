"""A minimal rtnetlink client for the per-container network hot path.

`import pyroute2` costs ~150 ms on these hosts; a bridge-network container start may add at
most ~15 ms. This module speaks NETLINK_ROUTE directly over a raw AF_NETLINK socket with
struct packing, and imports nothing but os, _socket and struct (``socket`` itself pulls in
enum and selectors, ~7 ms). It does exactly what one container needs: a veth pair with the
peer born inside the container's network namespace, master/MTU/up, an address, a default
route, and deleting the pair again. Rare operations (bridges, reading links in detail) live
in bridge.py, on pyroute2.

Every request carries NLM_F_ACK; the kernel's answer is checked and a failure raises
``OSError(errno, "netlink: <what>: <strerror>")`` (plus the kernel's extended-ack text, when
it gives one, in parentheses).

Message layouts (all native byte order, as the kernel expects):
  nlmsghdr  =IHHII   len, type, flags, seq, pid                          16 bytes
  ifinfomsg =BxHiII  family, pad, type, index, flags, change             16 bytes
  ifaddrmsg =BBBBI   family, prefixlen, flags, scope, index               8 bytes
  rtmsg     =BBBBBBBBI family, dst_len, src_len, tos, table, protocol,
                     scope, type, flags                                 12 bytes
  nlattr    =HH      len (header + payload, unpadded), type; payload padded to 4
"""

from __future__ import annotations

import os
import struct

import _socket

# --- netlink core --------------------------------------------------------------------------
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100     # in an NLMSG_ERROR: the request was not echoed back
NLM_F_ACK_TLVS = 0x200   # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# --- rtnetlink ------------------------------------------------------------------------------
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10

IFF_UP = 0x1

IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_F_NODAD = 0x02

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

CLONE_NEWNET = 0x40000000

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE32 = struct.Struct("!I")


# --- encoding -------------------------------------------------------------------------------
def nla_align(n: int) -> int:
    """NLA_ALIGN / NLMSG_ALIGN: round up to a multiple of 4."""
    return (n + 3) & ~3


def nla(atype: int, payload: bytes) -> bytes:
    """One attribute: header (length excludes the padding), payload, zero padding to 4."""
    n = 4 + len(payload)
    return _NLATTR.pack(n, atype) + payload + b"\0" * (nla_align(n) - n)


def nla_u32(atype: int, value: int) -> bytes:
    return nla(atype, _U32.pack(value))


def nla_s32(atype: int, value: int) -> bytes:
    return nla(atype, _I32.pack(value))


def nla_str(atype: int, value: str) -> bytes:
    """A NUL-terminated string attribute (IFLA_IFNAME and the like)."""
    return nla(atype, value.encode() + b"\0")


def nla_nest(atype: int, *attrs: bytes) -> bytes:
    """A nested attribute. Like iproute2, without NLA_F_NESTED: rtnetlink's legacy
    attributes are parsed leniently and accept either."""
    return nla(atype, b"".join(attrs))


def nlmsg(mtype: int, flags: int, seq: int, body: bytes, pid: int = 0) -> bytes:
    """A whole message: nlmsghdr + body (body is already 4-aligned by construction)."""
    return _NLMSGHDR.pack(16 + len(body), mtype, flags, seq, pid) + body


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = AF_UNSPEC,
              iftype: int = 0) -> bytes:
    return _IFINFOMSG.pack(family, iftype, index, flags, change)


def ifaddrmsg(family: int, prefixlen: int, index: int, flags: int = 0,
              scope: int = RT_SCOPE_UNIVERSE) -> bytes:
    return _IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(family: int, dst_len: int = 0, table: int = RT_TABLE_MAIN, protocol: int = RTPROT_BOOT,
          scope: int = RT_SCOPE_UNIVERSE, rtype: int = RTN_UNICAST) -> bytes:
    return _RTMSG.pack(family, dst_len, 0, 0, table if table < 256 else 252, protocol, scope,
                       rtype, 0)


def parse_ip(text: str) -> tuple[int, bytes]:
    """'10.1.2.3' or 'fd00::1' -> (family, packed address)."""
    if ":" in text:
        return AF_INET6, _socket.inet_pton(AF_INET6, text)
    return AF_INET, _socket.inet_pton(AF_INET, text)


def parse_cidr(cidr: str) -> tuple[int, bytes, int]:
    """'10.88.0.2/16' -> (AF_INET, packed, 16). Without '/', a host prefix (32 or 128)."""
    addr, sep, plen = cidr.partition("/")
    family, packed = parse_ip(addr)
    bits = 32 if family == AF_INET else 128
    prefixlen = int(plen) if sep else bits
    if not 0 <= prefixlen <= bits:
        raise ValueError(f"bad prefix length in {cidr!r}")
    return family, packed, prefixlen


def ipv4_broadcast(packed: bytes, prefixlen: int) -> bytes:
    """The all-ones host part of an IPv4 network, packed."""
    return _BE32.pack(_BE32.unpack(packed)[0] | ((1 << (32 - prefixlen)) - 1))


def parse_attrs(buf: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attributes in buf[offset:end] as {type (flags masked): payload}; the last one wins."""
    end = len(buf) if end is None else end
    out: dict[int, bytes] = {}
    while offset + 4 <= end:
        n, atype = _NLATTR.unpack_from(buf, offset)
        if n < 4 or offset + n > end:
            break
        out[atype & NLA_TYPE_MASK] = bytes(buf[offset + 4:offset + n])
        offset += nla_align(n)
    return out


def parse_messages(buf: bytes):
    """Yield (type, flags, seq, pid, payload) for each netlink message in a datagram."""
    off = 0
    while off + 16 <= len(buf):
        n, mtype, flags, seq, pid = _NLMSGHDR.unpack_from(buf, off)
        if n < 16 or off + n > len(buf):
            break
        yield mtype, flags, seq, pid, bytes(buf[off + 16:off + n])
        off += nla_align(n)


def parse_error(flags: int, payload: bytes) -> tuple[int, str | None]:
    """An NLMSG_ERROR payload -> (errno, extended-ack message or None). errno 0 is an ACK.

    Layout: int error (negative errno), the request's nlmsghdr, then either the rest of the
    request (unless NLM_F_CAPPED) and, with NLM_F_ACK_TLVS, extended-ack attributes."""
    err = -_I32.unpack_from(payload, 0)[0]
    msg = None
    if err and flags & NLM_F_ACK_TLVS and len(payload) >= 20:
        req_len = _NLMSGHDR.unpack_from(payload, 4)[0]
        off = 4 + (16 if flags & NLM_F_CAPPED else nla_align(req_len))
        text = parse_attrs(payload, off).get(NLMSGERR_ATTR_MSG)
        if text:
            msg = text.rstrip(b"\0").decode(errors="replace")
    return err, msg


def netlink_error(err: int, what: str, ext: str | None = None) -> OSError:
    text = f"netlink: {what}: {os.strerror(err)}"
    if ext:
        text += f" ({ext})"
    return OSError(err, text)


# --- message builders (pure: unit-tested byte for byte) --------------------------------------
def msg_new_veth(seq: int, name: str, peer_name: str, peer_netns_fd: int | None = None,
                 mtu: int | None = None, master_index: int | None = None, up: bool = False,
                 mac: str | None = None, peer_mac: str | None = None) -> bytes:
    peer = [nla_str(IFLA_IFNAME, peer_name)]
    if mtu:
        peer.append(nla_u32(IFLA_MTU, mtu))
    if peer_mac:
        peer.append(nla(IFLA_ADDRESS, mac_bytes(peer_mac)))
    if peer_netns_fd is not None:
        peer.append(nla_u32(IFLA_NET_NS_FD, peer_netns_fd))
    attrs = [nla_str(IFLA_IFNAME, name)]
    if mtu:
        attrs.append(nla_u32(IFLA_MTU, mtu))
    if mac:
        attrs.append(nla(IFLA_ADDRESS, mac_bytes(mac)))
    if master_index:
        attrs.append(nla_u32(IFLA_MASTER, master_index))
    attrs.append(nla_nest(IFLA_LINKINFO,
                          nla_str(IFLA_INFO_KIND, "veth"),
                          nla_nest(IFLA_INFO_DATA,
                                   nla(VETH_INFO_PEER, ifinfomsg() + b"".join(peer)))))
    flags = IFF_UP if up else 0
    return nlmsg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq,
                 ifinfomsg(0, flags, flags) + b"".join(attrs))


def _link_selector(name_or_index: int | str) -> tuple[int, bytes]:
    """(ifi_index, attrs): by index, or index 0 + IFLA_IFNAME (the kernel looks the name up)."""
    if isinstance(name_or_index, int):
        return name_or_index, b""
    return 0, nla_str(IFLA_IFNAME, name_or_index)


def msg_set_link(seq: int, name_or_index: int | str, flags: int = 0, change: int = 0,
                 attrs: bytes = b"") -> bytes:
    index, sel = _link_selector(name_or_index)
    return nlmsg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq,
                 ifinfomsg(index, flags, change) + sel + attrs)


def msg_del_link(seq: int, name_or_index: int | str) -> bytes:
    index, sel = _link_selector(name_or_index)
    return nlmsg(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(index) + sel)


def msg_get_link(seq: int, name_or_index: int | str) -> bytes:
    index, sel = _link_selector(name_or_index)
    return nlmsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq,
                 ifinfomsg(index) + sel + nla_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))


def msg_new_addr(seq: int, index: int, cidr: str, nodad: bool = True) -> bytes:
    family, packed, prefixlen = parse_cidr(cidr)
    attrs = nla(IFA_LOCAL, packed) + nla(IFA_ADDRESS, packed)
    ifa_flags = 0
    if family == AF_INET:
        if prefixlen < 31:
            attrs += nla(IFA_BROADCAST, ipv4_broadcast(packed, prefixlen))
    elif nodad:
        ifa_flags = IFA_F_NODAD
    return nlmsg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq,
                 ifaddrmsg(family, prefixlen, index, ifa_flags) + attrs)


def msg_new_route(seq: int, dst: str | None, gateway: str | None = None,
                  oif: int | None = None, family: int | None = None) -> bytes:
    """A unicast route in the main table; dst None or 'default' is the default route."""
    attrs = b""
    dst_len = 0
    if dst and dst != "default":
        family, packed, dst_len = parse_cidr(dst)
        attrs += nla(RTA_DST, packed)
    if gateway:
        gfam, gpacked = parse_ip(gateway)
        if family is not None and gfam != family:
            raise ValueError(f"gateway {gateway} is not in the family of {dst}")
        family = gfam
        attrs += nla(RTA_GATEWAY, gpacked)
    if family is None:
        raise ValueError("a route needs a destination or a gateway")
    if oif:
        attrs += nla_u32(RTA_OIF, oif)
    return nlmsg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq,
                 rtmsg(family, dst_len) + attrs)


def mac_bytes(mac: str) -> bytes:
    b = bytes(int(x, 16) for x in mac.split(":"))
    if len(b) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return b


def random_mac() -> str:
    """A random unicast, locally administered MAC address ("02:..." style)."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def sysctl_set(path: str, value: str) -> str:
    """Write a sysctl and return its old value (stripped). ``path`` is absolute
    ('/proc/sys/net/ipv4/ip_forward'), relative to /proc/sys ('net/ipv4/ip_forward'), or dotted
    ('net.ipv4.ip_forward'; not for interface names with dots: use a slash path). Nothing is
    written when the value is already set."""
    if not path.startswith("/"):
        path = "/proc/sys/" + (path if "/" in path else path.replace(".", "/"))
    with open(path, "rb", buffering=0) as f:
        old = f.read().decode().strip()
    if old != str(value).strip():
        with open(path, "wb", buffering=0) as f:
            f.write(str(value).encode())
    return old


# --- the client -----------------------------------------------------------------------------
class Netlink:
    """One bound NETLINK_ROUTE socket. ``netns_fd``: an open /proc/<pid>/ns/net (or bind-mounted
    netns file) fd; the socket is created inside that namespace and stays bound to it, while
    this thread returns to its own namespace at once. None: the calling thread's namespace
    (which is what a container's init wants after unshare(CLONE_NEWNET))."""

    def __init__(self, netns_fd: int | None = None):
        self._seq = 0
        if netns_fd is None:
            self._sock = self._open()
        else:
            self._sock = self._open_in(netns_fd)

    @staticmethod
    def _open():
        s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                           NETLINK_ROUTE)
        try:
            for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
                try:
                    s.setsockopt(SOL_NETLINK, opt, 1)
                except OSError:
                    pass  # old kernels: plain errors, full echo
            s.bind((0, 0))
        except BaseException:
            s.close()
            raise
        return s

    @classmethod
    def _open_in(cls, netns_fd: int):
        from ..kernel import kernel  # ctypes on first use: only this path pays for it
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            kernel.setns(netns_fd, CLONE_NEWNET)
            try:
                return cls._open()
            finally:
                try:
                    kernel.setns(own, CLONE_NEWNET)
                except OSError as e:  # a thread stuck in the wrong netns must not go unnoticed
                    raise OSError(e.errno, f"netlink: setns back to the original netns: "
                                           f"{os.strerror(e.errno)}") from e
        finally:
            os.close(own)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def fileno(self) -> int:
        return self._sock.fileno()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- transport --
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def _transact(self, msg: bytes, seq: int, what: str) -> list[tuple[int, bytes]]:
        """Send one request; return the (type, payload) replies before its ACK.
        Raises OSError for an error answer."""
        if self._sock is None:
            raise OSError(9, f"netlink: {what}: socket is closed")
        self._sock.send(msg)
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self._sock.recv(65536)
            for mtype, flags, rseq, _pid, payload in parse_messages(data):
                if rseq != seq:
                    continue  # a stale answer to an earlier, abandoned request
                if mtype == NLMSG_ERROR:
                    err, ext = parse_error(flags, payload)
                    if err:
                        raise netlink_error(err, what, ext)
                    return replies
                if mtype == NLMSG_DONE:
                    return replies
                if mtype != NLMSG_NOOP:
                    replies.append((mtype, payload))

    def _index(self, name_or_index: int | str) -> int:
        if isinstance(name_or_index, int):
            return name_or_index
        idx = self.link_index(name_or_index)
        if idx is None:
            raise netlink_error(19, f"link {name_or_index}")  # ENODEV
        return idx

    # -- links --
    def get_link(self, name_or_index: int | str) -> dict | None:
        """{'index', 'name', 'flags', 'mtu', 'master', 'address'} of a link, or None."""
        seq = self._next_seq()
        try:
            replies = self._transact(msg_get_link(seq, name_or_index), seq,
                                     f"get link {name_or_index}")
        except OSError as e:
            if e.errno == 19:  # ENODEV
                return None
            raise
        for mtype, payload in replies:
            if mtype == RTM_NEWLINK:
                return decode_link(payload)
        return None

    def link_index(self, name: str) -> int | None:
        info = self.get_link(name)
        return info["index"] if info else None

    def link_mtu(self, name: int | str) -> int:
        info = self.get_link(name)
        if info is None:
            raise netlink_error(19, f"link {name}")
        return info["mtu"]

    def create_veth(self, name: str, peer_name: str, peer_netns_fd: int | None = None,
                    mtu: int | None = None, master_index: int | None = None, *,
                    up: bool = False, mac: str | None = None,
                    peer_mac: str | None = None) -> None:
        """One RTM_NEWLINK: veth ``name`` here (on ``master_index`` if given, up if ``up``),
        its peer ``peer_name`` born in ``peer_netns_fd`` (down: configure it from inside)."""
        seq = self._next_seq()
        self._transact(msg_new_veth(seq, name, peer_name, peer_netns_fd, mtu, master_index,
                                    up, mac, peer_mac), seq, f"create veth {name}/{peer_name}")

    def _set(self, name_or_index, what: str, flags: int = 0, change: int = 0,
             attrs: bytes = b"") -> None:
        seq = self._next_seq()
        self._transact(msg_set_link(seq, name_or_index, flags, change, attrs), seq,
                       f"{what} {name_or_index}")

    def set_up(self, name_or_index: int | str) -> None:
        self._set(name_or_index, "set up", IFF_UP, IFF_UP)

    def set_down(self, name_or_index: int | str) -> None:
        self._set(name_or_index, "set down", 0, IFF_UP)

    def set_master(self, name_or_index: int | str, master_index: int) -> None:
        """Enslave to ``master_index`` (0 releases the link from its master)."""
        self._set(name_or_index, "set master", attrs=nla_u32(IFLA_MASTER, master_index))

    def set_mtu(self, name_or_index: int | str, mtu: int) -> None:
        self._set(name_or_index, "set mtu", attrs=nla_u32(IFLA_MTU, mtu))

    def delete_link(self, name_or_index: int | str) -> bool:
        """Delete a link (a veth takes its peer with it). False when it did not exist."""
        seq = self._next_seq()
        try:
            self._transact(msg_del_link(seq, name_or_index), seq, f"delete link {name_or_index}")
        except OSError as e:
            if e.errno == 19:  # ENODEV
                return False
            raise
        return True

    # -- addresses and routes --
    def add_address(self, name_or_index: int | str, cidr: str, nodad: bool = True) -> None:
        """Add 'A.B.C.D/N' (with its broadcast) or an IPv6 CIDR (without DAD unless nodad=False)."""
        index = self._index(name_or_index)
        seq = self._next_seq()
        self._transact(msg_new_addr(seq, index, cidr, nodad), seq,
                       f"add address {cidr} to {name_or_index}")

    def add_route(self, dst: str | None, gateway: str | None = None,
                  ifname_or_index: int | str | None = None) -> None:
        oif = self._index(ifname_or_index) if ifname_or_index is not None else None
        seq = self._next_seq()
        self._transact(msg_new_route(seq, dst, gateway, oif), seq,
                       f"add route {dst or 'default'}" + (f" via {gateway}" if gateway else ""))

    def add_default_route(self, gateway: str, ifname_or_index: int | str | None = None) -> None:
        """Default route via ``gateway``. The interface must be up and have an address in the
        gateway's subnet first (else ENETDOWN / ENETUNREACH)."""
        self.add_route(None, gateway, ifname_or_index)


def decode_link(payload: bytes) -> dict:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload, 0)
    attrs = parse_attrs(payload, 16)
    name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
    mtu = _U32.unpack(attrs[IFLA_MTU][:4])[0] if IFLA_MTU in attrs else 0
    master = _U32.unpack(attrs[IFLA_MASTER][:4])[0] if IFLA_MASTER in attrs else 0
    mac = attrs.get(IFLA_ADDRESS)
    kind = None
    if IFLA_LINKINFO in attrs:
        info = parse_attrs(attrs[IFLA_LINKINFO])
        if IFLA_INFO_KIND in info:
            kind = info[IFLA_INFO_KIND].rstrip(b"\0").decode(errors="replace")
    return {"index": index, "name": name, "flags": flags, "mtu": mtu, "master": master,
            "address": ":".join(f"{x:02x}" for x in mac) if mac else None, "kind": kind}
