"""The scheduler: binds pending pods to nodes, one pod at a time, as kube-scheduler does.

Sources: one informer on all pods (unbound ones feed the queue; bound, non-terminal ones are the
nodes' usage), one on nodes and one on namespaces (their labels, for the namespaceSelector of pod
affinity terms). One worker takes a pod key from the queue and runs a scheduling cycle on the
cache: filters (filters.py) then scores (score.py); the pod is "assumed" on the chosen
node at once (so the next cycle sees the node's new usage) and the binding is POSTed in the
background, like kube-scheduler's binding cycle (a goroutine a pod, no limit there).

Throughput: the cycles of a backlog do not wait for their bindings, so they would keep the event
loop the API server shares. The worker lets the loop run the others' callbacks once it has
had it for ``SCHEDULE_SLICE`` (50 ms), and at most ``MAX_INFLIGHT_BINDS`` (2048) bindings wait for
their commit at once. The loop is what the bindings wait for: by Little's law, with the cap
reached the rate is the cap over the time a binding takes to go through the group commit and
back through the busy loop (~0.5 s on a 2-core machine the 1000 hollow nodes share); 512 in
flight showed as bursts of exactly 1024 bindings a second. A binding in flight costs little
memory since the pod is read, changed and written on the store's thread (Registry.bind,
Storage.update_with) and only its revision handed back: bench/scale_bench.py --backlog bound
1024 -> 1316-1326, 2048 -> 1530-1977 and 4096 -> 1817 pods/s, with the controller's peak RSS
282-289 MB at 2048 (294 at 4096; 308-310 at 2048 while each binding held its decoded pod).

- On success: a Normal ``Scheduled`` event ``Successfully assigned default/web to n1`` and one log
  line. The informer's MODIFIED (spec.nodeName set) then confirms the assumed pod.
- Pending pods are taken highest `spec.priority` first (PrioritySort), first come first served
  within a priority; a pod that fits nowhere may evict lower-priority pods (DefaultPreemption,
  preemption.py).
- When the binding fails: the assumption is dropped and the pod is requeued (unless it is gone,
  bound elsewhere or being deleted).
- When no node fits: the pod stays Pending with the condition PodScheduled=False reason
  Unschedulable (written only when it changes), a Warning ``FailedScheduling`` event with
  kube-scheduler's message (``0/3 nodes are available: 1 Insufficient cpu, ...``), and the pod is
  retried when a node is added or changes, or a bound pod goes away or finishes (after a per-pod
  backoff, 1 s doubling to 10 s, like kube-scheduler's), and at least every ``retry_interval``
  seconds otherwise.

Per-pod work is O(nodes): the spec-only filters (unschedulable, nodeName, taints, nodeSelector,
required node affinity) are evaluated once per distinct pod "static key" and cached until a node's
labels, taints or schedulability change; what remains per pod is the resource and port check and
the scores. For the common pod (no ports, terms, node-bound claims, other resources) those two run
fused over the pod shape's score.FitTable: each node's fit and score for that shape as flat lists,
recomputed only for the nodes the cache logged as changed since (in a backlog of one
Deployment's pods, one node a cycle), and the window sliced out of them and scored in C (274 ->
115 us a cycle at 1000 nodes with a memo on each node read in a Python loop, -> 57-63 us with
the tables; bench/scale_bench.py --backlog: see the README). PodTopologySpread and
InterPodAffinity (spread.py, interpod.py) add one pass over the placed pods, only for a pod with such terms; while placed pods have pod (anti-)affinity terms,
every pod also gets a pass over those pods (their terms may concern it). Like kube-scheduler, in
clusters of more than 100 nodes a cycle stops looking once it has found
``percentage_of_nodes_to_score`` percent of them feasible (adaptive by default: 50% - nodes/125,
at least 100 nodes), starting each cycle where the previous one stopped.

The pod and node objects the scheduler reads are the informers' cached ones, which may be shared
with other controllers (``shared=``): they are never modified here (status writes build new
dicts; PodInfo and NodeInfo copy what they keep, but for a pod's labels, only read).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.timefmt import rfc3339
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import PriorityWorkQueue, run_workers

from .cache import SchedulerCache
from .filters import (PodInfo, R_PORTS, fit_error_message, fits_resources,
                      host_ports_conflict, lacks_scalar, static_reasons)
from .interpod import InterPodAffinity
from .score import FitTable, RoundRobin, score_with_terms, select_host
from .preemption import (R_NO_VICTIMS, R_NOT_HELPFUL, pdb_violation_counter, pick_one, potential_nodes,
                         select_victims_on_node)
from .spread import TopologySpread
from .volumes import VolumeState, volume_state
from skiff.controller.volumes.logic import ANN_SELECTED_NODE

__all__ = ["Scheduler", "run_scheduler", "num_feasible_nodes_to_find", "DEFAULT_SCHEDULER"]

log = logging.getLogger("skiff.scheduler")

DEFAULT_SCHEDULER = "default-scheduler"
SCHEDULE_SLICE = 0.05       # seconds of scheduling cycles before the loop runs the other callbacks
MAX_INFLIGHT_BINDS = 2048    # bindings waiting for their commit at once
MIN_FEASIBLE_NODES_TO_FIND = 100


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    """kube-scheduler's numFeasibleNodesToFind (percentage 0 = adaptive)."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all
    pct = percentage
    if pct <= 0:
        pct = max(50 - num_all // 125, 5)
    n = num_all * pct // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


def _spec_view(pod: dict | None):
    if pod is None:
        return None
    md = pod.get("metadata") or {}
    return (pod.get("spec"), md.get("labels"), md.get("deletionTimestamp"))


class Scheduler:
    def __init__(self, client, *, scheduler_name: str = DEFAULT_SCHEDULER, retry_interval: float = 5.0,
                 initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 percentage_of_nodes_to_score: int = 0, max_inflight_binds: int = MAX_INFLIGHT_BINDS,
                 recorder: EventRecorder | None = None, shared=None):
        self.client = client
        self.scheduler_name = scheduler_name
        self.retry_interval = retry_interval
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.percentage = percentage_of_nodes_to_score
        self.cache = SchedulerCache()
        # PrioritySort: the highest spec.priority first (set by the Priority admission), FIFO within one
        self.queue = PriorityWorkQueue("scheduler", priority_of=self._priority_of)
        self.recorder = recorder or EventRecorder(client, DEFAULT_SCHEDULER)
        self._own_recorder = recorder is None
        # with ``shared`` (a SharedInformers), the pods and nodes caches are the process's shared
        # ones (read-only: see the module doc), acquired at start
        self.shared = shared
        self.pods: Informer | None = None
        self.nodes: Informer | None = None
        self.namespaces: Informer | None = None
        # the claims, volumes and classes of pods that use PersistentVolumeClaims (volumes.py)
        self.claims: Informer | None = None
        self.volumes: Informer | None = None
        self.classes: Informer | None = None
        if shared is None:
            self.pods = Informer(client, "pods", name="scheduler-pods")
            self.nodes = Informer(client, "nodes", name="scheduler-nodes")
            self.namespaces = Informer(client, "namespaces", name="scheduler-namespaces")
            self.claims = Informer(client, "persistentvolumeclaims", name="scheduler-pvcs")
            self.volumes = Informer(client, "persistentvolumes", name="scheduler-pvs")
            self.classes = Informer(client, "storageclasses", name="scheduler-storageclasses")
            self.pods.add_handler(self._on_pod)
            self.nodes.add_handler(self._on_node)
            self.claims.add_handler(self._on_volume_object)
            self.volumes.add_handler(self._on_volume_object)
        self.unschedulable: dict[str, int] = {}     # pod key -> failed attempts
        self._parked: dict[str, float] = {}         # of those, the ones no cluster change has retried
                                                    # yet -> when they failed (time.monotonic())
        # pods nominated to a node by a preemption, not bound yet: node -> {pod key: PodInfo}
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}   # pod key -> the node it is nominated to
        self.preemptions = 0                        # successful preemptions (for tests)
        self.rr = RoundRobin()
        self._static: dict = {}                     # static key -> (generation, ok nodes, reasons)
        self._tables: dict[tuple, FitTable] = {}    # pod shape -> its table (_schedule_plain)
        self._next_start = 0
        self._binds = asyncio.Semaphore(max_inflight_binds)
        self._bind_tasks: set[asyncio.Task] = set()
        self._workers: asyncio.Task | None = None
        self.bound = 0                              # bindings done (for benchmarks and tests)
        self.failed_attempts = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.shared is not None:
            self.nodes = await self.shared.acquire(self.client, "nodes")
            self.nodes.add_handler(self._on_node)
            self.pods = await self.shared.acquire(self.client, "pods")
            self.pods.add_handler(self._on_pod)
            self.namespaces = await self.shared.acquire(self.client, "namespaces")
            self.classes = await self.shared.acquire(self.client, "storageclasses")
            self.volumes = await self.shared.acquire(self.client, "persistentvolumes")
            self.volumes.add_handler(self._on_volume_object)
            self.claims = await self.shared.acquire(self.client, "persistentvolumeclaims")
            self.claims.add_handler(self._on_volume_object)
        else:
            await self.nodes.start()
            await self.pods.start()
            await self.namespaces.start()
            await self.classes.start()
            await self.volumes.start()
            await self.claims.start()
        self._workers = asyncio.create_task(run_workers(self.queue, self.reconcile, 1,
                                                        time_slice=SCHEDULE_SLICE),
                                            name="scheduler-worker")

    async def stop(self) -> None:
        self.queue.shutdown()
        if self._workers is not None:
            self._workers.cancel()
            await asyncio.gather(self._workers, return_exceptions=True)
        for t in list(self._bind_tasks):
            t.cancel()
        await asyncio.gather(*self._bind_tasks, return_exceptions=True)
        if self.shared is not None:
            for inf, res, h in ((self.pods, "pods", self._on_pod), (self.nodes, "nodes", self._on_node)):
                if inf is not None:
                    inf.remove_handler(h)
                    await self.shared.release(self.client, res)
            if self.namespaces is not None:
                await self.shared.release(self.client, "namespaces")
            for inf, res in ((self.claims, "persistentvolumeclaims"), (self.volumes, "persistentvolumes"),
                             (self.classes, "storageclasses")):
                if inf is not None:
                    inf.remove_handler(self._on_volume_object)
                    await self.shared.release(self.client, res)
        else:
            await self.pods.stop()
            await self.nodes.stop()
            await self.namespaces.stop()
            for inf in (self.claims, self.volumes, self.classes):
                await inf.stop()
        if self._own_recorder:
            await self.recorder.close()

    async def run(self) -> None:
        """Run until cancelled (what ControlPlane.add_controller wants)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    # -- event handlers -----------------------------------------------------------------------
    def _wants(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (not spec.get("nodeName") and not spec.get("schedulingGates")    # gated: PreEnqueue holds it
                and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == self.scheduler_name
                and not (pod.get("metadata") or {}).get("deletionTimestamp"))

    def _track_nominated(self, typ: str, key: str, pod: dict) -> None:
        """Keep ``nominated`` (the room a preemption made) in step with the pods."""
        node = None
        if typ != "DELETED" and not (pod.get("spec") or {}).get("nodeName") \
                and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            node = (pod.get("status") or {}).get("nominatedNodeName") or None
        cur = self._nominated_node.get(key)
        if cur == node and (node is None or key in self.nominated.get(node, {})):
            return
        if cur is not None:
            d = self.nominated.get(cur)
            if d is not None:
                d.pop(key, None)
                if not d:
                    del self.nominated[cur]
            del self._nominated_node[key]
        if node is not None:
            self.nominated.setdefault(node, {})[key] = PodInfo(pod)
            self._nominated_node[key] = node

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace') or 'default'}/{md.get('name')}"
        if self._nominated_node or (pod.get("status") or {}).get("nominatedNodeName"):
            self._track_nominated(typ, key, pod)
        if typ == "DELETED":
            was_bound = key in self.cache.pods
            self.cache.remove_pod(key)
            self.unschedulable.pop(key, None)
            if was_bound:
                self._move_unschedulable()
            return
        if (pod.get("spec") or {}).get("nodeName"):
            was = key in self.cache.pods
            self.cache.set_pod(pod)
            self.unschedulable.pop(key, None)
            if was and key not in self.cache.pods:       # finished: its resources are free
                self._move_unschedulable()
            return
        if not self._wants(pod):
            self.unschedulable.pop(key, None)
            return
        if key in self.unschedulable and typ == "MODIFIED" and _spec_view(old) == _spec_view(pod):
            return          # only our own status write; wait for a cluster change or the retry
        self.queue.add(key)

    def _on_node(self, typ: str, node: dict, old: dict | None) -> None:
        name = (node.get("metadata") or {}).get("name")
        if typ == "DELETED":
            self.cache.remove_node(name)
            return
        if self.cache.set_node(node):
            self._move_unschedulable()

    def _on_volume_object(self, typ: str, obj: dict, old: dict | None) -> None:
        # a claim or volume appeared or changed: pods waiting for one may fit now
        if typ != "DELETED" and self.unschedulable:
            self._move_unschedulable()

    def _move_unschedulable(self) -> None:
        """Retry the unschedulable pods not retried since they last failed: at once when their
        backoff (1 s doubling to 10 s, from that failure) is over, else when it is, as
        kube-scheduler moves them to its activeQ or backoffQ. O(those pods), not O(all of them):
        a thousand node changes in a row (a label put on every node) had made it 10 million
        queue operations with 10 000 pods pending, and each pod waited a whole backoff more."""
        parked, self._parked = self._parked, {}
        now = time.monotonic()
        for key, failed_at in parked.items():
            attempts = self.unschedulable.get(key)
            if attempts is not None:
                backoff = min(self.initial_backoff * (2 ** max(attempts - 1, 0)), self.max_backoff)
                self.queue.add_after(key, failed_at + backoff - now)    # <= 0: now

    # -- the scheduling cycle -----------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not self._wants(pod):
            self.unschedulable.pop(key, None)
            return None
        if key in self.cache.pods:          # assumed: a binding is in flight
            return None
        pi = PodInfo(pod)
        vol = None
        if pi.claims:       # VolumeBinding's PreFilter (only for pods with claims)
            why, vol = self.volume_state(pi)
            if why is not None:
                n = len(self.cache.node_list)
                await self._unschedulable(pod, pi, f"0/{n} nodes are available: {why}." if n
                                          else fit_error_message(0, {}))
                return self.retry_interval
        ni, feasible, reasons, total = self.schedule(pi, vol)
        if ni is None:
            msg, nominated = fit_error_message(total, reasons), None
            if total and pi.terms is None and not pi.claims:     # PostFilter: DefaultPreemption
                post, nominated = await self._preempt(pod, pi)
                if post:
                    msg += f" {post}."
            await self._unschedulable(pod, pi, msg, nominated)
            return self.retry_interval
        self.unschedulable.pop(key, None)
        self.cache.assume(pi, ni.name)
        await self._binds.acquire()
        t = asyncio.create_task(self._bind(pod, pi, ni.name, feasible, total, vol))
        self._bind_tasks.add(t)
        t.add_done_callback(self._bind_tasks.discard)
        return None

    # -- preemption (preemption.py) ---------------------------------------------------------
    async def _preempt(self, pod: dict, pi: PodInfo) -> tuple[str, str | None]:
        """DefaultPreemption's PostFilter: ("" and the node nominated) when victims were
        evicted, else (the "preemption: ..." message, "" to clear a nomination or None)."""
        spec, st = pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("preemptionPolicy") == "Never":
            return "preemption: not eligible due to preemptionPolicy=Never.", None
        was = st.get("nominatedNodeName") or None
        if was is not None:
            for node, other in self.cache.pods.values():
                if node == was and other.terminating and other.priority < pi.priority:
                    return "preemption: not eligible due to a terminating pod on the nominated node.", None
        nodes = self.cache.node_list
        potential, other = potential_nodes(pi, nodes)
        by_node: dict[str, list[PodInfo]] = {}
        lowest = None
        for node, p in self.cache.pods.values():
            if not p.terminating:
                by_node.setdefault(node, []).append(p)
                lowest = p.priority if lowest is None else min(lowest, p.priority)
        reasons = Counter({R_NOT_HELPFUL: other}) if other else Counter()
        cands = []
        if lowest is not None and lowest < pi.priority:
            violates = pdb_violation_counter(await self._budgets())
            for ni in potential:
                c = select_victims_on_node(pi, ni, by_node.get(ni.name, []), violates,
                                           self._nominated_extra(pi, ni.name))
                if c is None:
                    reasons[R_NO_VICTIMS] += 1
                else:
                    cands.append(c)
        else:
            reasons[R_NO_VICTIMS] += len(potential)
        best = pick_one(cands)
        if best is None:
            return "preemption: " + fit_error_message(len(nodes), reasons), ("" if was else None)
        await self._evict(pod, pi, best)
        self.preemptions += 1
        return "", best.node

    async def _budgets(self) -> list[dict]:
        try:
            return (await self.client.list("poddisruptionbudgets")).get("items") or []
        except APIError:
            return []

    async def _evict(self, pod: dict, pi: PodInfo, cand) -> None:
        """prepareCandidate: each victim gets the DisruptionTarget condition and is deleted; the
        lower-priority pods nominated to the node lose that nomination."""
        log.info("preempting", extra={"fields": {"pod": pi.key, "node": cand.node,
                                                 "victims": ",".join(v.key for v in cand.victims)}})
        for v in cand.victims:
            victim = self.pods.get(v.key) if self.pods is not None else None
            cond = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": rfc3339(),
                    "reason": "PreemptionByScheduler",
                    "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod"}
            try:
                conds = [c for c in ((victim or {}).get("status") or {}).get("conditions") or ()
                         if c.get("type") != "DisruptionTarget"]
                await self.client.patch("pods", v.name, {"status": {"conditions": conds + [cond]}}, v.namespace,
                                        subresource="status")
                await self.client.delete("pods", v.name, v.namespace, preconditions={"uid": v.uid})
            except APIError as e:
                if e.code not in (404, 409):
                    raise
                continue
            if victim is not None:
                self.recorder.record(victim, "Normal", "Preempted",
                                     f"Preempted by pod {pi.uid} on node {cand.node}")
        for key, other in list(self.nominated.get(cand.node, {}).items()):
            if key != pi.key and other.priority < pi.priority:
                try:
                    await self.client.patch("pods", other.name, {"status": {"nominatedNodeName": None}},
                                            other.namespace, subresource="status")
                except APIError:
                    pass

    def _nominated_extra(self, pi: PodInfo, node: str) -> tuple[int, int, int, dict]:
        """(cpu, memory, pods, {other resource: amount}) the pods nominated to ``node`` with at
        least ``pi``'s priority hold there (the room their preemption made), ``pi`` itself aside."""
        d = self.nominated.get(node)
        if not d:
            return 0, 0, 0, {}
        cpu = mem = n = 0
        scalars: dict = {}
        for key, o in d.items():
            if key != pi.key and o.priority >= pi.priority:
                cpu, mem, n = cpu + o.cpu, mem + o.mem, n + 1
                for name, amount in o.scalars:
                    scalars[name] = scalars.get(name, 0) + amount
        return cpu, mem, n, scalars

    def volume_state(self, pi: PodInfo):
        """(VolumeBinding's PreFilter message or None, its VolumeState) for a pod with claims."""
        def get(inf):
            return (lambda k: inf.get(k)) if inf is not None else (lambda k: None)
        return volume_state(pi.namespace, pi.claims, get(self.claims), get(self.volumes), get(self.classes),
                            (lambda: self.volumes.list()) if self.volumes is not None else (lambda: []))

    def _priority_of(self, key: str) -> int:
        pod = self.pods.get(key) if self.pods is not None else None
        p = ((pod or {}).get("spec") or {}).get("priority")
        return p if isinstance(p, int) else 0

    def schedule(self, pi: PodInfo, vol: VolumeState | None = None):
        """One cycle's decision on the cache: (the chosen NodeInfo, or None when no node fits; the
        number of feasible nodes; Counter of the reasons of the others; number of nodes)."""
        spread, interpod = self.plugin_states(pi)
        if vol is not None and vol.node_free:
            vol = None          # its claims fit on every node: no per-node check
        if (spread is None and interpod is None and vol is None and pi.terms is None and not pi.ports
                and not pi.scalars and not self.nominated):
            return self._schedule_plain(pi)
        feasible, reasons, total = self.find_feasible(pi, spread, interpod, vol)
        if not feasible:
            return None, 0, reasons, total
        return (select_host(feasible, score_with_terms(pi, feasible, spread, interpod), self.rr),
                len(feasible), reasons, total)

    def _schedule_plain(self, pi: PodInfo):
        """schedule() for the common pod (no ports, terms, claims, other resources or
        nominations): filter and score fused in the pod shape's score.FitTable."""
        total = len(self.cache.node_list)
        ok, static_reasons_ = self._static_ok(pi)
        reasons = Counter(static_reasons_)
        if not ok:
            return None, 0, reasons, total
        table = self._table(pi, ok)
        want, start = self._start(ok, total)
        ni, looked, unfit = table.select(start, want, self.rr)
        for i in unfit:
            for r in fits_resources(pi, ok[i]):
                reasons[r] += 1
        self._advance(start, looked, want, len(ok))
        return ni, looked - len(unfit), reasons, total

    def _table(self, pi: PodInfo, ok: list) -> FitTable:
        """The FitTable of the pod's shape over ``ok``, brought up to date with the nodes
        changed since it last looked (built anew when the nodes or the log are other)."""
        cache = self.cache
        shape = (pi.cpu, pi.mem, pi.nz_cpu, pi.nz_mem, pi.group)
        table = self._tables.get(shape)
        changed = None if table is None or table.nodes is not ok else cache.changes_since(table.pos)
        if changed is None:
            if len(self._tables) >= 64:
                self._tables.clear()
            table = self._tables[shape] = FitTable(shape, ok, cache.changes_end)
        elif changed:
            table.update(changed, cache.changes_end)
        return table

    def _start(self, ok: list, total: int) -> tuple[int, int]:
        """(how many feasible nodes a cycle wants, where in ``ok`` it starts looking):
        kube-scheduler's numFeasibleNodesToFind, from where the last cycle stopped."""
        want = num_feasible_nodes_to_find(total, self.percentage)
        n = len(ok)
        return want, (self._next_start % n if n and want < n else 0)

    def _window(self, ok: list, total: int):
        """(the nodes in the order this cycle looks at them, how many feasible ones it wants,
        where it starts)."""
        want, start = self._start(ok, total)
        return (ok[start:] + ok[:start] if start else ok), want, start

    def _advance(self, start: int, looked: int, want: int, n: int) -> None:
        if want < n:
            self._next_start = (start + looked) % n

    def _static_ok(self, pi: PodInfo):
        """(nodes passing the spec-only filters, Counter of reasons of the others), cached."""
        gen = self.cache.static_generation
        hit = self._static.get(pi.static_key)
        if hit is not None and hit[0] == gen:
            return hit[1], hit[2]
        ok, reasons = [], Counter()
        for ni in self.cache.node_list:
            r = static_reasons(pi, ni)
            if r:
                for x in r:
                    reasons[x] += 1
            else:
                ok.append(ni)
        if len(self._static) > 256:
            self._static.clear()
        self._static[pi.static_key] = (gen, ok, reasons)
        return ok, reasons

    def namespace_labels(self, name: str) -> dict:
        """The labels of a namespace ({} when unknown), for namespaceSelectors."""
        ns = self.namespaces.get(name) if self.namespaces is not None else None
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    def plugin_states(self, pi: PodInfo):
        """This cycle's (TopologySpread, InterPodAffinity), each None when it has nothing to
        filter or score: both for a pod without such terms while no placed pod's terms concern it."""
        terms = pi.terms
        spread = TopologySpread(pi, self.cache) if terms is not None and terms.spread else None
        interpod = None
        if (terms is not None and terms.inter_pod) or self.cache.with_affinity:
            interpod = InterPodAffinity(pi, self.cache, self.namespace_labels)
            if not interpod.active:
                interpod = None
        return spread, interpod

    def find_feasible(self, pi: PodInfo, spread: TopologySpread | None = None,
                      interpod: InterPodAffinity | None = None, vol: VolumeState | None = None):
        """(feasible nodes, Counter of reasons, number of nodes)."""
        total = len(self.cache.node_list)
        ok, static_reasons_ = self._static_ok(pi)
        reasons = Counter(static_reasons_)
        order, want, start = self._window(ok, total)
        if not order:
            return [], reasons, total
        cpu, mem, ports, scalars = pi.cpu, pi.mem, pi.ports, pi.scalars
        nominated = self.nominated
        plugins = spread is not None or interpod is not None or vol is not None
        feasible = []
        processed = 0
        for ni in order:
            processed += 1
            if ports and host_ports_conflict(ports, ni.ports):
                reasons[R_PORTS] += 1
                continue
            if (ni.npods >= ni.alloc_pods or (cpu and ni.req_cpu + cpu > ni.alloc_cpu)
                    or (mem and ni.req_mem + mem > ni.alloc_mem) or (scalars and lacks_scalar(scalars, ni))):
                for r in fits_resources(pi, ni):
                    reasons[r] += 1
                continue
            if nominated and ni.name in nominated:      # the room a preemption made is kept
                extra = self._nominated_extra(pi, ni.name)
                short = extra[2] and fits_resources(pi, ni, extra)
                if short:
                    for r in short:
                        reasons[r] += 1
                    continue
            if plugins:
                r = ((vol is not None and vol.reason(ni))
                     or (spread is not None and spread.reason(ni))
                     or (interpod is not None and interpod.reason(ni)))
                if r:
                    reasons[r] += 1
                    continue
            feasible.append(ni)
            if len(feasible) >= want:
                break
        self._advance(start, processed, want, len(ok))
        return feasible, reasons, total

    async def _unschedulable(self, pod: dict, pi: PodInfo, message: str, nominated: str | None = None) -> None:
        self.failed_attempts += 1
        self.unschedulable[pi.key] = self.unschedulable.get(pi.key, 0) + 1
        self._parked[pi.key] = time.monotonic()
        log.info("pod is unschedulable", extra={"fields": {"pod": pi.key, "reason": "Unschedulable",
                                                            "message": message}})
        self.recorder.record(pod, "Warning", "FailedScheduling", message)
        conds = list((pod.get("status") or {}).get("conditions") or ())
        cur = next((c for c in conds if c.get("type") == "PodScheduled"), None)
        if cur and cur.get("status") == "False" and cur.get("reason") == "Unschedulable" \
                and cur.get("message") == message and nominated is None:
            return
        new = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
               "lastTransitionTime": (cur.get("lastTransitionTime") if cur and cur.get("status") == "False"
                                      else None) or rfc3339(),
               "reason": "Unschedulable", "message": message}
        conds = [c for c in conds if c.get("type") != "PodScheduled"] + [new]
        patch = {"metadata": {"resourceVersion": pod["metadata"].get("resourceVersion")},
                 "status": {"conditions": conds}}
        if nominated is not None:
            patch["status"]["nominatedNodeName"] = nominated or None    # "": cleared
        try:
            await self.client.patch("pods", pi.name, patch, pi.namespace, subresource="status")
        except APIError as e:
            if e.code not in (404, 409):
                raise
            # gone or changed meanwhile: the informer brings the new state and the retry rewrites it

    async def _bind(self, pod: dict, pi: PodInfo, node: str, feasible: int, total: int,
                    vol: VolumeState | None = None) -> None:
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": pi.name, "namespace": pi.namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            for key in vol.to_select if vol is not None else ():   # VolumeBinding's PreBind
                ns, _, claim = key.partition("/")
                await self.client.patch("persistentvolumeclaims", claim,
                                        {"metadata": {"annotations": {ANN_SELECTED_NODE: node}}}, ns)
            await self.client.create("pods", binding, pi.namespace, subresource="binding", name=pi.name)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self.cache.forget(pi.key)
            msg = e.message if isinstance(e, APIError) else f"{type(e).__name__}: {e}"
            log.warning("binding failed", extra={"fields": {"pod": pi.key, "node": node, "error": msg}})
            if not (isinstance(e, APIError) and e.code == 404):
                self.recorder.record(pod, "Warning", "FailedScheduling", f"Binding rejected: {msg}")
                self.queue.add_rate_limited(pi.key)
            return
        finally:
            self._binds.release()
        self.bound += 1
        self.queue.forget(pi.key)
        self.recorder.record(pod, "Normal", "Scheduled", f"Successfully assigned {pi.key} to {node}")
        # the Scheduled event's log line says it at INFO; this one adds the counts (kube-scheduler
        # logs "Successfully bound pod to node" at V(2)): a line a pod costs the burst ~2% of its CPU
        if log.isEnabledFor(logging.DEBUG):
            log.debug("bound pod", extra={"fields": {"pod": pi.key, "node": node, "feasibleNodes": feasible,
                                                     "nodes": total}})


async def run_scheduler(client, **kw) -> None:
    """A controller factory body: run a Scheduler on ``client`` until cancelled."""
    await Scheduler(client, **kw).run()
