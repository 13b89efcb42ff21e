"""PersistentVolumes, PersistentVolumeClaims and StorageClasses in the API: the RESOURCES entries,
Kubernetes' defaults, kube-apiserver's validation messages and field paths, the update rules;
over a real registry (SQLite store): DefaultStorageClass admission, the protection finalizers,
the initial status, the Table cells, and the node authorizer's node -> pod -> claim -> volume
graph."""
from __future__ import annotations

import copy

import pytest
import pytest_asyncio

from skiff.api import tables as T
from skiff.api.errors import APIError
from skiff.api.resources import RESOURCES, lookup, path_for
from skiff.api.validation import ValidationError, validate, validate_update
from skiff.controller.admission import admit
from skiff.controller.auth import node_user
from skiff.controller.local_client import LocalClient
from skiff.controller.registry import Registry
from skiff.controller.storage import SqliteStore, WatchCache

PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
PV = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
      "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}, "hostPath": {"path": "/srv/pv1"}}}
SC = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
      "provisioner": "skiff.dev/local-path"}


def obj(base, **spec):
    o = copy.deepcopy(base)
    if base is SC:
        o.update(spec)
    else:
        o["spec"].update(spec)
    return o


def causes(o):
    with pytest.raises(ValidationError) as ei:
        admit(o)
    return {c["field"]: c["message"] for c in ei.value.causes}


def test_resources():
    pv, pvc, sc = RESOURCES["persistentvolumes"], RESOURCES["persistentvolumeclaims"], RESOURCES["storageclasses"]
    assert (pv.group, pv.version, pv.namespaced, pv.short_names, pv.subresources) == ("", "v1", False, ("pv",),
                                                                                      ("status",))
    assert (pvc.namespaced, pvc.short_names, pvc.subresources) == (True, ("pvc",), ("status",))
    assert (sc.group, sc.version, sc.namespaced, sc.short_names) == ("storage.k8s.io", "v1", False, ("sc",))
    assert lookup("pvc") is pvc and lookup("pv") is pv and lookup("storageclasses.storage.k8s.io") is sc
    assert path_for("persistentvolumeclaims", "default", "data", "status") == \
        "/api/v1/namespaces/default/persistentvolumeclaims/data/status"
    assert path_for("storageclasses", None, "fast") == "/apis/storage.k8s.io/v1/storageclasses/fast"


def test_defaults():
    out, warns = admit(obj(PV))
    assert warns == [] and out["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert out["spec"]["volumeMode"] == "Filesystem" and out["spec"]["hostPath"]["type"] == ""
    out, _ = admit(obj(PVC))
    assert out["spec"]["volumeMode"] == "Filesystem" and "storageClassName" not in out["spec"]
    out, _ = admit(obj(SC))
    assert (out["reclaimPolicy"], out["volumeBindingMode"]) == ("Delete", "Immediate")


def test_claim_validation():
    c = causes({**PVC, "spec": {}})
    assert c == {"spec.accessModes": "Required value: at least 1 access mode is required",
                 "spec.resources[storage]": "Required value"}
    c = causes(obj(PVC, accessModes=["ReadWriteOnce", "Sometimes"]))
    assert c == {"spec.accessModes": 'Unsupported value: "Sometimes": supported values: "ReadOnlyMany", '
                                     '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'}
    c = causes(obj(PVC, accessModes=["ReadWriteOncePod", "ReadWriteOnce"]))
    assert c == {"spec.accessModes": "Forbidden: may not use ReadWriteOncePod with other access modes"}
    c = causes(obj(PVC, resources={"requests": {"storage": "0"}}))
    assert c == {"spec.resources[storage]": 'Invalid value: "0": must be greater than zero'}
    c = causes(obj(PVC, storageClassName="Not_A_Name"))
    assert list(c) == ["spec.storageClassName"] and "RFC 1123 subdomain" in c["spec.storageClassName"]
    c = causes(obj(PVC, volumeMode="Block"))
    assert "Block is not supported by skiff" in c["spec.volumeMode"]
    c = causes(obj(PVC, dataSource={"kind": "PersistentVolumeClaim", "name": "x"}))
    assert "not supported by skiff" in c["spec.dataSource"]
    with pytest.raises(ValidationError) as ei:
        admit({**PVC, "spec": {}})
    assert str(ei.value).startswith('PersistentVolumeClaim "data" is invalid: ')


def test_volume_validation():
    c = causes({**PV, "spec": {"hostPath": {"path": "/x"}}})
    assert c == {"spec.accessModes": "Required value", "spec.capacity": "Required value"}
    c = causes(obj(PV, capacity={"storage": "1Gi", "cpu": "1"}))
    assert c["spec.capacity"].startswith("Unsupported value: ") and c["spec.capacity"].endswith(
        'supported values: "storage"')
    c = causes({**PV, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}})
    assert c == {"spec": "Required value: must specify a volume type"}
    c = causes(obj(PV, local={"path": "/mnt/x"}))
    assert c["spec.local"] == "Forbidden: may not specify more than 1 volume type"
    assert c["spec.nodeAffinity"] == "Required value: Local volume requires node affinity"
    c = causes(obj({**PV, "spec": {k: v for k, v in PV["spec"].items() if k != "hostPath"}},
                   nfs={"server": "s", "path": "/"}))
    assert c == {"spec.nfs": "spec.nfs is not supported by skiff (persistent volume sources: hostPath, local)"}
    c = causes(obj(PV, persistentVolumeReclaimPolicy="Sometimes"))
    assert c == {"spec.persistentVolumeReclaimPolicy": 'Unsupported value: "Sometimes": supported values: '
                                                       '"Delete", "Recycle", "Retain"'}
    c = causes(obj(PV, hostPath={"path": "/a/../b"}))
    assert c == {"spec.hostPath.path": "Invalid value: \"/a/../b\": must not contain '..'"}
    c = causes(obj(PV, nodeAffinity={"required": {"nodeSelectorTerms": []}}))
    assert c == {"spec.nodeAffinity.required.nodeSelectorTerms":
                 "Required value: must have at least one node selector term"}
    ok = obj({**PV, "spec": {k: v for k, v in PV["spec"].items() if k != "hostPath"}}, local={"path": "/mnt/x"},
             nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
                 {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}})
    assert admit(ok)[1] == []


def test_class_validation():
    c = causes({**SC, "provisioner": ""})
    assert c == {"provisioner": "Required value"}
    c = causes(obj(SC, reclaimPolicy="Recycle", volumeBindingMode="Later"))
    assert c == {"reclaimPolicy": 'Unsupported value: "Recycle": supported values: "Delete", "Retain"',
                 "volumeBindingMode": 'Unsupported value: "Later": supported values: "Immediate", '
                                      '"WaitForFirstConsumer"'}
    with pytest.raises(ValidationError) as ei:
        admit({**SC, "provisioner": ""})
    assert str(ei.value).startswith('StorageClass.storage.k8s.io "fast" is invalid')


def test_a_pod_may_use_a_claim():
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                  "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}]}}
    assert validate(p) == []
    p["spec"]["volumes"][0]["persistentVolumeClaim"] = {}
    with pytest.raises(ValidationError):
        validate(p)


def test_update_rules():
    cur, _ = admit(obj(PVC, storageClassName="fast"))
    new = copy.deepcopy(cur)
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes == [{"field": "spec", "reason": "FieldValueForbidden",
                                "message": "Forbidden: spec is immutable after creation except resources.requests "
                                           "and volumeAttributesClassName for bound claims"}]
    # an unbound claim may not grow; the binder may set volumeName (once)
    grow = copy.deepcopy(cur)
    grow["spec"]["resources"]["requests"]["storage"] = "2Gi"
    with pytest.raises(ValidationError):
        validate_update(cur, grow)
    named = copy.deepcopy(cur)
    named["spec"]["volumeName"] = "pv1"
    validate_update(cur, named)
    renamed = copy.deepcopy(named)
    renamed["spec"]["volumeName"] = "pv2"
    with pytest.raises(ValidationError):
        validate_update(named, renamed)
    # a bound claim may grow, not shrink below its capacity
    bound = {**named, "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    grow = copy.deepcopy(bound)
    grow["spec"]["resources"]["requests"]["storage"] = "2Gi"
    validate_update(bound, grow)
    shrink = copy.deepcopy(grow)
    shrink["spec"]["resources"]["requests"]["storage"] = "500Mi"
    with pytest.raises(ValidationError) as ei:
        validate_update({**grow, "status": bound["status"]}, shrink)
    assert ei.value.causes[0]["field"] == "spec.resources.requests.storage"
    # a claim without a class may get one later (RetroactiveDefaultStorageClass)
    nocls, _ = admit(obj(PVC))
    validate_update(nocls, obj(PVC, storageClassName="fast", volumeMode="Filesystem"))
    # volumes: the source is immutable
    pv, _ = admit(obj(PV))
    moved = copy.deepcopy(pv)
    moved["spec"]["hostPath"]["path"] = "/elsewhere"
    with pytest.raises(ValidationError) as ei:
        validate_update(pv, moved)
    assert ei.value.causes[0]["message"] == "Forbidden: spec.persistentvolumesource is immutable after creation"
    claimed = copy.deepcopy(pv)
    claimed["spec"]["claimRef"] = {"namespace": "default", "name": "data"}
    validate_update(pv, claimed)
    # classes: provisioner, parameters, reclaimPolicy and the binding mode are immutable
    sc, _ = admit(obj(SC))
    changed = {**sc, "provisioner": "other", "parameters": {"a": "b"}, "reclaimPolicy": "Retain"}
    with pytest.raises(ValidationError) as ei:
        validate_update(sc, changed)
    assert {c["field"]: c["message"] for c in ei.value.causes} == {
        "parameters": "Forbidden: updates to parameters are forbidden.",
        "provisioner": "Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy": "Forbidden: updates to reclaimPolicy are forbidden."}
    validate_update(sc, {**sc, "allowVolumeExpansion": True})


def test_table_cells():
    pv = {**obj(PV, storageClassName="manual", persistentVolumeReclaimPolicy="Delete",
                accessModes=["ReadWriteMany", "ReadWriteOnce"],
                claimRef={"namespace": "default", "name": "data"}), "status": {"phase": "Bound"}}
    cells = T.cells("persistentvolumes", pv, now=0)
    assert [c["name"] for c in T.columns("persistentvolumes") if c["priority"] == 0] == [
        "Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
        "VolumeAttributesClass", "Reason", "Age"]
    assert cells[:9] == ["pv1", "5Gi", "RWO,RWX", "Delete", "Bound", "default/data", "manual", "<unset>", ""]
    pvc = {**obj(PVC, storageClassName="fast", volumeName="pv1"),
           "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}
    assert [c["name"] for c in T.columns("persistentvolumeclaims") if c["priority"] == 0] == [
        "Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age"]
    assert T.cells("persistentvolumeclaims", pvc, now=0)[:7] == ["data", "Bound", "pv1", "5Gi", "RWO", "fast",
                                                                "<unset>"]
    pending = {**obj(PVC), "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert T.cells("persistentvolumeclaims", pending, now=0)[1:5] == ["Terminating", "", "", ""]
    sc = {**SC, "metadata": {"name": "local-path", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}}, "volumeBindingMode": "WaitForFirstConsumer"}
    assert T.cells("storageclasses", sc, now=0)[:5] == ["local-path (default)", "skiff.dev/local-path", "Delete",
                                                        "WaitForFirstConsumer", False]


# ------------------------------------------------------------------ over a real registry

@pytest_asyncio.fixture
async def reg(tmp_path):
    store = SqliteStore(str(tmp_path / "state.db"))
    cache = WatchCache(store)
    await cache.start()
    r = Registry(cache, bookmark_interval=0.2)
    await r.ensure_namespaces()
    yield r
    await cache.close()


@pytest.mark.asyncio
async def test_default_class_admission_finalizers_and_status(reg):
    out = await reg.create("persistentvolumeclaims", obj(PVC), "default")
    assert "storageClassName" not in out["spec"]          # no default class yet
    assert out["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert out["status"] == {"phase": "Pending"}
    for name, ts_default in (("old", "true"), ("plain", None), ("new", "true")):
        sc = copy.deepcopy(SC)
        sc["metadata"] = {"name": name}
        if ts_default:
            sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
        await reg.create("storageclasses", sc)
    c2 = await reg.create("persistentvolumeclaims", {**obj(PVC), "metadata": {"name": "c2"}}, "default")
    assert c2["spec"]["storageClassName"] in ("new", "old")     # the newest default (same second: by name)
    none = await reg.create("persistentvolumeclaims", {**obj(PVC, storageClassName=""),
                                                       "metadata": {"name": "none"}}, "default")
    assert none["spec"]["storageClassName"] == ""
    pv = await reg.create("persistentvolumes", obj(PV))
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"] and pv["status"] == {"phase": "Pending"}
    # a status write does not touch the spec; a spec write keeps the status
    st = await reg.update("persistentvolumes", {**pv, "status": {"phase": "Available"}}, subresource="status")
    assert st["status"] == {"phase": "Available"}
    # deletion waits for the finalizer
    await reg.delete("persistentvolumeclaims", "none", "default")
    held = await reg.get("persistentvolumeclaims", "none", "default")
    assert held["metadata"]["deletionTimestamp"]


async def _expect(code, coro):
    with pytest.raises(APIError) as ei:
        await coro
    assert ei.value.code == code, ei.value.message
    return ei.value


@pytest.mark.asyncio
async def test_node_authorizer_follows_pod_claim_volume(reg):
    for n in ("n1", "n2"):
        await reg.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}, "spec": {}})
    for name in ("mine", "theirs", "unused"):
        await reg.create("persistentvolumeclaims", {**obj(PVC), "metadata": {"name": name}}, "default")
        await reg.create("persistentvolumes", {**obj(PV, claimRef={"namespace": "default", "name": name}),
                                               "metadata": {"name": f"pv-{name}"}})

    def pod(name, claim, node):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                         "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}
    await reg.create("pods", pod("a", "mine", "n1"), "default")
    await reg.create("pods", pod("b", "theirs", "n2"), "default")
    c = LocalClient(reg, node_user("n1"))
    assert (await c.get("persistentvolumeclaims", "mine", "default"))["metadata"]["name"] == "mine"
    e = await _expect(403, c.get("persistentvolumeclaims", "theirs", "default"))
    assert "no relationship found between node 'n1' and this object" in e.message
    await _expect(403, c.get("persistentvolumeclaims", "unused", "default"))
    await _expect(403, c.list("persistentvolumeclaims", "default"))
    assert (await c.get("persistentvolumes", "pv-mine"))["metadata"]["name"] == "pv-mine"
    await _expect(403, c.get("persistentvolumes", "pv-theirs"))
    # a node may not change volumes, except (the finalizer of) its own local-path ones
    pv = await c.get("persistentvolumes", "pv-mine")
    await _expect(403, c.update("persistentvolumes", {**pv, "metadata": {**pv["metadata"], "labels": {"a": "b"}}}))
    await reg.patch("persistentvolumes", "pv-unused", {"metadata": {"annotations": {
        "skiff.dev/local-path-node": "n1"}}})
    own = await reg.get("persistentvolumes", "pv-unused")
    await c.update("persistentvolumes", {**own, "metadata": {**own["metadata"], "finalizers": []}})
    await _expect(403, c.delete("persistentvolumes", "pv-unused"))
    await _expect(403, c.create("persistentvolumes", {**obj(PV), "metadata": {"name": "x"}}))
    assert {p["metadata"]["name"] for p in (await c.list("persistentvolumes"))["items"]} == {
        "pv-mine", "pv-theirs", "pv-unused"}


@pytest.mark.asyncio
async def test_a_nodes_volume_get_reads_only_that_nodes_pods():
    """The node authorizer's node -> pod -> claim -> volume check reads the node's pods from the
    watch cache's node index, never every pod of the namespace (2000 pods sharing one claim had
    made each agent's volume GET decode all of them)."""
    import json

    from skiff.controller.registry_kinds import RegistryKindsMixin
    from skiff.controller.volumes.nodeauth import volume_referenced

    def pod(name, claim, node):
        return json.dumps({"metadata": {"name": name, "namespace": "default"},
                           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}})

    class Storage:
        def __init__(self):
            self.asked = []

        async def node_pods_raw(self, prefix, node):
            self.asked.append(node)
            return {"n1": [pod("a", "other", "n1"), pod("b", "data", "n1")], "n2": []}[node]

        async def list_keyed(self, prefix):
            raise AssertionError("every pod of the namespace was read")

    class Reg(RegistryKindsMixin):
        def __init__(self):
            self.storage = Storage()
    reg = Reg()
    pv = {"spec": {"claimRef": {"namespace": "default", "name": "data"}}}
    assert await volume_referenced(reg, node_user("n1"), pv)
    assert not await volume_referenced(reg, node_user("n2"), pv)
    assert reg.storage.asked == ["n1", "n2"]
