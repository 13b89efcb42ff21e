"""Field ownership (metadata.managedFields) and server-side apply.

A *field set* is a Python ``set`` of paths; a path is a tuple of fieldsV1 elements:
``"f:spec"`` (a map field), ``'k:{"name":"c"}'`` (an item of an associative list, by its key
fields), ``'v:"x"'`` (a value of a set-like primitive list such as finalizers). A set holds
the *leaves* an owner set (scalars, atomic lists, empty maps), the list *items* it set (the
item itself, written ``".": {}`` in fieldsV1), and for Update owners also the maps they
created. :func:`to_fields_v1` / :func:`from_fields_v1` convert to and from Kubernetes'
FieldsV1 JSON.

Associative lists are those of :data:`skiff.controller.patch.MERGE_KEYS` (container ports by
containerPort+protocol, a Service's ports by port+protocol, topologySpreadConstraints by
topologyKey+whenUnsatisfiable; see :func:`list_keys`);
finalizers is a set; every other list is atomic (replaced whole); ``selector`` /
``labelSelector`` maps are atomic too, as Kubernetes' LabelSelector.

:func:`apply` merges an applied configuration into a live object for one manager, removes what
that manager applied before and no longer applies (unless another manager owns it), reports
conflicts with other managers whose values it would change, and returns the new ownership;
:func:`track_update` records the owner of a non-apply write (create/update/patch).
"""
from __future__ import annotations

import copy
import json
from typing import Any, Iterable

import orjson

from skiff.api.timefmt import rfc3339
from skiff.controller.patch import MERGE_KEYS

# associative lists and their key fields (with the defaults Kubernetes fills in for keys)
LIST_KEYS: dict[str, tuple[str, ...]] = {k: (v,) for k, v in MERGE_KEYS.items()}
LIST_KEYS["ports"] = ("containerPort", "protocol")
LIST_KEYS["topologySpreadConstraints"] = ("topologyKey", "whenUnsatisfiable")
KEY_DEFAULTS = {("ports", "protocol"): "TCP"}
SET_LISTS = frozenset({"finalizers"})
ATOMIC_MAPS = frozenset({"selector", "labelSelector", "namespaceSelector"})
# maps an Update owner does not get as a node of its own (always-present structs)
_STRUCTURAL = frozenset({"metadata", "spec", "template", "status"})
# metadata the server owns: never part of a field set
IGNORED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "generateName"})

def list_keys(parent: str | None, field: str) -> tuple[str, ...] | None:
    """The key fields of list ``field`` in the map that is the value of ``parent`` (None at the
    top), or None when that list is not associative: ``ports`` by containerPort+protocol in a
    container, by port+protocol in a Service spec, atomic elsewhere (endpoints); ``addresses``
    by type under status (a Node's), atomic elsewhere."""
    if field == "ports":
        if parent in ("containers", "initContainers", "ephemeralContainers"):
            return LIST_KEYS["ports"]
        return ("port", "protocol") if parent == "spec" else None
    if field == "addresses":
        return LIST_KEYS["addresses"] if parent == "status" else None
    return LIST_KEYS.get(field)


def _parent_of(path: tuple) -> str | None:
    for el in reversed(path):
        if el.startswith("f:"):
            return el[2:]
    return None


_MAP, _LIST, _ITEM = object(), object(), object()   # markers of inner nodes in a flattened object
BEFORE_FIRST_APPLY = "before-first-apply"


class ApplyError(Exception):
    """A malformed applied configuration (→ 400/422 by the caller)."""


class Conflicts(Exception):
    """Conflicts of an apply: ``items`` is a list of (manager-entry, path)."""

    def __init__(self, items: list[tuple[dict, tuple]]):
        super().__init__(message(items))
        self.items = items

    def causes(self) -> list[dict]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {describe(e)}",
                 "field": path_string(p)} for e, p in self.items]


# ------------------------------------------------------------------------- paths and sets

def _jdump(v: Any) -> str:
    """Compact JSON with sorted keys, ASCII as the stdlib writes it (list-item keys such as
    ``k:{"containerPort":80,"protocol":"TCP"}``): orjson for the common case (5x faster; one of
    these per list item on every write), the stdlib for anything else."""
    try:
        out = orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
        if out.isascii():
            return out.decode()
    except TypeError:
        pass
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def item_key(field: str, item: Any, keys: tuple[str, ...] | None = None) -> str | None:
    """The ``k:{...}`` element of an associative-list item, or None when a key is missing."""
    if not isinstance(item, dict):
        return None
    key = {}
    for k in keys or LIST_KEYS[field]:
        v = item.get(k, KEY_DEFAULTS.get((field, k)))
        if v is None:
            return None
        key[k] = v
    return "k:" + _jdump(key)


def _keyed_items(field: str, items: list, fields: tuple[str, ...] | None = None) -> list[str] | None:
    """The key elements of every item, or None when the list cannot be keyed (a key missing,
    duplicates): such a list is then handled as atomic."""
    keys = []
    for it in items:
        k = item_key(field, it, fields)
        if k is None:
            return None
        keys.append(k)
    return keys if len(set(keys)) == len(keys) else None


def _walk(node: dict, path: tuple, out: dict) -> None:
    parent = _parent_of(path)
    for k, v in node.items():
        if v is None:
            continue
        p = path + ("f:" + k,)
        if isinstance(v, dict):
            if v and k not in ATOMIC_MAPS:
                out[p] = _MAP
                _walk(v, p, out)
            else:
                out[p] = v
        elif isinstance(v, list) and v and (lk := list_keys(parent, k)) and \
                (keys := _keyed_items(k, v, lk)) is not None:
            out[p] = _LIST
            for ek, it in zip(keys, v):
                ip = p + (ek,)
                out[ip] = _ITEM
                _walk(it, ip, out)
        elif isinstance(v, list) and v and k in SET_LISTS and \
                all(isinstance(x, (str, int, float, bool)) for x in v):
            out[p] = _LIST
            for x in v:
                out[p + ("v:" + _jdump(x),)] = x
        else:
            out[p] = v


def flatten(obj: dict, scope: str | None = None) -> dict:
    """path -> value for every node of ``obj`` that field sets can name (inner maps, lists and
    items map to markers). ``scope``: None (all), "main" (no status), "status" (status only)."""
    out: dict = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind") or v is None:
            continue
        if (scope == "main" and k == "status") or (scope == "status" and k != "status"):
            continue
        if k == "metadata" and isinstance(v, dict):
            md = {mk: mv for mk, mv in v.items() if mk not in IGNORED_META}
            if md:
                out[("f:metadata",)] = _MAP
                _walk(md, ("f:metadata",), out)
            continue
        _walk({k: v}, (), out)
    return out


def owned_paths(flat: dict) -> set:
    """The paths an applier of this (flattened) configuration owns: leaves and list items."""
    return {p for p, v in flat.items() if v is not _MAP and v is not _LIST}


def _same(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def compare(old: dict, new: dict) -> tuple[set, set]:
    """(modified ∪ added, removed) between two flattened objects: leaves whose value changed,
    leaves/items/maps that appeared; paths that disappeared."""
    changed = set()
    for p, v in new.items():
        if p not in old:
            if v is not _LIST:
                changed.add(p)
        elif v is not _MAP and v is not _LIST and v is not _ITEM:
            ov = old[p]
            if ov is _MAP and v == {}:
                continue
            if ov is _MAP or ov is _LIST or ov is _ITEM or not _same(ov, v):
                changed.add(p)
        elif v is _MAP and old[p] is not _MAP and old[p] != {}:
            changed.add(p)
    removed = {p for p in old if p not in new}
    return changed, removed


def to_fields_v1(paths: Iterable[tuple]) -> dict:
    """The FieldsV1 tree of a field set, keys in Kubernetes' order ("." first, then sorted).
    The paths are visited in sorted order, so every map is filled in its final order and
    nothing is sorted again; a member with children gets its "." before its first child."""
    members = paths if isinstance(paths, (set, frozenset)) else set(paths)
    root: dict = {}
    for p in sorted(members):
        node = root
        for i, el in enumerate(p):
            child = node.get(el)
            if child is None:
                if not node and i and p[:i] in members:
                    node["."] = {}
                child = node[el] = {}
            node = child
    return root


_TREES: dict[frozenset, dict] = {}   # field set -> its FieldsV1 tree, the newest 512 sets


def _tree_of(paths: set) -> dict:
    """to_fields_v1, kept for the sets that come again: every pod of a ReplicaSet, every
    agent's status of the same shape (13 of 35 us of a pod create's track_update). The tree is
    shared, as an unchanged entry is already shared between an object's versions: FieldsV1
    trees are read (from_fields_v1), never changed in place."""
    key = frozenset(paths)
    tree = _TREES.get(key)
    if tree is None:
        tree = to_fields_v1(key)
        if len(_TREES) >= 512:
            del _TREES[next(iter(_TREES))]
        _TREES[key] = tree
    return tree


def from_fields_v1(tree: Any, path: tuple = ()) -> set:
    out: set = set()
    if not isinstance(tree, dict):
        return out
    for k, v in tree.items():
        if k == ".":
            if path:
                out.add(path)
            continue
        p = path + (k,)
        if not v:
            out.add(p)
        else:
            out |= from_fields_v1(v, p)
    return out


def path_string(path: tuple) -> str:
    """Kubernetes' rendering of a field path: ``.spec.containers[name="c"].image``."""
    s = []
    for el in path:
        kind, _, rest = el.partition(":")
        if kind == "f":
            s.append("." + rest)
        elif kind == "k":
            try:
                key = json.loads(rest)
                s.append("[" + ",".join(f"{k}={_jdump(v)}" for k, v in key.items()) + "]")
            except ValueError:
                s.append("[" + rest + "]")
        elif kind == "v":
            s.append("[=" + rest + "]")
        else:
            s.append("[" + rest + "]")
    return "".join(s)


# ------------------------------------------------------------------------- entries

def entry_id(e: dict) -> tuple:
    """Who an entry is: appliers by name (+subresource), updaters also by apiVersion."""
    op = e.get("operation")
    return (e.get("manager", ""), op, None if op == "Apply" else e.get("apiVersion"), e.get("subresource") or "")


def describe(e: dict) -> str:
    s = json.dumps(e.get("manager", ""))
    if e.get("subresource"):
        s += f' with subresource {json.dumps(e["subresource"])}'
    if e.get("operation") == "Update":
        s += f' using {e.get("apiVersion")}'
    return s


def message(items: list[tuple[dict, tuple]]) -> str:
    if len(items) == 1:
        e, p = items[0]
        return f"Apply failed with 1 conflict: conflict with {describe(e)}: {path_string(p)}"
    by: dict[str, list[str]] = {}
    for e, p in items:
        by.setdefault(describe(e), []).append(path_string(p))
    lines = []
    for who in sorted(by):
        lines.append(f"conflicts with {who}:")
        lines.extend(f"- {p}" for p in by[who])
    return f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)


def decode(managed: Any) -> list[tuple[dict, set]]:
    """[(entry without fieldsV1, field set)] of a metadata.managedFields value (bad entries dropped)."""
    out = []
    if not isinstance(managed, list):
        return out
    for e in managed:
        if not isinstance(e, dict) or not e.get("manager") and not e.get("fieldsV1"):
            continue
        meta = {k: v for k, v in e.items() if k != "fieldsV1"}
        out.append((meta, from_fields_v1(e.get("fieldsV1"))))
    return out


def encode(entries: list[tuple[dict, set]]) -> list[dict]:
    out = []
    for meta, paths in entries:
        if not paths:
            continue
        e = {"manager": meta.get("manager", ""), "operation": meta.get("operation", "Update"),
             "apiVersion": meta.get("apiVersion", "")}
        if meta.get("time"):
            e["time"] = meta["time"]
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = _tree_of(paths)
        if meta.get("subresource"):
            e["subresource"] = meta["subresource"]
        out.append(e)
    return out


def scope_of(has_status_subresource: bool, subresource: str | None) -> str | None:
    if subresource == "status":
        return "status"
    return "main" if has_status_subresource else None


# ------------------------------------------------------------------------- update

def track_update(managed: Any, old: dict | None, new: dict, manager: str, api_version: str,
                 subresource: str | None, scope: str | None) -> list[dict]:
    """The managedFields after a non-apply write of ``new`` over ``old`` (None: a create) by
    ``manager``: it owns what it changed (taken from others), and every set loses what no
    longer exists. Entries whose set did not change are returned as they were (not encoded
    again): an agent's status update that changes values it already owns returns ``managed``."""
    fnew = flatten(new, scope)
    if old is None:
        changed, removed = set(fnew), set()
    else:
        changed, removed = compare(flatten(old, scope), fnew)
    changed = {p for p in changed if not (fnew.get(p) is _MAP and p[-1][2:] in _STRUCTURAL)}
    originals = [e for e in managed if isinstance(e, dict) and (e.get("manager") or e.get("fieldsV1"))] \
        if isinstance(managed, list) else []
    entries = decode(originals)
    if not changed and not removed:
        return encode(entries)
    exists = fnew.keys() if scope is None else None
    me = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": rfc3339(),
          "subresource": subresource or ""}
    ident = entry_id(me)
    out: list[dict] = []
    mine_old, mine = None, set()
    for orig, (meta, paths) in zip(originals, entries):
        if entry_id(meta) == ident:
            mine_old, mine = orig, paths
            continue
        kept = _prune(paths - changed, removed, exists)
        if kept == paths:
            out.append(orig)          # unchanged: the entry as it was, not encoded again
        elif kept:
            out.append(encode([(meta, kept)])[0])
    mine_new = _prune(mine | changed, removed, exists)
    if mine_new:                      # the writer's entry goes last, with the time of this write
        if mine_old is not None and mine_new == mine and "fieldsV1" in mine_old:
            out.append({**mine_old, "time": me["time"]})
        else:
            out.append(encode([(me, mine_new)])[0])
    return out


def _prune(paths: set, removed: set, exists) -> set:
    if removed:
        paths = {p for p in paths if p not in removed}
    if exists is not None:
        paths = {p for p in paths if p in exists}
    return paths


# ------------------------------------------------------------------------- apply

def _strip_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


def _check_config(node: dict, path: str, parent: str | None = None) -> None:
    for k, v in node.items():
        if isinstance(v, dict):
            _check_config(v, f"{path}.{k}", k)
        elif isinstance(v, list) and (lk := list_keys(parent, k)) and v:
            seen = set()
            for i, it in enumerate(v):
                if not isinstance(it, dict):
                    raise ApplyError(f"{path}.{k}: element {i}: associative list with keys has an element "
                                     f"that is not a map")
                ek = item_key(k, it, lk)
                if ek is None:
                    miss = next(x for x in lk if it.get(x) is None and (k, x) not in KEY_DEFAULTS)
                    raise ApplyError(f'{path}.{k}: element {i}: associative list with keys has an element '
                                     f'that omits key field "{miss}" (and doesn\'t have default value)')
                if ek in seen:
                    raise ApplyError(f"{path}.{k}: duplicate entries for key {path_string((ek,))}")
                seen.add(ek)
                _check_config(it, f"{path}.{k}{path_string((ek,))}", k)


def merge(live: Any, cfg: dict, field: str | None = None) -> dict:
    """``cfg`` merged into ``live`` (neither modified): maps field by field, associative lists
    item by item (live order kept, new items appended), everything else replaced."""
    out = dict(live) if isinstance(live, dict) else {}
    for k, v in cfg.items():
        lv = out.get(k)
        if isinstance(v, dict) and k not in ATOMIC_MAPS:
            out[k] = merge(lv, v, k)
        elif isinstance(v, list) and (lk := list_keys(field, k)) and isinstance(lv, list) and \
                _keyed_items(k, lv, lk) is not None:
            items = list(lv)
            index = {item_key(k, it, lk): i for i, it in enumerate(items)}
            for it in v:
                ek = item_key(k, it, lk)
                if ek in index:
                    items[index[ek]] = merge(items[index[ek]], it, k)
                else:
                    items.append(copy.deepcopy(it))
            out[k] = items
        elif isinstance(v, list) and k in SET_LISTS and isinstance(lv, list):
            out[k] = lv + [x for x in v if x not in lv]
        else:
            out[k] = copy.deepcopy(v)
    return out


def _remove(obj: dict, path: tuple) -> None:
    """Remove the node at ``path`` from ``obj`` in place, then the maps/lists it leaves empty.
    (``obj`` must own its containers along the path: see :func:`_own_path`.)"""
    chain = []
    node: Any = obj
    for el in path[:-1]:
        nxt = _child(node, el)
        if nxt is None:
            return
        chain.append((node, el))
        node = nxt
    _drop(node, path[-1])
    while chain and node in ({}, []):
        parent, el = chain.pop()
        if isinstance(parent, list):
            parent[:] = [x for x in parent if x is not node]
        else:
            _drop(parent, el)
        node = parent


def _child(node: Any, el: str) -> Any:
    kind, _, rest = el.partition(":")
    if kind == "f" and isinstance(node, dict):
        return node.get(rest)
    if kind == "k" and isinstance(node, list):
        for it in node:
            if isinstance(it, dict) and _key_matches(it, rest):
                return it
    return None


def _key_matches(item: dict, key_json: str) -> bool:
    key = json.loads(key_json)
    return all(item.get(k) == v or (item.get(k) is None and v == "TCP" and k == "protocol") for k, v in key.items())


def _drop(node: Any, el: str) -> None:
    kind, _, rest = el.partition(":")
    if kind == "f" and isinstance(node, dict):
        node.pop(rest, None)
    elif kind == "k" and isinstance(node, list):
        node[:] = [it for it in node if not (isinstance(it, dict) and _key_matches(it, rest))]
    elif kind == "v" and isinstance(node, list):
        val = json.loads(rest)
        node[:] = [x for x in node if not _same(x, val)]


def _own_path(obj: dict, path: tuple) -> None:
    """Copy the containers along ``path`` so that an in-place removal does not touch shared data."""
    node: Any = obj
    for el in path[:-1]:
        kind, _, rest = el.partition(":")
        if kind == "f" and isinstance(node, dict) and isinstance(node.get(rest), (dict, list)):
            node[rest] = copy.copy(node[rest])
            node = node[rest]
        elif kind == "k" and isinstance(node, list):
            for i, it in enumerate(node):
                if isinstance(it, dict) and _key_matches(it, rest):
                    node[i] = dict(it)
                    node = node[i]
                    break
            else:
                return
        else:
            return


def apply(live: dict | None, cfg: dict, managed: Any, manager: str, api_version: str,
          subresource: str | None, scope: str | None, force: bool = False) -> tuple[dict, list[dict]]:
    """Server-side apply of ``cfg`` by ``manager`` over ``live`` (None when the object does not
    exist yet). Returns (the merged object, not yet defaulted; the new managedFields, computed
    on the merged object). Raises :class:`Conflicts` (unless ``force``) or :class:`ApplyError`."""
    cfg = _strip_nulls(cfg)
    _check_config({k: v for k, v in cfg.items() if k not in ("apiVersion", "kind")}, "")
    live = live or {}
    entries = decode(managed)
    if live and not entries:
        # an object nobody tracked yet: what is there belongs to someone else
        fl = flatten(live, scope)
        if fl:
            entries = [({"manager": BEFORE_FIRST_APPLY, "operation": "Update", "apiVersion": api_version,
                         "time": rfc3339()}, {p for p in fl if fl[p] is not _LIST and
                                          not (fl[p] is _MAP and p[-1][2:] in _STRUCTURAL)})]
    ccfg = {k: v for k, v in cfg.items()
            if not ((scope == "main" and k == "status") or (scope == "status" and k not in
                                                              ("status", "apiVersion", "kind", "metadata")))}
    if scope == "status" and isinstance(ccfg.get("metadata"), dict):
        ccfg["metadata"] = {k: v for k, v in ccfg["metadata"].items() if k in IGNORED_META}
    applied = owned_paths(flatten(ccfg, scope))
    me = {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": rfc3339(),
          "subresource": subresource or ""}
    ident = entry_id(me)
    before = next((p for m, p in entries if entry_id(m) == ident), set())
    others = [(m, p) for m, p in entries if entry_id(m) != ident]
    merged = merge(live, ccfg)
    # what this manager applied before and no longer applies goes, unless someone else has it
    gone = before - applied
    if gone:
        held = set(applied)            # what is still applied (and its ancestors) stays too
        for _, p in others:
            held |= p
        held_prefixes = {q[:i] for q in held for i in range(1, len(q) + 1)}
        done: list[tuple] = []
        for p in sorted(gone, key=len):
            if p in held_prefixes or any(p[:len(d)] == d for d in done):
                continue
            _own_path(merged, p)
            _remove(merged, p)
            done.append(p)
    flive, fmerged = flatten(live, scope), flatten(merged, scope)
    changed, removed = compare(flive, fmerged)
    conflicts = []
    for m, p in others:
        hit = p & changed
        for q in sorted(hit):
            conflicts.append((m, q))
    if conflicts and not force:
        raise Conflicts(conflicts)
    exists = fmerged.keys()
    mine = {p for p in applied if p in exists}
    old = next((m for m, _ in entries if entry_id(m) == ident), None)
    if old is not None and old.get("time") and mine == before:
        me["time"] = old["time"]      # an unchanged entry keeps its time: a no-op stays a no-op
    out = []
    for m, p in entries:              # entries keep their order
        if entry_id(m) == ident:
            out.append((me, mine))
        else:
            p = _prune(p - changed, removed, exists)   # forced conflicts move to this manager
            if p:
                out.append((m, p))
    if old is None:
        out.append((me, mine))
    return merged, encode(out)
