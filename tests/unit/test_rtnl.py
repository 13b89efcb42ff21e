"""The hand-rolled rtnetlink client: messages byte for byte, alignment, ACK/error parsing.

No root needed: the expected bytes below are written out by hand from the kernel's structures
(nlmsghdr, ifinfomsg, ifaddrmsg, rtmsg, nlattr; native = little-endian here), and the
transport is checked against a scripted fake socket.
"""

from __future__ import annotations

import errno
import struct
import sys

import pytest

from skiff.runtime.network import rtnl
from skiff.runtime.network.rtnl import (
    Netlink, msg_del_link, msg_get_link, msg_new_addr, msg_new_route, msg_new_veth,
    msg_set_link, nla, nla_align, parse_attrs, parse_error, parse_messages,
)

pytestmark = pytest.mark.skipif(sys.byteorder != "little",
                                reason="expected bytes are written for a little-endian host")


def h(text: str) -> bytes:
    """Hex with spaces, '|' and '#' comments allowed."""
    lines = [line.split("#")[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines).replace("|", "").replace(" ", ""))


# --- alignment ------------------------------------------------------------------------------
@pytest.mark.parametrize("n,aligned", [(0, 0), (1, 4), (3, 4), (4, 4), (5, 8), (8, 8), (13, 16)])
def test_nla_align(n, aligned):
    assert nla_align(n) == aligned


@pytest.mark.parametrize("payload_len", range(0, 9))
def test_attribute_length_excludes_padding_and_total_is_aligned(payload_len):
    a = nla(3, b"x" * payload_len)
    length, atype = struct.unpack_from("<HH", a)
    assert length == 4 + payload_len            # nla_len: header + payload, no padding
    assert atype == 3
    assert len(a) == nla_align(4 + payload_len)  # followed by zero padding to 4
    assert a[length:] == b"\0" * (len(a) - length)


def test_string_attribute_is_nul_terminated_and_padded():
    assert rtnl.nla_str(3, "eth0") == h("09 00 03 00 | 65 74 68 30 00 | 00 00 00")
    assert rtnl.nla_str(3, "veth1234") == h("0d 00 03 00 | 76 65 74 68 31 32 33 34 00 | 00 00 00")
    assert rtnl.nla_str(3, "abc") == h("08 00 03 00 | 61 62 63 00")   # no padding needed


def test_parse_attrs_walks_padded_attributes_and_masks_flags():
    buf = rtnl.nla_str(3, "eth0") + rtnl.nla_u32(4, 1500) + nla(18 | rtnl.NLA_F_NESTED, b"ab")
    attrs = parse_attrs(buf)
    assert attrs == {3: b"eth0\0", 4: struct.pack("<I", 1500), 18: b"ab"}


# --- messages -------------------------------------------------------------------------------
VETH_EXPECTED = h("""
84 00 00 00 | 10 00 | 05 06 | 2a 00 00 00 | 00 00 00 00   # nlmsghdr: len 132, RTM_NEWLINK,
                                                          # REQUEST|ACK|EXCL|CREATE, seq 42, pid 0
00 00 | 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00   # ifinfomsg: all zero (new link)
0d 00 03 00 | 76 65 74 68 31 32 33 34 00 | 00 00 00      # IFLA_IFNAME "veth1234"
08 00 04 00 | 78 05 00 00                                 # IFLA_MTU 1400
08 00 0a 00 | 07 00 00 00                                 # IFLA_MASTER 7
44 00 12 00                                               # IFLA_LINKINFO, 68 bytes
  09 00 01 00 | 76 65 74 68 00 | 00 00 00                 #   IFLA_INFO_KIND "veth"
  34 00 02 00                                             #   IFLA_INFO_DATA, 52 bytes
    30 00 01 00                                           #     VETH_INFO_PEER, 48 bytes:
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00     #       ifinfomsg of the peer
      09 00 03 00 | 65 74 68 30 00 | 00 00 00             #       IFLA_IFNAME "eth0"
      08 00 04 00 | 78 05 00 00                           #       IFLA_MTU 1400
      08 00 1c 00 | 05 00 00 00                           #       IFLA_NET_NS_FD 5
""")


def test_new_veth_message_byte_exact():
    msg = msg_new_veth(42, "veth1234", "eth0", peer_netns_fd=5, mtu=1400, master_index=7)
    assert msg == VETH_EXPECTED
    assert len(msg) == 132


def test_new_veth_peer_matches_what_iproute2_sends():
    """`ip link add X mtu 1400 type veth peer name eth0 mtu 1400 netns NS` (strace, iproute2 6.1,
    netns fd 4): the same peer attributes, in another order."""
    iproute2_info_data = h("30 00 01 00" + "00" * 16 + "08 00 04 00 78 05 00 00"
                           "08 00 1c 00 04 00 00 00" "09 00 03 00 65 74 68 30 00 00 00 00")
    msg = msg_new_veth(1, "x", "eth0", peer_netns_fd=4, mtu=1400)
    linkinfo = parse_attrs(msg, 32)[rtnl.IFLA_LINKINFO]
    ours = parse_attrs(linkinfo)[rtnl.IFLA_INFO_DATA]
    peer_ours = parse_attrs(ours)[rtnl.VETH_INFO_PEER]
    peer_ref = parse_attrs(iproute2_info_data)[rtnl.VETH_INFO_PEER]
    assert peer_ours[:16] == peer_ref[:16]
    assert parse_attrs(peer_ours, 16) == parse_attrs(peer_ref, 16)


def test_new_veth_minimal_and_up():
    msg = msg_new_veth(1, "a", "b", up=True)
    hdr = struct.unpack_from("<IHHII", msg)
    assert hdr == (len(msg), 16, 0x605, 1, 0)
    assert struct.unpack_from("<BxHiII", msg, 16) == (0, 0, 0, 1, 1)   # IFF_UP in flags+change
    attrs = parse_attrs(msg, 32)
    assert set(attrs) == {rtnl.IFLA_IFNAME, rtnl.IFLA_LINKINFO}          # no mtu/master/netns
    peer = parse_attrs(parse_attrs(attrs[rtnl.IFLA_LINKINFO])[2])[1]
    assert parse_attrs(peer, 16) == {rtnl.IFLA_IFNAME: b"b\0"}


def test_new_veth_with_macs():
    msg = msg_new_veth(1, "a", "b", mac="02:00:00:00:00:01", peer_mac="02:42:0a:58:00:02")
    attrs = parse_attrs(msg, 32)
    assert attrs[rtnl.IFLA_ADDRESS] == h("02 00 00 00 00 01")
    peer = parse_attrs(parse_attrs(attrs[rtnl.IFLA_LINKINFO])[2])[1]
    assert parse_attrs(peer, 16)[rtnl.IFLA_ADDRESS] == h("02 42 0a 58 00 02")
    assert nla(rtnl.IFLA_ADDRESS, h("02 00 00 00 00 01")) == h("0a 00 01 00 02 00 00 00 00 01 00 00")


def test_new_addr_ipv4_byte_exact():
    assert msg_new_addr(7, 2, "10.88.0.2/16") == h("""
30 00 00 00 | 14 00 | 05 06 | 07 00 00 00 | 00 00 00 00   # len 48, RTM_NEWADDR, seq 7
02 | 10 | 00 | 00 | 02 00 00 00                           # AF_INET, /16, flags 0, universe, if 2
08 00 02 00 | 0a 58 00 02                                 # IFA_LOCAL 10.88.0.2
08 00 01 00 | 0a 58 00 02                                 # IFA_ADDRESS 10.88.0.2
08 00 04 00 | 0a 58 ff ff                                 # IFA_BROADCAST 10.88.255.255
""")


def test_new_addr_ipv4_point_to_point_prefixes_have_no_broadcast():
    for cidr in ("192.168.1.0/31", "192.168.1.1/32"):
        attrs = parse_attrs(msg_new_addr(1, 1, cidr), 24)
        assert rtnl.IFA_BROADCAST not in attrs


def test_new_addr_ipv6_byte_exact():
    addr = "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02"
    assert msg_new_addr(8, 3, "fd00::2/64") == h(f"""
40 00 00 00 | 14 00 | 05 06 | 08 00 00 00 | 00 00 00 00   # len 64, RTM_NEWADDR, seq 8
0a | 40 | 02 | 00 | 03 00 00 00                           # AF_INET6, /64, IFA_F_NODAD, if 3
14 00 02 00 | {addr}                                      # IFA_LOCAL
14 00 01 00 | {addr}                                      # IFA_ADDRESS
""")
    assert msg_new_addr(8, 3, "fd00::2/64", nodad=False)[18] == 0


def test_new_route_default_byte_exact():
    assert msg_new_route(9, None, "10.88.0.1", oif=2) == h("""
2c 00 00 00 | 18 00 | 05 06 | 09 00 00 00 | 00 00 00 00   # len 44, RTM_NEWROUTE, seq 9
02 00 00 00 | fe | 03 | 00 | 01 | 00 00 00 00             # AF_INET, dst/src len 0, tos 0,
                                                          # main, RTPROT_BOOT, universe, unicast
08 00 05 00 | 0a 58 00 01                                 # RTA_GATEWAY 10.88.0.1
08 00 04 00 | 02 00 00 00                                 # RTA_OIF 2
""")


def test_new_route_matches_iproute2_default_via():
    """`ip route add default via 10.214.1.1` sends exactly this 36-byte body (strace)."""
    msg = msg_new_route(5, "default", "10.214.1.1")
    assert msg[16:] == h("02 00 00 00 fe 03 00 01 00 00 00 00 08 00 05 00 0a d6 01 01")
    assert struct.unpack_from("<I", msg)[0] == 36


def test_new_route_with_destination_and_ipv6():
    msg = msg_new_route(1, "10.1.0.0/16", "10.88.0.1")
    assert msg[16:20] == h("02 10 00 00")
    assert parse_attrs(msg, 28)[rtnl.RTA_DST] == h("0a 01 00 00")
    msg6 = msg_new_route(1, None, "fd00::1")
    assert msg6[16] == 10 and len(parse_attrs(msg6, 28)[rtnl.RTA_GATEWAY]) == 16
    with pytest.raises(ValueError):
        msg_new_route(1, "10.1.0.0/16", "fd00::1")
    with pytest.raises(ValueError):
        msg_new_route(1, None, None)


def test_set_link_by_name_and_by_index():
    assert msg_set_link(3, "eth0", rtnl.IFF_UP, rtnl.IFF_UP) == h("""
2c 00 00 00 | 10 00 | 05 00 | 03 00 00 00 | 00 00 00 00   # len 44, RTM_NEWLINK, REQUEST|ACK
00 00 | 00 00 | 00 00 00 00 | 01 00 00 00 | 01 00 00 00   # index 0, IFF_UP / change IFF_UP
09 00 03 00 | 65 74 68 30 00 | 00 00 00                   # by name: IFLA_IFNAME "eth0"
""")
    down = msg_set_link(4, 12, 0, rtnl.IFF_UP)
    assert down == h("20 00 00 00 10 00 05 00 04 00 00 00 00 00 00 00"
                     "00 00 00 00 0c 00 00 00 00 00 00 00 01 00 00 00")


def test_set_master_and_mtu_attributes():
    nl = _fake_netlink([_ack(1), _ack(2)])
    nl.set_master(5, 9)
    nl.set_mtu("eth0", 1450)
    m1, m2 = nl._sock.sent
    assert m1[32:] == h("08 00 0a 00 09 00 00 00")
    assert parse_attrs(m2, 32) == {rtnl.IFLA_IFNAME: b"eth0\0", rtnl.IFLA_MTU: h("aa 05 00 00")}


def test_del_and_get_link():
    assert msg_del_link(2, "veth1") == h("""
2c 00 00 00 | 11 00 | 05 00 | 02 00 00 00 | 00 00 00 00   # RTM_DELLINK
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0a 00 03 00 | 76 65 74 68 31 00 | 00 00
""")
    get = msg_get_link(6, "lo")
    assert struct.unpack_from("<HH", get, 4) == (rtnl.RTM_GETLINK, 5)
    assert parse_attrs(get, 32) == {rtnl.IFLA_IFNAME: b"lo\0", rtnl.IFLA_EXT_MASK: h("08 00 00 00")}


def test_bad_input():
    with pytest.raises(ValueError):
        msg_new_addr(1, 1, "10.0.0.1/33")
    with pytest.raises(OSError):
        msg_new_addr(1, 1, "10.0.0.300/24")
    with pytest.raises(ValueError):
        rtnl.mac_bytes("02:00:00")


# --- replies --------------------------------------------------------------------------------
def _nlmsg(mtype, flags, seq, payload, pid=1234):
    return struct.pack("<IHHII", 16 + len(payload), mtype, flags, seq, pid) + payload


def _ack(seq, err=0, ext=None, capped=True, request=b""):
    """An NLMSG_ERROR as the kernel builds it (NETLINK_CAP_ACK: only the request header)."""
    req = struct.pack("<IHHII", 16 + len(request), 16, 5, seq, 0)
    echo = b"" if capped else request + b"\0" * (nla_align(len(request)) - len(request))
    body = struct.pack("<i", -err) + req + echo
    flags = rtnl.NLM_F_CAPPED if capped else 0
    if ext:
        body += rtnl.nla_str(rtnl.NLMSGERR_ATTR_MSG, ext)
        flags |= rtnl.NLM_F_ACK_TLVS
    return _nlmsg(rtnl.NLMSG_ERROR, flags, seq, body)


def test_parse_ack_and_errors():
    (m,) = parse_messages(_ack(3))
    assert m[0] == rtnl.NLMSG_ERROR and m[2] == 3
    assert parse_error(m[1], m[4]) == (0, None)
    (m,) = parse_messages(_ack(3, errno.EEXIST))
    assert parse_error(m[1], m[4]) == (errno.EEXIST, None)
    (m,) = parse_messages(_ack(3, errno.ENETUNREACH, "Nexthop has invalid gateway"))
    assert parse_error(m[1], m[4]) == (errno.ENETUNREACH, "Nexthop has invalid gateway")
    # Without NETLINK_CAP_ACK the whole request is echoed; the TLVs come after it, aligned.
    (m,) = parse_messages(_ack(3, errno.EINVAL, "bad thing", capped=False, request=b"x" * 21))
    assert parse_error(m[1], m[4]) == (errno.EINVAL, "bad thing")


def test_parse_messages_several_in_one_datagram():
    data = _nlmsg(16, 0, 5, b"abcde") + b"\0\0\0" + _ack(5) + _nlmsg(rtnl.NLMSG_DONE, 2, 5, b"\0" * 4)
    got = list(parse_messages(data))
    assert [g[0] for g in got] == [16, rtnl.NLMSG_ERROR, rtnl.NLMSG_DONE]
    assert got[0][4] == b"abcde"
    assert list(parse_messages(b"\x10\0\0")) == []             # truncated: nothing
    assert list(parse_messages(h("ff 00 00 00") + b"\0" * 12)) == []  # length past the end


class FakeSock:
    def __init__(self, replies):
        self.replies = list(replies)
        self.sent: list[bytes] = []

    def send(self, data):
        self.sent.append(bytes(data))
        return len(data)

    def recv(self, n):
        return self.replies.pop(0)

    def close(self):
        pass


def _fake_netlink(replies) -> Netlink:
    nl = Netlink.__new__(Netlink)
    nl._seq = 0
    nl._sock = FakeSock(replies)
    return nl


def test_transact_skips_stale_answers_and_raises_errors():
    nl = _fake_netlink([_ack(99, errno.EEXIST) + _ack(1), _ack(2, errno.EEXIST, "exists!")])
    nl.set_up("eth0")                       # the stale seq-99 error is ignored
    with pytest.raises(OSError) as e:
        nl.set_down(3)
    assert e.value.errno == errno.EEXIST
    assert str(e.value) == "[Errno 17] netlink: set down 3: File exists (exists!)"
    assert [struct.unpack_from("<I", m, 8)[0] for m in nl._sock.sent] == [1, 2]


def test_link_lookup_and_delete_semantics():
    link = _nlmsg(rtnl.RTM_NEWLINK, 0, 1,
                  rtnl.ifinfomsg(4, 0x1043) + rtnl.nla_str(3, "eth0") + rtnl.nla_u32(4, 1450)
                  + rtnl.nla_u32(10, 6) + nla(1, h("02 42 0a 58 00 02"))
                  + rtnl.nla_nest(18, rtnl.nla_str(1, "veth")))
    nl = _fake_netlink([link + _ack(1), _ack(2, errno.ENODEV), _ack(3), _ack(4, errno.ENODEV),
                        _ack(5, errno.EPERM)])
    assert nl.get_link("eth0") == {"index": 4, "name": "eth0", "flags": 0x1043, "mtu": 1450,
                                   "master": 6, "address": "02:42:0a:58:00:02", "kind": "veth"}
    assert nl.link_index("nope") is None
    assert nl.delete_link("veth1") is True
    assert nl.delete_link("veth1") is False
    with pytest.raises(PermissionError):
        nl.delete_link("veth1")


def test_add_address_and_route_resolve_names_once():
    link = _nlmsg(rtnl.RTM_NEWLINK, 0, 1, rtnl.ifinfomsg(4, 0) + rtnl.nla_str(3, "eth0"))
    nl = _fake_netlink([link + _ack(1), _ack(2), _ack(3)])
    nl.add_address("eth0", "10.88.0.2/16")
    nl.add_default_route("10.88.0.1", 4)
    get, addr, route = nl._sock.sent
    assert addr == msg_new_addr(2, 4, "10.88.0.2/16")
    assert route == msg_new_route(3, None, "10.88.0.1", oif=4)


def test_missing_link_for_address_is_enodev():
    nl = _fake_netlink([_ack(1, errno.ENODEV)])
    with pytest.raises(OSError) as e:
        nl.add_address("nope0", "10.0.0.2/24")
    assert e.value.errno == errno.ENODEV and "link nope0" in str(e.value)


def test_closed_socket():
    nl = _fake_netlink([])
    nl.close()
    nl.close()
    with pytest.raises(OSError):
        nl.set_up("lo")


def test_real_socket_unprivileged_read_of_lo():
    """Reading links needs no privilege: a real round trip to the kernel."""
    with Netlink() as nl:
        assert nl.link_index("lo") == 1
        assert nl.link_mtu("lo") >= 1280
        assert nl.link_index("skiffnosuch0") is None


# --- helpers --------------------------------------------------------------------------------
def test_random_mac_is_unicast_and_local():
    for _ in range(50):
        mac = rtnl.random_mac()
        b = rtnl.mac_bytes(mac)
        assert b[0] & 1 == 0 and b[0] & 2 == 2


def test_sysctl_set_returns_old_value(tmp_path):
    p = tmp_path / "knob"
    p.write_text("0\n")
    assert rtnl.sysctl_set(str(p), "1") == "0"
    assert p.read_text() == "1"
    assert rtnl.sysctl_set(str(p), "1") == "1"


def test_import_is_light():
    """rtnl must not pull in socket/enum/selectors/ctypes/pyroute2 (import-time budget)."""
    import subprocess
    code = ("import sys; import skiff.runtime.network.rtnl; "
            "print(sorted(m for m in ('socket', 'enum', 'selectors', 'ctypes', 'pyroute2', "
            "'ipaddress') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": _repo()}).stdout
    assert out.strip() == "[]"


def _repo():
    import os
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
