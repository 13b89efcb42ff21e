"""FakePodRuntime: PodRuntime's interface in memory (hollow nodes), and the real Agent over it."""
from __future__ import annotations

import asyncio

import pytest

from skiff.agent.fakeruntime import FakeImageManager, FakePodRuntime
from skiff.agent.podruntime import PodRuntime
from skiff.errors import InvalidArgument, NotFound


def pod(uid="u1", name="web"):
    return {"metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_same_interface_as_podruntime():
    for name in ("ensure_network", "ensure_pause_image", "run_sandbox", "run_sandbox_async", "sandbox",
                 "start_container", "start_container_async", "containers", "all_pods",
                 "signal_container", "stop_container", "remove_container", "remove_pod",
                 "is_running", "log_path"):
        assert callable(getattr(PodRuntime, name)), name
        assert callable(getattr(FakePodRuntime, name)), name


def test_sandbox_and_containers_run_until_stopped():
    rt = FakePodRuntime()
    rt.ensure_network("10.244.3.0/24")
    assert rt.ensure_pause_image()
    p = pod()
    sb = rt.run_sandbox(p)
    assert sb.running and sb.pod_uid == "u1" and sb.ip == "10.244.3.2"
    assert rt.run_sandbox(p) is sb                      # a running sandbox is returned as it is
    assert rt.sandbox("u1") is sb and rt.sandbox("nope") is None
    info = rt.start_container(p, sb, p["spec"]["containers"][0], 0, ["A=1"])
    assert info.state == "running" and info.pid == 0 and info.started_at and info.attempt == 0
    assert rt.is_running(info.id)
    assert [i.id for i in rt.containers("u1")] == [info.id]
    assert set(rt.all_pods()) == {"u1"}
    rt.signal_container(info.id, None)                  # the stop signal (TERM): exits 0
    [i] = rt.containers("u1")
    assert i.state == "exited" and i.exit_code == 0 and i.reason == "Completed" and i.finished_at
    assert not rt.is_running(info.id)
    again = rt.start_container(p, sb, p["spec"]["containers"][0], 1, [])
    rt.signal_container(again.id, "KILL")
    cur = rt.containers("u1")[-1]
    assert cur.exit_code == 137 and cur.reason == "Error" and cur.attempt == 1
    rt.remove_container(info.id)
    assert [i.id for i in rt.containers("u1")] == [again.id]
    assert rt.log_path(again.id)
    rt.remove_pod("u1")
    assert rt.containers("u1") == [] and rt.sandbox("u1") is None and rt.all_pods() == {}
    with pytest.raises(NotFound):
        rt.log_path(again.id)
    # the address is reused
    assert rt.run_sandbox(pod("u2", "b")).ip == "10.244.3.2"


def test_bad_input():
    rt = FakePodRuntime()
    with pytest.raises(InvalidArgument):
        rt.run_sandbox({"metadata": {}})
    sb = rt.run_sandbox(pod())
    with pytest.raises(InvalidArgument):
        rt.start_container(pod("u9"), sb, {"name": "c", "image": "x"}, 0, [])
    with pytest.raises(InvalidArgument):
        rt.start_container(pod(), sb, {"name": "c"}, 0, [])


@pytest.mark.asyncio
async def test_images_always_present():
    recorded = []

    class Ev:
        def record(self, *a, **kw):
            recorded.append(a[2])
    im = FakeImageManager(Ev())
    await im.ensure(pod(), {"name": "c", "image": "nothere:1"})
    await im.ensure(pod(), {"name": "c", "image": "nothere:1", "imagePullPolicy": "Always"})
    assert recorded == ["Pulled", "Pulling", "Pulled"]


@pytest.mark.asyncio
async def test_real_agent_over_fake_runtime(tmp_path):
    """The real Agent (registration, lease, informer, pod workers, status) with --runtime fake,
    against an in-process control plane."""
    from skiff.agent.agent import Agent, AgentConfig
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.controllers import standard_controllers
    cp = ControlPlane(str(tmp_path / "cp"))
    for c in standard_controllers():
        if c.__name__ in ("scheduler", "nodeipam"):
            cp.add_controller(c)
    await cp.start()
    try:
        token = await cp.mint_node_token("hollow-1")
        agent = Agent(AgentConfig(server=cp.url, token=token, node_name="hollow-1", runtime="fake",
                                  root=str(tmp_path / "agent"), node_ip="127.0.0.1", log_port=0,
                                  lease_duration=4))
        from skiff.api.client import HTTPClient
        agent.client = HTTPClient(cp.url, token, ca_file=cp.ca_file)
        await asyncio.wait_for(agent.start(), 30)
        client = cp.local_client()
        await client.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": "web", "namespace": "default"},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                            "default")
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            p = await client.get("pods", "web", "default")
            if (p.get("status") or {}).get("phase") == "Running":
                break
            assert asyncio.get_running_loop().time() < deadline, p
            await asyncio.sleep(0.1)
        assert p["spec"]["nodeName"] == "hollow-1"
        cs = p["status"]["containerStatuses"][0]
        assert cs["ready"] and "running" in cs["state"] and p["status"]["podIP"].count(".") == 3
        await client.delete("pods", "web", "default")
        while True:
            try:
                await client.get("pods", "web", "default")
            except Exception:  # noqa: BLE001 - 404: the agent confirmed the deletion
                break
            assert asyncio.get_running_loop().time() < deadline + 10
            await asyncio.sleep(0.1)
        assert agent.runtime.all_pods() == {}
        await agent.stop()
    finally:
        await cp.stop()


def test_host_network_pod_gets_the_node_ip_and_no_pod_address():
    """As PodRuntime (and the kubelet): a hostNetwork pod's IP is the node's InternalIP, and it
    takes no address from the pod network."""
    rt = FakePodRuntime()
    rt.ensure_network("10.244.3.0/24")
    rt.host_ip = "192.0.2.7"
    hp = pod("h1", "hostnet")
    hp["spec"]["hostNetwork"] = True
    assert rt.run_sandbox(hp).ip == "192.0.2.7"
    assert rt.run_sandbox(pod("u2")).ip == "10.244.3.2"   # the first pod address is still free
    rt.remove_pod("h1")
    assert rt.run_sandbox(pod("u3")).ip == "10.244.3.3"


def test_host_network_hosts_file_is_the_kubelets(tmp_path):
    from skiff.agent.podruntime import host_network_hosts
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.1.2.3\tnodebox\n")
    spec = {"hostNetwork": True, "hostAliases": [{"ip": "10.9.9.9", "hostnames": ["a", "b"]}]}
    assert host_network_hosts(spec, str(hosts)) == (
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n10.1.2.3\tnodebox\n"
        "\n# Entries added by HostAliases.\n10.9.9.9\ta\tb\n")
    assert host_network_hosts({}, str(hosts)).count("\n") == 3


@pytest.mark.asyncio
async def test_changed_configmap_reaches_the_written_volumes_once_a_sync_period(tmp_path):
    """The agent reads the mounted ConfigMaps again every --sync-frequency and writes the
    volumes whose files changed (the kubelet updates mounted ConfigMaps and Secrets); the
    pods of the node share the read; an immutable one is not read again."""
    from skiff.agent.agent import Agent, AgentConfig
    from skiff.api.client import HTTPClient
    from skiff.controller.controlplane import ControlPlane
    from skiff.controller.controllers import standard_controllers
    cp = ControlPlane(str(tmp_path / "cp"))
    for c in standard_controllers():
        if c.__name__ in ("scheduler", "nodeipam"):
            cp.add_controller(c)
    await cp.start()
    agent = None
    try:
        token = await cp.mint_node_token("hollow-1")
        agent = Agent(AgentConfig(server=cp.url, token=token, node_name="hollow-1", runtime="fake",
                                  root=str(tmp_path / "agent"), node_ip="127.0.0.1", log_port=0,
                                  lease_duration=4, resync=0.1, sync_frequency=2))
        agent.client = HTTPClient(cp.url, token, ca_file=cp.ca_file)
        await asyncio.wait_for(agent.start(), 30)
        client = cp.local_client()
        await client.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "cfg", "namespace": "default"},
                                           "data": {"mode": "slow"}}, "default")
        await client.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
                                           "metadata": {"name": "fixed", "namespace": "default"},
                                           "data": {"k": "v"}}, "default")
        for name in ("a", "b"):
            await client.create("pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                                         "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                                          {"name": "fixed", "mountPath": "/etc/fixed"}]}],
                         "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}},
                                     {"name": "fixed", "configMap": {"name": "fixed"}}]}}, "default")
        loop = asyncio.get_running_loop()

        async def written(want: bytes, timeout: float = 20) -> None:
            deadline = loop.time() + timeout
            while True:
                seen = [(w._written.get("cfg") or [None])[0] for w in agent.workers.values()]
                if len(seen) == 2 and all(f is not None and f[1] == want for f in seen):
                    return
                assert loop.time() < deadline, seen
                await asyncio.sleep(0.05)
        await written(b"slow")
        cm = await client.get("configmaps", "cfg", "default")
        cm["data"]["mode"] = "fast"
        await client.update("configmaps", cm)
        before = agent.objects.fetches
        t0 = loop.time()
        await written(b"fast")
        assert loop.time() - t0 < 5
        # both pods' volumes were refreshed from one read, not one each; the immutable
        # ConfigMap was not read again
        assert agent.objects.fetches - before == 1
        await agent.stop()
        agent = None
    finally:
        if agent is not None:
            await agent.stop()
        await cp.stop()
