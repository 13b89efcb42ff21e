"""Kubernetes protobuf request bodies, for the kinds whose messages are small enough to describe
here: Namespace, ConfigMap, Secret, Service, ServiceAccount, ResourceQuota, SelfSubjectAccessReview and
SelfSubjectReview (what `kubectl create namespace|configmap|secret|service|serviceaccount|quota` and
`kubectl auth can-i|whoami` send), and the Deployment, Job and CronJob fields that `kubectl create
deployment|job|cronjob` (and `create job --from=cronjob/X`) write: those three descriptions are
strict, a field they do not describe that carries a value is refused rather than dropped. Any other
kind raises :class:`Unsupported`, and the API server answers 415 with what to do instead.

A body is ``k8s\\0`` + a ``runtime.Unknown`` message (typeMeta{apiVersion, kind}, raw,
contentEncoding, contentType); ``raw`` is the object's own message. Field numbers follow the
Kubernetes API's generated.proto files. Decoding gives the same dict the JSON form decodes to.
"""
from __future__ import annotations

import base64
from typing import Any

__all__ = ["MAGIC", "Unsupported", "decode"]

MAGIC = b"k8s\x00"


class Unsupported(ValueError):
    """A protobuf body of a kind this module does not describe (or not protobuf at all)."""

    def __init__(self, message: str, kind: str = ""):
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------ the wire format

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise Unsupported("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise Unsupported("varint too long")


def fields(buf: bytes):
    """(field number, wire type, value) for each field of one message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise Unsupported("truncated field")
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise Unsupported(f"wire type {wt} not supported")
        yield num, wt, v


# ------------------------------------------------------------------ message descriptions
# name: (json field, type[, nested description]); types: str, bytes (base64 in JSON), int,
# bool, bool0 (a bool whose JSON form omits false), msg, map_str (map<string,string>), map_bytes
# (map<string,bytes>), map_qty (map<string,Quantity>), rep_str, rep_msg, time (meta.v1.Time: seconds, nanos), intstr
# (intstr.IntOrString: type, intVal, strVal).

TYPE_META = {1: ("apiVersion", "str"), 2: ("kind", "str")}
UNKNOWN = {1: ("typeMeta", "msg", TYPE_META), 2: ("raw", "raw"), 3: ("contentEncoding", "str"),
           4: ("contentType", "str")}
TIME = {1: ("seconds", "int"), 2: ("nanos", "int")}
OWNER_REF = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
             6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
OBJECT_META = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
               5: ("uid", "str"), 6: ("resourceVersion", "str"), 7: ("generation", "int"),
               8: ("creationTimestamp", "time"), 11: ("labels", "map_str"), 12: ("annotations", "map_str"),
               13: ("ownerReferences", "rep_msg", OWNER_REF), 14: ("finalizers", "rep_str")}
NAMESPACE = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", {1: ("finalizers", "rep_str")})}
CONFIGMAP = {1: ("metadata", "msg", OBJECT_META), 2: ("data", "map_str"), 3: ("binaryData", "map_bytes"),
             4: ("immutable", "bool")}
SECRET = {1: ("metadata", "msg", OBJECT_META), 2: ("data", "map_bytes"), 3: ("type", "str"),
          4: ("stringData", "map_str"), 5: ("immutable", "bool")}
RESOURCE_ATTRS = {1: ("namespace", "str"), 2: ("verb", "str"), 3: ("group", "str"), 4: ("version", "str"),
                  5: ("resource", "str"), 6: ("subresource", "str"), 7: ("name", "str")}
NON_RESOURCE_ATTRS = {1: ("path", "str"), 2: ("verb", "str")}
SSAR = {1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("resourceAttributes", "msg", RESOURCE_ATTRS),
                            2: ("nonResourceAttributes", "msg", NON_RESOURCE_ATTRS)})}
SSR = {1: ("metadata", "msg", OBJECT_META)}
INT_OR_STRING = {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "str")}
SERVICE_PORT = {1: ("name", "str"), 2: ("protocol", "str"), 6: ("appProtocol", "str"), 3: ("port", "int"),
                4: ("targetPort", "intstr"), 5: ("nodePort", "int")}
SERVICE_SPEC = {1: ("ports", "rep_msg", SERVICE_PORT), 2: ("selector", "map_str"), 3: ("clusterIP", "str"),
                18: ("clusterIPs", "rep_str"), 4: ("type", "str"), 5: ("externalIPs", "rep_str"),
                7: ("sessionAffinity", "str"), 8: ("loadBalancerIP", "str"),
                9: ("loadBalancerSourceRanges", "rep_str"), 10: ("externalName", "str"),
                11: ("externalTrafficPolicy", "str"), 12: ("healthCheckNodePort", "int"),
                13: ("publishNotReadyAddresses", "bool0"),
                14: ("sessionAffinityConfig", "msg", {1: ("clientIP", "msg", {1: ("timeoutSeconds", "int")})}),
                19: ("ipFamilies", "rep_str"), 17: ("ipFamilyPolicy", "str"),
                20: ("allocateLoadBalancerNodePorts", "bool"), 21: ("loadBalancerClass", "str"),
                22: ("internalTrafficPolicy", "str"), 23: ("trafficDistribution", "str")}
# status (3) is not read: the server sets a new service's status itself
SERVICE = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", SERVICE_SPEC)}

OBJECT_REF = {1: ("kind", "str"), 2: ("namespace", "str"), 3: ("name", "str"), 4: ("uid", "str"),
              5: ("apiVersion", "str"), 6: ("resourceVersion", "str"), 7: ("fieldPath", "str")}
SERVICE_ACCOUNT = {1: ("metadata", "msg", OBJECT_META), 2: ("secrets", "rep_msg", OBJECT_REF),
                   3: ("imagePullSecrets", "rep_msg", {1: ("name", "str")}),
                   4: ("automountServiceAccountToken", "bool")}

SCOPE_REQUIREMENT = {1: ("scopeName", "str"), 2: ("operator", "str"), 3: ("values", "rep_str")}
RESOURCE_QUOTA = {1: ("metadata", "msg", OBJECT_META),
                  2: ("spec", "msg", {1: ("hard", "map_qty"), 2: ("scopes", "rep_str"),
                                      3: ("scopeSelector", "msg",
                                          {1: ("matchExpressions", "rep_msg", SCOPE_REQUIREMENT)})})}

# autoscaling/v1 (what `kubectl autoscale` sends); status (3) is not read: the controller writes it
HPA_V1 = {1: ("metadata", "msg", OBJECT_META),
          2: ("spec", "msg", {1: ("scaleTargetRef", "msg", {1: ("kind", "str"), 2: ("name", "str"),
                                                             3: ("apiVersion", "str")}),
                              2: ("minReplicas", "int"), 3: ("maxReplicas", "int"),
                              4: ("targetCPUUtilizationPercentage", "int")})}

# -- workloads (kubectl create deployment|job|cronjob): the fields those commands (and create job
# --from=cronjob/X, which copies a job template) write; any other field that carries a value is
# refused (Unsupported: 415 with what to do), never dropped: these descriptions are strict
LABEL_SELECTOR = {1: ("matchLabels", "map_str"),
                  2: ("matchExpressions", "rep_msg", {1: ("key", "str"), 2: ("operator", "str"),
                                                      3: ("values", "rep_str")})}
CONTAINER_PORT = {1: ("name", "str"), 2: ("hostPort", "int"), 3: ("containerPort", "int"), 4: ("protocol", "str"),
                  5: ("hostIP", "str")}
# core/v1 pods (field numbers from k8s.io/api core/v1 generated.proto). Go pointer fields
# (optional in the API: *bool, *int64) keep a present false/0 ("bool", "int_keep"); plain Go
# values are always written, so their zero is the JSON form's omitted field ("bool0", "int").
LOCAL_REF = {1: ("name", "str")}
KEY_TO_PATH = {1: ("key", "str"), 2: ("path", "str"), 3: ("mode", "int_keep")}
FIELD_REF = {1: ("apiVersion", "str"), 2: ("fieldPath", "str")}
RESOURCE_FIELD_REF = {1: ("containerName", "str"), 2: ("resource", "str"), 3: ("divisor", "qty")}
KEY_SELECTOR = {1: ("", "inline", LOCAL_REF), 2: ("key", "str"), 3: ("optional", "bool")}
ENV_VAR = {1: ("name", "str"), 2: ("value", "str"),
           3: ("valueFrom", "msg", {1: ("fieldRef", "msg", FIELD_REF), 2: ("resourceFieldRef", "msg", RESOURCE_FIELD_REF),
                                    3: ("configMapKeyRef", "msg", KEY_SELECTOR), 4: ("secretKeyRef", "msg", KEY_SELECTOR)})}
ENV_SOURCE = {1: ("", "inline", LOCAL_REF), 2: ("optional", "bool")}
ENV_FROM = {1: ("prefix", "str"), 2: ("configMapRef", "msg", ENV_SOURCE), 3: ("secretRef", "msg", ENV_SOURCE)}
HTTP_GET = {1: ("path", "str"), 2: ("port", "intstr"), 3: ("host", "str"), 4: ("scheme", "str"),
            5: ("httpHeaders", "rep_msg", {1: ("name", "str"), 2: ("value", "str")})}
TCP_SOCKET = {1: ("port", "intstr"), 2: ("host", "str")}
EXEC = {1: ("command", "rep_str")}
PROBE = {1: ("", "inline", {1: ("exec", "msg", EXEC), 2: ("httpGet", "msg", HTTP_GET), 3: ("tcpSocket", "msg", TCP_SOCKET),
                            4: ("grpc", "msg", {1: ("port", "int"), 2: ("service", "str")})}),
         2: ("initialDelaySeconds", "int"), 3: ("timeoutSeconds", "int"), 4: ("periodSeconds", "int"),
         5: ("successThreshold", "int"), 6: ("failureThreshold", "int"), 7: ("terminationGracePeriodSeconds", "int_keep")}
LIFECYCLE_HANDLER = {1: ("exec", "msg", EXEC), 2: ("httpGet", "msg", HTTP_GET), 3: ("tcpSocket", "msg", TCP_SOCKET),
                     4: ("sleep", "msg", {1: ("seconds", "int_keep")})}
SECCOMP = {1: ("type", "str"), 2: ("localhostProfile", "str")}
SELINUX = {1: ("user", "str"), 2: ("role", "str"), 3: ("type", "str"), 4: ("level", "str")}
SECURITY_CONTEXT = {1: ("capabilities", "msg", {1: ("add", "rep_str"), 2: ("drop", "rep_str")}),
                    2: ("privileged", "bool"), 3: ("seLinuxOptions", "msg", SELINUX), 4: ("runAsUser", "int_keep"),
                    5: ("runAsNonRoot", "bool"), 6: ("readOnlyRootFilesystem", "bool"),
                    7: ("allowPrivilegeEscalation", "bool"), 8: ("runAsGroup", "int_keep"), 9: ("procMount", "str"),
                    11: ("seccompProfile", "msg", SECCOMP), 12: ("appArmorProfile", "msg", SECCOMP)}
VOLUME_MOUNT = {1: ("name", "str"), 2: ("readOnly", "bool0"), 3: ("mountPath", "str"), 4: ("subPath", "str"),
                5: ("mountPropagation", "str"), 6: ("subPathExpr", "str"), 7: ("recursiveReadOnly", "str")}
CONTAINER = {1: ("name", "str"), 2: ("image", "str"), 3: ("command", "rep_str"), 4: ("args", "rep_str"),
             5: ("workingDir", "str"), 6: ("ports", "rep_msg", CONTAINER_PORT),
             7: ("env", "rep_msg", ENV_VAR), 19: ("envFrom", "rep_msg", ENV_FROM),
             8: ("resources", "msg", {1: ("limits", "map_qty"), 2: ("requests", "map_qty")}),
             9: ("volumeMounts", "rep_msg", VOLUME_MOUNT),
             10: ("livenessProbe", "msg", PROBE), 11: ("readinessProbe", "msg", PROBE), 22: ("startupProbe", "msg", PROBE),
             12: ("lifecycle", "msg", {1: ("postStart", "msg", LIFECYCLE_HANDLER), 2: ("preStop", "msg", LIFECYCLE_HANDLER)}),
             13: ("terminationMessagePath", "str"), 14: ("imagePullPolicy", "str"),
             15: ("securityContext", "msg", SECURITY_CONTEXT), 16: ("stdin", "bool0"),
             17: ("stdinOnce", "bool0"), 18: ("tty", "bool0"), 20: ("terminationMessagePolicy", "str"),
             24: ("restartPolicy", "str")}
EPHEMERAL_CONTAINER = {1: ("", "inline", CONTAINER), 2: ("targetContainerName", "str")}
DOWNWARD_FILE = {1: ("path", "str"), 2: ("fieldRef", "msg", FIELD_REF), 3: ("resourceFieldRef", "msg", RESOURCE_FIELD_REF),
                 4: ("mode", "int_keep")}
VOLUME = {1: ("name", "str"),
          2: ("", "inline", {
              1: ("hostPath", "msg", {1: ("path", "str"), 2: ("type", "str")}),
              2: ("emptyDir", "msg", {1: ("medium", "str"), 2: ("sizeLimit", "qty")}),
              6: ("secret", "msg", {1: ("secretName", "str"), 2: ("items", "rep_msg", KEY_TO_PATH),
                                    3: ("defaultMode", "int_keep"), 4: ("optional", "bool")}),
              10: ("persistentVolumeClaim", "msg", {1: ("claimName", "str"), 2: ("readOnly", "bool0")}),
              16: ("downwardAPI", "msg", {1: ("items", "rep_msg", DOWNWARD_FILE),
                                          2: ("defaultMode", "int_keep")}),
              19: ("configMap", "msg", {1: ("", "inline", LOCAL_REF), 2: ("items", "rep_msg", KEY_TO_PATH),
                                        3: ("defaultMode", "int_keep"), 4: ("optional", "bool")}),
              26: ("projected", "msg", {1: ("sources", "rep_msg", {
                  1: ("secret", "msg", {1: ("", "inline", LOCAL_REF), 2: ("items", "rep_msg", KEY_TO_PATH),
                                        4: ("optional", "bool")}),
                  2: ("downwardAPI", "msg", {1: ("items", "rep_msg", DOWNWARD_FILE)}),
                  3: ("configMap", "msg", {1: ("", "inline", LOCAL_REF), 2: ("items", "rep_msg", KEY_TO_PATH),
                                           4: ("optional", "bool")}),
                  4: ("serviceAccountToken", "msg", {1: ("audience", "str"), 2: ("expirationSeconds", "int_keep"),
                                                     3: ("path", "str")})}),
                                        2: ("defaultMode", "int_keep")})})}
NODE_SELECTOR_TERM = {1: ("matchExpressions", "rep_msg", {1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "rep_str")}),
                      2: ("matchFields", "rep_msg", {1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "rep_str")})}
POD_AFFINITY_TERM = {1: ("labelSelector", "msg", LABEL_SELECTOR), 2: ("namespaces", "rep_str"), 3: ("topologyKey", "str"),
                     4: ("namespaceSelector", "msg", LABEL_SELECTOR), 5: ("matchLabelKeys", "rep_str"),
                     6: ("mismatchLabelKeys", "rep_str")}
POD_AFFINITY = {1: ("requiredDuringSchedulingIgnoredDuringExecution", "rep_msg", POD_AFFINITY_TERM),
                2: ("preferredDuringSchedulingIgnoredDuringExecution", "rep_msg",
                    {1: ("weight", "int"), 2: ("podAffinityTerm", "msg", POD_AFFINITY_TERM)})}
AFFINITY = {1: ("nodeAffinity", "msg", {
                1: ("requiredDuringSchedulingIgnoredDuringExecution", "msg", {1: ("nodeSelectorTerms", "rep_msg", NODE_SELECTOR_TERM)}),
                2: ("preferredDuringSchedulingIgnoredDuringExecution", "rep_msg",
                    {1: ("weight", "int"), 2: ("preference", "msg", NODE_SELECTOR_TERM)})}),
            2: ("podAffinity", "msg", POD_AFFINITY), 3: ("podAntiAffinity", "msg", POD_AFFINITY)}
POD_SECURITY_CONTEXT = {1: ("seLinuxOptions", "msg", SELINUX), 2: ("runAsUser", "int_keep"), 3: ("runAsNonRoot", "bool"),
                        4: ("supplementalGroups", "rep_int"), 5: ("fsGroup", "int_keep"), 6: ("runAsGroup", "int_keep"),
                        7: ("sysctls", "rep_msg", {1: ("name", "str"), 2: ("value", "str")}),
                        9: ("fsGroupChangePolicy", "str"), 10: ("seccompProfile", "msg", SECCOMP),
                        11: ("appArmorProfile", "msg", SECCOMP), 12: ("supplementalGroupsPolicy", "str")}
POD_SPEC = {1: ("volumes", "rep_msg", VOLUME),
            2: ("containers", "rep_msg", CONTAINER), 20: ("initContainers", "rep_msg", CONTAINER),
            34: ("ephemeralContainers", "rep_msg", EPHEMERAL_CONTAINER),
            3: ("restartPolicy", "str"), 4: ("terminationGracePeriodSeconds", "int_keep"),
            5: ("activeDeadlineSeconds", "int_keep"), 6: ("dnsPolicy", "str"), 7: ("nodeSelector", "map_str"),
            8: ("serviceAccountName", "str"), 9: ("serviceAccount", "str"), 10: ("nodeName", "str"),
            11: ("hostNetwork", "bool0"), 12: ("hostPID", "bool0"), 13: ("hostIPC", "bool0"),
            14: ("securityContext", "msg", POD_SECURITY_CONTEXT), 15: ("imagePullSecrets", "rep_msg", LOCAL_REF),
            16: ("hostname", "str"), 17: ("subdomain", "str"), 18: ("affinity", "msg", AFFINITY),
            19: ("schedulerName", "str"), 21: ("automountServiceAccountToken", "bool"),
            22: ("tolerations", "rep_msg", {1: ("key", "str"), 2: ("operator", "str"), 3: ("value", "str"),
                                            4: ("effect", "str"), 5: ("tolerationSeconds", "int_keep")}),
            23: ("hostAliases", "rep_msg", {1: ("ip", "str"), 2: ("hostnames", "rep_str")}),
            24: ("priorityClassName", "str"), 25: ("priority", "int_keep"),
            26: ("dnsConfig", "msg", {1: ("nameservers", "rep_str"), 2: ("searches", "rep_str"),
                                      3: ("options", "rep_msg", {1: ("name", "str"), 2: ("value", "str")})}),
            27: ("shareProcessNamespace", "bool"), 28: ("readinessGates", "rep_msg", {1: ("conditionType", "str")}),
            29: ("runtimeClassName", "str"), 30: ("enableServiceLinks", "bool"), 31: ("preemptionPolicy", "str"),
            33: ("topologySpreadConstraints", "rep_msg", {
                1: ("maxSkew", "int"), 2: ("topologyKey", "str"), 3: ("whenUnsatisfiable", "str"),
                4: ("labelSelector", "msg", LABEL_SELECTOR), 5: ("minDomains", "int_keep"),
                6: ("nodeAffinityPolicy", "str"), 7: ("nodeTaintsPolicy", "str"), 8: ("matchLabelKeys", "rep_str")}),
            35: ("setHostnameAsFQDN", "bool"), 36: ("os", "msg", {1: ("name", "str")}), 37: ("hostUsers", "bool"),
            38: ("schedulingGates", "rep_msg", {1: ("name", "str")})}
POD_TEMPLATE = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}
POD = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC), 3: ("status", "skip")}
# kubectl create priorityclass
PRIORITY_CLASS = {1: ("metadata", "msg", OBJECT_META), 2: ("value", "int_keep"), 3: ("globalDefault", "bool0"),
                  4: ("description", "str"), 5: ("preemptionPolicy", "str")}
# kubectl create poddisruptionbudget
PDB = {1: ("metadata", "msg", OBJECT_META),
       2: ("spec", "msg", {1: ("minAvailable", "intstr"), 2: ("selector", "msg", LABEL_SELECTOR),
                           3: ("maxUnavailable", "intstr"), 4: ("unhealthyPodEvictionPolicy", "str")}),
       3: ("status", "skip")}
DEPLOYMENT = {1: ("metadata", "msg", OBJECT_META),
              2: ("spec", "msg", {1: ("replicas", "int_keep"), 2: ("selector", "msg", LABEL_SELECTOR),
                                  3: ("template", "msg", POD_TEMPLATE),
                                  4: ("strategy", "msg", {1: ("type", "str"), 2: ("rollingUpdate", "msg", {
                                      1: ("maxUnavailable", "intstr"), 2: ("maxSurge", "intstr")})}),
                                  5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int_keep"),
                                  7: ("paused", "bool0"), 9: ("progressDeadlineSeconds", "int_keep")}),
              3: ("status", "skip")}
JOB_SPEC = {1: ("parallelism", "int_keep"), 2: ("completions", "int_keep"), 3: ("activeDeadlineSeconds", "int_keep"),
            4: ("selector", "msg", LABEL_SELECTOR), 5: ("manualSelector", "bool"), 6: ("template", "msg", POD_TEMPLATE),
            7: ("backoffLimit", "int_keep"), 8: ("ttlSecondsAfterFinished", "int_keep"), 9: ("completionMode", "str"),
            10: ("suspend", "bool"), 14: ("podReplacementPolicy", "str"), 15: ("managedBy", "str")}
JOB = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC), 3: ("status", "skip")}
CRONJOB = {1: ("metadata", "msg", OBJECT_META),
           2: ("spec", "msg", {1: ("schedule", "str"), 8: ("timeZone", "str"), 2: ("startingDeadlineSeconds", "int_keep"),
                               3: ("concurrencyPolicy", "str"), 4: ("suspend", "bool"),
                               5: ("jobTemplate", "msg", {1: ("metadata", "msg", OBJECT_META),
                                                          2: ("spec", "msg", JOB_SPEC)}),
                               6: ("successfulJobsHistoryLimit", "int_keep"),
                               7: ("failedJobsHistoryLimit", "int_keep")}),
           3: ("status", "skip")}

# kubectl create role|clusterrole|rolebinding|clusterrolebinding (rbac/v1) and create token
POLICY_RULE = {1: ("verbs", "rep_str"), 2: ("apiGroups", "rep_str"), 3: ("resources", "rep_str"),
               4: ("resourceNames", "rep_str"), 5: ("nonResourceURLs", "rep_str")}
ROLE = {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rep_msg", POLICY_RULE)}
CLUSTER_ROLE = {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rep_msg", POLICY_RULE),
                3: ("aggregationRule", "msg", {1: ("clusterRoleSelectors", "rep_msg", LABEL_SELECTOR)})}
ROLE_BINDING = {1: ("metadata", "msg", OBJECT_META),
                2: ("subjects", "rep_msg", {1: ("kind", "str"), 2: ("apiGroup", "str"), 3: ("name", "str"),
                                            4: ("namespace", "str")}),
                3: ("roleRef", "msg", {1: ("apiGroup", "str"), 2: ("kind", "str"), 3: ("name", "str")})}
TOKEN_REQUEST = {1: ("metadata", "msg", OBJECT_META),
                 2: ("spec", "msg", {1: ("audiences", "rep_str"), 4: ("expirationSeconds", "int_keep"),
                                     3: ("boundObjectRef", "msg", {1: ("kind", "str"), 2: ("apiVersion", "str"),
                                                                   3: ("name", "str"), 4: ("uid", "str")})}),
                 3: ("status", "skip")}
SSRR = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", {1: ("namespace", "str")}), 3: ("status", "skip")}


def _strict(desc: dict, seen: set) -> None:
    if id(desc) in seen or desc is OBJECT_META:
        return
    seen.add(id(desc))
    for spec in desc.values():
        if len(spec) > 2 and isinstance(spec[2], dict):
            _strict(spec[2], seen)


STRICT: set = set()        # ids of the descriptions whose unknown fields are refused
for _d in (DEPLOYMENT, JOB, CRONJOB, POD, PDB, PRIORITY_CLASS, ROLE, CLUSTER_ROLE, ROLE_BINDING, TOKEN_REQUEST):
    _strict(_d, STRICT)

KINDS = {("v1", "Namespace"): NAMESPACE, ("v1", "ConfigMap"): CONFIGMAP, ("v1", "Secret"): SECRET,
         ("v1", "Service"): SERVICE, ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
         ("v1", "ResourceQuota"): RESOURCE_QUOTA, ("v1", "Pod"): POD, ("policy/v1", "PodDisruptionBudget"): PDB,
         ("scheduling.k8s.io/v1", "PriorityClass"): PRIORITY_CLASS, ("apps/v1", "Deployment"): DEPLOYMENT, ("batch/v1", "Job"): JOB,
         ("batch/v1", "CronJob"): CRONJOB, ("autoscaling/v1", "HorizontalPodAutoscaler"): HPA_V1,
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SSAR,
         ("authentication.k8s.io/v1", "SelfSubjectReview"): SSR,
         ("rbac.authorization.k8s.io/v1", "Role"): ROLE, ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
         ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
         ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ROLE_BINDING,
         ("authentication.k8s.io/v1", "TokenRequest"): TOKEN_REQUEST,
         ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SSRR}


def _time(v: dict) -> str:
    import datetime
    t = datetime.datetime.fromtimestamp(v.get("seconds", 0), datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(buf: bytes) -> tuple[str, bytes]:
    k, v = "", b""
    for num, _wt, val in fields(buf):
        if num == 1:
            k = val.decode()
        elif num == 2:
            v = val
    return k, v


def message(buf: bytes, desc: dict, path: str = "") -> dict:
    out: dict[str, Any] = {}
    for num, wt, val in fields(buf):
        spec = desc.get(num)
        if spec is None:
            if id(desc) in STRICT and val not in (b"", 0):
                raise Unsupported(f"{path or 'the object'}: field {num} is not one skiff reads from protobuf")
            continue  # a field skiff does not read (status, selfLink, managedFields...)
        name, typ = spec[0], spec[1]
        if typ == "skip" or (typ == "str" and val == b"") or (typ == "int" and val == 0):
            continue  # Go writes empty values; their JSON form omits them (omitempty): so do we
        try:
            if typ == "str":
                out[name] = val.decode()
            elif typ in ("bytes", "raw"):
                out[name] = val if typ == "raw" else base64.b64encode(val).decode()
            elif typ in ("int", "int_keep"):       # int_keep: an optional field, written when set, 0 too
                out[name] = val if val < 2 ** 63 else val - 2 ** 64
            elif typ == "bool":
                out[name] = bool(val)
            elif typ == "bool0":
                if val:
                    out[name] = True
            elif typ == "intstr":
                v = message(val, INT_OR_STRING)
                out[name] = v.get("strVal", "") if v.get("type") == 1 else v.get("intVal", 0)
            elif typ == "msg":
                out[name] = message(val, spec[2], f"{path}.{name}".lstrip("."))
            elif typ == "inline":           # an embedded Go struct: its fields sit at this level in JSON
                out.update(message(val, spec[2], path))
            elif typ == "qty":              # resource.Quantity{string}
                out[name] = message(val, {1: ("string", "str")}).get("string", "")
            elif typ == "rep_int":
                out.setdefault(name, []).append(val if val < 2 ** 63 else val - 2 ** 64)
            elif typ == "time":
                t = message(val, TIME)
                if t.get("seconds") or t.get("nanos"):      # an empty Time is Go's zero time: unset
                    out[name] = _time(t)
            elif typ == "rep_str":
                out.setdefault(name, []).append(val.decode())
            elif typ == "rep_msg":
                out.setdefault(name, []).append(message(val, spec[2], f"{path}.{name}".lstrip(".")))
            elif typ == "map_qty":          # map<string, resource.Quantity{string}>
                k, v = _map_entry(val)
                out.setdefault(name, {})[k] = message(v, {1: ("string", "str")}).get("string", "")
            elif typ in ("map_str", "map_bytes"):
                k, v = _map_entry(val)
                out.setdefault(name, {})[k] = v.decode() if typ == "map_str" else base64.b64encode(v).decode()
        except (AttributeError, UnicodeDecodeError, TypeError) as e:
            raise Unsupported(f"field {name}: {e}") from None
    return out


def decode(body: bytes) -> dict:
    """The object a ``k8s\\0`` protobuf body carries, as its JSON form."""
    if body[:4] != MAGIC:
        raise Unsupported("not a Kubernetes protobuf body (no k8s\\0 prefix)")
    env = message(body[4:], UNKNOWN)
    tm = env.get("typeMeta") or {}
    av, kind = tm.get("apiVersion", ""), tm.get("kind", "")
    if env.get("contentEncoding"):
        raise Unsupported(f"content encoding {env['contentEncoding']!r} not supported", kind)
    desc = KINDS.get((av, kind))
    if desc is None:
        raise Unsupported(f"{kind or 'this kind'} ({av or '?'}) in protobuf", kind)
    try:
        obj = message(env.get("raw") or b"", desc)
    except Unsupported as e:
        raise Unsupported(str(e), kind) from None
    return {"apiVersion": av, "kind": kind, **obj}


from skiff.api import protobuf_networking as _networking  # noqa: E402  (Ingress, IngressClass)

for _d in _networking.KINDS.values():
    _strict(_d, STRICT)
KINDS.update(_networking.KINDS)
