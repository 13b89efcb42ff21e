"""The custom resources being served, and their admission.

:data:`CUSTOM` (plural -> :class:`CustomKind`) and :data:`CUSTOM_KINDS` ((apiVersion, kind)
-> the same) hold every resource an Established CRD defines; :func:`register` adds one to the
API's shared tables (``skiff.api.resources.RESOURCES``, the Table columns and cells) so the
generic machinery serves it (paths, discovery, list/watch, patches, apply, namespace
deletion); :func:`unregister` takes it away. Built-in kinds never reach this module: the
admission and registry hooks are one dict lookup.

:func:`admit_custom` is admission for the CustomResourceDefinition kind itself and for the
custom resources (prune, default, validate against the version's openAPIV3Schema), returning
``(object, warnings)`` like :func:`skiff.controller.admission.admit`, or raising the 422 /
400 APIError.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.api.jsontree import json_copy
from skiff.api.resources import RESOURCES, Resource
from skiff.api.validation import (INVALID, Kind, StrictDecodingError, Warning, _check_meta, json_path)
from skiff.controller.crd import definition as D
from skiff.controller.crd import schema as S

CRD_KEY = (f"{D.GROUP}/{D.VERSION}", D.KIND)
CRD_RESOURCE = RESOURCES[D.PLURAL]


@dataclass
class CustomKind:
    crd_name: str
    resource: Resource
    schema: dict
    status_subresource: bool
    columns: list[dict] = field(default_factory=list)
    scale: dict | None = None
    terminating: bool = False      # the CRD is being deleted: no new objects
    other_versions: tuple[str, ...] = ()   # served too, with conversion None (skiff.controller.crd.versions)


CUSTOM: dict[str, CustomKind] = {}
CUSTOM_KINDS: dict[tuple[str, str], Any] = {CRD_KEY: D.KIND}
GENERATION = [0]    # bumped whenever the served custom resources change (the OpenAPI documents follow)
# called with (plural, served: bool) when a custom resource starts or stops being served (the
# garbage collector follows custom resources this way)
LISTENERS: list = []


def _tell(plural: str, served: bool) -> None:
    for fn in list(LISTENERS):
        try:
            fn(plural, served)
        except Exception:   # noqa: BLE001 - a listener's trouble is its own
            import logging
            logging.getLogger("skiff.crd").exception("crd listener")
# the plurals the registry's update hook applies to: the CRDs and every custom resource
HOOKED: dict[str, Any] = {D.PLURAL: D.KIND}


def qualified(r: Resource) -> str:
    return f"{r.kind}.{r.group}" if r.group else r.kind


def invalid(r: Resource, name: str, causes: list[dict]) -> APIError:
    """422 Invalid as kube-apiserver words it: ``CronTab.stable.example.com "x" is invalid: ...``."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    msg = f'{qualified(r)} "{name}" is invalid: ' + (parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]")
    return APIError(422, "Invalid", msg, name=name, kind=r.kind, group=r.group, causes=causes)


# ------------------------------------------------------------------ registration

def register(crd: dict) -> CustomKind | None:
    """Serve the resource ``crd`` defines (its served version closest to storage)."""
    spec = crd["spec"]
    v = D.served_version(crd)
    if v is None:
        unregister(spec["names"]["plural"])
        return None
    names = (crd.get("status") or {}).get("acceptedNames") or spec["names"]
    subs = v.get("subresources") or {}
    sub_names = tuple(s for s in ("status", "scale") if isinstance(subs.get(s), dict))
    r = Resource(names["plural"], names["kind"], spec["group"], v["name"], spec.get("scope") == "Namespaced",
                 names.get("singular") or names["kind"].lower(), tuple(names.get("shortNames") or ()),
                 tuple(names.get("categories") or ()), sub_names)
    old = CUSTOM.get(r.plural)
    if old is not None:
        CUSTOM_KINDS.pop((old.resource.api_version, old.resource.kind), None)
    ck = CustomKind((crd.get("metadata") or {}).get("name", ""), r,
                    ((v.get("schema") or {}).get("openAPIV3Schema") or {}), "status" in sub_names,
                    list(v.get("additionalPrinterColumns") or []), subs.get("scale"),
                    other_versions=tuple(x["name"] for x in spec["versions"]
                                         if x.get("served") and x["name"] != v["name"]))
    CUSTOM[r.plural] = ck
    GENERATION[0] += 1
    CUSTOM_KINDS[(r.api_version, r.kind)] = ck
    HOOKED[r.plural] = ck
    RESOURCES[r.plural] = r
    from skiff.api import tables as T
    from skiff.controller.crd.printing import cells_for, columns_for
    T.COLUMNS[r.plural] = columns_for(ck)
    T.CELLS[r.plural] = cells_for(ck)
    from skiff.controller.crd import versions
    versions.rebuild()
    if old is None:
        _tell(r.plural, True)
    return ck


def unregister(plural: str) -> None:
    ck = CUSTOM.pop(plural, None)
    if ck is None:
        return
    GENERATION[0] += 1
    CUSTOM_KINDS.pop((ck.resource.api_version, ck.resource.kind), None)
    HOOKED.pop(plural, None)
    if RESOURCES.get(plural) is ck.resource:
        del RESOURCES[plural]
    from skiff.api import tables as T
    T.COLUMNS.pop(plural, None)
    T.CELLS.pop(plural, None)
    from skiff.controller.crd import versions
    versions.rebuild()
    _tell(plural, False)


def conflicts(crd: dict) -> tuple[str, str] | None:
    """(reason, message) when a name the CRD asks for is taken by another resource, as the
    apiextensions NamingConditionController reports it; skiff stores and routes resources by
    plural, so a plural is taken whatever the group."""
    spec = crd.get("spec") or {}
    names, group = spec.get("names") or {}, spec.get("group")
    mine = (crd.get("metadata") or {}).get("name")
    plural = names.get("plural")
    for r in RESOURCES.values():
        ck = CUSTOM.get(r.plural)
        if ck is not None and ck.crd_name == mine:
            continue
        if r.plural == plural or (r.group == group and r.singular == plural):
            return "PluralConflict", f'"{plural}" is already in use'
        if r.group == group and names.get("singular") in (r.plural, r.singular):
            return "SingularConflict", f'"{names.get("singular")}" is already in use'
        if r.group == group and r.kind == names.get("kind"):
            return "KindConflict", f'"{names.get("kind")}" is already in use'
        if r.group == group and r.kind == names.get("listKind"):
            return "ListKindConflict", f'"{names.get("listKind")}" is already in use'
        for sn in names.get("shortNames") or []:
            if r.group == group and (sn in r.short_names or sn in (r.plural, r.singular)):
                return "ShortNamesConflict", f'"{sn}" is already in use'
    return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_for(crd: dict, terminating: bool = False) -> dict:
    """The status the server keeps: acceptedNames, NamesAccepted/Established (and Terminating),
    storedVersions."""
    spec = crd["spec"]
    old = crd.get("status") or {}
    old_conds = {c.get("type"): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    clash = conflicts(crd)
    stored = list(old.get("storedVersions") or [])
    sv = D.storage_version(crd)["name"]
    if sv not in stored:
        stored.append(sv)

    def cond(t, st, reason, message):
        prev = old_conds.get(t)
        ts = prev["lastTransitionTime"] if prev and prev.get("status") == st and prev.get("lastTransitionTime") \
            else now()
        return {"type": t, "status": st, "lastTransitionTime": ts, "reason": reason, "message": message}
    if clash is None:
        accepted = {k: v for k, v in spec["names"].items()}
        conds = [cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                 cond("Established", "True", "InitialNamesAccepted", "the initial names have been accepted")]
    else:
        accepted = old.get("acceptedNames") or {"plural": "", "kind": ""}
        conds = [cond("NamesAccepted", "False", clash[0], clash[1]),
                 cond("Established", "False", "NotAccepted", "not all names are accepted")]
    if terminating:
        conds.append(cond("Terminating", "True", "InstanceDeletionInProgress",
                          "CustomResource deletion is in progress"))
    return {"conditions": conds, "acceptedNames": accepted, "storedVersions": stored}


def established(crd: dict) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


# ------------------------------------------------------------------ admission

def admit_custom(obj: dict, namespace_from_path: str | None, field_validation: str | None,
                 owned: bool) -> tuple[dict, list]:
    if not owned:
        obj = json_copy(obj)
    key = (obj.get("apiVersion"), obj.get("kind"))
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    name = str(md.get("name") or md.get("generateName") or "")
    if key == CRD_KEY:
        return _admit_crd(obj, md, name)
    ck: CustomKind = CUSTOM_KINDS[key]
    r = ck.resource
    if r.namespaced:
        ns = md.get("namespace")
        if ns and namespace_from_path and ns != namespace_from_path:
            raise invalid(r, name, [{"field": "metadata.namespace", "reason": INVALID,
                                     "message": f'Invalid value: "{ns}": the namespace of the provided object does '
                                                f'not match the namespace sent on the request '
                                                f'("{namespace_from_path}")'}])
        if not ns:
            md["namespace"] = namespace_from_path or "default"
    dropped = S.prune(obj, ck.schema)
    warnings: list = []
    if dropped:
        fields = [json_path(p) for p in dropped]
        if field_validation == "Strict":
            raise APIError(StrictDecodingError(r.kind, r.api_version, name, fields).to_status())
        if field_validation not in (None, "Ignore"):
            warnings.extend(Warning(f, f'unknown field "{f}"') for f in fields)
    S.apply_defaults(obj, ck.schema)
    causes = _check_meta(obj, Kind(r.api_version, r.kind, r.plural, r.namespaced, "", "subdomain"))
    schema = ck.schema
    if isinstance(schema.get("properties"), dict) and "metadata" in schema["properties"]:
        # metadata is ObjectMeta's: only what the schema says of name is checked, as Kubernetes
        schema = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != "metadata"}}
    for c in S.validate({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}, schema):
        if c not in causes:
            causes.append(c)
    if causes:
        raise invalid(r, name, causes)
    return obj, warnings


def _admit_crd(obj: dict, md: dict, name: str) -> tuple[dict, list]:
    md.pop("namespace", None)
    D.default_crd(obj)
    fins = md.get("finalizers") if isinstance(md.get("finalizers"), list) else []
    if D.FINALIZER not in fins and not md.get("deletionTimestamp"):
        md["finalizers"] = fins + [D.FINALIZER]
    causes = _check_meta(obj, Kind(CRD_KEY[0], D.KIND, D.PLURAL, False, "", "subdomain"))
    errs, warns = D.validate_crd(obj)
    causes.extend(c for c in errs if c not in causes)
    if causes:
        raise invalid(CRD_RESOURCE, name, causes)
    return obj, [Warning("spec", w) for w in warns]


def update_hook(r: Resource, cur: dict, new: dict, sub: str | None) -> bool:
    """For the registry's update of a CRD or a custom resource: checks what may not change
    and says whether ``metadata.generation`` goes up (a CR with the status subresource: any
    change but metadata and status; without it: any change but metadata; a CRD: its spec)."""
    if r.plural == D.PLURAL:
        if sub is None:
            causes = D.validate_crd_update(cur, new)
            if causes:
                raise invalid(CRD_RESOURCE, (new.get("metadata") or {}).get("name", ""), causes)
        return new.get("spec") != cur.get("spec")
    ck = CUSTOM.get(r.plural)
    skip = ("metadata", "status") if ck is not None and ck.status_subresource else ("metadata",)
    return any(new.get(k) != cur.get(k) for k in set(new) | set(cur) if k not in skip)


def refuse_strategic(r: Resource) -> None:
    if r.plural in CUSTOM:
        raise E.unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")


def _crd_table() -> None:
    from skiff.api import tables as T
    from skiff.controller.crd.printing import CRD_COLUMNS, crd_cells
    T.COLUMNS.setdefault(D.PLURAL, CRD_COLUMNS)
    T.CELLS.setdefault(D.PLURAL, crd_cells)


_crd_table()


def status_hook(r: Resource, name: str, status: Any) -> Any:
    """A write on a custom resource's /status: its status pruned, defaulted and validated
    against the schema's ``status`` (the rest of the object is not taken from the request)."""
    ck = CUSTOM.get(r.plural)
    if ck is None or not isinstance(status, dict):
        return status
    sch = (ck.schema.get("properties") or {}).get("status")
    if not isinstance(sch, dict):
        return status
    wrapped = {"status": status}
    root = {"type": "object", "properties": {"status": sch}}
    S.prune(wrapped, root, root=False)
    S.apply_defaults(wrapped, root)
    causes = S.validate(wrapped, root)
    if causes:
        raise invalid(r, name, causes)
    return wrapped["status"]


def create_hook(r: Resource) -> None:
    """A create of a custom resource whose CRD is being deleted is refused, as Kubernetes does."""
    ck = CUSTOM.get(r.plural)
    if ck is not None and ck.terminating:
        raise APIError(405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating")


def _path_parts(path: str) -> list[str]:
    return [p for p in (path or "").split(".") if p]


def _dig(obj: Any, path: str) -> Any:
    for p in _path_parts(path):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def custom_scale_of(r: Resource, obj: dict) -> dict | None:
    """The autoscaling/v1 Scale of a custom resource, from its CRD's scale subresource paths
    (specReplicasPath, statusReplicasPath, labelSelectorPath); None for other resources."""
    ck = CUSTOM.get(r.plural)
    if ck is None or not isinstance(ck.scale, dict):
        return None
    md = obj.get("metadata") or {}
    spec_r, status_r = _dig(obj, ck.scale.get("specReplicasPath")), _dig(obj, ck.scale.get("statusReplicasPath"))
    sel = _dig(obj, ck.scale.get("labelSelectorPath")) if ck.scale.get("labelSelectorPath") else None
    status: dict = {"replicas": status_r if isinstance(status_r, int) else 0}
    if isinstance(sel, str) and sel:
        status["selector"] = sel
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in md},
            "spec": {"replicas": spec_r if isinstance(spec_r, int) else 0}, "status": status}


def with_custom_replicas(r: Resource, obj: dict, replicas: int) -> dict | None:
    """``obj`` with ``replicas`` at its CRD's specReplicasPath (None for other resources)."""
    ck = CUSTOM.get(r.plural)
    if ck is None or not isinstance(ck.scale, dict):
        return None
    out = json_copy(obj)
    parts = _path_parts(ck.scale.get("specReplicasPath"))
    node = out
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = replicas
    return out
