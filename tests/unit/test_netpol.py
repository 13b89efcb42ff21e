"""networking.k8s.io/v1 NetworkPolicies: defaults, kube-apiserver's validation messages and
field paths, get's cells, and the agent's pure rule compiler (policies + pods + namespaces ->
nftables text, skiff.agent.netpol)."""
from __future__ import annotations

import pytest

from skiff.agent.netpol import Ruleset, compile_policies, pod_info, render, slim_pod
from skiff.api.tables import CELLS, COLUMNS
from skiff.api.validation import ValidationError
from skiff.controller.admission import admit


def np_obj(spec: dict, name: str = "p", namespace: str = "default") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def causes(spec: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        admit(np_obj(spec))
    return [(c["field"], c["message"]) for c in e.value.causes]


# ------------------------------------------------------------------------------ API

def test_defaults_policy_types_and_protocol():
    obj, _ = admit(np_obj({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}))
    assert obj["spec"]["policyTypes"] == ["Ingress"]
    assert obj["spec"]["ingress"][0]["ports"][0] == {"port": 80, "protocol": "TCP"}
    obj, _ = admit(np_obj({"podSelector": {}, "egress": [{}]}))
    assert obj["spec"]["policyTypes"] == ["Ingress", "Egress"]
    obj, _ = admit(np_obj({"podSelector": {}, "egress": [], "policyTypes": ["Egress"]}))
    assert obj["spec"]["policyTypes"] == ["Egress"]                       # given: kept
    obj, _ = admit({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "x"}})
    assert obj["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_ports_messages():
    got = causes({"podSelector": {}, "ingress": [{"ports": [
        {"protocol": "ICMP"}, {"port": 0}, {"port": 100, "endPort": 90}, {"port": 80, "endPort": 70000},
        {"port": "http", "endPort": 90}, {"endPort": 3}, {"port": "Not_A_Name"}]}]})
    p = "spec.ingress[0].ports"
    assert got == [
        (f"{p}[0].protocol", 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'),
        (f"{p}[1].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
        (f"{p}[2].endPort", "Invalid value: 100: must be greater than or equal to `port`"),
        (f"{p}[3].endPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
        (f"{p}[4].endPort", "Invalid value: 90: may not be specified when `port` is non-numeric"),
        (f"{p}[5].endPort", "Invalid value: 3: may not be specified when `port` is not specified"),
        (f"{p}[6].port", 'Invalid value: "Not_A_Name": must contain only alpha-numeric characters (a-z, 0-9), '
                         'and hyphens (-)'),
    ]


def test_peers_and_ip_blocks():
    got = causes({"podSelector": {"matchLabels": {"a": "b"}}, "egress": [{"to": [
        {}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "11.0.0.0/16", "10.0.0.0/8", "x"]}},
        {"ipBlock": {"cidr": "nope"}}, {"ipBlock": {"cidr": ""}},
        {"podSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}, "namespaceSelector": {}}]}]})
    t = "spec.egress[0].to"
    assert got == [
        (f"{t}[0]", "Required value: must specify a peer"),
        (f"{t}[1]", "Forbidden: may not specify both ipBlock and another peer"),
        (f"{t}[2].ipBlock.except[1]", 'Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`'),
        (f"{t}[2].ipBlock.except[2]", 'Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`'),
        (f"{t}[2].ipBlock.except[3]", 'Invalid value: "x": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
                                      '2001:db8::/64)'),
        (f"{t}[3].ipBlock.cidr", 'Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
                                 '2001:db8::/64)'),
        (f"{t}[4].ipBlock.cidr", "Required value"),
        (f"{t}[5].podSelector.matchExpressions[0].values",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ]


def test_policy_types_messages():
    assert causes({"podSelector": {}, "policyTypes": ["Ingress", "Outbound"]}) == [
        ("spec.policyTypes[1]", 'Unsupported value: "Outbound": supported values: "Ingress", "Egress"')]
    assert causes({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}) == [
        ("spec.policyTypes", 'Invalid value: &[]networking.PolicyType{"Ingress", "Egress", "Ingress"}: may not '
                             "specify more than two policyTypes")]


def test_schema_refuses_unknown_fields_and_the_kind_is_named():
    with pytest.raises(ValidationError) as e:
        admit(np_obj({"podSelector": {}, "ingress": [{"source": []}]}))
    assert str(e.value).startswith('NetworkPolicy.networking.k8s.io "p" is invalid: ')
    assert e.value.causes[0]["field"].startswith("spec.ingress[0]")


def test_get_columns_as_kubectl():
    assert [c["name"] for c in COLUMNS["networkpolicies"]] == ["Name", "Pod-Selector", "Age"]
    cells = CELLS["networkpolicies"]
    assert cells(np_obj({"podSelector": {}}), None)[:2] == ["p", "<none>"]
    sel = {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]}
    assert cells(np_obj({"podSelector": sel}), None)[1] == "a=1,b=2,t notin (x)"


# ------------------------------------------------------------------------------ the compiler

def pod(name, ip, node="n1", ns="default", labels=None, ports=(), phase="Running", host=False):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"nodeName": node, "hostNetwork": host,
                     "containers": [{"name": "c", "image": "busybox",
                                     "ports": [{"name": n, "containerPort": p, "protocol": pr} for n, pr, p in ports]}]},
            "status": {"podIP": ip, "phase": phase}}


NAMESPACES = [{"metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}},
              {"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team", "team": "a"}}}]
PODS = [pod("srv", "10.244.1.5", labels={"app": "srv"}, ports=[("http", "TCP", 8080), ("dns", "UDP", 53)]),
        pod("cli", "10.244.1.6", labels={"role": "client"}),
        pod("far", "10.244.2.7", node="n2", ns="team", labels={"role": "client"}, ports=[("web", "TCP", 80)]),
        pod("done", "10.244.1.9", labels={"role": "client"}, phase="Succeeded"),
        pod("hostnet", "192.168.0.2", labels={"app": "srv", "role": "client"}, host=True)]


def chain(rs: Ruleset, prefix: str, pod_name: str) -> tuple[str, ...]:
    return next(rules for name, rules in rs.chains if name.startswith(prefix) and name.endswith("-" + pod_name))


def set_of(rs: Ruleset, rule: str) -> tuple[str, ...]:
    name = rule.split("@", 1)[1].split()[0]
    return next(elems for n, _, elems in rs.sets if n == name)


REJECT = ("ct status dnat drop", "meta l4proto tcp reject with tcp reset", "reject with icmp type admin-prohibited")


def test_no_policy_no_rules_and_an_empty_table():
    rs = compile_policies([], PODS, NAMESPACES, "n1")
    assert rs == Ruleset()
    assert render(rs, "skiffnp-x") == "add table ip skiffnp-x\ndelete table ip skiffnp-x\ntable ip skiffnp-x {\n}\n"


def test_default_deny_selects_only_local_matching_pods():
    rs = compile_policies([np_obj({"podSelector": {"matchLabels": {"app": "srv"}}, "policyTypes": ["Ingress"]})],
                          PODS, NAMESPACES, "n1")
    assert [ip for ip, _ in rs.ingress] == ["10.244.1.5"] and rs.egress == ()
    assert chain(rs, "in-", "srv") == REJECT
    # on n2 nothing of that namespace is local: no chain at all
    assert compile_policies([np_obj({"podSelector": {}})], PODS, NAMESPACES, "n2").chains == ()
    text = render(rs, "t")
    assert "ip daddr vmap @ingress-pods" in text and "ip saddr vmap @egress-pods" not in text
    assert "ct state established,related accept" in text
    assert "type filter hook forward priority -5; policy accept;" in text


def test_pod_and_namespace_selectors_ip_blocks_and_named_ports():
    pol = np_obj({"podSelector": {"matchLabels": {"app": "srv"}}, "policyTypes": ["Ingress"], "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"protocol": "TCP", "port": "http"}]},
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}},
                  {"ipBlock": {"cidr": "172.16.0.0/16", "except": ["172.16.128.0/17"]}}],
         "ports": [{"protocol": "UDP", "port": 5000, "endPort": 5010}, {"protocol": "SCTP", "port": 9}]},
        {"ports": [{"protocol": "TCP", "port": "nosuch"}]},
        {"from": [{"namespaceSelector": {}}]}]})
    rs = compile_policies([pol], PODS, NAMESPACES, "n1")
    rules = chain(rs, "in-", "srv")
    assert rules[-3:] == REJECT and len(rules) == 7
    # rule 0: same-namespace role=client pods (cli, not the finished or host-network ones), port http -> 8080
    assert rules[0].endswith(" meta l4proto tcp th dport 8080 return") and set_of(rs, rules[0]) == ("10.244.1.6",)
    # rule 1: pods of team=a namespaces (on another node) and the ipBlock less its except
    assert set_of(rs, rules[1]) == ("10.244.2.7", "172.16.0.0/17")
    assert rules[1].endswith(" meta l4proto udp th dport 5000-5010 return")
    assert rules[2].endswith(" meta l4proto sctp th dport 9 return") and set_of(rs, rules[2]) == set_of(rs, rules[1])
    # rule 2: a named port srv does not have: nothing; rule 3: any pod of any namespace, any port
    assert rules[3].startswith("ip saddr @p-") and rules[3].endswith(" return") and " th dport" not in rules[3]
    assert set_of(rs, rules[3]) == ("10.244.1.5", "10.244.1.6", "10.244.2.7")


def test_egress_with_named_ports_of_the_destination_and_policies_adding_up():
    out = np_obj({"podSelector": {"matchLabels": {"role": "client"}}, "egress": [
        {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": "web"}, {"protocol": "UDP", "port": 53}]}]},
        name="out")
    more = np_obj({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}, name="all-out", namespace="team")
    rs = compile_policies([out, more], PODS, NAMESPACES, "n1")
    rules = chain(rs, "eg-", "cli")
    assert rules[0] == f"ip daddr . meta l4proto . th dport @{rules[0].split('@')[1].split()[0]} return"
    assert set_of(rs, rules[0]) == ("10.244.2.7 . tcp . 80",)
    assert rules[1].startswith("ip daddr @p-") and rules[1].endswith(" meta l4proto udp th dport 53 return")
    assert rules[2:] == REJECT
    assert [ip for ip, _ in rs.egress] == ["10.244.1.6"]
    # the cli pod is egress-isolated only; srv (not role=client) is not selected at all
    assert [ip for ip, _ in rs.ingress] == ["10.244.1.6"]     # "out" has the default Ingress type too
    assert chain(rs, "in-", "cli") == REJECT
    # "all-out" (namespace team) allows everything for far, which is on n2
    rs2 = compile_policies([out, more], PODS, NAMESPACES, "n2")
    assert chain(rs2, "eg-", "far") == ("return",) + REJECT


def test_render_is_valid_nft_syntax_shape():
    pol = np_obj({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
    text = render(compile_policies([pol], PODS, NAMESPACES, "n1"), "skiffnp-br")
    assert text.startswith("add table ip skiffnp-br\ndelete table ip skiffnp-br\ntable ip skiffnp-br {\n")
    assert "set p-" in text and "flags interval; elements = { 0.0.0.0/0 }" in text
    assert "map ingress-pods { type ipv4_addr : verdict; elements = { 10.244.1.5 : jump in-" in text


def test_pod_info_and_slim_pod():
    assert pod_info(pod("a", "")) is None and pod_info(pod("h", "1.2.3.4", host=True)) is None
    assert pod_info(pod("f", "1.2.3.4", phase="Failed")) is None
    info = pod_info(slim_pod(PODS[0]))
    assert info.ip == "10.244.1.5" and info.ports == (("http", "TCP", 8080), ("dns", "UDP", 53))
    assert info.label_map == {"app": "srv"} and info.node == "n1"
