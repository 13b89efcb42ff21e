"""Cluster IPs and node ports of Services (skiff.controller.serviceips through the registry): the
ranges and their reserved addresses, requested and taken values with Kubernetes' messages,
node ports by type, updates that keep, allocate and free, deletes that free, the state rebuilt
from the store after a restart, dry runs and failed writes that keep nothing, and concurrent
creates that never share an address. A real SQLite store and watch cache."""
from __future__ import annotations

import asyncio
import copy
import ipaddress
from contextlib import asynccontextmanager

import pytest

from skiff.api.errors import APIError
from skiff.controller.dryrun import dry_run_scope
from skiff.controller.registry import Registry
from skiff.controller.serviceips import ServiceAllocator, fill_update, parse_port_range
from skiff.controller.storage import SqliteStore, WatchCache

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def registry(tmp_path, **opts):
    store = SqliteStore(str(tmp_path / "state.db"))
    cache = WatchCache(store)
    await cache.start()
    try:
        reg = Registry(cache, **opts)
        await reg.ensure_namespaces()
        yield reg
    finally:
        await cache.close()
        await store.close()


def svc(name="web", **spec):
    base = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": base}


async def invalid(coro) -> dict:
    with pytest.raises(APIError) as ei:
        await coro
    assert ei.value.status["code"] == 422, ei.value.status
    c = ei.value.status["details"]["causes"]
    assert len(c) == 1
    return c[0]


# -- the allocator alone ---------------------------------------------------------------------------

async def test_ranges_and_reserved_addresses():
    a = ServiceAllocator("10.96.0.0/29", "30000-30002")
    assert a.reserved_ip == "10.96.0.1"
    got = {a.next_ip() for _ in range(5)}
    assert got == {f"10.96.0.{i}" for i in range(2, 7)}        # not .0, .1 (kubernetes), .7 (broadcast)
    assert a.next_ip() is None
    assert a.take_ip("10.96.0.1") == "provided IP is already allocated"
    assert a.take_ip("10.96.0.7") == ("the provided IP (10.96.0.7) is not in the valid range. The range of "
                                      "valid IPs is 10.96.0.0/29")
    a.free_ip("10.96.0.1")                                     # the reserved address is never freed
    assert a.take_ip("10.96.0.1") == "provided IP is already allocated"
    assert {a.next_port() for _ in range(3)} == {30000, 30001, 30002} and a.next_port() is None
    assert a.take_port(30003) == "provided port is not in the valid range. The range of valid ports is 30000-30002"
    assert a.take_port(30001) == "provided port is already allocated"
    v6 = ServiceAllocator("fd00:10:96::/108")
    assert v6.family == "IPv6" and v6.next_ip().startswith("fd00:10:96::")
    assert parse_port_range("30000-32767") == (30000, 32767)
    for bad in ("10.96.0.0/31", "10.0.0.0/8", "fd00::/64", "10.96.0.1/24"):
        with pytest.raises(ValueError):
            ServiceAllocator(bad)


async def test_dynamic_picks_leave_the_bottom_of_the_range_to_requests():
    a = ServiceAllocator()                                      # 10.96.0.0/12: the first 256 are for requests
    ips = [ipaddress.ip_address(a.next_ip()) for _ in range(50)]
    assert all(ip >= ipaddress.ip_address("10.96.1.1") for ip in ips) and len(set(ips)) == 50
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") for ip in ips)


# -- through the registry --------------------------------------------------------------------------

async def test_create_allocates_and_checks_requests(tmp_path):
    async with registry(tmp_path) as reg:
        s = await reg.create("services", svc())
        ip = s["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") and s["spec"]["clusterIPs"] == [ip]
        assert ip != "10.96.0.1"
        c = await invalid(reg.create("services", svc("b", clusterIP=ip)))
        assert c == {"field": "spec.clusterIPs", "reason": "FieldValueInvalid",
                     "message": f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is '
                                f'already allocated'}
        c = await invalid(reg.create("services", svc("b", clusterIP="10.0.0.1")))
        assert c["message"] == ('Invalid value: []string{"10.0.0.1"}: failed to allocate IP 10.0.0.1: the provided '
                                'IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12')
        s = await reg.create("services", svc("b", clusterIP="10.96.0.10"))
        assert s["spec"]["clusterIPs"] == ["10.96.0.10"]
        # node ports
        np = await reg.create("services", svc("np", type="NodePort", ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80, "nodePort": 30080}]))
        p = np["spec"]["ports"]
        assert p[0]["nodePort"] == p[1]["nodePort"] and 30000 <= p[0]["nodePort"] <= 32767   # one per port number
        assert p[2]["nodePort"] == 30080
        c = await invalid(reg.create("services", svc("np2", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])))
        assert c == {"field": "spec.ports[0].nodePort", "reason": "FieldValueInvalid",
                     "message": "Invalid value: 30080: provided port is already allocated"}
        c = await invalid(reg.create("services", svc("np2", type="NodePort", ports=[{"port": 80, "nodePort": 8080}])))
        assert c["message"] == ("Invalid value: 8080: provided port is not in the valid range. The range of valid "
                                "ports is 30000-32767")
        # headless and ExternalName services get no IP; LoadBalancer gets node ports (unless told not to)
        h = await reg.create("services", svc("h", clusterIP="None"))
        assert h["spec"]["clusterIPs"] == ["None"] and h["spec"]["ipFamilies"] == ["IPv4"]
        hs = await reg.create("services", svc("hs", clusterIP="None", selector=None))
        assert (hs["spec"]["ipFamilyPolicy"], hs["spec"]["ipFamilies"]) == ("RequireDualStack", ["IPv4", "IPv6"])
        en = await reg.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "en"},
                                           "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
        assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(en["spec"])
        lb = await reg.create("services", svc("lb", type="LoadBalancer", externalTrafficPolicy="Local"))
        assert lb["spec"]["ports"][0]["nodePort"] and lb["spec"]["healthCheckNodePort"]
        assert lb["status"] == {"loadBalancer": {}}
        lb2 = await reg.create("services", svc("lb2", type="LoadBalancer", allocateLoadBalancerNodePorts=False))
        assert "nodePort" not in lb2["spec"]["ports"][0]
        c = await invalid(reg.create("services", svc("ds", ipFamilyPolicy="RequireDualStack")))
        assert c["message"] == ('Invalid value: "RequireDualStack": this cluster is not configured for dual-stack '
                                'services')
        c = await invalid(reg.create("services", svc("v6", ipFamilies=["IPv6"])))
        assert c == {"field": "spec.ipFamilies[0]", "reason": "FieldValueInvalid",
                     "message": 'Invalid value: "IPv6": not configured on this cluster'}
        pref = await reg.create("services", svc("pref", ipFamilyPolicy="PreferDualStack"))
        assert pref["spec"]["ipFamilies"] == ["IPv4"] and len(pref["spec"]["clusterIPs"]) == 1
        ips, ports = reg.service_ips.in_use()
        assert {"10.96.0.1", ip, "10.96.0.10"} <= ips and 30080 in ports


async def test_updates_keep_allocate_and_free(tmp_path):
    async with registry(tmp_path) as reg:
        s = await reg.create("services", svc())
        ip = s["spec"]["clusterIP"]
        # kubectl apply/replace send the manifest: no clusterIP, no ipFamilies; both are kept
        out = await reg.update("services", svc(ports=[{"port": 81}]), "default", "web")
        assert out["spec"]["clusterIP"] == ip and out["spec"]["clusterIPs"] == [ip]
        assert (out["spec"]["ipFamilies"], out["spec"]["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
        out = await reg.update("services", svc(clusterIP="", ports=[{"port": 81}]), "default", "web")
        assert out["spec"]["clusterIP"] == ip            # "" is unset too (helm charts write it)
        c = await invalid(reg.update("services", svc(clusterIP="10.96.0.99"), "default", "web"))
        assert c == {"field": "spec.clusterIPs[0]", "reason": "FieldValueInvalid",
                     "message": 'Invalid value: []string{"10.96.0.99"}: may not change once set'}
        c = await invalid(reg.patch("services", "web", {"spec": {"clusterIPs": ["10.96.0.99"]}}, "default"))
        assert c["field"] == "spec.clusterIPs[0]" and "may not change once set" in c["message"]
        assert "10.96.0.99" not in reg.service_ips.in_use()[0]
        # ClusterIP -> NodePort allocates node ports; an update without them keeps them
        out = await reg.patch("services", "web", {"spec": {"type": "NodePort"}}, "default")
        node_port = out["spec"]["ports"][0]["nodePort"]
        assert node_port in reg.service_ips.in_use()[1] and out["spec"]["externalTrafficPolicy"] == "Cluster"
        out = await reg.update("services", svc(type="NodePort", ports=[{"port": 81}]), "default", "web")
        assert out["spec"]["ports"][0]["nodePort"] == node_port and out["spec"]["clusterIP"] == ip
        # changing a node port takes the new one and frees the old one
        out = await reg.patch("services", "web", {"spec": {"ports": [{"port": 81, "nodePort": 31111}]}}, "default",
                              patch_type="strategic")
        assert out["spec"]["ports"][0]["nodePort"] == 31111
        assert 31111 in reg.service_ips.in_use()[1] and node_port not in reg.service_ips.in_use()[1]
        # NodePort -> ClusterIP drops and frees them
        out = await reg.patch("services", "web", {"spec": {"type": "ClusterIP"}}, "default")
        assert "nodePort" not in out["spec"]["ports"][0] and "externalTrafficPolicy" not in out["spec"]
        assert 31111 not in reg.service_ips.in_use()[1]
        # ClusterIP -> ExternalName frees the IP; back again allocates one
        out = await reg.patch("services", "web", {"spec": {"type": "ExternalName", "externalName": "x.example.com"}},
                              "default")
        assert "clusterIP" not in out["spec"] and "ipFamilies" not in out["spec"]
        assert ip not in reg.service_ips.in_use()[0]
        out = await reg.patch("services", "web", {"spec": {"type": "ClusterIP", "externalName": None}}, "default")
        assert out["spec"]["clusterIP"] and out["spec"]["clusterIP"] in reg.service_ips.in_use()[0]
        assert out["spec"]["ipFamilies"] == ["IPv4"]
        # LoadBalancer with externalTrafficPolicy Local: a health check node port, freed when it goes
        out = await reg.patch("services", "web", {"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}},
                              "default")
        hc = out["spec"]["healthCheckNodePort"]
        assert hc in reg.service_ips.in_use()[1]
        out = await reg.patch("services", "web", {"spec": {"externalTrafficPolicy": "Cluster"}}, "default")
        assert "healthCheckNodePort" not in out["spec"] and hc not in reg.service_ips.in_use()[1]
        # a status write does not touch the allocations
        st = await reg.update("services", {**out, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}},
                              "default", "web", subresource="status")
        assert st["spec"] == out["spec"]


async def test_delete_frees(tmp_path):
    async with registry(tmp_path) as reg:
        s = await reg.create("services", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}],
                                             clusterIP="10.96.0.20"))
        assert s["spec"]["clusterIP"] == "10.96.0.20"
        await reg.delete("services", "web", "default")
        assert "10.96.0.20" not in reg.service_ips.in_use()[0] and 30080 not in reg.service_ips.in_use()[1]
        s = await reg.create("services", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}],
                                             clusterIP="10.96.0.20"))
        # held by a finalizer: freed only when the object goes
        await reg.patch("services", "web", {"metadata": {"finalizers": ["example.com/hold"]}}, "default")
        await reg.delete("services", "web", "default")
        assert "10.96.0.20" in reg.service_ips.in_use()[0]
        await reg.patch("services", "web", {"metadata": {"finalizers": None}}, "default")
        assert "10.96.0.20" not in reg.service_ips.in_use()[0] and 30080 not in reg.service_ips.in_use()[1]


async def test_state_is_rebuilt_after_a_restart(tmp_path):
    async with registry(tmp_path, service_cidr="10.96.0.0/29") as reg:
        made = [await reg.create("services", svc(f"s{i}", type="NodePort")) for i in range(3)]
    ips = {s["spec"]["clusterIP"] for s in made}
    ports = {s["spec"]["ports"][0]["nodePort"] for s in made}
    async with registry(tmp_path, service_cidr="10.96.0.0/29") as reg:      # a new controller, same store
        for ip in ips:
            c = await invalid(reg.create("services", svc("again", clusterIP=ip)))
            assert c["message"].endswith("provided IP is already allocated")
        for port in ports:
            c = await invalid(reg.create("services", svc("again", type="NodePort",
                                                         ports=[{"port": 80, "nodePort": port}])))
            assert c["message"].endswith("provided port is already allocated")
        more = [await reg.create("services", svc(f"t{i}")) for i in range(2)]   # the 2 addresses left
        assert not {s["spec"]["clusterIP"] for s in more} & ips
        with pytest.raises(APIError) as ei:
            await reg.create("services", svc("full"))
        assert ei.value.status["code"] == 500 and "range is full" in ei.value.status["message"]


async def test_dry_runs_and_failed_writes_keep_nothing(tmp_path):
    async with registry(tmp_path) as reg:
        before = reg.service_ips.in_use()
        with dry_run_scope(["All"]):
            d = await reg.create("services", svc(type="NodePort", clusterIP="10.96.0.30",
                                                 ports=[{"port": 80, "nodePort": 30080}]))
            assert d["spec"]["clusterIP"] == "10.96.0.30" and d["spec"]["ports"][0]["nodePort"] == 30080
            d2 = await reg.create("services", svc("auto"))
            assert d2["spec"]["clusterIP"]
        assert reg.service_ips.in_use() == before
        s = await reg.create("services", svc(clusterIP="10.96.0.30"))
        # a create that fails in the store (the name is taken) gives its allocation back
        c = await invalid(reg.create("services", svc("other", clusterIP="10.96.0.31",
                                                     ports=[{"port": 80, "appProtocol": "bad proto"}])))
        assert c["field"] == "spec.ports[0].appProtocol"
        with pytest.raises(APIError) as ei:
            await reg.create("services", svc(clusterIP="10.96.0.31", type="NodePort",
                                             ports=[{"port": 80, "nodePort": 30081}]))
        assert ei.value.status["reason"] == "AlreadyExists"
        ips, ports = reg.service_ips.in_use()
        assert "10.96.0.31" not in ips and 30081 not in ports
        # a dry-run update and delete keep the old allocations and take no new ones
        with dry_run_scope(["All"]):
            out = await reg.patch("services", "web", {"spec": {"type": "NodePort"}}, "default")
            assert out["spec"]["ports"][0]["nodePort"]
            await reg.delete("services", "web", "default")
        assert reg.service_ips.in_use()[1] == before[1]
        assert "10.96.0.30" in reg.service_ips.in_use()[0]
        assert (await reg.get("services", "web", "default"))["spec"] == s["spec"]


async def test_concurrent_creates_never_share_an_address(tmp_path):
    async with registry(tmp_path, service_cidr="10.96.0.0/28", node_port_range="30000-30009") as reg:
        results = await asyncio.gather(*(reg.create("services", svc(f"s{i}", type="NodePort"))
                                         for i in range(20)), return_exceptions=True)
        made = [r for r in results if isinstance(r, dict)]
        failed = [r for r in results if isinstance(r, APIError)]
        assert len(made) == 10 and len(failed) == 10       # 10 node ports (13 usable IPs)
        ips = [s["spec"]["clusterIP"] for s in made]
        ports = [s["spec"]["ports"][0]["nodePort"] for s in made]
        assert len(set(ips)) == 10 and len(set(ports)) == 10
        # the failures kept nothing: exactly what the stored services hold is taken
        held_ips, held_ports = reg.service_ips.in_use()
        assert held_ips == set(ips) | {"10.96.0.1"} and held_ports == set(ports)


async def test_fill_update():
    cur = {"spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
                    "ports": [{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81,
                                                                             "nodePort": 30002}]}}
    new = {"spec": {"type": "NodePort", "ports": [{"name": "b", "port": 82}, {"name": "a", "port": 80}]}}
    fill_update(cur, new)
    assert new["spec"]["clusterIPs"] == ["10.96.0.5"] and new["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert [p.get("nodePort") for p in new["spec"]["ports"]] == [30002, 30001]     # by port name
    # a node port the client put on another port is not handed out twice
    new = {"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30002}, {"name": "b",
                                                                                               "port": 81}]}}
    fill_update(cur, new)
    assert [p.get("nodePort") for p in new["spec"]["ports"]] == [30002, None]
    # to ClusterIP: unchanged node ports and policy dropped, the IP kept
    new = copy.deepcopy(cur)
    new["spec"]["type"] = "ClusterIP"
    fill_update(cur, new)
    assert [p.get("nodePort") for p in new["spec"]["ports"]] == [None, None]
    assert "externalTrafficPolicy" not in new["spec"] and new["spec"]["clusterIP"] == "10.96.0.5"
    # clusterIP changed alone: clusterIPs follows (and validation refuses the change)
    new = copy.deepcopy(cur)
    new["spec"]["clusterIP"] = "10.96.0.6"
    fill_update(cur, new)
    assert new["spec"]["clusterIPs"] == ["10.96.0.6"]


async def test_namespace_deletion_removes_services_endpoints_and_slices(tmp_path):
    from skiff.controller.local_client import LocalClient
    from skiff.controller.namespace import NamespaceController
    async with registry(tmp_path) as reg:
        await reg.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        s = await reg.create("services", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), "shop")
        await reg.create("endpoints", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                                       "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]},
                         "shop")
        await reg.create("endpointslices", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                            "metadata": {"name": "web-1"}, "addressType": "IPv4",
                                            "endpoints": [{"addresses": ["10.244.0.5"]}]}, "shop")
        ctl = NamespaceController(LocalClient(reg), interval=0.05)
        await ctl.start()
        try:
            await reg.delete("namespaces", "shop")
            for _ in range(200):
                try:
                    await reg.get("namespaces", "shop")
                except APIError:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the namespace was not emptied")
        finally:
            await ctl.stop()
        for plural in ("services", "endpoints", "endpointslices"):
            assert (await reg.list(plural, "shop"))["items"] == []
        ips, ports = reg.service_ips.in_use()
        assert s["spec"]["clusterIP"] not in ips and 30080 not in ports
