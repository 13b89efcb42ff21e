"""Pod priority (scheduling.k8s.io/v1 PriorityClasses and Kubernetes' Priority admission plugin).

- The API server makes the two system classes when it starts, as kube-apiserver's post-start
  hook does: ``system-node-critical`` (2000001000) and ``system-cluster-critical`` (2000000000).
  They cannot be deleted: 403 ``this is a system priority class and cannot be deleted``.
- A pod create resolves ``spec.priorityClassName`` into ``spec.priority`` and
  ``spec.preemptionPolicy`` (the class's, else PreemptLowerPriority). Without a class name it
  gets the ``globalDefault`` class (its name too), or priority 0. An unknown class is 403
  ``no PriorityClass with name X was found``; a priority or preemption policy written in the
  pod that differs from the class's is refused with Kubernetes' words.
- At most one class may be the global default: 403 ``PriorityClass X is already marked as
  default. Only one default can exist``.

The scheduler takes pending pods highest priority first (PrioritySort). Preemption (evicting
lower-priority pods to make room) is not done: a pod that does not fit waits, as with
``preemptionPolicy: Never``.
"""
from __future__ import annotations

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.controller.storage import prefix_for

__all__ = ["SYSTEM_PRIORITY_CLASSES", "HIGHEST_USER_PRIORITY", "ensure_system_priority_classes",
           "admit_pod_priority", "admit_priority_class", "check_priority_class_delete"]

SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": (2000001000, "Used for system critical pods that must not be moved from their current "
                                         "node."),
    "system-cluster-critical": (2000000000, "Used for system critical pods that must run in the cluster, but can "
                                            "be moved to another node if necessary."),
}
HIGHEST_USER_PRIORITY = 1000000000
PREEMPT_LOWER = "PreemptLowerPriority"
GROUP = "scheduling.k8s.io"


async def ensure_system_priority_classes(registry) -> None:
    """Create the system classes that are missing (kube-apiserver's post-start hook)."""
    for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
        try:
            await registry.create("priorityclasses", {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "description": description, "preemptionPolicy": PREEMPT_LOWER})
        except APIError as e:
            if e.code != 409:
                raise


async def _classes(storage) -> list[dict]:
    items, _, _ = await storage.list(prefix_for("priorityclasses", None))
    return items


def _default_class(classes: list[dict]) -> dict | None:
    """getDefaultPriorityClass: the globalDefault class (of several, the lowest value)."""
    best = None
    for pc in classes:
        if pc.get("globalDefault") and (best is None or int(pc.get("value") or 0) < int(best.get("value") or 0)):
            best = pc
    return best


async def admit_pod_priority(storage, pod: dict, shown_name: str) -> None:
    """Resolve and write the priority of ``pod`` (about to be created) in place."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = spec.get("priorityClassName") or ""
    classes = await _classes(storage)
    if not name:
        pc = _default_class(classes)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
    else:
        pc = next((c for c in classes if c["metadata"]["name"] == name), None)
        if pc is None:
            raise E.forbidden("pods", shown_name, f"no PriorityClass with name {name} was found")
    priority = int(pc.get("value") or 0) if pc is not None else 0
    policy = (pc.get("preemptionPolicy") if pc is not None else None) or PREEMPT_LOWER
    given = spec.get("priority")
    if given is not None and given != priority:
        raise E.forbidden("pods", shown_name, f"the integer value of priority ({given}) must not be provided in pod "
                                              f"spec; priority admission controller computed {priority} from the "
                                              f"given PriorityClass name")
    spec["priority"] = priority
    given = spec.get("preemptionPolicy")
    if given is not None and given != policy:
        raise E.forbidden("pods", shown_name, f"the string value of PreemptionPolicy ({given}) must not be provided "
                                              f"in pod spec; priority admission controller computed {policy} from "
                                              f"the given PriorityClass name")
    spec["preemptionPolicy"] = policy


async def admit_priority_class(storage, pc: dict, creating: bool) -> None:
    """validatePriorityClass: a second global default is refused."""
    if not pc.get("globalDefault"):
        return
    name = (pc.get("metadata") or {}).get("name") or ""
    dpc = _default_class(await _classes(storage))
    if dpc is not None and (creating or dpc["metadata"]["name"] != name):
        raise E.forbidden("priorityclasses", name, f"PriorityClass {dpc['metadata']['name']} is already marked as "
                                                   f"default. Only one default can exist", GROUP)


def check_priority_class_delete(name: str) -> None:
    if name in SYSTEM_PRIORITY_CLASSES:
        raise E.forbidden("priorityclasses", name, "this is a system priority class and cannot be deleted", GROUP)


def pod_priority(pod: dict | None) -> int:
    """The resolved priority of a pod (0 when unset)."""
    p = ((pod or {}).get("spec") or {}).get("priority")
    return p if isinstance(p, int) else 0
