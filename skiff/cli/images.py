"""skiff images: list images; names that share an image show the same IMAGE ID."""

from __future__ import annotations

from .parser import Command, Opt
from .table import ago, human_size, print_table

COMMAND = Command("images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images", [
    Opt(("-q", "--quiet"), "quiet", help="Only show image IDs"),
    Opt(("-a", "--all"), "all", help="Show all images"),
    Opt(("--no-trunc",), "no_trunc", help="Don't truncate output"),
], max_args=1)


def split_ref(ref: str) -> tuple[str, str]:
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:
        return ref, "<none>"
    return name, tag


def main(ctx, values, args) -> int:
    rows, seen = [], []
    want = args[0] if args else None
    for img in ctx.images.list():
        short = img.id if values["no_trunc"] else img.id.split(":", 1)[1][:12]
        refs = img.refs or ["<none>:<none>"]
        for ref in refs:
            repo, tag = split_ref(ref)
            if want and want not in (repo, ref):
                continue
            rows.append([repo, tag, short, ago(img.created), human_size(img.size)])
            if short not in seen:
                seen.append(short)
    if values["quiet"]:
        for s in seen:
            print(s)
        return 0
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0
