"""kube-controller-manager's ControllerExpectations, for the controllers that create and delete
pods (ReplicaSet, Job, DaemonSet).

An owner's entry holds the pods it created or deleted that its pod informer has not shown yet.
While any is awaited the owner is not synced again on a cache that lacks them (it would create
or delete the same pods twice); after EXPECTATIONS_TTL (a lost event) the entry is dropped.
The map is keyed by the owner's "namespace/name"::

    e = exp.expect(key)              # before a burst of creates/deletes
    e.creates.add(pod_key)           # per pod created
    if exp.satisfied(key, cache):    # at the next sync: decide only then
        ...
"""
from __future__ import annotations

import time

__all__ = ["EXPECTATIONS_TTL", "Pending", "PodExpectations"]

EXPECTATIONS_TTL = 300.0


class Pending:
    __slots__ = ("creates", "deletes", "at")

    def __init__(self):
        self.creates: set[str] = set()
        self.deletes: set[str] = set()
        self.at = time.monotonic()


class PodExpectations(dict):
    """owner key -> :class:`Pending` (a dict: ``pop(key, None)`` forgets an owner)."""

    def expect(self, key: str) -> Pending:
        """The owner's entry, made or refreshed for a new burst."""
        e = self.get(key)
        if e is None:
            e = self[key] = Pending()
        e.at = time.monotonic()
        return e

    def observed_creation(self, key: str, pod_key: str) -> bool:
        """A pod the owner created has appeared; True while others of its burst are still
        awaited (nothing to decide until they are)."""
        e = self.get(key)
        if e is None or pod_key not in e.creates:
            return False
        e.creates.discard(pod_key)
        return bool(e.creates) or bool(e.deletes)

    def satisfied(self, key: str, cache: dict) -> bool:
        """Whether the owner may be synced: every awaited pod is seen in ``cache`` (created ones
        present, deleted ones gone or terminating), or the entry is too old to trust."""
        e = self.get(key)
        if e is None:
            return True
        e.creates = {k for k in e.creates if k not in cache}
        e.deletes = {k for k in e.deletes if k in cache
                     and not ((cache[k].get("metadata") or {}).get("deletionTimestamp"))}
        if (not e.creates and not e.deletes) or time.monotonic() - e.at > EXPECTATIONS_TTL:
            del self[key]
            return True
        return False
