"""A subset of Go's text/template, enough for `inspect -f` as people use it with docker.

Supported actions: {{.A.B}}, {{json .A}}, {{index .A "key"}}, {{upper .X}}, {{lower .X}},
{{join .List ","}}, {{println .X}}; values print the way Go prints them
(true/false, map[k:v], [a b], <no value>).
"""

from __future__ import annotations

import json
import re
import shlex

from ..errors import InvalidArgument

_ACTION = re.compile(r"(\s*){{(-?)\s*(.*?)\s*(-?)}}(\s*)")


def go_str(v) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def _field(obj, path: str):
    if path == ".":
        return obj
    cur = obj
    for part in path.lstrip(".").split("."):
        if isinstance(cur, dict):
            if part not in cur:
                # docker's inspect keys are case-sensitive, but be kind to .state.pid
                match = next((k for k in cur if k.lower() == part.lower()), None)
                if match is None:
                    return None
                part = match
            cur = cur[part]
        else:
            return None
    return cur


def _arg(obj, token: str):
    if token.startswith("."):
        return _field(obj, token)
    if token.startswith('"') or token.startswith("'"):
        return token[1:-1]
    if token.lstrip("-").isdigit():
        return int(token)
    raise InvalidArgument(f'template: unexpected "{token}"')


def _eval(obj, expr: str) -> str:
    try:
        words = shlex.split(expr, posix=False)
    except ValueError as e:
        raise InvalidArgument(f"template: {e}") from None
    if not words:
        raise InvalidArgument("template: missing value for command")
    fn, rest = words[0], words[1:]
    if fn.startswith("."):
        return go_str(_field(obj, fn))
    vals = [_arg(obj, w) for w in rest]
    if fn == "json":
        return json.dumps(vals[0] if vals else None, separators=(",", ":"), ensure_ascii=False)
    if fn == "index":
        cur = vals[0]
        for key in vals[1:]:
            cur = cur[key] if isinstance(cur, (dict, list)) and (
                key in cur if isinstance(cur, dict) else -len(cur) <= key < len(cur)) else None
        return go_str(cur)
    if fn in ("upper", "lower"):
        s = go_str(vals[0])
        return s.upper() if fn == "upper" else s.lower()
    if fn == "join":
        return str(vals[1]).join(go_str(x) for x in (vals[0] or []))
    if fn == "println":
        return " ".join(go_str(v) for v in vals) + "\n"
    raise InvalidArgument(f'template: function "{fn}" not defined')


def render(template: str, obj) -> str:
    def action(m):
        before = "" if m.group(2) else m.group(1)   # "{{-" trims the spaces before
        after = "" if m.group(4) else m.group(5)    # "-}}" trims the spaces after
        return before + _eval(obj, m.group(3)) + after
    return _ACTION.sub(action, template)
