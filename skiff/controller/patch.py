"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch
(for the list fields of skiff's kinds; see :func:`strategic_merge_patch`).

``merge_patch(target, patch)`` returns the patched document; ``target`` is not modified
(untouched subtrees are shared with the result). ``json_patch(doc, ops, copy=True)`` applies
every operation or none: with ``copy=False`` the document is patched in place (for a caller
that owns it). Errors: :class:`PatchError` (``.malformed`` True when the patch itself is not a
valid patch document: the apiserver answers 400 then, and 422 when a valid patch cannot be
applied, e.g. a failed ``test``).
"""
from __future__ import annotations

import copy as _copy
from typing import Any


class PatchError(Exception):
    def __init__(self, message: str, malformed: bool = False):
        super().__init__(message)
        self.message = message
        self.malformed = malformed


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = merge_patch(out.get(k), v)
        else:
            out[k] = _copy.deepcopy(v) if isinstance(v, list) else v
    return out


# ------------------------------------------------------------------------------ RFC 6902

def _parse_pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer: {path!r}", malformed=True)
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": "{path}"', malformed=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, tok: str, path: str, allow_end: bool) -> int:
    if tok == "-" and allow_end:
        return len(container)
    if not tok.isdigit() or (len(tok) > 1 and tok[0] == "0"):
        raise PatchError(f'invalid array index "{tok}" in path "{path}"')
    i = int(tok)
    if i > len(container) or (i == len(container) and not allow_end):
        raise PatchError(f'array index {i} out of bounds in path "{path}"')
    return i


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for tok in parts[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f'path "{path}" does not exist: missing "{tok}"')
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, path, False)]
        else:
            raise PatchError(f'path "{path}" does not exist')
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _parse_pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(f'path "{path}" does not exist')
        return parent[tok]
    if isinstance(parent, list):
        return parent[_index(parent, tok, path, False)]
    raise PatchError(f'path "{path}" does not exist')


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _parse_pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        parent[tok] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tok, path, True), value)
    else:
        raise PatchError(f'path "{path}" does not exist')
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _parse_pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(f'unable to remove nonexistent key "{tok}": path "{path}" does not exist')
        return doc, parent.pop(tok)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, tok, path, False))
    raise PatchError(f'path "{path}" does not exist')


def _replace(doc: Any, path: str, value: Any) -> Any:
    parts = _parse_pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(f'replace operation does not apply: doc is missing key: {path}')
        parent[tok] = value
    elif isinstance(parent, list):
        parent[_index(parent, tok, path, False)] = value
    else:
        raise PatchError(f'path "{path}" does not exist')
    return doc


def _equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def json_patch(doc: Any, ops: Any, copy: bool = True) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be an array of operations", malformed=True)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"invalid operation {op!r}", malformed=True)
        if op["op"] not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f'Unexpected kind: {op["op"]}', malformed=True)
        if "path" not in op:
            raise PatchError(f'operation "{op["op"]}" has no "path"', malformed=True)
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'operation "{op["op"]}" has no "value"', malformed=True)
        if op["op"] in ("move", "copy") and "from" not in op:
            raise PatchError(f'operation "{op["op"]}" has no "from"', malformed=True)
    if copy:
        doc = _copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, _copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc = _replace(doc, path, _copy.deepcopy(op["value"]))
        elif kind == "move":
            frm = op["from"]
            if path != frm and path.startswith(frm + "/"):
                raise PatchError(f'cannot move "{frm}" into its own child "{path}"')
            doc, value = _remove(doc, frm)
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, _copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if not _equal(_get(doc, path), op["value"]):
                raise PatchError(f'testing value {path} failed: test failed')
    return doc


# ------------------------------------------------------------------ strategic merge patch

# Kubernetes' patchMergeKey of the list fields skiff's kinds have (by field name); other lists
# are replaced whole, as with a merge patch. "finalizers" is a merged list of primitives.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
              "volumes": "name", "env": "name", "ports": "containerPort", "volumeMounts": "mountPath",
              "volumeDevices": "devicePath", "conditions": "type", "imagePullSecrets": "name",
              "hostAliases": "ip", "addresses": "type", "ownerReferences": "uid",
              "containerStatuses": "name", "initContainerStatuses": "name", "podIPs": "ip",
              "readinessGates": "conditionType", "topologySpreadConstraints": "topologyKey",
              "secrets": "name", "schedulingGates": "name"}
MERGED_PRIMITIVE_LISTS = {"finalizers"}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def merge_key(parent: str | None, field: str) -> str | None:
    """The merge key of list ``field`` in a map that is the value of ``parent`` (the field it
    hangs under; None at the top): ``ports`` are a container's by containerPort and a Service
    spec's by port, other ``ports`` lists (EndpointSlice, Endpoints, load balancer status) are
    atomic; ``addresses`` merge by type only under status (a Node's), an Endpoints subset's
    are atomic."""
    if field == "ports":
        if parent in CONTAINER_LISTS:
            return "containerPort"
        return "port" if parent == "spec" else None
    if field == "addresses":
        return "type" if parent == "status" else None
    return MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any, _parent: str | None = None) -> Any:
    """Kubernetes' strategic merge patch for the fields of skiff's kinds: lists with a merge key
    (containers by name, ports by containerPort, ...) are merged element by element; the
    directives ``$patch`` (replace/delete/merge), ``$retainKeys``, ``$setElementOrder/<f>`` and
    ``$deleteFromPrimitiveList/<f>`` are understood. Without directives on such lists it is a
    JSON merge patch."""
    if not isinstance(patch, dict):
        return _copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: _copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}", malformed=True)
    out = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list) and isinstance(v, list):
                out[f] = [x for x in out[f] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge_patch(out.get(k), v, k)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list) and merge_key(_parent, k) and isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, merge_key(_parent, k), k)
        elif isinstance(v, list) and k in MERGED_PRIMITIVE_LISTS and isinstance(out.get(k), list):
            out[k] = out[k] + [x for x in v if x not in out[k]]
        else:
            out[k] = _strip_directives(_copy.deepcopy(v))
    for f, order in orders.items():
        cur = out.get(f)
        key = merge_key(_parent, f)
        if isinstance(cur, list) and isinstance(order, list):
            def ident(x):
                return x.get(key) if key and isinstance(x, dict) else x
            pos = {json_key(ident(o)): i for i, o in enumerate(order)}
            out[f] = sorted(cur, key=lambda x: pos.get(json_key(ident(x)), len(pos)))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def json_key(v: Any) -> str:
    return repr(v)


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def _merge_list(cur: list, patch: list, key: str, field: str | None = None) -> list:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip_directives(_copy.deepcopy(p)) for p in patch
                if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    out = list(cur)
    for p in patch:
        if not isinstance(p, dict) or key not in p:
            raise PatchError(f"map: {p!r} does not contain declared merge key: {key}")
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == p[key]), None)
        if p.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(_strip_directives(_copy.deepcopy(p)))
        else:
            out[idx] = strategic_merge_patch(out[idx], p, field)
    return out
