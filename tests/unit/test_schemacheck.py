"""The compiled valid-or-not schema check (skiff.api.schemacheck) against jsonschema, and
validate()'s use of it as a fast path."""
import copy
import random
import time

import jsonschema
import pytest
import yaml

from skiff.api import validation
from skiff.api.schemacheck import UnsupportedSchema, compile_schema, json_equal
from skiff.api.validation import ValidationError, validate
from skiff.controller.admission import apply_defaults

SCHEMAS = validation._load_schemas()
KIND_FILES = sorted(k.schema_file for k in validation.KINDS.values())


def inlined(f):
    return validation.inline_refs(SCHEMAS, f)


# ---------------------------------------------------------------- realistic objects

POD = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: web-with-sidecar
  namespace: shop
  uid: 6f1c
  resourceVersion: "42"
  generation: 1
  creationTimestamp: "2024-01-02T03:04:05Z"
  deletionTimestamp: null
  finalizers: [skiff.dev/agent]
  labels: {app: web, app.kubernetes.io/name: web, tier: ""}
  annotations: {example.com/owner: "team-a"}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, uid: u1, controller: true, blockOwnerDeletion: true}
  managedFields:
  - {manager: kubectl, operation: Apply, fieldsV1: {"f:spec": {}}}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 10
  activeDeadlineSeconds: 600
  nodeSelector: {kubernetes.io/hostname: host-1}
  hostname: web
  hostAliases: [{ip: 10.0.0.1, hostnames: [db, db.local]}]
  dnsConfig: {nameservers: [1.1.1.1], searches: [svc.local], options: [{name: ndots, value: "2"}]}
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 2000
    supplementalGroups: [3000, 4000]
    sysctls: [{name: net.ipv4.ip_forward, value: "1"}]
    seccompProfile: {type: RuntimeDefault}
  tolerations:
  - {key: example.com/gpu, operator: Exists, effect: NoSchedule}
  readinessGates: [{conditionType: example.com/ready}]
  imagePullSecrets: [{name: regcred}]
  os: {name: linux}
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
  - {name: logs, hostPath: {path: /var/log/web, type: DirectoryOrCreate}}
  - {name: cfg, configMap: {name: web-config, items: [{key: nginx.conf, path: nginx.conf, mode: 420}],
                             defaultMode: 420, optional: false}}
  - {name: tls, secret: {secretName: web-tls, defaultMode: 256}}
  initContainers:
  - name: init
    image: busybox
    command: ["sh", "-c", "echo hi > /shared/index.html"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: web
    image: docker.io/library/nginx:1.25
    workingDir: /usr/share/nginx/html
    env:
    - {name: MODE, value: prod}
    - name: POD_NAME
      valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}
    - name: CPU_LIMIT
      valueFrom: {resourceFieldRef: {containerName: web, resource: limits.cpu, divisor: 1m}}
    - name: LEVEL
      valueFrom: {configMapKeyRef: {name: web-config, key: level, optional: true}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: web-secret, key: password}}
    envFrom:
    - {prefix: CFG_, configMapRef: {name: web-config, optional: true}}
    - {secretRef: {name: web-secret}}
    ports:
    - {containerPort: 80, name: http}
    - {containerPort: 8443, hostPort: 8443, protocol: TCP, name: https, hostIP: 0.0.0.0}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi, ephemeral-storage: 1Gi}
    volumeMounts:
    - {name: shared, mountPath: /usr/share/nginx/html, readOnly: true}
    - {name: cfg, mountPath: /etc/nginx/conf.d, mountPropagation: None}
    livenessProbe:
      httpGet: {path: /healthz, port: http, scheme: HTTP, httpHeaders: [{name: X-Probe, value: "1"}]}
      initialDelaySeconds: 3
      periodSeconds: 3
    readinessProbe:
      tcpSocket: {port: 80}
      timeoutSeconds: 2
    startupProbe:
      exec: {command: [cat, /tmp/ready]}
      failureThreshold: 30
    lifecycle:
      postStart: {exec: {command: [sh, -c, "true"]}}
      preStop: {sleep: {seconds: 5}}
    securityContext:
      runAsUser: 1000
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      seLinuxOptions: {level: "s0:c123,c456"}
    terminationMessagePolicy: FallbackToLogsOnError
  - name: sidecar
    image: busybox:1.36
    args: [sh, -c, "while true; do wget -qO- localhost; sleep 5; done"]
    resources:
      limits: {cpu: 0.5, memory: 1e8}
    readinessProbe:
      grpc: {port: 9090, service: health}
    volumeMounts: [{name: logs, mountPath: /logs}]
    stdin: true
    tty: true
status:
  phase: Running
  podIP: 10.88.0.5
  podIPs: [{ip: 10.88.0.5}]
  hostIP: 192.168.1.2
  conditions: [{type: Ready, status: "True", lastTransitionTime: "2024-01-02T03:04:06Z"}]
  containerStatuses:
  - {name: web, ready: true, restartCount: 0, state: {running: {startedAt: "2024-01-02T03:04:06Z"}},
     lastState: {}, image: "nginx:1.25", imageID: "sha256:ab"}
  startTime: "2024-01-02T03:04:05Z"
  qosClass: Burstable
""")

NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "host-1.example.com", "uid": "n1", "resourceVersion": "7",
                 "labels": {"kubernetes.io/hostname": "host-1", "kubernetes.io/os": "linux",
                            "node-role.kubernetes.io/control-plane": ""},
                 "annotations": {"skiff.dev/agent-version": "0.1"}},
    "spec": {"podCIDR": "10.88.1.0/24", "podCIDRs": ["10.88.1.0/24"], "providerID": "skiff://host-1",
             "unschedulable": False,
             "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule",
                         "timeAdded": "2024-01-02T03:04:05Z"},
                        {"key": "k", "value": "v", "effect": "NoExecute", "timeAdded": None}]},
    "status": {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
        "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}, {"type": "Hostname", "address": "host-1"}],
        "conditions": [{"type": t, "status": "False" if t != "Ready" else "True", "reason": "KubeletReady",
                        "message": "ok", "lastHeartbeatTime": "2024-01-02T03:04:05Z",
                        "lastTransitionTime": "2024-01-02T03:04:05Z"}
                       for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")],
        "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
                     "osImage": "Debian", "containerRuntimeVersion": "skiff://0.1", "kubeletVersion": "v1.30.0",
                     "operatingSystem": "linux", "architecture": "amd64"},
        "images": [{"names": [f"docker.io/library/img{i}:latest"], "sizeBytes": 1000000 + i} for i in range(20)],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    },
}

EVENT = {
    "apiVersion": "v1", "kind": "Event",
    "metadata": {"name": "nginx.17a2b3c4d5", "namespace": "default", "uid": "e1", "resourceVersion": "9",
                 "creationTimestamp": "2024-01-02T03:04:05Z"},
    "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "nginx", "namespace": "default", "uid": "u",
                       "resourceVersion": "3", "fieldPath": "spec.containers{nginx}"},
    "reason": "Scheduled", "message": "Successfully assigned default/nginx to host-1",
    "source": {"component": "default-scheduler", "host": "host-1"}, "count": 1, "type": "Normal",
    "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:05Z", "eventTime": None,
    "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:05.000000Z"},
    "action": "Binding", "reportingComponent": "default-scheduler", "reportingInstance": "cp-1",
    "related": {"kind": "Node", "name": "host-1"},
}

LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": {"name": "host-1", "namespace": "kube-node-lease",
                      "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "host-1", "uid": "n1"}]},
         "spec": {"holderIdentity": "host-1", "leaseDurationSeconds": 40, "acquireTime": None,
                  "renewTime": "2024-01-02T03:04:05.000000Z", "leaseTransitions": 0}}

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
             "data": {"nginx.conf": "server { listen 80; }", "level": "debug"},
             "binaryData": {"logo.png": "iVBORw0KGgo="}, "immutable": False}

SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": "shop"},
          "type": "Opaque", "data": {"password": "aHVudGVyMg=="}, "immutable": True}


def _template():
    t = copy.deepcopy({"metadata": {"labels": {"app": "web"}}, "spec": POD["spec"]})
    t["spec"]["restartPolicy"] = "Always"
    del t["spec"]["activeDeadlineSeconds"]
    return t


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "shop", "generation": 3},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                                                   "matchExpressions": [{"key": "app", "operator": "In",
                                                                         "values": ["web"]}]},
                       "template": _template(), "minReadySeconds": 0, "revisionHistoryLimit": 10,
                       "paused": False, "progressDeadlineSeconds": 600,
                       "strategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}},
              "status": {"replicas": 3, "readyReplicas": 3, "observedGeneration": 3}}

REPLICASET = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "web-abc", "namespace": "shop",
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                "uid": "d1", "controller": True}]},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": _template(),
                       "minReadySeconds": 5},
              "status": {"replicas": 2}}


JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop", "uid": "j1"},
       "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 4, "activeDeadlineSeconds": 600,
                "ttlSecondsAfterFinished": 100,
                "template": dict(_template(), spec=dict(_template()["spec"], restartPolicy="Never"))},
       "status": {"active": 1, "succeeded": 1, "startTime": "2024-01-02T03:04:05Z",
                  "conditions": [{"type": "Complete", "status": "False"}]}}
DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "shop"},
             "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template(),
                      "updateStrategy": {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}},
                      "minReadySeconds": 3},
             "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                        "numberMisscheduled": 0}}
STATEFULSET = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
               "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "podManagementPolicy": "Parallel", "ordinals": {"start": 1}, "minReadySeconds": 2,
                        "template": {"metadata": {"labels": {"app": "db"}},
                                     "spec": {"containers": [{"name": "db", "image": "busybox",
                                                              "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                        "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}},
                                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                                           "resources": {"requests": {"storage": "1Gi"}}}}]},
               "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "currentReplicas": 2,
                          "updatedReplicas": 2, "currentRevision": "db-5d8f", "updateRevision": "db-5d8f",
                          "collisionCount": 0, "availableReplicas": 1}}
CONTROLLERREVISION = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                      "metadata": {"name": "agent-5d8f", "namespace": "shop"},
                      "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 2}

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080,
                               "appProtocol": "http"},
                              {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}],
                    "sessionAffinity": "ClientIP", "externalIPs": ["192.0.2.10"], "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "publishNotReadyAddresses": True},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ports": [{"port": 80, "protocol": "TCP"}]}]},
                      "conditions": [{"type": "Ready", "status": "True"}]}}
ENDPOINTS = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "shop"},
             "subsets": [{"addresses": [{"ip": "10.244.0.5", "nodeName": "n1",
                                         "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}],
                          "notReadyAddresses": [{"ip": "10.244.0.6", "hostname": "web-2"}],
                          "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}
ENDPOINTSLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "web-abc12", "namespace": "shop",
                              "labels": {"kubernetes.io/service-name": "web"}},
                 "addressType": "IPv4",
                 "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True, "serving": True,
                                                                             "terminating": False},
                                "nodeName": "n1", "zone": "a", "targetRef": {"kind": "Pod", "name": "web-1"},
                                "hints": {"forZones": [{"name": "a"}]}}],
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]}


def defaulted(obj):
    return apply_defaults(copy.deepcopy(obj))


OBJECTS = {
    "core.v1.Pod.json": [defaulted(POD), defaulted({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                                                     "spec": {"containers": [{"name": "c", "image": "i"}]}})],
    "core.v1.Node.json": [NODE],
    "core.v1.Event.json": [defaulted(EVENT)],
    "coordination.k8s.io.v1.Lease.json": [LEASE],
    "core.v1.Namespace.json": [defaulted(NAMESPACE)],
    "core.v1.ConfigMap.json": [CONFIGMAP],
    "core.v1.Secret.json": [defaulted(SECRET)],
    "apps.v1.Deployment.json": [defaulted(DEPLOYMENT)],
    "apps.v1.ReplicaSet.json": [defaulted(REPLICASET)],
    "core.v1.ReplicationController.json": [
        defaulted({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "nginx"},
                   "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {
                       "containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}),
        {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "x"}, "spec": {
            "selector": {"app": "x"}, "minReadySeconds": 5, "replicas": 0, "template": {
                "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
         "status": {"replicas": 0, "observedGeneration": 1}}],
    "batch.v1.Job.json": [defaulted(JOB)],
    "apps.v1.DaemonSet.json": [defaulted(DAEMONSET)],
    "apps.v1.StatefulSet.json": [defaulted(STATEFULSET)],
    "apps.v1.ControllerRevision.json": [CONTROLLERREVISION],
    "core.v1.Service.json": [defaulted(SERVICE)],
    "core.v1.Endpoints.json": [defaulted(ENDPOINTS)],
    "core.v1.ServiceAccount.json": [{"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "app", "namespace": "default"},
                                     "imagePullSecrets": [{"name": "regcred"}],
                                     "secrets": [{"name": "app-token"}], "automountServiceAccountToken": False}],
    "discovery.k8s.io.v1.EndpointSlice.json": [defaulted(ENDPOINTSLICE),
                                               {**ENDPOINTSLICE, "endpoints": None, "ports": None}],
    "core.v1.LimitRange.json": [{"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                                 "spec": {"limits": [{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"},
                                                      "min": {"cpu": 0.1}, "default": {"cpu": "500m"},
                                                      "defaultRequest": {"cpu": "200m"},
                                                      "maxLimitRequestRatio": {"cpu": 4}},
                                                     {"type": "Pod", "max": {"memory": "2Gi"}}]}}],
    "core.v1.ResourceQuota.json": [{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                                    "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": 3},
                                             "scopes": ["NotBestEffort"]},
                                    "status": {"hard": {"pods": "10"}, "used": {"pods": "1"}}}],
    "core.v1.PersistentVolume.json": [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1", "labels": {"tier": "gold"}},
         "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "storageClassName": "manual",
                  "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
                  "hostPath": {"path": "/srv/pv1", "type": "DirectoryOrCreate"},
                  "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data", "uid": "u"},
                  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}},
         "status": {"phase": "Bound", "lastPhaseTransitionTime": "2026-11-28T21:00:00Z"}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv2"},
         "spec": {"accessModes": ["ReadOnlyMany"], "capacity": {"storage": "5Gi"}, "local": {"path": "/mnt/d"},
                  "mountOptions": ["noatime"]}}],
    "core.v1.PersistentVolumeClaim.json": [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                  "storageClassName": "local-path", "volumeMode": "Filesystem", "volumeName": "pv1",
                  "selector": {"matchLabels": {"tier": "gold"}}},
         "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "none"},
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Mi"}},
                  "storageClassName": None}}],
    "scheduling.k8s.io.v1.PriorityClass.json": [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
         "value": 1000000, "globalDefault": False, "description": "for the front end", "preemptionPolicy": "Never"},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "low"}, "value": -10}],
    "storage.k8s.io.v1.StorageClass.json": [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-path"},
         "provisioner": "skiff.dev/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
         "allowVolumeExpansion": False, "parameters": {"a": "b"}, "mountOptions": ["ro"],
         "allowedTopologies": [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["n1"]}]}]}],
    "networking.k8s.io.v1.NetworkPolicy.json": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db"},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}},
                                         "namespaceSelector": {"matchExpressions": [
                                             {"key": "team", "operator": "In", "values": ["a"]}]}},
                                        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                               "ports": [{"protocol": "TCP", "port": 5432}, {"port": "metrics"},
                                         {"protocol": "UDP", "port": 3000, "endPort": 3100}]}],
                  "egress": [{"to": [{"namespaceSelector": {}}]}, {}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
         "spec": {"podSelector": {}}}],
    "networking.k8s.io.v1.Ingress.json": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "a"},
         "spec": {"ingressClassName": "nginx",
                  "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket",
                                                  "name": "static"}},
                  "tls": [{"hosts": ["*.example.com"], "secretName": "tls"}],
                  "rules": [{"host": "foo.example.com", "http": {"paths": [
                      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                      {"pathType": "ImplementationSpecific",
                       "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]},
         "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]}]}}}],
    "networking.k8s.io.v1.IngressClass.json": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": "k8s.io/ingress-nginx",
                  "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p",
                                 "scope": "Namespace", "namespace": "ingress"}}}],
    "rbac.authorization.k8s.io.v1.Role.json": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "read", "namespace": "a"},
         "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"],
                    "resourceNames": ["web"]}]}],
    "rbac.authorization.k8s.io.v1.ClusterRole.json": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "health"},
         "rules": [{"nonResourceURLs": ["/healthz", "/api/*"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]}, "rules": None}],
    "rbac.authorization.k8s.io.v1.RoleBinding.json": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "r", "namespace": "a"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa"},
                      {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]}],
    "rbac.authorization.k8s.io.v1.ClusterRoleBinding.json": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "c"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
                      {"kind": "ServiceAccount", "name": "sa", "namespace": "a"}]}],
    "policy.v1.PodDisruptionBudget.json": [
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
         "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}},
                  "unhealthyPodEvictionPolicy": "AlwaysAllow"},
         "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                    "expectedPods": 3, "disruptedPods": {"web-1": "2026-11-28T21:00:00Z"},
                    "conditions": [{"type": "DisruptionAllowed", "status": "True"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
         "spec": {"maxUnavailable": 1, "selector": {}}}],
    "batch.v1.CronJob.json": [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
                               "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Paris",
                                        "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 30, "suspend": False,
                                        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                                        "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {
                                            "backoffLimit": 2, "template": {"spec": {
                                                "restartPolicy": "OnFailure",
                                                "containers": [{"name": "c", "image": "busybox"}]}}}}},
                               "status": {"active": [{"kind": "Job", "name": "hello-1", "uid": "u"}],
                                          "lastScheduleTime": "2026-11-28T21:00:00Z"}}],
    "autoscaling.v2.HorizontalPodAutoscaler.json": [defaulted({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}},
                     {"type": "ContainerResource", "containerResource": {
                         "name": "memory", "container": "app", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 3, "lastScaleTime": "2026-01-01T00:00:00Z",
                   "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                       "averageUtilization": 70, "averageValue": "70m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                                   "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})],
}


def test_fixture_objects_are_valid_and_every_kind_is_covered():
    assert set(OBJECTS) == set(KIND_FILES)
    for f, objs in OBJECTS.items():
        for o in objs:
            assert jsonschema.Draft202012Validator(inlined(f)).is_valid(o), f
            assert compile_schema(inlined(f))(o) is True


# ---------------------------------------------------------------- mutations

JUNK = ["", "x", "bogus", "Always", "TCP", "Normal", "é", "10.88.0.5", "64 MB", "500m", "1.5Gi", "2e3",
        0, 1, -1, 2, 65535, 65536, 70000, 511, 512, 10 ** 12, -(10 ** 12), 1.0, 0.0, -1.0, 1.5, 0.5, 1e300,
        float("inf"), float("-inf"), True, False, None, [], {}, ["a"], [1], [None], {"a": "b"}, {"a": 1},
        {"name": "x"}, [{"name": "x"}]]


def _paths(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def mutate(obj, rng: random.Random):
    """Apply one random change at a random place in ``obj`` (in place)."""
    paths = list(_paths(obj))
    path, node = rng.choice(paths)
    op = rng.random()
    if op < 0.15 and isinstance(node, dict):  # add an unknown key, or a key/value seen elsewhere in obj
        pairs = [(k, v) for _, d in paths if isinstance(d, dict) for k, v in d.items()]
        if pairs and rng.random() < 0.5:
            k, v = rng.choice(pairs)
            node[k] = copy.deepcopy(v)
        else:
            node[rng.choice(["frobnicate", "name", "type", "image", "port", "apiVersion", "hostport", "value"])] = \
                copy.deepcopy(rng.choice(JUNK))
        return
    if op < 0.22 and isinstance(node, list):
        if node and rng.random() < 0.5:
            node.pop(rng.randrange(len(node)))
        else:
            node.append(copy.deepcopy(rng.choice(node)) if node and rng.random() < 0.5 else rng.choice(JUNK))
        return
    if not path:
        return
    parent = _get(obj, path[:-1])
    key = path[-1]
    if op < 0.35 and isinstance(parent, dict):  # delete a key
        del parent[key]
        return
    if op < 0.45 and isinstance(node, (int, float)) and not isinstance(node, bool):
        parent[key] = rng.choice([-node, node + 1, node - 1, node + 0.5, float(node), -1, 0, 10 ** 9, 65536])
        return
    if op < 0.5 and isinstance(node, str):
        parent[key] = rng.choice([node.upper(), node + " ", "", node[:1], "é" + node, node + "x"])
        return
    parent[key] = copy.deepcopy(rng.choice(JUNK))


@pytest.mark.parametrize("schema_file", KIND_FILES)
def test_compiled_check_equals_jsonschema_on_valid_objects_and_mutations(schema_file):
    schema = inlined(schema_file)
    check = compile_schema(schema)
    slow = jsonschema.Draft202012Validator(schema)
    registry_slow = validation._validator(schema_file)
    rng = random.Random(f"schemacheck:{schema_file}")
    seen = {True: 0, False: 0}
    for base in OBJECTS[schema_file]:
        assert check(base) is True
        for i in range(400):
            obj = copy.deepcopy(base)
            for _ in range(1 + (i % 3)):
                mutate(obj, rng)
            want = slow.is_valid(obj)
            assert check(obj) is want, (schema_file, i, obj)
            assert registry_slow.is_valid(obj) is want
            seen[want] += 1
    assert seen[True] >= 20 and seen[False] >= 50, seen  # both answers are exercised


@pytest.mark.parametrize("schema_file", [f for f in SCHEMAS if f not in KIND_FILES] + KIND_FILES)
def test_every_schema_compiles(schema_file):
    assert validation._fast(schema_file) is not None or schema_file not in KIND_FILES
    compile_schema(inlined(schema_file))


# ---------------------------------------------------------------- keyword semantics

def same(schema, instances):
    check = compile_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    got = [check(x) for x in instances]
    assert got == [v.is_valid(x) for x in instances], schema
    return got


def test_types():
    vals = [0, 1, -3, 1.0, 1.5, float("nan"), float("inf"), True, False, None, "1", "", [], {}, [1], {"a": 1}]
    assert same({"type": "integer"}, [1, 1.0, 1.5, True, "1", None]) == [True, True, False, False, False, False]
    assert same({"type": "number"}, [1, 1.5, True, "1"]) == [True, True, False, False]
    assert same({"type": "boolean"}, [True, False, 0, 1, None]) == [True, True, False, False, False]
    assert same({"type": "null"}, [None, 0, "", False]) == [True, False, False, False]
    for t in ("integer", "number", "boolean", "null", "object", "array", "string",
              ["integer", "string"], ["string", "null"], ["integer", "null"], ["boolean", "number", "array"]):
        same({"type": t}, vals)


def test_const_and_enum_compare_like_jsonschema():
    assert same({"const": True}, [True, 1, 1.0, False]) == [True, False, False, False]
    assert same({"const": 1}, [1, 1.0, True, "1"]) == [True, True, False, False]
    assert same({"const": "v1"}, ["v1", "V1", None, ["v1"]]) == [True, False, False, False]
    assert same({"const": [1, {"a": False}]}, [[1, {"a": False}], [True, {"a": False}], [1.0, {"a": 0}],
                                              (1, {"a": False})]) == [True, False, False, True]
    assert same({"enum": ["TCP", "UDP"]}, ["TCP", "tcp", "", None, ["TCP"], {"TCP": 1}]) == \
        [True, False, False, False, False, False]
    assert same({"enum": [0, None, "a", [False]]}, [0, 0.0, False, None, "a", [False], [0]]) == \
        [True, True, False, True, True, True, False]
    assert json_equal(float("nan"), float("nan")) is False
    assert same({"enum": [""]}, ["", " ", 0]) == [True, False, False]


def test_string_keywords():
    assert same({"minLength": 2}, ["é", "éé", "ab", "a", 5, None]) == [False, True, True, False, True, True]
    assert same({"type": "string", "minLength": 1}, ["", "\u00e9", 1]) == [False, True, False]
    # pattern is re.search (not anchored unless the pattern says so), and ignores non-strings
    assert same({"pattern": "b+"}, ["abbc", "ac", 3, None]) == [True, False, True, True]
    assert same({"pattern": "^[0-9]+$"}, ["123", "12a", "1\n"]) == [True, False, True]


def test_number_keywords_ignore_other_types():
    assert same({"minimum": 1, "maximum": 3}, [0, 1, 3, 3.5, True, False, "0", None, float("nan")]) == \
        [False, True, True, False, True, True, True, True, True]
    assert same({"type": ["integer", "null"], "minimum": 1}, [None, 0, 1, 1.0, 0.5]) == \
        [True, False, True, True, False]


def test_object_and_array_keywords():
    s = {"type": "object", "properties": {"a": {"type": "integer"}, "b": True}, "required": ["a"],
         "additionalProperties": False, "maxProperties": 2}
    assert same(s, [{"a": 1}, {"a": 1, "b": None}, {"b": 1}, {"a": "x"}, {"a": 1, "c": 1}, [], "x"]) == \
        [True, True, False, False, False, False, False]
    assert same({"additionalProperties": {"type": "string"}}, [{"a": "b"}, {"a": 1}, {}, [1], 3]) == \
        [True, False, True, True, True]
    assert same({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
                [{"a": "x", "b": 1}, {"a": 1}, {"b": "x"}]) == [True, False, False]
    assert same({"required": ["a", "b"]}, [{"a": 1, "b": 2}, {"a": 1}, [], "ab"]) == [True, False, True, True]
    assert same({"items": {"type": "string"}, "minItems": 1}, [["a"], [], [1], "x", {}]) == \
        [True, False, False, True, True]
    assert same({"additionalProperties": False}, [{}, {"a": 1}, []]) == [True, False, True]
    assert same({"items": False}, [[], [1], "x"]) == [True, False, True]


def test_combinators_and_boolean_schemas():
    q = SCHEMAS["common.json"]["$defs"]["Quantity"]
    assert same(q, [1, 0.5, True, "500m", "64Mi", "1.5Gi", "2e3", "64 MB", "", None, []]) == \
        [True, True, False, True, True, True, True, False, False, False, False]
    assert same({"oneOf": [{"type": "integer"}, {"type": "number"}]}, [1, 1.5, "x"]) == [False, True, False]
    assert same({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                ["not a date", None, 3]) == [True, True, False]
    assert same({"allOf": [{"minimum": 1}, {"maximum": 2}]}, [0, 1, 2, 3]) == [False, True, True, False]
    assert same(True, [1, None]) == [True, True]
    assert same(False, [1, None]) == [False, False]
    assert same({"properties": {"a": False}}, [{}, {"a": 1}]) == [True, False]


def test_unimplemented_keywords_raise():
    for s in ({"$ref": "#/$defs/X"}, {"patternProperties": {"^a": {}}}, {"not": {}}, {"uniqueItems": True},
              {"prefixItems": [{}]}, {"multipleOf": 2}, {"exclusiveMinimum": 0}, {"unevaluatedProperties": False},
              {"properties": {"a": {"if": {}}}}, {"type": "float"}, {"items": [{}]}, {"dependentRequired": {}}):
        with pytest.raises(UnsupportedSchema):
            compile_schema(s)
    # annotations (and x- extensions) are not assertions
    assert compile_schema({"title": "t", "description": "d", "$comment": "c", "default": 1, "examples": [],
                           "format": "date-time", "x-skiff-unsupported": True, "$defs": {"a": {"not": {}}}})(
        "anything") is True


def test_validate_falls_back_when_the_schema_cannot_be_compiled(monkeypatch):
    monkeypatch.setattr(validation, "_fast", lambda f: None)
    test_validate_reports_the_same_causes_as_before()


# ---------------------------------------------------------------- validate() keeps its answers

def causes(obj, **kw):
    with pytest.raises(ValidationError) as ei:
        validate(obj, **kw)
    return ei.value.causes


def test_validate_reports_the_same_causes_as_before():
    p = defaulted(POD)
    ws = validate(copy.deepcopy(p))
    assert ws and all(w.endswith("is accepted but not supported by skiff") for w in ws)
    del p["spec"]["containers"][0]["image"]
    p["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    p["spec"]["restartPolicy"] = "Sometimes"
    p["spec"]["containers"][1]["resources"]["limits"]["memory"] = "64 MB"
    p["spec"]["frobnicate"] = True
    by = {c["field"]: c for c in causes(p)}
    assert by["spec.containers[0].ports[0].containerPort"]["reason"] == "FieldValueInvalid"
    assert by["spec.restartPolicy"]["reason"] == "FieldValueNotSupported"
    assert by["spec.containers[1].resources.limits.memory"]["message"] == \
        'Invalid value: "64 MB": must be a quantity such as 500m or 64Mi'
    assert by["spec.frobnicate"] == {"field": "spec.frobnicate", "reason": "FieldValueInvalid",
                                     "message": 'unknown field "spec.frobnicate"'}
    # the causes are those the jsonschema errors give
    errs = sorted(validation._validator("core.v1.Pod.json").iter_errors(p),
                  key=lambda e: list(map(str, e.absolute_path)))
    want = [c for e in errs for c in validation._schema_causes(e)]
    got = causes(p)
    assert got[:len(want)] == want

    e = copy.deepcopy(EVENT)
    e["type"] = "Info"
    e["count"] = -1
    assert {c["field"]: c["reason"] for c in causes(e)} == {"type": "FieldValueNotSupported",
                                                             "count": "FieldValueInvalid"}
    n = copy.deepcopy(NODE)
    n["spec"]["taints"][0]["effect"] = "Never"
    assert [c["field"] for c in causes(n)] == ["spec.taints[0].effect"]
    # the unknown-field handling: Warn drops the field with a warning, Strict raises a 400
    d = defaulted(DEPLOYMENT)
    d["spec"]["template"]["spec"]["containers"][0]["hostport"] = 1
    ws = validate(d, field_validation="Warn")
    assert [w.field for w in ws if "unknown" in w] == ["spec.template.spec.containers[0].hostport"]
    assert "hostport" not in d["spec"]["template"]["spec"]["containers"][0]
    d["spec"]["template"]["spec"]["containers"][0]["hostport"] = 1
    with pytest.raises(validation.StrictDecodingError):
        validate(d, field_validation="Strict")


def _outcome(obj, field_validation):
    try:
        ws = validate(obj, field_validation)
        return "ok", [(w.field, str(w)) for w in ws], obj
    except ValidationError as e:
        return type(e).__name__, e.causes, str(e)
    except Exception as e:  # noqa: BLE001 - a crash (e.g. kind_of on an unhashable kind) must be the same crash
        return "crash", repr(e)


@pytest.mark.parametrize("field_validation", [None, "Warn", "Strict"])
def test_validate_answers_as_without_the_fast_path(monkeypatch, field_validation):
    rng = random.Random(f"validate:{field_validation}")
    n = 0
    for objs in OBJECTS.values():
        for base in objs:
            for i in range(60):
                obj = copy.deepcopy(base)
                for _ in range(i % 3):
                    mutate(obj, rng)
                other = copy.deepcopy(obj)
                fast = _outcome(obj, field_validation)
                with monkeypatch.context() as m:
                    m.setattr(validation, "_fast", lambda f: None)
                    slow = _outcome(other, field_validation)
                assert fast == slow
                n += 1
    assert n > 500


def test_fast_path_is_used_for_valid_objects(monkeypatch):
    calls = []
    real = validation._validator

    def spy(f):
        calls.append(f)
        return real(f)
    monkeypatch.setattr(validation, "_validator", spy)
    for objs in OBJECTS.values():
        for o in objs:
            try:
                validate(copy.deepcopy(o))
            except ValidationError:
                pass
    assert calls == []
    p = defaulted(POD)
    p["spec"]["containers"] = []
    with pytest.raises(ValidationError):
        validate(p)
    assert calls == ["core.v1.Pod.json"]


# ---------------------------------------------------------------- timing (printed, not asserted)

def test_timing_slow_vs_fast(capsys):
    n = 2000
    lines = []
    for label, f, obj in (("Pod", "core.v1.Pod.json", defaulted(POD)), ("Node", "core.v1.Node.json", NODE),
                          ("Event", "core.v1.Event.json", defaulted(EVENT))):
        slow = validation._validator(f)
        fast = validation._fast(f)
        t0 = time.perf_counter()
        for _ in range(n):
            list(slow.iter_errors(obj))
        t1 = time.perf_counter()
        for _ in range(n):
            fast(obj)
        t2 = time.perf_counter()
        lines.append(f"{label}: jsonschema {(t1 - t0) / n * 1e6:.1f} us, compiled {(t2 - t1) / n * 1e6:.1f} us "
                     f"({(t1 - t0) / max(t2 - t1, 1e-9):.0f}x)")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_volume_sources_max_properties_like_jsonschema():
    schema = inlined("core.v1.Pod.json")
    check, slow = compile_schema(schema), jsonschema.Draft202012Validator(schema)
    base = defaulted(POD)
    sources = [(k, v) for vol in base["spec"]["volumes"] for k, v in vol.items() if k != "name"]
    answers = set()
    for i in range(len(base["spec"]["volumes"])):
        for k, v in sources + [("nfs", {"server": "s"}), ("csi", {})]:
            p = copy.deepcopy(base)
            vol = p["spec"]["volumes"][i]
            vol[k] = copy.deepcopy(v)
            assert check(p) is slow.is_valid(p)
            answers.add(check(p))
            del vol["name"]
            assert check(p) is slow.is_valid(p)
    assert answers == {True, False}
