"""OpenAPI v3 documents of the custom resources' group-versions (``/openapi/v3/apis/<group>/<version>``),
as the apiextensions-apiserver publishes them: the version's openAPIV3Schema under the name
``<reversed group>.<version>.<Kind>`` (``com.example.stable.v1.CronTab``) with apiVersion, kind
and metadata (ObjectMeta) added and x-kubernetes-group-version-kind, its List, and the
operations of every path (with the ``fieldValidation`` parameter kubectl looks for). kubectl
explain reads them. Documents are rebuilt when the served resources change.
"""
from __future__ import annotations

import json

from skiff.api.jsontree import json_copy
from skiff.controller.crd import kinds as K

_cache: dict[str, tuple[int, tuple[bytes, str]]] = {}


def _name(group: str, version: str, kind: str) -> str:
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _build(group: str, version: str, cks: list) -> dict:
    from skiff.controller import openapi as O
    conv = O._Converter()
    common = conv.schemas["common.json"]["$defs"]
    for n in ("ObjectMeta", "ListMeta"):
        conv.define(O.META + n, "common.json", common[n])
    conv.components.update(O._meta_schemas())
    paths: dict = {}
    for ck in sorted(cks, key=lambda c: c.resource.plural):
        r = ck.resource
        name = _name(group, version, r.kind)
        schema = json_copy(ck.schema) or {"type": "object"}
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "description": O._API_VERSION_DOC}
        props["kind"] = {"type": "string", "description": O._KIND_DOC}
        props["metadata"] = {"allOf": [O._ref(O.META + "ObjectMeta")],
                             "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
                                            "contributors/devel/sig-architecture/api-conventions.md#metadata"}
        schema["x-kubernetes-group-version-kind"] = [O._gvk(group, version, r.kind)]
        conv.components[name] = schema
        conv.components[name + "List"] = {
            "type": "object", "required": ["items"], "description": f"{r.kind}List is a list of {r.kind}",
            "properties": {"apiVersion": {"type": "string", "description": O._API_VERSION_DOC},
                           "kind": {"type": "string", "description": O._KIND_DOC},
                           "metadata": {"allOf": [O._ref(O.META + "ListMeta")]},
                           "items": {"type": "array", "items": O._ref(name),
                                     "description": f"List of {r.plural}. More info: "
                                                    "https://kubernetes.io/docs/reference/using-api/api-concepts/"
                                                    "#collections"}},
            "x-kubernetes-group-version-kind": [O._gvk(group, version, r.kind + "List")]}
        paths.update(O._paths(r, {r.kind: name, r.kind + "List": name + "List"}))
    conv.components.update(O._extra_schemas(group, version))     # autoscaling/v1 Scale for /scale
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": dict(sorted(paths.items())), "components": {"schemas": dict(sorted(conv.components.items()))}}


_CRD_SCHEMA = {
    "type": "object", "required": ["spec"],
    "description": "CustomResourceDefinition represents a resource that should be exposed on the API server.  Its "
                   "name MUST be in the format <.spec.name>.<.spec.group>.",
    "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "required": ["group", "names", "scope", "versions"],
                 "description": "spec describes how the user wants the resources to appear",
                 "properties": {
                     "group": {"type": "string", "description": "group is the API group of the defined custom "
                                                                "resource. Must match the name of the "
                                                                "CustomResourceDefinition (in the form "
                                                                "`<names.plural>.<group>`)."},
                     "names": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                               "description": "names specify the resource and kind names for the custom resource."},
                     "scope": {"type": "string", "description": "scope indicates whether the defined custom "
                                                                "resource is cluster- or namespace-scoped. Allowed "
                                                                "values are `Cluster` and `Namespaced`."},
                     "versions": {"type": "array", "items": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True},
                                  "description": "versions is the list of all API versions of the defined custom "
                                                 "resource."},
                     "conversion": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                    "description": "conversion defines conversion settings for the CRD."},
                     "preserveUnknownFields": {"type": "boolean"}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                   "description": "status indicates the actual state of the CustomResourceDefinition"}}}


def _crd_document() -> tuple[bytes, str]:
    hit = _cache.get("crd")
    if hit is not None:
        return hit[1]
    from skiff.controller import openapi as O
    ck = K.CustomKind("", K.CRD_RESOURCE, _CRD_SCHEMA, True)
    doc = _build(K.D.GROUP, K.D.VERSION, [ck])
    # Kubernetes' own name for the type
    old = _name(K.D.GROUP, K.D.VERSION, K.D.KIND)
    new = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1." + K.D.KIND
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).replace(old, new).encode()
    out = (body, O._hash(body))
    _cache["crd"] = (0, out)
    return out


def keys() -> list[str]:
    return sorted({f"apis/{ck.resource.group}/{ck.resource.version}" for ck in K.CUSTOM.values()}
                  | {f"apis/{K.D.GROUP}/{K.D.VERSION}"})


def document(key: str) -> tuple[bytes, str] | None:
    """(JSON bytes, hash) of ``apis/<group>/<version>`` when custom resources are served there."""
    parts = key.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "apis":
        return None
    if (parts[1], parts[2]) == (K.D.GROUP, K.D.VERSION):
        return _crd_document()
    cks = [ck for ck in K.CUSTOM.values() if (ck.resource.group, ck.resource.version) == (parts[1], parts[2])]
    if not cks:
        return None
    hit = _cache.get(key)
    if hit is not None and hit[0] == K.GENERATION[0]:
        return hit[1]
    from skiff.controller import openapi as O
    body = json.dumps(_build(parts[1], parts[2], cks), sort_keys=True, separators=(",", ":")).encode()
    out = (body, O._hash(body))
    _cache[key] = (K.GENERATION[0], out)
    return out
