"""Validation of API objects against the JSON Schemas in ``schemas/`` plus the rules a
schema cannot express (DNS-1123 names, uniqueness, fields skiff does not implement).

``validate(obj)`` returns a list of :class:`Warning` (fields accepted but not implemented by
skiff, for the ``Warning`` response header) or raises :class:`ValidationError`, whose
``causes`` are Kubernetes ``StatusCause`` dicts: ``{"field": "spec.containers[0].image",
"reason": "FieldValueRequired", "message": "Required value"}``.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from skiff.errors import SkiffError

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    schema_file: str
    name_rule: str  # "subdomain", "label" or "dns1035" (a DNS-1035 label: Services)


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in [
        Kind("v1", "Namespace", "namespaces", False, "core.v1.Namespace.json", "label"),
        Kind("v1", "Pod", "pods", True, "core.v1.Pod.json", "subdomain"),
        Kind("v1", "Node", "nodes", False, "core.v1.Node.json", "subdomain"),
        Kind("v1", "Event", "events", True, "core.v1.Event.json", "subdomain"),
        Kind("coordination.k8s.io/v1", "Lease", "leases", True, "coordination.k8s.io.v1.Lease.json", "subdomain"),
        Kind("v1", "ConfigMap", "configmaps", True, "core.v1.ConfigMap.json", "subdomain"),
        Kind("v1", "Secret", "secrets", True, "core.v1.Secret.json", "subdomain"),
        Kind("v1", "ServiceAccount", "serviceaccounts", True, "core.v1.ServiceAccount.json", "subdomain"),
        Kind("v1", "LimitRange", "limitranges", True, "core.v1.LimitRange.json", "subdomain"),
        Kind("v1", "ResourceQuota", "resourcequotas", True, "core.v1.ResourceQuota.json", "subdomain"),
        Kind("v1", "Service", "services", True, "core.v1.Service.json", "dns1035"),
        Kind("v1", "Endpoints", "endpoints", True, "core.v1.Endpoints.json", "subdomain"),
        Kind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", True, "discovery.k8s.io.v1.EndpointSlice.json",
             "subdomain"),
        Kind("apps/v1", "Deployment", "deployments", True, "apps.v1.Deployment.json", "subdomain"),
        Kind("apps/v1", "ReplicaSet", "replicasets", True, "apps.v1.ReplicaSet.json", "subdomain"),
        Kind("v1", "ReplicationController", "replicationcontrollers", True, "core.v1.ReplicationController.json",
             "subdomain"),
        Kind("apps/v1", "DaemonSet", "daemonsets", True, "apps.v1.DaemonSet.json", "subdomain"),
        Kind("apps/v1", "StatefulSet", "statefulsets", True, "apps.v1.StatefulSet.json", "label"),
        Kind("apps/v1", "ControllerRevision", "controllerrevisions", True, "apps.v1.ControllerRevision.json",
             "subdomain"),
        Kind("batch/v1", "Job", "jobs", True, "batch.v1.Job.json", "subdomain"),
        Kind("batch/v1", "CronJob", "cronjobs", True, "batch.v1.CronJob.json", "subdomain"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "policy.v1.PodDisruptionBudget.json",
             "subdomain"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True,
             "networking.k8s.io.v1.NetworkPolicy.json", "subdomain"),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses", True, "networking.k8s.io.v1.Ingress.json", "subdomain"),
        Kind("networking.k8s.io/v1", "IngressClass", "ingressclasses", False,
             "networking.k8s.io.v1.IngressClass.json", "subdomain"),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             "autoscaling.v2.HorizontalPodAutoscaler.json", "subdomain"),
        Kind("v1", "PersistentVolume", "persistentvolumes", False, "core.v1.PersistentVolume.json", "subdomain"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "core.v1.PersistentVolumeClaim.json",
             "subdomain"),
        Kind("storage.k8s.io/v1", "StorageClass", "storageclasses", False, "storage.k8s.io.v1.StorageClass.json",
             "subdomain"),
        Kind("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False,
             "scheduling.k8s.io.v1.PriorityClass.json", "subdomain"),
        *(Kind("rbac.authorization.k8s.io/v1", k, k.lower() + "s", k in ("Role", "RoleBinding"),
               f"rbac.authorization.k8s.io.v1.{k}.json", "path")
          for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")),     # skiff.api.validation_rbac
    ]
}


def kind_of(obj: dict) -> Kind | None:
    """The :class:`Kind` for ``obj``'s apiVersion and kind, or None."""
    if not isinstance(obj, dict):
        return None
    return KINDS.get((obj.get("apiVersion"), obj.get("kind")))


class Warning(str):  # noqa: A001 - the name the API uses; it is a str, usable as a header value
    """A field accepted but not implemented by skiff. ``str(w)`` is the message."""

    field: str

    def __new__(cls, field: str, message: str):
        self = super().__new__(cls, message)
        self.field = field
        return self


class ValidationError(SkiffError):
    """An object is invalid; ``causes`` lists every problem with its JSON path."""

    def __init__(self, causes: list[dict], kind: str = "", name: str = ""):
        self.causes = causes
        self.kind = kind
        self.name = name
        k = next((k for k in KINDS.values() if k.kind == kind), None)
        qkind = f"{kind}.{k.api_version.split('/')[0]}" if k is not None and "/" in k.api_version else kind
        what = f'{qkind} "{name}" is invalid' if kind else "invalid object"
        super().__init__(what + ": " + "; ".join(f"{c['field']}: {c['message']}" if c["field"] else c["message"]
                                                 for c in causes))

    def to_status(self) -> dict:
        """The Kubernetes ``Status`` object for a 422 response."""
        k = next((k for k in KINDS.values() if k.kind == self.kind), None)
        return {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": str(self), "reason": "Invalid", "code": 422,
            # details.kind is the Kind for Invalid (kubectl prints `The Pod "x" is invalid` from it)
            "details": {"name": self.name, "kind": self.kind, "causes": self.causes,
                        **({"group": k.api_version.split("/")[0]} if k is not None and "/" in k.api_version
                           else {})},
        }


# ---------------------------------------------------------------- fieldValidation

FIELD_VALIDATION = ("Ignore", "Strict", "Warn")


class StrictDecodingError(ValidationError):
    """Unknown (or duplicate) fields under ``fieldValidation=Strict``: a 400 BadRequest, as the
    kube-apiserver answers when its strict decoder refuses the body (before any validation)."""

    def __init__(self, kind: str, api_version: str, name: str, unknown: list[str] = (),
                 duplicate: list[str] = ()):
        self.unknown, self.duplicate = list(unknown), list(duplicate)
        self.version = api_version.rpartition("/")[2]
        problems = [f'duplicate field "{f}"' for f in duplicate] + [f'unknown field "{f}"' for f in unknown]
        self.detail = ", ".join(problems)
        super().__init__([_cause(f, INVALID, p) for f, p in zip(list(duplicate) + list(unknown), problems)],
                         kind, name)

    def __str__(self) -> str:
        return (f'{self.kind} in version "{self.version}" cannot be handled as a {self.kind}: '
                f"strict decoding error: {self.detail}")

    def to_status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": str(self), "reason": "BadRequest", "code": 400}


def _unknown_fields(errors: list, field_validation: str | None) -> tuple[list, list[tuple[dict, str, str]]]:
    """Split the schema errors: (the others, [(mapping, key, field path)] of unknown fields).
    Without a ``field_validation`` (skiffctl's local check, in-process callers) unknown fields
    stay ordinary errors (causes)."""
    if field_validation is None:
        return errors, []
    rest, unknown = [], []
    for err in errors:
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = set(err.schema.get("properties", {}))
            path = list(err.absolute_path)
            unknown += [(err.instance, k, json_path(path + [k])) for k in err.instance if k not in known]
        else:
            rest.append(err)
    return rest, unknown


# ---------------------------------------------------------------- schemas

def schemas_dir() -> Path:
    """Where the schemas are: $SKIFF_SCHEMAS, the source tree's schemas/, or the
    wheel's data files (sys.prefix/share/skiff/schemas)."""
    candidates = []
    if os.environ.get("SKIFF_SCHEMAS"):
        candidates.append(Path(os.environ["SKIFF_SCHEMAS"]))
    candidates.append(Path(__file__).resolve().parent.parent.parent / "schemas")
    candidates.append(Path(sys.prefix) / "share" / "skiff" / "schemas")
    candidates.append(Path(sys.base_prefix) / "share" / "skiff" / "schemas")
    for c in candidates:
        if (c / "common.json").is_file():
            return c
    raise SkiffError("skiff's API schemas were not found (looked in " + ", ".join(map(str, candidates)) + ")")


@functools.lru_cache(maxsize=None)
def _load_schemas() -> dict[str, dict]:
    d = schemas_dir()
    return {p.name: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples", "default"})


def inline_refs(schemas: dict[str, dict], file: str) -> dict:
    """``schemas[file]`` with every ``$ref`` replaced by what it points at (deep), so the
    validator never resolves a reference while it runs (the resolution was ~2/3 of the time
    of a validation). A reference that leads back into itself is left as it is."""
    def resolve(ref: str, here: str) -> tuple[str, str, dict]:
        target, _, pointer = ref.partition("#")
        target = target.rsplit("/", 1)[-1] or here
        node: object = schemas[target]
        for part in [p for p in pointer.split("/") if p]:
            node = node[part.replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
        return target, pointer, node  # type: ignore[return-value]

    def walk(node, here: str, stack: tuple) -> object:
        if isinstance(node, list):
            return [walk(x, here, stack) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            target, pointer, sub = resolve(ref, here)
            key = (target, pointer)
            if key not in stack:
                body = walk(sub, target, stack + (key,))
                rest = {k: walk(v, here, stack) for k, v in node.items()
                        if k != "$ref" and k not in _ANNOTATIONS}
                if not rest:
                    return body
                return {**rest, "allOf": [body, *rest.get("allOf", [])]}
        return {k: (v if k in ("$defs", "definitions") else walk(v, here, stack)) for k, v in node.items()}

    out = walk(schemas[file], file, ())
    return out  # type: ignore[return-value]


@functools.lru_cache(maxsize=None)
def _validator(schema_file: str):
    schemas = _load_schemas()
    schema = inline_refs(schemas, schema_file)
    import jsonschema  # only to explain an invalid object: ~6.5 MB and 30 ms of imports
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource  # jsonschema >= 4.18
        registry = Registry().with_resources(
            (s["$id"], Resource.from_contents(s)) for s in schemas.values())
        return cls(schema, registry=registry)
    except ImportError:  # jsonschema 4.17
        store = {s["$id"]: s for s in schemas.values()}
        return cls(schema, resolver=jsonschema.RefResolver.from_schema(schema, store=store))


@functools.lru_cache(maxsize=None)
def _fast(schema_file: str):
    """The compiled valid-or-not check for ``schema_file`` (skiff.api.schemacheck), or None
    when the schema uses something it does not implement (then jsonschema alone decides)."""
    from skiff.api.schemacheck import compile_schema
    try:
        return compile_schema(inline_refs(_load_schemas(), schema_file))
    except Exception:  # noqa: BLE001 - any failure: fall back to jsonschema
        return None


def schema_for(obj: dict) -> dict:
    k = kind_of(obj)
    if k is None:
        raise KeyError((obj.get("apiVersion"), obj.get("kind")))
    return _load_schemas()[k.schema_file]


# ---------------------------------------------------------------- paths

def json_path(parts: Iterable[Any]) -> str:
    """Kubernetes field path: ["spec", "containers", 0, "image"] -> spec.containers[0].image"""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(p)):
            out += ("." if out else "") + str(p)
        else:
            out += f"[{json.dumps(str(p))}]"  # map keys such as labels["app.kubernetes.io/name"]
    return out


def _cause(field, reason, message):
    return {"field": field, "reason": reason, "message": message}


def _short(v) -> str:
    s = json.dumps(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _schema_causes(err: "jsonschema.ValidationError") -> list[dict]:  # noqa: F821
    path = list(err.absolute_path)
    v = err.validator
    if v in ("oneOf", "anyOf") and err.context:
        # report the most specific sub-error (for oneOf/anyOf of types)
        from jsonschema.exceptions import best_match
        best = best_match(err.context)
        if best is not None and best.validator not in ("type", "pattern"):
            return _schema_causes(best)
    if v == "required":
        missing = [r for r in err.validator_value if r not in err.instance]
        return [_cause(json_path(path + [m]), REQUIRED, "Required value") for m in missing]
    if v == "additionalProperties":
        known = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        return [_cause(json_path(path + [k]), INVALID, f'unknown field "{json_path(path + [k])}"') for k in extra]
    field = json_path(path)
    if v in ("enum", "const"):
        allowed = err.validator_value if v == "enum" else [err.validator_value]
        return [_cause(field, NOT_SUPPORTED, f"Unsupported value: {_short(err.instance)}: supported values: "
                       + ", ".join(json.dumps(a) for a in allowed))]
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return [_cause(field, INVALID, f"Invalid value: {_short(err.instance)}: must be of type {want}")]
    if v in ("oneOf", "anyOf") and "Ki|Mi" in json.dumps(err.schema):
        return [_cause(field, INVALID, f"Invalid value: {_short(err.instance)}: must be a quantity such as 500m or 64Mi")]
    if v == "minItems" and err.validator_value == 1:
        return [_cause(field, REQUIRED, "Required value")]
    if v == "maxProperties" and path and "volumes" in path:
        return [_cause(field, INVALID, "may not specify more than 1 volume type")]
    if v == "pattern":
        return [_cause(field, INVALID, f"Invalid value: {_short(err.instance)}: must match {err.validator_value}")]
    return [_cause(field, INVALID, f"Invalid value: {_short(err.instance)}: {err.message}")]


# ---------------------------------------------------------------- names

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def dns1123_label_error(v: str) -> str | None:
    if len(v) > 63:
        return "must be no more than 63 characters"
    if not DNS1123_LABEL.match(v):
        return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')")
    return None


DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def dns1035_label_error(v: str) -> str | None:
    """A DNS-1035 label (what Service names must be): starts with a letter."""
    if len(v) > 63:
        return "must be no more than 63 characters"
    if not DNS1035_LABEL.match(v):
        return ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    return None


def dns1123_subdomain_error(v: str) -> str | None:
    if len(v) > 253:
        return "must be no more than 253 characters"
    if not DNS1123_SUBDOMAIN.match(v):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com')")
    return None


def _qualified_name_error(k: str) -> str | None:
    prefix, slash, name = k.rpartition("/")
    if slash and (not prefix or dns1123_subdomain_error(prefix)):
        return "prefix part must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', at most 63 characters, "
                "and must start and end with an alphanumeric character")
    return None


def _invalid(field, value, why):
    return _cause(field, INVALID, f"Invalid value: {_short(value)}: {why}")


def _check_meta(obj: dict, kind: Kind) -> list[dict]:
    causes = []
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    check = {"label": dns1123_label_error, "dns1035": dns1035_label_error}.get(kind.name_rule,
                                                                               dns1123_subdomain_error)
    if kind.name_rule == "path":    # RBAC's names are path segments
        from skiff.api.validation_rbac import path_segment_error as check
    if not name and not meta.get("generateName"):
        causes.append(_cause("metadata.name", REQUIRED, "name or generateName is required"))
    elif isinstance(name, str) and name and (why := check(name)):
        causes.append(_invalid("metadata.name", name, why))
    gen = meta.get("generateName")
    if isinstance(gen, str) and gen and not name and (why := check(gen + "x")):
        causes.append(_invalid("metadata.generateName", gen, why))
    ns = meta.get("namespace")
    if isinstance(ns, str) and ns:
        if not kind.namespaced:
            causes.append(_cause("metadata.namespace", INVALID, f"Forbidden: not allowed on this type ({kind.kind} is cluster-scoped)"))
        elif why := dns1123_label_error(ns):
            causes.append(_invalid("metadata.namespace", ns, why))
    for k, v in (meta.get("labels") or {}).items():
        if isinstance(k, str) and (why := _qualified_name_error(k)):
            causes.append(_invalid(json_path(["metadata", "labels", k]), k, why))
        if isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v)):
            causes.append(_invalid(json_path(["metadata", "labels", k]), v,
                                   "a valid label must be an empty string or consist of alphanumeric characters, "
                                   "'-', '_' or '.', at most 63, starting and ending with an alphanumeric character"))
    for k in (meta.get("annotations") or {}):
        if isinstance(k, str) and (why := _qualified_name_error(k)):
            causes.append(_invalid(json_path(["metadata", "annotations", k]), k, why))
    return causes


# ---------------------------------------------------------------- unsupported fields

# Fields Kubernetes knows and skiff does not implement. WARN: accepted, stored, ignored,
# reported as a Warning. REJECT: ignoring them would be unsafe or misleading, so the
# object is refused with FieldValueNotSupported. Paths use [*] for "every element";
# the predicate decides whether a present value triggers the rule (default: any value).
WARN = "warn"
REJECT = "reject"

_set = lambda v: v is not None  # noqa: E731
_true = lambda v: v is True  # noqa: E731
_nonempty = lambda v: bool(v)  # noqa: E731

UNSUPPORTED_POD_FIELDS: list[tuple[str, str, Any]] = [
    ("spec.runtimeClassName", WARN, _set),
    ("spec.setHostnameAsFQDN", WARN, _true),
    ("spec.overhead", WARN, _set),
    ("spec.os.name", REJECT, lambda v: v != "linux"),   # skiff's nodes are Linux
    ("spec.resources", WARN, _set),
    ("spec.securityContext.seLinuxOptions", WARN, _set),
    ("spec.securityContext.seccompProfile", WARN, lambda v: isinstance(v, dict) and v.get("type") == "Localhost"),
    ("spec.securityContext.appArmorProfile", WARN, _set),
    ("spec.hostUsers", REJECT, lambda v: v is False),
    ("spec.resourceClaims", REJECT, _nonempty),
]
for _c in ("containers", "initContainers"):
    UNSUPPORTED_POD_FIELDS += [
        (f"spec.{_c}[*].resizePolicy", WARN, _nonempty),
        (f"spec.{_c}[*].volumeMounts[*].mountPropagation", WARN, lambda v: v not in (None, "None")),
        (f"spec.{_c}[*].securityContext.seLinuxOptions", WARN, _set),
        (f"spec.{_c}[*].securityContext.seccompProfile", WARN,
         lambda v: isinstance(v, dict) and v.get("type") == "Localhost"),
        (f"spec.{_c}[*].securityContext.appArmorProfile", WARN, _set),
        (f"spec.{_c}[*].securityContext.procMount", WARN, lambda v: v not in (None, "Default")),
        (f"spec.{_c}[*].volumeDevices", REJECT, _nonempty),
        (f"spec.{_c}[*].resources.claims", REJECT, _nonempty),
    ]
# Warnings that say more than "accepted but not supported", by rule path
WARN_MESSAGES: dict[str, str] = {
    **{f"spec.{where}securityContext.seccompProfile": "type Localhost is not supported by skiff: the "
       "container runs with the runtime's default profile (RuntimeDefault)"
       for where in ("", "containers[*].", "initContainers[*].")},
}
# Volume types skiff can mount; every other Kubernetes volume type is rejected.
SUPPORTED_VOLUME_TYPES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected",
                          "persistentVolumeClaim")


def rule_trie(rules: list) -> dict:
    """Rules (path, REJECT|WARN, predicate on the value) as a tree of their paths,
    (name, star) -> (children, [(rule index, action, pred)]): one walk of the object then
    serves every rule (a pod has 60; walking each path on its own was 2% of the API server's
    CPU on pod creates)."""
    root: dict = {}
    for idx, (path, action, pred) in enumerate(rules):
        node, parts = root, path.split(".")
        for j, head in enumerate(parts):
            key = (head[:-3], True) if head.endswith("[*]") else (head, False)
            entry = node.get(key)
            if entry is None:
                entry = node[key] = ({}, [])
            if j == len(parts) - 1:
                entry[1].append((idx, action, pred))
            node = entry[0]
    return root


POD_RULES = rule_trie(UNSUPPORTED_POD_FIELDS)


def _rule_hits(obj: Any, node: dict, prefix: list, hits: list) -> None:
    if not isinstance(obj, dict):
        return
    for (name, star), (children, terms) in node.items():
        if name not in obj:
            continue
        val = obj[name]
        if star:
            if isinstance(val, list):
                for i, item in enumerate(val):
                    p = prefix + [name, i]
                    for t in terms:
                        hits.append((t, p, item))
                    if children:
                        _rule_hits(item, children, p, hits)
        else:
            p = prefix + [name]
            for t in terms:
                hits.append((t, p, val))
            if children:
                _rule_hits(val, children, p, hits)


def _unsupported(obj: dict, trie: dict) -> tuple[list[dict], list[Warning]]:
    """Causes and warnings of the fields the rules of ``trie`` (:func:`rule_trie`) name, in
    the rules' order, and within a rule in the object's."""
    causes, warnings = [], []
    hits: list = []
    _rule_hits(obj, trie, [], hits)
    hits.sort(key=lambda h: h[0][0])      # stable: a rule's own hits keep the walk's order
    for (_idx, action, pred), parts, value in hits:
        if not pred(value):
            continue
        field = json_path(parts)
        if action == REJECT:
            causes.append(_cause(field, NOT_SUPPORTED, f"{field} is not supported by skiff"))
        else:
            why = WARN_MESSAGES.get(rule_path(parts), "is accepted but not supported by skiff")
            warnings.append(Warning(field, f"{field} {why}"))
    return causes, warnings


def rule_path(parts: list) -> str:
    """A field's path as the rules spell it ("spec.containers[*].x" for spec.containers[0].x)."""
    return "".join(("[*]" if isinstance(p, int) else ("." if i else "") + str(p)) for i, p in enumerate(parts))


# ---------------------------------------------------------------- pod rules

# fieldPaths a downwardAPI volume may hold (env takes status.podIP and the like as well)
DOWNWARD_VOLUME_FIELDS = ("metadata.annotations", "metadata.labels", "metadata.name",
                          "metadata.namespace", "metadata.uid")
_MAP_FIELD_PATH = re.compile(r"^metadata\.(labels|annotations)\['.+'\]$")
PROJECTION_TYPES = ("configMap", "secret", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")


def _check_path(path: Any, field: str) -> list[dict]:
    """A file path inside a volume (Kubernetes' validateLocalNonReservedPath)."""
    if not isinstance(path, str):
        return []
    if not path:
        return [_cause(field, REQUIRED, "Required value")]
    if path.startswith("/"):
        return [_invalid(field, path, "must be a relative path")]
    if ".." in path.split("/"):
        return [_invalid(field, path, "must not contain '..'")]
    if path.startswith(".."):
        return [_invalid(field, path, "must not start with '..'")]
    return []


def _check_downward_items(items: Any, f: str, paths: set) -> list[dict]:
    causes: list[dict] = []
    for i, it in enumerate(items if isinstance(items, list) else []):
        fi = f"{f}.items[{i}]"
        if not isinstance(it, dict):
            continue
        causes += _check_path(it.get("path"), f"{fi}.path")
        if it.get("path") in paths:
            causes.append(_invalid(f"{fi}.path", it.get("path"), "conflicting duplicate paths"))
        paths.add(it.get("path"))
        fr, rr = it.get("fieldRef"), it.get("resourceFieldRef")
        if fr is not None and rr is not None:
            causes.append(_cause(fi, INVALID, "Invalid value: fieldRef and resourceFieldRef can not be specified simultaneously"))
        elif fr is None and rr is None:
            causes.append(_cause(fi, REQUIRED, "Required value: one of fieldRef and resourceFieldRef is required"))
        if isinstance(fr, dict) and isinstance(fr.get("fieldPath"), str):
            fp = fr["fieldPath"]
            if fp not in DOWNWARD_VOLUME_FIELDS and not _MAP_FIELD_PATH.match(fp):
                causes.append(_cause(f"{fi}.fieldRef.fieldPath", NOT_SUPPORTED,
                                     f"Unsupported value: {json.dumps(fp)}: supported values: "
                                     + ", ".join(f'"{x}"' for x in DOWNWARD_VOLUME_FIELDS)))
        if isinstance(rr, dict):
            if not rr.get("containerName"):
                causes.append(_cause(f"{fi}.resourceFieldRef.containerName", REQUIRED, "Required value"))
            causes += _resource_field_ref(rr, f"{fi}.resourceFieldRef")
    return causes


def _check_key_items(items: Any, f: str, paths: set) -> list[dict]:
    causes: list[dict] = []
    for i, it in enumerate(items if isinstance(items, list) else []):
        if isinstance(it, dict):
            causes += _check_path(it.get("path"), f"{f}.items[{i}].path")
            if it.get("path") in paths:
                causes.append(_invalid(f"{f}.items[{i}].path", it.get("path"), "conflicting duplicate paths"))
            paths.add(it.get("path"))
    return causes


# what an ephemeral container may not have (validateEphemeralContainers)
_NOT_EPHEMERAL = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "ports", "resources",
                  "resizePolicy", "restartPolicy")


def _check_ephemeral(spec: dict, c: dict, f: str) -> list[dict]:
    causes = [_cause(f"{f}.{k}", FORBIDDEN, "Forbidden: cannot be set for an Ephemeral Container")
              for k in _NOT_EPHEMERAL if c.get(k) not in (None, {}, [])]
    for j, m in enumerate(c.get("volumeMounts") or ()):
        if isinstance(m, dict) and m.get("subPath"):
            causes.append(_cause(f"{f}.volumeMounts[{j}].subPath", FORBIDDEN,
                                 "Forbidden: cannot be set for an Ephemeral Container"))
    target = c.get("targetContainerName")
    if target is not None and target not in {x.get("name") for g in ("initContainers", "containers")
                                             for x in spec.get(g) or () if isinstance(x, dict)}:
        causes.append(_cause(f"{f}.targetContainerName", "FieldValueNotFound", f"Not found: {_short(target)}"))
    return causes


def ephemeral_containers_update(cur: dict, new: dict) -> list[dict]:
    """ValidatePodEphemeralContainersUpdate: ephemeral containers may be added, never changed or removed."""
    old = {c.get("name"): c for c in (cur.get("spec") or {}).get("ephemeralContainers") or () if isinstance(c, dict)}
    now = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or () if isinstance(c, dict)}
    causes = []
    for name, c in old.items():
        if name not in now:
            causes.append(_cause("spec.ephemeralContainers", FORBIDDEN,
                                 f'Forbidden: existing ephemeral containers "{name}" may not be removed'))
        elif now[name] != c:
            causes.append(_cause("spec.ephemeralContainers", FORBIDDEN,
                                 f'Forbidden: existing ephemeral containers "{name}" may not be changed'))
    return causes


def _check_restart_policy(group: str, c: dict, f: str) -> list[dict]:
    """A container's restartPolicy: only "Always", only on init containers (sidecars); an
    init container without it may not have probes or lifecycle hooks (it runs to completion)."""
    rp = c.get("restartPolicy")
    if group == "containers":
        return [] if rp is None else [_cause(f"{f}.restartPolicy", FORBIDDEN,
                                             "Forbidden: may not be set for non-init containers")]
    if rp is not None and rp != "Always":
        return [_cause(f"{f}.restartPolicy", NOT_SUPPORTED,
                       f'Unsupported value: {json.dumps(rp)}: supported values: "Always"')]
    if rp == "Always":
        return []
    return [_cause(f"{f}.{k}", FORBIDDEN, "Forbidden: may not be set for init containers without restartPolicy=Always")
            for k in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe") if c.get(k) is not None]


def _check_file_volume(kind: str, src: dict, f: str) -> list[dict]:
    """The items of configMap, secret, downwardAPI and projected volumes."""
    if kind in ("configMap", "secret"):
        return _check_key_items(src.get("items"), f, set())
    if kind == "downwardAPI":
        return _check_downward_items(src.get("items"), f, set())
    if kind != "projected":
        return []
    causes: list[dict] = []
    paths: set = set()
    for j, s in enumerate(src.get("sources") or []):
        fs = f"{f}.sources[{j}]"
        if not isinstance(s, dict):
            continue
        given = [t for t in PROJECTION_TYPES if s.get(t) is not None]
        if len(given) > 1:
            causes.append(_cause(fs, FORBIDDEN, "Forbidden: may not specify more than 1 volume type per source"))
        elif not given:
            causes.append(_cause(fs, REQUIRED, "Required value: must specify exactly one volume type per source"))
        for t in given:
            if t == "clusterTrustBundle":
                causes.append(_cause(f"{fs}.{t}", NOT_SUPPORTED, f"{fs}.{t} is not supported by skiff "
                                     "(projected sources: configMap, secret, downwardAPI, serviceAccountToken)"))
            elif t == "serviceAccountToken":
                causes += _check_token_projection(s[t], f"{fs}.{t}", paths)
            elif t == "downwardAPI":
                causes += _check_downward_items((s[t] or {}).get("items"), f"{fs}.{t}", paths)
            else:
                if not (s[t] or {}).get("name"):
                    causes.append(_cause(f"{fs}.{t}.name", REQUIRED, "Required value"))
                causes += _check_key_items((s[t] or {}).get("items"), f"{fs}.{t}", paths)
    return causes


def _check_token_projection(src: Any, f: str, paths: set) -> list[dict]:
    """A projected serviceAccountToken: a file path, and a lifetime of 10 minutes to 2^32 s."""
    if not isinstance(src, dict):
        return []
    causes: list[dict] = []
    exp = src.get("expirationSeconds")
    if isinstance(exp, int) and not isinstance(exp, bool):
        if exp < 600:
            causes.append(_invalid(f"{f}.expirationSeconds", exp, "may not specify a duration less than 10 minutes"))
        elif exp > 2 ** 32:
            causes.append(_invalid(f"{f}.expirationSeconds", exp, "may not specify a duration larger than 2^32 seconds"))
    path = src.get("path")
    causes += _check_path("" if path is None else path, f"{f}.path")
    if path in paths:
        causes.append(_invalid(f"{f}.path", path, "conflicting duplicate paths"))
    paths.add(path)
    return causes


def _check_scheduling_gates(spec: dict) -> list[dict]:
    """validateSchedulingGates: qualified names, each once; and no nodeName while gated."""
    causes = []
    gates = spec.get("schedulingGates")
    names = set()
    for i, g in enumerate(gates if isinstance(gates, list) else ()):
        n = g.get("name") if isinstance(g, dict) else None
        if not isinstance(n, str):
            continue
        f = f"spec.schedulingGates[{i}].name"
        if why := _qualified_name_error(n):
            causes.append(_invalid(f, n, why))
        elif n in names:
            causes.append(_cause(f, "FieldValueDuplicate", f'Duplicate value: "{n}"'))
        names.add(n)
    if gates and spec.get("nodeName"):
        causes.append(_cause("spec.nodeName", FORBIDDEN,
                             "Forbidden: cannot be set until all schedulingGates have been cleared"))
    return causes


def check_scheduling_gates_update(cur: dict, new: dict) -> list[dict]:
    """validateOnlyDeletedSchedulingGates: a pod's scheduling gates may be removed, never added."""
    old = {g.get("name") for g in ((cur.get("spec") or {}).get("schedulingGates") or ()) if isinstance(g, dict)}
    causes = []
    for i, g in enumerate((new.get("spec") or {}).get("schedulingGates") or ()):
        n = g.get("name") if isinstance(g, dict) else None
        if n not in old:
            causes.append(_cause(f"spec.schedulingGates[{i}].name", FORBIDDEN,
                                 f"Forbidden: only deletion is allowed, but found new scheduling gate '{n}'"))
    return causes


def _check_pod(obj: dict) -> list[dict]:
    from skiff.api.validation_limits import check_container_resources
    spec = obj.get("spec") or {}
    causes = _check_scheduling_gates(spec) + check_container_resources(spec)
    vols = spec.get("volumes") or []
    vol_names = set()
    for i, v in enumerate(vols):
        f = f"spec.volumes[{i}]"
        n = v.get("name")
        if isinstance(n, str):
            if why := dns1123_label_error(n):
                causes.append(_invalid(f + ".name", n, why))
            elif n in vol_names:
                causes.append(_cause(f + ".name", INVALID, f'Duplicate value: "{n}"'))
            vol_names.add(n)
        types = [k for k in v if k != "name"]
        if not types:
            causes.append(_cause(f, REQUIRED, "must specify a volume type"))
        for t in types:
            if t not in SUPPORTED_VOLUME_TYPES:
                causes.append(_cause(f"{f}.{t}", NOT_SUPPORTED,
                                     f"{f}.{t} is not supported by skiff (volume types: {', '.join(SUPPORTED_VOLUME_TYPES)})"))
            elif isinstance(v.get(t), dict):
                causes += _check_file_volume(t, v[t], f"{f}.{t}")
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        causes.append(_invalid("spec.securityContext.shareProcessNamespace", True,
                               "ShareProcessNamespace and HostPID cannot both be enabled"))
    seen, host_ports = set(), set()
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(group) or []):
            f = f"spec.{group}[{i}]"
            if group == "ephemeralContainers":
                causes += _check_ephemeral(spec, c, f)
            n = c.get("name")
            if isinstance(n, str):
                if why := dns1123_label_error(n):
                    causes.append(_invalid(f + ".name", n, why))
                elif n in seen:
                    causes.append(_cause(f + ".name", INVALID, f'Duplicate value: "{n}"'))
                seen.add(n)
            if not c.get("image"):
                causes.append(_cause(f + ".image", REQUIRED, "Required value"))
            sc = c.get("securityContext")
            if isinstance(sc, dict) and sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
                causes.append(_invalid(f + ".securityContext", sc,
                                       "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
            if group != "ephemeralContainers":
                causes += _check_restart_policy(group, c, f)
            port_names = set()
            for j, p in enumerate(c.get("ports") or []):
                pn = p.get("name")
                if isinstance(pn, str):
                    if len(pn) > 15 or not IANA_SVC_NAME.match(pn) or "--" in pn or not re.search("[a-z]", pn):
                        causes.append(_invalid(f"{f}.ports[{j}].name", pn,
                                               "must be no more than 15 characters, lower case alphanumerics and '-', "
                                               "with at least one letter"))
                    elif pn in port_names:
                        causes.append(_cause(f"{f}.ports[{j}].name", INVALID, f'Duplicate value: "{pn}"'))
                    port_names.add(pn)
                hp = p.get("hostPort")
                if spec.get("hostNetwork") is True and hp is not None and hp != p.get("containerPort"):
                    causes.append(_invalid(f"{f}.ports[{j}].hostPort", hp,
                                           "must match `containerPort` when `hostNetwork` is true"))
                if isinstance(hp, int):
                    key = (hp, p.get("protocol", "TCP"), p.get("hostIP", ""))
                    if key in host_ports:
                        causes.append(_cause(f"{f}.ports[{j}].hostPort", INVALID, f'Duplicate value: "{hp}/{key[1]}"'))
                    host_ports.add(key)
            for j, m in enumerate(c.get("volumeMounts") or []):
                mn = m.get("name")
                if isinstance(mn, str) and mn not in vol_names:
                    causes.append(_cause(f"{f}.volumeMounts[{j}].name", INVALID, f'Not found: "{mn}"'))
                if m.get("subPath") and m.get("subPathExpr"):
                    causes.append(_invalid(f"{f}.volumeMounts[{j}].subPathExpr", m["subPathExpr"],
                                           "subPathExpr and subPath are mutually exclusive"))
                for key in ("subPath", "subPathExpr"):
                    if isinstance(m.get(key), str):
                        causes += _check_path(m[key], f"{f}.volumeMounts[{j}].{key}") if m[key] else []
            for j, e in enumerate(c.get("env") or []):
                vf = e.get("valueFrom")
                if isinstance(vf, dict):
                    if "value" in e and e.get("value"):
                        causes.append(_cause(f"{f}.env[{j}].valueFrom", INVALID,
                                             "Invalid value: may not be specified when `value` is not empty"))
                    if len(vf) != 1:
                        causes.append(_cause(f"{f}.env[{j}].valueFrom", INVALID,
                                             "Invalid value: must specify exactly one of fieldRef, resourceFieldRef, "
                                             "configMapKeyRef or secretKeyRef"))
                    rf = vf.get("resourceFieldRef")
                    if isinstance(rf, dict):
                        causes += _resource_field_ref(rf, f"{f}.env[{j}].valueFrom.resourceFieldRef")
            for hook in ("postStart", "preStop"):
                h = (c.get("lifecycle") or {}).get(hook) if isinstance(c.get("lifecycle"), dict) else None
                if isinstance(h, dict):
                    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "sleep") if h.get(k) is not None]
                    if len(handlers) != 1:
                        causes.append(_cause(f"{f}.lifecycle.{hook}", REQUIRED if not handlers else INVALID,
                                             "must specify a handler type" if not handlers else
                                             "may not specify more than 1 handler type"))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                pr = c.get(probe)
                if isinstance(pr, dict):
                    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in pr]
                    if len(handlers) != 1:
                        causes.append(_cause(f"{f}.{probe}", REQUIRED if not handlers else INVALID,
                                             "must specify exactly one handler: exec, httpGet, tcpSocket or grpc"))
    for field in ("hostname", "subdomain"):
        v = spec.get(field)
        if isinstance(v, str) and v and (why := dns1123_label_error(v)):
            causes.append(_invalid(f"spec.{field}", v, why))
    # the ServiceAccount a pod runs as is named like one (Kubernetes' ValidateServiceAccountName)
    for field in ("serviceAccountName", "serviceAccount"):
        v = spec.get(field)
        if isinstance(v, str) and v and (why := dns1123_subdomain_error(v)):
            causes.append(_invalid(f"spec.{field}", v, why))
    for k, v in (spec.get("nodeSelector") or {}).items():
        if isinstance(k, str) and (why := _qualified_name_error(k)):
            causes.append(_invalid(json_path(["spec", "nodeSelector", k]), k, why))
    causes += _check_scheduling(spec)
    causes += _check_dns(spec)
    return causes


def _check_dns(spec: dict) -> list[dict]:
    """hostAliases and dnsConfig as Kubernetes checks them (IPs, the policy None, the limits)."""
    import ipaddress
    causes: list[dict] = []
    for i, a in enumerate(spec.get("hostAliases") or []):
        ip = a.get("ip") if isinstance(a, dict) else None
        try:
            ipaddress.ip_address(ip if isinstance(ip, str) else "")
        except ValueError:
            causes.append(_invalid(f"spec.hostAliases[{i}].ip", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    cfg = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(cfg, dict):
            return causes + [_cause("spec.dnsConfig", REQUIRED, "Required value: must provide `dnsConfig` when `dnsPolicy` is None")]
        if not cfg.get("nameservers"):
            causes.append(_cause("spec.dnsConfig.nameservers", REQUIRED,
                                 "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if not isinstance(cfg, dict):
        return causes
    servers = cfg.get("nameservers") or []
    if len(servers) > 3:
        causes.append(_invalid("spec.dnsConfig.nameservers", servers, "must not have more than 3 nameservers"))
    for i, ns in enumerate(servers):
        try:
            ipaddress.ip_address(ns if isinstance(ns, str) else "")
        except ValueError:
            causes.append(_invalid(f"spec.dnsConfig.nameservers[{i}]", ns, "must be a valid IP address"))
    if len(cfg.get("searches") or []) > 32:
        causes.append(_invalid("spec.dnsConfig.searches", cfg["searches"], "must not have more than 32 search paths"))
    for i, o in enumerate(cfg.get("options") or []):
        if isinstance(o, dict) and not o.get("name"):
            causes.append(_cause(f"spec.dnsConfig.options[{i}].name", REQUIRED, "Required value: Option.Name must not be empty"))
    return causes


_RESOURCE_FIELDS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                    "requests.cpu", "requests.ephemeral-storage", "requests.memory")
_CPU_DIVISORS = ("1m", "1")
_BYTE_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")


def _resource_field_ref(rf: dict, f: str) -> list[dict]:
    """A resourceFieldRef's resource and divisor, checked as Kubernetes does."""
    from skiff.agent.quantity import parse_quantity
    res = rf.get("resource")
    if not isinstance(res, str) or not res:
        return [_cause(f"{f}.resource", REQUIRED, "Required value: resource is required")]
    if res not in _RESOURCE_FIELDS:
        return [_cause(f"{f}.resource", NOT_SUPPORTED, f"Unsupported value: {_short(res)}: supported values: "
                       + ", ".join(f'"{r}"' for r in _RESOURCE_FIELDS))]
    div = rf.get("divisor")
    if div in (None, "", 0, "0"):
        return []
    allowed = _CPU_DIVISORS if res.endswith(".cpu") else _BYTE_DIVISORS
    try:
        ok = any(parse_quantity(div) == parse_quantity(a) for a in allowed)
    except Exception:  # noqa: BLE001 - a malformed quantity is one more unsupported value
        ok = False
    if not ok:
        return [_cause(f"{f}.divisor", NOT_SUPPORTED, f"Unsupported value: {_short(div)}: supported values: "
                       + ", ".join(f'"{a}"' for a in allowed))]
    return []


# ---------------------------------------------------------------- scheduling (affinity, topology spread)

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "integer"}
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_LABEL_VALUE_WHY = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', at most 63, starting and ending with an alphanumeric character")
_WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
_NODE_INCLUSION_POLICIES = ("Honor", "Ignore")
_REQUIRED_TERMS = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED_TERMS = "preferredDuringSchedulingIgnoredDuringExecution"


def _typed(v: Any, kind: type, field: str, causes: list) -> Any:
    """``v`` when it is None or of ``kind`` (dict, list, str or int); else None, with the cause the
    schema would give (the schema leaves affinity and topologySpreadConstraints open)."""
    if v is None or (isinstance(v, kind) and not (kind is int and isinstance(v, bool))):
        return v
    causes.append(_invalid(field, v, f"must be of type {_JSON_TYPES[kind]}"))
    return None


def _object(v: Any, field: str, causes: list) -> dict | None:
    """A list item that must be an object; null is its zero value {} (as Go decodes it)."""
    return {} if v is None else _typed(v, dict, field, causes)


def _label_name(key: Any, field: str, causes: list) -> None:
    """ValidateLabelName (also for topology keys and matchLabelKeys)."""
    if _typed(key, str, field, causes) is not None and (why := _qualified_name_error(key)):
        causes.append(_invalid(field, key, why))


def _values(e: dict, f: str, causes: list) -> list:
    vals = _typed(e.get("values"), list, f + ".values", causes) or []
    for i, v in enumerate(vals):
        _typed(v, str, f"{f}.values[{i}]", causes)
    return vals


def _selector_requirement(e: Any, f: str, causes: list, node: bool) -> None:
    """A LabelSelectorRequirement, or with ``node`` a NodeSelectorRequirement (Gt and Lt too), as
    ValidateLabelSelectorRequirement and ValidateNodeSelectorRequirement."""
    e = _object(e, f, causes)
    if e is None:
        return
    op, vals = e.get("operator") or "", _values(e, f, causes)
    if op in ("In", "NotIn"):
        if not vals:
            causes.append(_cause(f + ".values", REQUIRED,
                                 "Required value: must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if vals:
            causes.append(_cause(f + ".values", "FieldValueForbidden",
                                 "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif node and op in ("Gt", "Lt"):
        if len(vals) != 1:
            causes.append(_cause(f + ".values", REQUIRED,
                                 "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"))
        elif isinstance(vals[0], str) and not _INTEGER.match(vals[0]):
            causes.append(_invalid(f + ".values[0]", vals[0], "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        causes.append(_invalid(f + ".operator", op, "not a valid selector operator"))
    _label_name(e.get("key") or "", f + ".key", causes)


def _label_selector(sel: Any, f: str, causes: list) -> None:
    """A metav1.LabelSelector, as ValidateLabelSelector."""
    sel = _typed(sel, dict, f, causes)
    if sel is None:
        return
    for k, v in (_typed(sel.get("matchLabels"), dict, f + ".matchLabels", causes) or {}).items():
        _label_name(k, f + ".matchLabels", causes)
        if _typed(v, str, f + ".matchLabels", causes) is not None and (len(v) > 63 or not LABEL_VALUE.match(v)):
            causes.append(_invalid(f + ".matchLabels", v, _LABEL_VALUE_WHY))
    for i, e in enumerate(_typed(sel.get("matchExpressions"), list, f + ".matchExpressions", causes) or ()):
        _selector_requirement(e, f"{f}.matchExpressions[{i}]", causes, node=False)


def _node_selector_term(term: Any, f: str, causes: list) -> None:
    """ValidateNodeSelectorTerm: matchExpressions on labels, matchFields on metadata.name."""
    term = _object(term, f, causes)
    if term is None:
        return
    for i, e in enumerate(_typed(term.get("matchExpressions"), list, f + ".matchExpressions", causes) or ()):
        _selector_requirement(e, f"{f}.matchExpressions[{i}]", causes, node=True)
    for i, e in enumerate(_typed(term.get("matchFields"), list, f + ".matchFields", causes) or ()):
        fe = f"{f}.matchFields[{i}]"
        e = _object(e, fe, causes)
        if e is None:
            continue
        op, vals = e.get("operator") or "", _values(e, fe, causes)
        if op not in ("In", "NotIn"):
            causes.append(_invalid(fe + ".operator", op, "not a valid selector operator"))
        elif len(vals) != 1:
            causes.append(_cause(fe + ".values", REQUIRED, "Required value: must be only one value when `operator` "
                                                           "is 'In' or 'NotIn' for node field selector"))
        if e.get("key") != "metadata.name":
            causes.append(_invalid(fe + ".key", e.get("key", ""), "not a valid field selector key"))


def _weight(w: Any, f: str, causes: list) -> None:
    if _typed(w, int, f, causes) is not None and not 1 <= w <= 100:
        causes.append(_invalid(f, w, "must be in the range 1-100"))


def _label_keys(term: dict, name: str, f: str, causes: list) -> list:
    """matchLabelKeys or mismatchLabelKeys: label names, only with a labelSelector."""
    keys = _typed(term.get(name), list, f"{f}.{name}", causes) or []
    if keys and term.get("labelSelector") is None:
        causes.append(_cause(f"{f}.{name}", "FieldValueForbidden",
                             "Forbidden: must not be specified when labelSelector is not set"))
    for i, k in enumerate(keys):
        _label_name(k, f"{f}.{name}[{i}]", causes)
    return keys


def _pod_affinity_term(term: Any, f: str, causes: list) -> None:
    """validatePodAffinityTerm."""
    term = _object(term, f, causes)
    if term is None:
        return
    _label_selector(term.get("labelSelector"), f + ".labelSelector", causes)
    _label_selector(term.get("namespaceSelector"), f + ".namespaceSelector", causes)
    for n in _typed(term.get("namespaces"), list, f + ".namespaces", causes) or ():
        if _typed(n, str, f + ".namespace", causes) is not None and (why := dns1123_label_error(n)):
            causes.append(_invalid(f + ".namespace", n, why))
    match = _label_keys(term, "matchLabelKeys", f, causes)
    mismatch = _label_keys(term, "mismatchLabelKeys", f, causes)
    for i, k in enumerate(match):
        if k in mismatch:
            causes.append(_invalid(f"{f}.matchLabelKeys[{i}]", k, "exists in both matchLabelKeys and mismatchLabelKeys"))
    key = term.get("topologyKey") or ""
    if not key:
        causes.append(_cause(f + ".topologyKey", REQUIRED, "Required value: can not be empty"))
    else:
        _label_name(key, f + ".topologyKey", causes)


def _check_affinity(aff: Any, causes: list) -> None:
    """ValidateAffinity: nodeAffinity, podAffinity and podAntiAffinity."""
    aff = _typed(aff, dict, "spec.affinity", causes) or {}
    na = _typed(aff.get("nodeAffinity"), dict, "spec.affinity.nodeAffinity", causes) or {}
    f = "spec.affinity.nodeAffinity." + _REQUIRED_TERMS
    req = _typed(na.get(_REQUIRED_TERMS), dict, f, causes)
    if req is not None:
        terms = req.get("nodeSelectorTerms")
        if not terms:
            causes.append(_cause(f + ".nodeSelectorTerms", REQUIRED,
                                 "Required value: must have at least one node selector term"))
        for i, t in enumerate(_typed(terms, list, f + ".nodeSelectorTerms", causes) or ()):
            _node_selector_term(t, f"{f}.nodeSelectorTerms[{i}]", causes)
    f = "spec.affinity.nodeAffinity." + _PREFERRED_TERMS
    for i, p in enumerate(_typed(na.get(_PREFERRED_TERMS), list, f, causes) or ()):
        p = _object(p, f"{f}[{i}]", causes)
        if p is not None:
            _weight(p.get("weight") or 0, f"{f}[{i}].weight", causes)
            _node_selector_term(p.get("preference"), f"{f}[{i}].preference", causes)
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = _typed(aff.get(kind), dict, f"spec.affinity.{kind}", causes) or {}
        f = f"spec.affinity.{kind}.{_REQUIRED_TERMS}"
        for i, t in enumerate(_typed(pa.get(_REQUIRED_TERMS), list, f, causes) or ()):
            _pod_affinity_term(t, f"{f}[{i}]", causes)
        f = f"spec.affinity.{kind}.{_PREFERRED_TERMS}"
        for i, w in enumerate(_typed(pa.get(_PREFERRED_TERMS), list, f, causes) or ()):
            w = _object(w, f"{f}[{i}]", causes)
            if w is not None:
                _weight(w.get("weight") or 0, f"{f}[{i}].weight", causes)
                _pod_affinity_term(w.get("podAffinityTerm"), f"{f}[{i}].podAffinityTerm", causes)


def _check_spread(constraints: Any, causes: list) -> None:
    """validateTopologySpreadConstraints."""
    items = _typed(constraints, list, "spec.topologySpreadConstraints", causes) or []
    for i, c in enumerate(items):
        f = f"spec.topologySpreadConstraints[{i}]"
        c = _object(c, f, causes)
        if c is None:
            continue
        skew = c.get("maxSkew", 0)
        if _typed(skew, int, f + ".maxSkew", causes) is not None and skew <= 0:
            causes.append(_invalid(f + ".maxSkew", skew, "must be greater than zero"))
        key, when = c.get("topologyKey") or "", c.get("whenUnsatisfiable") or ""
        if not key:
            causes.append(_cause(f + ".topologyKey", REQUIRED, "Required value: can not be empty"))
        else:
            _typed(key, str, f + ".topologyKey", causes)
        if when not in _WHEN_UNSATISFIABLE:
            causes.append(_cause(f + ".whenUnsatisfiable", NOT_SUPPORTED, f"Unsupported value: {_short(when)}: "
                                 "supported values: " + ", ".join(json.dumps(w) for w in _WHEN_UNSATISFIABLE)))
        if any(isinstance(o, dict) and (o.get("topologyKey") or "", o.get("whenUnsatisfiable") or "") == (key, when)
               for o in items[i + 1:]):
            causes.append(_cause(f + ".{topologyKey, whenUnsatisfiable}", INVALID,
                                 f"Duplicate value: {json.dumps(f'{{{key}, {when}}}')}"))
        domains = c.get("minDomains")
        if _typed(domains, int, f + ".minDomains", causes) is not None:
            if domains <= 0:
                causes.append(_invalid(f + ".minDomains", domains, "must be greater than zero"))
            if when != "DoNotSchedule":
                causes.append(_invalid(f + ".minDomains", domains,
                                       f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}"))
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(policy)
            if v is not None and v not in _NODE_INCLUSION_POLICIES:
                causes.append(_cause(f"{f}.{policy}", NOT_SUPPORTED, f"Unsupported value: {_short(v)}: supported "
                                     "values: " + ", ".join(json.dumps(p) for p in _NODE_INCLUSION_POLICIES)))
        sel = c.get("labelSelector")
        _label_selector(sel, f + ".labelSelector", causes)
        in_selector = []
        if isinstance(sel, dict):
            if isinstance(sel.get("matchLabels"), dict):
                in_selector += sel["matchLabels"]
            if isinstance(sel.get("matchExpressions"), list):
                in_selector += [e.get("key") for e in sel["matchExpressions"] if isinstance(e, dict)]
        for j, k in enumerate(_label_keys(c, "matchLabelKeys", f, causes)):
            if k in in_selector:
                causes.append(_invalid(f"{f}.matchLabelKeys[{j}]", k, "exists in both matchLabelKeys and labelSelector"))


def _check_scheduling(spec: dict) -> list[dict]:
    """spec.affinity and spec.topologySpreadConstraints, as Kubernetes validates them."""
    causes: list[dict] = []
    if spec.get("affinity") is not None:
        _check_affinity(spec["affinity"], causes)
    if spec.get("topologySpreadConstraints") is not None:
        _check_spread(spec["topologySpreadConstraints"], causes)
    return causes


# ---------------------------------------------------------------- label selectors (metav1.LabelSelector)

def label_selector_matches(sel: dict | None, labels: dict | None) -> bool:
    """Whether ``labels`` match a LabelSelector (matchLabels AND matchExpressions). An empty
    selector matches everything (as metav1.LabelSelectorAsSelector)."""
    sel = sel or {}
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def format_label_selector(sel: dict | None) -> str:
    """The string form of a LabelSelector (metav1.FormatLabelSelector without "<none>"):
    ``app=web,tier in (a,b),!legacy``."""
    sel = sel or {}
    parts = []
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        parts.append(f"{k}={v}")
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), sorted(e.get("values") or [])
        if op == "In":
            parts.append(f"{k} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{k} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(str(k))
        elif op == "DoesNotExist":
            parts.append(f"!{k}")
    return ",".join(parts)


def go_string_map(m: dict | None) -> str:
    """A map[string]string as Go's %#v prints it (sorted keys)."""
    if m is None:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(m.items())) + "}"


# ---------------------------------------------------------------- workloads (apps/v1)

_PERCENT = re.compile(r"^[0-9]+%$")


def _int_or_percent(v: Any, field: str, causes: list, max_percent: bool = False) -> int | None:
    """Validate an IntOrString (an int >= 0 or "N%"); return a comparable value (0 = zero)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        if v < 0:
            causes.append(_invalid(field, v, "must be greater than or equal to 0"))
        return v
    if isinstance(v, str):
        if not _PERCENT.match(v):
            causes.append(_invalid(field, v, "a valid percent string must be a numeric string followed by an ending "
                                             "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))
            return None
        n = int(v[:-1])
        if max_percent and n > 100:
            causes.append(_invalid(field, v, "must not be greater than 100%"))
        return n
    return None


def _prefixed(causes: list[dict], old: str, new: str) -> list[dict]:
    out = []
    for c in causes:
        f = c.get("field") or ""
        if f == old or f.startswith(old + ".") or f.startswith(old + "["):
            nf = new + f[len(old):]
            c = {**c, "field": nf, "message": c["message"].replace(f, nf)}
        out.append(c)
    return out


def selector_matches_template(sel: dict, tlabels: dict | None) -> list[dict]:
    """The cause when a workload's selector does not select its own template's labels."""
    try:
        ok = label_selector_matches(sel, tlabels)
    except (AttributeError, TypeError):
        ok = True  # a shape the schema reports
    if ok:
        return []
    return [_cause("spec.template.metadata.labels", INVALID,
                   f"Invalid value: {go_string_map(tlabels)}: `selector` does not match template `labels`")]


def _check_workload(obj: dict, kind: str) -> tuple[list[dict], list[Warning]]:
    causes: list[dict] = []
    warnings: list[Warning] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes, warnings
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
        causes.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    for f in ("minReadySeconds", "revisionHistoryLimit"):
        v = spec.get(f)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            causes.append(_invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    sel = spec.get("selector")
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else None
    if kind == "ReplicationController":
        # ValidateReplicationControllerSpec: a plain map, defaulted from the template's labels
        if not sel:
            causes.append(_cause("spec.selector", REQUIRED, "Required value"))
        if tmpl is None:
            causes.append(_cause("spec.template", REQUIRED, "Required value"))
        elif isinstance(sel, dict) and sel:
            tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
            causes += selector_matches_template({"matchLabels": sel}, tmeta.get("labels")
                                                if isinstance(tmeta.get("labels"), dict) else None)
    elif isinstance(sel, dict):
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            causes.append(_cause("spec.selector", INVALID,
                                 f"Invalid value: {_short(sel)}: empty selector is invalid for {kind.lower()}"))
        for k, v in (sel.get("matchLabels") or {}).items():
            if isinstance(k, str) and (why := _qualified_name_error(k)):
                causes.append(_invalid(json_path(["spec", "selector", "matchLabels", k]), k, why))
        for i, e in enumerate(sel.get("matchExpressions") or []):
            if not isinstance(e, dict):
                continue
            op, vals = e.get("operator"), e.get("values") or []
            f = f"spec.selector.matchExpressions[{i}].values"
            if op in ("In", "NotIn") and not vals:
                causes.append(_cause(f, REQUIRED, "Required value: must be specified when `operator` is 'In' or 'NotIn'"))
            if op in ("Exists", "DoesNotExist") and vals:
                causes.append(_cause(f, FORBIDDEN,
                                     "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        if tmpl is not None and (sel.get("matchLabels") or sel.get("matchExpressions")):
            tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
            causes += selector_matches_template(sel, tmeta.get("labels") if isinstance(tmeta.get("labels"), dict)
                                                else None)
    if tmpl is not None:
        tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
        for k, v in (tmeta.get("labels") or {}).items():
            f = json_path(["spec", "template", "metadata", "labels", k])
            if isinstance(k, str) and (why := _qualified_name_error(k)):
                causes.append(_invalid(f, k, why))
            if isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v)):
                causes.append(_invalid(f, v, "a valid label must be an empty string or consist of alphanumeric "
                                             "characters, '-', '_' or '.', at most 63, starting and ending with an "
                                             "alphanumeric character"))
        pspec = tmpl.get("spec")
        if isinstance(pspec, dict):
            fake = {"spec": pspec}
            try:
                causes.extend(_prefixed(_check_pod(fake), "spec", "spec.template.spec"))
            except (AttributeError, TypeError):
                pass
            more, warns = _unsupported(fake, POD_RULES)
            causes.extend(_prefixed(more, "spec", "spec.template.spec"))
            for w in warns:
                nf = "spec.template.spec" + w.field[len("spec"):]
                warnings.append(Warning(nf, str(w).replace(w.field, nf, 1)))
            rp = pspec.get("restartPolicy")
            if rp is not None and rp != "Always":
                causes.append(_cause("spec.template.spec.restartPolicy", NOT_SUPPORTED,
                                     f'Unsupported value: {_short(rp)}: supported values: "Always"'))
            if pspec.get("activeDeadlineSeconds") is not None:
                causes.append(_cause("spec.template.spec.activeDeadlineSeconds", FORBIDDEN,
                                     f"Forbidden: activeDeadlineSeconds in "
                                     f"{'ReplicationController' if kind == 'ReplicationController' else 'ReplicaSet'}"
                                     f" is not Supported"))
    if kind == "Deployment":
        strat = spec.get("strategy") if isinstance(spec.get("strategy"), dict) else {}
        ru = strat.get("rollingUpdate")
        if strat.get("type") == "Recreate" and ru is not None:
            causes.append(_cause("spec.strategy.rollingUpdate", FORBIDDEN,
                                 "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
        elif isinstance(ru, dict):
            mu = _int_or_percent(ru.get("maxUnavailable"), "spec.strategy.rollingUpdate.maxUnavailable", causes, True)
            ms = _int_or_percent(ru.get("maxSurge"), "spec.strategy.rollingUpdate.maxSurge", causes)
            if mu == 0 and ms == 0:
                causes.append(_invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                                       "may not be 0 when `maxSurge` is 0"))
        pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
        if isinstance(pds, int) and not isinstance(pds, bool):
            if pds < 0:
                causes.append(_invalid("spec.progressDeadlineSeconds", pds, "must be greater than or equal to 0"))
            elif isinstance(mrs, int) and pds <= mrs:
                causes.append(_invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    return causes, warnings


# ---------------------------------------------------------------- configmaps and secrets

CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIG_BYTES = 1024 * 1024
SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


class DecodeError(ValidationError):
    """A body that cannot be decoded (a Secret's data value that is not base64): 400, as the
    kube-apiserver answers when it cannot decode the object."""

    def to_status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f'{self.kind} in version "v1" cannot be handled as a {self.kind}: '
                           + "; ".join(c["message"] for c in self.causes),
                "reason": "BadRequest", "code": 400}


def b64_error(v: str) -> str | None:
    """Go's base64.StdEncoding error for ``v``, or None when it decodes."""
    import base64
    import binascii
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    stripped = v.replace("\r", "").replace("\n", "")
    for i, ch in enumerate(stripped):
        if ch == "=":
            break
        if ch not in alphabet:
            return f"illegal base64 data at input byte {i}"
    try:
        base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {max(len(stripped) - 1, 0)}"
    return None


def _config_keys(obj: dict, fields: tuple[str, ...]) -> list[dict]:
    causes = []
    seen: dict[str, str] = {}
    total = 0
    for fname in fields:
        m = obj.get(fname)
        if not isinstance(m, dict):
            continue
        for k, v in m.items():
            f = json_path([fname, k])
            if not CONFIG_KEY.match(k) or len(k) > 253 or k in (".", ".."):
                causes.append(_invalid(f, k, "a valid config key must consist of alphanumeric characters, '-', '_' "
                                             "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                                             "for validation is '[-._a-zA-Z0-9]+')"))
            elif k in seen and {seen[k], fname} == {"data", "binaryData"}:
                causes.append(_invalid(f, k, "duplicate of key present in data" if fname == "binaryData"
                                       else "duplicate of key present in binaryData"))
            seen.setdefault(k, fname)
            if isinstance(v, str):
                total += len(v)
    if total > MAX_CONFIG_BYTES:
        causes.append(_cause("", "FieldValueTooLong", f"Too long: must have at most {MAX_CONFIG_BYTES} bytes"))
    return causes


def _check_configmap(obj: dict) -> list[dict]:
    causes = _config_keys(obj, ("data", "binaryData"))
    for k, v in (obj.get("binaryData") or {}).items():
        if isinstance(v, str) and (why := b64_error(v)):
            raise DecodeError([_cause(json_path(["binaryData", k]), INVALID, why)], "ConfigMap",
                              str((obj.get("metadata") or {}).get("name") or ""))
    return causes


def _check_secret(obj: dict) -> list[dict]:
    name = str((obj.get("metadata") or {}).get("name") or "")
    for k, v in (obj.get("data") or {}).items():
        if isinstance(v, str) and (why := b64_error(v)):
            raise DecodeError([_cause(json_path(["data", k]), INVALID, why)], "Secret", name)
    causes = _config_keys(obj, ("data",))
    typ = obj.get("type")
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    if isinstance(typ, str):
        for k in SECRET_REQUIRED_KEYS.get(typ, ()):
            if k not in data:
                causes.append(_cause(json_path(["data", k]), REQUIRED, "Required value"))
        if typ == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
            causes.append(_cause("data[username]", REQUIRED, "Required value"))
        if typ == "kubernetes.io/service-account-token":
            # only the account's name: its uid and the data are the tokens controller's to fill
            ann = (obj.get("metadata") or {}).get("annotations")
            if not (isinstance(ann, dict) and ann.get("kubernetes.io/service-account.name")):
                causes.append(_cause("metadata.annotations[kubernetes.io/service-account.name]", REQUIRED,
                                     "Required value"))
    return causes


def validate_update(cur: dict, new: dict) -> None:
    """Rules that compare an update with the stored object (ValidateXUpdate in Kubernetes):
    apps/v1 selectors are immutable; a Job's selector, template and more; a Service's cluster IPs
    and IP families; an EndpointSlice's addressType; Secret type; immutable ConfigMaps and Secrets."""
    kind = kind_of(new)
    if kind is None:
        return
    name = str((new.get("metadata") or {}).get("name") or "")
    causes = []
    if kind.kind in ("Deployment", "ReplicaSet"):
        old_sel = (cur.get("spec") or {}).get("selector")
        new_sel = (new.get("spec") or {}).get("selector")
        if old_sel != new_sel:
            causes.append(_cause("spec.selector", INVALID, f"Invalid value: {go_label_selector(new_sel)}: "
                                                           f"field is immutable"))
    if kind.kind == "Job":
        from skiff.api.validation_job import check_job_update
        causes.extend(check_job_update(cur, new))
    if kind.kind == "DaemonSet":
        from skiff.api.validation_daemonset import check_daemonset_update
        causes.extend(check_daemonset_update(cur, new))
    if kind.kind == "StatefulSet":
        from skiff.api.validation_statefulset import check_statefulset_update
        causes.extend(check_statefulset_update(cur, new))
    if kind.kind == "ControllerRevision":
        from skiff.api.validation_daemonset import check_controller_revision_update
        causes.extend(check_controller_revision_update(cur, new))
    if kind.kind == "Service":
        from skiff.api.validation_service import check_service_update
        causes.extend(check_service_update(cur, new))
    if kind.kind == "EndpointSlice":
        from skiff.api.validation_service import check_endpointslice_update
        causes.extend(check_endpointslice_update(cur, new))
    if kind.kind in ("PersistentVolume", "PersistentVolumeClaim", "StorageClass"):
        from skiff.api.validation_storage import check_storage_update
        causes.extend(check_storage_update(kind.kind, cur, new))
    if kind.kind == "PriorityClass":
        from skiff.api.validation_priority import check_priority_class_update
        causes.extend(check_priority_class_update(cur, new))
    if kind.kind == "IngressClass":
        from skiff.api.validation_ingress import check_ingressclass_update
        causes.extend(check_ingressclass_update(cur, new))
    if kind.kind in ("RoleBinding", "ClusterRoleBinding"):
        from skiff.api.validation_rbac import check_rbac_update
        causes.extend(check_rbac_update(cur, new))
    if kind.kind == "Secret" and (cur.get("type") or "Opaque") != (new.get("type") or "Opaque"):
        causes.append(_invalid("type", new.get("type"), "field is immutable"))
    if kind.kind in ("Secret", "ConfigMap") and cur.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(_cause("immutable", FORBIDDEN,
                                 "Forbidden: field is immutable when `immutable` is set"))
        for f in ("data", "binaryData") if kind.kind == "ConfigMap" else ("data",):
            if (cur.get(f) or {}) != (new.get(f) or {}):
                causes.append(_cause(f, FORBIDDEN, "Forbidden: field is immutable when `immutable` is set"))
    if causes:
        raise ValidationError(causes, kind.kind, name)


def go_label_selector(sel: dict | None) -> str:
    """A LabelSelector roughly as Go's %#v prints it (for 'field is immutable' messages)."""
    if not isinstance(sel, dict):
        return "nil"
    ml = sel.get("matchLabels")
    return ("v1.LabelSelector{MatchLabels:" + go_string_map(ml if isinstance(ml, dict) else None)
            + ", MatchExpressions:[]v1.LabelSelectorRequirement(" + ("nil" if not sel.get("matchExpressions")
                                                                     else _short(sel["matchExpressions"])) + ")}")


# ---------------------------------------------------------------- entry point

def _drop_nulls(obj: dict, errors: list) -> bool:
    """Remove the fields whose value is JSON null where the schema wants a value (a type error
    on None): Kubernetes' decoder leaves such a field unset (``annotations:`` or ``resources:``
    with nothing after them in a manifest, ``nodeSelector: null`` from a template). Returns
    whether any was removed."""
    dropped = False
    for e in errors:
        if e.validator != "type" or e.instance is not None:
            continue
        path = list(e.absolute_path)
        if not path:
            continue
        parent = obj
        for p in path[:-1]:
            try:
                parent = parent[p]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if isinstance(parent, dict) and parent.get(path[-1], 0) is None:
            del parent[path[-1]]
            dropped = True
    return dropped


def drop_nulls(obj: Any) -> None:
    """Unset, in place, the fields of ``obj`` (of a kind skiff has a schema for) given as null
    where the schema wants a value, as :func:`validate` does and Go's decoder does."""
    kind = kind_of(obj)
    if kind is None:
        return
    fast = _fast(kind.schema_file)
    if fast is None or not fast(obj):
        _drop_nulls(obj, list(_validator(kind.schema_file).iter_errors(obj)))


def validate(obj: Any, field_validation: str | None = None) -> list[Warning]:
    """Validate one API object. Returns the warnings; raises ValidationError with every cause.

    ``field_validation`` is the API's directive for unknown fields: "Strict" raises
    :class:`StrictDecodingError` (400), "Warn" removes them from ``obj`` (in place) with a
    warning each (``unknown field "spec.foo"``), "Ignore" removes them silently. None (the
    default) reports them as causes like any other error."""
    if not isinstance(obj, dict):
        raise ValidationError([_cause("", INVALID, f"Invalid value: an API object must be a mapping, not {type(obj).__name__}")])
    kind = kind_of(obj)
    name = (obj.get("metadata") or {}).get("name", "") if isinstance(obj.get("metadata"), dict) else ""
    if kind is None:
        causes = []
        if not obj.get("apiVersion"):
            causes.append(_cause("apiVersion", REQUIRED, "Required value"))
        if not obj.get("kind"):
            causes.append(_cause("kind", REQUIRED, "Required value"))
        if not causes:
            supported = ", ".join(f"{k.api_version}/{k.kind}" for k in KINDS.values())
            causes.append(_cause("kind", NOT_SUPPORTED,
                                 f"Unsupported value: no kind \"{obj.get('kind')}\" is registered for version "
                                 f"\"{obj.get('apiVersion')}\" (supported: {supported})"))
        raise ValidationError(causes, str(obj.get("kind") or ""), str(name or ""))
    causes: list[dict] = []
    fast = _fast(kind.schema_file)
    if fast is not None and fast(obj):
        errors = []  # valid: jsonschema would find nothing (it runs only to explain an invalid object)
    else:
        errors = sorted(_validator(kind.schema_file).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        if _drop_nulls(obj, errors):     # null where a value is expected: unset, as Go decodes it
            errors = [] if fast is not None and fast(obj) else sorted(
                _validator(kind.schema_file).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    errors, unknown = _unknown_fields(errors, field_validation)
    if unknown and field_validation == "Strict":
        raise StrictDecodingError(kind.kind, kind.api_version, str(name or ""), [f for _, _, f in unknown])
    for err in errors:
        causes.extend(_schema_causes(err))
    warnings: list[Warning] = []
    for container, key, field in unknown:
        container.pop(key, None)
        if field_validation != "Ignore":
            warnings.append(Warning(field, f'unknown field "{field}"'))
    if isinstance(obj.get("metadata"), dict):
        causes.extend(c for c in _check_meta(obj, kind) if c not in causes)
    if kind.kind == "Pod" and isinstance(obj.get("spec"), dict):
        try:
            causes.extend(_check_pod(obj))
        except (AttributeError, TypeError):
            # a shape the schema has already reported (a list where a mapping belongs...)
            if not causes:
                raise
        more, warns = _unsupported(obj, POD_RULES)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind in ("Deployment", "ReplicaSet", "ReplicationController"):
        more, warns = _check_workload(obj, kind.kind)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind in ("LimitRange", "ResourceQuota"):
        from skiff.api.validation_limits import check_limitrange, check_resourcequota
        causes.extend((check_limitrange if kind.kind == "LimitRange" else check_resourcequota)(obj))
    if kind.kind == "PodDisruptionBudget":
        from skiff.api.validation_pdb import check_pdb
        causes.extend(check_pdb(obj))
    if kind.kind == "Ingress":
        from skiff.api.validation_ingress import check_ingress
        causes.extend(check_ingress(obj))
    if kind.kind == "IngressClass":
        from skiff.api.validation_ingress import check_ingressclass
        causes.extend(check_ingressclass(obj))
    if kind.kind == "NetworkPolicy":
        from skiff.api.validation_netpol import check_networkpolicy
        causes.extend(check_networkpolicy(obj))
    if kind.kind == "CronJob":
        from skiff.api.validation_cronjob import check_cronjob
        more, warns = check_cronjob(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "Job":
        from skiff.api.validation_job import check_job
        more, warns = check_job(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "HorizontalPodAutoscaler":
        from skiff.api.validation_hpa import check_hpa
        more, warns = check_hpa(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "DaemonSet":
        from skiff.api.validation_daemonset import check_daemonset
        more, warns = check_daemonset(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "StatefulSet":
        from skiff.api.validation_statefulset import check_statefulset
        more, warns = check_statefulset(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "ControllerRevision":
        from skiff.api.validation_daemonset import check_controller_revision
        causes.extend(check_controller_revision(obj))
    if kind.kind == "Service":
        from skiff.api.validation_service import check_service
        more, warns = check_service(obj)
        causes.extend(more)
        warnings.extend(warns)
    if kind.kind == "Endpoints":
        from skiff.api.validation_service import check_endpoints
        causes.extend(check_endpoints(obj))
    if kind.kind == "EndpointSlice":
        from skiff.api.validation_service import check_endpointslice
        causes.extend(check_endpointslice(obj))
    if kind.kind == "PriorityClass":
        from skiff.api.validation_priority import check_priority_class
        causes.extend(check_priority_class(obj))
    if kind.api_version == "rbac.authorization.k8s.io/v1":
        from skiff.api.validation_rbac import check_rbac
        causes.extend(check_rbac(obj))
    if kind.kind == "ConfigMap":
        causes.extend(_check_configmap(obj))
    if kind.kind == "Secret":
        causes.extend(_check_secret(obj))
    if kind.kind in ("PersistentVolume", "PersistentVolumeClaim", "StorageClass"):
        from skiff.api.validation_storage import check_storage
        more, warns = check_storage(kind.kind, obj)
        causes.extend(more)
        warnings.extend(warns)
    if causes:
        # one cause per (field, message)
        uniq = []
        for c in causes:
            if c not in uniq:
                uniq.append(c)
        raise ValidationError(uniq, kind.kind, str(name or ""))
    return warnings
