"""skiff ps: list containers."""

from __future__ import annotations

import shlex
import time

from .parser import Command, Opt
from .table import ago, human_duration, print_table

COMMAND = Command("ps", "ps [OPTIONS]", "List containers", [
    Opt(("-a", "--all"), "all", help="Show all containers (default shows just running)"),
    Opt(("-q", "--quiet"), "quiet", help="Only display container IDs"),
    Opt(("--no-trunc",), "no_trunc", help="Don't truncate output"),
], max_args=0)


def status_text(st) -> str:
    from ..runtime.containers.state import parse_rfc3339
    if st.running:
        return "Up " + human_duration(time.time() - parse_rfc3339(st.started_at))
    if st.status == "exited":
        return f"Exited ({st.exit_code}) " + ago(st.finished_at)
    return "Created"


def main(ctx, values, args) -> int:
    rows = []
    for c in ctx.containers.list():
        st = c.state()
        if not values["all"] and not st.running:
            continue
        s = c.spec
        if values["quiet"]:
            print(c.id if values["no_trunc"] else c.id[:12])
            continue
        cmd = shlex.join(s.argv)
        if not values["no_trunc"] and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        image = s.image
        ports = ""
        if st.running and st.ports:
            from ..runtime.network.ports import format_binding
            ports = ", ".join(format_binding(p) for p in st.ports)
        rows.append([c.id if values["no_trunc"] else c.id[:12], image, f'"{cmd}"',
                     ago(s.created), status_text(st), ports, s.name])
    if not values["quiet"]:
        print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)
    return 0
