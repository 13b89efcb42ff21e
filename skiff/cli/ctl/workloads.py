"""Deployment helpers shared by rollout, describe and scale: kubectl's deploymentutil
(revisions, the new and old ReplicaSets of a Deployment, template equality ignoring the
pod-template-hash label) and its Deployment status viewer (`rollout status`)."""
from __future__ import annotations

import copy

from .client import CtlError

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# annotations kubectl's rollback keeps from the Deployment instead of copying from the RS
ANNOTATIONS_TO_SKIP = {LAST_APPLIED, REVISION, "deployment.kubernetes.io/revision-history",
                       "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
                       "deprecated.deployment.rollback.to"}
TIMED_OUT_REASON = "ProgressDeadlineExceeded"


def meta(o: dict) -> dict:
    return o.get("metadata") or {}


def revision(obj: dict) -> int | None:
    v = (meta(obj).get("annotations") or {}).get(REVISION)
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _int(v, default=0) -> int:
    try:
        return int(v) if v is not None else default
    except (TypeError, ValueError):
        return default


def status_message(d: dict, want_revision: int = 0) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer.Status: (message, done); raises CtlError for a rollout
    that cannot finish (progress deadline exceeded, another revision)."""
    name = meta(d).get("name", "")
    spec, st = d.get("spec") or {}, d.get("status") or {}
    if want_revision > 0:
        rev = revision(d)
        if rev is None:
            raise CtlError(f'error: cannot get the revision of deployment "{name}"')
        if rev != want_revision:
            raise CtlError(f"error: desired revision ({want_revision}) is different from the running "
                           f"revision ({rev})")
    if _int(meta(d).get("generation")) <= _int(st.get("observedGeneration")):
        for c in st.get("conditions") or []:
            if c.get("type") == "Progressing" and c.get("reason") == TIMED_OUT_REASON:
                raise CtlError(f'error: deployment "{name}" exceeded its progress deadline')
        replicas = _int(spec.get("replicas"), 1)
        updated = _int(st.get("updatedReplicas"))
        if updated < replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} '
                    "new replicas have been updated...", False)
        if _int(st.get("replicas")) > updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {_int(st.get("replicas")) - updated} '
                    "old replicas are pending termination...", False)
        available = _int(st.get("availableReplicas"))
        if available < updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
                    "updated replicas are available...", False)
        return f'deployment "{name}" successfully rolled out', True
    return "Waiting for deployment spec update to be observed...", False


def template_without_hash(t: dict | None) -> dict:
    t = copy.deepcopy(t or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict | None, b: dict | None) -> bool:
    return _norm(template_without_hash(a)) == _norm(template_without_hash(b))


def _norm(v):
    """Compare as the API would: empty maps/lists and None are the same as absent."""
    if isinstance(v, dict):
        out = {k: _norm(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def controlled_by(obj: dict, owner: dict) -> bool:
    uid = meta(owner).get("uid")
    for r in meta(obj).get("ownerReferences") or []:
        if r.get("controller") and (r.get("uid") == uid or (not uid and r.get("name") == meta(owner).get("name"))):
            return True
    return False


def selector_query(sel: dict | None) -> str | None:
    """A LabelSelector as a labelSelector query string (matchLabels and matchExpressions)."""
    if not sel:
        return None
    from .printers import selector_string
    return selector_string(sel) or None


def replicasets_of(client, d: dict) -> list[dict]:
    """The ReplicaSets a Deployment controls (deploymentutil.ListReplicaSets), oldest first."""
    ns = meta(d).get("namespace")
    lst = client.list("replicasets", ns, label_selector=selector_query((d.get("spec") or {}).get("selector")))
    rses = [rs for rs in lst.get("items") or [] if controlled_by(rs, d)]
    rses.sort(key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs).get("name") or ""))
    return rses


def split_new_old(d: dict, rses: list[dict]) -> tuple[dict | None, list[dict]]:
    """(new RS, old RSes): the new one has the Deployment's template (ignoring the hash label);
    the oldest such wins, as in deploymentutil.FindNewReplicaSet."""
    tmpl = (d.get("spec") or {}).get("template")
    new = None
    for rs in rses:
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), tmpl):
            new = rs
            break
    return new, [rs for rs in rses if rs is not new]


def history(rses: list[dict]) -> dict[int, dict]:
    """revision -> the RS's pod template, with the RS's change-cause copied into the template's
    annotations (kubectl's DeploymentHistoryViewer)."""
    out: dict[int, dict] = {}
    for rs in rses:
        v = revision(rs)
        if v is None:
            continue
        t = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        cause = (meta(rs).get("annotations") or {}).get(CHANGE_CAUSE)
        md = t.setdefault("metadata", {})
        if md.get("annotations") is None:
            md["annotations"] = {}
        if cause:
            md["annotations"][CHANGE_CAUSE] = cause
        out[v] = t
    return out


def history_table(hist: dict[int, dict]) -> str:
    from .printers import tabwrite
    rows = [["REVISION", "CHANGE-CAUSE"]]
    for r in sorted(hist):
        cause = ((hist[r].get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"
        rows.append([str(r), cause])
    return tabwrite(rows, padding=2, minwidth=0)


def rollback_target(d: dict, rses: list[dict], to_revision: int) -> dict:
    """kubectl's deploymentRevision: the RS of ``to_revision``, or for 0 the previous one."""
    if to_revision < 0:
        raise CtlError(f"error: unable to find specified revision {to_revision} in history")
    latest, latest_rev, prev, prev_rev = None, -1, None, -1
    for rs in rses:
        v = revision(rs)
        if v is None:
            continue
        if to_revision == 0:
            if latest_rev < v:
                prev, prev_rev = latest, latest_rev
                latest, latest_rev = rs, v
            elif prev_rev < v:
                prev, prev_rev = rs, v
        elif v == to_revision:
            return rs
    if to_revision > 0:
        raise CtlError(f"error: unable to find specified revision {to_revision} in history")
    if prev is None:
        raise CtlError(f'error: no rollout history found for deployment "{meta(d).get("name", "")}"')
    return prev


def rollback_patch(d: dict, rs: dict) -> list[dict]:
    """kubectl's getDeploymentPatch: a JSON patch replacing spec.template with the RS's
    template (minus pod-template-hash) and metadata.annotations with the RS's (but the
    Deployment's own for the skipped keys)."""
    tmpl = template_without_hash((rs.get("spec") or {}).get("template"))
    ann: dict = {}
    dann = meta(d).get("annotations") or {}
    for k in ANNOTATIONS_TO_SKIP:
        if k in dann:
            ann[k] = dann[k]
    for k, v in (meta(rs).get("annotations") or {}).items():
        if k not in ANNOTATIONS_TO_SKIP:
            ann[k] = v
    op = "replace" if "annotations" in meta(d) else "add"
    return [{"op": "replace", "path": "/spec/template", "value": tmpl},
            {"op": op, "path": "/metadata/annotations", "value": ann}]
