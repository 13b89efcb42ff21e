"""The Table columns and cells of PersistentVolumes, PersistentVolumeClaims and StorageClasses,
as kube-apiserver 1.32 prints them (``kubectl get pv|pvc|sc``). Part of :mod:`skiff.api.tables`,
which merges :data:`COLUMNS` and :data:`CELLS` into its own::

    NAME      CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS   CLAIM          STORAGECLASS   VOLUMEATTRIBUTESCLASS   REASON   AGE
    pvc-1f..  1Gi        RWO            Delete           Bound    default/data   local-path     <unset>                          5s

    NAME   STATUS   VOLUME    CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE
    data   Bound    pvc-1f..  1Gi        RWO            local-path     <unset>                 5s

    NAME                   PROVISIONER            RECLAIMPOLICY   VOLUMEBINDINGMODE      ALLOWVOLUMEEXPANSION   AGE
    local-path (default)   skiff.dev/local-path   Delete          WaitForFirstConsumer   false                  1m
"""
from __future__ import annotations

from skiff.api import tables as _T

_UNSET = "<unset>"
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
_D_MODES = ("AccessModes contains all ways the volume can be mounted. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes")
_D_CLASS = "StorageClassName is the name of the StorageClass this object belongs to."
_D_VAC = "Name of the VolumeAttributesClass this object uses (skiff supports none)."
_D_MODE = "volumeMode defines if a volume is intended to be used with a formatted filesystem or a raw block device."

COLUMNS: dict[str, list[dict]] = {
    "persistentvolumes": [
        _T.NAME_COLUMN,
        _T._col("Capacity", "capacity is the description of the persistent volume's resources and capacity. More "
                            "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
        _T._col("Access Modes", _D_MODES),
        _T._col("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when "
                                  "released from its claim: Retain (the default), Delete or Recycle."),
        _T._col("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
        _T._col("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and "
                         "PersistentVolumeClaim."),
        _T._col("StorageClass", _D_CLASS),
        _T._col("VolumeAttributesClass", _D_VAC),
        _T._col("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine "
                          "parsing and tidy display in the CLI."),
        _T.AGE_COLUMN,
        _T._col("VolumeMode", _D_MODE, priority=1),
    ],
    "persistentvolumeclaims": [
        _T.NAME_COLUMN,
        _T._col("Status", "phase represents the current phase of PersistentVolumeClaim."),
        _T._col("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
        _T._col("Capacity", "capacity represents the actual resources of the underlying volume."),
        _T._col("Access Modes", _D_MODES),
        _T._col("StorageClass", _D_CLASS),
        _T._col("VolumeAttributesClass", _D_VAC),
        _T.AGE_COLUMN,
        _T._col("VolumeMode", _D_MODE, priority=1),
    ],
    "storageclasses": [
        _T.NAME_COLUMN,
        _T._col("Provisioner", "provisioner indicates the type of the provisioner."),
        _T._col("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
                                 "PersistentVolumes of this storage class. Defaults to Delete."),
        _T._col("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned "
                                     "and bound. When unset, VolumeBindingImmediate is used."),
        _T._col("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
        _T.AGE_COLUMN,
    ],
}


def access_modes(modes) -> str:
    """kubectl's short form: RWO,ROX,RWX,RWOP (each once, in that order)."""
    have = set(modes or ())
    return ",".join(short for mode, short in _MODES if mode in have)


def _class(obj: dict) -> str:
    name = (obj.get("spec") or {}).get("storageClassName")
    if name is None:
        name = (_T.meta(obj).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
    return name or ""


def _phase(obj: dict) -> str:
    if _T.meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return (obj.get("status") or {}).get("phase") or ""


def pv_cells(pv: dict, now: float | None = None) -> list:
    spec, st = pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [_T.meta(pv).get("name", ""), str((spec.get("capacity") or {}).get("storage") or ""),
            access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy") or "",
            _phase(pv), claim, _class(pv), spec.get("volumeAttributesClassName") or _UNSET, st.get("reason") or "",
            _T._age(pv, now), spec.get("volumeMode") or "Filesystem"]


def pvc_cells(pvc: dict, now: float | None = None) -> list:
    spec, st = pvc.get("spec") or {}, pvc.get("status") or {}
    bound = bool(spec.get("volumeName"))
    return [_T.meta(pvc).get("name", ""), _phase(pvc), spec.get("volumeName") or "",
            str((st.get("capacity") or {}).get("storage") or "") if bound else "",
            access_modes(st.get("accessModes")) if bound else "", _class(pvc),
            st.get("currentVolumeAttributesClassName") or spec.get("volumeAttributesClassName") or _UNSET,
            _T._age(pvc, now), spec.get("volumeMode") or "Filesystem"]


def sc_cells(sc: dict, now: float | None = None) -> list:
    name = _T.meta(sc).get("name", "")
    ann = _T.meta(sc).get("annotations") or {}
    if "true" in (ann.get("storageclass.kubernetes.io/is-default-class"),
                  ann.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [name, sc.get("provisioner") or "", sc.get("reclaimPolicy") or "Delete",
            sc.get("volumeBindingMode") or "Immediate", bool(sc.get("allowVolumeExpansion")), _T._age(sc, now)]


CELLS = {"persistentvolumes": pv_cells, "persistentvolumeclaims": pvc_cells, "storageclasses": sc_cells}
