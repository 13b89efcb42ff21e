"""List events: the reconciliation log, one line per event, oldest first.

Usage:
  skiffctl events [-w] [-A] [--for KIND/NAME] [--types Normal,Warning]

Columns: LAST SEEN  TYPE  REASON  OBJECT  MESSAGE (NAMESPACE first with -A). On a terminal
Warning rows are coloured.
"""
from __future__ import annotations

import os
import sys

from .client import APIError, CtlError
from .flags import Flag
from . import printers as P

FLAGS = [
    Flag("-w --watch", "watch", help="After listing the requested events, watch for more events"),
    Flag("-A --all-namespaces", "all_namespaces", help="List the events across all namespaces"),
    Flag("--for", "for_", "str", help="Filter events to only those pertaining to the specified resource"),
    Flag("--types", "types", "list", help="Output only events of given types (Normal, Warning)"),
    Flag("--no-headers", "no_headers", help="Don't print headers"),
    Flag("-o --output", "output", "str", help="json or yaml"),
]

YELLOW = "\x1b[33m"
RESET = "\x1b[0m"


def interval(ev: dict) -> str:
    """kubectl events' LAST SEEN: "5s", or "5s (x3 over 2m)" for a repeated event."""
    first = ev.get("eventTime") or ev.get("firstTimestamp") or P.meta(ev).get("creationTimestamp")
    first_s = P.since(first)
    series = ev.get("series")
    if series:
        return f"{P.since(series.get('lastObservedTime'))} (x{series.get('count')} over {first_s})"
    if int(ev.get("count") or 0) > 1:
        return f"{P.since(ev.get('lastTimestamp'))} (x{ev['count']} over {first_s})"
    return first_s if first else P.since(ev.get("lastTimestamp"))


def event_line_cells(ev: dict, all_ns: bool) -> list[str]:
    io = ev.get("involvedObject") or {}
    cells = [interval(ev), ev.get("type") or "", ev.get("reason") or "",
             f"{io.get('kind', '')}/{io.get('name', '')}", (ev.get("message") or "").strip()]
    return ([P.meta(ev).get("namespace", "")] if all_ns else []) + cells


def headers(all_ns: bool) -> list[str]:
    return (["NAMESPACE"] if all_ns else []) + ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def use_color(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_lines(text: str, evs: list[dict], color: bool, header: bool) -> str:
    if not color:
        return text
    lines = text.splitlines(keepends=True)
    off = 1 if header else 0
    for i, ev in enumerate(evs):
        if ev.get("type") == "Warning" and i + off < len(lines):
            lines[i + off] = YELLOW + lines[i + off].rstrip("\n") + RESET + "\n"
    return "".join(lines)


def run(ctx, args: list[str], opts: dict) -> int:
    if args:
        raise CtlError(f"error: unexpected arguments: {' '.join(args)} (use --for KIND/NAME)")
    all_ns = opts["all_namespaces"]
    ns = None if all_ns else ctx.namespace
    fs = None
    if opts["for_"]:
        kind, _, name = opts["for_"].partition("/")
        from .common import resolve
        res = resolve(kind)
        fs = f"involvedObject.kind={res.kind}" + (f",involvedObject.name={name}" if name else "")
    types = {t.strip().lower() for v in opts["types"] for t in v.split(",") if t.strip()}
    client = ctx.client()
    lst = client.list("events", ns, field_selector=fs)
    evs = [e for e in lst.get("items") or [] if not types or (e.get("type") or "").lower() in types]
    evs.sort(key=P.event_sort_key)
    color = use_color()
    if opts["output"] in ("json", "yaml"):
        doc = P.as_list(evs)
        sys.stdout.write(P.to_json(doc) if opts["output"] == "json" else P.to_yaml(doc))
        return 0
    hdr = headers(all_ns)
    printed = False
    if evs:
        rows = [event_line_cells(e, all_ns) for e in evs]
        table = P.tabwrite(rows if opts["no_headers"] else [hdr] + rows, padding=3, minwidth=6)
        sys.stdout.write(colour_lines(table, evs, color, not opts["no_headers"]))
        printed = True
    elif not opts["watch"]:
        print("No events found" + ("" if all_ns else f" in {ctx.namespace} namespace") + ".", file=sys.stderr)
        return 0
    sys.stdout.flush()
    if not opts["watch"]:
        return 0
    rv = (lst.get("metadata") or {}).get("resourceVersion")
    widths = [len(h) + 3 for h in hdr]
    if evs:
        for r in rows:
            for i, c in enumerate(r[:-1]):
                widths[i] = max(widths[i], len(c) + 3, 6)
    try:
        for typ, ev in client.watch("events", ns, resource_version=rv, field_selector=fs):
            if typ not in ("ADDED", "MODIFIED"):
                continue
            if types and (ev.get("type") or "").lower() not in types:
                continue
            cells = event_line_cells(ev, all_ns)
            if not printed and not opts["no_headers"]:
                sys.stdout.write("".join(h.ljust(widths[i]) if i < len(hdr) - 1 else h
                                         for i, h in enumerate(hdr)) + "\n")
                printed = True
            for i, c in enumerate(cells[:-1]):
                widths[i] = max(widths[i], len(c) + 3, 6)
            line = "".join(c.ljust(widths[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells))
            if color and ev.get("type") == "Warning":
                line = YELLOW + line + RESET
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except APIError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0
