"""Node lifecycle controller: a node whose kubelet (agent) stopped heartbeating becomes NotReady.

As Kubernetes' node lifecycle controller (nodeMonitorGracePeriod, lease-based heartbeats):

- A node's heartbeat is its Lease in ``kube-node-lease`` (spec.renewTime) or its Ready condition's
  lastHeartbeatTime. The controller records when it *observed* the heartbeat change on its own
  clock (so agents' clock skew does not matter); a node first seen counts as just observed.
- Every ``interval`` seconds (default min(grace/4, 1 s)), each node whose last observed heartbeat
  is older than ``grace`` seconds (default 40) gets, unless already so:
  * its Ready condition (and the other node conditions it has) set to status ``Unknown``, reason
    ``NodeStatusUnknown``, message ``Kubelet stopped posting node status.`` (kubectl shows
    NotReady), written through nodes/status;
  * a Normal ``NodeNotReady`` event ``Node n1 status is now: NodeNotReady`` and a log line;
  * every non-terminal pod bound to it marked not ready (MarkPodsNotReady): conditions Ready and
    ContainersReady set to False through pods/status, with a Warning ``NodeNotReady`` event
    ``Node is not ready`` per pod.
- Taint-based eviction (Kubernetes' NoExecute taint manager): while a node stays expired, it
  counts as tainted ``node.kubernetes.io/unreachable:NoExecute`` since the moment it expired; a
  pod on it is deleted (gracefully, a Normal ``TaintManagerEviction`` event) once it has been
  there longer than its toleration of that taint allows (``tolerationSeconds``, 300 s by
  default through admission; no matching toleration: at once; one without seconds: never). Its
  ReplicaSet then makes a replacement on a healthy node; the evicted pod stays Terminating
  until its agent comes back and stops it, which is what keeps the cluster from running
  more replicas than it should.
- When the lease is renewed again, the node's eviction clock stops; the agent sets Ready=True
  itself.

Every step reads the current state and is safe to repeat; writes carry the object's
resourceVersion, so a concurrent agent update wins and the next round re-checks.
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.timefmt import rfc3339
from skiff.controller.events import EventRecorder

__all__ = ["NodeLifecycleController", "run_node_lifecycle", "NODE_LEASE_NAMESPACE",
           "UNKNOWN_REASON", "UNKNOWN_MESSAGE"]

log = logging.getLogger("skiff.nodelifecycle")

NODE_LEASE_NAMESPACE = "kube-node-lease"
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
COMPONENT = "node-controller"


def _cond(obj: dict, typ: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == typ:
            return c
    return None


def heartbeat_of(node: dict | None, lease: dict | None) -> tuple:
    """What changes when the agent is alive: the lease's renewTime and the Ready condition's
    lastHeartbeatTime."""
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    ready = _cond(node or {}, "Ready") or {}
    return (renew, ready.get("lastHeartbeatTime"))


def unknown_conditions(node: dict, now: str) -> list[dict] | None:
    """The node's conditions with every one set to Unknown/NodeStatusUnknown (Ready added if
    missing), or None when Ready is already Unknown."""
    conds = list((node.get("status") or {}).get("conditions") or ())
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "Unknown":
        return None
    out = []
    for c in conds:
        c = dict(c)
        if c.get("status") != "Unknown":
            c["lastTransitionTime"] = now
        c["status"] = "Unknown"
        c["reason"] = UNKNOWN_REASON
        c["message"] = UNKNOWN_MESSAGE
        out.append(c)
    if ready is None:
        out.append({"type": "Ready", "status": "Unknown", "lastHeartbeatTime": None,
                    "lastTransitionTime": now, "reason": UNKNOWN_REASON, "message": UNKNOWN_MESSAGE})
    return out


def not_ready_conditions(pod: dict, now: str) -> list[dict] | None:
    """The pod's conditions with Ready and ContainersReady False, or None if they already are."""
    conds = list((pod.get("status") or {}).get("conditions") or ())
    changed = False
    out = []
    seen = set()
    for c in conds:
        if c.get("type") in ("Ready", "ContainersReady"):
            seen.add(c.get("type"))
            if c.get("status") != "False":
                c = {**c, "status": "False", "lastTransitionTime": now, "lastProbeTime": None}
                changed = True
        out.append(c)
    for t in ("ContainersReady", "Ready"):
        if t not in seen:
            out.append({"type": t, "status": "False", "lastProbeTime": None, "lastTransitionTime": now})
            changed = True
    return out if changed else None


TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
_FOREVER = float("inf")


def toleration_seconds(pod: dict, taint_key: str) -> float | None:
    """How long ``pod`` may stay on a node with the NoExecute taint ``taint_key``: None when
    no toleration matches (evict at once), infinity when one matches without seconds."""
    best = None
    for t in (pod.get("spec") or {}).get("tolerations") or ():
        if t.get("effect") not in (None, "", "NoExecute"):
            continue
        op = t.get("operator") or "Equal"
        if t.get("key") not in (None, "") and t.get("key") != taint_key:
            continue
        if t.get("key") in (None, "") and op != "Exists":
            continue
        if op == "Equal" and (t.get("value") or "") != "":
            continue  # the node taint has no value
        secs = t.get("tolerationSeconds")
        secs = _FOREVER if secs is None else max(0.0, float(secs))
        best = secs if best is None else max(best, secs)
    return best


class NodeLifecycleController:
    def __init__(self, client, *, grace: float = 40.0, interval: float | None = None,
                 recorder: EventRecorder | None = None, clock=time.monotonic, shared=None):
        self.client = client
        self.grace = float(grace)
        self.interval = interval if interval is not None else max(min(self.grace / 4, 1.0), 0.05)
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self._own_recorder = recorder is None
        self.clock = clock
        # with ``shared`` (a SharedInformers) the nodes and pods caches are the process's shared
        # ones (read-only: writes here build new dicts), acquired in run()
        self.shared = shared
        self.leases = Informer(client, "leases", NODE_LEASE_NAMESPACE, name="nodelifecycle-leases")
        self.nodes: Informer | None = None
        self.pods: Informer | None = None
        if shared is None:
            self.nodes = Informer(client, "nodes", name="nodelifecycle-nodes")
            self.pods = Informer(client, "pods", name="nodelifecycle-pods")
        self.observed: dict[str, tuple[tuple, float]] = {}    # node -> (heartbeat, when observed)
        self.pods_by_node: dict[str, set[str]] = {}
        self.expired_since: dict[str, float] = {}    # node -> when (our clock) it expired
        if self.pods is not None:
            self.pods.add_handler(self._on_pod)

    # -- pod index ----------------------------------------------------------------------------
    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace')}/{md.get('name')}"
        old_node = ((old or {}).get("spec") or {}).get("nodeName")
        node = (pod.get("spec") or {}).get("nodeName")
        if old_node and (typ == "DELETED" or old_node != node):
            s = self.pods_by_node.get(old_node)
            if s is not None:
                s.discard(key)
                if not s:
                    del self.pods_by_node[old_node]
        if typ != "DELETED" and node:
            self.pods_by_node.setdefault(node, set()).add(key)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.shared is not None:
            self.nodes = await self.shared.acquire(self.client, "nodes")
            await self.leases.start()
            self.pods = await self.shared.acquire(self.client, "pods")
            self.pods.add_handler(self._on_pod)
        else:
            await self.nodes.start()
            await self.leases.start()
            await self.pods.start()

    async def run(self) -> None:
        await self.start()
        try:
            while True:
                try:
                    await self.check()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001
                    log.exception("node check failed")
                await asyncio.sleep(self.interval)
        finally:
            await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        if self.shared is not None:
            if self.pods is not None:
                self.pods.remove_handler(self._on_pod)
                await self.shared.release(self.client, "pods")
            await self.leases.stop()
            if self.nodes is not None:
                await self.shared.release(self.client, "nodes")
        else:
            for inf in (self.pods, self.leases, self.nodes):
                await inf.stop()
        if self._own_recorder:
            await self.recorder.close()

    # -- the check ----------------------------------------------------------------------------
    def expired(self, name: str, node: dict, now: float) -> bool:
        """Record the node's heartbeat; True when none was observed for ``grace`` seconds."""
        hb = heartbeat_of(node, self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}"))
        seen = self.observed.get(name)
        if seen is None or seen[0] != hb:
            self.observed[name] = (hb, now)
            self.expired_since.pop(name, None)
            return False
        if now - seen[1] > self.grace:
            self.expired_since.setdefault(name, now)
            return True
        return False

    async def check(self) -> None:
        now = self.clock()
        names = set()
        for node in list(self.nodes.cache.values()):
            name = node["metadata"]["name"]
            names.add(name)
            if self.expired(name, node, now):
                try:
                    await self.reconcile_expired(node)
                except APIError as e:
                    if e.code not in (404, 409):
                        log.warning("could not mark node not ready", extra={"fields": {
                            "node": name, "error": e.message}})
        for name in list(self.observed):
            if name not in names:
                del self.observed[name]
                self.expired_since.pop(name, None)

    async def reconcile_expired(self, node: dict) -> None:
        name = node["metadata"]["name"]
        now = rfc3339()
        conds = unknown_conditions(node, now)
        if conds is not None:
            await self.client.patch("nodes", name, {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "status": {"conditions": conds}}, subresource="status")
            lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}") or {}
            log.info("node stopped posting status", extra={"fields": {
                "node": name, "status": "NodeNotReady", "lastRenewTime": (lease.get("spec") or {}).get("renewTime"),
                "grace": self.grace}})
            self.recorder.record(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        await self.mark_pods_not_ready(name, now)
        await self.evict_pods(name)

    async def evict_pods(self, node_name: str) -> None:
        """Delete the pods whose toleration of the node's unreachable NoExecute taint ran out."""
        since = self.expired_since.get(node_name)
        if since is None:
            return
        tainted_for = self.clock() - since
        for key in sorted(self.pods_by_node.get(node_name, ())):
            pod = self.pods.get(key)
            if pod is None or (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            md = pod["metadata"]
            if md.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            allowed = toleration_seconds(pod, TAINT_UNREACHABLE)
            if allowed is not None and tainted_for < allowed:
                continue
            try:
                await self.client.delete("pods", md["name"], md.get("namespace"),
                                         preconditions={"uid": md.get("uid")})
            except APIError as e:
                if e.code in (404, 409):
                    continue
                raise
            log.info("evicted pod from an unreachable node", extra={"fields": {
                "pod": key, "node": node_name, "taintedFor": round(tainted_for, 1)}})
            self.recorder.record(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")

    async def mark_pods_not_ready(self, node_name: str, now: str) -> None:
        for key in sorted(self.pods_by_node.get(node_name, ())):
            pod = self.pods.get(key)
            if pod is None or (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            conds = not_ready_conditions(pod, now)
            if conds is None:
                continue
            md = pod["metadata"]
            try:
                await self.client.patch("pods", md["name"], {
                    "metadata": {"resourceVersion": md.get("resourceVersion")},
                    "status": {"conditions": conds}}, md.get("namespace"), subresource="status")
            except APIError as e:
                if e.code in (404, 409):
                    continue       # gone, or changed: the next round looks again
                raise
            log.info("marked pod not ready", extra={"fields": {"pod": key, "node": node_name,
                                                                "reason": "NodeNotReady"}})
            self.recorder.record(pod, "Warning", "NodeNotReady", "Node is not ready")


async def run_node_lifecycle(client, **kw) -> None:
    await NodeLifecycleController(client, **kw).run()
