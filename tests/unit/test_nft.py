"""The nftables JSON that skiff builds, checked against nftables 1.0.6's schema and listings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skiff.errors import InvalidArgument, SkiffError
from skiff.runtime.network import nft
from skiff.runtime.network.nft import (
    NftError, base_chain_objs, comment_for, delete_rule_cmd, dnat_rule, forward_rules,
    ipv4_prefix, loopback_masquerade_rule, masquerade_subnet_rule, owner_of, parse_error,
    publish_rules, rule_key, rules_in,
)

T = "skiff_t"
FIB_LOCAL = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                       "right": "local"}}
NFPROTO4 = {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}


def dport(proto, port):
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}},
                      "right": port}}


def test_output_flag_values_match_libnftables_1_0_6():
    assert (nft.NFT_CTX_OUTPUT_REVERSEDNS, nft.NFT_CTX_OUTPUT_SERVICE, nft.NFT_CTX_OUTPUT_STATELESS,
            nft.NFT_CTX_OUTPUT_HANDLE, nft.NFT_CTX_OUTPUT_JSON, nft.NFT_CTX_OUTPUT_ECHO,
            nft.NFT_CTX_OUTPUT_GUID, nft.NFT_CTX_OUTPUT_NUMERIC_PROTO) == (1, 2, 4, 8, 16, 32, 64, 128)


def test_base_chains():
    assert base_chain_objs("inet", T) == [
        {"chain": {"family": "inet", "table": T, "name": "prerouting", "type": "nat",
                   "hook": "prerouting", "prio": -100, "policy": "accept"}},
        {"chain": {"family": "inet", "table": T, "name": "output", "type": "nat",
                   "hook": "output", "prio": -100, "policy": "accept"}},
        {"chain": {"family": "inet", "table": T, "name": "postrouting", "type": "nat",
                   "hook": "postrouting", "prio": 100, "policy": "accept"}},
        {"chain": {"family": "inet", "table": T, "name": "forward", "type": "filter",
                   "hook": "forward", "prio": 0, "policy": "accept"}},
    ]


def test_dnat_on_any_local_address():
    for host_ip in (None, "", "0.0.0.0"):
        assert dnat_rule("inet", T, "prerouting", "c1", host_ip, 8080, "tcp", "10.88.0.2", 80) == {
            "rule": {"family": "inet", "table": T, "chain": "prerouting", "comment": "skiff:c1",
                     "expr": [NFPROTO4, FIB_LOCAL, dport("tcp", 8080),
                              {"dnat": {"family": "ip", "addr": "10.88.0.2", "port": 80}}]}}


def test_dnat_on_one_address():
    assert dnat_rule("inet", T, "output", "c1", "192.168.30.70", 5432, "udp", "10.88.0.2", 5433) == {
        "rule": {"family": "inet", "table": T, "chain": "output", "comment": "skiff:c1",
                 "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip",
                                                                      "field": "daddr"}},
                                     "right": "192.168.30.70"}},
                          dport("udp", 5432),
                          {"dnat": {"family": "ip", "addr": "10.88.0.2", "port": 5433}}]}}


def test_dnat_in_an_ip_table_names_no_family():
    # nft 1.0.6 lists `dnat to` of an ip table without "family", and rejects meta nfproto there.
    r = dnat_rule("ip", T, "output", "c1", None, 1, "tcp", "10.0.0.1", 2)["rule"]
    assert r["expr"] == [FIB_LOCAL, dport("tcp", 1), {"dnat": {"addr": "10.0.0.1", "port": 2}}]


def test_loopback_masquerade():
    assert loopback_masquerade_rule("inet", T, "c1", "skiff0", "tcp", "10.88.0.2", 80) == {
        "rule": {"family": "inet", "table": T, "chain": "postrouting", "comment": "skiff:c1",
                 "expr": [
                     {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
                     {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "skiff0"}},
                     {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                "right": "10.88.0.2"}},
                     dport("tcp", 80),
                     {"masquerade": None}]}}


def test_publish_rules_per_binding():
    any_ip = publish_rules("inet", T, "c1", None, 8080, "tcp", "10.88.0.2", 80, "skiff0")
    assert [r["rule"]["chain"] for r in any_ip] == ["prerouting", "output", "postrouting"]
    assert {r["rule"]["comment"] for r in any_ip} == {"skiff:c1"}
    lo = publish_rules("inet", T, "c1", "127.0.0.1", 8080, "tcp", "10.88.0.2", 80, "skiff0")
    assert [r["rule"]["chain"] for r in lo] == ["prerouting", "output", "postrouting"]
    # A binding on another address is never reached through loopback: no masquerade for it.
    other = publish_rules("inet", T, "c1", "192.168.30.70", 8080, "tcp", "10.88.0.2", 80, "skiff0")
    assert [r["rule"]["chain"] for r in other] == ["prerouting", "output"]


def test_masquerade_subnet():
    assert masquerade_subnet_rule("inet", T, "net:ab", "10.88.0.1/16", "skiff0") == {
        "rule": {"family": "inet", "table": T, "chain": "postrouting", "comment": "skiff:net:ab",
                 "expr": [
                     {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                "right": {"prefix": {"addr": "10.88.0.0", "len": 16}}}},
                     {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "skiff0"}},
                     {"masquerade": None}]}}


def test_forward_rules():
    assert forward_rules("inet", T, "net:ab", "skiff0") == [
        {"rule": {"family": "inet", "table": T, "chain": "forward", "comment": "skiff:net:ab",
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                                      "right": "skiff0"}},
                           {"accept": None}]}},
        {"rule": {"family": "inet", "table": T, "chain": "forward", "comment": "skiff:net:ab",
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}},
                                      "right": "skiff0"}},
                           {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                      "right": ["established", "related"]}},
                           {"accept": None}]}},
    ]


# A listing exactly as `nft -j list table inet skiff_t` printed it (nftables 1.0.6).
LISTING = {"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": T, "handle": 1}},
    {"chain": {"family": "inet", "table": T, "name": "output", "handle": 1, "type": "nat",
               "hook": "output", "prio": -100, "policy": "accept"}},
    {"rule": {"family": "inet", "table": T, "chain": "output", "handle": 2, "comment": "skiff:x",
              "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}},
                       {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                                  "right": "local"}},
                       {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                  "right": 8080}},
                       {"dnat": {"family": "ip", "addr": "10.88.0.2", "port": 80}}]}},
    {"rule": {"family": "inet", "table": T, "chain": "postrouting", "handle": 4,
              "comment": "skiff:net",
              "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                  "right": {"prefix": {"addr": "10.88.0.0", "len": 16}}}},
                       {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "skiff0"}},
                       {"masquerade": None}]}},
]}


def test_built_rules_compare_equal_to_their_listing():
    listed = rules_in(LISTING)
    assert [r["handle"] for r in listed] == [2, 4]
    built = dnat_rule("inet", T, "output", "x", None, 8080, "tcp", "10.88.0.2", 80)["rule"]
    assert rule_key(built) == rule_key(listed[0])
    assert rule_key(masquerade_subnet_rule("inet", T, "net", "10.88.0.0/16", "skiff0")["rule"]) \
        == rule_key(listed[1])
    other = dnat_rule("inet", T, "output", "x", None, 8081, "tcp", "10.88.0.2", 80)["rule"]
    assert rule_key(other) != rule_key(listed[0])


def test_delete_by_handle():
    assert delete_rule_cmd(rules_in(LISTING)[0]) == {
        "delete": {"rule": {"family": "inet", "table": T, "chain": "output", "handle": 2}}}


def test_comments_name_the_owner():
    assert comment_for("abc") == "skiff:abc"
    assert owner_of("skiff:abc") == "abc"
    assert owner_of("docker rule") is None and owner_of(None) is None
    assert comment_for("c" * 64) == "skiff:" + "c" * 64
    for bad in ("", None, "x" * 200, "a\nb"):
        with pytest.raises(InvalidArgument):
            comment_for(bad)


@pytest.mark.parametrize("args, text", [
    (dict(host_ip="::"), "only IPv4"),
    (dict(host_ip="1.2.3"), "not an IPv4 address"),
    (dict(dest_ip="fd00::2"), "only IPv4"),
    (dict(host_port=0), "not a port number"),
    (dict(host_port=65536), "not a port number"),
    (dict(dest_port="80"), "not a port number"),
    (dict(proto="sctp"), "not tcp or udp"),
    (dict(bridge="a-very-long-bridge-name"), "not an interface name"),
    (dict(bridge=""), "not an interface name"),
])
def test_publish_rejects_bad_input(args, text):
    kw = dict(host_ip=None, host_port=8080, proto="tcp", dest_ip="10.88.0.2", dest_port=80,
              bridge="skiff0") | args
    with pytest.raises(InvalidArgument, match=text):
        publish_rules("inet", T, "c1", **kw)


def test_ipv4_prefix():
    assert ipv4_prefix("10.88.7.9/16") == ("10.88.0.0", 16)
    assert ipv4_prefix("10.213.5.0/24") == ("10.213.5.0", 24)
    assert ipv4_prefix("192.168.1.7/32") == ("192.168.1.7", 32)
    for bad in ("10.88.0.0", "10.88.0.0/0", "10.88.0.0/33", "10.88.0.0/x", "fd00::/64", None):
        with pytest.raises(InvalidArgument):
            ipv4_prefix(bad)
    # A /32 lists as a plain address, not a prefix.
    expr = masquerade_subnet_rule("inet", T, "n", "10.0.0.5/32", "br")["rule"]["expr"]
    assert expr[0]["match"]["right"] == "10.0.0.5"


def test_parse_error():
    assert parse_error("internal:0:0-0: Error: Could not process rule: No such file or directory\n\n") \
        == "Could not process rule: No such file or directory"
    assert parse_error("internal:0:0-0: Error: Unknown object passed to add command.\n\n"
                       "internal:0:0-0: Error: Parsing command array at index 0 failed.\n\n") \
        == "Unknown object passed to add command."
    assert parse_error("Error: syntax error, unexpected '{'\n{bad json\n^\n") \
        == "syntax error, unexpected '{'"
    assert parse_error("something odd\n") == "something odd"
    assert parse_error("") == "unknown error"
    e = NftError("nftables: x", "Error: Could not process rule: No such file or directory")
    assert isinstance(e, SkiffError) and e.exit_code == 125 and e.not_found
    assert not NftError("nftables: x", "Error: syntax error").not_found


def test_table_arguments_are_checked():
    with pytest.raises(InvalidArgument):
        nft.SkiffTable(nft.Nft(), family="bridge")
    with pytest.raises(InvalidArgument):
        nft.SkiffTable(nft.Nft(), name="bad name;")


def _libnftables() -> bool:
    try:
        nft._load()
        return True
    except SkiffError:
        return False


@pytest.mark.skipif(not _libnftables(), reason="libnftables.so.1 is not installed")
def test_syntax_errors_raise_before_touching_the_kernel():
    # The parser fails before any netlink message: no root needed, and the message is nft's.
    n = nft.Nft()
    with pytest.raises(SkiffError, match=r"^nftables: syntax error, unexpected"):
        n.run("add rulez inet nothing here")
    with pytest.raises(SkiffError, match=r"^nftables: Unknown object passed to add command"):
        n.run({"nftables": [{"add": {"bogus": {}}}]})
    n.close()
    n.close()


def test_flock_creates_its_directory_and_excludes_others(tmp_path):
    import fcntl
    path = str(tmp_path / "locks" / "nft.lock")
    with nft._Flock(path):
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit
    os.close(fd)
    with nft._Flock(None):  # no path: no lock
        pass


def test_import_is_lazy():
    code = ("import sys; import skiff.runtime.network.nft; "
            "print(sorted(m for m in ('ctypes', 'json', 'fcntl', 'skiff.runtime.fastjson') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
