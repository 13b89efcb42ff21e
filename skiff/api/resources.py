"""The API's resources: one table shared by the API server and every client.

``RESOURCES[plural]`` says where a resource lives: its group and version, its kind, whether
it is namespaced, its short names and the subresources the server serves. ``path_for``
builds the Kubernetes REST path of a collection, an object or a subresource::

    path_for("pods", "default")                    -> /api/v1/namespaces/default/pods
    path_for("pods", "default", "web", "status")   -> /api/v1/namespaces/default/pods/web/status
    path_for("leases", "kube-node-lease", "n1")    -> /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1
    path_for("nodes", None, "n1")                  -> /api/v1/nodes/n1
    path_for("pods")                               -> /api/v1/pods     (all namespaces)
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str          # "" for the core group
    version: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = field(default=("create", "delete", "deletecollection", "get", "list",
                                            "patch", "update", "watch"))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def base(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of this resource's collection, an object or a subresource, in this
        Resource's version (see :func:`path_for`)."""
        p = self.base
        if self.namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
            if subresource:
                p += f"/{subresource}"
        return p


RESOURCES: dict[str, Resource] = {r.plural: r for r in [
    Resource("namespaces", "Namespace", "", "v1", False, "namespace", ("ns",), (), ("status", "finalize")),
    Resource("nodes", "Node", "", "v1", False, "node", ("no",), (), ("status",)),
    Resource("pods", "Pod", "", "v1", True, "pod", ("po",), ("all",),
             ("status", "log", "binding", "eviction", "exec", "attach", "portforward", "ephemeralcontainers")),
    Resource("events", "Event", "", "v1", True, "event", ("ev",)),
    Resource("leases", "Lease", "coordination.k8s.io", "v1", True, "lease"),
    Resource("configmaps", "ConfigMap", "", "v1", True, "configmap", ("cm",)),
    Resource("secrets", "Secret", "", "v1", True, "secret"),
    Resource("serviceaccounts", "ServiceAccount", "", "v1", True, "serviceaccount", ("sa",), (), ("token",)),
    Resource("limitranges", "LimitRange", "", "v1", True, "limitrange", ("limits",)),
    Resource("resourcequotas", "ResourceQuota", "", "v1", True, "resourcequota", ("quota",), (), ("status",)),
    Resource("services", "Service", "", "v1", True, "service", ("svc",), ("all",), ("status",)),
    Resource("endpoints", "Endpoints", "", "v1", True, "endpoints", ("ep",)),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", True, "endpointslice"),
    Resource("deployments", "Deployment", "apps", "v1", True, "deployment", ("deploy",), ("all",),
             ("status", "scale")),
    Resource("replicasets", "ReplicaSet", "apps", "v1", True, "replicaset", ("rs",), ("all",),
             ("status", "scale")),
    Resource("replicationcontrollers", "ReplicationController", "", "v1", True, "replicationcontroller", ("rc",),
             ("all",), ("status", "scale")),
    Resource("daemonsets", "DaemonSet", "apps", "v1", True, "daemonset", ("ds",), ("all",), ("status",)),
    Resource("statefulsets", "StatefulSet", "apps", "v1", True, "statefulset", ("sts",), ("all",),
             ("status", "scale")),
    Resource("controllerrevisions", "ControllerRevision", "apps", "v1", True, "controllerrevision"),
    Resource("jobs", "Job", "batch", "v1", True, "job", (), ("all",), ("status",)),
    Resource("cronjobs", "CronJob", "batch", "v1", True, "cronjob", ("cj",), ("all",), ("status",)),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, "poddisruptionbudget", ("pdb",),
             (), ("status",)),
    Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, "networkpolicy", ("netpol",)),
    Resource("ingresses", "Ingress", "networking.k8s.io", "v1", True, "ingress", ("ing",), (), ("status",)),
    Resource("ingressclasses", "IngressClass", "networking.k8s.io", "v1", False, "ingressclass"),
    # autoscaling/v1 is served too, converted (skiff.controller.hpa_v1)
    Resource("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2", True,
             "horizontalpodautoscaler", ("hpa",), ("all",), ("status",)),
    Resource("persistentvolumes", "PersistentVolume", "", "v1", False, "persistentvolume", ("pv",), (), ("status",)),
    Resource("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", True, "persistentvolumeclaim", ("pvc",),
             (), ("status",)),
    Resource("storageclasses", "StorageClass", "storage.k8s.io", "v1", False, "storageclass", ("sc",)),
    Resource("priorityclasses", "PriorityClass", "scheduling.k8s.io", "v1", False, "priorityclass", ("pc",)),
    Resource("roles", "Role", "rbac.authorization.k8s.io", "v1", True, "role"),
    Resource("clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False, "clusterrole"),
    Resource("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", True, "rolebinding"),
    Resource("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False,
             "clusterrolebinding"),
    # the custom resources CRDs define are added (and removed) while the controller runs (skiff.controller.crd)
    Resource("customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io", "v1", False,
             "customresourcedefinition", ("crd", "crds"), (), ("status",)),
]}

NODE_LEASE_NAMESPACE = "kube-node-lease"


# Versions the API server serves besides the one it stores, converting bodies to and from the
# stored version: (apiVersion, kind) -> plural (autoscaling/v1: skiff.controller.hpa_v1).
CONVERTED_VERSIONS: dict[tuple[str, str], str] = {
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
}


def resource_for_kind(api_version: str, kind: str) -> Resource | None:
    for r in RESOURCES.values():
        if r.kind == kind and r.api_version == api_version:
            return r
    return None


def served_resource_for_kind(api_version: str, kind: str) -> Resource | None:
    """:func:`resource_for_kind`, and for a version served by conversion
    (:data:`CONVERTED_VERSIONS`) the resource as seen in that version: its ``path()`` is that
    version's, where the server takes and returns objects of that version."""
    r = resource_for_kind(api_version, kind)
    plural = CONVERTED_VERSIONS.get((api_version, kind))
    if r is None and plural in RESOURCES:
        import dataclasses
        r = dataclasses.replace(RESOURCES[plural], version=api_version.rpartition("/")[2])
    return r


def lookup(name: str) -> Resource | None:
    """A resource by plural, singular, short name or kind, case-insensitively ("po", "Pod",
    "pods", "pod"); a "resource.group" form is accepted too ("leases.coordination.k8s.io")."""
    n = name.lower()
    base, _, group = n.partition(".")
    for r in RESOURCES.values():
        if group and r.group != group:
            continue
        if base in (r.plural, r.singular, r.kind.lower()) or base in r.short_names:
            return r
    return None


def path_for(plural: str, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
    return RESOURCES[plural].path(namespace, name, subresource)


def namespace_for(r: Resource, namespace: str | None, obj: dict | None = None) -> str | None:
    """The namespace a request on ``r`` is for: None for cluster-scoped resources, else the
    one given, else the object's own, else "default" (what kubectl and client-go do)."""
    if not r.namespaced:
        return None
    if namespace:
        return namespace
    if obj is not None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            return ns
    return "default"
