"""Server-side Table printing (meta.k8s.io/v1 Table), shared by the API server and skiffctl.

One implementation of "what `kubectl get` shows" for every kind skiff serves:

* ``COLUMNS[plural]``: Kubernetes' own column definitions for the kind (name, type, format,
  description, priority; priority 1 columns are the ``-o wide`` ones), and
  ``DEFAULT_COLUMNS`` (Name, Created At) for any other kind.
* ``cells(plural, obj, now)``: the row's cells for *all* columns, as the API server prints
  them (the server always renders the wide form; clients drop priority>0 columns).
* ``table(plural, objs, ...)``: the whole Table document, with each row's ``object`` a
  PartialObjectMetadata (includeObject=Metadata, the default), the full object (Object) or
  null (None).
* ``negotiate(accept)``: which representation an ``Accept`` header asks for.

This module is imported by skiffctl at start-up: it must stay free of heavy imports.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

NONE = "<none>"
UNKNOWN = "<unknown>"

# ------------------------------------------------------------------ time

_parse_cache: dict[str, float | None] = {}


def parse_time(ts: str | None) -> float | None:
    """RFC 3339 ("2026-11-28T10:00:00Z", with optional fraction or offset) -> epoch seconds."""
    if not ts or not isinstance(ts, str):
        return None
    hit = _parse_cache.get(ts, False)
    if hit is not False:
        return hit
    s = ts.strip()
    if s[-1:] in "zZ":
        s = s[:-1] + "+00:00"
    try:
        d = datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        out: float | None = d.timestamp()
    except ValueError:
        out = None
    if len(_parse_cache) > 50000:
        _parse_cache.clear()
    _parse_cache[ts] = out
    return out


def human_duration(seconds: float) -> str:
    """The approximate age kubectl and the API server print (apimachinery's HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def since(ts: str | None, now: float | None = None) -> str:
    """Age of a timestamp; "<unknown>" when it is missing."""
    t = parse_time(ts)
    if t is None:
        return UNKNOWN
    return human_duration((time.time() if now is None else now) - t)


# ------------------------------------------------------------------ column definitions

def _col(name: str, description: str, type_: str = "string", fmt: str = "", priority: int = 0) -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_D_NAME = ("Name must be unique within a namespace. Is required when creating resources, although some "
           "resources may allow a client to request the generation of a name automatically. Name is "
           "primarily intended for creation idempotence and configuration definition. Cannot be updated. "
           "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_D_CREATED = ("CreationTimestamp is a timestamp representing the server time when this object was created. "
              "It is not guaranteed to be set in happens-before order across separate operations. Clients "
              "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
              "system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/"
              "sig-architecture/api-conventions.md#metadata")
_D_ADDRESSES = ("List of addresses reachable to the node. Queried from cloud provider, if available. More "
                "info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is "
                "declared as mergeable, but the merge key is not sufficiently unique, which can cause data "
                "corruption when it is merged. Callers should instead use a full-replacement patch. See "
                "https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change "
                "during the lifetime of a Node. However, there are some exceptions where this may not be "
                "possible, such as Pods that inherit a Node's address in its own status or consumers of the "
                "downward API (status.hostIP).")
_D_CONTAINERS = "Names of each container in the template."
_D_IMAGES = "Images referenced by each container in the template."

NAME_COLUMN = _col("Name", _D_NAME, fmt="name")
AGE_COLUMN = _col("Age", _D_CREATED)

COLUMNS: dict[str, list[dict]] = {
    "pods": [
        NAME_COLUMN,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted and when the "
                         "last container in this pod has restarted."),
        AGE_COLUMN,
        _col("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
                   "yet allocated.", priority=1),
        _col("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
                     "candidate for scheduling by the scheduler defined in schedulerName. Once this field is "
                     "set, the kubelet for this node becomes responsible for the lifecycle of this pod. This "
                     "field should not be used to express a desire for the pod to be scheduled on a specific "
                     "node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
             priority=1),
        _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, "
                               "but it cannot be scheduled right away as preemption victims receive their "
                               "graceful termination periods. This field does not guarantee that the pod will "
                               "be scheduled on this node. Scheduler may decide to place the pod elsewhere if "
                               "other nodes become available sooner. Scheduler may also decide to give the "
                               "resources on this node to a higher priority pod that is created after "
                               "preemption. As a result, this field may be different than PodSpec.nodeName "
                               "when the pod is scheduled.", priority=1),
        _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness. A pod "
                                "is ready when all its containers are ready AND all conditions specified in "
                                "the readiness gates have status equal to \"True\" More info: "
                                "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
             priority=1),
    ],
    "nodes": [
        NAME_COLUMN,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        AGE_COLUMN,
        _col("Version", "Kubelet Version reported by the node."),
        _col("Internal-IP", _D_ADDRESSES, priority=1),
        _col("External-IP", _D_ADDRESSES, priority=1),
        _col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 "
                         "(wheezy)).", priority=1),
        _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. "
                               "3.16.0-0.bpo.4-amd64).", priority=1),
        _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API "
                                  "(e.g. containerd://1.4.2).", priority=1),
    ],
    "deployments": [
        NAME_COLUMN,
        _col("Ready", "Number of the pod with ready state"),
        _col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the "
                           "desired template spec."),
        _col("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by "
                          "this deployment."),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
                         "be the ones affected by this deployment.", priority=1),
    ],
    "replicasets": [
        NAME_COLUMN,
        _col("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between "
                        "explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/"
                        "concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
             "integer"),
        _col("Current", "Replicas is the most recently observed number of replicas. More info: "
                        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
                        "#what-is-a-replicationcontroller", "integer"),
        _col("Ready", "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready "
                      "Condition.", "integer"),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "Selector is a label query over pods that should match the replica count. Label keys "
                         "and values that must match in order to be controlled by this replica set. It must "
                         "match the pod template's labels. More info: https://kubernetes.io/docs/concepts/"
                         "overview/working-with-objects/labels/#label-selectors", priority=1),
    ],
    "replicationcontrollers": [
        NAME_COLUMN,
        _col("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between "
                        "explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/"
                        "concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
             "integer"),
        _col("Current", "Replicas is the most recently observed number of replicas. More info: "
                        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller"
                        "#what-is-a-replicationcontroller", "integer"),
        _col("Ready", "The number of ready replicas for this replication controller.", "integer"),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "Selector is a label query over pods that should match the Replicas count. If Selector "
                         "is empty, it is defaulted to the labels present on the Pod template. Label keys and "
                         "values that must match in order to be controlled by this replication controller, if "
                         "empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/"
                         "concepts/overview/working-with-objects/labels#label-selectors", priority=1),
    ],
    "daemonsets": [
        NAME_COLUMN,
        _col("Desired", "The total number of nodes that should be running the daemon pod (including nodes "
                        "correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/"
                        "workloads/controllers/daemonset/", "integer"),
        _col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
                        "daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/"
                        "daemonset/", "integer"),
        _col("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one or "
                      "more of the daemon pod running with a Ready Condition.", "integer"),
        _col("Up-to-date", "The total number of nodes that are running updated daemon pod", "integer"),
        _col("Available", "The number of nodes that should be running the daemon pod and have one or more of the "
                          "daemon pod running and available (ready for at least spec.minReadySeconds)", "integer"),
        _col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node. "
                              "Selector which must match a node's labels for the pod to be scheduled on that node. "
                              "More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "A label query over pods that are managed by the daemon set. Must match in order to be "
                         "controlled. It must match the pod template's labels. More info: https://kubernetes.io/"
                         "docs/concepts/overview/working-with-objects/labels/#label-selectors", priority=1),
    ],
    "statefulsets": [
        NAME_COLUMN,
        _col("Ready", "Number of the pod with ready state"),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
    ],
    "controllerrevisions": [
        NAME_COLUMN,
        _col("Controller", "Controller of the object"),
        _col("Revision", "Revision indicates the revision of the state represented by Data."),
        AGE_COLUMN,
    ],
    "jobs": [
        NAME_COLUMN,
        _col("Status", "Status of the job."),
        _col("Completions", "The number of pods which reached phase Succeeded. The value increases monotonically "
                            "for a given spec. However, it may decrease in reaction to scale down of elastic "
                            "indexed jobs."),
        _col("Duration", "Time required to complete the job."),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "A label query over pods that should match the pod count. Normally, the system sets "
                         "this field for you. More info: https://kubernetes.io/docs/concepts/overview/"
                         "working-with-objects/labels/#label-selectors", priority=1),
    ],
    "networkpolicies": [
        NAME_COLUMN,
        _col("Pod-Selector", "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules "
                             "is applied to any pods selected by this field. Multiple network policies can select "
                             "the same set of pods. In this case, the ingress rules for each are combined "
                             "additively. This field is NOT optional and follows standard label selector "
                             "semantics. An empty podSelector matches all pods in this namespace."),
        AGE_COLUMN,
    ],
    "poddisruptionbudgets": [
        NAME_COLUMN,
        _col("Min Available", "The minimum number of pods that must be available simultaneously. This can be "
                              "either an integer or a string specifying a percentage, e.g. \"28%\"."),
        _col("Max Unavailable", "The maximum number of pods that may be unavailable simultaneously. This can be "
                                "either an integer or a string specifying a percentage, e.g. \"28%\"."),
        _col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.", "integer"),
        AGE_COLUMN,
    ],
    "cronjobs": [
        NAME_COLUMN,
        _col("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        _col("Timezone", "The time zone name for the given schedule, see "
                         "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        _col("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to "
                        "already started executions.  Defaults to false.", "boolean"),
        _col("Active", "A list of pointers to currently running jobs.", "integer"),
        _col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
        AGE_COLUMN,
        _col("Containers", _D_CONTAINERS, priority=1),
        _col("Images", _D_IMAGES, priority=1),
        _col("Selector", "A label query over pods that should match the pod count. Normally, the system sets "
                         "this field for you. More info: https://kubernetes.io/docs/concepts/overview/"
                         "working-with-objects/labels/#label-selectors", priority=1),
    ],
    "events": [
        _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", "This should be a short, machine understandable string that gives the reason for the "
                       "transition into the object's current status."),
        _col("Object", "The object that this event is about."),
        _col("Subobject", "If referring to a piece of an object instead of an entire object, this string "
                          "should contain a valid JSON/Go field access statement, such as "
                          "desiredState.manifest.containers[2]. For example, if the object reference is to a "
                          "container within a pod, this would take on a value like: \"spec.containers{name}\" "
                          "(where \"name\" refers to the name of the container that triggered the event) or if "
                          "no container name is specified \"spec.containers[2]\" (container with index 2 in "
                          "this pod). This syntax is chosen only to have some well-defined way of referencing "
                          "a part of an object.", priority=1),
        _col("Source", "The component reporting this event. Should be a short machine understandable string.",
             priority=1),
        _col("Message", "A human-readable description of the status of this operation."),
        _col("First Seen", "The time at which the event was first recorded. (Time of server receipt is in "
                           "TypeMeta.)", priority=1),
        _col("Count", "The number of times this event has occurred.", priority=1),
        _col("Name", _D_NAME, fmt="name", priority=1),
    ],
    "namespaces": [NAME_COLUMN, _col("Status", "The status of the namespace"), AGE_COLUMN],
    "serviceaccounts": [NAME_COLUMN, _col("Secrets", "Secrets is a list of the secrets in the same namespace "
                                                     "that pods running using this ServiceAccount are allowed to "
                                                     "use."), AGE_COLUMN],
    "resourcequotas": [NAME_COLUMN, AGE_COLUMN,
                       _col("Request", "Request represents a minimum amount of cpu/memory that a container may "
                                       "consume."),
                       _col("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                                     "independent of contention on the node.")],
    "configmaps": [
        NAME_COLUMN,
        _col("Data", "Data contains the configuration data. Each key must consist of alphanumeric characters, "
                     "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
                     "keys stored in Data must not overlap with the keys in the BinaryData field, this is "
                     "enforced during validation process."),
        AGE_COLUMN,
    ],
    "secrets": [
        NAME_COLUMN,
        _col("Type", "Used to facilitate programmatic handling of secret data. More info: "
                     "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
        _col("Data", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', "
                     "'_' or '.'. The serialized form of the secret data is a base64 encoded string, "
                     "representing the arbitrary (possibly non-string) data value here. Described in "
                     "https://tools.ietf.org/html/rfc4648#section-4"),
        AGE_COLUMN,
    ],
    "leases": [
        NAME_COLUMN,
        _col("Holder", "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
                       "Leader Election is used, the holder identity must be equal to the elected "
                       "LeaseCandidate.metadata.name field."),
        AGE_COLUMN,
    ],
}

DEFAULT_COLUMNS = [NAME_COLUMN, _col("Created At", _D_CREATED, "date")]


def columns(plural: str) -> list[dict]:
    return COLUMNS.get(plural, DEFAULT_COLUMNS)


# ------------------------------------------------------------------ helpers

def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _age(obj: dict, now: float | None) -> str:
    return since(meta(obj).get("creationTimestamp"), now)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def selector_string(sel: dict | None) -> str:
    """A LabelSelector as its selector string: requirements sorted by key ("app=web",
    "tier in (a,b)", "tier notin (a)", "key", "!key")."""
    if sel is None:
        return NONE
    reqs = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        if op == "In":
            reqs.append((k, f"{k} in ({','.join(vals)})"))
        elif op == "NotIn":
            reqs.append((k, f"{k} notin ({','.join(vals)})"))
        elif op == "Exists":
            reqs.append((k, k))
        elif op == "DoesNotExist":
            reqs.append((k, f"!{k}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


# ------------------------------------------------------------------ pods

def _sidecar(spec_by_name: dict, name: str | None) -> bool:
    c = spec_by_name.get(name)
    return bool(c) and c.get("restartPolicy") == "Always"


def pod_status(pod: dict, now: float | None = None) -> tuple[str, str, str]:
    """(Ready, Status, Restarts) of a pod, as the API server's pod printer works them out."""
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    conds = st.get("conditions") or []
    init_specs = spec.get("initContainers") or []
    init_by_name = {c.get("name"): c for c in init_specs}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs if c.get("restartPolicy") == "Always")
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None
    phase = st.get("phase") or ""
    reason = st.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conds):
        reason = "SchedulingGated"

    def finished(cs: dict) -> float | None:
        return parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))

    initializing = False
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        n = int(cs.get("restartCount") or 0)
        restarts += n
        d = finished(cs)
        if d is not None and (last_restart is None or d > last_restart):
            last_restart = d
        sidecar = _sidecar(init_by_name, cs.get("name"))
        if sidecar:
            sidecar_restarts += n
            if d is not None and (last_sidecar_restart is None or d > last_sidecar_restart):
                last_sidecar_restart = d
        state = cs.get("state") or {}
        term = state.get("terminated")
        wait = state.get("waiting")
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{_int(term.get('exitCode'))}"
        elif wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conds)
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            d = finished(cs)
            if d is not None and (last_restart is None or d > last_restart):
                last_restart = d
            state = cs.get("state") or {}
            wait = state.get("waiting")
            term = state.get("terminated")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{_int(term.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                reason = "Running"
            else:
                reason = "NotReady"

    if meta(pod).get("deletionTimestamp"):
        if st.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    rs = str(restarts)
    if restarts and last_restart is not None:
        rs = f"{restarts} ({human_duration((time.time() if now is None else now) - last_restart)} ago)"
    return f"{ready}/{total}", reason, rs


def pod_ip(pod: dict) -> str:
    st = pod.get("status") or {}
    ips = st.get("podIPs") or []
    ip = (ips[0] or {}).get("ip") if ips else st.get("podIP")
    return ip or NONE


def pod_cells(pod: dict, now: float | None = None) -> list:
    ready, status, restarts = pod_status(pod, now)
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    gates = spec.get("readinessGates") or []
    gates_s = NONE
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_s = f"{ok}/{len(gates)}"
    return [meta(pod).get("name", ""), ready, status, restarts, _age(pod, now),
            pod_ip(pod), spec.get("nodeName") or NONE, st.get("nominatedNodeName") or NONE, gates_s]


def pod_conditions(pod: dict) -> list | None:
    """Row conditions: a finished pod's row says Completed (kubectl can hide such rows)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# ------------------------------------------------------------------ nodes

def node_status(node: dict) -> str:
    status = []
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            status.append("Ready" if c.get("status") == "True" else "NotReady")
            break
    if not status:
        status.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(node: dict) -> str:
    roles = set()
    for k, v in (meta(node).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            r = k[len("node-role.kubernetes.io/"):]
            if r:
                roles.add(r)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def node_address(node: dict, kind: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return a.get("address") or NONE
    return NONE


def node_cells(node: dict, now: float | None = None) -> list:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [meta(node).get("name", ""), node_status(node), node_roles(node), _age(node, now),
            info.get("kubeletVersion", ""),
            node_address(node, "InternalIP"), node_address(node, "ExternalIP"),
            info.get("osImage") or UNKNOWN, info.get("kernelVersion") or UNKNOWN,
            info.get("containerRuntimeVersion") or UNKNOWN]


# ------------------------------------------------------------------ workloads

def _containers_cells(obj: dict) -> list:
    cs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


def deployment_cells(d: dict, now: float | None = None) -> list:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    return [meta(d).get("name", ""), f"{_int(st.get('readyReplicas'))}/{desired}",
            _int(st.get("updatedReplicas")), _int(st.get("availableReplicas")), _age(d, now),
            *_containers_cells(d), selector_string(spec.get("selector"))]


def replicaset_cells(rs: dict, now: float | None = None) -> list:
    spec, st = rs.get("spec") or {}, rs.get("status") or {}
    return [meta(rs).get("name", ""), _int(spec.get("replicas", 1)), _int(st.get("replicas")),
            _int(st.get("readyReplicas")), _age(rs, now),
            *_containers_cells(rs), selector_string(spec.get("selector"))]


def replicationcontroller_cells(rc: dict, now: float | None = None) -> list:
    spec, st = rc.get("spec") or {}, rc.get("status") or {}
    sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    return [meta(rc).get("name", ""), _int(spec.get("replicas", 1)), _int(st.get("replicas")),
            _int(st.get("readyReplicas")), _age(rc, now), *_containers_cells(rc),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or NONE]


def daemonset_cells(ds: dict, now: float | None = None) -> list:
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [meta(ds).get("name", ""), _int(st.get("desiredNumberScheduled")), _int(st.get("currentNumberScheduled")),
            _int(st.get("numberReady")), _int(st.get("updatedNumberScheduled")), _int(st.get("numberAvailable")),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE, _age(ds, now),
            *_containers_cells(ds), selector_string(spec.get("selector"))]


def statefulset_cells(sts: dict, now: float | None = None) -> list:
    """READY is readyReplicas/spec.replicas."""
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    return [meta(sts).get("name", ""), f"{_int(st.get('readyReplicas'))}/{_int(spec.get('replicas', 1))}",
            _age(sts, now), *_containers_cells(sts)]


def controllerrevision_cells(rev: dict, now: float | None = None) -> list:
    """CONTROLLER is the controller's kind.group/name (daemonset.apps/web)."""
    ctl = next((r for r in meta(rev).get("ownerReferences") or [] if r.get("controller")), None)
    owner = NONE
    if ctl is not None:
        group = (ctl.get("apiVersion") or "").rpartition("/")[0]
        owner = f"{(ctl.get('kind') or '').lower()}{'.' + group if group else ''}/{ctl.get('name', '')}"
    return [meta(rev).get("name", ""), owner, _int(rev.get("revision")), _age(rev, now)]


def _true_condition(obj: dict, typ: str) -> bool:
    return any(c.get("type") == typ and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def job_status(job: dict) -> str:
    """The STATUS column: the first of Complete, Failed, Terminating, Suspended, FailureTarget,
    SuccessCriteriaMet that holds, else Running."""
    if _true_condition(job, "Complete"):
        return "Complete"
    if _true_condition(job, "Failed"):
        return "Failed"
    if meta(job).get("deletionTimestamp"):
        return "Terminating"
    for typ in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _true_condition(job, typ):
            return typ
    return "Running"


def job_cells(job: dict, now: float | None = None) -> list:
    spec, st = job.get("spec") or {}, job.get("status") or {}
    succeeded = _int(st.get("succeeded"))
    parallelism = _int(spec.get("parallelism"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec['completions'])}"
    elif parallelism > 1:
        completions = f"{succeeded}/1 of {parallelism}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = ""
    if start is not None:
        until = end if end is not None else (time.time() if now is None else now)
        duration = human_duration(until - start)
    return [meta(job).get("name", ""), job_status(job), completions, duration, _age(job, now),
            *_containers_cells(job), selector_string(spec.get("selector"))]


def networkpolicy_cells(np: dict, now: float | None = None) -> list:
    """printNetworkPolicy: the name, the pod selector (<none> when empty), the age."""
    return [meta(np).get("name", ""), selector_string((np.get("spec") or {}).get("podSelector") or {}) or NONE,
            _age(np, now)]


def pdb_cells(pdb: dict, now: float | None = None) -> list:
    spec = pdb.get("spec") or {}
    na = lambda v: "N/A" if v is None else str(v)  # noqa: E731
    return [meta(pdb).get("name", ""), na(spec.get("minAvailable")), na(spec.get("maxUnavailable")),
            _int((pdb.get("status") or {}).get("disruptionsAllowed")), _age(pdb, now)]


def cronjob_cells(cj: dict, now: float | None = None) -> list:
    """printCronJob: the time zone or <none>, Suspend as True/False, how many active Jobs, the
    last schedule's age or <none>; wide: the job template's containers, images and selector."""
    spec, st = cj.get("spec") or {}, cj.get("status") or {}
    js = (spec.get("jobTemplate") or {}).get("spec") or {}
    last = since(st["lastScheduleTime"], now) if st.get("lastScheduleTime") else NONE
    suspend = "<unset>" if spec.get("suspend") is None else ("True" if spec["suspend"] else "False")
    return [meta(cj).get("name", ""), spec.get("schedule", ""), spec.get("timeZone") or NONE, suspend,
            len(st.get("active") or ()), last, _age(cj, now), *_containers_cells({"spec": js}),
            selector_string(js.get("selector"))]


# ------------------------------------------------------------------ events

def event_times(ev: dict, now: float | None = None) -> tuple[str, str, int]:
    """(last seen, first seen, count) of an event row."""
    first_ts = ev.get("firstTimestamp") or ev.get("eventTime")
    first = since(first_ts, now)
    last = since(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = _int(ev.get("count"))
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    return last, first, count


def event_object(ev: dict) -> str:
    io = ev.get("involvedObject") or {}
    kind = (io.get("kind") or "").lower()
    return f"{kind}/{io['name']}" if io.get("name") else kind


def event_source_cell(ev: dict) -> str:
    src = ev.get("source") or {}
    comp = src.get("component") or ev.get("reportingController") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    return f"{comp}, {host}" if host else comp


def event_cells(ev: dict, now: float | None = None) -> list:
    last, first, count = event_times(ev, now)
    return [last, ev.get("type", ""), ev.get("reason", ""), event_object(ev),
            (ev.get("involvedObject") or {}).get("fieldPath") or "", event_source_cell(ev),
            (ev.get("message") or "").strip(), first, count, meta(ev).get("name", "")]


# ------------------------------------------------------------------ the rest

def namespace_cells(ns: dict, now: float | None = None) -> list:
    return [meta(ns).get("name", ""), (ns.get("status") or {}).get("phase") or "Active", _age(ns, now)]


def configmap_cells(cm: dict, now: float | None = None) -> list:
    return [meta(cm).get("name", ""), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            _age(cm, now)]


def resourcequota_cells(q: dict, now: float | None = None) -> list:
    """kubectl's printResourceQuota: ``resource: used/hard`` of each resource the spec limits, the
    limits.* ones in their own column."""
    from skiff.api.validation_limits import show_quantity
    st = q.get("status") or {}
    used, hard = st.get("used") or {}, st.get("hard") or {}
    cols: dict[str, list] = {"request": [], "limit": []}
    for k in sorted((q.get("spec") or {}).get("hard") or {}):
        col = "limit" if k.split(".")[0] == "limits" and "." in k else "request"
        cols[col].append(f"{k}: {show_quantity(used.get(k, 0))}/{show_quantity(hard.get(k, 0))}")
    return [meta(q).get("name", ""), _age(q, now), ", ".join(cols["request"]), ", ".join(cols["limit"])]


def serviceaccount_cells(sa: dict, now: float | None = None) -> list:
    return [meta(sa).get("name", ""), len(sa.get("secrets") or []), _age(sa, now)]


def secret_cells(s: dict, now: float | None = None) -> list:
    n = len(s.get("data") or {}) + len(s.get("stringData") or {})
    return [meta(s).get("name", ""), s.get("type") or "Opaque", n, _age(s, now)]


def lease_cells(lease: dict, now: float | None = None) -> list:
    return [meta(lease).get("name", ""), (lease.get("spec") or {}).get("holderIdentity") or "", _age(lease, now)]


def default_cells(obj: dict, now: float | None = None) -> list:
    return [meta(obj).get("name", ""), meta(obj).get("creationTimestamp")]


CELLS: dict[str, Callable[[dict, float | None], list]] = {
    "pods": pod_cells, "nodes": node_cells, "deployments": deployment_cells,
    "replicasets": replicaset_cells, "replicationcontrollers": replicationcontroller_cells, "jobs": job_cells, "cronjobs": cronjob_cells, "events": event_cells,
    "namespaces": namespace_cells, "poddisruptionbudgets": pdb_cells, "networkpolicies": networkpolicy_cells,
    "configmaps": configmap_cells, "secrets": secret_cells, "leases": lease_cells,
    "serviceaccounts": serviceaccount_cells, "resourcequotas": resourcequota_cells,
    "daemonsets": daemonset_cells, "controllerrevisions": controllerrevision_cells,
    "statefulsets": statefulset_cells,
}


def cells(plural: str, obj: dict, now: float | None = None) -> list:
    """Every column's cell (the wide form), in the order of :func:`columns`."""
    return CELLS.get(plural, default_cells)(obj, now)


# ------------------------------------------------------------------ the Table document

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
INCLUDE_OBJECT = ("None", "Metadata", "Object")


def partial_metadata(obj: dict, api_version: str = "meta.k8s.io/v1") -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": meta(obj)}


def row(plural: str, obj: dict, include: str = "Metadata", now: float | None = None,
        kind: tuple[str, str] | None = None, api_version: str = "meta.k8s.io/v1") -> dict:
    r: dict[str, Any] = {"cells": cells(plural, obj, now)}
    if plural == "pods":
        c = pod_conditions(obj)
        if c:
            r["conditions"] = c
    if include == "Object":
        if kind and "kind" not in obj:
            obj = {"kind": kind[1], "apiVersion": kind[0], **obj}
        r["object"] = obj
    elif include == "None":
        r["object"] = None
    else:
        r["object"] = partial_metadata(obj, api_version)
    return r


def table(plural: str, objs: list[dict], *, include: str = "Metadata", list_meta: dict | None = None,
          headers: bool = True, kind: tuple[str, str] | None = None,
          api_version: str = "meta.k8s.io/v1") -> dict:
    """A Table of ``objs``. ``list_meta`` carries resourceVersion/continue/remainingItemCount;
    ``headers=False`` leaves columnDefinitions null (later events of a watch); ``kind`` is
    (apiVersion, kind) of the objects, for includeObject=Object rows that lack it."""
    now = time.time()
    md: dict[str, Any] = {}
    for k in ("resourceVersion", "continue", "remainingItemCount"):
        if list_meta and list_meta.get(k) not in (None, ""):
            md[k] = list_meta[k]
    return {"kind": "Table", "apiVersion": api_version, "metadata": md,
            "columnDefinitions": columns(plural) if headers else None,
            "rows": [row(plural, o, include, now, kind, api_version) for o in objs]}


# ------------------------------------------------------------------ Accept negotiation

def _media_ranges(accept: str | None):
    for part in (accept or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        mt = bits[0].lower()
        if not mt:
            continue
        params = {}
        for b in bits[1:]:
            k, _, v = b.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        yield mt, params


def negotiate(accept: str | None, want_as: str, group: str, versions: tuple[str, ...]) -> str | None:
    """The version of ``as=<want_as>;g=<group>`` that ``accept`` prefers, when it prefers that
    to plain JSON (the first acceptable media range wins); else None."""
    for mt, p in _media_ranges(accept):
        if mt not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in p:
            return None                  # plain JSON comes first
        if p.get("as") == want_as and p.get("g") == group and p.get("v") in versions:
            return p["v"]
    return None


def table_version(accept: str | None) -> str | None:
    """"v1" or "v1beta1" when ``accept`` asks for a meta.k8s.io Table."""
    return negotiate(accept, "Table", "meta.k8s.io", ("v1", "v1beta1"))


# ------------------------------------------------------------------ services, endpoints, slices
# (in their own module, which reads the helpers above: imported last, on purpose)

from skiff.api import tables_services as _services  # noqa: E402

COLUMNS.update(_services.COLUMNS)
CELLS.update(_services.CELLS)
host_port, label_string, port_string = _services.host_port, _services.label_string, _services.port_string

from skiff.api import tables_hpa as _hpa  # noqa: E402  (horizontalpodautoscalers)

COLUMNS.update(_hpa.COLUMNS)
CELLS.update(_hpa.CELLS)

from skiff.api import tables_storage as _storage  # noqa: E402  (persistentvolumes, claims, storageclasses)

COLUMNS.update(_storage.COLUMNS)
CELLS.update(_storage.CELLS)

from skiff.api import tables_scheduling as _scheduling  # noqa: E402  (priorityclasses)

COLUMNS.update(_scheduling.COLUMNS)
CELLS.update(_scheduling.CELLS)

from skiff.api import tables_rbac as _rbac  # noqa: E402  (rolebindings, clusterrolebindings)

COLUMNS.update(_rbac.COLUMNS)
CELLS.update(_rbac.CELLS)

from skiff.api import tables_networking as _networking  # noqa: E402  (ingresses, ingressclasses)

COLUMNS.update(_networking.COLUMNS)
CELLS.update(_networking.CELLS)
