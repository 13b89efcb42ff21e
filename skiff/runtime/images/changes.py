"""Dockerfile instructions applied to an image config (``--change`` of import/commit).

Supported, as in ``docker import/commit --change``: CMD, ENTRYPOINT, ENV,
EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR. Arguments are read like
Dockerfile arguments: JSON arrays or shell form for CMD/ENTRYPOINT/VOLUME,
quotes and backslash escapes elsewhere, and ``$VAR``/``${VAR}``
(``${VAR:-default}``, ``${VAR:+alt}``) expanded from the config's Env for
the instructions where docker expands them.
"""

from __future__ import annotations

import copy
import json
import posixpath

from skiff.errors import InvalidArgument

SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER",
             "VOLUME", "WORKDIR")
_PROTOCOLS = ("tcp", "udp", "sctp")


def apply_changes(config: dict, changes: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of the OCI image ``config`` with ``changes`` applied in order.

    ``config`` is the whole image config; the instructions edit its ``config``
    section (created when missing). Raises InvalidArgument for an unsupported
    instruction or a malformed argument; the input is never modified.
    """
    result = copy.deepcopy(config)
    run = result.setdefault("config", {})
    if run is None:
        run = result["config"] = {}
    cmd_set = False
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest
        instr, rest = word.upper(), rest.strip()
        if not instr:
            raise InvalidArgument("invalid --change: empty instruction")
        if instr not in SUPPORTED:
            raise InvalidArgument(f'unsupported --change instruction "{word}": only '
                                  f"{', '.join(SUPPORTED)} are allowed")
        ctx = _Change(change, instr, _env_map(run.get("Env") or []))
        if not rest:
            raise ctx.error(f"{instr} requires at least one argument")
        if instr == "CMD":
            run["Cmd"] = _command(rest)
            cmd_set = True
        elif instr == "ENTRYPOINT":
            run["Entrypoint"] = _command(rest)
            if not cmd_set:
                run["Cmd"] = None  # like a Dockerfile: ENTRYPOINT resets an inherited CMD
        elif instr == "ENV":
            env = list(run.get("Env") or [])
            for key, value in ctx.pairs(rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            run["Env"] = env
        elif instr == "LABEL":
            labels = dict(run.get("Labels") or {})
            labels.update(ctx.pairs(rest))
            run["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(run.get("ExposedPorts") or {})
            for spec in ctx.words(rest):
                for port in ctx.ports(spec):
                    ports[port] = {}
            run["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(run.get("Volumes") or {})
            paths = _json_list(rest)
            for path in paths if paths is not None else ctx.words(rest):
                if not path.strip():
                    raise ctx.error("VOLUME specified can not be an empty string")
                vols[path] = {}
            run["Volumes"] = vols
        elif instr == "WORKDIR":
            path = ctx.single(rest)
            base = run.get("WorkingDir") or "/"
            run["WorkingDir"] = posixpath.normpath(posixpath.join(base, path))
        elif instr == "USER":
            run["User"] = ctx.single(rest)
        elif instr == "STOPSIGNAL":
            sig = ctx.single(rest)
            if not _valid_signal(sig):
                raise ctx.error(f'invalid signal "{sig}"')
            run["StopSignal"] = sig
    return result


def _json_list(rest: str) -> list[str] | None:
    """A JSON array of strings, or None when ``rest`` is not one (shell form)."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _command(rest: str) -> list[str]:
    value = _json_list(rest)
    return value if value is not None else ["/bin/sh", "-c", rest]


def _env_map(env: list[str]) -> dict[str, str]:
    out = {}
    for e in env:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def _valid_signal(sig: str) -> bool:
    import signal

    if sig.isdigit():
        return 0 < int(sig) <= 64
    name = sig.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith(("SIGRTMIN+", "SIGRTMAX-")) and name[9:].isdigit():
        return True
    return name in signal.Signals.__members__


class _Change:
    """Argument parsing for one instruction, with its error messages."""

    def __init__(self, text: str, instr: str, env: dict[str, str]):
        self.text, self.instr, self.env = text, instr, env

    def error(self, why: str) -> InvalidArgument:
        return InvalidArgument(f'invalid --change "{self.text}": {why}')

    def words(self, s: str, split: bool = True) -> list[str]:
        """Shell-like words: quotes, backslash escapes and $VAR expansion."""
        words: list[str] = []
        cur: list[str] = []
        in_word = False
        i, n = 0, len(s)
        while i < n:
            c = s[i]
            if split and c in " \t":
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                i += 1
                continue
            in_word = True
            if c == "\\":
                cur.append(s[i + 1] if i + 1 < n else c)
                i += 2
            elif c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise self.error("unterminated single quote")
                cur.append(s[i + 1:j])
                i = j + 1
            elif c == '"':
                i += 1
                while i < n and s[i] != '"':
                    if s[i] == "\\" and i + 1 < n and s[i + 1] in '"\\$':
                        cur.append(s[i + 1])
                        i += 2
                    elif s[i] == "$":
                        value, i = self._expand(s, i)
                        cur.append(value)
                    else:
                        cur.append(s[i])
                        i += 1
                if i >= n:
                    raise self.error("unterminated double quote")
                i += 1
            elif c == "$":
                value, i = self._expand(s, i)
                cur.append(value)
            else:
                cur.append(c)
                i += 1
        if in_word:
            words.append("".join(cur))
        return words

    def _expand(self, s: str, i: int) -> tuple[str, int]:
        """Expand the variable at ``s[i] == '$'``; return (value, next index)."""
        n = len(s)
        if i + 1 < n and s[i + 1] == "{":
            j = s.find("}", i + 2)
            if j < 0:
                raise self.error("missing '}' in variable substitution")
            body = s[i + 2:j]
            name, op, word = body, "", ""
            for candidate in (":-", ":+"):
                if candidate in body:
                    name, _, word = body.partition(candidate)
                    op = candidate
                    break
            if not _is_name(name):
                raise self.error(f'bad substitution "${{{body}}}"')
            value = self.env.get(name, "")
            if op == ":-":
                value = value or word
            elif op == ":+":
                value = word if value else ""
            return value, j + 1
        j = i + 1
        while j < n and (s[j] == "_" or s[j].isalnum()) and (j > i + 1 or not s[j].isdigit()):
            j += 1
        if j == i + 1:
            return "$", i + 1
        return self.env.get(s[i + 1:j], ""), j

    def single(self, rest: str) -> str:
        words = self.words(rest)
        if len(words) != 1:
            raise self.error(f"{self.instr} requires exactly one argument")
        return words[0]

    def pairs(self, rest: str) -> list[tuple[str, str]]:
        """``K=V ...`` pairs, or the legacy ``K V`` form (value = rest of the line)."""
        first = rest.split(None, 1)[0]
        if "=" not in first:
            key, _, value = rest.partition(" ")
            if "\t" in key:
                key, _, more = key.partition("\t")
                value = more + " " + value
            value = value.strip()
            if not value:
                raise self.error(f"{self.instr} must have two arguments")
            words = self.words(value, split=False)
            return [(self._key(key), words[0] if words else "")]
        out = []
        for word in self.words(rest):
            key, eq, value = word.partition("=")
            if not eq:
                raise self.error(f'{self.instr} names can not be blank or lack "=": "{word}"')
            out.append((self._key(key), value))
        return out

    def _key(self, key: str) -> str:
        if not key:
            raise self.error(f"{self.instr} names can not be blank")
        if self.instr == "ENV" and ("=" in key or " " in key):
            raise self.error(f'invalid variable name "{key}"')
        return key

    def ports(self, spec: str) -> list[str]:
        port, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in _PROTOCOLS:
            raise self.error(f'invalid protocol "{proto}" in "{spec}"')
        lo, dash, hi = port.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise self.error(f'invalid port "{spec}"')
        first, last = int(lo), int(hi) if dash else int(lo)
        if not 0 < first <= last <= 65535:
            raise self.error(f'invalid port "{spec}"')
        return [f"{p}/{proto}" for p in range(first, last + 1)]


def _is_name(name: str) -> bool:
    return bool(name) and not name[0].isdigit() and all(c == "_" or c.isalnum() for c in name)
