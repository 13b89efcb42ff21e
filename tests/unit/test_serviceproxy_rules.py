"""The node side of Services and of the pod network, without a kernel: the desired state from
Services and EndpointSlices, its nftables JSON, the routes from Nodes, the pod network's rules,
the node authorizer's reads, and the sync loops over in-memory backends."""
from __future__ import annotations

import asyncio
import json

import pytest

from skiff.agent.fakeruntime import FakePodRuntime, FakeServiceBackend
from skiff.agent.noderoutes import NodeRoutes, desired_routes, slim_node
from skiff.agent.serviceproxy import (MASQUERADE_MARK, Endpoint, ProxyState, ServiceProxy,
                                      desired_state, render, table_name_for)
from skiff.api.errors import APIError
from skiff.controller.auth import authorize, node_user
from skiff.runtime.network import nft

NODE, CIDR = "n1", "10.244.1.0/24"


def svc(name, ip="10.96.0.10", ports=None, ns="default", **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "clusterIPs": [ip] if ip and ip != "None" else [],
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080,
                                                               "protocol": "TCP"}], **spec}}


def ep(ip, node=NODE, ready=True, serving=None, terminating=None):
    cond = {"ready": ready}
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "nodeName": node, "conditions": cond}


def eps(service, *endpoints, ns="default", name=None, ports=None):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def state(services, slices, **kw):
    return desired_state(services, slices, NODE, CIDR, **kw)


# ------------------------------------------------------------------------------ desired state

def test_ready_endpoints_behind_the_cluster_ip():
    st = state([svc("web")], [eps("web", ep("10.244.1.5"), ep("10.244.2.7", node="n2"),
                                  ep("10.244.2.8", node="n2", ready=False))])
    [p] = st.ports
    assert p.proto == "tcp" and p.name == "default/web:http/tcp"
    assert p.endpoints == (Endpoint("10.244.1.5", 8080, True), Endpoint("10.244.2.7", 8080, False))
    assert st.vips == (("10.96.0.10", "tcp", 80, p.chain),)
    assert st.cluster_ips == ("10.96.0.10",)
    assert st.no_endpoints == () and st.nodeports == ()


def test_a_service_without_ready_endpoints_is_refused():
    st = state([svc("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])],
               [eps("web", ep("10.244.1.5", ready=False))])
    assert st.ports == () and st.vips == ()
    assert st.no_endpoints == (("10.96.0.10", "tcp", 80),)
    assert st.no_endpoint_nodeports == (("tcp", 30080),)
    assert st.cluster_ips == ("10.96.0.10",)        # other ports of the address: refused too
    st = state([svc("web")], [])                     # no slice at all
    assert st.no_endpoints == (("10.96.0.10", "tcp", 80),)


def test_serving_terminating_endpoints_are_a_fallback_only():
    term = ep("10.244.1.6", ready=False, serving=True, terminating=True)
    st = state([svc("web")], [eps("web", term)])
    assert [e.ip for e in st.ports[0].endpoints] == ["10.244.1.6"]
    st = state([svc("web")], [eps("web", term, ep("10.244.1.9"))])
    assert [e.ip for e in st.ports[0].endpoints] == ["10.244.1.9"]
    # unset ready means ready (EndpointSlice's contract)
    st = state([svc("web")], [eps("web", {"addresses": ["10.244.1.3"], "nodeName": NODE})])
    assert [e.ip for e in st.ports[0].endpoints] == ["10.244.1.3"]


def test_ports_are_matched_by_name_and_protocol():
    ports = [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"},
             {"name": "sctp", "port": 99, "protocol": "SCTP"}]
    slice_ports = [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"},
                   {"name": "sctp", "port": 99, "protocol": "SCTP"}]
    st = state([svc("web", ports=ports)], [eps("web", ep("10.244.1.5"), ports=slice_ports)])
    got = {(p.proto, p.name): [(e.ip, e.port) for e in p.endpoints] for p in st.ports}
    assert got == {("tcp", "default/web:http/tcp"): [("10.244.1.5", 8080)],
                   ("udp", "default/web:dns/udp"): [("10.244.1.5", 5353)]}      # SCTP: not served
    assert sorted(v[:3] for v in st.vips) == [("10.96.0.10", "tcp", 80), ("10.96.0.10", "udp", 53)]


def test_slices_are_merged_deduplicated_and_kept_to_their_service():
    st = state([svc("web"), svc("api", ip="10.96.0.11"), svc("web", ip="10.96.0.12", ns="other")],
               [eps("web", ep("10.244.1.5"), name="web-1"), eps("web", ep("10.244.1.5"), ep("10.244.1.4"), name="web-2"),
                eps("api", ep("10.244.1.8")), eps("web", ep("10.244.9.9", node="n9"), ns="other")])
    by = {p.name: [e.ip for e in p.endpoints] for p in st.ports}
    assert by == {"default/web:http/tcp": ["10.244.1.4", "10.244.1.5"], "default/api:http/tcp": ["10.244.1.8"],
                  "other/web:http/tcp": ["10.244.9.9"]}


def test_unserved_kinds_of_service_are_skipped():
    services = [svc("headless", ip="None"), svc("pending", ip=""),
                {**svc("ext", ip=""), "spec": {"type": "ExternalName", "externalName": "example.org"}},
                svc("v6", ip="fd00::10")]
    st = state(services, [eps(s["metadata"]["name"], ep("10.244.1.5")) for s in services])
    assert st == ProxyState(pod_cidr=CIDR)


def test_endpoints_are_local_by_node_name_or_pod_cidr():
    st = state([svc("web")], [eps("web", ep("10.244.1.5", node="n2"),
                                  {"addresses": ["10.244.1.6"]}, {"addresses": ["10.244.3.6"]})])
    assert {e.ip: e.local for e in st.ports[0].endpoints} == \
        {"10.244.1.5": False, "10.244.1.6": True, "10.244.3.6": False}


def test_traffic_policies_local():
    s = svc("web", type="NodePort", internalTrafficPolicy="Local", externalTrafficPolicy="Local",
            ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    st = state([s], [eps("web", ep("10.244.1.5"), ep("10.244.2.5", node="n2"))])
    [p] = st.ports
    assert [e.ip for e in p.endpoints] == ["10.244.1.5"] and p.ext_local
    assert [e.ip for e in p.local_endpoints] == ["10.244.1.5"]
    st = state([s], [eps("web", ep("10.244.2.5", node="n2"))])      # endpoints, none here: dropped
    [p] = st.ports
    assert p.endpoints == () and p.local_endpoints == ()
    assert st.vips and st.nodeports and not st.no_endpoints


def test_node_ports_and_external_ips_go_through_the_external_chain():
    s = svc("web", type="LoadBalancer", externalIPs=["192.0.2.10"],
            ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.20"}, {"hostname": "lb.example"}]}}
    st = state([s], [eps("web", ep("10.244.1.5"))])
    [p] = st.ports
    assert p.ext_chain.startswith("ext-") and p.chain.startswith("svc-")
    assert sorted(st.vips) == sorted([("10.96.0.10", "tcp", 80, p.chain), ("192.0.2.10", "tcp", 80, p.ext_chain),
                                      ("192.0.2.20", "tcp", 80, p.ext_chain)])
    assert st.nodeports == (("tcp", 30080, p.ext_chain),)
    assert st.cluster_ips == ("10.96.0.10",)     # external addresses are not refused on other ports
    # a ClusterIP service's nodePort field (left from a type change) is not served
    st = state([svc("web", ports=[{"name": "http", "port": 80, "nodePort": 30080}])], [eps("web", ep("10.244.1.5"))])
    assert st.nodeports == () and st.ports[0].ext_chain == ""


def test_the_state_does_not_depend_on_order_and_compares_equal():
    services = [svc("a", ip="10.96.0.1"), svc("b", ip="10.96.0.2")]
    slices = [eps("a", ep("10.244.1.5"), ep("10.244.1.4")), eps("b", ep("10.244.1.6"))]
    one = state(services, slices)
    two = state(services[::-1], [dict(slices[0], endpoints=slices[0]["endpoints"][::-1]), slices[1]][::-1])
    assert one == two
    assert one != state(services, slices[:1])


def test_two_services_on_one_address_and_port_do_not_break_the_map():
    st = state([svc("a"), svc("b")], [eps("a", ep("10.244.1.5")), eps("b", ep("10.244.1.6"))])
    assert len(st.vips) == 1 and st.vips[0][3].endswith("default/a/tcp/http")


# ------------------------------------------------------------------------------ nftables JSON

def _rules(cmds, chain):
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def _elements(cmds, name):
    return [e for c in cmds if "element" in c.get("add", {}) and c["add"]["element"]["name"] == name
            for e in c["add"]["element"]["elem"]]


def test_render_replaces_the_whole_table_in_one_transaction():
    st = state([svc("web")], [eps("web", ep("10.244.1.5"), ep("10.244.2.7", node="n2"))])
    cmds = render(st, "skiffsvc-x")
    assert cmds[:3] == [{"add": {"table": {"family": "ip", "name": "skiffsvc-x"}}},
                        {"delete": {"table": {"family": "ip", "name": "skiffsvc-x"}}},
                        {"add": {"table": {"family": "ip", "name": "skiffsvc-x"}}}]
    base = {c["add"]["chain"]["name"]: (c["add"]["chain"]["hook"], c["add"]["chain"]["prio"])
            for c in cmds if "chain" in c.get("add", {}) and "hook" in c["add"]["chain"]}
    assert base["nat-prerouting"] == ("prerouting", -100) and base["nat-output"] == ("output", -100)
    assert base["nat-postrouting"] == ("postrouting", 100)
    assert base["filter-prerouting"] == ("prerouting", -90) and base["filter-output"] == ("output", -90)
    for c in ("filter-prerouting", "filter-output"):     # after DNAT: refuse what was not DNATed
        assert [r[-1] for r in _rules(cmds, c)] == [{"jump": {"target": "endpoints-check"}},
                                                    {"jump": {"target": "cluster-ips-check"}}]
    assert all(c["add"]["chain"]["policy"] == "accept" for c in cmds
               if "chain" in c.get("add", {}) and "hook" in c["add"]["chain"])
    p = st.ports[0]
    assert _elements(cmds, "service-ips") == [[{"concat": ["10.96.0.10", "tcp", 80]}, {"goto": {"target": p.chain}}]]
    assert _elements(cmds, "cluster-ips") == ["10.96.0.10"]
    # the service chain: traffic not from this node's pods is masqueraded; then one of two endpoints
    mark_rule, pick = _rules(cmds, p.chain)
    assert mark_rule == [{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                    "right": {"prefix": {"addr": "10.244.1.0", "len": 24}}}},
                         {"jump": {"target": "mark-for-masquerade"}}]
    vmap = pick[0]["vmap"]
    assert vmap["key"] == {"numgen": {"mode": "random", "mod": 2, "offset": 0}}
    targets = [t[1]["goto"]["target"] for t in vmap["data"]["set"]]
    assert [t.rsplit("__", 1)[1] for t in targets] == ["10.244.1.5/8080", "10.244.2.7/8080"]
    # each endpoint chain: hairpin masquerade, then DNAT
    hair, dnat = _rules(cmds, targets[0])
    assert hair[0]["match"]["right"] == "10.244.1.5"
    assert dnat == [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
                    {"dnat": {"addr": "10.244.1.5", "port": 8080}}]
    # marked packets are masqueraded once, the mark cleared
    assert any(r == [{"masquerade": {"flags": "fully-random"}}] for r in _rules(cmds, "masquerading"))
    assert json.dumps(render(st, "skiffsvc-x")) == json.dumps(cmds)     # deterministic


def test_render_without_br_netfilter_masquerades_pod_traffic_to_local_endpoints():
    st = state([svc("web")], [eps("web", ep("10.244.1.5"), ep("10.244.2.7", node="n2"))], masquerade_local=True)
    cmds = render(st, "t")
    local, remote = [c for c in dict.fromkeys(
        c["add"]["chain"]["name"] for c in cmds if "chain" in c.get("add", {})) if c.startswith("ep-")]
    assert _rules(cmds, local)[0][0]["match"]["right"] == {"prefix": {"addr": "10.244.1.0", "len": 24}}
    assert _rules(cmds, remote)[0][0]["match"]["right"] == "10.244.2.7"


def test_render_refusals_node_ports_and_local_policy():
    s = svc("web", type="NodePort", externalTrafficPolicy="Local", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    st = state([s, svc("gone", ip="10.96.0.11")], [eps("web", ep("10.244.2.7", node="n2"))])
    cmds = render(st, "t")
    assert _elements(cmds, "no-endpoint-services") == [[{"concat": ["10.96.0.11", "tcp", 80]},
                                                        {"goto": {"target": "reject-chain"}}]]
    assert _rules(cmds, "reject-chain") == [[{"reject": {"type": "icmp", "expr": "port-unreachable"}}]]
    p = st.ports[0]
    assert _elements(cmds, "service-nodeports") == [[{"concat": ["tcp", 30080]}, {"goto": {"target": p.ext_chain}}]]
    ext = _rules(cmds, p.ext_chain)
    assert ext[-1] == [{"drop": None}]          # Local and no endpoint here: dropped, not forwarded
    assert ext[0][-1] == {"goto": {"target": p.chain}}     # this node's pods use the cluster chain
    # node ports answer on local addresses but never on 127.0.0.0/8
    [np_rule] = [r for r in _rules(cmds, "services") if r[-1]["vmap"]["data"] == "@service-nodeports"]
    assert np_rule[1]["match"] == {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                   "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}
    assert MASQUERADE_MARK == 0x4000


def test_table_names_are_per_bridge_and_plain():
    assert table_name_for("skiffpods0") == "skiffsvc-skiffpods0"
    assert table_name_for("skt1a2b3c4dp") != table_name_for("skt9f8e7d6cp")
    assert table_name_for("br.0") == "skiffsvc-br_0"
    nft.SkiffTable(name=table_name_for("br.0"), family="ip")   # a name nftables and skiff accept


# ------------------------------------------------------------------------------ routes

def node(name, cidr=None, ip=None, **extra):
    n = {"metadata": {"name": name, "resourceVersion": "5", "labels": {"a": "b"}}, "spec": {}, "status": {}}
    if cidr:
        n["spec"]["podCIDR"] = cidr
        n["spec"]["podCIDRs"] = [cidr]
    if ip:
        n["status"]["addresses"] = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]
    n["status"].update(extra)
    return n


def test_routes_to_every_other_node_with_a_pod_cidr_and_an_address():
    nodes = [node("n1", CIDR, "192.168.5.1"), node("n2", "10.244.2.0/24", "192.168.5.2"),
             node("n3", "10.244.3.0/24"), node("n4", None, "192.168.5.4"),
             node("n5", "10.244.1.128/25", "192.168.5.5"),                   # overlaps ours
             node("n6", "10.244.6.0/24", "192.168.5.6"), node("n7", "10.244.6.0/24", "192.168.5.7"),  # claimed twice
             node("n8", "10.244.8.0/24", "fd00::8")]
    assert desired_routes(nodes, "n1", CIDR) == {"10.244.2.0/24": "192.168.5.2"}


def test_slim_node_keeps_what_routes_need():
    n = node("n2", "10.244.2.0/24", "192.168.5.2", conditions=[{"type": "Ready"}], nodeInfo={"x": 1})
    s = slim_node(n)
    assert s == {"metadata": {"name": "n2", "resourceVersion": "5"},
                 "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]},
                 "status": {"addresses": n["status"]["addresses"]}}


# ------------------------------------------------------------------------------ pod network rules

def test_pod_network_rules_without_peers_and_with_them():
    rules = nft.pod_network_rules("inet", "skiff", "net:abc", "10.244.1.0/24", "br0", [])
    verbs = [(v, r["rule"]["chain"]) for v, r in rules]
    assert verbs == [("add", "postrouting"), ("insert", "forward"), ("add", "forward"), ("add", "forward")]
    masq = rules[0][1]["rule"]["expr"]
    assert masq == nft.masquerade_subnet_rule("inet", "skiff", "net:abc", "10.244.1.0/24", "br0")["rule"]["expr"]
    iso = rules[1][1]["rule"]["expr"]
    assert {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}} in iso   # replies pass
    peers = ["10.244.5.0/24", "10.244.2.0/24"]
    rules = nft.pod_network_rules("inet", "skiff", "net:abc", "10.244.1.0/24", "br0", peers, ["192.168.5.2"])
    masq, iso = rules[0][1]["rule"]["expr"], rules[1][1]["rule"]["expr"]
    pods = [{"prefix": {"addr": "10.244.2.0", "len": 24}}, {"prefix": {"addr": "10.244.5.0", "len": 24}}]
    assert masq[1] == {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                 "right": {"set": pods}}}          # the other nodes' pods: not masqueraded
    assert iso[2] == {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                "right": {"set": pods + ["192.168.5.2"]}}}   # their pods and the nodes: let in


def test_cidr_sets_are_built_as_nft_lists_them_back():
    assert nft.cidr_set(["10.244.2.0/24"]) == {"prefix": {"addr": "10.244.2.0", "len": 24}}
    assert nft.cidr_set(["10.244.3.0/24", "10.244.2.0/24"]) == {"prefix": {"addr": "10.244.2.0", "len": 23}}
    assert nft.cidr_set(["192.168.5.2/32", "192.168.5.4/32", "192.168.5.3/32"]) == \
        {"range": ["192.168.5.2", "192.168.5.4"]}
    assert nft.cidr_set(["10.0.0.0/16", "10.0.5.0/24", "192.168.5.9/32", "10.2.0.0/24"]) == \
        {"set": [{"prefix": {"addr": "10.0.0.0", "len": 16}}, {"prefix": {"addr": "10.2.0.0", "len": 24}},
                 "192.168.5.9"]}


def test_replace_rules_does_nothing_when_the_rules_are_in_place():
    rules = nft.pod_network_rules("inet", "skiff", "net:abc", "10.244.1.0/24", "br0", ["10.244.2.0/24"])
    listed = [dict(r["rule"], handle=i) for i, (_, r) in enumerate(rules, 1)]
    other = dict(nft.masquerade_subnet_rule("inet", "skiff", "net:zzz", "10.9.0.0/24", "br9")["rule"], handle=99)
    assert nft._replace_rules_cmds(listed[::-1] + [other], rules, "skiff:net:abc") is None
    cmds = nft._replace_rules_cmds(listed[:2] + [other], rules, "skiff:net:abc")
    assert [next(iter(c)) for c in cmds] == ["delete", "delete", "add", "insert", "add", "add"]
    assert {c["delete"]["rule"]["handle"] for c in cmds[:2]} == {1, 2}        # never another owner's


# ------------------------------------------------------------------------------ authorization

@pytest.mark.parametrize("resource", ["services", "endpoints", "endpointslices", "nodes"])
def test_a_node_may_read_what_the_service_proxy_watches(resource):
    n1 = node_user("n1")
    for verb in ("get", "list", "watch"):
        authorize(n1, verb, resource, "default" if resource != "nodes" else None, "x" if verb == "get" else None)
    if resource != "nodes":
        for verb in ("create", "update", "patch", "delete"):
            with pytest.raises(APIError) as e:
                authorize(n1, verb, resource, "default", "x")
            assert e.value.code == 403
        with pytest.raises(APIError):
            authorize(n1, "patch", resource, "default", "x", "status")


# ------------------------------------------------------------------------------ the loops

class FakeClient:
    """list + watch over in-memory objects, enough for an Informer."""

    def __init__(self, objects: dict[str, list[dict]]):
        self.objects = objects
        self.rv = 10
        self.queues: dict[str, list[asyncio.Queue]] = {}

    async def list(self, resource, namespace=None, **kw):
        return {"metadata": {"resourceVersion": str(self.rv)}, "items": list(self.objects.get(resource, []))}

    async def watch(self, resource, namespace=None, **kw):
        q: asyncio.Queue = asyncio.Queue()
        self.queues.setdefault(resource, []).append(q)
        while True:
            yield await q.get()

    def emit(self, resource, etype, obj):
        self.rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
        items = [o for o in self.objects.get(resource, []) if o["metadata"]["name"] != obj["metadata"]["name"]
                 or o["metadata"].get("namespace") != obj["metadata"].get("namespace")]
        self.objects[resource] = items + ([obj] if etype != "DELETED" else [])
        for q in self.queues.get(resource, []):
            q.put_nowait((etype, obj))


async def _until(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_service_proxy_syncs_coalesces_and_cleans_up():
    client = FakeClient({"services": [svc("web")], "endpointslices": []})
    backend = FakeServiceBackend("skiffsvc-test")
    proxy = ServiceProxy(client, NODE, CIDR, backend, min_interval=0.05, resync=60)
    await proxy.start()
    await asyncio.wait_for(proxy.synced.wait(), 5)
    assert backend.state.no_endpoints == (("10.96.0.10", "tcp", 80),) and backend.applies == 1
    await _until(lambda: client.queues.get("endpointslices"))
    for i in range(20):       # a burst: far fewer writes than events
        client.emit("endpointslices", "ADDED" if i == 0 else "MODIFIED",
                    eps("web", *[ep(f"10.244.1.{j + 2}") for j in range(i + 1)]))
    await _until(lambda: backend.state.ports and len(backend.state.ports[0].endpoints) == 20)
    assert backend.applies <= 6, backend.applies
    applies = backend.applies
    client.emit("services", "MODIFIED", {**svc("web"), "metadata": {**svc("web")["metadata"], "labels": {"x": "y"}}})
    await asyncio.sleep(0.3)
    assert backend.applies == applies          # an irrelevant change writes nothing
    backend.state = None                       # "someone deleted the table": the resync puts it back
    proxy._wake.set()
    await _until(lambda: backend.state is not None)
    client.emit("services", "DELETED", svc("web"))
    await _until(lambda: not backend.state.cluster_ips)
    await proxy.stop()
    assert backend.state is None               # removed at stop


@pytest.mark.asyncio
async def test_node_routes_follow_the_nodes_and_are_removed_at_stop():
    rt = FakePodRuntime()
    client = FakeClient({"nodes": [node("n1", CIDR, "192.168.5.1"), node("n2", "10.244.2.0/24", "192.168.5.2")]})
    routes = NodeRoutes(client, "n1", CIDR, rt.route_backend(), min_interval=0.02, resync=60)
    await routes.start()
    await asyncio.wait_for(routes.synced.wait(), 5)
    assert rt.routes.routes == {"10.244.2.0/24": "192.168.5.2"} and rt.pod_peers == ["10.244.2.0/24"]
    assert rt.pod_peer_hosts == ["192.168.5.2"]
    await _until(lambda: client.queues.get("nodes"))
    client.emit("nodes", "ADDED", node("n3", "10.244.3.0/24", "192.168.5.3"))
    await _until(lambda: len(rt.routes.routes) == 2)
    client.emit("nodes", "DELETED", node("n2"))
    await _until(lambda: rt.routes.routes == {"10.244.3.0/24": "192.168.5.3"})
    assert rt.pod_peers == ["10.244.3.0/24"]
    await routes.stop()
    assert rt.routes.routes == {} and rt.pod_peers == [] and rt.pod_peer_hosts == []
