"""The persistent volume binder's decisions (kube-controller-manager's PV controller), pure
functions over plain objects: which volume a claim binds to, the objects a binding writes, the
phase a volume should be in, and the PersistentVolume skiff's local-path provisioner makes.

Matching (findMatchingVolume): a volume that is pre-bound to the claim (its claimRef names the
claim) wins; otherwise, among the Available, unclaimed volumes not being deleted with the claim's
storageClassName (``""`` for none), volumeMode, every access mode the claim asks for, a capacity of
at least the request, labels matching the claim's selector and (when a node is given) node
affinity matching that node, the smallest. A claim that names a volume (``spec.volumeName``) binds
only to it.
"""
from __future__ import annotations

from skiff.api.validation import label_selector_matches
from skiff.api.validation_storage import quantity_bytes, storage_request

__all__ = [
    "ANN_BIND_COMPLETED", "ANN_BOUND_BY_CONTROLLER", "ANN_PROVISIONED_BY", "ANN_SELECTED_NODE",
    "ANN_STORAGE_PROVISIONER", "ANN_BETA_STORAGE_PROVISIONER", "ANN_LOCAL_PATH_NODE", "LOCAL_PATH_PROVISIONER",
    "LOCAL_PATH_FINALIZER", "LOCAL_PATH_DIR_ANNOTATION", "DEFAULT_CLASS_NAME",
    "claim_key", "class_of", "is_bound_to_claim", "volume_fits", "find_best_match", "bind_volume", "bind_claim",
    "claim_status_bound", "pv_capacity", "pv_node_terms", "pv_matches_node", "local_path_volume",
    "local_path_dir_name", "pod_claims", "default_storage_class",
]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
LOCAL_PATH_PROVISIONER = "skiff.dev/local-path"
# the node whose agent owns a local-path volume's directory (and removes it with the volume)
ANN_LOCAL_PATH_NODE = "skiff.dev/local-path-node"
# held by a local-path volume with reclaim policy Delete until that agent has removed the data
LOCAL_PATH_FINALIZER = "skiff.dev/local-path-cleanup"
# on a Node: the directory under which its agent keeps local-path volumes (the agent sets it)
LOCAL_PATH_DIR_ANNOTATION = "skiff.dev/local-path-dir"
DEFAULT_CLASS_NAME = "local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def _md(obj: dict) -> dict:
    return obj.get("metadata") or {}


def claim_key(pvc: dict) -> str:
    md = _md(pvc)
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def class_of(obj: dict) -> str:
    """The storage class of a claim or volume ("" for none; the beta annotation counts too)."""
    spec = obj.get("spec") or {}
    name = spec.get("storageClassName")
    if name is None:
        name = (_md(obj).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
    return name or ""


def is_bound_to_claim(pv: dict, pvc: dict) -> bool:
    """The volume's claimRef names the claim (and its uid, when it has one)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    md = _md(pvc)
    if ref.get("name") != md.get("name") or (ref.get("namespace") or "default") != (md.get("namespace") or "default"):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


def pv_capacity(pv: dict) -> int:
    return quantity_bytes(((pv.get("spec") or {}).get("capacity") or {}).get("storage")) or 0


def pv_node_terms(pv: dict) -> tuple | None:
    """The parsed required node selector terms of a volume, or None when it has none."""
    req = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not req:
        return None
    # (imported here: the scheduler package imports this module)
    from skiff.controller.scheduler.terms import node_selector_terms
    return node_selector_terms(req.get("nodeSelectorTerms"))


def pv_matches_node(pv: dict, node_name: str, node_labels: dict | None) -> bool:
    terms = pv_node_terms(pv)
    if terms is None:
        return True
    labels = node_labels if node_labels is not None else {HOSTNAME_LABEL: node_name}
    from skiff.controller.scheduler.terms import node_affinity_matches
    return node_affinity_matches(terms, labels, node_name)


def volume_fits(pv: dict, pvc: dict) -> str | None:
    """Why the volume cannot satisfy the claim (checkVolumeSatisfyClaim's words), or None."""
    spec, cspec = pv.get("spec") or {}, pvc.get("spec") or {}
    if class_of(pv) != class_of(pvc):
        return "storageClassName does not match"
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    modes = set(spec.get("accessModes") or ())
    if not set(cspec.get("accessModes") or ()) <= modes:
        return "incompatible accessMode"
    if pv_capacity(pv) < storage_request(pvc):
        return "requested PV is too small"
    return None


def find_best_match(pvc: dict, pvs, node: tuple[str, dict] | None = None) -> dict | None:
    """The volume the claim should bind to, or None (see the module doc). ``node``: (name,
    labels) of the node chosen for the claim's first pod (WaitForFirstConsumer)."""
    cspec = pvc.get("spec") or {}
    want = storage_request(pvc)
    best, best_size = None, None
    for pv in pvs:
        md, spec = _md(pv), pv.get("spec") or {}
        if md.get("deletionTimestamp"):
            continue
        if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
            continue
        node_ok = node is None or pv_matches_node(pv, node[0], node[1])
        if is_bound_to_claim(pv, pvc):
            return pv if node_ok else None
        if spec.get("claimRef") or (pv.get("status") or {}).get("phase") in ("Bound", "Released", "Failed"):
            continue
        if not node_ok or class_of(pv) != class_of(pvc):
            continue
        if cspec.get("selector") is not None and not label_selector_matches(cspec["selector"], md.get("labels") or {}):
            continue
        if not set(cspec.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
            continue
        size = pv_capacity(pv)
        if size < want:
            continue
        if best is None or size < best_size or (size == best_size and md.get("name", "") < _md(best).get("name", "")):
            best, best_size = pv, size
    return best


def _claim_ref(pvc: dict) -> dict:
    md = _md(pvc)
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": md.get("namespace") or "default",
            "name": md.get("name"), "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}


def bind_volume(pv: dict, pvc: dict) -> dict | None:
    """The volume with its claimRef set to the claim (bindVolumeToClaim), or None when it
    already is."""
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef")
    if ref and ref.get("uid") == _md(pvc).get("uid") and is_bound_to_claim(pv, pvc):
        return None
    md = dict(_md(pv))
    if not ref:
        md["annotations"] = {**(md.get("annotations") or {}), ANN_BOUND_BY_CONTROLLER: "yes"}
    return {**pv, "metadata": md, "spec": {**spec, "claimRef": _claim_ref(pvc)}}


def bind_claim(pvc: dict, pv: dict) -> dict | None:
    """The claim with spec.volumeName and the binding annotations (bindClaimToVolume), or None
    when nothing changes."""
    spec = pvc.get("spec") or {}
    md = dict(_md(pvc))
    ann = dict(md.get("annotations") or {})
    name = _md(pv).get("name")
    changed = False
    if spec.get("volumeName") != name:
        if not spec.get("volumeName"):
            ann[ANN_BOUND_BY_CONTROLLER] = "yes"
        spec = {**spec, "volumeName": name}
        changed = True
    if ann.get(ANN_BIND_COMPLETED) != "yes":
        ann[ANN_BIND_COMPLETED] = "yes"
        changed = True
    if ann != (md.get("annotations") or {}):
        changed = True
    if not changed:
        return None
    md["annotations"] = ann
    return {**pvc, "metadata": md, "spec": spec}


def claim_status_bound(pvc: dict, pv: dict) -> dict:
    """A bound claim's status: its volume's access modes and capacity."""
    st = dict(pvc.get("status") or {})
    spec = pv.get("spec") or {}
    st["phase"] = "Bound"
    st["accessModes"] = list(spec.get("accessModes") or ())
    st["capacity"] = dict(spec.get("capacity") or {})
    return st


def local_path_dir_name(pvc: dict) -> str:
    """The directory of a claim's local-path volume, as k3s names it: pvc-<uid>_<ns>_<name>."""
    md = _md(pvc)
    return f"pvc-{md.get('uid')}_{md.get('namespace') or 'default'}_{md.get('name')}"


def local_path_volume(pvc: dict, sc: dict, node: str, base_dir: str) -> dict:
    """The PersistentVolume skiff's local-path provisioner makes for a claim on ``node``, whose
    agent keeps its volumes under ``base_dir``."""
    cspec = pvc.get("spec") or {}
    reclaim = sc.get("reclaimPolicy") or "Delete"
    md = {"name": f"pvc-{_md(pvc).get('uid')}",
          "annotations": {ANN_PROVISIONED_BY: LOCAL_PATH_PROVISIONER, ANN_LOCAL_PATH_NODE: node}}
    if reclaim == "Delete":
        md["finalizers"] = [LOCAL_PATH_FINALIZER]
    return {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": md,
        "spec": {
            "capacity": {"storage": ((cspec.get("resources") or {}).get("requests") or {}).get("storage")},
            "accessModes": list(cspec.get("accessModes") or ("ReadWriteOnce",)),
            "persistentVolumeReclaimPolicy": reclaim,
            "storageClassName": _md(sc).get("name"),
            "volumeMode": "Filesystem",
            "claimRef": _claim_ref(pvc),
            "hostPath": {"path": base_dir.rstrip("/") + "/" + local_path_dir_name(pvc), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
            **({"mountOptions": list(sc["mountOptions"])} if sc.get("mountOptions") else {}),
        },
    }


def pod_claims(pod: dict) -> list[str]:
    """The claim names a pod's volumes use."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or ():
        src = v.get("persistentVolumeClaim") if isinstance(v, dict) else None
        if isinstance(src, dict) and src.get("claimName"):
            out.append(src["claimName"])
    return out


def default_storage_class() -> dict:
    """The StorageClass a controller makes at start when there is none of that name."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS_NAME,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}
