"""The PV binder's decisions (skiff.controller.volumes.logic) and the scheduler's VolumeBinding
plugin (skiff.controller.scheduler.volumes): matching, binding objects, local-path volumes, the
PreFilter messages and the per-node filter; and that pods without claims never reach it."""
from __future__ import annotations

from skiff.controller.scheduler import Scheduler
from skiff.controller.scheduler.filters import PodInfo
from skiff.controller.scheduler.volumes import (R_NO_VOLUME, R_VOLUME_NODE_CONFLICT, UNBOUND_IMMEDIATE,
                                                volume_state)
from skiff.controller.volumes import logic as L


def pvc(name="data", size="1Gi", cls="manual", modes=("ReadWriteOnce",), uid="u1", ann=None, **spec):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "7",
                         "annotations": ann or {}},
            "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                     "storageClassName": cls, **spec}, "status": {"phase": "Pending"}}


def pv(name, size="1Gi", cls="manual", modes=("ReadWriteOnce",), phase="Available", node=None, labels=None, **spec):
    s = {"accessModes": list(modes), "capacity": {"storage": size}, "storageClassName": cls,
         "hostPath": {"path": "/x"}, **spec}
    if node:
        s["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": s, "status": {"phase": phase}}


def names(x):
    return x["metadata"]["name"] if x else None


def test_smallest_fit_among_matching_volumes():
    vols = [pv("big", "10Gi"), pv("small", "2Gi"), pv("tiny", "500Mi"), pv("fast", "1Gi", cls="fast"),
            pv("rox", "1Gi", modes=("ReadOnlyMany",)), pv("taken", "1Gi", claimRef={"name": "x", "namespace": "o"}),
            pv("released", "1Gi", phase="Released"), pv("block", "1Gi", volumeMode="Block")]
    assert names(L.find_best_match(pvc(), vols)) == "small"
    assert names(L.find_best_match(pvc(size="3Gi"), vols)) == "big"
    assert L.find_best_match(pvc(size="20Gi"), vols) is None
    assert names(L.find_best_match(pvc(cls="fast"), vols)) == "fast"
    assert names(L.find_best_match(pvc(modes=("ReadOnlyMany",)), vols)) == "rox"
    assert L.find_best_match(pvc(modes=("ReadWriteOnce", "ReadWriteMany")), vols) is None
    # a label selector; equal sizes: by name
    sel = [pv("b", labels={"t": "gold"}), pv("a", labels={"t": "gold"}), pv("c")]
    assert names(L.find_best_match(pvc(selector={"matchLabels": {"t": "gold"}}), sel)) == "a"
    # a volume pre-bound to the claim wins, even when bigger
    pre = pv("pre", "100Gi", claimRef={"namespace": "default", "name": "data"})
    assert names(L.find_best_match(pvc(), vols + [pre])) == "pre"
    pre_other_uid = pv("pre", "100Gi", claimRef={"namespace": "default", "name": "data", "uid": "old"})
    assert names(L.find_best_match(pvc(), vols + [pre_other_uid])) == "small"
    # with a node: only volumes whose affinity matches it
    local = [pv("on-a", node="a"), pv("on-b", "5Gi", node="b")]
    assert names(L.find_best_match(pvc(), local, ("b", {"kubernetes.io/hostname": "b"}))) == "on-b"
    assert names(L.find_best_match(pvc(), local)) == "on-a"
    deleting = pv("gone")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert L.find_best_match(pvc(), [deleting]) is None


def test_binding_objects():
    claim, vol = pvc(), pv("small")
    bound = L.bind_volume(vol, claim)
    assert bound["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default",
                                         "name": "data", "uid": "u1", "resourceVersion": "7"}
    assert bound["metadata"]["annotations"] == {L.ANN_BOUND_BY_CONTROLLER: "yes"}
    assert vol["spec"].get("claimRef") is None          # the cached object is not touched
    assert L.bind_volume(bound, claim) is None
    c2 = L.bind_claim(claim, bound)
    assert c2["spec"]["volumeName"] == "small"
    assert c2["metadata"]["annotations"] == {L.ANN_BIND_COMPLETED: "yes", L.ANN_BOUND_BY_CONTROLLER: "yes"}
    assert L.bind_claim(c2, bound) is None
    prebound = L.bind_claim(pvc(volumeName="small"), bound)
    assert prebound["metadata"]["annotations"] == {L.ANN_BIND_COMPLETED: "yes"}
    st = L.claim_status_bound(c2, bound)
    assert st == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    assert L.volume_fits(pv("x", "500Mi"), claim) == "requested PV is too small"
    assert L.volume_fits(pv("x", cls="other"), claim) == "storageClassName does not match"
    assert L.volume_fits(pv("x"), claim) is None


def test_local_path_volume():
    sc = {"metadata": {"name": "local-path"}, "provisioner": L.LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete"}
    v = L.local_path_volume(pvc(cls="local-path", size="3Gi"), sc, "n1", "/var/lib/skiff/storage/")
    assert v["metadata"]["name"] == "pvc-u1"
    assert v["metadata"]["annotations"] == {L.ANN_PROVISIONED_BY: "skiff.dev/local-path", L.ANN_LOCAL_PATH_NODE: "n1"}
    assert v["metadata"]["finalizers"] == [L.LOCAL_PATH_FINALIZER]
    s = v["spec"]
    assert s["hostPath"] == {"path": "/var/lib/skiff/storage/pvc-u1_default_data", "type": "DirectoryOrCreate"}
    assert (s["capacity"], s["persistentVolumeReclaimPolicy"], s["storageClassName"]) == (
        {"storage": "3Gi"}, "Delete", "local-path")
    assert s["claimRef"]["uid"] == "u1"
    assert L.pv_matches_node(v, "n1", None) and not L.pv_matches_node(v, "n2", None)
    retained = L.local_path_volume(pvc(), {**sc, "reclaimPolicy": "Retain"}, "n1", "/s")
    assert "finalizers" not in retained["metadata"]
    dc = L.default_storage_class()
    assert dc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert (dc["provisioner"], dc["volumeBindingMode"], dc["reclaimPolicy"]) == (
        "skiff.dev/local-path", "WaitForFirstConsumer", "Delete")


class _Node:
    def __init__(self, name, labels=None):
        self.name, self.labels = name, {"kubernetes.io/hostname": name, **(labels or {})}


def _state(claims, pvcs, pvs=(), classes=()):
    by_claim = {f"default/{c['metadata']['name']}": c for c in pvcs}
    by_pv = {v["metadata"]["name"]: v for v in pvs}
    by_class = {c["metadata"]["name"]: c for c in classes}
    return volume_state("default", tuple(claims), by_claim.get, by_pv.get, by_class.get, lambda: list(pvs))


WFFC = {"metadata": {"name": "local-path"}, "provisioner": L.LOCAL_PATH_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer"}
STATIC = {"metadata": {"name": "manual"}, "provisioner": "kubernetes.io/no-provisioner",
          "volumeBindingMode": "WaitForFirstConsumer"}


def test_volume_binding_prefilter_messages():
    assert _state(["x"], []) == ('persistentvolumeclaim "x" not found', None)
    gone = pvc()
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert _state(["data"], [gone])[0] == 'persistentvolumeclaim "data" is being deleted'
    assert _state(["data"], [pvc(cls="now")], classes=[{"metadata": {"name": "now"}, "provisioner": "p",
                                                        "volumeBindingMode": "Immediate"}])[0] == UNBOUND_IMMEDIATE
    assert _state(["data"], [pvc(cls="")])[0] == UNBOUND_IMMEDIATE
    assert _state(["data"], [pvc(volumeName="nope")])[0] == 'persistentvolume "nope" not found'


def test_volume_binding_filter():
    # bound to a volume of node b: only b
    why, st = _state(["data"], [pvc(volumeName="v")], [pv("v", node="b")])
    assert why is None and st.to_select == []
    assert st.reason(_Node("a")) == R_VOLUME_NODE_CONFLICT and st.reason(_Node("b")) is None
    # local-path, unbound: any node, and the claim is to be annotated
    why, st = _state(["data"], [pvc(cls="local-path")], classes=[WFFC])
    assert why is None and st.to_select == ["default/data"] and st.reason(_Node("a")) is None
    # a node selected already: only that one
    _, st = _state(["data"], [pvc(cls="local-path", ann={L.ANN_SELECTED_NODE: "b"})], classes=[WFFC])
    assert st.to_select == [] and st.reason(_Node("a")) == R_VOLUME_NODE_CONFLICT and st.reason(_Node("b")) is None
    # no provisioner: a node where a free volume fits
    _, st = _state(["data"], [pvc()], [pv("on-b", node="b"), pv("too-small", "1Mi", node="a")], [STATIC])
    assert st.reason(_Node("a")) == R_NO_VOLUME and st.reason(_Node("b")) is None


def test_pods_without_claims_skip_the_plugin():
    s = Scheduler(None)         # no informer is ever started or read
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "x"}], "volumes": [{"name": "e", "emptyDir": {}}]}}
    assert PodInfo(pod).claims == ()
    with_claim = {**pod, "spec": {**pod["spec"], "volumes": [{"name": "d", "persistentVolumeClaim": {
        "claimName": "data"}}]}}
    pi = PodInfo(with_claim)
    assert pi.claims == ("data",)
    assert s.volume_state(pi)[0] == 'persistentvolumeclaim "data" not found'
