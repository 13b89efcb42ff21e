"""DefaultPreemption (kube-scheduler's PostFilter plugin), for a pod no node fits:

- Eligibility: a pod with ``preemptionPolicy: Never`` preempts nothing; nor does one already
  nominated to a node where a lower-priority pod is still terminating (it waits for that room).
- Candidates: the nodes that pass the pod's static filters (node name, selector and required
  node affinity, taints, unschedulable: failures preemption cannot help). On each, the pods of
  lower priority are removed in a dry run; if the pod still does not fit (cpu, memory, pod
  count, host ports), the node has no victims. Otherwise victims are reprieved one by one,
  highest priority first, those whose PodDisruptionBudget would be violated first, and kept
  when the pod still fits with them (selectVictimsOnNode).
- The best candidate (pickOneNodeForPreemption): fewest budget violations, then the lowest
  highest-priority victim, then the smallest sum of victim priorities, then the fewest
  victims, then the node name.
- The victims get the DisruptionTarget condition (reason PreemptionByScheduler) and are
  deleted, each with a Normal ``Preempted`` event ``Preempted by pod <uid> on node <node>``; the
  preemptor gets ``status.nominatedNodeName``, and the room is kept for it: the scheduler counts
  nominated pods of equal or higher priority on a node when it fits other pods there.

The dry run looks at resources and host ports only. Pods with pod (anti-)affinity, topology
spread constraints or volume claims are not considered for preemption (their FailedScheduling
message carries no preemption part).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .filters import PodInfo, host_ports_conflict, static_reasons

__all__ = ["Candidate", "select_victims_on_node", "pick_one", "pdb_violation_counter",
           "R_NO_VICTIMS", "R_NOT_HELPFUL"]

R_NO_VICTIMS = "No preemption victims found for incoming pod"
R_NOT_HELPFUL = "Preemption is not helpful for scheduling"
_MAX_INT32 = 2 ** 31 - 1


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo] = field(default_factory=list)
    violations: int = 0


def _fits(pi: PodInfo, ni, removed: list[PodInfo], extra: tuple = (0, 0, 0, {})) -> bool:
    """Whether ``pi`` fits on ``ni`` with the pods ``removed`` gone (and ``extra`` (cpu, mem,
    pods, {other resource: amount}) of nominated pods still counted)."""
    cpu = ni.req_cpu - sum(p.cpu for p in removed) + extra[0]
    mem = ni.req_mem - sum(p.mem for p in removed) + extra[1]
    npods = ni.npods - len(removed) + extra[2]
    if npods + 1 > ni.alloc_pods:
        return False
    if pi.cpu and cpu + pi.cpu > ni.alloc_cpu:
        return False
    if pi.mem and mem + pi.mem > ni.alloc_mem:
        return False
    for name, amount in pi.scalars:
        used = (ni.req_scalar.get(name, 0) - sum(dict(p.scalars).get(name, 0) for p in removed)
                + extra[3].get(name, 0))
        if used + amount > ni.alloc_scalar.get(name, 0):
            return False
    if pi.ports:
        used: dict = {k: dict(v) for k, v in ni.ports.items()}
        for p in removed:
            for proto, port, ip in p.ports:
                c = used.get((proto, port))
                if c and c.get(ip):
                    c[ip] -= 1
                    if c[ip] <= 0:
                        del c[ip]
        if host_ports_conflict(pi.ports, {k: v for k, v in used.items() if v}):
            return False
    return True


def select_victims_on_node(pi: PodInfo, ni, pods: list[PodInfo], violates, extra=(0, 0, 0, {})) -> Candidate | None:
    """The fewest pods of lower priority to remove from ``ni`` for ``pi`` to fit, or None.
    ``violates(victims)``: the victims whose removal would violate a budget (a subset)."""
    lower = [p for p in pods if p.priority < pi.priority]
    if not lower or not _fits(pi, ni, lower, extra):
        return None
    # MoreImportantPod first: higher priority (the start time Kubernetes also compares is not kept)
    lower.sort(key=lambda p: -p.priority)
    violating = violates(lower)
    removed = list(lower)
    victims: list[PodInfo] = []
    n_violating = 0
    for group, counts in (([p for p in lower if p.key in violating], True),
                          ([p for p in lower if p.key not in violating], False)):
        for p in group:
            removed.remove(p)
            if not _fits(pi, ni, removed, extra):      # cannot be reprieved: a victim
                removed.append(p)
                victims.append(p)
                n_violating += counts
    return Candidate(ni.name, victims, n_violating)


def pick_one(cands: list[Candidate]) -> Candidate | None:
    if not cands:
        return None

    def rank(c: Candidate):
        top = max((v.priority for v in c.victims), default=-_MAX_INT32 - 1)
        return (c.violations, top, sum(v.priority + _MAX_INT32 + 1 for v in c.victims), len(c.victims), c.node)
    return min(cands, key=rank)


def pdb_violation_counter(pdbs: list[dict]):
    """A ``violates(victims)`` over the budgets (filterPodsWithPDBViolation): walking the victims,
    each one a budget selects takes one of its allowed disruptions; once a budget has none left,
    the victims it selects are violating. Pods already in a budget's disruptedPods are skipped."""
    from skiff.controller.selectors import selector_from

    def violates(victims: list[PodInfo]) -> set[str]:
        allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in pdbs]
        out = set()
        for v in victims:
            if not v.labels:
                continue
            for i, b in enumerate(pdbs):
                bm = b.get("metadata") or {}
                if (bm.get("namespace") or "default") != v.namespace:
                    continue
                sel = selector_from((b.get("spec") or {}).get("selector"))
                if sel is None or sel.empty() or not sel.matches_labels(v.labels):
                    continue
                if v.name in ((b.get("status") or {}).get("disruptedPods") or {}):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    out.add(v.key)
        return out
    return violates


def potential_nodes(pi: PodInfo, nodes) -> tuple[list, int]:
    """(nodes where preemption might help, number of the others): static failures are final."""
    ok, other = [], 0
    for ni in nodes:
        if static_reasons(pi, ni):
            other += 1
        else:
            ok.append(ni)
    return ok, other
