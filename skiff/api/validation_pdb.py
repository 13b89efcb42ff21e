"""The rules of policy/v1 PodDisruptionBudgets beyond their schema (Kubernetes'
ValidatePodDisruptionBudget): minAvailable or maxUnavailable, not both, each a non-negative
integer or a percentage up to 100%; a valid selector; unhealthyPodEvictionPolicy IfHealthyBudget
or AlwaysAllow."""
from __future__ import annotations

from skiff.api.validation import INVALID, NOT_SUPPORTED, _cause, _int_or_percent, _label_selector, _short

__all__ = ["check_pdb", "POLICIES"]

POLICIES = ("IfHealthyBudget", "AlwaysAllow")


def check_pdb(obj: dict) -> list[dict]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    causes: list[dict] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(_cause("spec", INVALID, f"Invalid value: {_short(spec)}: minAvailable and maxUnavailable "
                                              "cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        if spec.get(f) is not None:
            _int_or_percent(spec[f], f"spec.{f}", causes, True)
    if spec.get("selector") is not None:
        _label_selector(spec["selector"], "spec.selector", causes)
    p = spec.get("unhealthyPodEvictionPolicy")
    if p is not None and p not in POLICIES:
        causes.append(_cause("spec.unhealthyPodEvictionPolicy", NOT_SUPPORTED, f"Unsupported value: {_short(p)}: "
                             "supported values: " + ", ".join(f'"{x}"' for x in POLICIES)))
    return causes
