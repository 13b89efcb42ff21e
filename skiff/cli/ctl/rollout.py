"""Manage the rollout of a Deployment, a DaemonSet or a StatefulSet.

Usage:
  skiffctl rollout status deploy/NAME|ds/NAME|sts/NAME [--watch=false] [--timeout 5m] [--revision N]
  skiffctl rollout history deploy/NAME|ds/NAME|sts/NAME [--revision N]
  skiffctl rollout undo deploy/NAME|ds/NAME|sts/NAME [--to-revision N]
  skiffctl rollout restart deploy/NAME|ds/NAME|sts/NAME
  skiffctl rollout pause|resume deploy/NAME

`status` follows the Deployment (list, then watch) and prints kubectl's progress messages
until the rollout is done (exit 0), fails (progress deadline exceeded: exit 1) or --timeout
passes. `history` lists the revisions of its ReplicaSets with their change causes. `undo`
copies the pod template of an earlier revision (by default the previous one) back into the
Deployment, as kubectl does, client side. `restart` stamps the pod template with a
kubectl.kubernetes.io/restartedAt annotation, which rolls every pod. A DaemonSet's revisions are
its ControllerRevisions; `undo` patches the chosen one's data (its template) back, as kubectl's
DaemonSet rollbacker does. A StatefulSet's are too (kubectl's StatefulSet history viewer and
rollbacker are the DaemonSet's); its status is kubectl's StatefulSetStatusViewer's.
"""
from __future__ import annotations

import math
import sys
import time

from .client import APIError, CtlError
from .common import ns_for, targets
from .flags import Flag, parse_duration
from . import daemonsets as DS
from . import statefulsets as STS
from . import printers as P
from . import workloads as WL

FLAGS = [
    Flag("-w --watch", "watch", default=True, help="status: watch the rollout until it completes (default true)"),
    Flag("--timeout", "timeout", "str", help="status: how long to wait before giving up (0: forever)"),
    Flag("--revision", "revision", "int", default=0,
         help="status: pin to a revision; history: show the details of this revision"),
    Flag("--to-revision", "to_revision", "int", default=0, help="undo: the revision to roll back to (0: the previous)"),
]

SUBCOMMANDS = ("status", "history", "undo", "restart", "pause", "resume")
DS_SUBCOMMANDS = ("status", "history", "undo", "restart")


def run(ctx, args: list[str], opts: dict) -> int:
    if not args or args[0] not in SUBCOMMANDS:
        what = args[0] if args else ""
        raise CtlError((f'error: unknown command "{what}" for "skiffctl rollout"\n' if what else
                        "error: you must specify a rollout subcommand\n")
                       + "Valid subcommands: " + ", ".join(SUBCOMMANDS))
    sub, rest = args[0], args[1:]
    if not rest:
        raise CtlError("error: required resource not specified")
    client = ctx.client()
    rc = 0
    for res, names in targets(rest):
        if not names:
            raise CtlError("error: resource(s) were provided, but no name was specified")
        if res.plural != "deployments" and not (res.plural in ("daemonsets", "statefulsets")
                                                and sub in DS_SUBCOMMANDS):
            raise CtlError(f'error: no {_what(sub)} has been implemented for {{"{res.group}" "{res.kind}"}}')
        ns = ns_for(res, ctx)
        for name in names:
            try:
                fn = globals()["do_" + sub]
                rc = fn(client, res, ns, name, opts) or rc
            except APIError as e:
                print(str(e), file=sys.stderr)
                rc = 1
            sys.stdout.flush()
    return rc


def _what(sub: str) -> str:
    return {"status": "status viewer", "history": "history viewer", "undo": "rollbacker",
            "restart": "restarter", "pause": "pauser", "resume": "resumer"}[sub]


# ------------------------------------------------------------------ status

def do_status(client, res, ns, name, opts) -> int:
    client.get(res.plural, name, ns)            # a missing Deployment is a NotFound error
    timeout = parse_duration(opts["timeout"]) if opts.get("timeout") else 0
    deadline = time.monotonic() + timeout if timeout else None
    fs = f"metadata.name={name}"
    last = None

    def show(obj) -> bool:
        nonlocal last
        # kubectl ignores --revision for DaemonSets
        msg, done = DS.status_message(obj) if res.plural == "daemonsets" else \
            STS.status_message(obj) if res.plural == "statefulsets" else \
            WL.status_message(obj, opts.get("revision") or 0)
        if msg != last:
            print(msg)
            sys.stdout.flush()
            last = msg
        return done

    while True:
        lst = client.list(res.plural, ns, field_selector=fs)
        items = [o for o in lst.get("items") or [] if P.meta(o).get("name") == name]
        if not items:
            raise CtlError("error: object has been deleted")
        if show(items[0]) or not opts.get("watch", True):
            return 0
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        while True:
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CtlError("error: timed out waiting for the condition")
            try:
                for typ, obj in client.watch(res.plural, ns, resource_version=rv, field_selector=fs,
                                             timeout_seconds=max(1, math.ceil(left)) if left else 300,
                                             bookmarks=True):
                    if typ == "BOOKMARK":
                        rv = P.meta(obj).get("resourceVersion") or rv
                        continue
                    if typ == "DELETED":
                        raise CtlError("error: object has been deleted")
                    if typ in ("ADDED", "MODIFIED"):
                        rv = P.meta(obj).get("resourceVersion") or rv
                        if show(obj):
                            return 0
                    if deadline is not None and time.monotonic() > deadline:
                        raise CtlError("error: timed out waiting for the condition")
            except APIError as e:
                if e.code == 410:          # too old: list again
                    break
                raise
            # the server ended the watch (its timeout): go on from the last version seen


# ------------------------------------------------------------------ history

def do_history(client, res, ns, name, opts) -> int:
    d = client.get(res.plural, name, ns)
    if res.plural in ("daemonsets", "statefulsets"):
        revs = DS.revisions_of(client, d)
        hist = {r: DS.template_of(rev) for r, rev in revs.items()}
        table = DS.history_table(revs)
    else:
        hist = WL.history(WL.replicasets_of(client, d))
        table = WL.history_table(hist)
    head = P.kind_name(res, d)
    rev = opts.get("revision") or 0
    if rev > 0:
        if rev not in hist:
            raise CtlError("error: unable to find the specified revision")
        from .describe import W, pod_template
        w = W()
        pod_template(w, hist[rev])
        sys.stdout.write(f"{head} with revision #{rev}\n" + "\n".join(w.lines) + "\n\n")
        return 0
    if not hist:
        sys.stdout.write(f"{head} \nNo rollout history found.\n")
        return 0
    sys.stdout.write(f"{head} \n{table}\n")
    return 0


# ------------------------------------------------------------------ undo

def do_undo(client, res, ns, name, opts) -> int:
    from skiff.api.resources import path_for
    d = client.get(res.plural, name, ns)
    to = opts.get("to_revision") or 0
    if to < 0:
        raise CtlError(f"error: unable to find specified revision {to} in history")
    if res.plural in ("daemonsets", "statefulsets"):
        return DS.rollback(client, path_for(res.plural, ns, name), P.kind_name(res, d), d, to)
    if (d.get("spec") or {}).get("paused"):
        raise CtlError("error: you cannot rollback a paused deployment; resume it first with "
                       "'skiffctl rollout resume' and try again")
    rs = WL.rollback_target(d, WL.replicasets_of(client, d), to)
    head = P.kind_name(res, d)
    if WL.equal_ignore_hash((rs.get("spec") or {}).get("template"), (d.get("spec") or {}).get("template")):
        print(f"{head} skipped rollback (current template already matches revision {to})")
        return 0
    try:
        client.request("PATCH", path_for(res.plural, ns, name), body=WL.rollback_patch(d, rs),
                       content_type="application/json-patch+json")
    except APIError as e:
        raise CtlError(f"error: failed restoring revision {to}: {e.message or e}") from None
    print(f"{head} rolled back")
    return 0


# ------------------------------------------------------------------ restart, pause, resume

def restart_patch(now: float | None = None) -> dict:
    """The strategic merge patch of `kubectl rollout restart` (Go's time.RFC3339, local time)."""
    t = time.localtime(now if now is not None else time.time())
    off = t.tm_gmtoff or 0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t)
    if off == 0:
        stamp += "Z"
    else:
        sign = "+" if off > 0 else "-"
        off = abs(off)
        stamp += f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    return {"spec": {"template": {"metadata": {"annotations": {WL.RESTARTED_AT: stamp}}}}}


def do_restart(client, res, ns, name, opts) -> int:
    from skiff.api.resources import path_for
    d = client.get(res.plural, name, ns)
    if (d.get("spec") or {}).get("paused"):
        raise CtlError(f'error: {res.plural}.{res.group} "{name}" can\'t restart paused deployment '
                       "(run rollout resume first)")
    client.request("PATCH", path_for(res.plural, ns, name), params={"fieldManager": "kubectl-rollout"},
                   body=restart_patch(), content_type="application/strategic-merge-patch+json")
    print(f"{P.kind_name(res, d)} restarted")
    return 0


def _set_paused(client, res, ns, name, paused: bool) -> int:
    from skiff.api.resources import path_for
    d = client.get(res.plural, name, ns)
    word = "paused" if paused else "resumed"
    if bool((d.get("spec") or {}).get("paused")) == paused:
        raise CtlError(f'error: {res.plural}.{res.group} "{name}" is {"already paused" if paused else "not paused"}')
    client.request("PATCH", path_for(res.plural, ns, name), params={"fieldManager": "kubectl-rollout"},
                   body={"spec": {"paused": paused}}, content_type="application/strategic-merge-patch+json")
    print(f"{P.kind_name(res, d)} {word}")
    return 0


def do_pause(client, res, ns, name, opts) -> int:
    return _set_paused(client, res, ns, name, True)


def do_resume(client, res, ns, name, opts) -> int:
    return _set_paused(client, res, ns, name, False)
