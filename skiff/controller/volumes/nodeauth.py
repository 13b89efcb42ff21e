"""The node authorizer's graph for PersistentVolumes: a node may get a volume bound to a claim
that a pod bound to the node uses (node -> pod -> claim -> volume, as Kubernetes' Node
authorizer)."""
from __future__ import annotations

from skiff.controller.auth import User

__all__ = ["volume_referenced"]


async def volume_referenced(registry, user: User, pv: dict) -> bool:
    """Whether a pod bound to ``user``'s node uses the claim ``pv`` is bound to: the node's pods
    only (the watch cache's node index), not every pod of the claim's namespace decoded per GET
    (2000 pods sharing one claim had made the agents' volume GETs take the controller's loop)."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    ns, claim = ref.get("namespace"), ref.get("name")
    if not user.is_node or not ns or not claim:
        return False
    return await registry._node_references(user, "persistentvolumeclaims", ns, claim)
