"""skiff inspect: containers and images as JSON with docker's field names, or through -f."""

from __future__ import annotations

import json
import sys

from ..errors import NotFound
from .parser import Command, Opt

COMMAND = Command("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on containers or images", [
    Opt(("-f", "--format"), "format", "str", "Format output using a Go template", "string"),
    Opt(("--type",), "type", "str", "Only inspect objects of the given type (container, image)", "string"),
], min_args=1)


def inspect_image(img) -> dict:
    cfg = img.config or {}
    return {
        "Id": img.id,
        "RepoTags": list(img.refs),
        "RepoDigests": [],
        "Parent": "",
        "Comment": ((cfg.get("history") or [{}])[-1] or {}).get("comment", ""),
        "Created": img.created,
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or {},
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": img.size,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(reversed(img.layer_dirs()))}},
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
    }


def find(ctx, ref: str, kind: str | None) -> dict:
    if kind in (None, "container"):
        try:
            from ..runtime.containers.inspect import inspect_container
            return inspect_container(ctx.containers.get(ref))
        except NotFound:
            if kind == "container":
                raise
    if kind in (None, "image"):
        try:
            return inspect_image(ctx.images.resolve(ref))
        except NotFound:
            if kind == "image":
                raise
    raise NotFound(f"No such object: {ref}")


def main(ctx, values, args) -> int:
    from ..errors import SkiffError
    results, code = [], 0
    for ref in args:
        try:
            results.append(find(ctx, ref, values["type"]))
        except SkiffError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    print_objects(results, values["format"])
    return code


def print_objects(results: list, template: str | None) -> None:
    """`inspect` output: a JSON list, or each object through a -f Go template."""
    if template is not None:
        from .template import render
        for obj in results:
            sys.stdout.write(render(template, obj) + "\n")
    else:
        sys.stdout.write(json.dumps(results, indent=4) + "\n")
