"""Pure StatefulSet logic over plain dicts, after Kubernetes' pkg/controller/statefulset (1.32,
MaxUnavailableStatefulSet off as by default): pod identities and claims per ordinal, the revisions,
one sync's steps in Kubernetes' order, the status. No I/O here: skiff/controller/statefulset.py
carries the steps out.

- A pod belongs to ordinal N of set S when it is named ``S-N``; ordinals run from
  ``spec.ordinals.start`` for ``spec.replicas``. Its identity: labels
  ``statefulset.kubernetes.io/pod-name`` (its name), ``apps.kubernetes.io/pod-index`` (N),
  ``controller-revision-hash`` (the name of the ControllerRevision it was made from);
  ``spec.hostname`` = its name, ``spec.subdomain`` = ``spec.serviceName``.
- Storage: per claim template T a PersistentVolumeClaim ``T-S-N`` (the template's labels plus the
  selector's matchLabels) mounted as the pod's volume named T (a template volume of that name is
  replaced).
- One sync (updateStatefulSet): pods with an ordinal in range are replicas, the others condemned
  (highest first). Each replica in order: a failed or succeeded one is deleted and made again; a
  missing one is created (from the current revision below the partition, else the update
  revision); OrderedReady (monotonic) waits after a creation and at a pod that is terminating, not
  Running and Ready, or not yet available; Parallel goes on. Then the condemned, highest first,
  one at a time under OrderedReady (a not-ready one only when it is the first unhealthy pod).
  Then, for RollingUpdate, the pod with the highest ordinal at or above the partition that is not
  of the update revision is deleted (the next sync makes it again), one at a time, waiting for
  unhealthy pods; OnDelete stops before.
- Claims' owner references from persistentVolumeClaimRetentionPolicy: whenDeleted Delete makes the
  set an owner of its claims, whenScaled Delete makes a condemned pod the owner of its claims
  (they go with it); Retain removes those references.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from skiff.api.jsontree import json_copy
from skiff.controller.workloads import daemonlogic as D
from skiff.controller.workloads import logic as L

__all__ = ["POD_NAME_LABEL", "POD_INDEX_LABEL", "REVISION_LABEL", "ordinal_of", "start_ordinal", "in_range",
           "pod_name", "claim_name", "claims_for", "new_pod", "identity_patch", "Step", "Plan", "plan",
           "status_of", "complete_rolling_update", "revision_template", "new_revision", "revision_for",
           "history_to_prune", "claim_owner_refs", "is_healthy", "monotonic", "partition"]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = D.REVISION_HASH_LABEL           # controller-revision-hash: the revision's name
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# -- identity ------------------------------------------------------------------------------------
def ordinal_of(set_name: str, pod: dict) -> int:
    """The pod's ordinal in the set named ``set_name``; -1 when its name is not ``set_name-N``."""
    m = _ORDINAL.match(L.md(pod).get("name") or "")
    if m is None or m.group(1) != set_name:
        return -1
    try:
        return int(m.group(2))
    except ValueError:
        return -1


def start_ordinal(sts: dict) -> int:
    return int((((sts.get("spec") or {}).get("ordinals") or {}).get("start")) or 0)


def in_range(sts: dict, ordinal: int) -> bool:
    start = start_ordinal(sts)
    return start <= ordinal < start + L.spec_replicas(sts)


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{L.md(sts)['name']}-{ordinal}"


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    return f"{template_name}-{set_name}-{ordinal}"


def monotonic(sts: dict) -> bool:
    return (sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"


def partition(sts: dict) -> int:
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def _retention(sts: dict) -> tuple[str, str]:
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or "Retain", p.get("whenScaled") or "Retain"


def claims_for(sts: dict, ordinal: int) -> list[dict]:
    """getPersistentVolumeClaims: the claims of ``ordinal``, one per template, in template order."""
    sel_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    out = []
    for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or ():
        tm = t.get("metadata") or {}
        m = {"name": claim_name(tm.get("name") or "", L.md(sts)["name"], ordinal),
             "namespace": L.md(sts).get("namespace"),
             "labels": {**(tm.get("labels") or {}), **sel_labels}}
        if tm.get("annotations"):
            m["annotations"] = dict(tm["annotations"])
        spec = json_copy(t.get("spec") or {})
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": m, "spec": spec})
    return out


def _claim_volumes(sts: dict, ordinal: int, volumes: list | None) -> list[dict]:
    """updateStorage: a persistentVolumeClaim volume per claim template, then the other volumes."""
    claims = [(((t.get("metadata") or {}).get("name") or ""), c["metadata"]["name"])
              for t, c in zip((sts.get("spec") or {}).get("volumeClaimTemplates") or (), claims_for(sts, ordinal))]
    names = {n for n, _ in claims}
    out = [{"name": n, "persistentVolumeClaim": {"claimName": c}} for n, c in claims]
    return out + [v for v in volumes or () if v.get("name") not in names]


def new_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """newVersionedStatefulSetPod: pod ``ordinal`` of the set from ``template`` (the revision's)."""
    tmd = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    labels = dict(tmd.get("labels") or {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_LABEL] = revision
    m = {"name": name, "namespace": L.md(sts).get("namespace"), "labels": labels,
         "ownerReferences": [L.controller_ref(sts, "apps/v1", "StatefulSet")]}
    if tmd.get("annotations"):
        m["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        m["finalizers"] = list(tmd["finalizers"])
    spec = json_copy(template.get("spec") or {})
    spec["hostname"] = name
    svc = (sts.get("spec") or {}).get("serviceName")
    if svc:
        spec["subdomain"] = svc
    else:
        spec.pop("subdomain", None)
    if (sts.get("spec") or {}).get("volumeClaimTemplates"):
        spec["volumes"] = _claim_volumes(sts, ordinal, spec.get("volumes"))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec}


def identity_patch(sts: dict, pod: dict, ordinal: int) -> dict | None:
    """The labels a pod lacks for its identity (identityMatches; its hostname and subdomain cannot
    change on a pod, they are right from its creation); None when it has them."""
    labels = L.md(pod).get("labels") or {}
    want = {POD_NAME_LABEL: L.md(pod).get("name"), POD_INDEX_LABEL: str(ordinal)}
    missing = {k: v for k, v in want.items() if labels.get(k) != v}
    return missing or None


# -- pods' state ---------------------------------------------------------------------------------
def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _terminating(pod: dict) -> bool:
    return bool(L.md(pod).get("deletionTimestamp"))


def _running_ready(pod: dict) -> bool:
    return _phase(pod) == "Running" and L.is_pod_ready(pod)


def _available(pod: dict, mrs: int, now: float) -> bool:
    return _running_ready(pod) and L.is_pod_available(pod, mrs, now)


def is_healthy(pod: dict | None) -> bool:
    return pod is not None and _running_ready(pod) and not _terminating(pod)


def _revision_of(pod: dict) -> str | None:
    return (L.md(pod).get("labels") or {}).get(REVISION_LABEL)


# -- one sync ------------------------------------------------------------------------------------
@dataclass
class Step:
    """One thing to do: ``create`` (ordinal, revision: the pod and its missing claims), ``delete``
    (pod; why: "failed", "succeeded", "condemned", "update"), ``claims`` (pod: create its missing
    claims), ``identity`` (pod, labels to add). ``stop``: nothing more this sync once done (or when
    it fails)."""
    op: str
    ordinal: int = -1
    revision: str = ""
    pod: dict | None = None
    why: str = ""
    labels: dict | None = None
    stop: bool = False


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    waiting: str = ""                     # what OrderedReady (or the update) waits for, if anything
    requeue: float | None = None          # s until a ready pod becomes available


def _split(sts: dict, pods: list) -> tuple[list, list]:
    """(replicas indexed by ordinal - start, None where missing; condemned, highest ordinal first)."""
    name = L.md(sts)["name"]
    start, n = start_ordinal(sts), L.spec_replicas(sts)
    replicas: list = [None] * n
    condemned = []
    for p in pods:
        o = ordinal_of(name, p)
        if o < 0:
            continue
        if start <= o < start + n:
            replicas[o - start] = p
        else:
            condemned.append(p)
    condemned.sort(key=lambda p: ordinal_of(name, p), reverse=True)
    return replicas, condemned


def revision_for(sts: dict, ordinal: int, current: str, update: str) -> str:
    """The revision a new pod gets: the current one below the partition (RollingUpdate), else the
    update revision."""
    if ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" \
            and ordinal < start_ordinal(sts) + partition(sts):
        return current
    return update


def plan(sts: dict, pods: list, current: str, update: str, now: float) -> Plan:
    """The steps of one sync of ``sts`` over its pods (claimed ones), in Kubernetes' order."""
    out = Plan()
    if L.md(sts).get("deletionTimestamp"):
        return out
    mono = monotonic(sts)
    mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    start = start_ordinal(sts)
    replicas, condemned = _split(sts, pods)
    first_unhealthy = next((p for p in replicas if not is_healthy(p)), None)
    if first_unhealthy is None:
        first_unhealthy = next((p for p in reversed(condemned) if not is_healthy(p)), None)

    def wait(what: str, pod: dict | None = None) -> Plan:
        out.waiting = what
        if pod is not None and mrs and _running_ready(pod):
            out.requeue = float(mrs)
        return out

    for i, p in enumerate(replicas):
        ordinal = start + i
        if p is not None and _phase(p) in ("Failed", "Succeeded"):
            # deleted (a finished pod goes at once) and made again with the same name
            if not _terminating(p):
                out.steps.append(Step("delete", pod=p, why=_phase(p).lower()))
            p = None
        if p is None:
            out.steps.append(Step("create", ordinal=ordinal, revision=revision_for(sts, ordinal, current, update),
                                  stop=mono))
            if mono:
                return wait(f"pod {pod_name(sts, ordinal)} to be created")
            continue
        if _phase(p) == "Pending" and (sts.get("spec") or {}).get("volumeClaimTemplates"):
            out.steps.append(Step("claims", pod=p, ordinal=ordinal))
        if mono and _terminating(p):
            return wait(f"pod {L.md(p).get('name')} to terminate")
        if mono and not _running_ready(p):
            return wait(f"pod {L.md(p).get('name')} to be Running and Ready")
        if mono and not _available(p, mrs, now):
            return wait(f"pod {L.md(p).get('name')} to be available", p)
        labels = identity_patch(sts, p, ordinal)
        if labels:
            out.steps.append(Step("identity", pod=p, ordinal=ordinal, labels=labels))
    for p in condemned:
        name = L.md(p).get("name")
        if _terminating(p):
            if mono:
                return wait(f"pod {name} to terminate")
            continue
        if mono and p is not first_unhealthy and not _running_ready(p):
            return wait(f"pod {name} to be Running and Ready prior to scale down")
        if mono and p is not first_unhealthy and not _available(p, mrs, now):
            return wait(f"pod {name} to be available prior to scale down", p)
        out.steps.append(Step("delete", pod=p, why="condemned", stop=mono))
        if mono:
            return out
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        return out
    for i in range(len(replicas) - 1, partition(sts) - 1, -1):
        p = replicas[i]
        if p is None:
            return wait(f"pod {pod_name(sts, start + i)} to be created")
        if _revision_of(p) != update and not _terminating(p):
            out.steps.append(Step("delete", pod=p, why="update", stop=True))
            return out
        if not is_healthy(p):
            return wait(f"pod {L.md(p).get('name')} to update")
    return out


# -- status --------------------------------------------------------------------------------------
def status_of(sts: dict, pods: list, current: str, update: str, now: float, collision_count: int,
              observed_generation: int) -> dict:
    """updateStatus over the set's members (created pods; ones being deleted count as replicas but
    not as current or updated), then completeRollingUpdate."""
    mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    name = L.md(sts)["name"]
    replicas = ready = available = cur = upd = 0
    for p in pods:
        if ordinal_of(name, p) < 0 or not _phase(p):
            continue
        replicas += 1
        if _running_ready(p):
            ready += 1
            if _available(p, mrs, now):
                available += 1
        if not _terminating(p):
            rev = _revision_of(p)
            cur += rev == current
            upd += rev == update
    status = {"observedGeneration": observed_generation, "replicas": replicas, "readyReplicas": ready,
              "currentReplicas": cur, "updatedReplicas": upd, "currentRevision": current,
              "updateRevision": update, "collisionCount": collision_count, "availableReplicas": available}
    complete_rolling_update(sts, status)
    # omitempty as Kubernetes' JSON: replicas, availableReplicas and collisionCount are always there
    for k in ("observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas"):
        if not status[k]:
            del status[k]
    conds = (sts.get("status") or {}).get("conditions")
    if conds:
        status["conditions"] = conds
    return status


def complete_rolling_update(sts: dict, status: dict) -> None:
    """A RollingUpdate whose every pod is updated and ready makes the update revision current."""
    if ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" \
            and status["updatedReplicas"] == status["replicas"] and status["readyReplicas"] == status["replicas"]:
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


def min_ready_requeue(sts: dict, status: dict) -> float | None:
    mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    if mrs > 0 and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
        return float(mrs)
    return None


# -- revisions -----------------------------------------------------------------------------------
def revision_template(rev: dict) -> dict:
    """The pod template a ControllerRevision of a StatefulSet holds (ApplyRevision)."""
    t = dict((((rev.get("data") or {}).get("spec") or {}).get("template")) or {})
    t.pop("$patch", None)
    return t


def new_revision(sts: dict, revision: int, collision_count: int) -> dict:
    """The ControllerRevision of the set's template: ``<set>-<hash>``, the template's labels (and
    the hash), the set as its controller, the template as the strategic merge patch that restores
    it (what ``kubectl rollout undo`` applies)."""
    data = D.revision_data(sts)
    h = L.compute_hash(data, collision_count)
    labels = dict((((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    labels["controller.kubernetes.io/hash"] = h
    m = {"name": f"{L.md(sts)['name']}-{h}", "namespace": L.md(sts).get("namespace"), "labels": labels,
         "ownerReferences": [L.controller_ref(sts, "apps/v1", "StatefulSet")]}
    if L.md(sts).get("annotations"):
        m["annotations"] = dict(L.md(sts)["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": m, "data": data,
            "revision": revision}


def history_to_prune(sts: dict, revisions: list, live: set) -> list[dict]:
    """truncateHistory: the oldest revisions no pod runs and that are neither current nor the
    update, beyond revisionHistoryLimit."""
    limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    historic = [r for r in sorted(revisions, key=lambda r: int(r.get("revision") or 0))
                if L.md(r).get("name") not in live]
    return historic[:max(len(historic) - limit, 0)]


# -- claims' owners ------------------------------------------------------------------------------
def _owner_ref(owner: dict, api_version: str, kind: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": L.md(owner)["name"], "uid": L.md(owner)["uid"]}


def claim_owner_refs(sts: dict, pod: dict | None, claim: dict) -> list | None:
    """updateClaimOwnerRefForSetAndPod: the claim's owner references as the retention policy wants
    them (the set's for whenDeleted Delete; the pod's when whenScaled Delete and the pod is scaled
    away); None when they are right already."""
    when_deleted, when_scaled = _retention(sts)
    refs = list(L.md(claim).get("ownerReferences") or ())
    set_uid = L.md(sts).get("uid")
    pod_uid = L.md(pod).get("uid") if pod is not None else None
    scaled_down = pod is not None and not in_range(sts, ordinal_of(L.md(sts)["name"], pod))
    want_set = when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down)
    want_pod = when_scaled == "Delete" and scaled_down
    out = [r for r in refs if r.get("uid") not in (set_uid, pod_uid)]
    if want_set:
        out.append(next((r for r in refs if r.get("uid") == set_uid), None)
                   or _owner_ref(sts, "apps/v1", "StatefulSet"))
    if want_pod and pod_uid:
        out.append(next((r for r in refs if r.get("uid") == pod_uid), None) or _owner_ref(pod, "v1", "Pod"))
    key = lambda r: r.get("uid") or ""  # noqa: E731
    if sorted(out, key=key) == sorted(refs, key=key):
        return None
    return out
