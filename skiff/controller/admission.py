"""Admission: fill in Kubernetes' defaults, then validate.

``admit(obj, namespace_from_path=None) -> (obj, warnings)`` returns a defaulted deep copy
of ``obj`` and the validation warnings, or raises
:class:`skiff.api.validation.ValidationError`.

Defaults (as Kubernetes fills them): namespace ``default`` for namespaced kinds (or the
namespace in the request path), and for pods ``restartPolicy: Always``,
``terminationGracePeriodSeconds: 30``, ``dnsPolicy: ClusterFirst``, ``schedulerName:
default-scheduler``, ``enableServiceLinks`` is left alone; per container
``imagePullPolicy``, ``terminationMessagePath: /dev/termination-log``,
``terminationMessagePolicy: File``, ``protocol: TCP`` on ports, probe timings (and a gRPC
probe's ``service: ""``), and (pods only) ``resources.requests`` from ``resources.limits``
where a request is not given.

A pod's deprecated ``serviceAccount`` mirrors ``serviceAccountName`` (both ways, as Kubernetes'
conversion); the name's default ``default``, the check that the ServiceAccount exists and the
copy of its imagePullSecrets need the store, so the registry does them on create
(skiff.controller.registry_kinds, Kubernetes' ServiceAccount admission).

Every pod also gets Kubernetes' default NoExecute tolerations for the not-ready and
unreachable taints (``tolerationSeconds`` = ``admit(..., toleration_seconds=)``, default
300, the controller's --pod-eviction-timeout). Deployments and ReplicaSets: replicas 1, the
Deployment strategy (RollingUpdate 25%/25%), revisionHistoryLimit 10,
progressDeadlineSeconds 600, minReadySeconds 0, and the pod defaults on the template.
Jobs: see :func:`_default_job` (their generated selector and labels).
DaemonSets: updateStrategy RollingUpdate with maxUnavailable 1 and maxSurge 0,
revisionHistoryLimit 10, and the pod defaults on the template.
Secrets: type Opaque, stringData merged into data (base64) and dropped.
Services: see :func:`default_service` (type, ports, affinity, traffic policies, clusterIPs);
their IP families and allocated values are the registry's (skiff.controller.serviceips).
Endpoints and EndpointSlices: their ports' protocol TCP (and a slice port's name "").

imagePullPolicy: the issue asks for ``IfNotPresent``; that is the default here for every
image, including ``:latest`` and untagged ones (Kubernetes would choose ``Always`` for
those). Set ``LATEST_PULL_ALWAYS = True`` to get Kubernetes' behaviour.
"""
from __future__ import annotations

from typing import Any

from skiff.api.jsontree import json_copy

from skiff.api.validation import (INVALID, ValidationError, Warning, _cause, kind_of, validate)
from skiff.controller.crd.kinds import CUSTOM_KINDS, admit_custom
from skiff.api.validation_job import (CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL,
                                      LEGACY_JOB_NAME_LABEL)

LATEST_PULL_ALWAYS = False
DEFAULT_NAMESPACE = "default"
DEFAULT_SCHEDULER = "default-scheduler"

# DefaultTolerationSeconds admission: every pod tolerates the not-ready and unreachable
# NoExecute taints for this long (the controller's --pod-eviction-timeout). A Registry passes
# its own value to admit(); this is the default.
DEFAULT_TOLERATION_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

# The metadata the API server sets itself: a create drops what the body brings (the registry).
SERVER_SET_METADATA = ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
                       "deletionGracePeriodSeconds", "selfLink", "managedFields")

_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def default_pull_policy(image: str | None) -> str:
    if not LATEST_PULL_ALWAYS or not image:
        return "IfNotPresent"
    ref = image.split("@", 1)
    if len(ref) == 2:  # pinned by digest
        return "IfNotPresent"
    last = ref[0].rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("imagePullPolicy", default_pull_policy(c.get("image")))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(name)
        if isinstance(probe, dict):
            for k, v in _PROBE_DEFAULTS.items():
                probe.setdefault(k, v)
            hg = probe.get("httpGet")
            if isinstance(hg, dict):
                hg.setdefault("path", "/")
                hg.setdefault("scheme", "HTTP")
            grpc = probe.get("grpc")
            if isinstance(grpc, dict) and grpc.get("service") is None:
                grpc["service"] = ""    # GRPCAction.service: +default="" (kubectl describe reads it)


def _default_pod(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(group) or []:
            _default_container(c)
            if spec.get("hostNetwork") is True and group != "ephemeralContainers" and isinstance(c, dict):
                for p in c.get("ports") or []:   # defaultHostNetworkPorts: the host's own port
                    if isinstance(p, dict) and not p.get("hostPort") and isinstance(p.get("containerPort"), int):
                        p["hostPort"] = p["containerPort"]
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict):
            v["hostPath"].setdefault("type", "")
        if isinstance(v, dict) and isinstance(v.get("projected"), dict):
            for src in v["projected"].get("sources") or ():     # SetDefaults_ServiceAccountTokenProjection
                if isinstance(src, dict) and isinstance(src.get("serviceAccountToken"), dict):
                    src["serviceAccountToken"].setdefault("expirationSeconds", 3600)


def mirror_service_account(spec: Any) -> None:
    """A pod's ``serviceAccountName`` and its deprecated alias ``serviceAccount`` made one, as
    Kubernetes' v1 conversion does: the alias fills an empty name, then always repeats it.
    Pods only: a template keeps what its author wrote (its hash must not change)."""
    if not isinstance(spec, dict):
        return
    if not spec.get("serviceAccountName") and isinstance(spec.get("serviceAccount"), str) \
            and spec["serviceAccount"]:
        spec["serviceAccountName"] = spec["serviceAccount"]
    if isinstance(spec.get("serviceAccountName"), str) and spec["serviceAccountName"]:
        spec["serviceAccount"] = spec["serviceAccountName"]


def _default_requests(spec: Any) -> None:
    """A container's limits are its requests where it names none (Kubernetes' SetDefaults_Pod;
    pods only, not templates: a template's hash must not change)."""
    if not isinstance(spec, dict):
        return
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            res = c.get("resources") if isinstance(c, dict) else None
            lim = res.get("limits") if isinstance(res, dict) else None
            if not isinstance(lim, dict) or not lim:
                continue
            req = res.get("requests")
            if req is None:
                req = res["requests"] = {}
            if isinstance(req, dict):
                for k, v in lim.items():
                    req.setdefault(k, v)


def default_tolerations(spec: Any, seconds: int | None = None) -> None:
    """Kubernetes' DefaultTolerationSeconds admission plugin: add
    ``{key: node.kubernetes.io/not-ready|unreachable, operator: Exists, effect: NoExecute,
    tolerationSeconds: seconds}`` unless the pod already tolerates that taint."""
    if not isinstance(spec, dict):
        return
    if seconds is None:
        seconds = DEFAULT_TOLERATION_SECONDS
    tols = spec.get("tolerations")
    if tols is not None and not isinstance(tols, list):
        return
    tols = list(tols or [])
    have = {NOT_READY_TAINT: False, UNREACHABLE_TAINT: False}
    for t in tols:
        if not isinstance(t, dict):
            return
        for key in have:
            if t.get("key") in (key, "", None) and t.get("effect") in ("NoExecute", "", None):
                have[key] = True
    added = False
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not have[key]:
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": int(seconds)})
            added = True
    if added:
        spec["tolerations"] = tols


def _default_template(spec: Any, *, deployment: bool) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    if deployment:
        default_rolling_update(spec, "strategy", "25%", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("minReadySeconds", 0)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        _default_pod(tmpl.get("spec"))


def _default_replication_controller(obj: dict) -> None:
    """SetDefaults_ReplicationController: the selector and the object's labels default to the
    template's labels; replicas to 1."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    tmpl = spec.get("template")
    tlabels = (tmpl.get("metadata") or {}).get("labels") if isinstance(tmpl, dict) \
        and isinstance(tmpl.get("metadata"), dict) else None
    if isinstance(tlabels, dict) and tlabels:
        if not spec.get("selector"):
            spec["selector"] = dict(tlabels)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and not meta.get("labels"):
            meta["labels"] = dict(tlabels)
    _default_template(spec, deployment=False)


def _default_cronjob(spec: Any) -> None:
    """SetDefaults_CronJob (concurrencyPolicy Allow, suspend false, history limits 3 and 1), and
    the pod defaults on the job template's pod template (its Job gets the Job defaults when made)."""
    if not isinstance(spec, dict):
        return
    for k, v in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                 ("failedJobsHistoryLimit", 1)):
        if spec.get(k) is None or (k == "concurrencyPolicy" and spec[k] == ""):
            spec[k] = v
    jt = spec.get("jobTemplate")
    js = jt.get("spec") if isinstance(jt, dict) else None
    tmpl = js.get("template") if isinstance(js, dict) else None
    if isinstance(tmpl, dict):
        _default_pod(tmpl.get("spec"))


def _default_job(obj: dict) -> None:
    """SetDefaults_Job (completions and parallelism 1 when neither is given, parallelism 1,
    backoffLimit 6 (with backoffLimitPerIndex: the largest int32), completionMode NonIndexed, suspend and manualSelector false,
    podReplacementPolicy TerminatingOrFailed), the pod defaults on the template, and unless
    manualSelector what the API server generates from the Job's uid and name: the selector
    ``batch.kubernetes.io/controller-uid=<uid>`` and the template labels
    ``batch.kubernetes.io/controller-uid``, ``controller-uid``, ``batch.kubernetes.io/job-name``,
    ``job-name`` (labels the user set are kept: validation refuses wrong ones). A Job without
    labels gets its template's."""
    spec, meta = obj.get("spec"), obj.get("metadata")
    if not isinstance(spec, dict) or not isinstance(meta, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    for k, v in (("parallelism", 1), ("backoffLimit", 6 if spec.get("backoffLimitPerIndex") is None else 2**31 - 1),
                 ("completionMode", "NonIndexed"), ("suspend", False),
                 ("manualSelector", False),
                 ("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")):
        if spec.get(k) is None:
            spec[k] = v
    pfp = spec.get("podFailurePolicy")
    for rule in (pfp.get("rules") or ()) if isinstance(pfp, dict) and isinstance(pfp.get("rules"), list) else ():
        for c in (rule.get("onPodConditions") or ()) if isinstance(rule, dict) else ():
            if isinstance(c, dict) and c.get("status") is None:
                c["status"] = "True"
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        return
    _default_pod(tmpl.get("spec"))
    if tmpl.get("metadata") is None:
        tmpl["metadata"] = {}
    tmeta = tmpl["metadata"]
    if not isinstance(tmeta, dict) or not isinstance(tmeta.get("labels") or {}, dict) \
            or not isinstance(meta.get("labels") or {}, dict):
        return
    if not meta.get("labels") and tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    uid, name = meta.get("uid"), meta.get("name")
    if spec["manualSelector"] is True or not isinstance(uid, str) or not isinstance(name, str):
        return
    labels = tmeta["labels"] = dict(tmeta.get("labels") or {})
    for key, value in ((LEGACY_JOB_NAME_LABEL, name), (JOB_NAME_LABEL, name),
                       (LEGACY_CONTROLLER_UID_LABEL, uid), (CONTROLLER_UID_LABEL, uid)):
        labels.setdefault(key, value)
    sel = spec.get("selector")
    if sel is None:
        sel = spec["selector"] = {}
    if isinstance(sel, dict) and isinstance(sel.get("matchLabels") or {}, dict):
        sel["matchLabels"] = {**(sel.get("matchLabels") or {})}
        sel["matchLabels"].setdefault(CONTROLLER_UID_LABEL, uid)
    if not meta.get("labels"):
        meta["labels"] = dict(labels)


def _default_daemonset(spec: Any) -> None:
    """SetDefaults_DaemonSet: updateStrategy RollingUpdate, its maxUnavailable 1 and maxSurge 0,
    revisionHistoryLimit 10; the pod defaults on the template."""
    if not isinstance(spec, dict):
        return
    default_rolling_update(spec, "updateStrategy", 1, 0)
    spec.setdefault("revisionHistoryLimit", 10)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        _default_pod(tmpl.get("spec"))


def _default_secret(obj: dict) -> None:
    """type Opaque; stringData merged into data (base64) and dropped, as Kubernetes does."""
    import base64
    obj.setdefault("type", "Opaque")
    sd = obj.get("stringData")
    if isinstance(sd, dict):
        data = obj.get("data")
        if data is None or isinstance(data, dict):
            data = dict(data or {})
            for k, v in sd.items():
                if isinstance(v, str):
                    data[k] = base64.b64encode(v.encode()).decode()
            obj["data"] = data
            del obj["stringData"]


DEFAULT_AFFINITY_SECONDS = 10800


def default_service(obj: dict) -> None:
    """SetDefaults_Service: a field given as null is unset; type ClusterIP; sessionAffinity None
    (without a sessionAffinityConfig) or, for ClientIP, a 10800 s timeout; per port protocol TCP
    and targetPort = port; externalTrafficPolicy Cluster for externally-accessible services
    (NodePort, LoadBalancer, ClusterIP with externalIPs); internalTrafficPolicy Cluster except for
    ExternalName; allocateLoadBalancerNodePorts true for LoadBalancer; and, as the service
    strategy normalizes them on create, clusterIPs = [clusterIP] when only clusterIP is given."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    for k in [k for k, v in spec.items() if v is None]:
        del spec[k]
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        cip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(cip, dict) or cip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for p in spec.get("ports") or [] if isinstance(spec.get("ports"), list) else []:
        if not isinstance(p, dict):
            continue
        for k in [k for k, v in p.items() if v is None]:
            del p[k]
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        if p.get("targetPort") in (None, 0, ""):
            if "port" in p:
                p["targetPort"] = p["port"]
    typ = spec["type"]
    accessible = typ in ("NodePort", "LoadBalancer") or (typ == "ClusterIP" and bool(spec.get("externalIPs")))
    if accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if typ in ("ClusterIP", "NodePort", "LoadBalancer") and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if typ == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if spec.get("clusterIPs") == [] and not spec.get("clusterIP"):
        del spec["clusterIPs"]


def _default_endpoint_ports(ports: Any, slice_port: bool) -> None:
    for p in ports if isinstance(ports, list) else []:
        if isinstance(p, dict):
            if not p.get("protocol"):
                p["protocol"] = "TCP"
            if slice_port and p.get("name") is None:
                p["name"] = ""


def apply_defaults(obj: dict, namespace_from_path: str | None = None, *,
                   toleration_seconds: int | None = None) -> dict:
    """Fill defaults in place and return ``obj``. Unknown kinds are left as they are."""
    kind = kind_of(obj)
    if kind is None:
        return obj
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if isinstance(meta, dict) and kind.namespaced and not meta.get("namespace"):
        meta["namespace"] = namespace_from_path or DEFAULT_NAMESPACE
    if kind.kind == "Pod":
        _default_pod(obj.get("spec"))
        _default_requests(obj.get("spec"))
        mirror_service_account(obj.get("spec"))
        default_tolerations(obj.get("spec"), toleration_seconds)
    elif kind.kind in ("Deployment", "ReplicaSet"):
        _default_template(obj.get("spec"), deployment=kind.kind == "Deployment")
    elif kind.kind == "ReplicationController":
        _default_replication_controller(obj)
    elif kind.kind == "PriorityClass":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")     # SetDefaults_PriorityClass
    elif kind.kind == "IngressClass":
        from skiff.api.validation_ingress import default_ingressclass
        default_ingressclass(obj)
    elif kind.kind in ("RoleBinding", "ClusterRoleBinding"):
        from skiff.api.validation_rbac import default_rbac
        default_rbac(obj)
    elif kind.kind == "Job":
        _default_job(obj)
    elif kind.kind == "CronJob":
        _default_cronjob(obj.get("spec"))
    elif kind.kind == "LimitRange":
        from skiff.controller.admission_limits import default_limitrange
        default_limitrange(obj)
    elif kind.kind == "HorizontalPodAutoscaler":
        from skiff.api.validation_hpa import default_hpa
        default_hpa(obj)
    elif kind.kind == "DaemonSet":
        _default_daemonset(obj.get("spec"))
    elif kind.kind == "StatefulSet":
        from skiff.api.validation_statefulset import default_statefulset
        default_statefulset(obj.get("spec"))
    elif kind.kind == "NetworkPolicy":
        from skiff.api.validation_netpol import default_networkpolicy
        default_networkpolicy(obj)
    elif kind.kind == "Secret":
        _default_secret(obj)
    elif kind.kind == "Service":
        default_service(obj)
    elif kind.kind == "Endpoints":
        for ss in obj.get("subsets") or [] if isinstance(obj.get("subsets"), list) else []:
            if isinstance(ss, dict):
                _default_endpoint_ports(ss.get("ports"), False)
    elif kind.kind == "EndpointSlice":
        _default_endpoint_ports(obj.get("ports"), True)
    elif kind.kind in ("PersistentVolume", "PersistentVolumeClaim", "StorageClass"):
        from skiff.api.validation_storage import default_storage
        default_storage(kind.kind, obj)
    elif kind.kind == "Namespace" and isinstance(meta, dict) and isinstance(meta.get("name"), str) \
            and isinstance(meta.get("labels") or {}, dict):
        # as Kubernetes (1.21+): every namespace carries its name as a label, for namespaceSelectors
        meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
    if kind.kind == "Event":
        obj.setdefault("type", "Normal")
    return obj


def admit(obj: dict, namespace_from_path: str | None = None, *,
          toleration_seconds: int | None = None,
          field_validation: str | None = None, owned: bool = False) -> tuple[dict, list[Warning]]:
    """Default and validate ``obj`` (not modified; a copy is returned with the warnings).
    ``owned``: the caller hands ``obj`` over (a request body it decoded): it is defaulted in
    place and returned, not copied.
    ``field_validation`` (Strict|Warn|Ignore) is the API's directive for unknown fields
    (see :func:`skiff.api.validation.validate`).

    When the request path names a namespace and the body names another, that is an error
    (as in Kubernetes)."""
    if isinstance(obj, dict) and (obj.get("apiVersion"), obj.get("kind")) in CUSTOM_KINDS:
        return admit_custom(obj, namespace_from_path, field_validation, owned)   # CRDs and custom resources
    if not owned:
        obj = json_copy(obj)
    kind = kind_of(obj)
    if kind is not None and namespace_from_path and isinstance(obj.get("metadata"), dict):
        ns = obj["metadata"].get("namespace")
        if ns and ns != namespace_from_path:
            raise ValidationError([_cause("metadata.namespace", INVALID,
                                          f'Invalid value: "{ns}": the namespace of the provided object does not '
                                          f'match the namespace sent on the request ("{namespace_from_path}")')],
                                  kind.kind, str(obj["metadata"].get("name") or ""))
    if isinstance(obj, dict):
        apply_defaults(obj, namespace_from_path, toleration_seconds=toleration_seconds)
    warnings = validate(obj, field_validation)
    return obj, warnings


def default_rolling_update(spec: dict, field: str, max_unavailable, max_surge) -> None:
    """A workload's update strategy (``field``) defaulted as Kubernetes does: type
    RollingUpdate, whose maxUnavailable and maxSurge default to the values given."""
    strat = spec.get(field)
    if strat is None:
        strat = spec[field] = {}
    if not isinstance(strat, dict):
        return
    strat.setdefault("type", "RollingUpdate")
    if strat["type"] == "RollingUpdate":
        ru = strat.get("rollingUpdate")
        if ru is None:
            ru = strat["rollingUpdate"] = {}
        if isinstance(ru, dict):
            ru.setdefault("maxUnavailable", max_unavailable)
            ru.setdefault("maxSurge", max_surge)
