"""The scheduler's scores (kube-scheduler's Score plugins), pure functions.

- least allocated (NodeResourcesFit, LeastAllocated, weight 1): per resource
  ``(allocatable - requested) * 100 // allocatable`` with the pod added, cpu and memory averaged;
  requests use the non-zero defaults (100m, 200Mi) so empty pods still weigh something.
- spread (selector spread / PodTopologySpread by hostname, weight 2): pods of the same group
  (same controller, else same namespace and labels) already on the node:
  ``100 * (max - count) // max`` over the feasible nodes (100 everywhere when max is 0). A pod
  with topologySpreadConstraints gets PodTopologySpread's score of its own ScheduleAnyway
  constraints instead (spread.py; 0 everywhere when it has none).
- node affinity (NodeAffinity, weight 2): the sum of the weights of the pod's preferred node
  affinity terms the node matches, ``100 * sum // max`` over the feasible nodes.
- inter-pod affinity (InterPodAffinity, weight 2): see interpod.py.

The best total wins; ties go to the node with the fewest pods, then round-robin (the first tied
node after the one chosen last time, in node order), so equal nodes fill evenly.
"""
from __future__ import annotations

import bisect
import operator
from typing import Sequence

from .terms import term_matches

__all__ = ["MAX_SCORE", "W_LEAST_ALLOCATED", "W_SPREAD", "W_NODE_AFFINITY", "W_INTER_POD_AFFINITY",
           "least_allocated", "spread_score", "node_affinity_scores", "score_nodes", "score_with_terms",
           "RoundRobin", "select_host", "fit_and_select"]

MAX_SCORE = 100
W_LEAST_ALLOCATED = 1
W_SPREAD = 2
W_NODE_AFFINITY = 2
W_INTER_POD_AFFINITY = 2


def least_allocated(alloc_cpu: int, alloc_mem: int, req_cpu: int, req_mem: int) -> int:
    """0..100: how much of the node stays free once the pod is on it (requests include the pod)."""
    def one(cap: int, req: int) -> int:
        if cap <= 0 or req > cap:
            return 0
        return (cap - req) * MAX_SCORE // cap
    return (one(alloc_cpu, req_cpu) + one(alloc_mem, req_mem)) // 2


def spread_score(count: int, max_count: int) -> int:
    """0..100: fewer pods of the same group on the node is better."""
    if max_count <= 0:
        return MAX_SCORE
    return MAX_SCORE * (max_count - count) // max_count


def node_affinity_scores(preferred: Sequence[tuple[int, tuple]], nodes: Sequence) -> list[int]:
    """0..100 per node: the weights of the (weight, node selector term) the node matches, summed."""
    raw = [sum(w for w, term in preferred if term_matches(term, ni.labels, ni.name)) for ni in nodes]
    mx = max(raw, default=0)
    return [MAX_SCORE * s // mx for s in raw] if mx > 0 else raw


def score_nodes(pi, nodes: Sequence, spread: Sequence[int] | None = None) -> list[int]:
    """The weighted total score of each node (same order as ``nodes``); ``spread`` (0..100 per
    node) replaces the default spread score."""
    cpu, mem = pi.nz_cpu, pi.nz_mem
    out = []
    for ni in nodes:
        ac, am = ni.alloc_cpu, ni.alloc_mem
        rc, rm = ni.nz_cpu + cpu, ni.nz_mem + mem
        s = ((((ac - rc) * 100 // ac) if 0 < ac and rc <= ac else 0)
             + (((am - rm) * 100 // am) if 0 < am and rm <= am else 0)) // 2
        out.append(s * W_LEAST_ALLOCATED)
    group = pi.group
    if spread is not None:
        out = [s + W_SPREAD * sp for s, sp in zip(out, spread)]
    elif group is not None:
        counts = [ni.groups.get(group, 0) for ni in nodes]
        mx = max(counts, default=0)
        if mx > 0:
            for i, c in enumerate(counts):
                out[i] += W_SPREAD * (MAX_SCORE * (mx - c) // mx)
        else:
            out = [s + W_SPREAD * MAX_SCORE for s in out]
    else:
        out = [s + W_SPREAD * MAX_SCORE for s in out]
    return out


def score_with_terms(pi, nodes: Sequence, spread=None, interpod=None) -> list[int]:
    """score_nodes for a pod with scheduling terms, or concerned by other pods' terms: with
    PodTopologySpread's score when it has spread constraints (``spread``, a TopologySpread), and
    NodeAffinity's and InterPodAffinity's (``interpod``, an InterPodAffinity)."""
    terms = pi.terms
    out = score_nodes(pi, nodes, spread.scores(nodes) if spread is not None else None)
    if terms is not None and terms.preferred_nodes:
        affinity = node_affinity_scores(terms.preferred_nodes, nodes)
        out = [s + W_NODE_AFFINITY * a for s, a in zip(out, affinity)]
    ipa = interpod.scores(nodes) if interpod is not None else None
    if ipa is not None:
        out = [s + W_INTER_POD_AFFINITY * a for s, a in zip(out, ipa)]
    return out


class RoundRobin:
    """Remembers where the last tie was broken."""
    __slots__ = ("last",)

    def __init__(self):
        self.last = ""          # name of the node chosen last among ties


def select_host(nodes: Sequence, scores: Sequence[int], rr: RoundRobin | None = None):
    """The node with the best score; ties: fewest pods, then round-robin from ``rr``."""
    if not nodes:
        return None
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if s == best]
    if len(tied) > 1:
        fewest = min(nodes[i].npods for i in tied)
        tied = [i for i in tied if nodes[i].npods == fewest]
    if rr is None:
        return nodes[tied[0]]
    if len(tied) == 1:
        rr.last = nodes[tied[0]].name
        return nodes[tied[0]]
    # round-robin in name order: the tied node whose name follows the one picked last time,
    # wrapping around (``nodes`` need not be sorted)
    last = rr.last
    after = [i for i in tied if nodes[i].name > last]
    pick = min(after or tied, key=lambda i: nodes[i].name)
    rr.last = nodes[pick].name
    return nodes[pick]


def fit_and_select(pi, order: Sequence, want: int, shape: tuple, rr: RoundRobin | None = None):
    """The scheduler's hot path for a pod with no ports, terms, claims or resources beyond cpu and
    memory: NodeResourcesFit's filter over ``order`` until ``want`` nodes fit, then
    ``select_host(fit, score_nodes(pi, fit), rr)``, in one pass (same answer, checked by the
    tests). Returns (the chosen node or None, nodes looked at, nodes that fit, those that did not).

    ``shape`` is the pod's (cpu, memory, non-zero cpu, non-zero memory, spread group), the same
    object for every pod of that shape. A node keeps what it was for the last shape looked at
    there (``NodeInfo.memo``: whether it fits, its least-allocated score and pod count as one
    key, its count of the group) until it changes, so that in a backlog of one Deployment's
    pods, where a binding changes one node, a cycle computes one node's fit and score, not
    every node's of its window (274 -> 115 us a pod at 1000 nodes)."""
    cpu, mem, ncpu, nmem, group = shape
    fit: list = []
    parts: list = []
    unfit: list = []
    for ni in order:
        m = ni.memo
        if m[0] is not shape:
            if (ni.npods >= ni.alloc_pods or (cpu and ni.req_cpu + cpu > ni.alloc_cpu)
                    or (mem and ni.req_mem + mem > ni.alloc_mem)):
                m = ni.memo = (shape, None, 0)
            else:
                fc = ni.free_cpu - ncpu
                fm = ni.free_mem - nmem
                la = (((fc * 100 // ni.div_cpu) if fc >= 0 else 0)
                      + ((fm * 100 // ni.div_mem) if fm >= 0 else 0)) // 2
                m = ni.memo = (shape, la * _TIE - ni.npods, ni.groups.get(group, 0) if group is not None else 0)
        if m[1] is None:
            unfit.append(ni)
            continue
        fit.append(ni)
        parts.append(m)
        want -= 1
        if not want:
            break
    if not fit:
        return None, len(unfit), fit, unfit
    # each node's key: its score, then fewer pods first (la * _TIE - npods, plus the spread
    # score * _TIE); the spread score depends on the largest count in the window
    mx = max(map(_COUNT, parts)) if group is not None else 0
    if mx:
        spread = {c: W_SPREAD * (MAX_SCORE * (mx - c) // mx) * _TIE for c in set(map(_COUNT, parts))}
        keys = [m[1] + spread[m[2]] for m in parts]
    else:       # the same spread score everywhere
        keys = list(map(_KEY, parts))
    best = max(keys)
    if keys.count(best) == 1:
        ni = fit[keys.index(best)]
    else:
        tied = [ni for ni, k in zip(fit, keys) if k == best]
        if rr is None:
            ni = tied[0]
        else:   # round-robin in name order: the first tied name after the last one chosen, wrapping
            names = [ni.name for ni in tied]
            ordered = sorted(names)
            i = bisect.bisect_right(ordered, rr.last)
            ni = tied[names.index(ordered[i] if i < len(ordered) else ordered[0])]
    if rr is not None:
        rr.last = ni.name
    return ni, len(fit) + len(unfit), fit, unfit


_TIE = 1 << 32      # above any node's pod count
_KEY = operator.itemgetter(1)
_COUNT = operator.itemgetter(2)
