"""The node authorizer's graph for PersistentVolumes: a node may get a volume bound to a claim
that a pod bound to the node uses (node -> pod -> claim -> volume, as Kubernetes' Node
authorizer)."""
from __future__ import annotations

from skiff.controller.auth import User, pod_references
from skiff.controller.storage import StoreError, prefix_for

__all__ = ["volume_referenced"]


async def volume_referenced(registry, user: User, pv: dict) -> bool:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    ns, claim = ref.get("namespace"), ref.get("name")
    if not user.is_node or not ns or not claim:
        return False
    try:
        items, _, _ = await registry.storage.list_keyed(prefix_for("pods", ns))
    except StoreError:
        return False
    for _, pod in items:
        if (pod.get("spec") or {}).get("nodeName") == user.node and \
                ("persistentvolumeclaim", claim) in pod_references(pod):
            return True
    return False
