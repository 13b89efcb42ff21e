"""Pure DaemonSet logic over plain dicts, after the behaviour of Kubernetes' pkg/controller/daemon
(1.32): which nodes should run a daemon pod, the pod made for a node, what to create and delete on
each node, one rolling-update step, the status, the back-off for failed pods and the
ControllerRevisions of the template. No I/O here: skiff/controller/daemonset.py calls these and
writes the results.

- A node should run the daemon pod when it matches the template's nodeName, nodeSelector and
  required node affinity and every NoSchedule/NoExecute taint on it is tolerated; when only a
  taint stands in the way, a pod already there keeps running as long as its NoExecute taints
  are tolerated. The taints are the node's own plus the one its Ready condition implies
  (``not-ready`` / ``unreachable``: NoSchedule), as the scheduler sees them: skiff's node
  lifecycle controller does not write those into the Node as Kubernetes' does.
- Daemon pods tolerate what Kubernetes' daemon pods tolerate: not-ready and unreachable
  NoExecute (no tolerationSeconds: they are never evicted), disk-, memory- and pid-pressure and
  unschedulable NoSchedule, and network-unavailable NoSchedule when they use the host's network.
- A pod is made for one node through the scheduler: its required node affinity is replaced with
  ``matchFields metadata.name In [NODE]``; labels ``controller-revision-hash`` (the revision's
  hash) and ``pod-template-generation`` (the DaemonSet's template generation).
- A pod is up to date when its hash label is the current revision's or its generation label is
  the DaemonSet's template generation.
- Per node: one pod where it should run (the oldest stays), none where it may not keep running;
  succeeded pods go, failed ones go after a per-node back-off; with maxSurge an old and a new pod
  may share a node until the new one is available.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from skiff.api.jsontree import json_copy
from skiff.controller.scheduler.filters import node_selector_matches, node_taints, untolerated_taint
from skiff.controller.scheduler.terms import node_affinity_matches, required_node_affinity
from skiff.controller.workloads import logic as L

__all__ = ["REVISION_HASH_LABEL", "TEMPLATE_GENERATION_LABEL", "TEMPLATE_GENERATION_ANNOTATION", "BURST",
           "NodeFit", "daemon_tolerations", "target_node", "pods_by_node", "oldest_first", "is_updated",
           "template_generation", "pod_template", "pod_for_node", "Backoff", "Plan", "manage", "rolling_update",
           "surge_and_unavailable", "daemon_status", "min_ready_requeue", "revision_data", "revision_hash",
           "new_revision", "split_revisions", "next_revision", "revisions_to_prune"]

REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
BURST = 250                 # pods created (deleted) at most per sync
BACKOFF_BASE = 1.0          # s before a failed pod on a node is deleted again; doubled each time
BACKOFF_MAX = 900.0
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_NAME_FIELD = "metadata.name"

_DAEMON_TOLERATIONS = (("node.kubernetes.io/not-ready", "NoExecute"),
                       ("node.kubernetes.io/unreachable", "NoExecute"),
                       ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                       ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                       ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                       ("node.kubernetes.io/unschedulable", "NoSchedule"))
_HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


# -- which nodes ---------------------------------------------------------------------------------
def _identity(t: dict) -> tuple:
    """Tolerations are one and the same when key, effect, operator and value are."""
    return (t.get("key") or "", t.get("effect") or "", t.get("operator") or "", t.get("value") or "")


def daemon_tolerations(pod_spec: dict) -> list[dict]:
    """The template's tolerations with the daemon ones added; one the template has already (same
    key, effect, operator and value) is replaced by the daemon's (AddOrUpdateDaemonPodTolerations)."""
    tols = [t for t in pod_spec.get("tolerations") or () if isinstance(t, dict)]
    wanted = list(_DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append(_HOST_NETWORK_TOLERATION)
    for key, effect in wanted:
        mine = {"key": key, "operator": "Exists", "effect": effect}
        if any(_identity(t) == _identity(mine) for t in tols):
            tols = [mine if _identity(t) == _identity(mine) else t for t in tols]
        else:
            tols.append(mine)
    return tols


class NodeFit:
    """``fit(node) -> (should_run, should_continue_running)`` for one DaemonSet (its template parsed
    once, for every node of a sync)."""

    def __init__(self, ds: dict):
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        self.node_name = spec.get("nodeName") or ""
        self.selector = spec.get("nodeSelector") or {}
        self.affinity = required_node_affinity(spec.get("affinity"))
        self.tolerations = daemon_tolerations(spec)

    def __call__(self, node: dict) -> tuple[bool, bool]:
        name = L.md(node).get("name") or ""
        labels = L.md(node).get("labels") or {}
        if self.node_name and self.node_name != name:
            return False, False
        if self.selector and not node_selector_matches(self.selector, labels):
            return False, False
        if self.affinity is not None and not node_affinity_matches(self.affinity, labels, name):
            return False, False
        taints = node_taints(node)
        if untolerated_taint(self.tolerations, taints) is None:
            return True, True
        no_execute = [t for t in taints if t.get("effect") == "NoExecute"]
        return False, untolerated_taint(self.tolerations, no_execute) is None


# -- pods and nodes ------------------------------------------------------------------------------
def target_node(pod: dict) -> str | None:
    """The node a daemon pod is for: its nodeName, else the one its node affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(_REQUIRED) or {})
    for term in req.get("nodeSelectorTerms") or ():
        for e in (term or {}).get("matchFields") or ():
            if e.get("key") == _NAME_FIELD and e.get("operator") == "In":
                values = e.get("values") or ()
                return values[0] if len(values) == 1 else None
    return None


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pods_by_node(pods: list) -> dict[str, list[dict]]:
    """The DaemonSet's pods by the node they are for; finished pods already being deleted are
    left out (nothing more to do with them), and so are pods that name no node."""
    out: dict[str, list[dict]] = {}
    for p in pods:
        if _terminal(p) and L.md(p).get("deletionTimestamp"):
            continue
        node = target_node(p)
        if node:
            out.setdefault(node, []).append(p)
    return out


def oldest_first(pod: dict) -> tuple:
    """Scheduled pods first, then by creation time and name."""
    return (not (pod.get("spec") or {}).get("nodeName"), L.parse_time(L.md(pod).get("creationTimestamp")) or 0.0,
            L.md(pod).get("name") or "")


def template_generation(ds: dict) -> int | None:
    try:
        return int((L.md(ds).get("annotations") or {})[TEMPLATE_GENERATION_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        return None


def is_updated(pod: dict, hash_: str, generation: int | None) -> bool:
    labels = L.md(pod).get("labels") or {}
    if labels.get(REVISION_HASH_LABEL) == hash_:
        return True
    return generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation)


def pod_template(ds: dict, hash_: str) -> dict:
    """The pod the DaemonSet makes (before it is given a node): the template's metadata and spec,
    the daemon tolerations, the revision labels, the DaemonSet as its controller."""
    tmpl = (ds.get("spec") or {}).get("template") or {}
    tmd = tmpl.get("metadata") or {}
    labels = dict(tmd.get("labels") or {})
    gen = template_generation(ds)
    if gen is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(gen)
    labels[REVISION_HASH_LABEL] = hash_
    m = {"generateName": f"{L.md(ds)['name']}-", "namespace": L.md(ds).get("namespace"), "labels": labels,
         "ownerReferences": [L.controller_ref(ds, "apps/v1", "DaemonSet")]}
    if tmd.get("annotations"):
        m["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        m["finalizers"] = list(tmd["finalizers"])
    spec = json_copy(tmpl.get("spec") or {})
    spec["tolerations"] = daemon_tolerations(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec}


def pod_for_node(template: dict, node: str) -> dict:
    """``template`` bound to ``node`` through its required node affinity (the rest of its
    affinity kept)."""
    spec = dict(template["spec"])
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    node_affinity[_REQUIRED] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": _NAME_FIELD, "operator": "In", "values": [node]}]}]}
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    return {**template, "spec": spec}


# -- failed pods ---------------------------------------------------------------------------------
class Backoff:
    """Per (DaemonSet uid, observed generation, node): how long to wait before deleting a failed
    daemon pod there again (1 s doubling to 15 min; forgotten after twice that without a
    failure). A new generation of the DaemonSet starts afresh."""

    def __init__(self, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX):
        self.base, self.cap = base, cap
        self.entries: dict[tuple, tuple[float, float]] = {}    # key -> (delay, last failure)

    def waiting(self, key: tuple, now: float) -> float:
        """Seconds left before the next deletion there (0: none)."""
        e = self.entries.get(key)
        if e is None:
            return 0.0
        return max(e[0] - (now - e[1]), 0.0)

    def step(self, key: tuple, now: float) -> None:
        for k, (_, last) in list(self.entries.items()):
            if now - last > 2 * self.cap:
                del self.entries[k]
        e = self.entries.get(key)
        self.entries[key] = (self.base if e is None else min(e[0] * 2, self.cap), now)

    def forget(self, uid: str) -> None:
        for k in [k for k in self.entries if k[0] == uid]:
            del self.entries[k]


# -- one sync ------------------------------------------------------------------------------------
@dataclass
class Plan:
    create: list[str] = field(default_factory=list)          # nodes that need a daemon pod
    delete: list[dict] = field(default_factory=list)         # pods to delete
    failed: list[tuple[dict, str]] = field(default_factory=list)   # failed pods among them, with their node
    succeeded: list[tuple[dict, str]] = field(default_factory=list)   # and succeeded ones
    retry: float | None = None                               # s until a backed-off node is looked at again


def surge_and_unavailable(ds: dict, desired: int) -> tuple[int, int]:
    """maxSurge and maxUnavailable of a RollingUpdate DaemonSet for ``desired`` nodes
    (percentages rounded up); both 0 is taken as maxUnavailable 1. OnDelete: (0, 0)."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    surge = L.scaled_value(ru.get("maxSurge", 0), desired, True)
    unavailable = L.scaled_value(ru.get("maxUnavailable", 1), desired, True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _allows_surge(ds: dict) -> bool:
    return surge_and_unavailable(ds, 1)[0] > 0


def _node_plan(ds: dict, node: str, run: bool, keep: bool, pods: list | None, hash_: str, backoff: Backoff,
               now: float, plan: Plan) -> None:
    """podsShouldBeOnNode: what one node needs."""
    if run and pods is None:
        plan.create.append(node)
        return
    if not keep:
        plan.delete.extend(p for p in pods or () if not L.md(p).get("deletionTimestamp"))
        return
    running = []
    for p in pods or ():
        if L.md(p).get("deletionTimestamp"):
            continue
        phase = (p.get("status") or {}).get("phase")
        if phase == "Failed":
            key = (L.md(ds).get("uid"), L.st(ds, "observedGeneration"), node)
            wait = backoff.waiting(key, now)
            if wait > 0:
                plan.retry = wait if plan.retry is None else min(plan.retry, wait)
                continue
            backoff.step(key, now)
            plan.delete.append(p)
            plan.failed.append((p, node))
        elif phase == "Succeeded":
            plan.delete.append(p)
            plan.succeeded.append((p, node))
        else:
            running.append(p)
    running.sort(key=oldest_first)
    if not _allows_surge(ds):
        plan.delete.extend(running[1:])     # one pod per node: the oldest stays
        return
    if not running:
        if run:
            plan.create.append(node)
        return
    # surging: at most the oldest pod of the current revision and the oldest other one; the other
    # one goes once the new one is available, or at once when it is not ready itself
    current = [(L.md(p).get("labels") or {}).get(REVISION_HASH_LABEL) == hash_ for p in running]
    new = next((p for p, c in zip(running, current) if c), None)
    old = next((p for p, c in zip(running, current) if not c), None)
    plan.delete.extend(p for p in running if p is not new and p is not old)
    if new is not None and old is not None:
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if not L.is_pod_ready(old) or L.is_pod_available(new, mrs, now):
            plan.delete.append(old)


def manage(ds: dict, nodes: list, fit: NodeFit, by_node: dict, hash_: str, backoff: Backoff, now: float) -> Plan:
    """The creations and deletions that bring every node to one daemon pod where it should run
    and none where it should not; pods for nodes that do not exist and were never scheduled go."""
    plan = Plan()
    names = set()
    for node in nodes:
        name = L.md(node).get("name") or ""
        names.add(name)
        run, keep = fit(node)
        _node_plan(ds, name, run, keep, by_node.get(name), hash_, backoff, now, plan)
    for name, pods in by_node.items():
        if name not in names:
            plan.delete.extend(p for p in pods if not (p.get("spec") or {}).get("nodeName")
                               and not L.md(p).get("deletionTimestamp"))
    return plan


def _on_node(pods: list | None, hash_: str, generation: int | None) -> tuple[dict | None, dict | None, bool]:
    """findUpdatedPodsOnNode: (the new pod, the old pod, ok); not ok when there are two of
    either (the manage step deals with that first). Pods being deleted do not count."""
    new = old = None
    for p in pods or ():
        if L.md(p).get("deletionTimestamp"):
            continue
        if is_updated(p, hash_, generation):
            if new is not None:
                return None, None, False
            new = p
        else:
            if old is not None:
                return None, None, False
            old = p
    return new, old, True


def rolling_update(ds: dict, nodes: list, fit: NodeFit, by_node: dict, hash_: str,
                   now: float) -> tuple[list[dict], list[str]]:
    """One RollingUpdate step: (old pods to delete, nodes to create a new pod on).

    Without surge, old available pods are deleted while fewer than maxUnavailable nodes are
    unavailable (an unavailable new pod, a node without a pod, a node the manage step still has
    to fix all count; old unavailable pods are replaced at once); the manage step then creates
    their replacements. With maxSurge, a new pod is created next to an old available one on up to
    maxSurge nodes at a time (at once where the old one is unavailable), and the old one is
    deleted when the new one is available; old pods on nodes that no longer qualify are deleted
    only as far as more nodes are available than desired."""
    mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    gen = template_generation(ds)
    by_name = {L.md(n).get("name") or "": n for n in nodes}
    pods_of = dict(by_node)
    desired = 0
    for name, node in by_name.items():
        if fit(node)[0]:
            desired += 1
            pods_of.setdefault(name, None)
    surge, unavailable = surge_and_unavailable(ds, desired)
    available = lambda p: L.is_pod_available(p, mrs, now)  # noqa: E731
    order = sorted(pods_of)
    if surge == 0:
        n_unavailable, replace, candidates = 0, [], []
        for name in order:
            new, old, ok = _on_node(pods_of[name], hash_, gen)
            if not ok or (new is None) == (old is None):
                n_unavailable += 1          # the manage step creates or deletes here
            elif new is not None:
                if not available(new):
                    n_unavailable += 1
            elif not available(old):
                replace.append(old)
            elif n_unavailable < unavailable:
                candidates.append(old)
        room = min(max(unavailable - n_unavailable, 0), len(candidates))
        return replace + candidates[:room], []
    delete, off_node, candidates, allowed = [], [], [], []
    n_surge = n_available = 0
    for name in order:
        new, old, ok = _on_node(pods_of[name], hash_, gen)
        if not ok:
            n_surge += 1
            continue
        if (old is not None and available(old)) or (old is None and new is not None and available(new)):
            n_available += 1
        if old is None:
            continue
        node = by_name.get(name)
        runs = node is not None and fit(node)[0]
        if new is None:
            if not available(old):
                if runs:
                    allowed.append(name)
                else:
                    delete.append(old)
            elif not runs:
                off_node.append(old)
            elif n_surge < surge:
                candidates.append(name)
        elif not available(new):
            n_surge += 1
        else:
            delete.append(old)
    spare = min(max(n_available - desired, 0), len(off_node))
    delete += off_node[:spare]
    room = min(max(surge - n_surge, 0), len(candidates))
    return delete, allowed + candidates[:room]


def daemon_status(ds: dict, nodes: list, fit: NodeFit, by_node: dict, hash_: str, now: float,
                  observed_generation: int) -> dict:
    """The status as Kubernetes computes it: per node that should run the pod, the oldest of its
    pods decides ready, available and up to date; nodes that should not but have one are
    misscheduled. The four node counts are always there, the others when not zero."""
    mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    gen = template_generation(ds)
    desired = current = ready = available = updated = misscheduled = 0
    for node in nodes:
        pods = by_node.get(L.md(node).get("name") or "")
        if not fit(node)[0]:
            if pods:
                misscheduled += 1
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = min(pods, key=oldest_first)
        if L.is_pod_ready(pod):
            ready += 1
            if L.is_pod_available(pod, mrs, now):
                available += 1
        if is_updated(pod, hash_, gen):
            updated += 1
    status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
              "desiredNumberScheduled": desired, "numberReady": ready}
    for k, v in (("observedGeneration", observed_generation), ("updatedNumberScheduled", updated),
                 ("numberAvailable", available), ("numberUnavailable", desired - available),
                 ("collisionCount", ((ds.get("status") or {}).get("collisionCount")))):
        if v:
            status[k] = v
    conds = (ds.get("status") or {}).get("conditions")
    if conds:
        status["conditions"] = conds
    return status


def min_ready_requeue(ds: dict, status: dict) -> float | None:
    """Seconds until ready pods of a DaemonSet with minReadySeconds may have become available."""
    mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    if mrs > 0 and status.get("numberReady", 0) != status.get("numberAvailable", 0):
        return float(mrs)
    return None


# -- revisions -----------------------------------------------------------------------------------
def revision_data(ds: dict) -> dict:
    """A revision's data: the strategic merge patch that puts the DaemonSet's template back."""
    return {"spec": {"template": {**((ds.get("spec") or {}).get("template") or {}), "$patch": "replace"}}}


def revision_hash(ds: dict) -> str:
    return L.compute_hash((ds.get("spec") or {}).get("template") or {},
                          (ds.get("status") or {}).get("collisionCount"))


def new_revision(ds: dict, revision: int) -> dict:
    """The ControllerRevision of the DaemonSet's current template: ``<name>-<hash>``, the template's
    labels and the hash label, the DaemonSet's annotations, the DaemonSet as its controller."""
    h = revision_hash(ds)
    labels = dict((((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    labels[REVISION_HASH_LABEL] = h
    m = {"name": f"{L.md(ds)['name']}-{h}", "namespace": L.md(ds).get("namespace"), "labels": labels,
         "ownerReferences": [L.controller_ref(ds, "apps/v1", "DaemonSet")]}
    if L.md(ds).get("annotations"):
        m["annotations"] = dict(L.md(ds)["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": m, "data": revision_data(ds),
            "revision": revision}


def split_revisions(ds: dict, revisions: list) -> tuple[list[dict], list[dict]]:
    """(the revisions of the current template, the others)."""
    data = revision_data(ds)
    cur = [r for r in revisions if r.get("data") == data]
    return cur, [r for r in revisions if r.get("data") != data]


def next_revision(old: list) -> int:
    return max((int(r.get("revision") or 0) for r in old), default=0) + 1


def revisions_to_prune(ds: dict, old: list, live_hashes: set) -> list[dict]:
    """The old revisions beyond revisionHistoryLimit, oldest first, that no pod still runs."""
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    excess = len(old) - (10 if limit is None else int(limit))
    out = []
    for r in sorted(old, key=lambda r: int(r.get("revision") or 0)):
        if excess <= 0:
            break
        if (L.md(r).get("labels") or {}).get(REVISION_HASH_LABEL) in live_hashes:
            continue
        out.append(r)
        excess -= 1
    return out
