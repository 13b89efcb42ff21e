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
           "RoundRobin", "select_host", "FitTable", "UNFIT"]

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


class FitTable:
    """The scheduler's hot path for a pod with no ports, terms, claims or resources beyond cpu and
    memory: NodeResourcesFit's filter over a window of ``nodes`` until ``want`` nodes fit, then
    ``select_host(fit, score_nodes(pi, fit), rr)`` (same answer, checked by the tests), worked
    out on flat lists so that a cycle is a few passes in C over the window, not a Python loop.

    One table per pod *shape* (cpu, memory, non-zero cpu, non-zero memory, spread group) and list
    of nodes (the ones passing the spec-only filters). For each node it holds its key, the
    least-allocated score with the pod and its pod count as one integer (``la * 2^32 - pods``:
    more free is better, then fewer pods; ``UNFIT`` when the pod does not fit) and its count of
    the group. The scheduler's cache logs the nodes that change (``SchedulerCache.changes``); a
    table recomputes only those since it last looked (``update``). In a backlog of one
    Deployment's pods a binding changes one node, so a cycle recomputes one node, then slices
    the window out of the lists (274 -> 115 us a cycle at 1000 nodes with a memo on each node
    read in a Python loop; -> 57-63 us with the tables)."""

    __slots__ = ("shape", "nodes", "index", "names", "sorted", "keys", "counts", "pos")

    def __init__(self, shape: tuple, nodes: Sequence, pos: int):
        self.shape = shape
        self.nodes = nodes
        self.pos = pos          # the cache's change log position it is up to date with
        self.index = {ni: i for i, ni in enumerate(nodes)}
        self.names = [ni.name for ni in nodes]
        # round-robin among ties goes in name order: a bisect when the nodes are sorted by name
        self.sorted = all(a < b for a, b in zip(self.names, self.names[1:]))
        self.keys = [UNFIT] * len(nodes)
        self.counts = [0] * len(nodes)
        for i, ni in enumerate(nodes):
            self._set(i, ni)

    def _set(self, i: int, ni) -> None:
        cpu, mem, ncpu, nmem, group = self.shape
        if (ni.npods >= ni.alloc_pods or (cpu and ni.req_cpu + cpu > ni.alloc_cpu)
                or (mem and ni.req_mem + mem > ni.alloc_mem)):
            self.keys[i] = UNFIT
            self.counts[i] = 0
            return
        fc = ni.free_cpu - ncpu
        fm = ni.free_mem - nmem
        la = (((fc * 100 // ni.div_cpu) if fc >= 0 else 0)
              + ((fm * 100 // ni.div_mem) if fm >= 0 else 0)) // 2
        self.keys[i] = la * _TIE - ni.npods
        self.counts[i] = ni.groups.get(group, 0) if group is not None else 0

    def update(self, changed: Sequence, pos: int) -> None:
        """Recompute the nodes in ``changed`` (the cache's log since ``self.pos``)."""
        index = self.index
        for ni in changed:
            i = index.get(ni)
            if i is not None:
                self._set(i, ni)
        self.pos = pos

    def select(self, start: int, want: int, rr: RoundRobin | None = None):
        """The window from ``start`` (wrapping) until ``want`` nodes fit: (the chosen node or
        None, nodes looked at, the positions in ``nodes`` of those that did not fit)."""
        keys = self.keys
        n = len(keys)
        take = min(want, n)
        ks = _ring(keys, start, take)
        u = ks.count(UNFIT)
        while u and take - u < want and take < n:   # look further, by as many as did not fit
            take = min(n, take + want - (take - u))
            ks = _ring(keys, start, take)
            u = ks.count(UNFIT)
        unfit = _positions(ks, UNFIT, u, start, n)
        if u == take:
            return None, take, unfit
        group = self.shape[4]
        if group is not None:
            cs = _ring(self.counts, start, take)
            mx = max(cs)        # the misfits' 0 counts do not change it
            if mx:              # spread: 100 * (max - count) // max, weighted, above the key
                spread = {c: W_SPREAD * (MAX_SCORE * (mx - c) // mx) * _TIE for c in set(cs)}
                ks = list(map(operator.add, ks, map(spread.__getitem__, cs)))
        best = max(ks)
        ties = ks.count(best)
        if ties == 1 or rr is None:
            j = (start + ks.index(best)) % n
        elif self.sorted:       # the first tied name after the last one chosen, wrapping
            j = self._after(ks, best, start, n, bisect.bisect_right(self.names, rr.last))
        else:
            tied = _positions(ks, best, ties, start, n)
            names = [self.names[i] for i in tied]
            ordered = sorted(names)
            i = bisect.bisect_right(ordered, rr.last)
            j = tied[names.index(ordered[i] if i < len(ordered) else ordered[0])]
        ni = self.nodes[j]
        if rr is not None:
            rr.last = ni.name
        return ni, take, unfit

    @staticmethod
    def _after(ks: list, best: int, start: int, n: int, b: int) -> int:
        """The smallest node position >= ``b`` holding ``best`` in the window ``ks``, else the
        smallest one. The window covers positions ``start``.. then wraps to 0.., so its wrapped
        part (from ``seg``) holds the positions below ``start``."""
        seg = min(len(ks), n - start)
        for lo, hi in ((seg + b, len(ks)), (max(0, b - start), seg), (seg, len(ks)), (0, seg)):
            if lo < hi:
                try:
                    return (start + ks.index(best, lo, hi)) % n
                except ValueError:
                    pass
        raise AssertionError("no tie in the window")


def _ring(values: list, start: int, take: int) -> list:
    """``take`` items of ``values`` from ``start``, wrapping around."""
    end = start + take
    if end <= len(values):
        return values[start:end]
    return values[start:] + values[:end - len(values)]


def _positions(ks: list, value: int, count: int, start: int, n: int) -> list[int]:
    """The node positions of the ``count`` entries of the window ``ks`` equal to ``value``."""
    out, p = [], -1
    for _ in range(count):
        p = ks.index(value, p + 1)
        out.append((start + p) % n)
    return out


_TIE = 1 << 32      # above any node's pod count
UNFIT = -(1 << 62)  # a table's key of a node the pod does not fit (below any score's)
