"""The agent's side of PersistentVolumeClaims (skiff.agent.claims), against a real registry (SQLite
store) as the node's user and a real directory tree: claim -> volume -> host directory (made for a
local-path volume of this node), the kubelet's FailedMount words while a claim is not bound, the
pod the runtime mounts, and the removal of a deleted local-path volume's data (never anything
outside the agent's storage directory)."""
from __future__ import annotations

import asyncio
import os
import types

import pytest
import pytest_asyncio

from skiff.agent import claims as C
from skiff.agent.env import ConfigError
from skiff.controller.auth import node_user
from skiff.controller.local_client import LocalClient
from skiff.controller.registry import Registry
from skiff.controller.storage import SqliteStore, WatchCache
from skiff.controller.volumes import logic as L

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def reg(tmp_path):
    store = SqliteStore(str(tmp_path / "state.db"))
    cache = WatchCache(store)
    await cache.start()
    r = Registry(cache, bookmark_interval=0.2)
    await r.ensure_namespaces()
    await r.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}})
    yield r
    await cache.close()


def agent_on(reg, root):
    return types.SimpleNamespace(client=LocalClient(reg, node_user("n1")), name="n1",
                                 config=types.SimpleNamespace(root=str(root)))


def claim_pod(claim="data", read_only=False):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                {"name": "d", "mountPath": "/d"}, {"name": "e", "mountPath": "/e"}]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}},
                                 {"name": "e", "emptyDir": {}}]}}


async def make_bound(reg, base, *, local_path=True, path=None, node="n1"):
    pvc = await reg.create("persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "local-path"}}, "default")
    sc = {"metadata": {"name": "local-path"}, "reclaimPolicy": "Delete"}
    pv = L.local_path_volume(pvc, sc, node, base)
    if not local_path:
        pv["metadata"]["annotations"] = {}
        pv["metadata"].pop("finalizers")
    if path:
        pv["spec"]["hostPath"]["path"] = path
    pv = await reg.create("persistentvolumes", pv)
    pvc = await reg.update("persistentvolumeclaims", L.bind_claim(pvc, pv))
    await reg.update("persistentvolumeclaims", {**pvc, "status": L.claim_status_bound(pvc, pv)}, subresource="status")
    return pvc, pv


async def test_a_pod_waits_for_its_claim(reg, tmp_path):
    a = agent_on(reg, tmp_path / "root")
    await reg.create("pods", claim_pod(), "default")
    with pytest.raises(ConfigError) as ei:
        await C.resolve_claims(a, claim_pod())
    assert ei.value.reason == "FailedMount"
    assert str(ei.value) == ("Unable to attach or mount volumes: unmounted volumes=[d], unattached volumes=[d]: "
                             "error processing PVC default/data: failed to fetch PVC from API server: "
                             'persistentvolumeclaims "data" not found')
    await reg.create("persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, "default")
    with pytest.raises(ConfigError) as ei:
        await C.resolve_claims(a, claim_pod())
    assert str(ei.value).endswith("error processing PVC default/data: PVC is not bound")


async def test_a_local_path_volume_is_made_on_first_mount(reg, tmp_path):
    root = tmp_path / "root"
    a = agent_on(reg, root)
    base = C.storage_dir(str(root))
    pvc, pv = await make_bound(reg, base)
    await reg.create("pods", claim_pod(read_only=True), "default")
    got = await C.resolve_claims(a, claim_pod(read_only=True))
    d = os.path.join(base, f"pvc-{pvc['metadata']['uid']}_default_data")
    assert got == {"d": {"path": d, "type": "Directory", "readOnly": True}}
    assert os.path.isdir(d) and os.stat(d).st_mode & 0o777 == 0o777
    rp = C.runtime_pod(claim_pod(), got)
    assert rp["spec"]["volumes"] == [{"name": "d", "hostPath": {"path": d, "type": "Directory"}},
                                     {"name": "e", "emptyDir": {}}]
    c = C.read_only_mounts(claim_pod()["spec"]["containers"][0], got)
    assert [m.get("readOnly") for m in c["volumeMounts"]] == [True, None]


async def test_a_local_path_volume_outside_the_storage_directory_is_refused(reg, tmp_path):
    root = tmp_path / "root"
    a = agent_on(reg, root)
    outside = tmp_path / "elsewhere" / "pvc-x"
    await make_bound(reg, C.storage_dir(str(root)), path=str(outside))
    await reg.create("pods", claim_pod(), "default")
    with pytest.raises(ConfigError) as ei:
        await C.resolve_claims(a, claim_pod())
    assert "is not in this node's storage directory" in str(ei.value)
    assert not outside.exists()


async def test_a_volume_of_another_node_is_refused(reg, tmp_path):
    a = agent_on(reg, tmp_path / "root")
    await make_bound(reg, "/elsewhere", node="n2")
    await reg.create("pods", claim_pod(), "default")
    with pytest.raises(ConfigError) as ei:
        await C.resolve_claims(a, claim_pod())
    assert 'has node affinity that does not match node "n1"' in str(ei.value)


async def test_remove_data_stays_inside_the_storage_directory(tmp_path):
    root = tmp_path / "root"
    base = C.storage_dir(str(root))
    os.makedirs(base)
    r = C.LocalPathReclaimer(types.SimpleNamespace(config=types.SimpleNamespace(root=str(root)), name="n1"))

    def vol(path):
        return {"metadata": {"name": "v"}, "spec": {"hostPath": {"path": str(path)}}}
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "f").write_text("keep")
    assert r.remove_data(vol(victim)) is False                         # not in the storage directory
    link = os.path.join(base, "pvc-link")
    os.symlink(victim, link)
    assert r.remove_data(vol(link)) is False                           # a symlink out
    assert r.remove_data(vol(os.path.join(base, "pvc-link", "..", "..", "..", "precious"))) is False
    other = os.path.join(base, "notes")
    os.mkdir(other)
    assert r.remove_data(vol(other)) is False                          # not a volume directory
    assert r.remove_data(vol(base)) is False
    assert r.remove_data(vol("relative/pvc-x")) is False
    assert (victim / "f").read_text() == "keep" and os.path.isdir(other)
    real = os.path.join(base, "pvc-1_default_data")
    os.makedirs(os.path.join(real, "deep"))
    open(os.path.join(real, "deep", "f"), "w").close()
    assert r.remove_data(vol(real)) is True and not os.path.exists(real)
    assert r.remove_data(vol(real)) is True                            # gone already


async def test_the_reclaimer_removes_the_data_then_the_finalizer(reg, tmp_path):
    root = tmp_path / "root"
    a = agent_on(reg, root)
    base = C.storage_dir(str(root))
    pvc, pv = await make_bound(reg, base)
    await reg.create("pods", claim_pod(), "default")
    got = await C.resolve_claims(a, claim_pod())
    d = got["d"]["path"]
    open(os.path.join(d, "data"), "w").close()
    rec = C.LocalPathReclaimer(a)
    await rec.start()
    try:
        await reg.delete("persistentvolumes", pv["metadata"]["name"])
        for _ in range(100):
            cur = await reg.get("persistentvolumes", pv["metadata"]["name"])
            if not os.path.exists(d) and cur["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the volume's data or object is still there")
        assert os.path.isdir(base)
    finally:
        await rec.stop()
