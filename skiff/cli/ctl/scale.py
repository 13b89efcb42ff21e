"""Set a new size for a Deployment, ReplicaSet or StatefulSet (through its /scale subresource).

Usage:
  skiffctl scale deploy/NAME --replicas N [--current-replicas M] [--resource-version RV]
  skiffctl scale deployment NAME [NAME...] --replicas N

Examples:
  skiffctl scale deploy/web --replicas 3
  skiffctl scale rs/web-5d4f7b --replicas=0
"""
from __future__ import annotations

import sys

from .client import APIError, CtlError
from .common import ns_for, targets
from .flags import Flag
from . import printers as P

FLAGS = [
    Flag("--replicas", "replicas", "int", default=None, help="The new desired number of replicas. Required."),
    Flag("--current-replicas", "current_replicas", "int", default=-1,
         help="Precondition for current size: scale only if the resource has this many replicas (-1: none)"),
    Flag("--resource-version", "resource_version", "str",
         help="Precondition for resource version: scale only if it matches"),
]


def run(ctx, args: list[str], opts: dict) -> int:
    if opts["replicas"] is None:
        raise CtlError('error: required flag(s) "replicas" not set')
    if opts["replicas"] < 0:
        raise CtlError("error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    if not args:
        raise CtlError("error: You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                       "   '<resource> <name>'\n   '<resource>'")
    client = ctx.client()
    from skiff.api.resources import path_for
    rc = 0
    for res, names in targets(args):
        if not names:
            raise CtlError("error: resource(s) were provided, but no name was specified")
        if "scale" not in (res.subresources or ()):
            raise CtlError(f'error: no scaler has been implemented for {{"{res.group}" "{res.kind}"}}')
        ns = ns_for(res, ctx)
        for name in names:
            try:
                client.get(res.plural, name, ns)          # kubectl GETs the object first
                if opts["current_replicas"] >= 0 or opts["resource_version"]:
                    sc = client.get(res.plural, name, ns, subresource="scale")
                    cur = int((sc.get("spec") or {}).get("replicas") or 0)
                    if opts["current_replicas"] >= 0 and cur != opts["current_replicas"]:
                        raise CtlError(f"error: Expected replicas to be {opts['current_replicas']}, was {cur}")
                    rv = (sc.get("metadata") or {}).get("resourceVersion")
                    if opts["resource_version"] and rv != opts["resource_version"]:
                        raise CtlError(f"error: Expected resource version to be {opts['resource_version']}, "
                                       f"was {rv}")
                    body = {"spec": {"replicas": opts["replicas"]},
                            "metadata": {"resourceVersion": rv} if opts["resource_version"] else {}}
                    if not body["metadata"]:
                        del body["metadata"]
                else:
                    body = {"spec": {"replicas": opts["replicas"]}}
                client.request("PATCH", path_for(res.plural, ns, name, "scale"), body=body,
                               content_type="application/merge-patch+json")
            except APIError as e:
                print(str(e), file=sys.stderr)
                rc = 1
                continue
            print(f"{P.kind_name(res, name=name)} scaled")
            sys.stdout.flush()
    return rc
