"""The API server's own ``kubernetes`` Service in ``default`` (skiff.controller.apiendpoints): the
first cluster IP of the service CIDR, port 443 to the API server's port, and its Endpoints and
EndpointSlice at the advertise address; recreated when deleted; none at a loopback-only listener."""
from __future__ import annotations

import asyncio

import pytest

from skiff.api.errors import APIError
from skiff.controller.apiendpoints import advertise_address
from skiff.controller.controlplane import ControlPlane
from tests.unit.test_controllers_live import wait_for

async def _get(c, resource):
    try:
        return await c.get(resource, "kubernetes", "default")
    except APIError as e:
        if e.code == 404:
            return None
        raise


@pytest.mark.asyncio
async def test_the_kubernetes_service_and_its_endpoints(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", advertise_address="10.77.0.5",
                      service_cidr="10.100.0.0/16")
    cp.kubernetes_service_interval = 0.2
    await cp.start()
    try:
        c = cp.local_client()
        port = int(cp.url.rsplit(":", 1)[1])
        svc = await wait_for(lambda: _get(c, "services"))
        assert svc["spec"]["clusterIP"] == "10.100.0.1" and svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]
        assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
        assert "selector" not in svc["spec"]
        ep = await wait_for(lambda: _get(c, "endpoints"))
        assert ep["subsets"] == [{"addresses": [{"ip": "10.77.0.5"}],
                                  "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        es = await wait_for(lambda: _get(c, "endpointslices"))
        assert es["endpoints"][0]["addresses"] == ["10.77.0.5"] and es["ports"][0]["port"] == port
        assert es["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
        # no other Service may take the address; deleted, the objects come back
        with pytest.raises(APIError) as ei:
            await c.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "thief"},
                                        "spec": {"clusterIP": "10.100.0.1", "ports": [{"port": 80}]}}, "default")
        assert "provided IP is already allocated" in ei.value.message
        await c.delete("services", "kubernetes", "default")
        await c.delete("endpoints", "kubernetes", "default")
        await asyncio.sleep(0.05)
        assert (await wait_for(lambda: _get(c, "services")))["spec"]["clusterIP"] == "10.100.0.1"
        await wait_for(lambda: _get(c, "endpoints"))
        # the server's certificate names the Service's address and the advertise address
        import ssl
        cert = ssl._ssl._test_decode_cert(str(tmp_path / "cp" / "pki" / "server.crt"))
        ips = {v for k, v in cert["subjectAltName"] if k == "IP Address"}
        assert {"10.100.0.1", "10.77.0.5"} <= ips
    finally:
        await cp.stop()


@pytest.mark.asyncio
async def test_a_loopback_listener_has_no_endpoints(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    cp.kubernetes_service_interval = 0.2
    await cp.start()
    try:
        c = cp.local_client()
        assert (await wait_for(lambda: _get(c, "services")))["spec"]["clusterIP"] == "10.96.0.1"
        await asyncio.sleep(0.3)
        assert await _get(c, "endpoints") is None and await _get(c, "endpointslices") is None
    finally:
        await cp.stop()


def test_advertise_address():
    assert advertise_address("127.0.0.1") is None and advertise_address("::1") is None
    assert advertise_address("192.0.2.7") == "192.0.2.7"
    assert advertise_address("127.0.0.1", "192.0.2.9") == "192.0.2.9"
    host = advertise_address("0.0.0.0")
    assert host is None or not host.startswith("127.")


@pytest.mark.asyncio
async def test_every_namespace_gets_the_root_ca(tmp_path):
    """root-ca-cert-publisher: kube-root-ca.crt in every namespace, with the cluster CA, made
    again when deleted and put back when changed."""
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    await cp.start()
    try:
        c = cp.local_client()
        ca = open(cp.ca_file).read()

        async def cm(ns):
            try:
                return await c.get("configmaps", "kube-root-ca.crt", ns)
            except APIError as e:
                if e.code == 404:
                    return None
                raise
        for ns in ("default", "kube-system"):
            assert (await wait_for(lambda: cm(ns)))["data"] == {"ca.crt": ca}
        await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        got = await wait_for(lambda: cm("team"))
        assert got["data"]["ca.crt"] == ca and "kube-apiserver" in got["metadata"]["annotations"][
            "kubernetes.io/description"]
        await c.delete("configmaps", "kube-root-ca.crt", "team")
        await asyncio.sleep(0.05)
        assert (await wait_for(lambda: cm("team")))["data"] == {"ca.crt": ca}
        got = await cm("team")
        await c.update("configmaps", {**got, "data": {"ca.crt": "tampered"}})

        async def restored():
            g = await cm("team")
            return g if g and g["data"] == {"ca.crt": ca} else None
        await wait_for(restored)
    finally:
        await cp.stop()
