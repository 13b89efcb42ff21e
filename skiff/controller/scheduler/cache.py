"""The scheduler's view of the cluster: nodes, and the pods on each node, including "assumed"
pods (bound by this scheduler but not yet seen back through the watch), as kube-scheduler's
internal cache.

Pods are accounted by key ("ns/name"): adding a pod that is already accounted first removes its
old accounting, so assume + the watch event that confirms it count the pod once, and every
operation is idempotent. Pods in phase Succeeded/Failed hold nothing (kube-scheduler only watches
non-terminal assigned pods). Each pod's PodInfo (namespace, labels, terms) stays in ``pods`` for
the plugins that look at other pods (spread.py, interpod.py); ``with_affinity`` names the pods
with pod (anti-)affinity terms, which the InterPodAffinity plugin checks for every pod.
"""
from __future__ import annotations

from collections import Counter

from .filters import PodInfo, node_taints, parse_cpu, parse_memory

__all__ = ["NodeInfo", "SchedulerCache", "node_static_signature"]


class NodeInfo:
    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "alloc_cpu", "alloc_mem",
                 "alloc_pods", "req_cpu", "req_mem", "nz_cpu", "nz_mem", "npods", "ports", "groups",
                 "signature", "free_cpu", "free_mem", "div_cpu", "div_mem", "alloc_scalar", "req_scalar",
                 "log")

    def __init__(self, name: str, log: list | None = None):
        self.name = name
        self.node: dict | None = None
        self.labels: dict = {}
        self.taints: list[dict] = []
        self.unschedulable = False
        self.alloc_cpu = 0
        self.alloc_mem = 0
        self.alloc_pods = 0
        self.req_cpu = 0          # sum of requests of the pods on the node
        self.req_mem = 0
        self.nz_cpu = 0           # same with the non-zero defaults, for scoring
        self.nz_mem = 0
        self.npods = 0
        self.ports: dict[tuple[str, int], Counter] = {}
        self.groups: Counter = Counter()
        self.signature = None
        # for the scores' fast path: allocatable minus the non-zero requests, and the divisors
        self.free_cpu = 0
        self.free_mem = 0
        self.div_cpu = 1
        self.div_mem = 1
        # the other resources (ephemeral-storage, hugepages-*, extended): allocatable, requested
        self.alloc_scalar: dict[str, int] = {}
        self.req_scalar: dict[str, int] = {}
        # where the node notes each change of what the scores read (SchedulerCache.changes)
        self.log = log

    def _update_free(self) -> None:
        self.free_cpu = self.alloc_cpu - self.nz_cpu
        self.free_mem = self.alloc_mem - self.nz_mem
        self.div_cpu = self.alloc_cpu if self.alloc_cpu > 0 else 1
        self.div_mem = self.alloc_mem if self.alloc_mem > 0 else 1
        if self.log is not None:
            self.log.append(self)

    def set_node(self, node: dict) -> None:
        self.node = node
        spec = node.get("spec") or {}
        alloc = (node.get("status") or {}).get("allocatable") or {}
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.taints = node_taints(node)
        self.unschedulable = bool(spec.get("unschedulable"))
        self.alloc_cpu = _q(parse_cpu, alloc.get("cpu"))
        self.alloc_mem = _q(parse_memory, alloc.get("memory"))
        self.alloc_pods = _q(int, alloc.get("pods"))
        self.alloc_scalar = {k: _q(parse_memory, v) for k, v in alloc.items() if k not in ("cpu", "memory", "pods")}
        self.signature = node_static_signature(node)
        self._update_free()

    def add(self, pi: PodInfo, sign: int = 1) -> None:
        self.req_cpu += sign * pi.cpu
        self.req_mem += sign * pi.mem
        self.nz_cpu += sign * pi.nz_cpu
        self.nz_mem += sign * pi.nz_mem
        self.npods += sign
        for name, amount in pi.scalars:
            left = self.req_scalar.get(name, 0) + sign * amount
            if left:
                self.req_scalar[name] = left
            else:
                self.req_scalar.pop(name, None)
        self.free_cpu -= sign * pi.nz_cpu
        self.free_mem -= sign * pi.nz_mem
        if self.log is not None:
            self.log.append(self)
        for proto, port, ip in pi.ports:
            c = self.ports.setdefault((proto, port), Counter())
            c[ip] += sign
            if c[ip] <= 0:
                del c[ip]
                if not c:
                    del self.ports[(proto, port)]
        if pi.group is not None:
            self.groups[pi.group] += sign
            if self.groups[pi.group] <= 0:
                del self.groups[pi.group]

    def __repr__(self) -> str:
        return (f"NodeInfo({self.name} pods={self.npods}/{self.alloc_pods} cpu={self.req_cpu}/{self.alloc_cpu}m "
                f"mem={self.req_mem}/{self.alloc_mem})")


def _q(parse, v) -> int:
    if v is None:
        return 0
    try:
        return int(parse(v))
    except Exception:  # noqa: BLE001
        return 0


def node_static_signature(node: dict) -> tuple:
    """What the static filters read of a node; a change of it invalidates cached answers."""
    spec = node.get("spec") or {}
    md = node.get("metadata") or {}
    return (tuple(sorted((md.get("labels") or {}).items())),
            tuple((t.get("key"), t.get("value"), t.get("effect")) for t in node_taints(node)),
            bool(spec.get("unschedulable")))


def pod_counts(pod: dict) -> bool:
    """Whether a bound pod holds resources on its node (non-terminal)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed")


class SchedulerCache:
    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}      # every node known (or referenced by a pod)
        self.node_list: list[NodeInfo] = []       # the nodes that exist, by name
        self.pods: dict[str, tuple[str, PodInfo]] = {}   # pod key -> (node name, info)
        self.assumed: set[str] = set()
        self.with_affinity: set[str] = set()      # keys of the pods with pod (anti-)affinity terms
        self.static_generation = 0                # bumped when a node's static signature changes
        # the nodes whose resources or pods changed, in order (score.FitTable reads it from
        # where it last looked); ``changes_base`` is the position of its first entry
        self.changes: list[NodeInfo] = []
        self.changes_base = 0

    # -- nodes --------------------------------------------------------------------------------
    def _info(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name, self.changes)
        return ni

    def set_node(self, node: dict) -> bool:
        """Add or update a node; returns True when something the scheduler looks at changed."""
        name = node["metadata"]["name"]
        ni = self._info(name)
        old = ni.node
        before = (ni.signature, ni.alloc_cpu, ni.alloc_mem, ni.alloc_pods, ni.alloc_scalar)
        ni.set_node(node)
        self.trim_changes()
        if old is None:
            self._rebuild()
            self.static_generation += 1
            return True
        if ni.signature != before[0]:
            self.static_generation += 1
        return before != (ni.signature, ni.alloc_cpu, ni.alloc_mem, ni.alloc_pods, ni.alloc_scalar)

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        ni.node = None
        if ni.npods == 0:
            del self.nodes[name]
        self._rebuild()
        self.static_generation += 1

    def changes_since(self, pos: int) -> list[NodeInfo] | None:
        """The nodes changed since log position ``pos`` (None: forgotten, look at every node)."""
        if pos < self.changes_base:
            return None
        return self.changes[pos - self.changes_base:]

    @property
    def changes_end(self) -> int:
        return self.changes_base + len(self.changes)

    def trim_changes(self) -> None:
        """Forget the change log once it is longer than the nodes are many (a table further
        behind than that is cheaper to rebuild than to update). Called on every change, so the
        log stays bounded whether or not a table reads it."""
        if len(self.changes) > 1024 + 2 * len(self.nodes):
            self.changes_base += len(self.changes)
            self.changes.clear()

    def _rebuild(self) -> None:
        self.node_list = sorted((ni for ni in self.nodes.values() if ni.node is not None),
                                key=lambda n: n.name)

    # -- pods ---------------------------------------------------------------------------------
    def set_pod(self, pod: dict, pi: PodInfo | None = None) -> None:
        """Account a pod seen through the watch (bound or not; unbound pods are ignored)."""
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace') or 'default'}/{md.get('name')}"
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if not node or not pod_counts(pod):
            self.remove_pod(key)
            return
        cur = self.pods.get(key)
        # labels and deletion are the only things accounted that change on a bound pod
        if (cur is not None and cur[0] == node and cur[1].labels == (md.get("labels") or {})
                and cur[1].terminating == (md.get("deletionTimestamp") is not None)):
            if key in self.assumed:
                self.assumed.discard(key)      # confirmed: keep the assumed accounting
                return
            if pi is None and cur[1].uid == (md.get("uid") or ""):
                return                          # same pod on the same node: requests are immutable
        self.remove_pod(key)
        self._add(key, node, pi or PodInfo(pod))

    def _add(self, key: str, node: str, pi: PodInfo) -> None:
        self.pods[key] = (node, pi)
        self._info(node).add(pi, 1)
        self.trim_changes()
        if pi.terms is not None and pi.terms.inter_pod:
            self.with_affinity.add(key)

    def remove_pod(self, key: str) -> None:
        cur = self.pods.pop(key, None)
        self.assumed.discard(key)
        if cur is None:
            return
        self.with_affinity.discard(key)
        node, pi = cur
        ni = self.nodes.get(node)
        if ni is not None:
            ni.add(pi, -1)
            if ni.node is None and ni.npods == 0:
                del self.nodes[node]
        self.trim_changes()

    def assume(self, pi: PodInfo, node: str) -> None:
        """Account ``pi`` on ``node`` before the binding is seen back."""
        self.remove_pod(pi.key)
        self._add(pi.key, node, pi)
        self.assumed.add(pi.key)

    def forget(self, key: str) -> None:
        """Undo an assume (the binding failed)."""
        if key in self.assumed:
            self.remove_pod(key)

    def node_of(self, key: str) -> str | None:
        cur = self.pods.get(key)
        return cur[0] if cur else None
