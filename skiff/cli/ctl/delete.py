"""Delete resources by file names, stdin, or by resources and names (or a label selector).

Usage:
  skiffctl delete -f FILE|DIR|- [--grace-period N] [--now] [--force] [--wait=true|false]
  skiffctl delete KIND NAME... | KIND/NAME... | KIND -l SELECTOR | KIND --all
  ... [--dry-run=none|client|server]

A pod that is bound to a node stops gracefully: the agent stops its containers and then
confirms the deletion. With --wait (the default) skiffctl returns once the object is gone.
--dry-run=server sends the deletions with dryRun=All (`pod "web" deleted (server dry run)`: the
server checks them, nothing is deleted); --dry-run=client sends none.
"""
from __future__ import annotations

import sys
import time

from .client import APIError, CtlError
from .common import dry_run, dry_run_flag, dry_run_params, dry_run_suffix, ns_for, targets
from .flags import Flag, parse_duration

FLAGS = [
    Flag("-f --filename", "filename", "list", help="File, directory or - with the objects to delete"),
    Flag("--grace-period", "grace_period", "int", default=-1,
         help="Seconds given to the resource to terminate gracefully (-1: the object's default)"),
    Flag("--now", "now", help="Signal the resources for immediate shutdown (same as --grace-period=1)"),
    Flag("--force", "force", help="Remove the resource at once, without waiting for its node to confirm"),
    Flag("--wait", "wait", default=True, help="Wait for the resources to be gone before returning (default true)"),
    Flag("--timeout", "timeout", "str", help="How long to wait for the deletion (0: no limit)"),
    Flag("-l --selector", "selector", "str", help="Label selector"),
    Flag("--all", "all", help="Delete every resource of the type in the namespace"),
    Flag("--ignore-not-found", "ignore_not_found", help="Treat \"resource not found\" as a successful delete"),
    Flag("-A --all-namespaces", "all_namespaces", help="With -l or --all: across all namespaces"),
    Flag("--cascade", "cascade", "optstr", default="background", noopt="background", metavar="[=MODE]",
         help='"background" (default), "orphan" or "foreground": how dependents (pods of a '
              'ReplicaSet, ReplicaSets of a Deployment) are deleted'),
    dry_run_flag(),
]


def propagation_policy(cascade: str | None) -> str:
    """kubectl's --cascade: background|true -> Background, orphan|false -> Orphan, foreground."""
    c = (cascade or "background").lower()
    if c in ("background", "true"):
        if c == "true":
            print("warning: --cascade=true is deprecated (boolean value) and can be replaced with "
                  "--cascade=background.", file=sys.stderr)
        return "Background"
    if c in ("orphan", "false"):
        if c == "false":
            print("warning: --cascade=false is deprecated (boolean value) and can be replaced with "
                  "--cascade=orphan.", file=sys.stderr)
        return "Orphan"
    if c == "foreground":
        return "Foreground"
    raise CtlError(f'error: invalid cascade value ({cascade}). Must be "background", "foreground", or "orphan".')


def run(ctx, args: list[str], opts: dict) -> int:
    strategy = dry_run(opts)
    policy = propagation_policy(opts.get("cascade"))
    grace = opts["grace_period"]
    if opts["now"]:
        if grace >= 0:
            raise CtlError("error: --now and --grace-period cannot be specified together")
        grace = 1
    if opts["force"] and grace < 0:
        grace = 0
    if grace == 0 and not opts["force"]:
        grace = 1     # kubectl: --grace-period=0 without --force means 1
    if opts["force"] and grace == 0:
        print("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
              "terminated. The resource may continue to run on the cluster indefinitely.", file=sys.stderr)
    items: list[tuple[object, str | None, str, str]] = []   # (res, ns, name, source)
    if opts["filename"]:
        if args:
            raise CtlError("error: cannot specify both -f and resource arguments")
        from skiff.api.manifests import ManifestError, parse_manifests
        from .discovery import resource_for_kind    # custom kinds through the server's discovery
        try:
            docs = parse_manifests(opts["filename"])
        except ManifestError as e:
            for line in e.problems:
                print(f"error: {line}", file=sys.stderr)
            return 1
        for d in docs:
            o = d.obj if isinstance(d.obj, dict) else {}
            res = resource_for_kind(o.get("apiVersion"), o.get("kind"))
            name = (o.get("metadata") or {}).get("name")
            if res is None or not name:
                print(f'error: {d.where}: cannot delete: unknown kind "{o.get("kind")}" or no metadata.name',
                      file=sys.stderr)
                return 1
            ns = ((o.get("metadata") or {}).get("namespace") or ctx.namespace) if res.namespaced else None
            items.append((res, ns, name, d.source))
    else:
        if not args:
            raise CtlError("error: You must provide one or more resources by argument or filename.\n"
                           "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                           "   '<resource> <name>'\n   '<resource>'")
        client = ctx.client()
        for res, names in targets(args):
            if names:
                for n in names:
                    items.append((res, ns_for(res, ctx), n, ""))
            elif opts["selector"] or opts["all"]:
                lst = client.list(res.plural, ns_for(res, ctx, opts["all_namespaces"]), opts["selector"])
                for o in lst.get("items") or []:
                    md = o.get("metadata") or {}
                    items.append((res, md.get("namespace") if res.namespaced else None, md.get("name"), ""))
            else:
                raise CtlError("error: resource(s) were provided, but no name was specified")
        if not items and (opts["selector"] or opts["all"]):
            print("No resources found", file=sys.stderr)
            return 0
    client = ctx.client()
    rc = 0
    pending = []
    for res, ns, name, source in items:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}
        if grace >= 0:
            body["gracePeriodSeconds"] = grace
        if strategy == "server":
            body["dryRun"] = ["All"]
        obj = None
        if strategy != "client":
            try:
                obj = client.request("DELETE", res.path(ns, name), dry_run_params(strategy), body=body,
                                     verb="deleting" if source else "", what=source)
            except APIError as e:
                if e.code == 404 and opts["ignore_not_found"]:
                    continue
                print(str(e), file=sys.stderr)
                rc = 1
                continue
        print(f'{res.singular}{"." + res.group if res.group else ""} "{name}" '
              f'{"force deleted" if opts["force"] and grace == 0 else "deleted"}{dry_run_suffix(strategy)}')
        sys.stdout.flush()
        if strategy == "none":
            uid = ((obj or {}).get("metadata") or {}).get("uid") if isinstance(obj, dict) else None
            pending.append((res, ns, name, uid))
    if opts["wait"] and pending:
        timeout = parse_duration(opts["timeout"]) if opts["timeout"] else 0
        deadline = time.monotonic() + timeout if timeout else None
        for res, ns, name, uid in pending:
            if not wait_gone(client, res, ns, name, uid, deadline):
                print(f"error: timed out waiting for the condition on {res.plural}/{name}", file=sys.stderr)
                rc = 1
    return rc


def wait_gone(client, res, ns, name, uid, deadline) -> bool:
    """Wait (GET, then list+watch on metadata.name) until the object is gone or replaced by
    one with another uid. False on timeout."""
    fs = f"metadata.name={name}"
    while True:
        try:
            lst = client.list(res.plural, ns, field_selector=fs)
        except APIError as e:
            if e.code == 404:
                return True
            raise
        live = [o for o in lst.get("items") or [] if (o.get("metadata") or {}).get("name") == name]
        if not live or (uid and (live[0].get("metadata") or {}).get("uid") != uid):
            return True
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        left = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
        try:
            for typ, obj in client.watch(res.plural, ns, resource_version=rv, field_selector=fs,
                                         timeout_seconds=int(left) + 1 if left else 300, bookmarks=True):
                if typ == "DELETED":
                    if not uid or (obj.get("metadata") or {}).get("uid") in (uid, None):
                        return True
                if deadline is not None and time.monotonic() > deadline:
                    return False
        except APIError as e:
            if e.code != 410:
                raise
        except CtlError:
            time.sleep(0.2)
        if deadline is not None and time.monotonic() > deadline:
            return False
