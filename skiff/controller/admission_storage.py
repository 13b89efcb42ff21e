"""Admission of PersistentVolumeClaims and PersistentVolumes on create, which needs the store:

- DefaultStorageClass: a claim created without ``spec.storageClassName`` gets the name of the
  default StorageClass (annotation ``storageclass.kubernetes.io/is-default-class: "true"``; of
  several defaults the newest, as Kubernetes 1.28+); with no default class it stays unset (an
  explicit ``""`` means "no class" and is kept);
- StorageObjectInUseProtection: the finalizers ``kubernetes.io/pvc-protection`` and
  ``kubernetes.io/pv-protection``;
- the strategies' PrepareForCreate: status.phase ``Pending`` for both.
"""
from __future__ import annotations

from skiff.controller.storage import StoreError, prefix_for

__all__ = ["admit_storage_create", "default_class_name", "is_default_class",
           "DEFAULT_CLASS_ANNOTATION", "BETA_DEFAULT_CLASS_ANNOTATION", "PVC_PROTECTION", "PV_PROTECTION"]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def is_default_class(sc: dict) -> bool:
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    return ann.get(DEFAULT_CLASS_ANNOTATION) == "true" or ann.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


def default_class_name(classes: list[dict]) -> str | None:
    """The default class among ``classes``: the newest one marked default (then by name)."""
    defaults = [c for c in classes if is_default_class(c) and not (c.get("metadata") or {}).get("deletionTimestamp")]
    if not defaults:
        return None
    defaults.sort(key=lambda c: ((c.get("metadata") or {}).get("creationTimestamp") or "",
                                 (c.get("metadata") or {}).get("name") or ""), reverse=True)
    return defaults[0]["metadata"]["name"]


def _add_finalizer(obj: dict, name: str) -> None:
    md = obj["metadata"]
    fins = list(md.get("finalizers") or [])
    if name not in fins:
        fins.append(name)
    md["finalizers"] = fins


async def admit_claim_resize(storage, cur: dict, new: dict) -> None:
    """PersistentVolumeClaimResize: a claim may ask for more storage only when its class allows
    volume expansion (403 otherwise, in Kubernetes' words)."""
    from skiff.api import errors as E
    from skiff.api.validation_storage import storage_request
    from skiff.controller.storage import key_for
    if storage_request(new) <= storage_request(cur):
        return
    cls = (new.get("spec") or {}).get("storageClassName") or ""
    sc = None
    if cls:
        try:
            sc = await storage.get(key_for("storageclasses", None, cls))
        except StoreError:
            sc = None
    if sc is None or sc.get("allowVolumeExpansion") is not True:
        raise E.forbidden("persistentvolumeclaims", (new.get("metadata") or {}).get("name"),
                          "only dynamically provisioned pvc can be resized and the storageclass that provisions "
                          "the pvc must support resize")


async def admit_storage_create(storage, plural: str, obj: dict) -> None:
    """Fill in what a create of a persistentvolumeclaim or persistentvolume gets (in place)."""
    if plural == "persistentvolumeclaims":
        spec = obj.setdefault("spec", {})
        if spec.get("storageClassName") is None:
            try:
                classes, _, _ = await storage.list(prefix_for("storageclasses"))
            except StoreError:
                classes = []
            name = default_class_name(classes)
            if name:
                spec["storageClassName"] = name
        _add_finalizer(obj, PVC_PROTECTION)
        obj["status"] = {"phase": "Pending"}
    elif plural == "persistentvolumes":
        _add_finalizer(obj, PV_PROTECTION)
        obj["status"] = {"phase": "Pending"}
