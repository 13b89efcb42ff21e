"""A fast "valid or not" check for the JSON Schemas in ``schemas/``.

:func:`compile_schema` turns a (``$ref``-inlined) Draft 2020-12 schema into plain Python
closures that answer only whether an instance is valid, with jsonschema's semantics
(``Draft202012Validator(schema).is_valid(instance)``, format not asserted). It produces no
error messages: :func:`skiff.api.validation.validate` runs jsonschema's ``iter_errors``
only when this check says "invalid".

Only the subset of JSON Schema the skiff schemas use is implemented. Any other keyword
(and a ``$ref`` left in place, as ``inline_refs`` does for a recursive reference) raises
:class:`UnsupportedSchema`, so that the caller falls back to jsonschema for that schema.
"""
from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable

Check = Callable[[Any], bool]

__all__ = ["UnsupportedSchema", "compile_schema", "json_equal"]


class UnsupportedSchema(ValueError):
    """The schema uses something :func:`compile_schema` does not implement."""


# Keywords that never assert anything in Draft 2020-12 (as jsonschema runs it: without a
# format checker). "$defs"/"definitions" are containers that only matter through "$ref".
_IGNORED = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "$anchor",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "format",
})

_IMPLEMENTED = frozenset({
    "type", "properties", "additionalProperties", "required", "maxProperties", "minProperties",
    "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern",
    "minimum", "maximum",
    "const", "enum", "anyOf", "oneOf", "allOf",
})

_MISSING = object()


# ---------------------------------------------------------------- equality (jsonschema's `equal`)

def _unbool(x, true=object(), false=object()):
    if x is True:
        return true
    if x is False:
        return false
    return x


def json_equal(one, two) -> bool:
    """jsonschema's ``_utils.equal``: True != 1, 1 == 1.0, deep for sequences and mappings."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(i, j) for i, j in zip(one, two))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(k in two and json_equal(v, two[k]) for k, v in one.items())
    return _unbool(one) == _unbool(two)


# ---------------------------------------------------------------- types

_is_str = str.__instancecheck__      # C-level isinstance(x, str)
_is_dict = dict.__instancecheck__
_is_list = list.__instancecheck__
_is_bool = bool.__instancecheck__
_Number = numbers.Number


def _is_null(x) -> bool:
    return x is None


def _is_integer(x) -> bool:
    t = type(x)
    if t is int:
        return True
    if t is bool:
        return False
    if isinstance(x, int):
        return not isinstance(x, bool)
    return isinstance(x, float) and x.is_integer()


def _is_number(x) -> bool:
    t = type(x)
    if t is int or t is float:
        return True
    if isinstance(x, bool):
        return False
    return isinstance(x, _Number)


_TYPES: dict[str, Check] = {
    "string": _is_str, "object": _is_dict, "array": _is_list, "boolean": _is_bool,
    "null": _is_null, "integer": _is_integer, "number": _is_number,
}


def _type_check(types) -> Check:
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list) or not types:
        raise UnsupportedSchema(f"type {types!r}")
    for t in types:
        if t not in _TYPES:
            raise UnsupportedSchema(f"unknown type {t!r}")
    fns = tuple(dict.fromkeys(_TYPES[t] for t in types))
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        if b is _is_null:
            return lambda x: x is None or a(x)
        return lambda x: a(x) or b(x)

    def any_type(x):
        for f in fns:
            if f(x):
                return True
        return False
    return any_type


# ---------------------------------------------------------------- combinators

def _true(x) -> bool:
    return True


def _false(x) -> bool:
    return False


def _all(checks: list[Check]) -> Check | None:
    """One check for all of ``checks`` (None: always valid)."""
    checks = [c for c in checks if c is not None]
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    cs = tuple(checks)

    def all_of(x):
        for c in cs:
            if not c(x):
                return False
        return True
    return all_of


def _guard(pred: Check, check: Check | None, guaranteed: bool) -> Check | None:
    """``check`` applied only when ``pred(x)`` (jsonschema's "keyword applies only to this
    type"); ``guaranteed``: a preceding "type" keyword already ensures pred(x)."""
    if check is None or guaranteed:
        return check
    return lambda x: not pred(x) or check(x)


def _sub(schema) -> Check:
    c = _compile(schema)
    return _true if c is None else c


# ---------------------------------------------------------------- keyword groups

def _object_check(schema: dict) -> Check | None:
    props = schema.get("properties", _MISSING)
    ap = schema.get("additionalProperties", _MISSING)
    req = schema.get("required", _MISSING)
    maxp = schema.get("maxProperties", _MISSING)
    minp = schema.get("minProperties", _MISSING)
    checks: list[Check] = []

    if req is not _MISSING:
        if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
            raise UnsupportedSchema(f"required {req!r}")
        if req:
            if len(req) == 1:
                r0 = req[0]
                checks.append(lambda x: r0 in x)
            else:
                rset = frozenset(req)
                checks.append(lambda x: x.keys() >= rset)
    for name, bound in (("maxProperties", maxp), ("minProperties", minp)):
        if bound is not _MISSING:
            if not _is_integer(bound) or bound < 0:
                raise UnsupportedSchema(f"{name} {bound!r}")
            if name == "maxProperties":
                checks.append(lambda x, b=bound: len(x) <= b)
            elif bound > 0:
                checks.append(lambda x, b=bound: len(x) >= b)

    if props is _MISSING:
        props = {}
    if not isinstance(props, dict):
        raise UnsupportedSchema(f"properties {props!r}")
    # key -> check, or None when the property's schema accepts anything
    pchecks = {k: _compile(v) for k, v in props.items()}
    if ap is _MISSING or ap is True or ap == {}:
        apc: Any = None
    elif ap is False:
        apc = False
    elif isinstance(ap, dict):
        apc = _compile(ap)
    else:
        raise UnsupportedSchema(f"additionalProperties {ap!r}")

    active = {k: c for k, c in pchecks.items() if c is not None}
    if not pchecks and apc is None:
        pass
    elif not pchecks and apc is False:
        checks.append(lambda x: not x)
    elif not pchecks:  # additionalProperties: schema for every value
        ac = apc
        checks.append(lambda x: all(map(ac, x.values())))
    elif apc is None:
        if active:
            get = active.get

            def props_only(x):
                for k, v in x.items():
                    c = get(k)
                    if c is not None and not c(v):
                        return False
                return True
            checks.append(props_only)
    elif apc is False:
        get = pchecks.get
        M = _MISSING

        def props_closed(x):
            for k, v in x.items():
                c = get(k, M)
                if c is None:
                    continue
                if c is M or not c(v):
                    return False
            return True
        checks.append(props_closed)
    else:
        get = pchecks.get
        M = _MISSING
        ac = apc

        def props_additional(x):
            for k, v in x.items():
                c = get(k, M)
                if c is None:
                    continue
                if c is M:
                    if not ac(v):
                        return False
                elif not c(v):
                    return False
            return True
        checks.append(props_additional)
    return _all(checks)


def _array_check(schema: dict) -> Check | None:
    checks: list[Check] = []
    mini = schema.get("minItems", _MISSING)
    maxi = schema.get("maxItems", _MISSING)
    for name, bound in (("minItems", mini), ("maxItems", maxi)):
        if bound is not _MISSING and (not _is_integer(bound) or bound < 0):
            raise UnsupportedSchema(f"{name} {bound!r}")
    if mini is not _MISSING and mini > 0:
        checks.append(lambda x, b=mini: len(x) >= b)
    if maxi is not _MISSING:
        checks.append(lambda x, b=maxi: len(x) <= b)
    if "items" in schema:
        items = schema["items"]
        if items is False:
            checks.append(lambda x: not x)
        elif items is True or isinstance(items, dict):
            ic = _compile(items)
            if ic is not None:
                checks.append(lambda x: all(map(ic, x)))
        else:  # a list ("items" as draft 2019-09's prefixItems) is not 2020-12
            raise UnsupportedSchema(f"items {items!r}")
    return _all(checks)


def _string_check(schema: dict) -> Check | None:
    checks: list[Check] = []
    for name in ("minLength", "maxLength"):
        bound = schema.get(name, _MISSING)
        if bound is _MISSING:
            continue
        if not _is_integer(bound) or bound < 0:
            raise UnsupportedSchema(f"{name} {bound!r}")
        if name == "minLength":
            if bound > 0:
                checks.append(lambda x, b=bound: len(x) >= b)
        else:
            checks.append(lambda x, b=bound: len(x) <= b)
    if "pattern" in schema:
        p = schema["pattern"]
        if not isinstance(p, str):
            raise UnsupportedSchema(f"pattern {p!r}")
        search = re.compile(p).search   # jsonschema: re.search(pattern, instance)
        checks.append(lambda x: search(x) is not None)
    return _all(checks)


def _number_check(schema: dict) -> Check | None:
    checks: list[Check] = []
    if "minimum" in schema:
        mn = schema["minimum"]
        if not _is_number(mn):
            raise UnsupportedSchema(f"minimum {mn!r}")
        checks.append(lambda x: not (x < mn))   # jsonschema: error when instance < minimum
    if "maximum" in schema:
        mx = schema["maximum"]
        if not _is_number(mx):
            raise UnsupportedSchema(f"maximum {mx!r}")
        checks.append(lambda x: not (x > mx))
    return _all(checks)


def _const_check(value) -> Check:
    if isinstance(value, str):
        return lambda x: x == value     # json_equal with a str operand is ==
    return lambda x: json_equal(x, value)


def _enum_check(values) -> Check:
    if not isinstance(values, list):
        raise UnsupportedSchema(f"enum {values!r}")
    vals = tuple(values)
    if all(type(v) is str for v in vals):
        vset = frozenset(vals)

        def enum_str(x):
            if type(x) is str:
                return x in vset
            return any(json_equal(v, x) for v in vals)
        return enum_str
    return lambda x: any(json_equal(v, x) for v in vals)


def _subschemas(schema: dict, key: str) -> list[Check]:
    subs = schema[key]
    if not isinstance(subs, list) or not subs:
        raise UnsupportedSchema(f"{key} {subs!r}")
    return [_sub(s) for s in subs]


# ---------------------------------------------------------------- compile

def _compile(schema) -> Check | None:
    """A check for ``schema``, or None when the schema accepts everything."""
    if schema is True:
        return None
    if schema is False:
        return _false
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"schema {schema!r}")
    for k in schema:
        if k not in _IMPLEMENTED and k not in _IGNORED and not (isinstance(k, str) and k.startswith("x-")):
            raise UnsupportedSchema(f"keyword {k!r}")  # includes a $ref left in place

    checks: list[Check | None] = []
    types = schema.get("type", _MISSING)
    if types is not _MISSING:
        checks.append(_type_check(types))
        tset = {types} if isinstance(types, str) else set(types)
    else:
        tset = set()

    checks.append(_guard(_is_dict, _object_check(schema), tset == {"object"}))
    checks.append(_guard(_is_list, _array_check(schema), tset == {"array"}))
    checks.append(_guard(_is_str, _string_check(schema), tset == {"string"}))
    checks.append(_guard(_is_number, _number_check(schema), bool(tset) and tset <= {"integer", "number"}))

    if "const" in schema:
        checks.append(_const_check(schema["const"]))
    if "enum" in schema:
        checks.append(_enum_check(schema["enum"]))
    if "allOf" in schema:
        checks.append(_all(_subschemas(schema, "allOf")))
    if "anyOf" in schema:
        subs = tuple(_subschemas(schema, "anyOf"))
        if _true in subs:
            pass
        else:
            def any_of(x):
                for c in subs:
                    if c(x):
                        return True
                return False
            checks.append(any_of)
    if "oneOf" in schema:
        one = tuple(_subschemas(schema, "oneOf"))

        def one_of(x):
            found = False
            for c in one:
                if c(x):
                    if found:
                        return False
                    found = True
            return found
        checks.append(one_of)
    return _all(checks)


def compile_schema(schema: dict | bool) -> Check:
    """A function ``check(instance) -> bool`` equal to
    ``jsonschema.Draft202012Validator(schema).is_valid(instance)`` (format not asserted).
    Raises :class:`UnsupportedSchema` for a keyword it does not implement (a ``$ref`` too)."""
    c = _compile(schema)
    return _true if c is None else c
