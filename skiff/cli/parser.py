"""A small docker-style flag parser.

argparse costs ~7 ms to import, a quarter of the whole `skiff run` budget, so
the CLI parses its flags here: `-it` clusters, `-eK=V` and `--name=N` attached
values, repeatable flags, `--` and, for run/exec, options only before the first
positional argument (everything after the image is the container's command).
"""

from __future__ import annotations


from ..errors import SkiffError
from ..runtime.record import Record


class UsageError(SkiffError):
    exit_code = 125


class Opt(Record):
    names: tuple[str, ...]
    dest: str
    kind: str = "bool"          # bool | str | int | list
    help: str = ""
    metavar: str = ""
    default: object = None


class Command(Record):
    name: str
    usage: str
    help: str
    opts: list[Opt] = []
    min_args: int = 0
    max_args: int | None = None
    interspersed: bool = True

    def format_help(self) -> str:
        lines = [f"\nUsage:  skiff {self.usage}\n", self.help, "", "Options:"]
        for o in self.opts:
            flags = ", ".join(o.names)
            if o.kind != "bool":
                flags += f" {o.metavar or o.kind}"
            lines.append(f"  {flags:<28} {o.help}")
        lines.append(f"  {'-h, --help':<28} Show this help")
        return "\n".join(lines) + "\n"


class HelpRequested(Exception):
    pass


def parse(cmd: Command, argv: list[str]) -> tuple[dict, list[str]]:
    by_name = {n: o for o in cmd.opts for n in o.names}
    values: dict = {}
    for o in cmd.opts:
        values[o.dest] = list(o.default or []) if o.kind == "list" else (
            False if o.kind == "bool" and o.default is None else o.default)
    args: list[str] = []

    def take(o: Opt, name: str, value: str | None) -> None:
        if o.kind == "bool":
            values[o.dest] = value is None or value.lower() in ("1", "true", "yes")
        elif o.kind == "int":
            try:
                values[o.dest] = int(value)
            except (TypeError, ValueError):
                raise UsageError(f'invalid argument "{value}" for "{name}" flag: not a number') from None
        elif o.kind == "list":
            values[o.dest].append(value)
        else:
            values[o.dest] = value

    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args += argv[i:]
            break
        if a == "--help" or (a == "-h" and "-h" not in by_name):
            raise HelpRequested()
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a.partition("=")
            o = by_name.get(name)
            if o is None:
                raise UsageError(f"unknown flag: {name}\nSee 'skiff {cmd.name} --help'.")
            if o.kind != "bool" and not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value, i = argv[i], i + 1
            take(o, name, value if eq or o.kind != "bool" else None)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                name = "-" + a[j]
                o = by_name.get(name)
                if o is None:
                    raise UsageError(f"unknown shorthand flag: '{a[j]}' in {a}\nSee 'skiff {cmd.name} --help'.")
                if o.kind == "bool":
                    take(o, name, None)
                    j += 1
                    continue
                value = a[j + 1:]
                if value.startswith("="):
                    value = value[1:]
                if not value:
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: '{a[j]}' in {a}")
                    value, i = argv[i], i + 1
                take(o, name, value)
                break
        else:
            args.append(a)
            if not cmd.interspersed:
                args += argv[i:]
                break
    if len(args) < cmd.min_args or (cmd.max_args is not None and len(args) > cmd.max_args):
        need = (f"at least {cmd.min_args}" if cmd.max_args is None else
                f"exactly {cmd.min_args}" if cmd.min_args == cmd.max_args else
                f"between {cmd.min_args} and {cmd.max_args}")
        raise UsageError(f'"skiff {cmd.name}" requires {need} argument{"s" if cmd.min_args != 1 else ""}.'
                         f"\nSee 'skiff {cmd.name} --help'.\n\nUsage:  skiff {cmd.usage}")
    return values, args
