"""A small kubectl-style flag parser (argparse costs several ms to import).

Flags may appear anywhere among the arguments (``get pods -o wide``, ``get -o wide pods``),
long flags take ``--name value`` or ``--name=value``, short ones ``-o wide``, ``-owide`` or
``-o=wide``, booleans accept ``--wait=false``. ``--`` ends the flags.
"""
from __future__ import annotations

from skiff.errors import SkiffError


class UsageError(SkiffError):
    exit_code = 1


class HelpRequested(Exception):
    pass


class Flag:
    __slots__ = ("names", "dest", "kind", "default", "help", "metavar", "noopt")

    def __init__(self, names, dest, kind="bool", default=None, help="", metavar="", noopt=None):
        self.names = tuple(names.split()) if isinstance(names, str) else tuple(names)
        self.dest = dest
        self.kind = kind  # bool | str | int | list | optint (-v with an optional value) | optstr (--flag[=v])
        self.default = default
        self.help = help
        self.metavar = metavar
        self.noopt = noopt      # optstr: the value of a bare --flag (pflag's NoOptDefVal)


TRUE = ("1", "true", "t", "yes", "y")
FALSE = ("0", "false", "f", "no", "n")


def defaults(flags: list[Flag]) -> dict:
    out = {}
    for f in flags:
        if f.kind == "list":
            out[f.dest] = list(f.default or [])
        elif f.kind == "bool":
            out[f.dest] = bool(f.default)
        else:
            out[f.dest] = f.default
    return out


def parse(argv: list[str], flags: list[Flag], values: dict | None = None, cmd: str = "") -> tuple[dict, list[str]]:
    by_name = {n: f for f in flags for n in f.names}
    values = defaults(flags) if values is None else values
    args: list[str] = []
    see = f"\nSee 'skiffctl {cmd + ' ' if cmd else ''}--help' for usage."

    def take(f: Flag, name: str, value: str | None) -> None:
        if f.kind == "bool":
            if value is None:
                values[f.dest] = True
            elif value.lower() in TRUE:
                values[f.dest] = True
            elif value.lower() in FALSE:
                values[f.dest] = False
            else:
                raise UsageError(f'error: invalid argument "{value}" for "{name}" flag: '
                                 f'strconv.ParseBool: parsing "{value}": invalid syntax{see}')
        elif f.kind in ("int", "optint"):
            try:
                values[f.dest] = int(value)
            except (TypeError, ValueError):
                raise UsageError(f'error: invalid argument "{value}" for "{name}" flag: '
                                 f'strconv.ParseInt: parsing "{value}": invalid syntax{see}') from None
        elif f.kind == "list":
            values[f.dest].append(value)
        else:
            values[f.dest] = value

    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args += argv[i:]
            break
        if a in ("-h", "--help"):
            raise HelpRequested()
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a.partition("=")
            f = by_name.get(name)
            if f is None:
                raise UsageError(f"error: unknown flag: {name}{see}")
            if eq:
                take(f, name, value)
            elif f.kind == "bool":
                take(f, name, None)
            elif f.kind == "optstr":
                take(f, name, f.noopt)
            elif f.kind == "optint" and (i >= len(argv) or not argv[i].isdigit()):
                take(f, name, "6")
            else:
                if i >= len(argv):
                    raise UsageError(f"error: flag needs an argument: {name}{see}")
                take(f, name, argv[i])
                i += 1
        elif a.startswith("-") and len(a) > 1 and a != "-":
            j = 1
            while j < len(a):
                name = "-" + a[j]
                f = by_name.get(name)
                if f is None:
                    raise UsageError(f"error: unknown shorthand flag: '{a[j]}' in {a}{see}")
                rest = a[j + 1:]
                if f.kind == "bool":
                    if rest.startswith("="):
                        take(f, name, rest[1:])
                        break
                    take(f, name, None)
                    j += 1
                    continue
                if rest.startswith("="):
                    rest = rest[1:]
                if not rest:
                    if f.kind == "optint" and (i >= len(argv) or not argv[i].isdigit()):
                        rest = "6"
                    else:
                        if i >= len(argv):
                            raise UsageError(f"error: flag needs an argument: '{a[j]}' in {a}{see}")
                        rest, i = argv[i], i + 1
                take(f, name, rest)
                break
        else:
            args.append(a)
    return values, args


def format_flags(flags: list[Flag]) -> str:
    lines = []
    for f in flags:
        names = ", ".join(f.names)
        if f.kind not in ("bool",):
            names += " " + (f.metavar or f.kind.upper())
        lines.append(f"    {names:<32} {f.help}")
    return "\n".join(lines)


def parse_duration(s: str) -> float:
    """A Go duration ("10s", "1m30s", "24h", "500ms") or a bare number of seconds."""
    import re
    s = s.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise UsageError(f'error: invalid duration "{s}" (use for example 10s, 5m, 1h30m)')
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * mult[u] for n, u in parts)
