"""The Table columns and cells of PriorityClasses, as kube-apiserver 1.32 prints them
(``kubectl get pc``). Part of :mod:`skiff.api.tables`, which merges :data:`COLUMNS` and
:data:`CELLS` into its own::

    NAME                      VALUE        GLOBAL-DEFAULT   AGE   PREEMPTIONPOLICY
    system-cluster-critical   2000000000   false            5m    PreemptLowerPriority
"""
from __future__ import annotations

from skiff.api import tables as _T

COLUMNS: dict[str, list[dict]] = {
    "priorityclasses": [
        _T.NAME_COLUMN,
        _T._col("Value", "value represents the integer value of this priority class. This is the actual priority "
                         "that pods receive when they have the name of this class in their pod spec.", "integer"),
        _T._col("Global-Default", "globalDefault specifies whether this PriorityClass should be considered as the "
                                  "default priority for pods that do not have any priority class. Only one "
                                  "PriorityClass can be marked as `globalDefault`. However, if more than one "
                                  "PriorityClasses exists with their `globalDefault` field set to true, the smallest "
                                  "value of such global default PriorityClasses will be used as the default "
                                  "priority.", "boolean"),
        _T.AGE_COLUMN,
        _T._col("PreemptionPolicy", "preemptionPolicy is the Policy for preempting pods with lower priority. One of "
                                    "Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
    ],
}


def priorityclass_cells(pc: dict, now: float | None = None) -> list:
    return [_T.meta(pc).get("name", ""), int(pc.get("value") or 0), bool(pc.get("globalDefault")), _T._age(pc, now),
            pc.get("preemptionPolicy") or ""]


CELLS = {"priorityclasses": priorityclass_cells}
