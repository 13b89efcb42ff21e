"""Plain aligned columns, as docker prints them (three spaces between columns)."""

from __future__ import annotations

import sys
import time


def print_table(headers: list[str], rows: list[list[str]], out=None) -> None:
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    for r in [headers, *rows]:
        line = "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1]))
        out.write((line + "   " + r[-1]).rstrip() + "\n")


def human_duration(seconds: float) -> str:
    """docker's (go-units) HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = int(seconds / 3600 + 0.5)  # go-units rounds half up
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(rfc3339: str) -> str:
    from ..runtime.containers.state import parse_rfc3339
    return human_duration(time.time() - parse_rfc3339(rfc3339)) + " ago"


def human_size(n: int) -> str:
    """docker's HumanSize: decimal units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB"]
    f = float(n)
    i = 0
    while f >= 1000 and i < len(units) - 1:
        f /= 1000
        i += 1
    return f"{f:.3g}{units[i]}"
