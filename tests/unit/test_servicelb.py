"""The ServiceLB controller (skiff.controller.servicelb): LoadBalancer Services get the nodes'
addresses as their ingress, one Service a port, as k3s's ServiceLB."""
from __future__ import annotations

import asyncio

import pytest

from skiff.controller.servicelb import held_ports, ingress_for, node_address


def node(name, ip, ready=True, external=None, labels=None):
    addrs = [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
    if external:
        addrs.append({"type": "ExternalIP", "address": external})
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"addresses": addrs, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def lb(name, *ports, created="2026-01-01T00:00:00Z", cls=None, typ="LoadBalancer"):
    spec = {"type": typ, "ports": [{"port": p, "protocol": proto} for proto, p in ports]}
    if cls:
        spec["loadBalancerClass"] = cls
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}


def test_ingress_is_every_ready_nodes_address():
    nodes = [node("b", "10.0.0.12"), node("a", "10.0.0.2"), node("c", "10.0.0.3", ready=False),
             node("d", "10.0.0.4", labels={"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
             node("e", "10.0.0.5", external="203.0.113.5"), node("lo", "127.0.0.1")]
    assert ingress_for(nodes) == [{"ip": "10.0.0.2", "ipMode": "VIP"}, {"ip": "10.0.0.12", "ipMode": "VIP"},
                                  {"ip": "203.0.113.5", "ipMode": "VIP"}]
    assert node_address(node("lo", "127.0.0.1")) is None
    assert ingress_for([]) == []


def test_a_port_is_held_by_the_oldest_service():
    old = lb("old", ("TCP", 80), ("TCP", 443), created="2026-01-01T00:00:00Z")
    new = lb("new", ("TCP", 80), created="2026-01-02T00:00:00Z")
    udp = lb("dns", ("UDP", 80), created="2026-01-03T00:00:00Z")
    other = lb("other", ("TCP", 80), cls="example.com/lb")          # another implementation's
    plain = lb("plain", ("TCP", 443), typ="ClusterIP")
    api = lb("api", ("TCP", 6443))
    held = held_ports([new, udp, old, other, plain, api], reserved={("TCP", 6443)})
    assert held == {"default/old": set(), "default/new": {("TCP", 80)}, "default/dns": set(),
                    "default/api": {("TCP", 6443)}}
    # the old one gone: the next in line takes the port
    assert held_ports([new, udp])["default/new"] == set()


@pytest.mark.asyncio
async def test_controller_sets_and_clears_the_ingress(tmp_path):
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.servicelb import ServiceLBController
    cp = ControlPlane(str(tmp_path / "cp"))
    await cp.start()
    ctl = None
    try:
        client = cp.local_client()
        for n in (node("n1", "192.0.2.11"), node("n2", "192.0.2.12")):
            n = {"apiVersion": "v1", "kind": "Node", **n}
            st = n.pop("status")
            made = await client.create("nodes", n)
            await client.update("nodes", {**made, "status": st}, subresource="status")
        ctl = ServiceLBController(client)
        await ctl.start()

        async def svc_spec(name, typ="LoadBalancer", port=80):
            return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                    "spec": {"type": typ, "selector": {"app": name}, "ports": [{"port": port}]}}

        async def ingress(name, want, timeout=10):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                got = [i["ip"] for i in ((await client.get("services", name, "default")).get("status") or {})
                       .get("loadBalancer", {}).get("ingress") or []]
                if got == want:
                    return
                assert loop.time() < deadline, got
                await asyncio.sleep(0.05)
        await client.create("services", await svc_spec("web"), "default")
        await ingress("web", ["192.0.2.11", "192.0.2.12"])
        await asyncio.sleep(0.01)
        await client.create("services", await svc_spec("web2"), "default")      # port 80 is web's
        await asyncio.sleep(0.5)
        await ingress("web2", [])
        evs = [e for e in (await client.list("events", "default"))["items"]
               if e["involvedObject"]["name"] == "web2" and e["reason"] == "PortInUse"]
        assert evs and "80/TCP" in evs[0]["message"]
        # a node going NotReady leaves the ingress
        n2 = await client.get("nodes", "n2")
        n2["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        await client.update("nodes", n2, subresource="status")
        await ingress("web", ["192.0.2.11"])
        # web deleted: web2 takes the port
        await client.delete("services", "web", "default")
        await ingress("web2", ["192.0.2.11"])
        # no longer a LoadBalancer: the ingress is cleared
        cur = await client.get("services", "web2", "default")
        cur["spec"]["type"] = "ClusterIP"
        for p in cur["spec"]["ports"]:
            p.pop("nodePort", None)
        cur["spec"].pop("externalTrafficPolicy", None)
        cur["spec"].pop("allocateLoadBalancerNodePorts", None)
        await client.update("services", cur)
        await ingress("web2", [])
    finally:
        if ctl is not None:
            await ctl.stop()
        await cp.stop()
