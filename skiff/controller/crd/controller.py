"""The CRD controller: the apiextensions-apiserver's naming, establishing and finalizing
controllers in one loop over the CustomResourceDefinitions.

For each CRD: its status (acceptedNames, NamesAccepted, Established, storedVersions) is
written, and once its names are accepted the resource is served (:func:`kinds.register`);
a CRD marked for deletion stops taking new objects (Terminating), has every one of its
custom resources deleted, then loses the ``customresourcecleanup.apiextensions.k8s.io``
finalizer and is no longer served. At start the initial list serves every stored CRD again.
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.controller.crd import definition as D
from skiff.controller.crd import kinds as K

log = logging.getLogger("skiff.crd")


class CRDController:
    def __init__(self, client, *, retry: float = 1.0):
        self.client = client
        self.retry = retry
        self._cleanups: dict[str, asyncio.Task] = {}

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._loop()
                except (APIError, OSError) as e:
                    log.warning("crd watch: %s", e)
                await asyncio.sleep(self.retry)
        finally:
            for t in self._cleanups.values():
                t.cancel()

    async def _loop(self) -> None:
        lst = await self.client.list(D.PLURAL)
        for crd in lst.get("items") or []:
            await self.sync(crd)
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        async for etype, crd in self.client.watch(D.PLURAL, resource_version=rv):
            if etype == "BOOKMARK":
                continue
            if etype == "ERROR":
                return
            if etype == "DELETED":
                K.unregister(crd["spec"]["names"]["plural"])
                # another CRD whose names clashed with this one may be accepted now
                for other in (await self.client.list(D.PLURAL)).get("items") or []:
                    await self.sync(other)
                continue
            await self.sync(crd)

    async def sync(self, crd: dict) -> None:
        md = crd.get("metadata") or {}
        name = md.get("name", "")
        plural = crd["spec"]["names"]["plural"]
        terminating = bool(md.get("deletionTimestamp"))
        status = K.status_for(crd, terminating)
        accepted = status["conditions"][0]["status"] == "True"
        if accepted and not terminating:
            K.register({**crd, "status": status})
        elif terminating:
            ck = K.CUSTOM.get(plural)
            if ck is not None and ck.crd_name == name:
                ck.terminating = True
            if ck is not None and ck.crd_name == name and name not in self._cleanups:
                self._cleanups[name] = asyncio.ensure_future(self._cleanup(name, plural))
        if _strip_times(status) != _strip_times(crd.get("status") or {}):
            try:
                crd = await self.client.update(D.PLURAL, {**crd, "status": status}, subresource="status")
            except APIError as e:
                if e.code not in (404, 409):
                    raise
        mine = K.CUSTOM.get(plural)
        if terminating and (mine is None or mine.crd_name != name) and name not in self._cleanups:
            await self._release(name)

    async def _cleanup(self, name: str, plural: str) -> None:
        """Delete every custom resource of a CRD being deleted, then let the CRD go."""
        try:
            wait = 0.1
            while True:
                try:
                    items = (await self.client.list(plural)).get("items") or []
                except APIError as e:
                    if e.code == 404:
                        break
                    raise
                if not items:
                    break
                for o in items:
                    omd = o.get("metadata") or {}
                    if omd.get("deletionTimestamp"):
                        continue
                    try:
                        await self.client.delete(plural, omd["name"], omd.get("namespace"))
                    except APIError as e:
                        if e.code != 404:
                            log.warning("deleting %s %s/%s: %s", plural, omd.get("namespace"), omd["name"], e)
                await asyncio.sleep(wait)     # objects held by finalizers: look again, less often
                wait = min(wait * 2, 2.0)
            K.unregister(plural)
            await self._release(name)
        except asyncio.CancelledError:
            raise
        except Exception:   # noqa: BLE001 - logged; the next event of the CRD starts over
            log.exception("cleaning up the custom resources of %s", name)
        finally:
            self._cleanups.pop(name, None)

    async def _release(self, name: str) -> None:
        for _ in range(5):
            try:
                crd = await self.client.get(D.PLURAL, name)
            except APIError as e:
                if e.code == 404:
                    return
                raise
            md = crd.get("metadata") or {}
            fins = [f for f in md.get("finalizers") or [] if f != D.FINALIZER]
            if fins == (md.get("finalizers") or []):
                return
            try:
                await self.client.update(D.PLURAL, {**crd, "metadata": {**md, "finalizers": fins}})
                return
            except APIError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise


def _strip_times(st: dict) -> dict:
    conds = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in st.get("conditions") or []]
    return {**st, "conditions": conds}
