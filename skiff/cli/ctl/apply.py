"""Apply a configuration to a resource by file name or stdin (kubectl's client-side apply).

Usage:
  skiffctl apply -f FILE|DIR|- [-f ...] [--dry-run=none|client|server]

Every document is checked first, as the API server would check it (skiff.api.manifests);
if any is invalid nothing is sent. Then each object is created (`pod/web created`), patched
with a JSON merge patch computed from the last-applied configuration, the new configuration
and the live object (`pod/web configured`), or left alone (`pod/web unchanged`).

--dry-run=server sends the same requests with dryRun=All (the server checks them and persists
nothing: `pod/web created (server dry run)`); --dry-run=client only reads the live objects and
says what would be done (`pod/web created (dry run)`).
"""
from __future__ import annotations

import copy
import json
import sys

from .client import APIError, CtlError
from .common import dry_run, dry_run_flag, dry_run_params, dry_run_suffix
from .flags import Flag

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

FLAGS = [
    Flag("-f --filename", "filename", "list", help="File, directory or - (stdin) with the manifests"),
    dry_run_flag(),
]


# ------------------------------------------------------------------ pure patch computation

def last_applied_json(obj: dict) -> str:
    """The annotation's value as kubectl writes it: compact JSON with sorted keys, the object
    without the annotation itself (an empty ``annotations: {}`` stays), a trailing newline and
    Go's HTML escaping."""
    o = copy.deepcopy(obj)
    md = o.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    ann.pop(LAST_APPLIED, None)
    md["annotations"] = ann
    s = json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return s + "\n"


def with_last_applied(obj: dict) -> dict:
    """A copy of ``obj`` carrying the last-applied annotation (what apply sends)."""
    o = copy.deepcopy(obj)
    value = last_applied_json(obj)
    md = o.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    ann[LAST_APPLIED] = value
    md["annotations"] = ann
    return o


def _contains(modified, current) -> bool:
    """True when every field ``modified`` sets has the same value in ``current`` (which may
    carry more: server defaults)."""
    if isinstance(modified, dict):
        if not isinstance(current, dict):
            return False
        return all(k in current and _contains(v, current[k]) for k, v in modified.items())
    if isinstance(modified, list):
        if not isinstance(current, list) or len(current) != len(modified):
            return False
        return all(_contains(m, c) for m, c in zip(modified, current))
    return modified == current


# the keys strategic merge patch merges a pod's lists by (containers, volumes, env, ports, mounts...)
_MERGE_KEYS = ("name", "mountPath", "containerPort", "devicePath", "ip")


def _merge_key(*lists: list) -> str | None:
    items = [x for lst in lists for x in lst]
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    return next((k for k in _MERGE_KEYS if all(k in x for x in items)), None)


def keep_live_elements(mv: list, ov, cv) -> list:
    """The list ``mv`` as apply sends it whole, with the live elements (by merge key) that the
    user never applied kept, at any depth, as kubectl's strategic merge patch keeps them: what
    the server added, such as the admission's kube-api-access volume and its volumeMounts."""
    if not isinstance(cv, list):
        return mv
    ov = ov if isinstance(ov, list) else []
    key = _merge_key(mv, cv, [o for o in ov if isinstance(o, dict)])
    if key is None:
        return mv
    live = {c[key]: c for c in cv}
    applied = {o[key]: o for o in ov if isinstance(o, dict) and key in o}
    out = []
    for m in mv:
        c, o = live.get(m[key]), applied.get(m[key]) or {}
        if c is not None:
            m = dict(m)
            for f, cvv in c.items():
                if not isinstance(cvv, list):
                    continue
                if isinstance(m.get(f), list):
                    m[f] = keep_live_elements(m[f], o.get(f), cvv)
                elif f not in m and f not in o:
                    kept = keep_live_elements([], None, cvv)
                    if kept:
                        m[f] = kept
        out.append(m)
    sent = {m[key] for m in mv}
    return out + [c for k, c in live.items() if k not in sent and k not in applied]


def three_way_patch(original: dict | None, modified: dict, current: dict) -> dict:
    """A JSON merge patch (RFC 7386) that turns ``current`` into ``modified`` for the fields
    the user manages:

    * a field of ``modified`` whose value differs from ``current`` is set;
    * a field that was in ``original`` (the last applied configuration) and is no longer in
      ``modified`` is deleted (``null``) if it is still live;
    * fields only in ``current`` (set by the server or other clients) are left alone;
    * lists are replaced whole (merge patch semantics) when the list in ``modified`` differs
      from the last applied one, or when the live list no longer holds its values.
    """
    original = original if isinstance(original, dict) else {}
    patch: dict = {}
    for k, ov in original.items():
        if k not in modified and k in current:
            patch[k] = None
    for k, mv in modified.items():
        cv = current.get(k, _MISSING) if isinstance(current, dict) else _MISSING
        ov = original.get(k, _MISSING)
        if isinstance(mv, dict) and isinstance(cv, dict):
            sub = three_way_patch(ov if isinstance(ov, dict) else {}, mv, cv)
            if sub:
                patch[k] = sub
        elif isinstance(mv, list):
            want = keep_live_elements(mv, None if ov is _MISSING else ov, None if cv is _MISSING else cv)
            if cv is _MISSING or (ov is not _MISSING and ov != mv) or not _contains(want, cv):
                patch[k] = want
        elif mv is None:
            if cv is not _MISSING and cv is not None:
                patch[k] = None
        elif cv is _MISSING or cv != mv:
            patch[k] = mv
    return patch


_MISSING = object()


def compute_patch(applied: dict, live: dict) -> dict:
    """The merge patch apply sends for a new configuration ``applied`` (without the annotation)
    against the ``live`` object; ``{}`` means unchanged."""
    ann = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    original = None
    if ann:
        try:
            original = json.loads(ann)
        except ValueError:
            original = None
    modified = with_last_applied(applied)
    patch = three_way_patch(original, modified, live)
    # identity fields are never patched
    for k in ("apiVersion", "kind"):
        patch.pop(k, None)
    md = patch.get("metadata")
    if isinstance(md, dict):
        for k in ("name", "namespace"):
            md.pop(k, None)
        if not md:
            patch.pop("metadata")
    return patch


# ------------------------------------------------------------------ command

def plan_documents(ctx, files: list[str], *, need_name: bool) -> list | None:
    """Read, check and resolve every document of ``files`` before anything is sent (all or
    nothing): [(document, resource, namespace, object copy with its namespace set)], or None
    once the problems are printed, one line each."""
    from skiff.api.manifests import ManifestError
    from .discovery import load_manifests, resource_for_kind    # custom kinds too
    try:
        docs = load_manifests(files)
    except ManifestError as e:
        for line in e.problems:
            print(f"error: {line}", file=sys.stderr)
        return None
    plan = []
    problems = []
    for d in docs:
        obj = d.obj
        res = resource_for_kind(obj.get("apiVersion"), obj.get("kind"))
        if res is None:
            problems.append(f'error: {d.where}: resource mapping not found for kind "{obj.get("kind")}" '
                            f'in version "{obj.get("apiVersion")}"')
            continue
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if need_name and not md.get("name"):
            problems.append(f"error: {d.where}: metadata.name: Required value (apply needs a name)")
            continue
        ns = None
        if res.namespaced:
            if md.get("namespace") and ctx.explicit_namespace and md["namespace"] != ctx.namespace:
                problems.append(f'error: {d.where}: the namespace from the provided object "{md["namespace"]}" '
                                f'does not match the namespace "{ctx.namespace}". You must pass '
                                f"'--namespace={md['namespace']}' to perform this operation.")
                continue
            ns = md["namespace"] = md.get("namespace") or ctx.namespace
        else:
            md.pop("namespace", None)
        plan.append((d, res, ns, obj))
    for p in problems:
        print(p, file=sys.stderr)
    return None if problems else plan


def run(ctx, args: list[str], opts: dict) -> int:
    files = opts["filename"]
    strategy = dry_run(opts)
    suffix = dry_run_suffix(strategy)
    if not files:
        raise CtlError("error: must specify one of -f and -k")
    if args:
        raise CtlError(f"error: Unexpected args: {args}\nSee 'skiffctl apply -h' for help and examples")
    from . import printers as P
    plan = plan_documents(ctx, files, need_name=True)
    if plan is None:
        return 1
    client = ctx.client()
    params = {"fieldManager": "kubectl-client-side-apply", **dry_run_params(strategy)}
    rc = 0
    for d, res, ns, obj in plan:
        name = obj["metadata"]["name"]
        label = P.kind_name(res, name=name)
        try:
            try:
                # in the document's version (res.path): an autoscaling/v1 object is read as one
                live = client.request("GET", res.path(ns, name))
            except APIError as e:
                if e.code != 404:
                    raise
                live = None
            if live is None:
                if strategy != "client":
                    client.request("POST", res.path(ns), params, with_last_applied(obj),
                                   verb="creating", what=d.source)
                print(f"{label} created{suffix}")
                continue
            if LAST_APPLIED not in ((live.get("metadata") or {}).get("annotations") or {}):
                print(f"Warning: resource {res.plural}/{name} is missing the {LAST_APPLIED} annotation which "
                      "is required by skiffctl apply. skiffctl apply should only be used on resources created "
                      "declaratively by skiffctl apply. The missing annotation will be patched automatically.",
                      file=sys.stderr)
            patch = compute_patch(obj, live)
            if not patch:
                print(f"{label} unchanged{suffix}")
                continue
            if strategy != "client":
                client.request("PATCH", res.path(ns, name), params, patch,
                               content_type="application/merge-patch+json", verb="patching", what=d.source)
            print(f"{label} configured{suffix}")
        except APIError as e:
            print(str(e), file=sys.stderr)
            rc = 1
        sys.stdout.flush()
    return rc
