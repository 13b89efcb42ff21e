"""RBAC's bootstrap policy and the ClusterRole aggregation controller.

:func:`ensure_bootstrap_policy` creates, at controller start, the default ClusterRoles and
ClusterRoleBindings that are missing (kube-apiserver's rbac/bootstrap-roles post-start hook;
existing ones are left as their owners changed them): cluster-admin bound to system:masters;
the user-facing admin, edit and view, aggregated from the ClusterRoles labelled
rbac.authorization.k8s.io/aggregate-to-{admin,edit,view} (with system:aggregate-to-* roles
carrying the built-in rules); system:discovery, system:basic-user and
system:public-info-viewer bound to system:authenticated (and the public one to
system:unauthenticated too).

Left out of Kubernetes' list: the system:controller:* roles and bindings of the
kube-controller-manager's controllers (skiff's controllers run as masters), the system:node*,
system:kube-scheduler, system:kube-dns, system:volume-scheduler, system:monitoring,
system:heapster, system:certificates.k8s.io:* roles, and the rules for kinds skiff does not
serve (ingresses, csr, tokenreviews...). The rule lists of admin/edit/view cover the kinds
skiff serves.

:class:`ClusterRoleAggregator` is kube-controller-manager's clusterrole-aggregation controller:
a ClusterRole with an aggregationRule has as rules the rules of every ClusterRole its selectors
pick (each rule once), kept up to date as those change."""
from __future__ import annotations

import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.validation import label_selector_matches
from skiff.controller.workqueue import QueueController, WorkQueue

__all__ = ["ensure_bootstrap_policy", "ClusterRoleAggregator", "BOOTSTRAP_CLUSTER_ROLES",
           "BOOTSTRAP_BINDINGS", "aggregated_rules"]

log = logging.getLogger("skiff.rbac")

G = "rbac.authorization.k8s.io"
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(verbs, groups, resources) -> dict:
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def _role(name: str, rules: list[dict] | None, labels: dict | None = None, aggregate_from: list[str] = ()) -> dict:
    obj = {"apiVersion": f"{G}/v1", "kind": "ClusterRole",
           "metadata": {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})}, "annotations": AUTOUPDATE}}
    if aggregate_from:
        obj["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{G}/aggregate-to-{a}": "true"}} for a in aggregate_from]}
        obj["rules"] = None
    else:
        obj["rules"] = rules or []
    return obj


_VIEW_CORE = ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
              "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
              "services/status", "bindings", "events", "limitranges", "namespaces/status", "pods/log",
              "pods/status", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]
_VIEW_APPS = ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
              "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
              "statefulsets/scale", "statefulsets/status"]

_AGG_VIEW = [
    _rule(READ, [""], _VIEW_CORE),
    _rule(READ, [""], ["namespaces"]),
    _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    _rule(READ, ["apps"], _VIEW_APPS),
    _rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    _rule(READ, ["networking.k8s.io"], ["networkpolicies"]),
]
_AGG_EDIT = [
    _rule(["create", "delete", "deletecollection", "patch", "update"], [""],
          ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(["create", "delete", "deletecollection", "patch", "update"], [""],
          ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
           "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"]),
    _rule(["create"], [""], ["serviceaccounts/token"]),
    _rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                            "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    _rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
    _rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
    _rule(WRITE, ["networking.k8s.io"], ["networkpolicies"]),
    _rule(READ, [""], ["secrets", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "services/proxy"]),
    _rule(["impersonate"], [""], ["serviceaccounts"]),
]
_AGG_ADMIN = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule(WRITE + READ, [G], ["rolebindings", "roles"]),
]

BOOTSTRAP_CLUSTER_ROLES: list[dict] = [
    _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"verbs": ["*"], "nonResourceURLs": ["*"]}]),
    _role("admin", None, aggregate_from=["admin"]),
    _role("edit", None, {f"{G}/aggregate-to-admin": "true"}, aggregate_from=["edit"]),
    _role("view", None, {f"{G}/aggregate-to-edit": "true"}, aggregate_from=["view"]),
    _role("system:aggregate-to-admin", _AGG_ADMIN, {f"{G}/aggregate-to-admin": "true"}),
    _role("system:aggregate-to-edit", _AGG_EDIT, {f"{G}/aggregate-to-edit": "true"}),
    _role("system:aggregate-to-view", _AGG_VIEW, {f"{G}/aggregate-to-view": "true"}),
    _role("system:discovery", [{"verbs": ["get"], "nonResourceURLs": [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
        "/version", "/version/"]}]),
    _role("system:basic-user", [_rule(["create"], ["authorization.k8s.io"],
                                      ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
    _role("system:public-info-viewer", [{"verbs": ["get"], "nonResourceURLs": [
        "/healthz", "/livez", "/readyz", "/version", "/version/"]}]),
]


def _binding(name: str, role: str, groups: list[str]) -> dict:
    return {"apiVersion": f"{G}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABEL), "annotations": AUTOUPDATE},
            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": G, "kind": "Group", "name": g} for g in groups]}


BOOTSTRAP_BINDINGS: list[dict] = [
    _binding("cluster-admin", "cluster-admin", ["system:masters"]),
    _binding("system:discovery", "system:discovery", ["system:authenticated"]),
    _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
    _binding("system:public-info-viewer", "system:public-info-viewer",
             ["system:authenticated", "system:unauthenticated"]),
]


async def ensure_bootstrap_policy(registry) -> None:
    """Create the bootstrap ClusterRoles and ClusterRoleBindings that are missing."""
    for plural, objs in (("clusterroles", BOOTSTRAP_CLUSTER_ROLES), ("clusterrolebindings", BOOTSTRAP_BINDINGS)):
        for obj in objs:
            try:
                await registry.create(plural, obj)
            except APIError as e:
                if e.code != 409:
                    raise


def aggregated_rules(role: dict, roles: list[dict]) -> list[dict]:
    """The rules of an aggregated ClusterRole: those of the ClusterRoles each selector picks (in
    name order), each rule once."""
    own = (role.get("metadata") or {}).get("name")
    out: list[dict] = []
    for sel in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        picked = sorted((r for r in roles if (r.get("metadata") or {}).get("name") != own
                         and label_selector_matches(sel, (r.get("metadata") or {}).get("labels"))),
                        key=lambda r: (r.get("metadata") or {}).get("name") or "")
        for r in picked:
            for rule in r.get("rules") or []:
                if isinstance(rule, dict) and rule not in out:
                    out.append(rule)
    return out


class ClusterRoleAggregator(QueueController):
    """kube-controller-manager's clusterrole-aggregation controller."""

    def __init__(self, client):
        self.client = client
        self.queue = WorkQueue("clusterrole-aggregation")
        self.roles: Informer | None = None

    async def start(self) -> None:
        self.roles = Informer(self.client, "clusterroles", name="clusterrole-aggregation")
        self.roles.add_handler(self._on_change)
        await self.roles.start()
        self.start_workers("clusterrole-aggregation")

    async def stop(self) -> None:
        await self.stop_workers()
        if self.roles is not None:
            await self.roles.stop()

    def _on_change(self, typ: str, obj: dict, old: dict | None) -> None:
        # any change may alter what some aggregated role selects: look at every aggregated role
        for r in self.roles.list():
            if r.get("aggregationRule"):
                self.queue.add((r.get("metadata") or {}).get("name") or "")

    async def reconcile(self, name: str) -> float | None:
        role = self.roles.get(name)
        if role is None or not role.get("aggregationRule"):
            return None
        want = aggregated_rules(role, self.roles.list())
        if (role.get("rules") or []) == want:
            return None
        try:
            await self.client.update("clusterroles", {**role, "rules": want})
            log.info("aggregated a ClusterRole", extra={"fields": {"name": name, "rules": len(want)}})
        except APIError as e:
            if e.code in (404, 409):
                return 1.0 if e.code == 409 else None
            raise
        return None
