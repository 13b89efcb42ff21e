"""Node IPAM controller: gives every Node a pod CIDR (spec.podCIDR and spec.podCIDRs), as
Kubernetes' range allocator does.

- The cluster CIDR (default 10.244.0.0/16) is cut into per-node blocks (/24 by default).
- A CIDR is never handed out while a node holds it. The Node objects are the only record: at start
  the controller lists the nodes and marks every podCIDR they carry as used, so a restarted
  controller keeps the assignments and hands out only free blocks.
- A node without podCIDR gets the next free block (searching from after the last one handed out),
  written with the node's resourceVersion as precondition (a 409 retries). A node that lost its
  podCIDR (an update that dropped it) gets back the block it had, if that is still free.
- A deleted node's block is released. When the range is full the node gets a Warning
  ``CIDRNotAvailable`` event and is retried later.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import WorkQueue, run_workers

__all__ = ["CIDRAllocator", "CIDRFull", "NodeIPAMController", "run_node_ipam", "DEFAULT_CLUSTER_CIDR"]

log = logging.getLogger("skiff.nodeipam")

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"


class CIDRFull(Exception):
    """No free block left in the cluster CIDR."""


class CIDRAllocator:
    """Pure allocator of ``/node_mask`` blocks inside ``cluster_cidr`` (a bitmap, Kubernetes'
    CidrSet)."""

    def __init__(self, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, node_mask: int | None = None):
        self.net = ipaddress.ip_network(cluster_cidr, strict=False)
        if node_mask is None:
            node_mask = 24 if self.net.version == 4 else 64
        if node_mask < self.net.prefixlen:
            raise ValueError(f"node mask /{node_mask} is larger than the cluster CIDR {self.net}")
        if node_mask - self.net.prefixlen > 20:
            raise ValueError(f"too many /{node_mask} blocks in {self.net}")
        self.node_mask = node_mask
        self.size = 1 << (node_mask - self.net.prefixlen)
        self._step = 1 << (self.net.max_prefixlen - node_mask)
        self.used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        """The block index of ``cidr`` (None when it is not one of our blocks)."""
        try:
            n = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if n.version != self.net.version or n.prefixlen != self.node_mask or not n.subnet_of(self.net):
            return None
        return (int(n.network_address) - int(self.net.network_address)) // self._step

    def _cidr(self, i: int) -> str:
        addr = ipaddress.ip_address(int(self.net.network_address) + i * self._step)
        return f"{addr}/{self.node_mask}"

    def occupy(self, cidr: str) -> bool:
        """Mark ``cidr`` used; False when it is outside the range (nothing to track)."""
        i = self._index(cidr)
        if i is None:
            return False
        self.used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self.used.discard(i)

    def is_free(self, cidr: str) -> bool:
        i = self._index(cidr)
        return i is not None and i not in self.used

    def allocate(self) -> str:
        """The next free block after the last one handed out (wrapping)."""
        if len(self.used) >= self.size:
            raise CIDRFull(f"no remaining CIDR in {self.net} (all {self.size} /{self.node_mask} blocks in use)")
        for k in range(self.size):
            i = (self._next + k) % self.size
            if i not in self.used:
                self.used.add(i)
                self._next = (i + 1) % self.size
                return self._cidr(i)
        raise CIDRFull(f"no remaining CIDR in {self.net}")


def node_pod_cidrs(node: dict) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ())
    if spec.get("podCIDR") and spec["podCIDR"] not in cidrs:
        cidrs.insert(0, spec["podCIDR"])
    return cidrs


class NodeIPAMController:
    def __init__(self, client, *, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, node_mask: int | None = None,
                 recorder: EventRecorder | None = None, retry_full: float = 10.0,
                 shared=None):
        self.client = client
        self.shared = shared      # SharedInformers: the process's one nodes cache, else our own
        self.alloc = CIDRAllocator(cluster_cidr, node_mask)
        self.recorder = recorder or EventRecorder(client, "cidrAllocator")
        self._own_recorder = recorder is None
        self.retry_full = retry_full
        self.nodes = None if shared is not None else Informer(client, "nodes", name="nodeipam-nodes")
        self.queue = WorkQueue("nodeipam")
        self.owner: dict[str, str] = {}     # cidr -> node holding it (as seen or as assigned)
        self.assigned: dict[str, str] = {}  # node -> cidr
        if self.nodes is not None:
            self.nodes.add_handler(self._on_node)

    def _on_node(self, typ: str, node: dict, old: dict | None) -> None:
        name = node["metadata"]["name"]
        if typ == "DELETED":
            cidr = self.assigned.pop(name, None)
            if cidr is not None and self.owner.get(cidr) == name:
                del self.owner[cidr]
                self.alloc.release(cidr)
                log.info("released pod CIDR", extra={"fields": {"node": name, "podCIDR": cidr}})
            return
        for cidr in node_pod_cidrs(node):
            self._take(name, cidr)
        if not node_pod_cidrs(node):
            self.queue.add(name)

    def _take(self, name: str, cidr: str) -> None:
        """Record that ``name`` holds ``cidr`` (as the Node object says)."""
        if self.alloc.occupy(cidr):
            self.owner.setdefault(cidr, name)
            if self.owner[cidr] == name:
                prev = self.assigned.get(name)
                if prev is not None and prev != cidr and self.owner.get(prev) == name:
                    del self.owner[prev]
                    self.alloc.release(prev)
                self.assigned[name] = cidr

    async def run(self) -> None:
        if self.shared is not None:  # a synced cache replays every node to the handler
            self.nodes = await self.shared.acquire(self.client, "nodes")
            self.nodes.add_handler(self._on_node)
        else:
            await self.nodes.start()  # the handler occupies every CIDR the nodes already hold
        workers = asyncio.create_task(run_workers(self.queue, self.reconcile, 1), name="nodeipam-worker")
        try:
            await asyncio.Event().wait()
        finally:
            self.queue.shutdown()
            workers.cancel()
            await asyncio.gather(workers, return_exceptions=True)
            await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        if self.shared is not None:
            if self.nodes is not None:
                self.nodes.remove_handler(self._on_node)
                await self.shared.release(self.client, "nodes")
        else:
            await self.nodes.stop()
        if self._own_recorder:
            await self.recorder.close()

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None or node_pod_cidrs(node):
            return None
        cidr = self.assigned.get(name)
        if cidr is None or self.owner.get(cidr) != name:
            try:
                cidr = self.alloc.allocate()
            except CIDRFull as e:
                log.warning("no pod CIDR available", extra={"fields": {"node": name, "error": str(e)}})
                self.recorder.record(node, "Warning", "CIDRNotAvailable",
                                     f"Node {name} status is now: CIDRNotAvailable")
                return self.retry_full
            self.owner[cidr] = name
            self.assigned[name] = cidr
        try:
            await self.client.patch("nodes", name, {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except APIError as e:
            if e.code == 404:
                self._release(name)
                return None
            if e.code == 409:
                return 0          # changed meanwhile: look again (rate limited); keep the block
            self._release(name)
            raise
        log.info("assigned pod CIDR", extra={"fields": {"node": name, "podCIDR": cidr}})
        return None

    def _release(self, name: str) -> None:
        cidr = self.assigned.pop(name, None)
        if cidr is not None and self.owner.get(cidr) == name:
            del self.owner[cidr]
            self.alloc.release(cidr)


async def run_node_ipam(client, **kw) -> None:
    await NodeIPAMController(client, **kw).run()
