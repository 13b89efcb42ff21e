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
CONTAINER = {1: ("name", "str"), 2: ("image", "str"), 3: ("command", "rep_str"), 4: ("args", "rep_str"),
             5: ("workingDir", "str"), 6: ("ports", "rep_msg", CONTAINER_PORT),
             7: ("env", "rep_msg", {1: ("name", "str"), 2: ("value", "str")}),
             8: ("resources", "msg", {1: ("limits", "map_qty"), 2: ("requests", "map_qty")}),
             13: ("terminationMessagePath", "str"), 14: ("imagePullPolicy", "str"), 16: ("stdin", "bool0"),
             17: ("stdinOnce", "bool0"), 18: ("tty", "bool0"), 20: ("terminationMessagePolicy", "str")}
POD_SPEC = {2: ("containers", "rep_msg", CONTAINER), 20: ("initContainers", "rep_msg", CONTAINER),
            3: ("restartPolicy", "str"), 4: ("terminationGracePeriodSeconds", "int_keep"),
            5: ("activeDeadlineSeconds", "int_keep"), 6: ("dnsPolicy", "str"), 7: ("nodeSelector", "map_str"),
            8: ("serviceAccountName", "str"), 9: ("serviceAccount", "str"), 10: ("nodeName", "str"),
            11: ("hostNetwork", "bool0"), 12: ("hostPID", "bool0"), 13: ("hostIPC", "bool0"),
            16: ("hostname", "str"), 17: ("subdomain", "str"), 19: ("schedulerName", "str"),
            24: ("priorityClassName", "str")}
POD_TEMPLATE = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}
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


def _strict(desc: dict, seen: set) -> None:
    if id(desc) in seen or desc is OBJECT_META:
        return
    seen.add(id(desc))
    for spec in desc.values():
        if len(spec) > 2 and isinstance(spec[2], dict):
            _strict(spec[2], seen)


STRICT: set = set()        # ids of the descriptions whose unknown fields are refused
for _d in (DEPLOYMENT, JOB, CRONJOB):
    _strict(_d, STRICT)

KINDS = {("v1", "Namespace"): NAMESPACE, ("v1", "ConfigMap"): CONFIGMAP, ("v1", "Secret"): SECRET,
         ("v1", "Service"): SERVICE, ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
         ("v1", "ResourceQuota"): RESOURCE_QUOTA, ("apps/v1", "Deployment"): DEPLOYMENT, ("batch/v1", "Job"): JOB,
         ("batch/v1", "CronJob"): CRONJOB, ("autoscaling/v1", "HorizontalPodAutoscaler"): HPA_V1,
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SSAR,
         ("authentication.k8s.io/v1", "SelfSubjectReview"): SSR}


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
