"""rbac.authorization.k8s.io/v1 Roles, ClusterRoles, RoleBindings and ClusterRoleBindings beyond
their schemas, as kube-apiserver defaults and validates them (pkg/apis/rbac/v1 defaults,
pkg/apis/rbac/validation): every rule needs verbs; a resource rule needs apiGroups and
resources; nonResourceURLs only in ClusterRoles and never with resources; a binding's roleRef
names a Role or ClusterRole of rbac.authorization.k8s.io (a ClusterRoleBinding only a
ClusterRole) and cannot change once created; subjects are User, Group (apiGroup
rbac.authorization.k8s.io) or ServiceAccount (apiGroup ""; with a namespace in a
ClusterRoleBinding); names are path segments."""
from __future__ import annotations

from typing import Any

from skiff.api.validation import (INVALID, NOT_SUPPORTED, REQUIRED, _cause, _label_selector, _short,
                                  dns1123_subdomain_error)

__all__ = ["GROUP", "RBAC_KINDS", "default_rbac", "check_rbac", "check_rbac_update", "path_segment_error"]

GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def path_segment_error(name: str) -> str | None:
    """path.IsValidPathSegmentName: the first complaint, or None (Kubernetes' ValidateRBACName)."""
    for bad in ("..", "."):
        if name == bad:
            return f"may not be '{bad}'"
    for bad in ("/", "%"):
        if bad in name:
            return f"may not contain '{bad}'"
    return None


def default_rbac(obj: dict) -> None:
    """SetDefaults_Subject / SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding."""
    if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
        return
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and not s.get("apiGroup"):
            if s.get("kind") == "ServiceAccount":
                s["apiGroup"] = ""
            elif s.get("kind") in ("User", "Group"):
                s["apiGroup"] = GROUP


def _supported(field: str, value: Any, allowed: list[str]) -> dict:
    return _cause(field, NOT_SUPPORTED, f"Unsupported value: {_short(value)}: supported values: "
                  + ", ".join(f'"{a}"' for a in allowed))


def _go_strings(v: list) -> str:
    return "[]string{" + ", ".join(_short(x) for x in v) + "}"


def _rule(rule: Any, namespaced: bool, f: str, causes: list) -> None:
    if not isinstance(rule, dict):
        return
    if not rule.get("verbs"):
        causes.append(_cause(f + ".verbs", REQUIRED, "Required value: verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            causes.append(_cause(f + ".nonResourceURLs", INVALID, f"Invalid value: {_go_strings(urls)}: namespaced "
                                                                  "rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(_cause(f + ".nonResourceURLs", INVALID, f"Invalid value: {_go_strings(urls)}: rules cannot "
                                                                  "apply to both regular resources and non-resource "
                                                                  "URLs"))
        return
    if not rule.get("apiGroups"):
        causes.append(_cause(f + ".apiGroups", REQUIRED,
                             "Required value: resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(_cause(f + ".resources", REQUIRED,
                             "Required value: resource rules must supply at least one resource"))


def _subject(s: Any, namespaced: bool, f: str, causes: list) -> None:
    if not isinstance(s, dict):
        return
    name, kind, group = s.get("name") or "", s.get("kind") or "", s.get("apiGroup") or ""
    if not name:
        causes.append(_cause(f + ".name", REQUIRED, "Required value"))
    if kind == "ServiceAccount":
        if name and (why := dns1123_subdomain_error(name)):
            causes.append(_cause(f + ".name", INVALID, f"Invalid value: {_short(name)}: {why}"))
        if group:
            causes.append(_supported(f + ".apiGroup", group, [""]))
        if not namespaced and not s.get("namespace"):
            causes.append(_cause(f + ".namespace", REQUIRED, "Required value"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(_supported(f + ".apiGroup", group, [GROUP]))
    else:
        causes.append(_supported(f + ".kind", kind, ["ServiceAccount", "User", "Group"]))


def check_rbac(obj: dict) -> list[dict]:
    """ValidateRole, ValidateClusterRole, ValidateRoleBinding, ValidateClusterRoleBinding (the
    name's path-segment rule is the Kind's name_rule in skiff.api.validation)."""
    kind = obj.get("kind")
    causes: list[dict] = []
    if kind in ("Role", "ClusterRole"):
        for i, rule in enumerate(obj.get("rules") or []):
            _rule(rule, kind == "Role", f"rules[{i}]", causes)
        agg = obj.get("aggregationRule")
        if kind == "ClusterRole" and isinstance(agg, dict):
            sels = agg.get("clusterRoleSelectors") or []
            if not sels:
                causes.append(_cause("aggregationRule.clusterRoleSelectors", REQUIRED, "Required value: at least one "
                                     "clusterRoleSelector required if aggregationRule is non-nil"))
            for i, sel in enumerate(sels):
                _label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]", causes)
        return causes
    if kind not in ("RoleBinding", "ClusterRoleBinding"):
        return causes
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    if (ref.get("apiGroup") or "") != GROUP:
        causes.append(_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if kind == "RoleBinding" else ["ClusterRole"]
    if (ref.get("kind") or "") not in kinds:
        causes.append(_supported("roleRef.kind", ref.get("kind") or "", kinds))
    rname = ref.get("name") or ""
    if not rname:
        causes.append(_cause("roleRef.name", REQUIRED, "Required value"))
    elif why := path_segment_error(rname):
        causes.append(_cause("roleRef.name", INVALID, f"Invalid value: {_short(rname)}: {why}"))
    for i, s in enumerate(obj.get("subjects") or []):
        _subject(s, kind == "RoleBinding", f"subjects[{i}]", causes)
    return causes


def check_rbac_update(cur: dict, new: dict) -> list[dict]:
    """ValidateRoleBindingUpdate / ValidateClusterRoleBindingUpdate: roleRef is immutable."""
    if new.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
        return []
    keys = ("apiGroup", "kind", "name")
    old_ref = {k: (cur.get("roleRef") or {}).get(k) or "" for k in keys}
    new_ref = {k: (new.get("roleRef") or {}).get(k) or "" for k in keys}
    if old_ref == new_ref:
        return []
    # the Go value as %#v prints the internal rbac.RoleRef
    shown = (f'rbac.RoleRef{{APIGroup:{_short(new_ref["apiGroup"])}, Kind:{_short(new_ref["kind"])}, '
             f'Name:{_short(new_ref["name"])}}}')
    return [_cause("roleRef", INVALID, f"Invalid value: {shown}: cannot change roleRef")]
