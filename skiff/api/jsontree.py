"""Helpers for JSON-shaped trees (dicts, lists and scalars), the form of every API object."""
from __future__ import annotations

from sys import intern as _intern
from typing import Any


def json_copy(node: Any) -> Any:
    """A deep copy of a JSON-shaped tree: new dicts and lists, the scalars shared (they are
    immutable). About five times faster than copy.deepcopy, which keeps a memo of every node."""
    if isinstance(node, dict):
        return {k: json_copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [json_copy(v) for v in node]
    return node


class Sharer:
    """Hash-consing for read-only caches: equal subtrees of many objects become one object.

    Ten thousand pods of one template carry ten thousand equal ``containers`` lists, toleration
    lists, owner references, label maps and status conditions (timestamps are to the second);
    an informer that keeps them through ``share`` holds each once (10 000 running pods:
    ~119 MB of dicts -> ~20 MB). Map keys and short strings are interned.

    ``share(obj)`` returns ``obj`` rebuilt (``obj`` must be the caller's own, freshly decoded:
    its inner parts are reused): the object's top level and its first-level maps (metadata,
    spec, status: unique per object) are its own, what is below them is shared. Map keys are
    interned (json.loads makes new key strings for every document: ~1.7 KB a pod). The objects
    must never be modified afterwards: a change would show in every object sharing that part.

    A subtree is known by its items' values (scalars, with their type: 1, 1.0 and True differ)
    and the identities of its already-shared children. The table holds at most ``capacity``
    subtrees (oldest dropped first); each key only names children that its value keeps alive,
    so an identity in a key can never be reused by another object.
    """

    __slots__ = ("_memo", "capacity")

    def __init__(self, capacity: int = 8192):
        self._memo: dict[tuple, Any] = {}
        self.capacity = capacity

    def share(self, obj: Any) -> Any:
        if type(obj) is not dict:
            return obj
        intern = _intern
        out = {}
        for k, v in obj.items():
            if type(v) is dict:
                inner = {}
                for kk, x in v.items():
                    t = type(x)
                    if t is dict or t is list:
                        x = self._canon(x)
                    elif t is str and len(x) < 64:
                        x = intern(x)
                    inner[intern(kk)] = x
                v = inner
            elif type(v) is str and len(v) < 64:
                v = intern(v)
            out[intern(k)] = v
        return out

    def _canon(self, node: Any) -> Any:
        items: list = []
        if type(node) is dict:
            for k, v in node.items():
                t = type(v)
                if t is dict or t is list:
                    node[k] = v = self._canon(v)
                    items.append((k, t, id(v)))
                else:
                    if t is str and len(v) < 64:
                        node[k] = v = _intern(v)
                    items.append((k, t, v))
            key = (True, tuple(items))
        else:
            for i, v in enumerate(node):
                t = type(v)
                if t is dict or t is list:
                    node[i] = v = self._canon(v)
                    items.append((t, id(v)))
                else:
                    items.append((t, v))
            key = (False, tuple(items))
        try:
            found = self._memo.get(key)
        except TypeError:       # an unhashable scalar: not JSON; keep it as it is
            return node
        if found is not None:
            return found
        if key[0]:      # a new shape: kept with interned keys
            node = {_intern(k): v for k, v in node.items()}
        memo = self._memo
        if len(memo) >= self.capacity:
            del memo[next(iter(memo))]
        memo[key] = node
        return node
