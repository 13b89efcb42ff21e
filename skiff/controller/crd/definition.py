"""The CustomResourceDefinition object (apiextensions.k8s.io/v1): defaulting, validation
and the status the server writes, as the apiextensions-apiserver does.

:func:`default_crd` fills names.singular (the kind in lower case), names.listKind
(``<Kind>List``), conversion.strategy None and the cleanup finalizer; :func:`validate_crd`
returns the field errors (``metadata.name: Invalid value: "x": must be spec.names.plural+"."+spec.group``,
exactly one storage version, a structural openAPIV3Schema, printer columns, subresources);
:func:`status_for` computes acceptedNames, the NamesAccepted and Established conditions and
storedVersions against the resources already served.
"""
from __future__ import annotations

import re
from typing import Any

from skiff.api.validation import dns1035_label_error, json_path
from skiff.controller.crd.schema import EMBEDDED, INT_OR_STRING, PRESERVE

GROUP, VERSION, KIND, PLURAL = "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions"
FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _c(path, reason, message) -> dict:
    return {"field": path if isinstance(path, str) else json_path(path), "reason": reason, "message": message}


def _q(v: Any) -> str:
    import json
    return json.dumps(v) if isinstance(v, str) else str(v)


def default_crd(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})


def _check_names(names: Any, path: str, out: list) -> None:
    if not isinstance(names, dict):
        out.append(_c(path, "FieldValueRequired", "Required value"))
        return
    for field in ("plural", "singular", "kind", "listKind"):
        v = names.get(field)
        if not v:
            if field in ("plural", "kind", "listKind"):
                out.append(_c(f"{path}.{field}", "FieldValueRequired", "Required value"))
            continue
        if not isinstance(v, str):
            out.append(_c(f"{path}.{field}", "FieldValueInvalid", f"Invalid value: {_q(v)}: must be a string"))
            continue
        check = v.lower() if field in ("kind", "listKind") else v
        why = dns1035_label_error(check)
        if why:
            out.append(_c(f"{path}.{field}", "FieldValueInvalid", f"Invalid value: {_q(v)}: {why}"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(_c(f"{path}.listKind", "FieldValueInvalid",
                      f'Invalid value: {_q(names["listKind"])}: kind and listKind may not be the same'))
    for field in ("shortNames", "categories"):
        for i, v in enumerate(names.get(field) or []):
            why = dns1035_label_error(v) if isinstance(v, str) else "must be a string"
            if why:
                out.append(_c(f"{path}.{field}[{i}]", "FieldValueInvalid", f"Invalid value: {_q(v)}: {why}"))


def _check_schema(s: Any, path: str, out: list, root: bool = False) -> None:
    """Structural schema rules (the ones users meet): a type everywhere but where
    x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields stands in, object at the
    root, no $ref, properties and additionalProperties not both."""
    if not isinstance(s, dict):
        out.append(_c(path, "FieldValueInvalid", "Invalid value: must be an object"))
        return
    t = s.get("type")
    if "$ref" in s:
        out.append(_c(f"{path}.$ref", "FieldValueForbidden", "Forbidden: $ref is not supported"))
    if t is not None and t not in _TYPES:
        out.append(_c(f"{path}.type", "FieldValueNotSupported", f"Unsupported value: {_q(t)}: supported values: "
                      + ", ".join(f'"{x}"' for x in _TYPES)))
    if root:
        if not t:
            out.append(_c(f"{path}.type", "FieldValueRequired", "Required value: must not be empty at the root"))
        elif t != "object":
            out.append(_c(f"{path}.type", "FieldValueInvalid", f"Invalid value: {_q(t)}: must be object at the root"))
    elif not t and not s.get(INT_OR_STRING) and not s.get(PRESERVE):
        out.append(_c(f"{path}.type", "FieldValueRequired", "Required value: must not be empty for specified "
                      + ("array items" if path.endswith(".items") else "object fields")))
    if s.get(INT_OR_STRING) and t:
        out.append(_c(f"{path}.type", "FieldValueForbidden",
                      "Forbidden: must be empty if x-kubernetes-int-or-string is true"))
    if s.get(EMBEDDED) and t != "object":
        out.append(_c(f"{path}.type", "FieldValueInvalid",
                      f"Invalid value: {_q(t or '')}: must be object if x-kubernetes-embedded-resource is true"))
    if s.get("properties") is not None and isinstance(s.get("additionalProperties"), (dict, bool)) \
            and s.get("additionalProperties") is not False:
        out.append(_c(f"{path}.additionalProperties", "FieldValueForbidden",
                      "Forbidden: additionalProperties and properties are mutual exclusive"))
    for k, sub in (s.get("properties") or {}).items() if isinstance(s.get("properties"), dict) else []:
        _check_schema(sub, f"{path}.properties[{k}]", out)
    if isinstance(s.get("items"), dict):
        _check_schema(s["items"], f"{path}.items", out)
    elif t == "array" and "items" not in s:
        out.append(_c(f"{path}.items", "FieldValueRequired", "Required value: must be specified"))
    if isinstance(s.get("additionalProperties"), dict):
        _check_schema(s["additionalProperties"], f"{path}.additionalProperties", out)


def _check_json_path(p: Any, path: str, out: list) -> None:
    if not p:
        out.append(_c(path, "FieldValueRequired", "Required value"))
    elif not isinstance(p, str) or not re.fullmatch(r"\.[A-Za-z0-9_.\-\[\]'\"*@?()=<>!&| ]*", p) and "{" not in p:
        out.append(_c(path, "FieldValueInvalid", f"Invalid value: {_q(p)}: must be a simple json path starting with ."))


def validate_crd(obj: dict) -> tuple[list[dict], list[str]]:
    """(field errors, warnings) of a CRD."""
    out: list[dict] = []
    warns: list[str] = []
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_c("spec", "FieldValueRequired", "Required value")], warns
    group, names = spec.get("group"), spec.get("names") if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural")
    if md.get("name") != f"{plural}.{group}":
        out.append(_c("metadata.name", "FieldValueInvalid",
                      f'Invalid value: {_q(md.get("name") or "")}: must be spec.names.plural+"."+spec.group'))
    if not group:
        out.append(_c("spec.group", "FieldValueRequired", "Required value"))
    elif not isinstance(group, str) or not _DNS1123_SUB.match(group) or len(group) > 253:
        out.append(_c("spec.group", "FieldValueInvalid", f"Invalid value: {_q(group)}: a lowercase RFC 1123 "
                      "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
                      "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
    elif "." not in group:
        out.append(_c("spec.group", "FieldValueInvalid",
                      f"Invalid value: {_q(group)}: should be a domain with at least one dot"))
    scope = spec.get("scope")
    if not scope:
        out.append(_c("spec.scope", "FieldValueRequired", "Required value"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(_c("spec.scope", "FieldValueNotSupported",
                      f'Unsupported value: {_q(scope)}: supported values: "Cluster", "Namespaced"'))
    _check_names(spec.get("names"), "spec.names", out)
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        out.append(_c("spec.versions", "FieldValueInvalid", "Invalid value: \"null\": must have exactly one "
                      "version marked as storage version"))
        out.append(_c("spec.versions", "FieldValueRequired", "Required value: must have at least one version"))
        return out, warns
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage") is True)
    if storage != 1:
        out.append(_c("spec.versions", "FieldValueInvalid", "Invalid value: " + _versions_repr(versions)
                      + ": must have exactly one version marked as storage version"))
    seen = set()
    for i, v in enumerate(versions):
        p = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            out.append(_c(p, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        n = v.get("name")
        if not n:
            out.append(_c(f"{p}.name", "FieldValueRequired", "Required value"))
        elif why := dns1035_label_error(str(n)):
            out.append(_c(f"{p}.name", "FieldValueInvalid", f"Invalid value: {_q(n)}: {why}"))
        elif n in seen:
            out.append(_c("spec.versions", "FieldValueInvalid", f"Invalid value: {_versions_repr(versions)}: "
                          "must contain unique version names"))
        seen.add(n)
        for flag in ("served", "storage"):
            if not isinstance(v.get(flag), bool):
                out.append(_c(f"{p}.{flag}", "FieldValueRequired", "Required value"))
        schema = (v.get("schema") or {}).get("openAPIV3Schema") if isinstance(v.get("schema"), dict) else None
        if schema is None:
            out.append(_c(f"{p}.schema.openAPIV3Schema", "FieldValueRequired", "Required value: schemas are required"))
        else:
            _check_schema(schema, f"{p}.schema.openAPIV3Schema", out, root=True)
            if _has_cel(schema):
                warns.append(f"{p}.schema.openAPIV3Schema: x-kubernetes-validations (CEL) rules are accepted but "
                             "not enforced by skiff")
        subs = v.get("subresources")
        if isinstance(subs, dict) and isinstance(subs.get("scale"), dict):
            sc = subs["scale"]
            sp = f"{p}.subresources.scale"
            for field, prefix in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status.")):
                val = sc.get(field)
                if not val:
                    out.append(_c(f"{sp}.{field}", "FieldValueRequired", "Required value"))
                elif not str(val).startswith(prefix):
                    out.append(_c(f"{sp}.{field}", "FieldValueInvalid",
                                  f"Invalid value: {_q(val)}: should be a json path under {prefix.rstrip('.')}"))
        for j, col in enumerate(v.get("additionalPrinterColumns") or []):
            cp = f"{p}.additionalPrinterColumns[{j}]"
            if not isinstance(col, dict):
                continue
            if not col.get("name"):
                out.append(_c(f"{cp}.name", "FieldValueRequired", "Required value"))
            if not col.get("type"):
                out.append(_c(f"{cp}.type", "FieldValueRequired", "Required value"))
            elif col["type"] not in _COLUMN_TYPES:
                out.append(_c(f"{cp}.type", "FieldValueNotSupported", f"Unsupported value: {_q(col['type'])}: "
                              "supported values: " + ", ".join(f'"{t}"' for t in _COLUMN_TYPES)))
            if col.get("format") and col["format"] not in ("int32", "int64", "float", "double", "byte", "date",
                                                           "date-time", "password"):
                out.append(_c(f"{cp}.format", "FieldValueNotSupported", f"Unsupported value: {_q(col['format'])}: "
                              'supported values: "int32", "int64", "float", "double", "byte", "date", '
                              '"date-time", "password"'))
            _check_json_path(col.get("jsonPath"), f"{cp}.jsonPath", out)
    conv = spec.get("conversion")
    if isinstance(conv, dict) and conv.get("strategy") not in (None, "None", "Webhook"):
        out.append(_c("spec.conversion.strategy", "FieldValueNotSupported",
                      f'Unsupported value: {_q(conv.get("strategy"))}: supported values: "None", "Webhook"'))
    elif isinstance(conv, dict) and conv.get("strategy") == "Webhook":
        warns.append("spec.conversion: Webhook conversion is not supported by skiff: objects are served in every "
                     "version as they are stored (strategy None)")
    return out, warns


def _versions_repr(versions: list) -> str:
    return "[]v1.CustomResourceDefinitionVersion{...}" if versions else '"null"'


def _has_cel(s: Any) -> bool:
    if isinstance(s, dict):
        return "x-kubernetes-validations" in s or any(_has_cel(v) for v in s.values())
    if isinstance(s, list):
        return any(_has_cel(v) for v in s)
    return False


def validate_crd_update(cur: dict, new: dict) -> list[dict]:
    out = []
    cs, ns = cur.get("spec") or {}, new.get("spec") or {}
    if cs.get("group") != ns.get("group"):
        out.append(_c("spec.group", "FieldValueInvalid", f"Invalid value: {_q(ns.get('group'))}: field is immutable"))
    if (cs.get("names") or {}).get("plural") != (ns.get("names") or {}).get("plural"):
        out.append(_c("spec.names.plural", "FieldValueInvalid",
                      f"Invalid value: {_q((ns.get('names') or {}).get('plural'))}: field is immutable"))
    if cs.get("scope") != ns.get("scope"):
        out.append(_c("spec.scope", "FieldValueInvalid", f"Invalid value: {_q(ns.get('scope'))}: field is immutable"))
    stored = (cur.get("status") or {}).get("storedVersions") or []
    names = {v.get("name") for v in ns.get("versions") or [] if isinstance(v, dict)}
    for sv in stored:
        if sv not in names:
            out.append(_c("status.storedVersions", "FieldValueInvalid",
                          f"Invalid value: {_q(stored)}: must appear in spec.versions"))
    return out


def storage_version(crd: dict) -> dict:
    return next(v for v in crd["spec"]["versions"] if v.get("storage"))


def served_version(crd: dict) -> dict | None:
    """The version skiff serves the resource in: the storage version when it is served,
    else the first served version."""
    vs = crd["spec"]["versions"]
    st = storage_version(crd)
    return st if st.get("served") else next((v for v in vs if v.get("served")), None)
