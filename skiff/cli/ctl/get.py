"""Display one or many resources.

Usage:
  skiffctl get KIND[,KIND] [NAME...] [-o wide|yaml|json|name] [-l SELECTOR] [--field-selector SEL]
               [-w] [-A] [--show-labels]

Examples:
  skiffctl get pods -o wide
  skiffctl get pod web -o yaml
  skiffctl get pods -l app=web -w
  skiffctl get nodes
"""
from __future__ import annotations

import sys

from .client import APIError, CtlError
from .common import ns_for, targets
from .flags import Flag
from . import printers as P

FLAGS = [
    Flag("-o --output", "output", "str", help="Output format: wide, yaml, json, name"),
    Flag("-l --selector", "selector", "str", help="Label selector (e.g. -l app=web,tier!=db)"),
    Flag("--field-selector", "field_selector", "str", help="Field selector (e.g. status.phase=Running)"),
    Flag("-w --watch", "watch", help="After listing/getting the requested object, watch for changes"),
    Flag("--watch-only", "watch_only", help="Watch for changes without listing first"),
    Flag("-A --all-namespaces", "all_namespaces", help="List the requested objects across all namespaces"),
    Flag("--show-labels", "show_labels", help="Show all labels as the last column"),
    Flag("--no-headers", "no_headers", help="Don't print headers"),
    Flag("--ignore-not-found", "ignore_not_found", help="Treat \"resource not found\" as a successful retrieval"),
]

FORMATS = (None, "", "wide", "yaml", "json", "name")


def _with_kind(res, obj: dict) -> dict:
    if "kind" not in obj:
        obj = {"apiVersion": res.api_version, "kind": res.kind, **obj}
    return obj


def run(ctx, args: list[str], opts: dict) -> int:
    out = opts.get("output")
    if out not in FORMATS:
        raise CtlError(f'error: unable to match a printer suitable for the output format "{out}", '
                       "allowed formats are: json,name,wide,yaml")
    if not args:
        raise CtlError("error: you must specify the type of resource to get. Use \"skiffctl api-resources\" "
                       "for a complete list of supported resources.")
    groups = targets(args)
    client = ctx.client()
    all_ns = opts["all_namespaces"]
    wide = out == "wide"
    rc = 0
    from skiff.api.resources import lookup
    multi = len(groups) > 1 or (len(args) > 0 and ("/" in args[0] or "," in args[0]
                                                   or lookup(args[0]) is None))   # a category ("all")
    collected: list[dict] = []          # for -o json|yaml
    printed_tables = 0
    watch_targets = []
    for res, names in groups:
        ns = ns_for(res, ctx, all_ns and not names)
        objs: list[dict] = []
        rv = None
        if names:
            for n in names:
                try:
                    objs.append(_with_kind(res, client.get(res.plural, n, ns)))
                except APIError as e:
                    if e.code == 404 and opts["ignore_not_found"]:
                        continue
                    print(str(e), file=sys.stderr)
                    rc = 1
        elif not opts["watch_only"]:
            lst = client.list(res.plural, ns, opts["selector"], opts["field_selector"])
            objs = [_with_kind(res, o) for o in lst.get("items") or []]
            rv = (lst.get("metadata") or {}).get("resourceVersion")
        if opts["watch"] or opts["watch_only"]:
            watch_targets.append((res, ns, names, rv))
        if out in ("json", "yaml"):
            collected += objs
            continue
        if out == "name":
            for o in objs:
                print(P.kind_name(res, o))
            continue
        if not objs:
            continue
        rows = [P.row_for(res.plural, o, wide, all_ns and res.namespaced, opts["show_labels"],
                          name_prefix=(P.kind_name(res, name="") if multi else "")) for o in objs]
        headers = P.headers_for(res.plural, wide, all_ns and res.namespaced, opts["show_labels"])
        if printed_tables:
            sys.stdout.write("\n")
        sys.stdout.write(P.tabwrite(rows if opts["no_headers"] else [headers] + rows))
        printed_tables += 1
    if out in ("json", "yaml"):
        single = len(groups) == 1 and len(groups[0][1]) == 1 and not multi
        doc = collected[0] if single and collected else P.as_list(collected)
        if collected or not single:
            sys.stdout.write(P.to_json(doc) if out == "json" else P.to_yaml(doc))
    elif out != "name" and printed_tables == 0 and rc == 0 and not any(n for _, n in groups) \
            and not opts["watch_only"]:
        res0 = groups[0][0]
        if all_ns or not res0.namespaced:
            print("No resources found", file=sys.stderr)
        else:
            print(f"No resources found in {ctx.namespace} namespace.", file=sys.stderr)
    if watch_targets:
        sys.stdout.flush()
        return _watch(ctx, watch_targets, opts, printed_tables > 0) or rc
    return rc


def _watch(ctx, watch_targets, opts, header_printed: bool) -> int:
    if len(watch_targets) > 1:
        raise CtlError("error: you may only specify a single resource type")
    res, ns, names, rv = watch_targets[0]
    out = opts.get("output")
    wide = out == "wide"
    all_ns = opts["all_namespaces"] and res.namespaced and not names
    client = ctx.client()
    fs = opts["field_selector"]
    if names:
        if len(names) > 1:
            raise CtlError("error: watch is only supported on individual resources and resource collections, "
                           "but a list of resources is found")
        fs = f"metadata.name={names[0]}"
        rv = None
    headers = P.headers_for(res.plural, wide, all_ns, opts["show_labels"])
    widths = [len(h) + 3 for h in headers]
    first = True
    try:
        for typ, obj in client.watch(res.plural, ns, resource_version=rv, label_selector=opts["selector"],
                                     field_selector=fs):
            if typ in ("BOOKMARK", None):
                continue
            if names and first and typ == "ADDED":
                first = False
                continue               # the object itself was printed already by the GET
            first = False
            obj = _with_kind(res, obj)
            if out in ("json", "yaml"):
                sys.stdout.write(P.to_json(obj) if out == "json" else "---\n" + P.to_yaml(obj))
            elif out == "name":
                print(P.kind_name(res, obj))
            else:
                row = P.row_for(res.plural, obj, wide, all_ns, opts["show_labels"])
                if not header_printed and not opts["no_headers"]:
                    for i, h in enumerate(headers):
                        widths[i] = max(widths[i], len(h) + 3, 6)
                    sys.stdout.write(_line(headers, widths))
                    header_printed = True
                for i, c in enumerate(row):
                    widths[i] = max(widths[i], len(c) + 3, 6)
                sys.stdout.write(_line(row, widths))
            sys.stdout.flush()
    except APIError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


def _line(cells, widths) -> str:
    return "".join(c.ljust(widths[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells)) + "\n"
