"""Validation of scheduling.k8s.io/v1 PriorityClasses (ValidatePriorityClass and its update), with
kube-apiserver's messages and field paths."""
from __future__ import annotations

from skiff.api.validation import FORBIDDEN, INVALID, NOT_SUPPORTED, _cause, _short

__all__ = ["check_priority_class", "check_priority_class_update"]

PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def check_priority_class(pc: dict) -> list[dict]:
    from skiff.controller.admission_priority import HIGHEST_USER_PRIORITY, SYSTEM_PRIORITY_CLASSES
    causes: list[dict] = []
    name = str((pc.get("metadata") or {}).get("name") or "")
    value = pc.get("value")
    if name.startswith("system-"):
        known = SYSTEM_PRIORITY_CLASSES.get(name)
        why = None
        if known is None:
            why = f"{name} is not a known system priority class"
        elif value != known[0]:
            why = f"value of {name} PriorityClass must be {known[0]}"
        elif pc.get("globalDefault"):
            why = f"globalDefault of {name} PriorityClass must be false"
        if why:
            causes.append(_cause("metadata.name", FORBIDDEN, "Forbidden: priority class names with 'system-' prefix "
                                                             f"are reserved for system use only. error: {why}"))
    elif isinstance(value, int) and not isinstance(value, bool) and value > HIGHEST_USER_PRIORITY:
        causes.append(_cause("value", FORBIDDEN, f"Forbidden: maximum allowed value of a user defined priority is "
                                                 f"{HIGHEST_USER_PRIORITY}"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        causes.append(_cause("preemptionPolicy", NOT_SUPPORTED, f'Unsupported value: {_short(policy)}: supported '
                                                                f'values: "Never", "PreemptLowerPriority"'))
    return causes


def check_priority_class_update(cur: dict, new: dict) -> list[dict]:
    causes = []
    if cur.get("value") != new.get("value"):
        causes.append(_cause("value", FORBIDDEN, "Forbidden: may not be changed in an update."))
    if (cur.get("preemptionPolicy") or None) != (new.get("preemptionPolicy") or None):
        causes.append(_cause("preemptionPolicy", INVALID,
                             f"Invalid value: {_short(new.get('preemptionPolicy'))}: field is immutable"))
    return causes
