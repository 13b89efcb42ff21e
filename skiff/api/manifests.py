"""Loading manifests for ``skiffctl apply -f FILE|DIR|-``.

``load_manifests(paths)`` reads files, directories (their ``*.yaml``, ``*.yml`` and
``*.json`` files, sorted by name, not recursive) and ``-`` (stdin), splits multi-document
YAML, expands ``List`` kinds (``kind: List`` and ``kind: PodList`` ...), and returns
:class:`Document` s. Nothing is returned partially: every document is parsed and validated
first, and one :class:`ManifestError` lists every problem, one line each::

    pods.yaml: document 2: spec.containers[0].image: Required value

Document indexes count from 1, as people count documents in a file; an item of a List
is reported as ``document 2: items[3].spec...``.

A document is checked as the API server checks it when it is created (:func:`server_check`),
so that nothing the server would accept is refused here: in the version the server stores
(an autoscaling/v1 HorizontalPodAutoscaler as autoscaling/v2), without the metadata the
server sets itself, and with the server's defaults filled in first (a ReplicationController's
selector from its template's labels, a Secret's ``stringData`` merged into ``data``...). What
needs the cluster's state (quota, existing objects, a Job's generated selector) is left to
the server.
"""
from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from skiff.api.errors import APIError
from skiff.api.validation import ValidationError, Warning, drop_nulls, validate
from skiff.errors import SkiffError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    source: str            # file path as given, or "-" / "<stdin>"
    index: int             # 1-based document index within the source
    obj: dict
    item: int | None = None  # index within a List document, if expanded from one
    warnings: list[Warning] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.source}: document {self.index}"

    def path_prefix(self) -> str:
        return f"items[{self.item}]." if self.item is not None else ""


class ManifestError(SkiffError):
    """One or more manifests are unreadable or invalid; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _expand_paths(paths: Iterable[str], problems: list[str]) -> list[str]:
    out = []
    for p in paths:
        if p == "-":
            out.append(p)
        elif os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith(MANIFEST_SUFFIXES)
                           and os.path.isfile(os.path.join(p, n)))
            if not names:
                problems.append(f"{p}: no .yaml, .yml or .json files in directory")
            out.extend(os.path.join(p, n) for n in names)
        elif os.path.exists(p):
            out.append(p)
        else:
            problems.append(f"{p}: no such file or directory")
    return out


class _Loader(yaml.SafeLoader):
    pass


def _no_dup_construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        try:
            seen.add(key)
        except TypeError:
            pass
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dup_construct_mapping)
# Kubernetes reads YAML 1.2-ish: keep timestamps as strings (creationTimestamp round-trips).
_Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _parse(source: str, text: str, problems: list[str]) -> list[tuple[int, Any]]:
    """(1-based index, object) for each non-empty document."""
    docs = []
    try:
        for i, d in enumerate(yaml.load_all(io.StringIO(text), Loader=_Loader), start=1):
            if d is not None:
                docs.append((i, d))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problems.append(f"{source}: {line}YAML syntax error: {what}")
        return []
    return docs


def _read(path: str) -> tuple[str, str]:
    if path == "-":
        return "<stdin>", sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return path, f.read()


def _is_list(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"].endswith("List") \
        and "items" in obj


def parse_manifests(paths: list[str]) -> list[Document]:
    """Read and split every source into Documents, without validating them (raises
    ManifestError for unreadable files and YAML syntax errors)."""
    problems: list[str] = []
    docs: list[Document] = []
    for path in _expand_paths(paths, problems):
        try:
            source, text = _read(path)
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}")
            continue
        for index, obj in _parse(source, text, problems):
            if _is_list(obj):
                items = obj.get("items")
                if not isinstance(items, list):
                    problems.append(f"{source}: document {index}: items: Invalid value: must be a list")
                    continue
                for j, item in enumerate(items):
                    docs.append(Document(source, index, item, item=j))
            else:
                docs.append(Document(source, index, obj))
    if problems:
        raise ManifestError(problems)
    return docs


def _stored_version(obj: dict) -> dict:
    """``obj`` converted to the version the server stores, for the versions it serves by
    conversion (skiff.api.resources.CONVERTED_VERSIONS); others as they are."""
    if (obj.get("apiVersion"), obj.get("kind")) == ("autoscaling/v1", "HorizontalPodAutoscaler"):
        from skiff.controller.hpa_v1 import to_v2
        if not isinstance(obj.get("metadata") or {}, dict):
            raise ValidationError([{"field": "metadata", "reason": "FieldValueInvalid",
                                    "message": "Invalid value: must be of type object"}])
        return to_v2(obj)
    return obj


def server_check(obj: dict) -> list[Warning]:
    """Check ``obj`` as the API server does when it creates it, as far as that needs no
    cluster state; return the warnings, or raise ValidationError (or APIError, for a body the
    version conversion refuses). ``obj`` is not changed, but for its fields given as null where
    a value is expected: they are unset, as the server's decoder leaves them."""
    from skiff.api.jsontree import json_copy
    from skiff.controller.admission import SERVER_SET_METADATA, apply_defaults
    drop_nulls(obj)
    view = _stored_version(json_copy(obj))
    md = view.get("metadata")
    if isinstance(md, dict):
        for k in SERVER_SET_METADATA:       # the server's own; a Job's uid makes its selector
            md.pop(k, None)
    plain = json_copy(view)
    try:
        apply_defaults(view)
    except (AttributeError, TypeError, ValueError, KeyError):
        view = plain        # a shape the defaults cannot walk: validation says what is wrong
    return validate(view)


def validate_all(docs: list[Document]) -> list[Document]:
    """Check every document as the server would (:func:`server_check`); set each one's
    ``warnings``. Raises one ManifestError listing every problem of every document, one line
    each."""
    problems = []
    for d in docs:
        prefix = f"{d.where}: {d.path_prefix()}"
        if not isinstance(d.obj, dict):
            problems.append(f"{prefix}Invalid value: a manifest must be a mapping, not {type(d.obj).__name__}")
            continue
        try:
            d.warnings = server_check(d.obj)
        except APIError as e:
            problems.append(f"{d.where}: {d.path_prefix()[:-1] + ': ' if d.item is not None else ''}{e.message}")
        except ValidationError as e:
            for c in e.causes:
                field = c.get("field") or ""
                if field:
                    problems.append(f"{prefix}{field}: {c['message']}")
                else:
                    problems.append(f"{d.where}: {c['message']}")
    if problems:
        raise ManifestError(problems)
    return docs


def load_manifests(paths: list[str]) -> list[Document]:
    """Read, split, expand and validate all manifests; all or nothing."""
    return validate_all(parse_manifests(paths))


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
