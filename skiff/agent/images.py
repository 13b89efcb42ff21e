"""Images for the pod workers: present, or pulled as the container's imagePullPolicy says.

Pulls run in a worker thread (they wait on the network); concurrent pulls of one image
share one attempt. A failed pull is remembered for a short while so that a crashing pod
does not hammer the registry (ImagePullBackOff).
"""
from __future__ import annotations

import asyncio
import io
import logging
import time

from skiff.errors import NotFound, SkiffError

log = logging.getLogger("skiff.agent")


class ImageManager:
    def __init__(self, images, events, insecure: bool = False, failure_backoff: float = 10.0):
        self.images = images          # skiff.runtime.images.store.ImageStore
        self.events = events
        self.insecure = insecure
        self.failure_backoff = failure_backoff
        self._pulls: dict[str, asyncio.Future] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    def present(self, ref: str) -> bool:
        try:
            self.images.resolve(ref)
            return True
        except (NotFound, SkiffError):
            return False

    async def ensure(self, pod: dict, c: dict) -> None:
        ref = c["image"]
        policy = c.get("imagePullPolicy", "IfNotPresent")
        fp = f"spec.containers{{{c['name']}}}"
        if policy != "Always" and self.present(ref):
            self.events.record(pod, "Normal", "Pulled",
                               f'Container image "{ref}" already present on machine', field_path=fp)
            return
        if policy == "Never":
            msg = f'Container image "{ref}" is not present with pull policy of Never'
            self.events.record(pod, "Warning", "ErrImageNeverPull", msg, field_path=fp)
            raise SkiffError(msg)
        failed = self._failed.get(ref)
        if failed and time.monotonic() < failed[0]:
            raise SkiffError(f'Back-off pulling image "{ref}": {failed[1]}')
        self.events.record(pod, "Normal", "Pulling", f'Pulling image "{ref}"', field_path=fp)
        t0 = time.monotonic()
        try:
            await self._pull(ref)
        except SkiffError as e:
            self._failed[ref] = (time.monotonic() + self.failure_backoff, str(e))
            self.events.record(pod, "Warning", "Failed", f'Failed to pull image "{ref}": {e}', field_path=fp)
            raise
        self._failed.pop(ref, None)
        self.events.record(pod, "Normal", "Pulled",
                           f'Successfully pulled image "{ref}" in {time.monotonic() - t0:.3f}s', field_path=fp)

    async def _pull(self, ref: str) -> None:
        fut = self._pulls.get(ref)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._pull_sync, ref))
            self._pulls[ref] = fut
            fut.add_done_callback(lambda _f: self._pulls.pop(ref, None))
        await asyncio.shield(fut)

    def _pull_sync(self, ref: str) -> None:
        from skiff.runtime.images.pull import pull
        out = io.StringIO()
        pull(self.images, ref, insecure=self.insecure, out=out, bars=False)
        log.info("pulled image %s", ref, extra={"fields": {"image": ref}})
