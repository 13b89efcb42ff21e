"""``skiffctl describe networkpolicy``, laid out as kubectl's (describeNetworkPolicy and
describeNetworkPolicySpec)."""
from __future__ import annotations

from .describe import W, annotations, kv_map
from . import printers as P


def _selector(sel: dict | None) -> str:
    from skiff.api.tables import selector_string
    return selector_string(sel or {}) or "<none>"


def _created(ts: str | None) -> str:
    """metav1.Time as Go's time.Time prints it: ``2024-08-25 08:51:16 +0000 UTC``."""
    t = P.parse_time(ts)
    if t is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _rules(w: W, rules: list, direction: str) -> None:
    """printNetworkPolicySpecIngressFrom / printNetworkPolicySpecEgressTo."""
    ind = "    "
    peers_key, word, what = ("from", "From", "source") if direction == "ingress" else ("to", "To", "destination")
    if not rules:
        w.w(0, f"{ind}<none> (Selected pods are isolated for {direction} connectivity)")
        return
    for i, rule in enumerate(rules):
        rule = rule or {}
        ports = rule.get("ports") or []
        if not ports:
            w.w(0, f"{ind}To Port: <any> (traffic allowed to all ports)")
        for p in ports:
            port, end, proto = p.get("port"), p.get("endPort"), p.get("protocol") or "TCP"
            if end is not None:
                w.w(0, f"{ind}To Port Range: {port}-{end}/{proto}")
            else:
                w.w(0, f"{ind}To Port: {'<nil>' if port is None else port}/{proto}")
        peers = rule.get(peers_key) or []
        if not peers:
            w.w(0, f"{ind}{word}: <any> (traffic not restricted by {what})")
        for peer in peers:
            w.w(0, f"{ind}{word}:")
            ps, nss, ipb = peer.get("podSelector"), peer.get("namespaceSelector"), peer.get("ipBlock")
            if ps is not None and nss is not None:
                w.w(1, f"{ind}NamespaceSelector: {_selector(nss)}")
                w.w(1, f"{ind}PodSelector: {_selector(ps)}")
            elif ps is not None:
                w.w(1, f"{ind}PodSelector: {_selector(ps)}")
            elif nss is not None:
                w.w(1, f"{ind}NamespaceSelector: {_selector(nss)}")
            elif ipb is not None:
                w.w(1, f"{ind}IPBlock:")
                w.w(2, f"{ind}CIDR: {ipb.get('cidr', '')}")
                w.w(2, f"{ind}Except: {', '.join(ipb.get('except') or [])}")
        if i != len(rules) - 1:
            w.w(0, f"{ind}----------")


def describe_networkpolicy(np: dict, events=None) -> str:
    md, spec = P.meta(np), np.get("spec") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"Created on:\t{_created(md.get('creationTimestamp'))}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, "Spec:")
    sel = spec.get("podSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        w.w(1, "PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)")
    else:
        w.w(1, f"PodSelector:     {_selector(sel)}")
    types = spec.get("policyTypes") or []
    for direction, key in (("ingress", "Ingress"), ("egress", "Egress")):
        if key in types:
            w.w(1, f"Allowing {direction} traffic:")
            _rules(w, spec.get(direction) or [], direction)
        else:
            w.w(1, f"Not affecting {direction} traffic")
    w.w(1, f"Policy Types: {', '.join(types)}")
    return w.render()
