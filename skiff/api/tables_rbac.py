"""The Table columns and cells of RBAC's kinds, as kube-apiserver 1.32 prints them. Part of
:mod:`skiff.api.tables`, which merges :data:`COLUMNS` and :data:`CELLS` into its own.
Roles and ClusterRoles print NAME and CREATED AT (the default columns); bindings::

    NAME   ROLE        AGE   USERS   GROUPS   SERVICEACCOUNTS      (the last three with -o wide)
    read   Role/read   5m    alice            default/reader
"""
from __future__ import annotations

from skiff.api import tables as _T

_D_ROLEREF = ("RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. "
              "If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.")


def _binding_columns(what: str) -> list[dict]:
    return [_T.NAME_COLUMN, _T._col("Role", _D_ROLEREF), _T.AGE_COLUMN,
            _T._col("Users", f"Users in the {what}", priority=1),
            _T._col("Groups", f"Groups in the {what}", priority=1),
            _T._col("ServiceAccounts", f"ServiceAccounts in the {what}", priority=1)]


COLUMNS: dict[str, list[dict]] = {
    "rolebindings": _binding_columns("roleBinding"),
    "clusterrolebindings": _binding_columns("clusterRoleBinding"),
}


def subjects_strings(subjects: list | None) -> tuple[list[str], list[str], list[str]]:
    """rbac.SubjectsStrings: users, groups and service accounts as namespace/name."""
    users, groups, sas = [], [], []
    for s in subjects or []:
        if not isinstance(s, dict):
            continue
        if s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{s.get('name') or ''}")
        elif s.get("kind") == "User":
            users.append(s.get("name") or "")
        elif s.get("kind") == "Group":
            groups.append(s.get("name") or "")
    return users, groups, sas


def binding_cells(b: dict, now: float | None = None) -> list:
    ref = b.get("roleRef") or {}
    users, groups, sas = subjects_strings(b.get("subjects"))
    return [_T.meta(b).get("name", ""), f"{ref.get('kind') or ''}/{ref.get('name') or ''}", _T._age(b, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


CELLS = {"rolebindings": binding_cells, "clusterrolebindings": binding_cells}
