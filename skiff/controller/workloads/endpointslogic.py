"""The decisions of the endpoints and endpointslice controllers, as pure functions over dicts.

What Kubernetes' pkg/controller/endpoint and pkg/controller/endpointslice (1.32) compute from a
Service and the pods its selector matches:

- Which pods count: not terminal (phase Succeeded/Failed), with an IP of the wanted family
  (status.podIPs, or status.podIP); a pod being deleted is left out of Endpoints (unless
  publishNotReadyAddresses) and is in EndpointSlices as ``terminating``.
- Ports: each of the Service's ports resolves per pod: a number targetPort is itself, a named one
  is the containerPort of that name and protocol in the pod's containers (or restartable init
  containers); a pod where it does not resolve has no such port.
- Endpoints (core/v1): an address ``{ip, hostname?, nodeName, targetRef}`` per pod, ready ones in
  ``addresses``, the others in ``notReadyAddresses`` (all ready with publishNotReadyAddresses);
  repacked as Kubernetes' RepackSubsets does (ports served by the same addresses share a
  subset), sorted so that the same pods give the same object; at most 1000 addresses (the rest is
  truncated, annotation ``endpoints.kubernetes.io/over-capacity: truncated``).
- EndpointSlices (discovery.k8s.io/v1): endpoints ``{addresses, conditions {ready, serving,
  terminating}, hostname?, nodeName?, zone?, targetRef}`` grouped by address type and by the set
  of ports they resolve to; at most 100 a slice. :func:`plan_slices` is the reconciler: existing
  slices are updated in place (endpoints that changed replaced, gone ones removed), left-over
  endpoints fill the slices being updated first, then one unchanged slice they fit in, then new
  slices; emptied slices are deleted (or reused for a new slice); a Service with no endpoints at
  all keeps one empty placeholder slice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

from skiff.controller.workloads.logic import get_condition, md, parse_time

__all__ = [
    "SERVICE_NAME_LABEL", "MANAGED_BY_LABEL", "CONTROLLER_NAME", "HEADLESS_LABEL", "TRIGGER_TIME_ANNOTATION",
    "OVER_CAPACITY_ANNOTATION", "MAX_ENDPOINTS_PER_SLICE", "MAX_ENDPOINTS_CAPACITY",
    "service_selector", "manages", "selects", "pod_in_endpoints", "is_pod_ready", "find_port",
    "desired_subsets", "endpoints_update", "subsets_equal", "desired_slices", "plan_slices", "SlicePlan",
    "slice_labels", "is_managed_slice", "TriggerTimes", "pod_view",
]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_PER_SLICE = 100       # kube-controller-manager's --max-endpoints-per-slice
MAX_ENDPOINTS_CAPACITY = 1000       # addresses in one Endpoints object, then truncated

IPV4, IPV6 = "IPv4", "IPv6"


# -- services and pods ---------------------------------------------------------------------------
def _spec(obj: dict | None) -> dict:
    return (obj or {}).get("spec") or {}


def service_selector(svc: dict | None) -> dict | None:
    """The Service's selector, or None when it has none (an empty one is none: Kubernetes stores
    ``{}`` as nil)."""
    sel = _spec(svc).get("selector")
    return sel if isinstance(sel, dict) and sel else None


def manages(svc: dict | None) -> bool:
    """Whether the controllers keep this Service's endpoints: it has a selector and is not an
    ExternalName Service (those get none)."""
    return service_selector(svc) is not None and _spec(svc).get("type") != "ExternalName"


def selects(selector: dict, labels: dict | None) -> bool:
    """A Service selector (a plain map) against a pod's labels."""
    if not labels:
        return False
    for k, v in selector.items():
        if labels.get(k) != v:
            return False
    return True


def is_pod_ready(pod: dict) -> bool:
    c = get_condition(pod.get("status"), "Ready")
    return c is not None and c.get("status") == "True"


def pod_ips(pod: dict) -> list[str]:
    st = pod.get("status") or {}
    ips = [i.get("ip") for i in st.get("podIPs") or () if isinstance(i, dict) and i.get("ip")]
    if not ips and st.get("podIP"):
        ips = [st["podIP"]]
    return ips


def _family(ip: str) -> str:
    return IPV6 if ":" in ip else IPV4


def pod_in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints: not terminal, has an IP, and not being deleted unless
    ``include_terminating``."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    if not include_terminating and md(pod).get("deletionTimestamp"):
        return False
    return True


def is_ip_set(svc: dict) -> bool:
    """helper.IsServiceIPSet: a ClusterIP that is not None (headless) nor empty."""
    ip = _spec(svc).get("clusterIP")
    return bool(ip) and ip != "None"


def _headless_without_ports(svc: dict) -> bool:
    return not _spec(svc).get("ports") and _spec(svc).get("clusterIP") == "None"


def _set_hostname(pod: dict, svc: dict) -> str | None:
    """ShouldSetHostname: the pod's spec.hostname when its subdomain is this Service's name."""
    ps, pm, sm = _spec(pod), md(pod), md(svc)
    if ps.get("hostname") and ps.get("subdomain") == sm.get("name") and pm.get("namespace") == sm.get("namespace"):
        return ps["hostname"]
    return None


def _target_ref(pod: dict) -> dict:
    m = md(pod)
    return {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid")}


def find_port(pod: dict, svc_port: dict) -> int | None:
    """podutil.FindPort: the pod's port for a Service port (None when a named port does not
    resolve)."""
    target = svc_port.get("targetPort")
    if target is None:
        target = svc_port.get("port")
    if isinstance(target, int):
        return target
    if not isinstance(target, str):
        return None
    proto = svc_port.get("protocol") or "TCP"
    spec = _spec(pod)
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return p.get("containerPort")
    return None


def pod_view(pod: dict | None) -> tuple:
    """What of a pod its endpoints depend on (labels aside): a pod update that changes none of it
    changes no Endpoints/EndpointSlice."""
    if pod is None:
        return ()
    m, s, st = md(pod), _spec(pod), pod.get("status") or {}
    return (m.get("uid"), bool(m.get("deletionTimestamp")), st.get("phase"), st.get("podIP"), st.get("podIPs"),
            is_pod_ready(pod), s.get("nodeName"), s.get("hostname"), s.get("subdomain"),
            _ports_view(s.get("containers")), _ports_view(s.get("initContainers")))


def _ports_view(containers) -> tuple:
    return tuple(str(c.get("ports")) for c in containers or () if c.get("ports"))


def _service_family(svc: dict, pod: dict) -> str:
    """The address family of a Service's Endpoints: its first ipFamily, else its ClusterIP's,
    else (legacy headless) the pod's primary IP's."""
    fams = _spec(svc).get("ipFamilies") or ()
    if fams:
        return fams[0]
    if is_ip_set(svc):
        return _family(_spec(svc)["clusterIP"])
    ips = pod_ips(pod)
    return _family(ips[0]) if ips else IPV4


# -- Endpoints -----------------------------------------------------------------------------------
def _endpoint_address(svc: dict, pod: dict) -> dict | None:
    fam = _service_family(svc, pod)
    ip = next((i for i in pod_ips(pod) if _family(i) == fam), None)
    if ip is None:
        return None
    a: dict = {"ip": ip}
    host = _set_hostname(pod, svc)
    if host:
        a["hostname"] = host
    node = _spec(pod).get("nodeName")
    if node:
        a["nodeName"] = node
    a["targetRef"] = _target_ref(pod)
    return a


def _endpoints_port(svc_port: dict, number: int) -> dict:
    p: dict = {}
    if svc_port.get("name"):
        p["name"] = svc_port["name"]
    p["port"] = number
    p["protocol"] = svc_port.get("protocol") or "TCP"
    if svc_port.get("appProtocol"):
        p["appProtocol"] = svc_port["appProtocol"]
    return p


def _port_key(p: dict) -> tuple:
    return (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "", p.get("appProtocol") or "")


def _addr_key(a: dict) -> tuple:
    return (a.get("ip") or "", ((a.get("targetRef") or {}).get("uid") or ""))


def _ip_sort_key(ip: str) -> tuple:
    """Numeric order of IPv4 addresses (textual for anything else)."""
    parts = ip.split(".")
    if len(parts) == 4 and all(x.isdigit() for x in parts):
        return (0, tuple(int(x) for x in parts), "")
    return (1, (), ip)


def _addr_sort_key(a: dict) -> tuple:
    return (_ip_sort_key(a.get("ip") or ""), (a.get("targetRef") or {}).get("uid") or "")


def desired_subsets(svc: dict, pods: Iterable[dict]) -> list[dict]:
    """The Endpoints subsets for ``svc`` and the pods its selector matches (any order)."""
    spec = _spec(svc)
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    # port -> {address key: ready}, and each address once
    by_port: dict[tuple, dict[tuple, bool]] = {}
    port_of: dict[tuple, dict | None] = {}
    addrs: dict[tuple, dict] = {}
    for pod in pods:
        if not pod_in_endpoints(pod, tolerate):
            continue
        a = _endpoint_address(svc, pod)
        if a is None:
            continue
        ready = tolerate or is_pod_ready(pod)
        ak = _addr_key(a)
        addrs.setdefault(ak, a)
        if not svc_ports:
            if spec.get("clusterIP") == "None":     # a headless Service may have no ports
                _note(by_port.setdefault((), {}), ak, ready)
                port_of[()] = None
            continue
        for sp in svc_ports:
            n = find_port(pod, sp)
            if n is None:
                continue
            p = _endpoints_port(sp, n)
            pk = _port_key(p)
            port_of[pk] = p
            _note(by_port.setdefault(pk, {}), ak, ready)
    # ports served by the same addresses (with the same readiness) share one subset
    groups: dict[frozenset, list[tuple]] = {}
    for pk, members in by_port.items():
        groups.setdefault(frozenset(members.items()), []).append(pk)
    subsets = []
    for members, pks in groups.items():
        ready = sorted((addrs[k] for k, r in members if r), key=_addr_sort_key)
        not_ready = sorted((addrs[k] for k, r in members if not r), key=_addr_sort_key)
        ports = [port_of[pk] for pk in sorted(pks) if port_of[pk] is not None]
        s: dict = {}
        if ready:
            s["addresses"] = ready
        if not_ready:
            s["notReadyAddresses"] = not_ready
        if ports:
            s["ports"] = ports
        subsets.append(s)
    subsets.sort(key=_subset_sort_key)
    return subsets


def _note(members: dict[tuple, bool], ak: tuple, ready: bool) -> None:
    """Not ready wins over ready (two pods with one address)."""
    members[ak] = members.get(ak, True) and ready


def _subset_sort_key(s: dict) -> tuple:
    return (tuple(_port_key(p) for p in s.get("ports") or ()),
            tuple(_addr_sort_key(a) for a in s.get("addresses") or ()),
            tuple(_addr_sort_key(a) for a in s.get("notReadyAddresses") or ()))


def _norm_address(a: dict) -> dict:
    ref = a.get("targetRef")
    if isinstance(ref, dict) and "resourceVersion" in ref:
        a = {**a, "targetRef": {k: v for k, v in ref.items() if k != "resourceVersion"}}
    return a


def _norm_subsets(subsets) -> list[dict]:
    out = []
    for s in subsets or ():
        n = {}
        for f in ("addresses", "notReadyAddresses"):
            if s.get(f):
                n[f] = [_norm_address(a) for a in s[f]]
        if s.get("ports"):
            n["ports"] = list(s["ports"])
        out.append(n)
    return out


def subsets_equal(a, b) -> bool:
    """Equal subsets, the pods' resourceVersions in targetRefs aside."""
    return _norm_subsets(a) == _norm_subsets(b)


def truncate(subsets: list[dict], capacity: int = MAX_ENDPOINTS_CAPACITY) -> tuple[list[dict], bool]:
    """truncateEndpoints: at most ``capacity`` addresses; not-ready ones go first, then each
    subset keeps its share (rounded up) of the ready ones. (subsets, whether truncated)."""
    ready = sum(len(s.get("addresses") or ()) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if ready + not_ready <= capacity:
        return subsets, False
    cut_ready = ready > capacity
    limit, total = (capacity, ready) if cut_ready else (capacity - ready, not_ready)
    room = limit
    out = []
    for s in subsets:
        s = dict(s)
        f = "addresses" if cut_ready else "notReadyAddresses"
        n = min(math.ceil(len(s.get(f) or ()) / total * limit), room)
        kept = (s.get(f) or [])[:n]
        if kept:
            s[f] = kept
        else:
            s.pop(f, None)
        if cut_ready:
            s.pop("notReadyAddresses", None)
        room -= len(kept)
        if s.get("addresses") or s.get("notReadyAddresses"):
            out.append(s)
    return out, True


def endpoints_labels(svc: dict) -> dict:
    labels = {k: v for k, v in (md(svc).get("labels") or {}).items() if k != HEADLESS_LABEL}
    if not is_ip_set(svc):
        labels[HEADLESS_LABEL] = ""
    return labels


def endpoints_update(svc: dict, current: dict | None, subsets: list[dict],
                     trigger_time: str | None = None) -> dict | None:
    """The Endpoints object to write for ``svc`` (``current`` is the one that exists, or None),
    or None when ``current`` already says it all (no write)."""
    subsets, truncated = truncate(subsets)
    labels = endpoints_labels(svc)
    if current is not None:
        cm = md(current)
        if (subsets_equal(current.get("subsets"), subsets) and (cm.get("labels") or {}) == labels
                and (OVER_CAPACITY_ANNOTATION in (cm.get("annotations") or {})) == truncated):
            return None
        meta = {k: v for k, v in cm.items() if k not in ("labels", "annotations", "managedFields")}
        annotations = dict(cm.get("annotations") or {})
    else:
        sm = md(svc)
        meta = {"name": sm.get("name"), "namespace": sm.get("namespace")}
        annotations = {}
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    obj: dict = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    if subsets:
        obj["subsets"] = subsets
    return obj


# -- EndpointSlices ------------------------------------------------------------------------------
def address_types(svc: dict) -> list[str]:
    """getAddressTypesForService: the Service's ipFamilies; else its ClusterIP's family; else
    (headless, not yet defaulted) both."""
    fams = [f for f in _spec(svc).get("ipFamilies") or () if f in (IPV4, IPV6)]
    if fams:
        return list(dict.fromkeys(fams))
    if is_ip_set(svc):
        return [_family(_spec(svc)["clusterIP"])]
    return [IPV4, IPV6]


def _primary_address_type(svc: dict) -> str:
    fams = _spec(svc).get("ipFamilies") or ()
    if fams:
        return IPV6 if fams[0] == IPV6 else IPV4
    return IPV6 if is_ip_set(svc) and _family(_spec(svc)["clusterIP"]) == IPV6 else IPV4


def _slice_ports(svc: dict, pod: dict) -> list[dict]:
    """getEndpointPorts: every Service port the pod resolves (name always set, "" when the
    Service port has none)."""
    out = []
    if _headless_without_ports(svc):
        return out
    for sp in _spec(svc).get("ports") or ():
        n = find_port(pod, sp)
        if n is None:
            continue
        p = {"name": sp.get("name") or "", "port": n, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def ports_key(ports) -> tuple:
    """NewPortMapKey: a set of ports, order aside."""
    return tuple(sorted(_port_key(p) for p in ports or ()))


def endpoint_key(ep: dict) -> tuple:
    """An endpoint's identity in a slice: its addresses, hostname and pod."""
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or ())), ep.get("hostname") or "", ref.get("namespace") or "",
            ref.get("name") or "")


def _endpoint_sort_key(ep: dict) -> tuple:
    addrs = ep.get("addresses") or [""]
    return (_ip_sort_key(addrs[0]), endpoint_key(ep))


def _norm_endpoint(ep: dict) -> dict:
    out = dict(ep)
    if isinstance(out.get("addresses"), list):
        out["addresses"] = sorted(out["addresses"])
    ref = out.get("targetRef")
    if isinstance(ref, dict) and "resourceVersion" in ref:
        out["targetRef"] = {k: v for k, v in ref.items() if k != "resourceVersion"}
    return out


def endpoints_equal(a: dict, b: dict) -> bool:
    return _norm_endpoint(a) == _norm_endpoint(b)


def _slice_endpoint(svc: dict, pod: dict, address_type: str, zone: str | None) -> dict | None:
    addrs = [ip for ip in pod_ips(pod) if _family(ip) == address_type]
    if not addrs:
        return None
    serving = is_pod_ready(pod)
    terminating = bool(md(pod).get("deletionTimestamp"))
    ready = bool(_spec(svc).get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: dict = {"addresses": addrs, "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    host = _set_hostname(pod, svc)
    if host:
        ep["hostname"] = host
    ep["targetRef"] = _target_ref(pod)
    node = _spec(pod).get("nodeName")
    if node:
        ep["nodeName"] = node
    if zone:
        ep["zone"] = zone
    return ep


@dataclass
class PortGroup:
    """The endpoints that resolve to one set of ports, by endpoint key."""
    ports: list[dict]
    endpoints: dict[tuple, dict] = field(default_factory=dict)


def desired_slices(svc: dict, pods: Iterable[dict],
                   zone_of: Callable[[str], str | None] | None = None) -> dict[str, dict[tuple, PortGroup]]:
    """address type -> ports key -> the endpoints (for the pods ``svc`` selects, any order).
    ``zone_of(nodeName)``: the node's topology.kubernetes.io/zone, if known."""
    types = address_types(svc)
    out: dict[str, dict[tuple, PortGroup]] = {t: {} for t in types}
    for pod in pods:
        if not pod_in_endpoints(pod, True):
            continue
        ports = _slice_ports(svc, pod)
        pk = ports_key(ports)
        node = _spec(pod).get("nodeName")
        zone = zone_of(node) if zone_of is not None and node else None
        for t in types:
            ep = _slice_endpoint(svc, pod, t, zone)
            if ep is None:
                continue
            g = out[t].get(pk)
            if g is None:
                g = out[t][pk] = PortGroup(ports)
            g.endpoints[endpoint_key(ep)] = ep
    return out


def slice_labels(svc: dict) -> dict:
    """setEndpointSliceLabels: the Service's labels (but the reserved ones), the headless label
    when it has no ClusterIP, the service name and managed-by labels."""
    reserved = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    labels = {k: v for k, v in (md(svc).get("labels") or {}).items() if k not in reserved}
    if not is_ip_set(svc):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = md(svc).get("name")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def is_managed_slice(s: dict | None) -> bool:
    return (md(s).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def owned_by(s: dict, svc: dict) -> bool:
    uid = md(svc).get("uid")
    return any(r.get("uid") == uid and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
               for r in md(s).get("ownerReferences") or ())


def service_owner_ref(svc: dict) -> dict:
    m = md(svc)
    return {"apiVersion": "v1", "kind": "Service", "name": m.get("name"), "uid": m.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def new_slice(svc: dict, address_type: str, ports: list[dict], endpoints: list[dict]) -> dict:
    m = md(svc)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{m.get('name')}-", "namespace": m.get("namespace"),
                         "labels": slice_labels(svc), "ownerReferences": [service_owner_ref(svc)]},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}


@dataclass
class SlicePlan:
    create: list[dict] = field(default_factory=list)
    update: list[dict] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def _is_placeholder_of(s: dict, svc: dict, address_type: str) -> bool:
    return (not s.get("endpoints") and not s.get("ports") and s.get("addressType") == address_type
            and (md(s).get("labels") or {}) == slice_labels(svc) and md(s).get("namespace") == md(svc).get("namespace"))


def plan_slices(svc: dict, existing: list[dict], desired: dict[str, dict[tuple, PortGroup]],
                max_per_slice: int = MAX_ENDPOINTS_PER_SLICE, trigger_time: str | None = None) -> SlicePlan:
    """The reconciler: what to create, update (whole objects, resourceVersion kept) and delete so
    that ``existing`` (this Service's managed slices) become ``desired``. An empty plan: nothing
    to write."""
    plan = SlicePlan()
    labels = slice_labels(svc)
    by_type: dict[str, list[dict]] = {}
    for s in sorted(existing, key=lambda s: md(s).get("name") or ""):
        if s.get("addressType") not in desired or not owned_by(s, svc):
            plan.delete.append(s)       # a family the Service no longer has, or an old Service's
        else:
            by_type.setdefault(s["addressType"], []).append(s)
    for at, groups in desired.items():
        by_ports: dict[tuple, list[dict]] = {}
        for s in by_type.get(at, ()):
            by_ports.setdefault(ports_key(s.get("ports")), []).append(s)
        for pk, slices in by_ports.items():
            if pk not in groups:
                plan.delete.extend(slices)
        for pk, g in groups.items():
            _plan_port_group(svc, at, g, by_ports.get(pk, []), labels, max_per_slice, plan)
    # a Service with no endpoints at all keeps one empty placeholder slice
    if len(existing) == len(plan.delete) and not plan.create:
        at = _primary_address_type(svc)
        if len(plan.delete) == 1 and _is_placeholder_of(plan.delete[0], svc, at) and owned_by(plan.delete[0], svc):
            plan.delete = []
        else:
            plan.create.append(new_slice(svc, at, [], []))
    # the first create of a family takes the place of a slice being deleted: one write, not two
    i = 0
    while i < len(plan.delete) and plan.create:
        old = plan.delete[i]
        j = next((k for k in range(len(plan.create) - 1, -1, -1)
                  if plan.create[k]["addressType"] == old.get("addressType")), None)
        if j is None or not owned_by(old, svc):
            i += 1
            continue
        new = plan.create.pop(j)
        meta = {k: v for k, v in md(old).items() if k not in ("managedFields",)}
        meta["labels"] = labels
        plan.update.append({**old, "metadata": meta, "endpoints": new["endpoints"], "ports": new["ports"]})
        plan.delete.pop(i)
    for s in plan.create + plan.update:
        a = dict(md(s).get("annotations") or {})
        if trigger_time:
            a[TRIGGER_TIME_ANNOTATION] = trigger_time
        else:
            a.pop(TRIGGER_TIME_ANNOTATION, None)
        s["metadata"] = {**s["metadata"], "annotations": a} if a else \
            {k: v for k, v in s["metadata"].items() if k != "annotations"}
    return plan


def _plan_port_group(svc: dict, at: str, g: PortGroup, slices: list[dict], labels: dict,
                     max_per_slice: int, plan: SlicePlan) -> None:
    """reconcileByPortMapping for one address type and one set of ports."""
    want = dict(g.endpoints)
    updating: list[dict] = []
    unchanged: list[dict] = []
    for s in slices:
        eps, changed = [], False
        for ep in s.get("endpoints") or ():
            k = endpoint_key(ep)
            got = want.pop(k, None)
            if got is None:
                changed = True          # gone (or a duplicate)
                continue
            if not endpoints_equal(got, ep):
                changed = True
            eps.append(got)
        if changed or (md(s).get("labels") or {}) != labels:
            if not eps:
                plan.delete.append(s)
            else:
                updating.append({**s, "metadata": {**md(s), "labels": labels}, "endpoints": eps})
        else:
            unchanged.append(s)
    rest = sorted(want.values(), key=_endpoint_sort_key)
    # the slices being written anyway take what they can, the fullest first
    for s in sorted(updating, key=lambda s: -len(s["endpoints"])):
        room = max_per_slice - len(s["endpoints"])
        if room > 0 and rest:
            s["endpoints"] = s["endpoints"] + rest[:room]
            rest = rest[room:]
    while rest:
        fill = None
        if len(rest) < max_per_slice:
            # the fullest unchanged slice the rest fits in
            fits = [s for s in unchanged if len(s.get("endpoints") or ()) + len(rest) <= max_per_slice]
            if fits:
                fill = max(fits, key=lambda s: len(s.get("endpoints") or ()))
        if fill is None:
            take, rest = rest[:max_per_slice], rest[max_per_slice:]
            plan.create.append(new_slice(svc, at, list(g.ports), take))
        else:
            unchanged.remove(fill)
            updating.append({**fill, "metadata": {**md(fill), "labels": labels},
                             "endpoints": list(fill.get("endpoints") or ()) + rest})
            rest = []
    plan.update.extend(updating)


# -- last-change-trigger-time ----------------------------------------------------------------------
class TriggerTimes:
    """TriggerTimeTracker: for each Service, the trigger times it last saw (the Service's
    creationTimestamp, each pod's Ready lastTransitionTime), so that a sync can say when the
    earliest change it carries happened (the endpoints.kubernetes.io/last-change-trigger-time
    annotation): the creation of a new Service, else the earliest changed trigger since the last
    sync (None when there is none)."""

    def __init__(self):
        self._state: dict[str, tuple[str | None, dict[str, str]]] = {}

    def compute(self, key: str, svc: dict, pods: Iterable[dict]) -> str | None:
        prev = self._state.get(key)
        last_pods = prev[1] if prev else {}
        times: dict[str, str] = {}
        earliest: tuple[float, str] | None = None
        for pod in pods:
            c = get_condition(pod.get("status"), "Ready")
            t = (c or {}).get("lastTransitionTime")
            if not t:
                continue
            name = md(pod).get("name") or ""
            times[name] = t
            if _after(t, last_pods.get(name)):
                earliest = _earlier(earliest, t)
        created = md(svc).get("creationTimestamp")
        if created and _after(created, prev[0] if prev else None):
            earliest = _earlier(earliest, created)
        self._state[key] = (created, times)
        if prev is None:
            return created
        return earliest[1] if earliest else None

    def forget(self, key: str) -> None:
        self._state.pop(key, None)


def _after(t: str, last: str | None) -> bool:
    if last is None:
        return True
    a, b = parse_time(t), parse_time(last)
    return a is not None and (b is None or a > b)


def _earlier(cur: tuple[float, str] | None, t: str) -> tuple[float, str] | None:
    v = parse_time(t)
    if v is None:
        return cur
    return (v, t) if cur is None or v < cur[0] else cur
