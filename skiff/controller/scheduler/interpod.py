"""InterPodAffinity (kube-scheduler's plugin): the pod's pod affinity and anti-affinity terms
against the pods already placed (bound or assumed), and the placed pods' terms against the pod.

``InterPodAffinity(pi, cache, ns_labels)`` is one cycle's state (kube-scheduler's PreFilter and
PreScore), made in one pass over the placed pods: all of them when the pod has terms, else only
those that have terms (``cache.with_affinity``). A placed pod counts through its node's label
for a term's topology key (its topology pair, key=value); a pod on a node without that label
does not count.

Filter (``reason(ni)``), in kube-scheduler's order:

    "node(s) didn't match pod affinity rules"     the node lacks the topology key of one of the
        pod's required affinity terms, or for one of them no pod matching *all* the terms is in
        the node's domain; except, when no placed pod matches them all and the pod matches its
        own terms, any node with the keys will do (the first pod of a group)
    "node(s) didn't match pod anti-affinity rules"     a pod matching one of the pod's required
        anti-affinity terms is in the node's domain for that term
    "node(s) didn't satisfy existing pods anti-affinity rules"     the node is in the domain of a
        placed pod whose required anti-affinity term matches the pod

Score (``scores(nodes)``): per topology pair, + weight for each placed pod matching a preferred
affinity term of the pod and - weight for a preferred anti-affinity term; symmetrically + weight
(- weight) for each placed pod whose preferred affinity (anti-affinity) term matches the pod, and
+ 1 (hardPodAffinityWeight) for its required affinity terms. A node's raw score is the sum over
its labels, normalised over the feasible nodes (min -> 0, max -> 100).
"""
from __future__ import annotations

from .score import MAX_SCORE

__all__ = ["InterPodAffinity", "R_AFFINITY", "R_ANTI_AFFINITY", "R_EXISTING_ANTI_AFFINITY",
           "HARD_POD_AFFINITY_WEIGHT"]

R_AFFINITY = "node(s) didn't match pod affinity rules"
R_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
R_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1


def _add_score(scores: dict, key: str, labels: dict, weight: int) -> None:
    v = labels.get(key)
    if v is not None:
        values = scores.setdefault(key, {})
        values[v] = values.get(v, 0) + weight


class InterPodAffinity:
    """One cycle's InterPodAffinity state for pod ``pi`` (see the module doc); ``ns_labels(name)``
    gives a namespace's labels."""
    __slots__ = ("affinity", "anti_affinity", "affinity_pairs", "anti_pairs", "existing_anti",
                 "first_of_group", "topology_score")

    def __init__(self, pi, cache, ns_labels):
        terms = pi.terms
        own = terms is not None and terms.inter_pod
        self.affinity = terms.affinity if own else ()
        self.anti_affinity = terms.anti_affinity if own else ()
        preferred = ((terms.preferred_affinity, 1), (terms.preferred_anti_affinity, -1)) if own else ()
        self.affinity_pairs: set[tuple[str, str]] = set()    # domains holding pods matching all terms
        self.anti_pairs: set[tuple[str, str]] = set()        # domains holding pods matching a term
        self.existing_anti: dict[str, set[str]] = {}         # topology key -> values
        self.topology_score: dict[str, dict[str, int]] = {}  # topology key -> value -> score
        ns, labels = pi.namespace, pi.labels
        pods = cache.pods
        entries = pods.values() if own else [pods[k] for k in cache.with_affinity]
        nodes = cache.nodes
        for node, epi in entries:
            ni = nodes.get(node)
            if ni is None or ni.node is None or not ni.labels:
                continue
            nl = ni.labels
            if own:
                e_ns, e_labels = epi.namespace, epi.labels
                if self.affinity and all(t.matches(e_ns, e_labels, ns_labels) for t in self.affinity):
                    for t in self.affinity:
                        v = nl.get(t.topology_key)
                        if v is not None:
                            self.affinity_pairs.add((t.topology_key, v))
                for t in self.anti_affinity:
                    if t.matches(e_ns, e_labels, ns_labels):
                        v = nl.get(t.topology_key)
                        if v is not None:
                            self.anti_pairs.add((t.topology_key, v))
                for group, sign in preferred:
                    for t in group:
                        if t.matches(e_ns, e_labels, ns_labels):
                            _add_score(self.topology_score, t.topology_key, nl, sign * t.weight)
            et = epi.terms
            if et is None or not et.inter_pod:
                continue
            for t in et.anti_affinity:
                if t.matches(ns, labels, ns_labels):
                    v = nl.get(t.topology_key)
                    if v is not None:
                        self.existing_anti.setdefault(t.topology_key, set()).add(v)
            for t in et.affinity:
                if t.matches(ns, labels, ns_labels):
                    _add_score(self.topology_score, t.topology_key, nl, HARD_POD_AFFINITY_WEIGHT)
            for group, sign in ((et.preferred_affinity, 1), (et.preferred_anti_affinity, -1)):
                for t in group:
                    if t.matches(ns, labels, ns_labels):
                        _add_score(self.topology_score, t.topology_key, nl, sign * t.weight)
        self.first_of_group = (bool(self.affinity) and not self.affinity_pairs
                               and all(t.matches(ns, labels, ns_labels) for t in self.affinity))

    @property
    def active(self) -> bool:
        """Whether the plugin can fail a node or score one differently from another."""
        return bool(self.affinity or self.anti_pairs or self.existing_anti or self.topology_score)

    def reason(self, ni) -> str | None:
        """Why the node fails the filter, or None."""
        labels = ni.labels
        if self.affinity:
            found = True
            for t in self.affinity:
                v = labels.get(t.topology_key)
                if v is None:
                    return R_AFFINITY
                if (t.topology_key, v) not in self.affinity_pairs:
                    found = False
            if not found and not self.first_of_group:
                return R_AFFINITY
        if self.anti_pairs:
            for t in self.anti_affinity:
                v = labels.get(t.topology_key)
                if v is not None and (t.topology_key, v) in self.anti_pairs:
                    return R_ANTI_AFFINITY
        for key, values in self.existing_anti.items():
            if labels.get(key) in values:
                return R_EXISTING_ANTI_AFFINITY
        return None

    def scores(self, nodes) -> list[int] | None:
        """0..100 per node, or None when no term matched anything (the plugin adds nothing)."""
        if not self.topology_score:
            return None
        items = self.topology_score.items()
        raw = [sum(values.get(ni.labels.get(key), 0) for key, values in items) for ni in nodes]
        lo, hi = min(raw), max(raw)
        if hi == lo:
            return [0] * len(raw)
        return [int(MAX_SCORE * (s - lo) / (hi - lo)) for s in raw]
