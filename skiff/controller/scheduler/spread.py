"""PodTopologySpread (kube-scheduler's plugin): the pod's topologySpreadConstraints.

A constraint counts the placed pods (bound or assumed) in the pod's namespace, not terminating,
that match its selector (see terms.py), over the eligible nodes: those with the topology keys of
all the constraints of its kind (DoNotSchedule ones for the filter, ScheduleAnyway ones for the
score) that, with nodeAffinityPolicy Honor (the default), match the pod's nodeSelector and
required node affinity and, with nodeTaintsPolicy Honor, carry no NoSchedule/NoExecute taint the
pod does not tolerate. A domain is a value of the topology key on eligible nodes.

``TopologySpread(pi, cache)`` is one cycle's state: one pass over the placed pods.

Filter (``reason(ni)``, whenUnsatisfiable DoNotSchedule), per constraint in order: a node without
the topology key fails with "node(s) didn't match pod topology spread constraints (missing
required label)"; else skew = matching pods in the node's domain + 1 if the pod matches its own
selector - the smallest count over the domains (0 when there are fewer domains than minDomains)
must be at most maxSkew, or the node fails with "node(s) didn't match pod topology spread
constraints".

Score (``scores(nodes)``, ScheduleAnyway), over the feasible nodes: a node lacking a key scores
0; else its raw score is the sum over the constraints of ``count * log(domains + 2) + maxSkew -
1`` (count: matching pods in its domain; domains: how many the feasible nodes span), rounded, and
the scores are normalised so that the fewest matching pods get 100: ``100 * (max + min - s) //
max`` (100 everywhere when max is 0).
"""
from __future__ import annotations

import math
from collections import Counter

from .filters import node_affinity_ok, untolerated_taint
from .score import MAX_SCORE

__all__ = ["TopologySpread", "R_SPREAD", "R_SPREAD_LABEL"]

R_SPREAD = "node(s) didn't match pod topology spread constraints"
R_SPREAD_LABEL = R_SPREAD + " (missing required label)"


def _eligible(c, pi, ni) -> bool:
    """Whether the node counts for constraint ``c`` (nodeAffinityPolicy, nodeTaintsPolicy)."""
    if c.honor_affinity and not node_affinity_ok(pi, ni):
        return False
    return not (c.honor_taints and untolerated_taint(pi.tolerations, ni.taints) is not None)


class TopologySpread:
    """One cycle's PodTopologySpread state for pod ``pi`` (which has spread constraints)."""
    __slots__ = ("pi", "cache", "hard", "soft", "per_node", "domains", "minimum")

    def __init__(self, pi, cache):
        self.pi, self.cache = pi, cache
        self.hard, self.soft = pi.terms.spread_hard, pi.terms.spread_soft
        constraints = self.hard + self.soft
        # matching pods per constraint and node name
        self.per_node = [Counter() for _ in constraints]
        ns = pi.namespace
        for node, epi in cache.pods.values():
            if epi.namespace != ns or epi.terminating:
                continue
            for counts, c in zip(self.per_node, constraints):
                if c.selector is not None and c.selector.matches_labels(epi.labels):
                    counts[node] += 1
        # the DoNotSchedule constraints' domains over all the eligible nodes, and their minimum
        self.domains: list[dict[str, int]] = [{} for _ in self.hard]
        keys = [c.topology_key for c in self.hard]
        for ni in cache.node_list:
            labels = ni.labels
            if not all(k in labels for k in keys):
                continue
            for i, c in enumerate(self.hard):
                if _eligible(c, pi, ni):
                    d = self.domains[i]
                    v = labels[c.topology_key]
                    d[v] = d.get(v, 0) + self.per_node[i][ni.name]
        self.minimum = [min(d.values()) if len(d) >= c.min_domains else 0
                        for d, c in zip(self.domains, self.hard)]

    def reason(self, ni) -> str | None:
        """Why the node fails the filter, or None."""
        labels = ni.labels
        for i, c in enumerate(self.hard):
            v = labels.get(c.topology_key)
            if v is None:
                return R_SPREAD_LABEL
            if self.domains[i].get(v, 0) + c.self_match - self.minimum[i] > c.max_skew:
                return R_SPREAD
        return None

    def scores(self, nodes) -> list[int]:
        """0..100 per node (0 everywhere without ScheduleAnyway constraints)."""
        soft = self.soft
        if not soft:
            return [0] * len(nodes)
        keys = [c.topology_key for c in soft]
        scored = [all(k in ni.labels for k in keys) for ni in nodes]
        # the domains the feasible nodes span, with the matching pods on all their eligible nodes
        counts = [{ni.labels[c.topology_key]: 0 for ni, ok in zip(nodes, scored) if ok} for c in soft]
        weights = [math.log(len(d) + 2) for d in counts]
        offset = len(self.hard)
        for ni in self.cache.node_list:
            labels = ni.labels
            if not all(k in labels for k in keys):
                continue
            for j, c in enumerate(soft):
                d = counts[j]
                v = labels[c.topology_key]
                if v in d and _eligible(c, self.pi, ni):
                    d[v] += self.per_node[offset + j][ni.name]
        raw = [int(sum(counts[j][ni.labels[c.topology_key]] * weights[j] + c.max_skew - 1
                       for j, c in enumerate(soft)) + 0.5) if ok else None
               for ni, ok in zip(nodes, scored)]
        valid = [s for s in raw if s is not None]
        if not valid:
            return [0] * len(nodes)
        lo, hi = min(valid), max(valid)
        return [0 if s is None else MAX_SCORE if hi == 0 else MAX_SCORE * (hi + lo - s) // hi for s in raw]
