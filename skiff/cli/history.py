"""skiff history: the layers of an image and the steps that made them, newest first."""

from __future__ import annotations

from .parser import Command, Opt
from .table import ago, human_size, print_table

COMMAND = Command("history", "history [OPTIONS] IMAGE", "Show the history of an image", [
    Opt(("-H", "--human"), "human", help="Print sizes and dates in human readable format (default true)",
        default=True),
    Opt(("--no-trunc",), "no_trunc", help="Don't truncate output"),
    Opt(("-q", "--quiet"), "quiet", help="Only show image IDs"),
], min_args=1, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.images.store import tree_size
    img = ctx.images.resolve(args[0])
    history = list((img.config or {}).get("history") or [])
    dirs = img.layer_dirs()
    rows = []
    layer = 0
    for i, h in enumerate(history):
        size = 0
        if not h.get("empty_layer") and layer < len(dirs):
            size = tree_size(dirs[layer])
            layer += 1
        created_by = h.get("created_by", "")
        if not values["no_trunc"] and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append([img.short_id if i == len(history) - 1 else "<missing>",
                     ago(h["created"]) if h.get("created") else "", created_by,
                     human_size(size), h.get("comment", "")])
    rows.reverse()
    if values["quiet"]:
        for r in rows:
            print(r[0])
        return 0
    print_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return 0
