"""The scheduler's filters (kube-scheduler's Filter plugins), pure functions over plain data.

Order and messages are kube-scheduler's default profile (v1.32), so that a FailedScheduling
event reads like Kubernetes'::

    NodeUnschedulable   "node(s) were unschedulable"
    NodeName            "node(s) didn't match the requested node name"
    TaintToleration     "node(s) had untolerated taint {key: value}"
    NodeAffinity        "node(s) didn't match Pod's node affinity/selector"   (nodeSelector and
                        required node affinity, see terms.py)
    NodePorts           "node(s) didn't have free ports for the requested pod ports"
    NodeResourcesFit    "Too many pods", "Insufficient cpu", "Insufficient memory" (all that apply)
    PodTopologySpread   "node(s) didn't match pod topology spread constraints"   (spread.py)
    InterPodAffinity    "node(s) didn't match pod affinity rules", "node(s) didn't match pod
                        anti-affinity rules", "node(s) didn't satisfy existing pods anti-affinity
                        rules"   (interpod.py)

The last two look at the pods placed on other nodes too; the scheduler runs them only for a pod
with such terms, or when existing pods have pod (anti-)affinity terms.

A node's Ready condition is turned into the taint Kubernetes' node lifecycle controller puts on
it (TaintNodesByCondition): Ready False -> ``node.kubernetes.io/not-ready:NoSchedule``, Ready
Unknown or missing -> ``node.kubernetes.io/unreachable:NoSchedule``. So a node that is not
Ready takes no pod, unless the pod tolerates that taint (as in Kubernetes).

Requests are computed as Kubernetes does (``resource.PodRequests``): per resource,
max(sum of containers (+ restartable init containers), max over init containers of (that init
container + the restartable init containers before it)), plus ``spec.overhead``; a resource with
no request uses its limit (API defaulting). Scoring uses the non-zero defaults (100m CPU,
200 MiB) for containers that request nothing.
"""
from __future__ import annotations

import functools
from typing import Iterable

from skiff.agent.quantity import cpu_millis, memory_bytes

from .terms import node_affinity_matches, pod_terms, required_node_affinity

__all__ = [
    "PodInfo", "pod_info", "pod_requests", "pod_host_ports", "parse_cpu", "parse_memory",
    "node_selector_matches", "node_affinity_ok", "tolerates", "untolerated_taint", "node_taints",
    "node_ready_status", "fits_resources", "lacks_scalar", "pod_scalar_requests", "host_ports_conflict", "static_reasons", "dynamic_reasons", "filter_node",
    "fit_error_message",
    "R_UNSCHEDULABLE", "R_NODE_NAME", "R_SELECTOR", "R_PORTS", "R_TOO_MANY_PODS", "R_CPU", "R_MEMORY",
    "TAINT_NOT_READY", "TAINT_UNREACHABLE", "DEFAULT_MILLI_CPU", "DEFAULT_MEMORY",
]

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_NODE_NAME = "node(s) didn't match the requested node name"
R_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
R_PORTS = "node(s) didn't have free ports for the requested pod ports"
R_TOO_MANY_PODS = "Too many pods"
R_CPU = "Insufficient cpu"
R_MEMORY = "Insufficient memory"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

DEFAULT_MILLI_CPU = 100                  # kube-scheduler's non-zero defaults, for scoring only
DEFAULT_MEMORY = 200 * 1024 * 1024


@functools.lru_cache(maxsize=4096)
def parse_cpu(q) -> int:
    """A CPU quantity ("500m", "1", "0.5") in millicores."""
    return cpu_millis(q)


@functools.lru_cache(maxsize=4096)
def parse_memory(q) -> int:
    """A memory quantity ("64Mi", "1G", "129e6") in bytes."""
    return memory_bytes(q)


def _quantity(parse, res: dict, name: str) -> int | None:
    v = res.get(name)
    if v is None:
        return None
    try:
        return parse(v)
    except Exception:  # noqa: BLE001 - admission validates; be lenient with what slipped through
        return 0


def _container_requests(c: dict) -> tuple[int, int, int, int]:
    """(cpu, memory, non-zero cpu, non-zero memory) of one container."""
    res = c.get("resources") or {}
    req = res.get("requests") or {}
    lim = res.get("limits") or {}
    cpu = _quantity(parse_cpu, req, "cpu")
    if cpu is None:
        cpu = _quantity(parse_cpu, lim, "cpu")
    mem = _quantity(parse_memory, req, "memory")
    if mem is None:
        mem = _quantity(parse_memory, lim, "memory")
    return (cpu or 0, mem or 0,
            DEFAULT_MILLI_CPU if cpu is None else cpu,
            DEFAULT_MEMORY if mem is None else mem)


def _pod_total(spec: dict, per_container, overhead: dict) -> dict:
    """Kubernetes' rule for what a pod asks of its node, per key of ``per_container(c)`` (a dict
    of amounts): max(sum of the containers and the restartable init containers (sidecars), the
    largest init container plus the sidecars started before it), plus ``overhead``."""
    total: dict = {}
    for c in spec.get("containers") or ():
        for k, v in per_container(c).items():
            total[k] = total.get(k, 0) + v
    init_max: dict = {}
    sidecars: dict = {}          # restartable init containers (sidecars) keep running
    for c in spec.get("initContainers") or ():
        r = per_container(c)
        if c.get("restartPolicy") == "Always":
            for k, v in r.items():
                sidecars[k] = sidecars.get(k, 0) + v
                total[k] = total.get(k, 0) + v
                init_max[k] = max(init_max.get(k, 0), sidecars[k])
        else:
            for k, v in r.items():
                init_max[k] = max(init_max.get(k, 0), sidecars.get(k, 0) + v)
    out = {k: max(total.get(k, 0), init_max.get(k, 0)) for k in {*total, *init_max}}
    for k, v in overhead.items():
        out[k] = out.get(k, 0) + v
    return out


def _cpu_mem(c: dict) -> dict:
    cpu, mem, nz_cpu, nz_mem = _container_requests(c)
    return {0: cpu, 1: mem, 2: nz_cpu, 3: nz_mem}


def pod_requests(pod: dict) -> tuple[int, int, int, int]:
    """(cpu millicores, memory bytes, non-zero cpu, non-zero memory) the pod requests, by
    ``_pod_total``'s rule."""
    spec = pod.get("spec") or {}
    extra = {}
    overhead = spec.get("overhead") or {}
    if overhead:
        cpu = _quantity(parse_cpu, overhead, "cpu") or 0
        mem = _quantity(parse_memory, overhead, "memory") or 0
        extra = {0: cpu, 1: mem, 2: cpu, 3: mem}
    out = _pod_total(spec, _cpu_mem, extra)
    return out.get(0, 0), out.get(1, 0), out.get(2, 0), out.get(3, 0)


def _container_scalars(c: dict) -> dict[str, int]:
    """The container's requests of the resources other than cpu and memory (ephemeral-storage,
    hugepages-*, extended resources such as example.com/dongle); a limit stands for a request
    not given, as the API server's defaulting makes it."""
    res = c.get("resources") or {}
    req = res.get("requests") or {}
    lim = res.get("limits") or {}
    out = {}
    for name in (*req, *(k for k in lim if k not in req)):
        if name in ("cpu", "memory"):
            continue
        v = _quantity(parse_memory, req if name in req else lim, name)
        if v:
            out[name] = v
    return out


def pod_scalar_requests(pod: dict) -> tuple[tuple[str, int], ...]:
    """((resource, amount), ...) of the resources other than cpu and memory the pod requests,
    by ``_pod_total``'s rule; () for most pods."""
    spec = pod.get("spec") or {}
    overhead = {k: _quantity(parse_memory, spec["overhead"], k) or 0
                for k in spec.get("overhead") or {} if k not in ("cpu", "memory")}
    return tuple(sorted((k, v) for k, v in _pod_total(spec, _container_scalars, overhead).items() if v))


def lacks_scalar(scalars: tuple[tuple[str, int], ...], ni) -> str | None:
    """The first of ``scalars`` the node has not enough of (allocatable minus the requests of
    its pods), or None."""
    for name, amount in scalars:
        if ni.req_scalar.get(name, 0) + amount > ni.alloc_scalar.get(name, 0):
            return name
    return None


def pod_host_ports(pod: dict) -> tuple[tuple[str, int, str], ...]:
    """The (protocol, hostPort, hostIP) the pod wants on its node (hostPort 0 = none)."""
    spec = pod.get("spec") or {}
    out = []
    conts = list(spec.get("containers") or ())
    conts += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in conts:
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if hp:
                out.append(((p.get("protocol") or "TCP"), int(hp), (p.get("hostIP") or "0.0.0.0")))
    return tuple(out)


class PodInfo:
    """What the filters and scores need of a pod, parsed once."""
    __slots__ = ("key", "namespace", "name", "uid", "labels", "terminating", "cpu", "mem", "nz_cpu",
                 "nz_mem", "ports", "selector", "node_affinity", "tolerations", "node_name", "group",
                 "terms", "static_key", "claims", "priority", "scalars")

    def __init__(self, pod: dict):
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        # (no reference to ``pod`` is kept, only to its labels: the cache holds a PodInfo per bound
        # pod, and the informer replaces the dict at every update)
        self.namespace = md.get("namespace") or "default"
        self.name = md.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid = md.get("uid") or ""
        self.labels = md.get("labels") or {}
        self.terminating = md.get("deletionTimestamp") is not None
        self.cpu, self.mem, self.nz_cpu, self.nz_mem = pod_requests(pod)
        self.scalars = pod_scalar_requests(pod)
        self.ports = pod_host_ports(pod)
        self.selector = tuple(sorted((spec.get("nodeSelector") or {}).items()))
        affinity = spec.get("affinity")
        self.node_affinity = required_node_affinity(affinity) if affinity else None
        self.tolerations = tuple(_toleration(t) for t in spec.get("tolerations") or ())
        self.node_name = spec.get("nodeName") or ""
        self.group = spread_group(pod)
        self.terms = (pod_terms(spec, self.namespace, self.labels)
                      if affinity or spec.get("topologySpreadConstraints") else None)
        # everything the static filters look at: pods with the same key get the same answer
        self.static_key = (self.selector, self.tolerations, self.node_name, self.node_affinity)
        # the PersistentVolumeClaims the pod uses (the VolumeBinding plugin runs only when any)
        vols = spec.get("volumes")
        self.claims = tuple(v["persistentVolumeClaim"].get("claimName") or "" for v in vols
                            if "persistentVolumeClaim" in v) if vols else ()
        prio = spec.get("priority")        # set by the Priority admission
        self.priority = prio if isinstance(prio, int) and not isinstance(prio, bool) else 0


def pod_info(pod: dict) -> PodInfo:
    return PodInfo(pod)


def spread_group(pod: dict):
    """The set of pods this pod is spread against: those of the same controller (owner
    reference with controller=true, else the first owner), else those in the same namespace with
    the same labels; None when the pod has neither."""
    md = pod.get("metadata") or {}
    owners = md.get("ownerReferences") or ()
    # a str, not a tuple: the scores look it up in every node's Counter, and a str caches its
    # hash where a tuple rehashes its items at every lookup (measured: ~8% of the scheduler)
    if owners:
        ctl = next((o for o in owners if o.get("controller")), owners[0])
        return "owner\0" + (ctl.get("uid") or f"{ctl.get('kind')}/{ctl.get('name')}")
    labels = md.get("labels") or {}
    if labels:
        return "labels\0" + (md.get("namespace") or "default") + "\0" + \
            "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return None


def _toleration(t: dict) -> tuple:
    return (t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "", t.get("effect") or "")


# -- static filters (depend on the pod's spec and the node's spec/labels/conditions only) -------

def node_selector_matches(selector: Iterable[tuple[str, str]] | dict, labels: dict) -> bool:
    items = selector.items() if isinstance(selector, dict) else selector
    for k, v in items:
        if labels.get(k) != v:
            return False
    return True


def tolerates(toleration: tuple | dict, taint: dict) -> bool:
    """Kubernetes' Toleration.ToleratesTaint."""
    if isinstance(toleration, dict):
        toleration = _toleration(toleration)
    key, op, value, effect = toleration
    if effect and effect != taint.get("effect"):
        return False
    if key and key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    if op in ("Equal", ""):
        return value == (taint.get("value") or "")
    return False


def untolerated_taint(tolerations: Iterable, taints: Iterable[dict]) -> dict | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates, or None."""
    tols = list(tolerations)
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tols):
            return taint
    return None


def node_ready_status(node: dict) -> str:
    """status of the node's Ready condition: "True", "False" or "Unknown" (missing)."""
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") or "Unknown"
    return "Unknown"


def node_taints(node: dict) -> list[dict]:
    """The node's taints plus the condition taint the node lifecycle controller would add."""
    taints = list((node.get("spec") or {}).get("taints") or ())
    ready = node_ready_status(node)
    keys = {t.get("key") for t in taints}
    if ready == "False" and TAINT_NOT_READY not in keys:
        taints.append({"key": TAINT_NOT_READY, "effect": "NoSchedule"})
    elif ready not in ("True", "False") and TAINT_UNREACHABLE not in keys:
        taints.append({"key": TAINT_UNREACHABLE, "effect": "NoSchedule"})
    return taints


def _taint_reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


def static_reasons(pi: PodInfo, ni) -> list[str]:
    """Reasons from the filters that look only at specs: NodeUnschedulable, NodeName,
    TaintToleration, NodeAffinity (nodeSelector, then required node affinity). A failing filter
    stops the chain for the node (kube-scheduler runs the next plugin only when the previous
    passed)."""
    if ni.unschedulable and not any(
            tolerates(t, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}) for t in pi.tolerations):
        return [R_UNSCHEDULABLE]
    if pi.node_name and pi.node_name != ni.name:
        return [R_NODE_NAME]
    taint = untolerated_taint(pi.tolerations, ni.taints)
    if taint is not None:
        return [_taint_reason(taint)]
    if not node_affinity_ok(pi, ni):
        return [R_SELECTOR]
    return []


def node_affinity_ok(pi: PodInfo, ni) -> bool:
    """NodeAffinity: the node matches the pod's nodeSelector and required node affinity."""
    if pi.selector and not node_selector_matches(pi.selector, ni.labels):
        return False
    return pi.node_affinity is None or node_affinity_matches(pi.node_affinity, ni.labels, ni.name)


# -- dynamic filters (depend on the pods already on the node) -----------------------------------

def host_ports_conflict(wanted: Iterable[tuple[str, int, str]], used: dict) -> bool:
    """True when a wanted (protocol, port, ip) clashes with one in use: same port and protocol,
    and the same IP or either of them 0.0.0.0. ``used`` maps (protocol, port) -> {ip: count}."""
    for proto, port, ip in wanted:
        ips = used.get((proto, port))
        if not ips:
            continue
        if ip == "0.0.0.0" or "0.0.0.0" in ips or ip in ips:
            return True
    return False


def fits_resources(pi: PodInfo, ni, extra: tuple = (0, 0, 0, {})) -> list[str]:
    """NodeResourcesFit: every resource the node lacks (pods, cpu, memory, ephemeral-storage,
    hugepages, extended resources: ``Insufficient example.com/dongle``), against
    node.status.allocatable and the sum of the requests of the pods bound to (or assumed on) it,
    plus ``extra`` (cpu, memory, pods, {other resource: amount}) held by nominated pods."""
    ecpu, emem, en, escalars = extra
    reasons = []
    if ni.npods + en + 1 > ni.alloc_pods:
        reasons.append(R_TOO_MANY_PODS)
    if pi.cpu and ni.req_cpu + ecpu + pi.cpu > ni.alloc_cpu:
        reasons.append(R_CPU)
    if pi.mem and ni.req_mem + emem + pi.mem > ni.alloc_mem:
        reasons.append(R_MEMORY)
    for name, amount in pi.scalars:
        if ni.req_scalar.get(name, 0) + escalars.get(name, 0) + amount > ni.alloc_scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def dynamic_reasons(pi: PodInfo, ni) -> list[str]:
    if pi.ports and host_ports_conflict(pi.ports, ni.ports):
        return [R_PORTS]
    return fits_resources(pi, ni)


def filter_node(pi: PodInfo, ni) -> list[str]:
    """All filters for one node: [] when the pod fits, else the reasons."""
    return static_reasons(pi, ni) or dynamic_reasons(pi, ni)


def fit_error_message(num_nodes: int, reason_counts: dict[str, int]) -> str:
    """kube-scheduler's FitError text: ``0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
    didn't match Pod's node affinity/selector.`` (reasons "count reason", sorted as strings)."""
    if num_nodes == 0:
        return "no nodes available to schedule pods"
    msg = f"0/{num_nodes} nodes are available"
    parts = sorted(f"{n} {r}" for r, n in reason_counts.items())
    if parts:
        msg += ": " + ", ".join(parts) + "."
    return msg
