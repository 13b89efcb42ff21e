"""A pod's scheduling terms beyond nodeSelector, parsed once per pod (as kube-scheduler's
framework.PodInfo): ``spec.affinity`` and ``spec.topologySpreadConstraints``.

- Node selector terms (nodeAffinity): the terms are ORed; within a term, matchExpressions on the
  node's labels (In, NotIn, Exists, DoesNotExist, Gt, Lt; Gt and Lt compare integers) and
  matchFields (``metadata.name`` In/NotIn) are ANDed. A term without requirements, or with one
  that does not parse (Gt "abc"), matches nothing; so does an empty list of terms. The required
  terms are a hashable tuple: they are part of the pod's static key (see scheduler.py).
- Pod affinity terms (podAffinity, podAntiAffinity): a pod matches when its namespace is one of
  the term's ``namespaces`` (by default the term's own pod's, unless a namespaceSelector is given)
  or the labels of its namespace match ``namespaceSelector`` ({} = every namespace), and its
  labels match ``labelSelector`` (none = no pod). ``matchLabelKeys`` / ``mismatchLabelKeys`` AND
  ``key in (value)`` / ``key notin (value)`` into the selector, with the value of that label on
  the term's own pod (what the API server merges into the selector at pod creation).
- Spread constraints: ``labelSelector`` with ``matchLabelKeys`` ANDed in (``key = value`` of the
  pod's own label), maxSkew, topologyKey, whenUnsatisfiable, minDomains (1 by default),
  nodeAffinityPolicy (Honor by default) and nodeTaintsPolicy (Ignore by default).
"""
from __future__ import annotations

import re

from skiff.controller.selectors import LabelRequirement, LabelSelector, selector_from

__all__ = ["AffinityTerm", "SpreadConstraint", "PodTerms", "pod_terms", "required_node_affinity",
           "node_selector_terms", "node_affinity_matches", "term_matches"]

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
NAME_FIELD = "metadata.name"
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _integer(v) -> int | None:
    return int(v) if isinstance(v, str) and _INTEGER.match(v) else None


def _requirement(e: dict) -> tuple | None:
    """A NodeSelectorRequirement as (key, operator, values), Gt and Lt with their integer as the
    values; None when it does not parse."""
    key, op, values = e.get("key") or "", e.get("operator"), tuple(e.get("values") or ())
    if op in ("In", "NotIn"):
        return (key, op, values) if values else None
    if op in ("Exists", "DoesNotExist"):
        return None if values else (key, op, ())
    if op in ("Gt", "Lt") and len(values) == 1:
        n = _integer(values[0])
        return None if n is None else (key, op, n)
    return None


def _field(e: dict) -> tuple | None:
    """A matchFields requirement as (key, operator, value); None when it does not parse."""
    op, values = e.get("operator"), e.get("values") or ()
    if op in ("In", "NotIn") and len(values) == 1:
        return (e.get("key") or "", op, values[0])
    return None


def _term(term: dict) -> tuple | None:
    """A NodeSelectorTerm as (label requirements, field requirements), or None when it can match
    nothing (no requirement, or one that does not parse)."""
    exprs = [_requirement(e) for e in term.get("matchExpressions") or ()]
    fields = [_field(e) for e in term.get("matchFields") or ()]
    if not (exprs or fields) or None in exprs or None in fields:
        return None
    return tuple(exprs), tuple(fields)


def node_selector_terms(terms) -> tuple:
    """The terms of a NodeSelector that can match a node (see the module doc)."""
    return tuple(t for t in (_term(x or {}) for x in terms or ()) if t is not None)


def required_node_affinity(affinity: dict | None) -> tuple | None:
    """The pod's required node selector terms, or None when it has none (every node matches)."""
    req = ((affinity or {}).get("nodeAffinity") or {}).get(_REQUIRED)
    if req is None:
        return None
    return node_selector_terms(req.get("nodeSelectorTerms"))


def _requirement_matches(req: tuple, labels: dict) -> bool:
    key, op, values = req
    v = labels.get(key)
    if op == "In":
        return v is not None and v in values
    if op == "NotIn":
        return v is None or v not in values
    if op == "Exists":
        return v is not None
    if op == "DoesNotExist":
        return v is None
    n = _integer(v)
    return n is not None and (n > values if op == "Gt" else n < values)


def term_matches(term: tuple, labels: dict, name: str) -> bool:
    """Whether one parsed node selector term matches a node (its labels and name)."""
    exprs, fields = term
    for req in exprs:
        if not _requirement_matches(req, labels):
            return False
    for key, op, value in fields:
        if ((name if key == NAME_FIELD else "") == value) != (op == "In"):
            return False
    return True


def node_affinity_matches(terms: tuple, labels: dict, name: str) -> bool:
    """Whether any of the parsed terms matches the node."""
    for t in terms:
        if term_matches(t, labels, name):
            return True
    return False


class AffinityTerm:
    """One pod affinity or anti-affinity term, resolved against its own pod (``weight`` 0 for a
    required term)."""
    __slots__ = ("selector", "namespaces", "ns_selector", "topology_key", "weight")

    def __init__(self, term: dict, namespace: str, labels: dict, weight: int = 0):
        sel = selector_from(term.get("labelSelector"))
        if sel is not None:
            extra = [LabelRequirement(k, "in", (labels[k],)) for k in term.get("matchLabelKeys") or ()
                     if k in labels]
            extra += [LabelRequirement(k, "notin", (labels[k],)) for k in term.get("mismatchLabelKeys") or ()
                      if k in labels]
            if extra:
                sel = LabelSelector(sel.requirements + extra)
        self.selector = sel
        ns_sel = term.get("namespaceSelector")
        names = term.get("namespaces") or ()
        self.namespaces = frozenset(names) if names or ns_sel is not None else frozenset((namespace,))
        self.ns_selector = selector_from(ns_sel)
        self.topology_key = term.get("topologyKey") or ""
        self.weight = weight

    def matches(self, namespace: str, labels: dict, ns_labels) -> bool:
        """Whether a pod in ``namespace`` with ``labels`` matches; ``ns_labels(name)`` gives a
        namespace's labels (asked only when the namespaceSelector has to decide)."""
        if namespace not in self.namespaces and (
                self.ns_selector is None or not self.ns_selector.matches_labels(ns_labels(namespace))):
            return False
        return self.selector is not None and self.selector.matches_labels(labels)


class SpreadConstraint:
    """One topologySpreadConstraint of a pod. ``selector`` counts pods (None: it counts none, as an
    absent or empty labelSelector); ``self_match``: whether the pod matches its own selector."""
    __slots__ = ("max_skew", "topology_key", "hard", "selector", "self_match", "min_domains",
                 "honor_affinity", "honor_taints")

    def __init__(self, c: dict, labels: dict):
        self.max_skew = c.get("maxSkew") or 1
        self.topology_key = c.get("topologyKey") or ""
        self.hard = c.get("whenUnsatisfiable") != "ScheduleAnyway"
        sel = selector_from(c.get("labelSelector"))
        if sel is not None:
            extra = [LabelRequirement(k, "=", (labels[k],)) for k in c.get("matchLabelKeys") or ()
                     if k in labels]
            if extra:
                sel = LabelSelector(sel.requirements + extra)
        self.self_match = sel is not None and sel.matches_labels(labels)
        self.selector = sel if sel is not None and not sel.empty() else None
        self.min_domains = c.get("minDomains") or 1
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = c.get("nodeTaintsPolicy") == "Honor"


def _affinity_terms(terms, namespace: str, labels: dict) -> tuple:
    return tuple(AffinityTerm(t or {}, namespace, labels) for t in terms or ())


def _weighted_terms(terms, namespace: str, labels: dict) -> tuple:
    return tuple(AffinityTerm(w.get("podAffinityTerm") or {}, namespace, labels, w.get("weight") or 0)
                 for w in terms or () if w.get("weight"))


class PodTerms:
    """What the scheduler honours of a pod's affinity and spread constraints, but its required node
    affinity (``PodInfo.node_affinity``, a static filter). ``inter_pod``: the pod has pod
    (anti-)affinity terms; ``spread``: it has spread constraints (then its own constraints replace
    the default spreading)."""
    __slots__ = ("preferred_nodes", "affinity", "anti_affinity", "preferred_affinity",
                 "preferred_anti_affinity", "inter_pod", "spread_hard", "spread_soft", "spread")

    def __init__(self, spec: dict, namespace: str, labels: dict):
        aff = spec.get("affinity") or {}
        na = aff.get("nodeAffinity") or {}
        self.preferred_nodes = tuple(
            (p["weight"], t) for p in na.get(_PREFERRED) or ()
            if p.get("weight") and (t := _term(p.get("preference") or {})) is not None)
        pa = aff.get("podAffinity") or {}
        anti = aff.get("podAntiAffinity") or {}
        self.affinity = _affinity_terms(pa.get(_REQUIRED), namespace, labels)
        self.anti_affinity = _affinity_terms(anti.get(_REQUIRED), namespace, labels)
        self.preferred_affinity = _weighted_terms(pa.get(_PREFERRED), namespace, labels)
        self.preferred_anti_affinity = _weighted_terms(anti.get(_PREFERRED), namespace, labels)
        self.inter_pod = bool(self.affinity or self.anti_affinity or self.preferred_affinity
                              or self.preferred_anti_affinity)
        spread = [SpreadConstraint(c or {}, labels) for c in spec.get("topologySpreadConstraints") or ()]
        self.spread_hard = tuple(c for c in spread if c.hard)
        self.spread_soft = tuple(c for c in spread if not c.hard)
        self.spread = bool(spread)


def pod_terms(spec: dict, namespace: str, labels: dict) -> PodTerms | None:
    """The pod's PodTerms, or None when it has nothing there (the scheduler's fast path)."""
    t = PodTerms(spec, namespace, labels)
    return t if t.preferred_nodes or t.inter_pod or t.spread else None
