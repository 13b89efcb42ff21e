"""TTL-after-finished controller: deletes a finished Job ``ttlSecondsAfterFinished`` after it
finished, with its pods.

As Kubernetes' pkg/controller/ttlafterfinished: a Job with the field and a Complete or Failed
condition is looked at again when its TTL runs out (the condition's lastTransitionTime + the
TTL); then, since the cached Job may be stale, a live GET decides (the TTL may have been changed
or the Job replaced), and the Job is deleted with propagationPolicy Foreground and its uid as
precondition, so its pods go first and the garbage collector removes the Job after them.
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads import joblogic as J
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["TTLAfterFinishedController"]

log = logging.getLogger("skiff.ttlafterfinished")


class TTLAfterFinishedController(QueueController):
    def __init__(self, client, *, workers: int = 2, shared: SharedInformers | None = None):
        self.client = client
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("ttlafterfinished")
        self.jobs: Informer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.jobs = await self.shared.acquire(self.client, "jobs")
        self.jobs.add_handler(self._on_job)
        self.start_workers("ttlafterfinished-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        if self.jobs is not None:
            self.jobs.remove_handler(self._on_job)
            await self.shared.release(self.client, "jobs")

    def _on_job(self, typ: str, job: dict, old: dict | None) -> None:
        if typ != "DELETED" and J.ttl_expires_at(job) is not None:
            self.queue.add(key_of(job))

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        at = J.ttl_expires_at(job)
        if at is None:
            return None
        if at > time.time():
            return at - time.time()
        ns, _, name = key.partition("/")
        try:
            fresh = await self.client.get("jobs", name, ns)
        except APIError as e:
            if e.code == 404:
                return None
            raise
        at = J.ttl_expires_at(fresh)
        if at is None:
            return None
        if at > time.time():
            return at - time.time()
        try:
            await self.client.delete("jobs", name, ns, propagation_policy="Foreground",
                                     preconditions={"uid": fresh["metadata"].get("uid")})
        except APIError as e:
            if e.code not in (404, 409):
                raise
            return None
        log.info("deleted a finished job whose TTL ran out", extra={"fields": {
            "job": key, "ttlSecondsAfterFinished": J.spec(fresh).get("ttlSecondsAfterFinished")}})
        return None
