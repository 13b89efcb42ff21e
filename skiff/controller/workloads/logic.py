"""Pure workload logic over plain dicts, ported from Kubernetes' pkg/controller/deployment/util,
pkg/controller/replicaset and pkg/api/v1/pod: pod-template-hash, maxSurge/maxUnavailable
arithmetic, the rollout steps, proportional scaling, status and conditions, and the order in which
surplus pods are deleted. No I/O here: the controllers call these and write the results.
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import time

from skiff.api.jsontree import json_copy
from skiff.api.timefmt import rfc3339
from skiff.controller.selectors import LabelRequirement, LabelSelector
from skiff.controller.selectors import selector_from  # noqa: F401 - the controllers use L.selector_from

HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_SKIP_ANNOTATIONS = {LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                     DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION,
                     "deprecated.deployment.rollback.to"}

# deployment condition reasons (k8s.io/kubernetes/pkg/controller/deployment/util)
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
FAILED_RS_CREATE = "ReplicaSetCreateError"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
MAX_INT32 = 2 ** 31 - 1

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# -- time ----------------------------------------------------------------------------------------
def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        s = s.replace("Z", "+00:00")
        return datetime.datetime.fromisoformat(s).timestamp()
    except (ValueError, AttributeError):
        return None


# -- small accessors -----------------------------------------------------------------------------
def md(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def spec_replicas(obj: dict | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def st(obj: dict | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def annotation(obj: dict | None, key: str) -> str | None:
    return (md(obj).get("annotations") or {}).get(key)


def int_annotation(obj: dict | None, key: str) -> int | None:
    v = annotation(obj, key)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def revision(obj: dict | None) -> int:
    return int_annotation(obj, REVISION_ANNOTATION) or 0


def controller_of(obj: dict | None) -> dict | None:
    for ref in md(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def controller_ref(owner: dict, api_version: str, kind: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": md(owner)["name"], "uid": md(owner)["uid"],
            "controller": True, "blockOwnerDeletion": True}


def creation_key(obj: dict) -> tuple:
    """Kubernetes' ReplicaSetsByCreationTimestamp / older-first order."""
    m = md(obj)
    return (m.get("creationTimestamp") or "", m.get("name") or "")


# -- selectors -----------------------------------------------------------------------------------
def selects(sel: LabelSelector | None, obj: dict) -> bool:
    return sel is not None and not sel.empty() and sel.matches_labels(md(obj).get("labels"))


class LabelMatch:
    """``sel.matches_labels(labels)`` remembered per labels object, for one pass over many pods:
    the pods of one template share one labels object once the informers hash-cons them (see
    skiff.api.jsontree), so a ReplicaSet's 10 000 pods cost one match, not 10 000. Keyed by
    identity: keep it only while the pods it has seen are alive (one synchronous pass)."""

    __slots__ = ("sel", "seen")

    def __init__(self, sel: LabelSelector | None):
        self.sel = sel if sel is not None and not sel.empty() else None
        self.seen: dict[int, tuple] = {}

    def __call__(self, obj: dict) -> bool:
        if self.sel is None:
            return False
        labels = md(obj).get("labels")
        hit = self.seen.get(id(labels))
        if hit is not None and hit[0] is labels:
            return hit[1]
        ok = self.sel.matches_labels(labels)
        self.seen[id(labels)] = (labels, ok)
        return ok


def selector_string(sel: dict | None) -> str:
    parts = [f"{k}={v}" for k, v in sorted(((sel or {}).get("matchLabels") or {}).items())]
    for e in (sel or {}).get("matchExpressions") or ():
        op, k, vals = e.get("operator"), e.get("key"), ",".join(e.get("values") or ())
        parts.append({"In": f"{k} in ({vals})", "NotIn": f"{k} notin ({vals})", "Exists": k,
                      "DoesNotExist": f"!{k}"}.get(op, k))
    return ",".join(parts)


# -- pod-template-hash ---------------------------------------------------------------------------
def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """k8s.io/apimachinery/pkg/util/rand.SafeEncodeString."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """controller.ComputeHash: fnv32a of the template (canonical JSON here, spew in Go) and the
    collision count, the decimal number encoded with SafeEncodeString."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def _prune(v):
    if isinstance(v, dict):
        out = {k: _prune(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [], "")}
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def equal_ignore_hash(t1: dict | None, t2: dict | None) -> bool:
    """deploymentutil.EqualIgnoreHash (empty values ignored as well, so that defaulting that
    drops or adds empty fields does not make equal templates differ)."""
    a, b = copy.deepcopy(t1 or {}), copy.deepcopy(t2 or {})
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if labels:
            labels.pop(HASH_LABEL, None)
    return _prune(a) == _prune(b)


# -- intstr arithmetic ---------------------------------------------------------------------------
def scaled_value(v, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"invalid value for IntOrString: {v!r}")
    if isinstance(v, int):
        return v
    s = str(v)
    if not s.endswith("%"):
        try:
            return int(s)
        except ValueError:
            raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage") from None
    p = int(s[:-1])
    x = p * total / 100
    return int(math.ceil(x)) if round_up else int(math.floor(x))


def is_rolling(d: dict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(max_surge, max_unavailable, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _ru(d: dict) -> dict:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: dict) -> int:
    if not is_rolling(d):
        return 0
    ru = _ru(d)
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), spec_replicas(d))[0]


def max_unavailable(d: dict) -> int:
    n = spec_replicas(d)
    if not is_rolling(d) or n == 0:
        return 0
    ru = _ru(d)
    _, u = resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), n)
    return min(u, n)


# -- replica set sets ----------------------------------------------------------------------------
def active(rss: list) -> list:
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def replica_count(rss: list) -> int:
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def actual_count(rss: list) -> int:
    return sum(st(rs, "replicas") for rs in rss if rs is not None)


def ready_count(rss: list) -> int:
    return sum(st(rs, "readyReplicas") for rs in rss if rs is not None)


def available_count(rss: list) -> int:
    return sum(st(rs, "availableReplicas") for rs in rss if rs is not None)


def find_new_rs(d: dict, rss: list) -> dict | None:
    """The oldest RS whose template equals the Deployment's (FindNewReplicaSet)."""
    tmpl = (d.get("spec") or {}).get("template")
    for rs in sorted(rss, key=creation_key):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), tmpl):
            return rs
    return None


def max_revision(rss: list) -> int:
    return max((revision(rs) for rs in rss), default=0)


def new_rs_new_replicas(d: dict, all_rss: list, new_rs: dict) -> int:
    """NewRSNewReplicas: how far the new RS may be scaled up in this step."""
    if is_rolling(d):
        want = spec_replicas(d)
        cur_new = spec_replicas(new_rs)
        max_total = want + max_surge(d)
        current = replica_count(all_rss)
        if current >= max_total:
            return cur_new
        up = min(max_total - current, want - cur_new)
        return cur_new + up
    return spec_replicas(d)


def cleanup_unhealthy(old_rss: list, max_cleanup: int) -> list[tuple[dict, int]]:
    """cleanupUnhealthyReplicas: [(rs, new replicas)] scaling down old RSes' unavailable pods."""
    out, total = [], 0
    for rs in sorted(old_rss, key=creation_key):
        if total >= max_cleanup:
            break
        n, avail = spec_replicas(rs), st(rs, "availableReplicas")
        if n == 0 or n == avail:
            continue
        down = min(max_cleanup - total, n - avail)
        out.append((rs, n - down))
        total += down
    return out


def scale_down_old_for_rolling(d: dict, all_rss: list, old_rss: list) -> list[tuple[dict, int]]:
    """scaleDownOldReplicaSetsForRollingUpdate."""
    min_available = spec_replicas(d) - max_unavailable(d)
    avail = available_count(all_rss)
    if avail <= min_available:
        return []
    out, total = [], 0
    want = avail - min_available
    for rs in sorted(old_rss, key=creation_key):
        if total >= want:
            break
        n = spec_replicas(rs)
        if n == 0:
            continue
        down = min(n, want - total)
        out.append((rs, n - down))
        total += down
    return out


def reconcile_old_rss(d: dict, all_rss: list, old_rss: list, new_rs: dict | None) -> list[tuple[dict, int]]:
    """reconcileOldReplicaSets: the old RS scale-downs of one rolling step (both phases), with
    the RS dicts updated in place-free copies for the second phase."""
    old_rss = active(old_rss)
    if replica_count(old_rss) == 0:
        return []
    all_count = replica_count(all_rss)
    min_available = spec_replicas(d) - max_unavailable(d)
    new_unavailable = spec_replicas(new_rs) - st(new_rs, "availableReplicas") if new_rs else 0
    max_down = all_count - min_available - new_unavailable
    if max_down <= 0:
        return []
    steps = cleanup_unhealthy(old_rss, max_down)
    changed = {md(rs)["name"]: n for rs, n in steps}
    after = [with_replicas(rs, changed[md(rs)["name"]]) if md(rs)["name"] in changed else rs for rs in old_rss]
    all_after = after + ([new_rs] if new_rs is not None else [])
    for rs, n in scale_down_old_for_rolling(d, all_after, after):
        changed[md(rs)["name"]] = n
    by_name = {md(rs)["name"]: rs for rs in old_rss}
    return [(by_name[name], n) for name, n in changed.items() if n != spec_replicas(by_name[name])]


def with_replicas(rs: dict, n: int) -> dict:
    return {**rs, "spec": {**(rs.get("spec") or {}), "replicas": n}}


def find_active_or_latest(new_rs: dict | None, old_rss: list) -> dict | None:
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=creation_key, reverse=True)
    alls = active(olds + [new_rs])
    if len(alls) == 0:
        return new_rs if new_rs is not None else olds[0]
    if len(alls) == 1:
        return alls[0]
    return None


def is_saturated(d: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    n = spec_replicas(d)
    return (int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == n and spec_replicas(rs) == n
            and st(rs, "availableReplicas") == n)


def is_scaling_event(d: dict, rss: list) -> bool:
    for rs in active(rss):
        desired = int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
        if desired is not None and desired != spec_replicas(d):
            return True
    return False


def _fraction(rs: dict, d: dict) -> int:
    if spec_replicas(d) == 0:
        return -spec_replicas(rs)
    deployment_replicas = spec_replicas(d) + max_surge(d)
    annotated = int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None:
        annotated = st(d, "replicas")
    if not annotated:
        return 0
    size = spec_replicas(rs) * deployment_replicas / annotated
    return int(math.floor(size + 0.5)) - spec_replicas(rs)      # Go's math.Round


def proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    f = _fraction(rs, d)
    allowed = to_add - added
    return min(f, allowed) if to_add > 0 else max(f, allowed)


def proportional_scale(d: dict, new_rs: dict | None, old_rss: list) -> tuple[list[tuple[dict, int]], str]:
    """DeploymentController.scale: [(rs, new size)] and the scaling operation ("up"/"down"/"")."""
    one = find_active_or_latest(new_rs, old_rss)
    if one is not None:
        if spec_replicas(one) == spec_replicas(d):
            return [], ""
        return [(one, spec_replicas(d))], ("up" if spec_replicas(one) < spec_replicas(d) else "down")
    if is_saturated(d, new_rs):
        return [(rs, 0) for rs in active(old_rss)], "down"
    if not is_rolling(d):
        return [], ""
    alls = active(old_rss + [new_rs])
    allowed = spec_replicas(d) + max_surge(d) if spec_replicas(d) > 0 else 0
    to_add = allowed - replica_count(alls)
    op = ""
    if to_add > 0:      # ReplicaSetsBySizeNewer
        alls.sort(key=lambda r: (-spec_replicas(r), tuple(_neg(creation_key(r)))))
        op = "up"
    elif to_add < 0:    # ReplicaSetsBySizeOlder
        alls.sort(key=lambda r: (-spec_replicas(r), creation_key(r)))
        op = "down"
    sizes, added = [], 0
    for rs in alls:
        if to_add != 0:
            p = proportion(rs, d, to_add, added)
            sizes.append(spec_replicas(rs) + p)
            added += p
        else:
            sizes.append(spec_replicas(rs))
    if alls and to_add != 0:
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return list(zip(alls, sizes)), op


class _Rev(str):
    def __lt__(self, other):
        return str.__gt__(self, other)


def _neg(key: tuple) -> tuple:
    return tuple(_Rev(x) for x in key)


def replicas_annotations_need_update(rs: dict, desired: int, max_replicas: int) -> bool:
    a = md(rs).get("annotations") or {}
    return a.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or a.get(MAX_REPLICAS_ANNOTATION) != str(max_replicas)


def new_rs_annotations(d: dict, rs_annotations: dict | None, new_revision: int, exists: bool) -> dict:
    """SetNewReplicaSetAnnotations: the annotations the new RS should carry."""
    a = dict(rs_annotations or {})
    for k, v in (md(d).get("annotations") or {}).items():
        if k in _SKIP_ANNOTATIONS:
            continue
        a[k] = v
    old = a.get(REVISION_ANNOTATION)
    try:
        old_int = int(old) if old is not None else 0
    except ValueError:
        old_int = 0
    if old_int < new_revision:
        a[REVISION_ANNOTATION] = str(new_revision)
        if old is not None:
            hist = a.get(REVISION_HISTORY_ANNOTATION) or ""
            a[REVISION_HISTORY_ANNOTATION] = old if not hist else f"{hist},{old}"
    if not exists:
        a[DESIRED_REPLICAS_ANNOTATION] = str(spec_replicas(d))
        a[MAX_REPLICAS_ANNOTATION] = str(spec_replicas(d) + max_surge(d))
    return a


def new_rs_object(d: dict, collision_count: int | None) -> dict:
    """The ReplicaSet a Deployment creates for its current template (0 replicas; the caller sets
    them and the annotations)."""
    dmd = md(d)
    spec = d.get("spec") or {}
    tmpl = copy.deepcopy(spec.get("template") or {})
    h = compute_hash(tmpl, collision_count)
    tmd = tmpl.setdefault("metadata", {})
    tmd["labels"] = {**(tmd.get("labels") or {}), HASH_LABEL: h}
    sel = copy.deepcopy(spec.get("selector") or {})
    sel["matchLabels"] = {**(sel.get("matchLabels") or {}), HASH_LABEL: h}
    rs_spec = {"replicas": 0, "selector": sel, "template": tmpl}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{dmd['name']}-{h}", "namespace": dmd.get("namespace"),
                         "labels": dict(tmd["labels"]),
                         "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")]},
            "spec": rs_spec}


def history_to_prune(d: dict, old_rss: list) -> list[dict]:
    """cleanupDeployment: the old RSes beyond revisionHistoryLimit that may be deleted."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not md(rs).get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    if diff <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), creation_key(rs)))
    out = []
    for rs in alive[:diff]:
        if st(rs, "replicas") != 0 or spec_replicas(rs) != 0 or \
                int(md(rs).get("generation") or 0) > st(rs, "observedGeneration"):
            continue
        out.append(rs)
    return out


# -- deployment status ---------------------------------------------------------------------------
def get_condition(status: dict | None, typ: str) -> dict | None:
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == typ:
            return c
    return None


def new_condition(typ: str, status: str, reason: str, message: str, now: str | None = None) -> dict:
    now = now or rfc3339()
    return {"type": typ, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition (same status and reason: unchanged)."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": cur.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, typ: str) -> None:
    if "conditions" in status:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != typ]
        if not status["conditions"]:
            del status["conditions"]


def has_progress_deadline(d: dict) -> bool:
    p = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return p is not None and int(p) != MAX_INT32


def _omit_zero(status: dict) -> dict:
    return {k: v for k, v in status.items() if v not in (0, None, [])}


def calculate_status(d: dict, all_rss: list, new_rs: dict | None, now: str | None = None) -> dict:
    """calculateStatus: counts from the RSes and the Available condition (zero counts are
    omitted, as Kubernetes' JSON does)."""
    avail = available_count(all_rss)
    total = replica_count(all_rss)
    old = d.get("status") or {}
    status = {"observedGeneration": int(md(d).get("generation") or 0),
              "replicas": actual_count(all_rss),
              "updatedReplicas": actual_count([new_rs]),
              "readyReplicas": ready_count(all_rss),
              "availableReplicas": avail,
              "unavailableReplicas": max(total - avail, 0)}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status = _omit_zero(status)
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if avail >= spec_replicas(d) - max_unavailable(d):
        set_condition(status, new_condition("Available", "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def deployment_complete(d: dict, status: dict) -> bool:
    n = spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == n and int(status.get("replicas") or 0) == n
            and int(status.get("availableReplicas") or 0) == n
            and int(status.get("observedGeneration") or 0) >= int(md(d).get("generation") or 0))


def deployment_progressing(d: dict, status: dict) -> bool:
    old = d.get("status") or {}
    g = lambda s, k: int(s.get(k) or 0)  # noqa: E731
    return (g(status, "updatedReplicas") > g(old, "updatedReplicas")
            or g(status, "replicas") - g(status, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(status, "readyReplicas") > g(old, "readyReplicas")
            or g(status, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: dict, status: dict, now: float | None = None) -> bool:
    if not has_progress_deadline(d):
        return False
    c = get_condition(status, "Progressing")
    if c is None or c.get("reason") == NEW_RS_AVAILABLE:
        return False
    if c.get("reason") == TIMED_OUT:
        return True
    frm = parse_time(c.get("lastUpdateTime"))
    if frm is None:
        return False
    return frm + int(d["spec"]["progressDeadlineSeconds"]) < (time.time() if now is None else now)


def rollout_status(d: dict, all_rss: list, new_rs: dict | None, now: float | None = None) -> dict:
    """syncRolloutStatus: the new status with the Progressing condition estimated."""
    nows = rfc3339(now)
    status = calculate_status(d, all_rss, new_rs, nows)
    if not has_progress_deadline(d):
        remove_condition(status, "Progressing")
    cur = get_condition(d.get("status"), "Progressing")
    complete_before = (status.get("replicas", 0) == status.get("updatedReplicas", 0) and cur is not None
                       and cur.get("reason") == NEW_RS_AVAILABLE)
    name = md(d).get("name")
    if has_progress_deadline(d) and not complete_before:
        rsn = md(new_rs).get("name") if new_rs is not None else None
        if deployment_complete(d, status):
            msg = f'ReplicaSet "{rsn}" has successfully progressed.' if rsn else \
                f'Deployment "{name}" has successfully progressed.'
            set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg, nows))
        elif deployment_progressing(d, status):
            msg = f'ReplicaSet "{rsn}" is progressing.' if rsn else f'Deployment "{name}" is progressing.'
            c = new_condition("Progressing", "True", RS_UPDATED, msg, nows)
            if cur is not None:
                if cur.get("status") == "True":
                    c["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(status, "Progressing")
            status["conditions"] = (status.get("conditions") or []) + [c]
        elif deployment_timed_out(d, status, now):
            msg = f'ReplicaSet "{rsn}" has timed out progressing.' if rsn else \
                f'Deployment "{name}" has timed out progressing.'
            set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg, nows))
    failure = next((c for rs in all_rss if rs is not None
                    for c in (rs.get("status") or {}).get("conditions") or ()
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    if failure is not None:
        set_condition(status, {"type": "ReplicaFailure", "status": "True",
                               "lastUpdateTime": failure.get("lastTransitionTime") or nows,
                               "lastTransitionTime": failure.get("lastTransitionTime") or nows,
                               "reason": failure.get("reason"), "message": failure.get("message")})
    else:
        remove_condition(status, "ReplicaFailure")
    return status


def stuck_requeue_after(d: dict, status: dict, now: float | None = None) -> float | None:
    """requeueStuckDeployment: seconds until the progress deadline should be checked again."""
    c = get_condition(status, "Progressing")
    if not has_progress_deadline(d) or c is None or c.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    if deployment_complete(d, status):
        return None
    frm = parse_time(c.get("lastUpdateTime"))
    if frm is None:
        return None
    after = frm + int(d["spec"]["progressDeadlineSeconds"]) - (time.time() if now is None else now)
    return max(after, 0.0) + 1.0


def paused_condition(d: dict, now: str | None = None) -> dict | None:
    """checkPausedConditions: the Progressing condition to set when paused/resumed, or None."""
    if not has_progress_deadline(d):
        return None
    cur = get_condition(d.get("status"), "Progressing")
    if cur is not None and cur.get("reason") == TIMED_OUT:
        return None
    paused = bool((d.get("spec") or {}).get("paused"))
    is_paused_cond = cur is not None and cur.get("reason") == PAUSED
    if paused and not is_paused_cond:
        return new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", now)
    if not paused and is_paused_cond:
        return new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    return None


# -- pods ----------------------------------------------------------------------------------------
def pod_ready_condition(pod: dict) -> dict | None:
    return get_condition(pod.get("status"), "Ready")


def is_pod_ready(pod: dict) -> bool:
    c = pod_ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: dict, min_ready_seconds: int, now: float | None = None) -> bool:
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    t = parse_time(pod_ready_condition(pod).get("lastTransitionTime"))
    if t is None:
        return False
    return t + min_ready_seconds <= (time.time() if now is None else now)


def is_pod_active(pod: dict) -> bool:
    """controller.IsPodActive: not terminal and not being deleted."""
    return ((pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not md(pod).get("deletionTimestamp"))


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_key(pod: dict, rank: int) -> tuple:
    """ActivePodsWithRanks.Less as a sort key: the pods to delete first sort first."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    assigned = 1 if spec.get("nodeName") else 0
    phase = _PHASE_RANK.get(status.get("phase"), 0)
    ready = 1 if is_pod_ready(pod) else 0
    try:
        cost = int(annotation(pod, DELETION_COST_ANNOTATION) or 0)
    except ValueError:
        cost = 0
    ready_since = 0.0
    if ready:
        ready_since = parse_time(pod_ready_condition(pod).get("lastTransitionTime")) or 0.0
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = parse_time(md(pod).get("creationTimestamp")) or 0.0
    # unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower deletion cost
    # first; more co-located pods (rank) first; ready more recently first; more restarts first;
    # newer first.
    return (assigned, phase, ready, cost, -rank, -ready_since, -restarts, -created, md(pod).get("name") or "")


def pods_to_delete(pods: list, related: list, n: int) -> list:
    """getPodsToDelete: the ``n`` pods to delete first, ranked by how many related pods share
    their node."""
    if n >= len(pods):
        return list(pods)
    per_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            per_node[node] = per_node.get(node, 0) + 1
    keyed = []
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        rank = per_node.get(node, 0) if node else 0
        keyed.append((_deletion_key(p, rank), p))
    keyed.sort(key=lambda kp: kp[0])
    return [p for _, p in keyed[:n]]


def pod_from_template(rs: dict, api_version: str = "apps/v1", kind: str = "ReplicaSet") -> dict:
    """GetPodFromTemplate: the pod a ReplicaSet (or ReplicationController) creates."""
    tmpl = (rs.get("spec") or {}).get("template") or {}
    tmd = tmpl.get("metadata") or {}
    m = {"generateName": f"{md(rs)['name']}-", "namespace": md(rs).get("namespace"),
         "labels": dict(tmd.get("labels") or {}),
         "ownerReferences": [controller_ref(rs, api_version, kind)]}
    if tmd.get("annotations"):
        m["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        m["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": json_copy(tmpl.get("spec") or {})}


def rs_status(rs: dict, pods: list, manage_error: str | None, diff: int, now: float | None = None) -> dict:
    """calculateStatus of the ReplicaSet controller (pods: the active, owned ones)."""
    old = rs.get("status") or {}
    tsel = LabelSelector([LabelRequirement(k, "=", (str(v),)) for k, v in
                          sorted(((((rs.get("spec") or {}).get("template") or {}).get("metadata") or {})
                                  .get("labels") or {}).items())])
    mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    now = time.time() if now is None else now
    full = ready = avail = 0
    labeled = LabelMatch(tsel) if not tsel.empty() else None
    for p in pods:
        if labeled is None or labeled(p):
            full += 1
        if is_pod_ready(p):
            ready += 1
            if is_pod_available(p, mrs, now):
                avail += 1
    status = _omit_zero({"replicas": len(pods), "fullyLabeledReplicas": full, "readyReplicas": ready,
                         "availableReplicas": avail,
                         "observedGeneration": int(md(rs).get("generation") or 0)})
    conds = [dict(c) for c in old.get("conditions") or ()]
    failure = next((c for c in conds if c.get("type") == "ReplicaFailure"), None)
    if manage_error and failure is None:
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conds.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                      "reason": reason, "message": manage_error})
    elif not manage_error and failure is not None:
        conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
    if conds:
        status["conditions"] = conds
    return status


def min_ready_requeue(rs: dict, status: dict) -> float | None:
    """Requeue a RS with minReadySeconds whose ready pods are not all available yet."""
    mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    n = spec_replicas(rs)
    if mrs > 0 and int(status.get("readyReplicas") or 0) == n and int(status.get("availableReplicas") or 0) != n:
        return float(mrs)
    return None
