"""OpenAPI v3 documents for the API, generated from the JSON Schemas in ``schemas/``.

kubectl reads them before every ``apply``/``create``/``replace -f``: it looks for the PATCH
operation of the object's group-version-kind and, when that operation lists the query
parameter ``fieldValidation``, leaves validation to the server (KUBECTL.md §3). Its
``explain`` walks ``components.schemas`` from the schema that carries the kind's
``x-kubernetes-group-version-kind``.

``root()`` is the ``/openapi/v3`` index (one ``serverRelativeURL`` per group-version, with the
document's hash); ``document("api/v1")`` is ``(body bytes, hash)``. Everything is generated
once per process and kept (the schemas do not change while skiff runs), and the bytes are
deterministic, so the hashes stay the same across restarts.
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from skiff.api.resources import RESOURCES, Resource
from skiff.api.validation import KINDS, _load_schemas
from skiff.controller.patch import MERGE_KEYS, MERGED_PRIMITIVE_LISTS

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."

# common.json definitions under the names Kubernetes gives them; None = inlined where used
_COMMON_NAMES: dict[str, str | None] = {
    "Time": META + "Time", "MicroTime": META + "MicroTime",
    "Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "OwnerReference": META + "OwnerReference", "ManagedFieldsEntry": META + "ManagedFieldsEntry",
    "ObjectMeta": META + "ObjectMeta", "ListMeta": META + "ListMeta",
    "ObjectReference": CORE + "ObjectReference",
    "LabelSelectorRequirement": META + "LabelSelectorRequirement", "LabelSelector": META + "LabelSelector",
    "Condition": META + "Condition",
    "ResourceList": None, "StringMap": None, "Status": None,
}
# definitions whose OpenAPI form is written by hand (JSON Schema says it with oneOf / type lists)
_FIXED: dict[str, dict] = {
    META + "Time": {"type": "string", "format": "date-time",
                    "description": "Time is a wrapper around time.Time: an RFC 3339 timestamp, e.g. "
                                   "2024-01-02T15:04:05Z."},
    META + "MicroTime": {"type": "string", "format": "date-time",
                         "description": "MicroTime is version of Time with microsecond level precision."},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "type": "string",
        "description": "A resource amount: a number or a string such as \"500m\", \"64Mi\", \"1.5Gi\", \"2e3\"."},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": True,
        "description": "IntOrString is a type that can hold an int32 or a string (a port number or a "
                       "named port, a percentage)."},
}
_DROP = frozenset({"$schema", "$id", "$defs", "definitions", "$comment", "examples", "title", "const"})
_PKG = {"": "core", "apps": "apps", "coordination.k8s.io": "coordination", "autoscaling": "autoscaling"}

_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers "
                    "should convert recognized schemas to the latest internal value, and may reject "
                    "unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may "
             "infer this from the endpoint the client submits requests to. In CamelCase.")


def _pkg(group: str, version: str) -> str:
    return f"io.k8s.api.{_PKG.get(group, group.split('.')[0])}.{version}."


def _file_pkg(file: str) -> str:
    """The Kubernetes package of a schema file's own definitions: core.v1.Pod.json ->
    io.k8s.api.core.v1."""
    k = next(k for k in KINDS.values() if k.schema_file == file)
    group, _, version = k.api_version.rpartition("/")
    return _pkg(group, version)


class _Converter:
    """JSON Schema (draft 2020-12, ``$ref`` across files) -> OpenAPI 3.0 schema objects with
    ``#/components/schemas/...`` references; ``components`` collects every named schema."""

    def __init__(self) -> None:
        self.schemas = _load_schemas()
        self.components: dict[str, dict] = {}

    def name_for(self, file: str, defname: str) -> str | None:
        if file == "common.json":
            return _COMMON_NAMES.get(defname, META + defname)
        if defname == "PodTemplateSpec":
            return CORE + "PodTemplateSpec"
        return _file_pkg(file) + defname

    def define(self, name: str, file: str, node: dict) -> None:
        if name in self.components:
            return
        if name in _FIXED:
            self.components[name] = dict(_FIXED[name])
            return
        self.components[name] = {}   # placeholder: breaks reference cycles
        self.components[name] = self.convert(node, file)

    def ref(self, ref: str, here: str) -> tuple[dict, str, str | None]:
        """(target node, its file, its component name or None) of a ``$ref``."""
        target, _, pointer = ref.partition("#")
        file = target.rsplit("/", 1)[-1] or here
        node: Any = self.schemas[file]
        parts = [p for p in pointer.split("/") if p]
        for p in parts:
            node = node[p.replace("~1", "/").replace("~0", "~")]
        name = self.name_for(file, parts[1]) if len(parts) == 2 and parts[0] in ("$defs", "definitions") else None
        return node, file, name

    def convert(self, node: Any, file: str) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            target, tfile, name = self.ref(ref, file)
            if name is None:
                body = self.convert(target, tfile)
            else:
                self.define(name, tfile, target)
                body = {"$ref": "#/components/schemas/" + name}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if not rest:
                return body
            if name is None:
                return {**body, **self.convert(rest, file)}
            # Kubernetes' form for a reference with siblings (description, default...)
            return {"allOf": [body], **self.convert(rest, file)}
        for key in ("anyOf", "oneOf"):
            alts = node.get(key)
            if isinstance(alts, list) and any(a == {"type": "null"} for a in alts):
                others = [a for a in alts if a != {"type": "null"}]
                rest = {k: v for k, v in node.items() if k != key}
                if len(others) == 1:
                    inner = self.convert(others[0], file)
                    if "$ref" in inner:
                        inner = {"allOf": [inner]}
                    return {**inner, **self.convert(rest, file), "nullable": True}
        if "const" in node:
            v = node["const"]
            out["type"] = {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(v), "object")
            out["enum"] = [v]
        for k, v in node.items():
            if k in _DROP:
                continue
            if k == "type" and isinstance(v, list):
                types = [t for t in v if t != "null"]
                if sorted(types) == ["integer", "string"]:
                    out.update(type="string", format="int-or-string")
                    out["x-kubernetes-int-or-string"] = True
                else:
                    out["type"] = types[0] if types else "object"
                if "null" in v:
                    out["nullable"] = True
            elif k == "properties":
                out[k] = {p: _patch_meta(p, self.convert(s, file)) for p, s in v.items()}
            elif k == "additionalProperties":
                if isinstance(v, dict):
                    out[k] = self.convert(v, file)
                # false: OpenAPI documents of Kubernetes do not say it (unknown fields are
                # decided by fieldValidation); true is the default
            elif k in ("items", "not"):
                out[k] = self.convert(v, file)
            elif k in ("allOf", "anyOf", "oneOf"):
                out[k] = [self.convert(s, file) for s in v]
            else:
                out[k] = v
        return out


def _patch_meta(field: str, schema: dict) -> dict:
    """Kubernetes' strategic-merge-patch metadata on a property. kubectl 1.32 takes it from these
    documents when it computes an apply patch: a list without a merge key is atomic to it, and
    every re-apply would then resend whole lists that the server defaulted (``configured``
    instead of ``unchanged``). The keys are patch.py's, the ones the server merges by."""
    if schema.get("type") == "array":
        key = MERGE_KEYS.get(field)
        items = schema.get("items") or {}
        item_ref = str(items.get("$ref") or "")
        if field in ("ports", "addresses"):
            # keyed by the item type: a container's ports (containerPort), a Service's (port),
            # a Node's addresses (type); the ports and addresses of endpoints are atomic
            key = {"ContainerPort": "containerPort", "ServicePort": "port",
                   "NodeAddress": "type"}.get(item_ref.rpartition(".")[2])
            if key is None:
                return {**schema, "x-kubernetes-list-type": "atomic"}
        if key and ("$ref" in items or "allOf" in items or items.get("type") == "object"):
            schema = {**schema, "x-kubernetes-patch-merge-key": key,
                      "x-kubernetes-patch-strategy": "merge,retainKeys" if field == "volumes" else "merge"}
            if field == "ports":
                schema.update({"x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": [key, "protocol"]})
            elif field != "volumeMounts":
                schema.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]})
        elif field in MERGED_PRIMITIVE_LISTS:
            schema = {**schema, "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}
    elif field == "strategy" and "rollingUpdate" in (schema.get("properties") or {}):
        schema = {**schema, "x-kubernetes-patch-strategy": "retainKeys"}
    return schema


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


def _ref(name: str) -> dict:
    return {"$ref": "#/components/schemas/" + name}


def _meta_schemas() -> dict[str, dict]:
    """The meta.k8s.io/v1 types the operations use (Status, DeleteOptions, WatchEvent, Patch)."""
    s = {"type": "string"}
    return {
        META + "Status": {
            "type": "object", "description": "Status is a return value for calls that don't return other objects.",
            "properties": {"apiVersion": {**s, "description": _API_VERSION_DOC},
                           "kind": {**s, "description": _KIND_DOC},
                           "metadata": {"allOf": [_ref(META + "ListMeta")], "default": {}},
                           "status": {**s, "description": "Status of the operation: \"Success\" or \"Failure\"."},
                           "message": {**s, "description": "A human-readable description of the status."},
                           "reason": {**s, "description": "A machine-readable description of why this operation "
                                                          "is in the \"Failure\" status."},
                           "details": {"type": "object", "description": "Extended data associated with the reason.",
                                       "x-kubernetes-preserve-unknown-fields": True},
                           "code": {"type": "integer", "format": "int32",
                                    "description": "Suggested HTTP return code for this status."}},
            "x-kubernetes-group-version-kind": [_gvk("", "v1", "Status")]},
        META + "DeleteOptions": {
            "type": "object", "description": "DeleteOptions may be provided when deleting an API object.",
            "properties": {"apiVersion": {**s, "description": _API_VERSION_DOC},
                           "kind": {**s, "description": _KIND_DOC},
                           "dryRun": {"type": "array", "items": {**s, "default": ""}},
                           "gracePeriodSeconds": {"type": "integer", "format": "int64",
                                                  "description": "The duration in seconds before the object should "
                                                                 "be deleted."},
                           "orphanDependents": {"type": "boolean"},
                           "preconditions": {"type": "object", "properties": {"resourceVersion": s, "uid": s}},
                           "propagationPolicy": {**s, "description": "Orphan, Background or Foreground."}},
            "x-kubernetes-group-version-kind": [_gvk(g, v, "DeleteOptions") for g, v in
                                                (("", "v1"), ("apps", "v1"), ("batch", "v1"),
                                                 ("coordination.k8s.io", "v1"))]},
        META + "WatchEvent": {
            "type": "object", "required": ["type", "object"],
            "description": "Event represents a single event to a watched resource.",
            "properties": {"type": {**s, "default": ""},
                           "object": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                      "description": "The object (or a Status for ERROR events)."}},
            "x-kubernetes-group-version-kind": [_gvk("", "v1", "WatchEvent")]},
        META + "Patch": {"type": "object",
                         "description": "Patch is provided to give a concrete name and type to the Kubernetes "
                                        "PATCH request body."},
    }


# --------------------------------------------------------------------------- parameters

def _q(name: str, typ: str, desc: str, **extra) -> dict:
    return {"name": name, "in": "query", "description": desc, "schema": {"type": typ, "uniqueItems": True, **extra}}


_P = {
    "pretty": _q("pretty", "string", "If 'true', then the output is pretty printed."),
    "dryRun": _q("dryRun", "string", "When present, indicates that modifications should not be persisted."),
    "fieldManager": _q("fieldManager", "string", "fieldManager is a name associated with the actor or entity that "
                                                 "is making these changes."),
    "fieldValidation": _q("fieldValidation", "string",
                          "fieldValidation instructs the server on how to handle objects in the request "
                          "containing unknown or duplicate fields. Valid values are: - Ignore: ignores unknown "
                          "fields that are silently dropped from the object. - Warn: sends a warning via the "
                          "standard warning response header for each unknown field that is dropped from the "
                          "object (the default). - Strict: fails the request with a BadRequest error if any "
                          "unknown fields would be dropped from the object, or if any duplicate fields are "
                          "present."),
    "force": _q("force", "boolean", "Force is going to \"force\" Apply requests. It must be unset for non-apply "
                                    "patch requests."),
    "allowWatchBookmarks": _q("allowWatchBookmarks", "boolean", "Requests watch events with type \"BOOKMARK\"."),
    "continue": _q("continue", "string", "The continue option, from a previous list result."),
    "fieldSelector": _q("fieldSelector", "string", "A selector to restrict the list of returned objects by their "
                                                   "fields."),
    "labelSelector": _q("labelSelector", "string", "A selector to restrict the list of returned objects by their "
                                                   "labels."),
    "limit": _q("limit", "integer", "The maximum number of responses to return for a list call."),
    "resourceVersion": _q("resourceVersion", "string", "Constrains which resource versions the request may be "
                                                       "served from."),
    "resourceVersionMatch": _q("resourceVersionMatch", "string", "How resourceVersion is applied to list calls."),
    "sendInitialEvents": _q("sendInitialEvents", "boolean", "Sends synthetic ADDED events for the existing "
                                                            "objects first (with watch=true)."),
    "timeoutSeconds": _q("timeoutSeconds", "integer", "Timeout for the list/watch call."),
    "watch": _q("watch", "boolean", "Watch for changes to the described resources and return them as a stream of "
                                    "add, update, and remove notifications."),
    "gracePeriodSeconds": _q("gracePeriodSeconds", "integer", "The duration in seconds before the object should be "
                                                              "deleted."),
    "orphanDependents": _q("orphanDependents", "boolean", "Deprecated: use propagationPolicy."),
    "propagationPolicy": _q("propagationPolicy", "string", "Whether and how garbage collection will be performed: "
                                                           "Orphan, Background or Foreground."),
    "container": _q("container", "string", "The container for which to stream logs."),
    "follow": _q("follow", "boolean", "Follow the log stream of the pod."),
    "limitBytes": _q("limitBytes", "integer", "The number of bytes to read from the server before terminating the "
                                              "log output."),
    "previous": _q("previous", "boolean", "Return previous terminated container logs."),
    "sinceSeconds": _q("sinceSeconds", "integer", "A relative time in seconds before the current time from which "
                                                  "to show logs."),
    "sinceTime": _q("sinceTime", "string", "An RFC3339 timestamp from which to show logs."),
    "tailLines": _q("tailLines", "integer", "The number of lines from the end of the logs to show."),
    "timestamps": _q("timestamps", "boolean", "Add an RFC3339 timestamp at the beginning of every line."),
    "command": _q("command", "string", "Command is the remote command to execute. argv array. Not executed "
                  "within a shell."),
    "stdin": _q("stdin", "boolean", "Redirect the standard input stream of the pod for this call."),
    "stdout": _q("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
    "stderr": _q("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
    "tty": _q("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call."),
    "ports": _q("ports", "integer", "List of ports to forward Required when using WebSockets"),
}
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_PATCH = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_EXEC = ("command", "container", "stderr", "stdin", "stdout", "tty")
# connect subresources: (the operation's title, its options kind, its query parameters)
# create-only subresources whose body is another kind: (group, version, kind, schema)
_CREATE_ONLY = {"eviction": ("policy", "v1", "Eviction", "io.k8s.api.policy.v1.Eviction"),
                "token": ("authentication.k8s.io", "v1", "TokenRequest", "io.k8s.api.authentication.v1.TokenRequest"),
                "binding": ("", "v1", "Binding", CORE + "Binding")}
_CONNECT = {"exec": ("Exec", "PodExecOptions", _EXEC),
            "attach": ("Attach", "PodAttachOptions", ("container", "stderr", "stdin", "stdout", "tty")),
            "portforward": ("Portforward", "PodPortForwardOptions", ("ports",))}
_LOG = ("container", "follow", "limitBytes", "previous", "sinceSeconds", "sinceTime", "tailLines", "timestamps")

_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json")
_BODY_TYPES = ("application/json", "application/yaml")


def _path_param(name: str, desc: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": "string", "uniqueItems": True}}


def _json(schema: dict, *types: str) -> dict:
    return {t: {"schema": schema} for t in (types or ("application/json",))}


def _op(op_id: str, action: str, gvk: dict, tag: str, desc: str, params: tuple, responses: dict,
        body: dict | None = None) -> dict:
    op: dict[str, Any] = {"tags": [tag], "description": desc, "operationId": op_id,
                          "parameters": [dict(_P[p]) for p in params], "responses": responses,
                          "x-kubernetes-action": action, "x-kubernetes-group-version-kind": dict(gvk)}
    if body is not None:
        op["requestBody"] = body
    if not op["parameters"]:
        del op["parameters"]
    return op


def _ok(schema: dict, code: str = "200", *more: str) -> dict:
    r = {code: {"description": "OK" if code == "200" else ("Created" if code == "201" else "Accepted"),
                "content": _json(schema)}}
    for c in more:
        r[c] = {"description": "Created" if c == "201" else "Accepted", "content": _json(schema)}
    r["401"] = {"description": "Unauthorized"}
    return r


def _paths(r: Resource, kinds: dict[str, str]) -> dict[str, dict]:
    """Every path of resource ``r``: the collection (and the all-namespaces list), the item, and
    each subresource, with Kubernetes' operation ids and extensions."""
    tag = f"{_PKG.get(r.group, r.group.split('.')[0])}_{r.version}"
    gvk = _gvk(r.group, r.version, r.kind)
    obj = _ref(kinds[r.kind])
    lst = _ref(kinds[r.kind + "List"])
    status = _ref(META + "Status")
    nsd = "Namespaced" if r.namespaced else ""
    k = r.kind
    common = [_P["pretty"]]
    coll_params = ([_path_param("namespace", "object name and auth scope, such as for teams and projects")]
                   if r.namespaced else []) + common
    item_params = [_path_param("name", f"name of the {k}")] + coll_params
    base = r.base + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}"
    body = {"content": _json(obj, *_BODY_TYPES), "required": True}
    patch_body = {"content": _json(_ref(META + "Patch"), *_PATCH_TYPES), "required": True}
    delete_body = {"content": _json(_ref(META + "DeleteOptions"), *_BODY_TYPES)}
    out: dict[str, dict] = {}
    out[base] = {
        "get": _op(f"list{nsd}{k}", "list", gvk, tag, f"list or watch objects of kind {k}", _LIST,
                   {"200": {"description": "OK", "content": {
                       **_json(lst), "application/json;stream=watch": {"schema": lst}}},
                    "401": {"description": "Unauthorized"}}),
        "post": _op(f"create{nsd}{k}", "post", gvk, tag, f"create a {k}", _WRITE, _ok(obj, "200", "201", "202"),
                    body),
        "delete": _op(f"deletecollection{nsd}{k}", "deletecollection", gvk, tag,
                      f"delete collection of {k}", _DELETE + _LIST, _ok(status), delete_body),
        "parameters": coll_params,
    }
    if r.namespaced:
        out[f"{r.base}/{r.plural}"] = {
            "get": _op(f"list{k}ForAllNamespaces", "list", gvk, tag, f"list or watch objects of kind {k}", _LIST,
                       {"200": {"description": "OK", "content": {
                           **_json(lst), "application/json;stream=watch": {"schema": lst}}},
                        "401": {"description": "Unauthorized"}}),
            "parameters": list(common),
        }
    item = base + "/{name}"
    out[item] = {
        "get": _op(f"read{nsd}{k}", "get", gvk, tag, f"read the specified {k}", (), _ok(obj)),
        "put": _op(f"replace{nsd}{k}", "put", gvk, tag, f"replace the specified {k}", _WRITE,
                   _ok(obj, "200", "201"), body),
        "patch": _op(f"patch{nsd}{k}", "patch", gvk, tag, f"partially update the specified {k}", _PATCH,
                     _ok(obj, "200", "201"), patch_body),
        "delete": _op(f"delete{nsd}{k}", "delete", gvk, tag, f"delete a {k}", _DELETE,
                      _ok(obj, "200", "202"), delete_body),
        "parameters": item_params,
    }
    for sub in r.subresources:
        p = f"{item}/{sub}"
        S = sub.capitalize()
        if sub in ("status", "ephemeralcontainers"):
            S, what = ("Status", "status") if sub == "status" else ("EphemeralContainers", "ephemeralcontainers")
            out[p] = {
                "get": _op(f"read{nsd}{k}{S}", "get", gvk, tag, f"read {what} of the specified {k}", (), _ok(obj)),
                "put": _op(f"replace{nsd}{k}{S}", "put", gvk, tag, f"replace {what} of the specified {k}",
                           _WRITE, _ok(obj, "200", "201"), body),
                "patch": _op(f"patch{nsd}{k}{S}", "patch", gvk, tag,
                             f"partially update {what} of the specified {k}", _PATCH, _ok(obj, "200", "201"),
                             patch_body),
                "parameters": item_params}
        elif sub == "scale":
            sgvk = _gvk("autoscaling", "v1", "Scale")
            scale = _ref("io.k8s.api.autoscaling.v1.Scale")
            sbody = {"content": _json(scale, *_BODY_TYPES), "required": True}
            out[p] = {
                "get": _op(f"read{nsd}{k}Scale", "get", sgvk, tag, f"read scale of the specified {k}", (),
                           _ok(scale)),
                "put": _op(f"replace{nsd}{k}Scale", "put", sgvk, tag, f"replace scale of the specified {k}",
                           _WRITE, _ok(scale, "200", "201"), sbody),
                "patch": _op(f"patch{nsd}{k}Scale", "patch", sgvk, tag,
                             f"partially update scale of the specified {k}", _PATCH, _ok(scale, "200", "201"),
                             patch_body),
                "parameters": item_params}
        elif sub in _CONNECT:
            connected = {"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}},
                         "401": {"description": "Unauthorized"}}
            title, opts, params = _CONNECT[sub]
            egvk = _gvk("", "v1", opts)
            out[p] = {
                "get": _op(f"connectGet{nsd}{k}{title}", "connect", egvk, tag,
                           f"connect GET requests to {sub} of {k}", params, connected),
                "post": _op(f"connectPost{nsd}{k}{title}", "connect", egvk, tag,
                            f"connect POST requests to {sub} of {k}", params, connected),
                "parameters": item_params}
        elif sub == "log":
            out[p] = {
                "get": _op(f"read{nsd}{k}Log", "get", gvk, tag, f"read log of the specified {k}", _LOG,
                           {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                            "401": {"description": "Unauthorized"}}),
                "parameters": item_params}
        elif sub in _CREATE_ONLY:     # POST of another kind: eviction, token (TokenRequest), binding
            g, v, kind, ref = _CREATE_ONLY[sub]
            body_ref = _ref(ref)
            out[p] = {
                "post": _op(f"create{nsd}{k}{kind if sub != 'token' else 'Token'}", "post", _gvk(g, v, kind), tag,
                            f"create {sub} of a {k}", _WRITE, _ok(body_ref, "200", "201", "202"),
                            {"content": _json(body_ref, *_BODY_TYPES), "required": True}),
                "parameters": item_params}
        elif sub == "finalize":
            out[p] = {
                "put": _op(f"replace{nsd}{k}{S}", "put", gvk, tag, f"replace finalize of the specified {k}",
                           _WRITE, _ok(obj, "200", "201"), body),
                "parameters": item_params}
    return out


# --------------------------------------------------------------------------- documents

def _extra_schemas(group: str, version: str) -> dict[str, dict]:
    """Kinds a group-version serves that have no schema file: autoscaling/v1 Scale (for
    /scale), core/v1 Binding (for pods/binding)."""
    out: dict[str, dict] = {}
    s = {"type": "string"}
    if any(r.group == group and r.version == version and "scale" in r.subresources for r in RESOURCES.values()):
        out["io.k8s.api.autoscaling.v1.Scale"] = {
            "type": "object", "description": "Scale represents a scaling request for a resource.",
            "properties": {
                "apiVersion": {**s, "description": _API_VERSION_DOC}, "kind": {**s, "description": _KIND_DOC},
                "metadata": {"allOf": [_ref(META + "ObjectMeta")], "default": {}},
                "spec": {"type": "object", "description": "The desired state of the scaled object.",
                         "properties": {"replicas": {"type": "integer", "format": "int32",
                                                     "description": "The desired number of instances."}}},
                "status": {"type": "object", "description": "The current status of the scaled object.",
                           "properties": {"replicas": {"type": "integer", "format": "int32", "default": 0},
                                          "selector": s}}},
            "x-kubernetes-group-version-kind": [_gvk("autoscaling", "v1", "Scale")]}
    if any(r.group == group and r.version == version and "eviction" in r.subresources for r in RESOURCES.values()):
        out["io.k8s.api.policy.v1.Eviction"] = {
            "type": "object",
            "description": "Eviction evicts a pod from its node subject to certain policies and safety constraints.",
            "properties": {
                "apiVersion": {**s, "description": _API_VERSION_DOC}, "kind": {**s, "description": _KIND_DOC},
                "metadata": {"allOf": [_ref(META + "ObjectMeta")], "default": {}},
                "deleteOptions": {"type": "object", "description": "DeleteOptions may be provided"}},
            "x-kubernetes-group-version-kind": [_gvk("policy", "v1", "Eviction")]}
    if any(r.group == group and r.version == version and "token" in r.subresources for r in RESOURCES.values()):
        out["io.k8s.api.authentication.v1.TokenRequest"] = {
            "type": "object", "required": ["spec"],
            "description": "TokenRequest requests a token for a given service account.",
            "properties": {
                "apiVersion": {**s, "description": _API_VERSION_DOC}, "kind": {**s, "description": _KIND_DOC},
                "metadata": {"allOf": [_ref(META + "ObjectMeta")], "default": {}},
                "spec": {"type": "object", "description": "Spec holds information about the request being evaluated",
                         "properties": {"audiences": {"type": "array", "items": s},
                                        "expirationSeconds": {"type": "integer", "format": "int64"},
                                        "boundObjectRef": {"type": "object"}}},
                "status": {"type": "object", "description": "Status is filled in by the server and indicates whether "
                                                            "the token can be authenticated.",
                           "properties": {"token": s, "expirationTimestamp": {"type": "string",
                                                                              "format": "date-time"}}}},
            "x-kubernetes-group-version-kind": [_gvk("authentication.k8s.io", "v1", "TokenRequest")]}
    if any(r.group == group and r.version == version and "binding" in r.subresources for r in RESOURCES.values()):
        out[CORE + "Binding"] = {
            "type": "object", "required": ["target"],
            "description": "Binding ties one object to another; for example, a pod is bound to a node by a "
                           "scheduler.",
            "properties": {
                "apiVersion": {**s, "description": _API_VERSION_DOC}, "kind": {**s, "description": _KIND_DOC},
                "metadata": {"allOf": [_ref(META + "ObjectMeta")], "default": {}},
                "target": {"allOf": [_ref(CORE + "ObjectReference")], "default": {},
                           "description": "The target object that you want to bind to the standard object."}},
            "x-kubernetes-group-version-kind": [_gvk("", "v1", "Binding")]}
    return out


def _build(group: str, version: str) -> dict:
    conv = _Converter()
    kinds: dict[str, str] = {}
    for r in RESOURCES.values():
        if r.group != group or r.version != version:
            continue
        k = KINDS.get((r.api_version, r.kind))
        if k is None:
            continue
        name = _pkg(group, version) + r.kind
        schema = conv.convert(conv.schemas[k.schema_file], k.schema_file)
        props = schema.setdefault("properties", {})
        for f, doc in (("apiVersion", _API_VERSION_DOC), ("kind", _KIND_DOC)):
            if f in props:
                props[f] = {**props[f], "description": doc}
        for f, doc in (("metadata", "Standard object's metadata."),
                       ("spec", f"Specification of the desired behavior of the {r.kind}."),
                       ("status", f"Most recently observed status of the {r.kind}, written by the system.")):
            if f in props and "description" not in props[f]:
                sub = props[f]
                props[f] = {**({"allOf": [sub]} if "$ref" in sub else sub), "description": doc}
        if isinstance(conv.schemas[k.schema_file].get("title"), str):
            schema.setdefault("description", conv.schemas[k.schema_file]["title"])
        schema["x-kubernetes-group-version-kind"] = [_gvk(group, version, r.kind)]
        # the server fills apiVersion/kind from the URL; Kubernetes marks none of them required
        req = [f for f in schema.get("required", []) if f not in ("apiVersion", "kind", "metadata")]
        if req:
            schema["required"] = req
        else:
            schema.pop("required", None)
        conv.components[name] = schema
        kinds[r.kind] = name
        lname = name + "List"
        conv.components[lname] = {
            "type": "object", "required": ["items"], "description": f"{r.kind}List is a list of {r.kind} objects.",
            "properties": {"apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                           "kind": {"type": "string", "description": _KIND_DOC},
                           "metadata": {"allOf": [_ref(META + "ListMeta")], "default": {}},
                           "items": {"type": "array", "items": {"allOf": [_ref(name)], "default": {}},
                                     "description": f"List of {r.plural}."}},
            "x-kubernetes-group-version-kind": [_gvk(group, version, r.kind + "List")]}
        kinds[r.kind + "List"] = lname
    if "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" not in conv.components:
        conv.define(META + "ListMeta", "common.json", conv.schemas["common.json"]["$defs"]["ListMeta"])
    if "io.k8s.api.core.v1.ObjectReference" not in conv.components:
        conv.define(CORE + "ObjectReference", "common.json", conv.schemas["common.json"]["$defs"]["ObjectReference"])
    if META + "ObjectMeta" not in conv.components:
        conv.define(META + "ObjectMeta", "common.json", conv.schemas["common.json"]["$defs"]["ObjectMeta"])
    conv.components.update(_meta_schemas())
    conv.components.update(_extra_schemas(group, version))
    paths: dict[str, dict] = {}
    for r in RESOURCES.values():
        if r.group == group and r.version == version and r.kind in kinds:
            paths.update(_paths(r, kinds))
    gv = f"{group}/{version}" if group else version
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0-skiff",
                     "description": f"skiff's API, group-version {gv}"},
            "paths": dict(sorted(paths.items())),
            "components": {"schemas": dict(sorted(conv.components.items()))}}


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


@functools.lru_cache(maxsize=1)
def _documents() -> dict[str, tuple[bytes, str]]:
    docs: dict[str, tuple[bytes, str]] = {}
    for r in RESOURCES.values():
        key = _gv_key(r.group, r.version)
        if key in docs or not any(k.api_version == r.api_version for k in KINDS.values()):
            continue
        body = json.dumps(_build(r.group, r.version), sort_keys=True, separators=(",", ":")).encode()
        docs[key] = (body, _hash(body))
    return docs


def document(key: str) -> tuple[bytes, str] | None:
    """(JSON bytes, hash) of the group-version document ``key`` ("api/v1",
    "apis/apps/v1"), or None when there is no such group-version."""
    from skiff.controller.crd import openapi as custom     # the custom resources' group-versions
    return _documents().get(key.strip("/")) or custom.document(key)


def root() -> tuple[bytes, str]:
    """The /openapi/v3 index and its hash (with the custom resources' group-versions)."""
    from skiff.controller.crd import openapi as custom
    extra = custom.keys()
    if not extra:
        return _root()
    paths = {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"} for k, (_, h) in _documents().items()}
    for k in extra:
        found = custom.document(k)
        if found is not None and k not in paths:
            paths[k] = {"serverRelativeURL": f"/openapi/v3/{k}?hash={found[1]}"}
    body = json.dumps({"paths": dict(sorted(paths.items()))}, sort_keys=True, separators=(",", ":")).encode()
    return body, _hash(body)


@functools.lru_cache(maxsize=1)
def _root() -> tuple[bytes, str]:
    paths = {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"} for k, (_, h) in sorted(_documents().items())}
    body = json.dumps({"paths": paths}, sort_keys=True, separators=(",", ":")).encode()
    return body, _hash(body)


# --------------------------------------------------------------------------- OpenAPI v2

# the media type answered (Go's mime parser refuses the "@" of the one kubectl asks for)
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _to_v2(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as Swagger 2.0 (``#/definitions/`` references; a lone
    ``allOf`` reference becomes a plain one, as in Kubernetes' v2 document)."""
    if isinstance(node, list):
        return [_to_v2(x) for x in node]
    if not isinstance(node, dict):
        return node
    extra = {k: v for k, v in node.items() if k in ("description",) or k.startswith("x-")}
    ref = node.get("$ref")
    if ref is None and isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1 \
            and "$ref" in node["allOf"][0] and "properties" not in node:
        ref = node["allOf"][0]["$ref"]
    if ref is not None:
        return {"$ref": "#/definitions/" + ref.rsplit("/", 1)[-1], **extra}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in ("nullable", "anyOf", "oneOf", "default"):
            continue
        if k == "properties":
            out[k] = {p: _to_v2(s) for p, s in v.items()}
        elif k in ("items", "additionalProperties", "allOf"):
            out[k] = _to_v2(v)
        else:
            out[k] = v
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings and messages)."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _s(num: int, text: str) -> bytes:
    return _field(num, text.encode())


def _pb_any(num: int, name: str, value: Any) -> bytes:
    # NamedAny {name = 1; value = 2 (Any {yaml = 2})}; JSON is YAML
    return _field(num, _s(1, name) + _field(2, _s(2, json.dumps(value, sort_keys=True))))


def _pb_schema(s: dict) -> bytes:
    """openapi.v2.Schema (gnostic's OpenAPIv2.proto field numbers) with what kubectl's
    validation and patch code read: $ref, format, description, required, additionalProperties,
    type, items, allOf, properties and the x- extensions."""
    b = bytearray()
    if "$ref" in s:
        b += _s(1, s["$ref"])
    if isinstance(s.get("format"), str):
        b += _s(2, s["format"])
    if isinstance(s.get("description"), str):
        b += _s(4, s["description"])
    for r in s.get("required") or []:
        b += _s(19, r)
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        b += _field(21, _field(1, _pb_schema(ap)))
    t = s.get("type")
    if isinstance(t, str):
        b += _field(22, _s(1, t))
    if isinstance(s.get("items"), dict):
        b += _field(23, _field(1, _pb_schema(s["items"])))
    for a in s.get("allOf") or []:
        b += _field(24, _pb_schema(a))
    if isinstance(s.get("properties"), dict):
        b += _field(25, b"".join(_field(1, _s(1, n) + _field(2, _pb_schema(p)))
                                 for n, p in s["properties"].items()))
    for k, v in s.items():
        if k.startswith("x-"):
            b += _pb_any(31, k, v)
    return bytes(b)


@functools.lru_cache(maxsize=1)
def swagger_v2() -> tuple[bytes, bytes, str]:
    """(JSON, protobuf, hash) of a Swagger 2.0 document with the definitions of every
    group-version. kubectl downloads it (in protobuf) when it validates on the client side:
    for a ``kind: List`` manifest, whose GVK no PATCH operation carries."""
    defs: dict[str, dict] = {}
    for body, _ in _documents().values():
        for name, schema in json.loads(body)["components"]["schemas"].items():
            defs.setdefault(name, _to_v2(schema))
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0-skiff"}, "paths": {},
           "definitions": dict(sorted(defs.items()))}
    js = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    pb = (_s(1, "2.0") + _field(2, _s(1, "Kubernetes") + _s(2, "v1.32.0-skiff")) + _field(8, b"")
          + _field(9, b"".join(_field(1, _s(1, n) + _field(2, _pb_schema(s))) for n, s in doc["definitions"].items())))
    return js, pb, _hash(js)
