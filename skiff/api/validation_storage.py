"""PersistentVolumes, PersistentVolumeClaims and StorageClasses: their defaults and the rules
beyond their schemas, with kube-apiserver's messages and field paths (ValidatePersistentVolume,
ValidatePersistentVolumeClaim, ValidateStorageClass and their Update forms).

skiff mounts two kinds of PersistentVolume source: ``hostPath`` and ``local`` (both a directory
of the node); every other source Kubernetes knows is refused as not supported by skiff. Block
volumes (volumeMode Block) and claims with a dataSource are refused too.
"""
from __future__ import annotations

import json
from typing import Any

from skiff.api.validation import (FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, Warning, _cause, _label_selector,
                                  _node_selector_term, _short, dns1123_subdomain_error)

__all__ = ["check_storage", "check_storage_update", "default_storage", "ACCESS_MODES", "PV_SOURCES",
           "SUPPORTED_PV_SOURCES", "storage_request", "quantity_bytes"]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")   # sorted, as Go lists them
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
VOLUME_MODES = ("Block", "Filesystem")
SUPPORTED_PV_SOURCES = ("hostPath", "local")
PV_SOURCES = ("gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi", "cinder",
              "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
              "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi")
_SPEC_FIELDS_NOT_SOURCE = ("accessModes", "capacity", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
                           "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName")


def _supported(values) -> str:
    return "supported values: " + ", ".join(f'"{v}"' for v in values)


def _not_supported(field: str, value: Any, values) -> dict:
    return _cause(field, NOT_SUPPORTED, f"Unsupported value: {_short(value)}: {_supported(values)}")


def quantity_bytes(q: Any) -> int | None:
    """A storage quantity in bytes (rounded up), or None when it is not a quantity."""
    from skiff.agent.quantity import parse_quantity
    try:
        v = parse_quantity(q)
    except Exception:  # noqa: BLE001
        return None
    n = int(v)
    return n + 1 if v > n else n


def storage_request(pvc: dict) -> int:
    """The bytes a claim requests (0 when it names none)."""
    req = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return quantity_bytes(req) or 0 if req is not None else 0


# ------------------------------------------------------------------ defaults

def default_storage(kind: str, obj: dict) -> None:
    """SetDefaults_PersistentVolume / _PersistentVolumeClaim / StorageClass: a volume's
    reclaim policy Retain and volumeMode Filesystem (hostPath type ""), a claim's volumeMode
    Filesystem, a class's reclaimPolicy Delete and volumeBindingMode Immediate."""
    if kind == "StorageClass":
        if not obj.get("reclaimPolicy"):
            obj["reclaimPolicy"] = "Delete"
        if not obj.get("volumeBindingMode"):
            obj["volumeBindingMode"] = "Immediate"
        return
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    if kind == "PersistentVolume":
        if not spec.get("persistentVolumeReclaimPolicy"):
            spec["persistentVolumeReclaimPolicy"] = "Retain"
        if isinstance(spec.get("hostPath"), dict):
            spec["hostPath"].setdefault("type", "")


# ------------------------------------------------------------------ shared pieces

def _access_modes(modes: Any, f: str, causes: list, claim: bool) -> None:
    if not modes:
        causes.append(_cause(f, REQUIRED, "Required value: at least 1 access mode is required" if claim
                             else "Required value"))
        return
    if not isinstance(modes, list):
        return
    for m in modes:
        if m not in ACCESS_MODES:
            causes.append(_not_supported(f, m, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(_cause(f, FORBIDDEN, "Forbidden: may not use ReadWriteOncePod with other access modes"))


def _class_name(v: Any, f: str, causes: list) -> None:
    if isinstance(v, str) and v and (why := dns1123_subdomain_error(v)):
        causes.append(_cause(f, INVALID, f"Invalid value: {_short(v)}: {why}"))


def _volume_mode(v: Any, f: str, causes: list) -> None:
    if v is None:
        return
    if v not in VOLUME_MODES:
        causes.append(_not_supported(f, v, VOLUME_MODES))
    elif v == "Block":
        causes.append(_cause(f, NOT_SUPPORTED, f"{f} Block is not supported by skiff (volumeMode: Filesystem)"))


def _path(p: Any, f: str, causes: list) -> None:
    if not isinstance(p, str) or not p:
        causes.append(_cause(f, REQUIRED, "Required value"))
    elif ".." in p.split("/"):
        causes.append(_cause(f, INVALID, f"Invalid value: {_short(p)}: must not contain '..'"))
    elif not p.startswith("/"):
        causes.append(_cause(f, INVALID, f"Invalid value: {_short(p)}: must be an absolute path"))


# ------------------------------------------------------------------ PersistentVolume

def _check_pv(obj: dict) -> list[dict]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_cause("spec", REQUIRED, "Required value: must specify a volume type")] if spec is None else []
    causes: list[dict] = []
    _access_modes(spec.get("accessModes"), "spec.accessModes", causes, claim=False)
    cap = spec.get("capacity")
    if not cap:
        causes.append(_cause("spec.capacity", REQUIRED, "Required value"))
    if isinstance(cap, dict) and ("storage" not in cap or len(cap) > 1):
        causes.append(_cause("spec.capacity", NOT_SUPPORTED,
                             f"Unsupported value: {_go_map(cap)}: supported values: \"storage\""))
    if isinstance(cap, dict) and "storage" in cap:
        n = quantity_bytes(cap["storage"])
        if n is not None and n <= 0:
            causes.append(_cause("spec.capacity[storage]", INVALID,
                                 f"Invalid value: {_short(str(cap['storage']))}: must be greater than zero"))
    pol = spec.get("persistentVolumeReclaimPolicy")
    if pol is not None and pol not in RECLAIM_POLICIES:
        causes.append(_not_supported("spec.persistentVolumeReclaimPolicy", pol, RECLAIM_POLICIES))
    elif pol == "Recycle":
        causes.append(_cause("spec.persistentVolumeReclaimPolicy", NOT_SUPPORTED,
                             "spec.persistentVolumeReclaimPolicy Recycle is not supported by skiff (deprecated in "
                             "Kubernetes): use Delete or Retain"))
    _class_name(spec.get("storageClassName"), "spec.storageClassName", causes)
    _volume_mode(spec.get("volumeMode"), "spec.volumeMode", causes)
    sources = [k for k in PV_SOURCES if spec.get(k) is not None]
    if not sources:
        causes.append(_cause("spec", REQUIRED, "Required value: must specify a volume type"))
    for k in sources[1:]:
        causes.append(_cause(f"spec.{k}", FORBIDDEN, "Forbidden: may not specify more than 1 volume type"))
    for k in sources:
        if k not in SUPPORTED_PV_SOURCES:
            causes.append(_cause(f"spec.{k}", NOT_SUPPORTED, f"spec.{k} is not supported by skiff (persistent "
                                 f"volume sources: {', '.join(SUPPORTED_PV_SOURCES)})"))
    if isinstance(spec.get("hostPath"), dict):
        _path(spec["hostPath"].get("path"), "spec.hostPath.path", causes)
    if isinstance(spec.get("local"), dict):
        _path(spec["local"].get("path"), "spec.local.path", causes)
        if not spec.get("nodeAffinity"):
            causes.append(_cause("spec.nodeAffinity", REQUIRED, "Required value: Local volume requires node affinity"))
    na = spec.get("nodeAffinity")
    if isinstance(na, dict):
        req = na.get("required")
        if req is None:
            causes.append(_cause("spec.nodeAffinity.required", REQUIRED, "Required value: must specify required "
                                 "node constraints"))
        elif isinstance(req, dict):
            terms = req.get("nodeSelectorTerms")
            if not terms:
                causes.append(_cause("spec.nodeAffinity.required.nodeSelectorTerms", REQUIRED,
                                     "Required value: must have at least one node selector term"))
            for i, t in enumerate(terms if isinstance(terms, list) else ()):
                _node_selector_term(t, f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]", causes)
    ref = spec.get("claimRef")
    if isinstance(ref, dict):
        if not ref.get("name"):
            causes.append(_cause("spec.claimRef.name", REQUIRED, "Required value"))
        if not ref.get("namespace"):
            causes.append(_cause("spec.claimRef.namespace", REQUIRED, "Required value"))
    return causes


def _go_map(m: dict) -> str:
    return "core.ResourceList{" + ", ".join(f'"{k}":"{v}"' for k, v in m.items()) + "}"


# ------------------------------------------------------------------ PersistentVolumeClaim

def _check_pvc(obj: dict) -> list[dict]:
    spec = obj.get("spec")
    causes: list[dict] = []
    if not isinstance(spec, dict):
        spec = {}
    _access_modes(spec.get("accessModes"), "spec.accessModes", causes, claim=True)
    if spec.get("selector") is not None:
        _label_selector(spec["selector"], "spec.selector", causes)
    req = ((spec.get("resources") or {}).get("requests") or {}) if isinstance(spec.get("resources"), dict) else {}
    if "storage" not in req:
        causes.append(_cause("spec.resources[storage]", REQUIRED, "Required value"))
    else:
        n = quantity_bytes(req["storage"])
        if n is not None and n <= 0:
            causes.append(_cause("spec.resources[storage]", INVALID,
                                 f"Invalid value: {_short(str(req['storage']))}: must be greater than zero"))
    _class_name(spec.get("storageClassName"), "spec.storageClassName", causes)
    _volume_mode(spec.get("volumeMode"), "spec.volumeMode", causes)
    for k in ("dataSource", "dataSourceRef"):
        if spec.get(k):
            causes.append(_cause(f"spec.{k}", NOT_SUPPORTED, f"spec.{k} is not supported by skiff (claims start "
                                 f"empty)"))
    return causes


# ------------------------------------------------------------------ StorageClass

def _check_sc(obj: dict) -> list[dict]:
    causes: list[dict] = []
    prov = obj.get("provisioner")
    if not prov:
        causes.append(_cause("provisioner", REQUIRED, "Required value"))
    elif isinstance(prov, str) and len(prov) > 63:
        causes.append(_cause("provisioner", "FieldValueTooLong", "Too long: may not be more than 63 bytes"))
    pol = obj.get("reclaimPolicy")
    if pol is not None and pol not in SC_RECLAIM_POLICIES:
        causes.append(_not_supported("reclaimPolicy", pol, SC_RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is not None and mode not in BINDING_MODES:
        causes.append(_not_supported("volumeBindingMode", mode, BINDING_MODES))
    params = obj.get("parameters") or {}
    if isinstance(params, dict) and len(params) > 512:
        causes.append(_cause("parameters", "FieldValueTooLong", "Too long: may not be more than 512 bytes"))
    return causes


def check_storage(kind: str, obj: dict) -> tuple[list[dict], list[Warning]]:
    """The causes and warnings of a PersistentVolume, PersistentVolumeClaim or StorageClass."""
    warnings: list[Warning] = []
    try:
        if kind == "PersistentVolume":
            causes = _check_pv(obj)
            if (obj.get("spec") or {}).get("mountOptions"):
                warnings.append(Warning("spec.mountOptions", "spec.mountOptions is accepted, but skiff bind-mounts "
                                                            "hostPath and local volumes without options"))
        elif kind == "PersistentVolumeClaim":
            causes = _check_pvc(obj)
        else:
            causes = _check_sc(obj)
            if obj.get("allowedTopologies"):
                warnings.append(Warning("allowedTopologies", "allowedTopologies is accepted, but skiff's local-path "
                                                             "provisioner ignores it"))
    except (AttributeError, TypeError):
        causes = []     # a shape the schema has already reported
    return causes, warnings


# ------------------------------------------------------------------ updates

def _without(d: Any, *keys: str) -> dict:
    return {k: v for k, v in (d or {}).items() if k not in keys} if isinstance(d, dict) else d


def check_storage_update(kind: str, cur: dict, new: dict) -> list[dict]:
    causes: list[dict] = []
    if kind == "PersistentVolumeClaim":
        old, spec = dict(cur.get("spec") or {}), dict(new.get("spec") or {})
        def take(key: str) -> None:
            if key in spec:
                old[key] = spec[key]
            else:
                old.pop(key, None)
        if not old.get("volumeName"):            # the binder sets it, once
            take("volumeName")
        if old.get("storageClassName") is None and spec.get("storageClassName"):
            take("storageClassName")             # a class may be given later, once
        bound = (cur.get("status") or {}).get("phase") == "Bound"
        if bound:   # only a bound claim may change its requests (expansion)
            take("resources")
            take("volumeAttributesClassName")
        if old != spec:
            causes.append(_cause("spec", FORBIDDEN, "Forbidden: spec is immutable after creation except "
                                 "resources.requests and volumeAttributesClassName for bound claims"))
        elif bound:
            was = storage_request(cur)
            now = storage_request(new)
            if now < was:
                cap = quantity_bytes(((cur.get("status") or {}).get("capacity") or {}).get("storage")) or was
                if now < cap:
                    causes.append(_cause("spec.resources.requests.storage", FORBIDDEN,
                                         "Forbidden: field can not be less than status.capacity"))
    elif kind == "PersistentVolume":
        old, spec = cur.get("spec") or {}, new.get("spec") or {}
        if _without(old, *_SPEC_FIELDS_NOT_SOURCE) != _without(spec, *_SPEC_FIELDS_NOT_SOURCE):
            causes.append(_cause("spec.persistentvolumesource", FORBIDDEN,
                                 "Forbidden: spec.persistentvolumesource is immutable after creation"))
        if old.get("nodeAffinity") and old.get("nodeAffinity") != spec.get("nodeAffinity"):
            causes.append(_cause("spec.nodeAffinity", INVALID, f"Invalid value: {_short(spec.get('nodeAffinity'))}: "
                                                               f"field is immutable"))
        if old.get("volumeMode") != spec.get("volumeMode"):
            causes.append(_cause("spec.volumeMode", INVALID, f"Invalid value: {json.dumps(spec.get('volumeMode'))}: "
                                                             f"field is immutable"))
    else:
        for f in ("parameters", "provisioner", "reclaimPolicy"):
            if (cur.get(f) or None) != (new.get(f) or None):
                causes.append(_cause(f, FORBIDDEN, f"Forbidden: updates to {f} are forbidden."))
        if cur.get("volumeBindingMode") != new.get("volumeBindingMode"):
            causes.append(_cause("volumeBindingMode", INVALID,
                                 f"Invalid value: {json.dumps(new.get('volumeBindingMode'))}: field is immutable"))
    return causes
