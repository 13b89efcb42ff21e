"""DaemonSet helpers for rollout: kubectl's DaemonSet status viewer (`rollout status`), its
history viewer (the ControllerRevisions a DaemonSet controls) and its rollbacker (`rollout
undo`: the revision's data, a strategic merge patch that puts its template back)."""
from __future__ import annotations

from .client import APIError, CtlError
from .workloads import CHANGE_CAUSE, controlled_by, meta, selector_query


def _int(v) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def status_message(ds: dict) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer.Status: (message, done); OnDelete DaemonSets have no
    rollout to follow."""
    name, st = meta(ds).get("name", ""), ds.get("status") or {}
    if ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        raise CtlError("error: rollout status is only available for RollingUpdate strategy type")
    if _int(meta(ds).get("generation")) > _int(st.get("observedGeneration")):
        return "Waiting for daemon set spec update to be observed...", False
    desired, updated = _int(st.get("desiredNumberScheduled")), _int(st.get("updatedNumberScheduled"))
    if updated < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have '
                "been updated...", False)
    available = _int(st.get("numberAvailable"))
    if available < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
                "available...", False)
    return f'daemon set "{name}" successfully rolled out', True


def revisions_of(client, ds: dict) -> dict[int, dict]:
    """The ControllerRevisions the DaemonSet controls, by revision."""
    lst = client.list("controllerrevisions", meta(ds).get("namespace"),
                      label_selector=selector_query((ds.get("spec") or {}).get("selector")))
    return {_int(r.get("revision")): r for r in lst.get("items") or [] if controlled_by(r, ds)}


def template_of(rev: dict) -> dict:
    """The pod template a revision restores."""
    t = dict(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    t.pop("$patch", None)
    return t


def history_table(revs: dict[int, dict]) -> str:
    from .printers import tabwrite
    rows = [["REVISION", "CHANGE-CAUSE"]]
    rows += [[str(r), (meta(revs[r]).get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"] for r in sorted(revs)]
    return tabwrite(rows, padding=2, minwidth=0)


def rollback(client, path: str, head: str, ds: dict, to_revision: int) -> int:
    """kubectl's DaemonSetRollbacker: the revision ``to_revision`` (0: the one before the
    latest) patched back into the DaemonSet."""
    revs = revisions_of(client, ds)
    if to_revision == 0 and len(revs) <= 1:
        raise CtlError("error: no last revision to roll back to")
    rev = revs.get(to_revision) if to_revision else revs[sorted(revs)[-2]]
    if rev is None:
        raise CtlError(f"error: unable to find specified revision {to_revision} in history")
    if template_of(rev) == (ds.get("spec") or {}).get("template"):
        print(f"{head} skipped rollback (current template already matches revision {to_revision})")
        return 0
    try:
        client.request("PATCH", path, body=rev.get("data"), content_type="application/strategic-merge-patch+json")
    except APIError as e:
        raise CtlError(f"error: failed restoring revision {to_revision}: {e.message or e}") from None
    print(f"{head} rolled back")
    return 0
