"""ClaimPods / ClaimControllerRevisions for the controllers that own objects by a selector
(DaemonSet, StatefulSet): adopt the orphans the selector matches, release the owned ones it no
longer matches, each with a compare-and-swap patch of the object's ownerReferences."""
from __future__ import annotations

import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.controller.workloads import logic as L
from skiff.controller.workloads.shared import OwnerIndex

__all__ = ["claim", "set_owner"]

log = logging.getLogger("skiff.claiming")


async def claim(client, owner_resource: str, kind: str, res: str, inf: Informer, index: OwnerIndex,
                owner: dict, sel) -> list[dict]:
    """The ``res`` objects ``owner`` (an apps/v1 ``kind`` of ``owner_resource``) controls, after
    releasing and adopting; adoption only once a live GET shows the owner is still there."""
    m = owner["metadata"]
    uid, ns = m.get("uid"), m.get("namespace") or ""
    out, release, adopt = [], [], []
    for k in list(index.owned(uid)):
        o = inf.get(k)
        if o is not None:
            (out if L.selects(sel, o) else release).append(o)
    for k in list(index.orphans_in(ns)):
        o = inf.get(k)
        if o is not None and not L.md(o).get("deletionTimestamp") and L.selects(sel, o):
            adopt.append(o)
    for o in release:
        await set_owner(client, kind, res, o, owner, False)
    if adopt:
        try:
            fresh = await client.get(owner_resource, m["name"], ns)
        except APIError as e:
            if e.code == 404:
                return out
            raise
        if L.md(fresh).get("uid") != uid or L.md(fresh).get("deletionTimestamp"):
            return out
        for o in adopt:
            if await set_owner(client, kind, res, o, owner, True):
                out.append(o)
    return out


async def set_owner(client, kind: str, res: str, obj: dict, owner: dict, adopt: bool) -> bool:
    """Make ``owner`` the controller of ``obj`` (adopt) or drop it from its references; False
    when the object changed meanwhile or is gone."""
    om, uid = L.md(obj), L.md(owner)["uid"]
    refs = [r for r in om.get("ownerReferences") or () if r.get("uid") != uid]
    if adopt:
        refs.append(L.controller_ref(owner, "apps/v1", kind))
    try:
        await client.patch(res, om["name"], {"metadata": {
            "resourceVersion": om.get("resourceVersion"), "ownerReferences": refs or None}}, om.get("namespace"))
    except APIError as e:
        if e.code in (404, 409):
            return False
        raise
    log.info("adopted" if adopt else "released", extra={"fields": {
        kind.lower(): key_of(owner), "resource": res, "name": om["name"]}})
    return True
