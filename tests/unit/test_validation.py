"""Schemas, validation and admission of API objects (skiff.api.validation, skiff.controller.admission)."""
import copy
import json
from pathlib import Path

import pytest
import yaml

from skiff.api import validation
from skiff.api.validation import ValidationError, validate
from skiff.controller.admission import admit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# The nginx Pod exactly as the Kubernetes documentation writes it.
NGINX = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  containers:
  - name: nginx
    image: nginx:1.14.2
    ports:
    - containerPort: 80
""")

MULTI = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: web-with-sidecar
  namespace: shop
  labels: {app: web, app.kubernetes.io/name: web, tier: ""}
  annotations: {example.com/owner: "team-a"}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 10
  nodeSelector: {kubernetes.io/hostname: host-1}
  volumes:
  - name: shared
    emptyDir: {}
  - name: logs
    hostPath: {path: /var/log/web, type: DirectoryOrCreate}
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
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - {containerPort: 80, name: http}
    - {containerPort: 8443, hostPort: 8443, protocol: TCP, name: https}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi, ephemeral-storage: 1Gi}
    volumeMounts: [{name: shared, mountPath: /usr/share/nginx/html, readOnly: true}]
    livenessProbe:
      httpGet: {path: /healthz, port: http, httpHeaders: [{name: X-Probe, value: "1"}]}
      initialDelaySeconds: 3
      periodSeconds: 3
    readinessProbe:
      tcpSocket: {port: 80}
      timeoutSeconds: 2
    startupProbe:
      exec: {command: [cat, /tmp/ready]}
      failureThreshold: 30
    securityContext: {runAsUser: 1000}
  - name: sidecar
    image: busybox:1.36
    args: [sh, -c, "while true; do wget -qO- localhost; sleep 5; done"]
    resources:
      limits: {cpu: 0.5, memory: 1e8}
    volumeMounts: [{name: logs, mountPath: /logs}]
    stdin: true
    tty: true
""")


def pod(**spec_changes):
    p = copy.deepcopy(NGINX)
    p["spec"].update(spec_changes)
    return p


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        validate(obj)
    return ei.value.causes


def fields(obj):
    return {c["field"]: c["reason"] for c in causes(obj)}


def test_schemas_are_valid_draft_2020_12_and_strict():
    import jsonschema
    names = {p.name for p in SCHEMAS.glob("*.json")}
    assert {"common.json", "core.v1.Pod.json", "core.v1.Namespace.json", "core.v1.Node.json",
            "core.v1.Event.json", "coordination.k8s.io.v1.Lease.json"} <= names
    for p in SCHEMAS.glob("*.json"):
        s = json.loads(p.read_text())
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["$schema"].endswith("2020-12/schema")
        if p.name != "common.json":
            assert s["additionalProperties"] is False
    meta = json.loads((SCHEMAS / "common.json").read_text())["$defs"]["ObjectMeta"]
    assert meta["additionalProperties"] is False
    assert {"name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
            "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences",
            "finalizers", "managedFields"} <= set(meta["properties"])


def test_nginx_from_the_kubernetes_docs_is_valid():
    assert validate(NGINX) == []


def test_admit_copies_unless_the_object_is_handed_over():
    import copy
    mine = copy.deepcopy(NGINX)
    out, _ = admit(mine)
    assert out is not mine and mine == NGINX          # the caller's object is left alone
    assert out["spec"]["restartPolicy"] == "Always"
    body = copy.deepcopy(NGINX)
    out, _ = admit(body, owned=True)                  # a decoded request body: no copy
    assert out is body and body["spec"]["restartPolicy"] == "Always"


def test_multi_container_pod_with_probes_resources_and_volumes_is_valid():
    assert validate(MULTI) == []


def test_pod_with_status_as_the_agent_writes_it():
    p = copy.deepcopy(NGINX)
    p["metadata"].update(uid="6f1c", resourceVersion="42", generation=1, creationTimestamp="2024-01-02T03:04:05Z",
                         deletionTimestamp=None, finalizers=["skiff.dev/agent"],
                         managedFields=[{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
                         ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                                           "controller": True}])
    p["status"] = {"phase": "Running", "podIP": "10.88.0.5", "podIPs": [{"ip": "10.88.0.5"}], "hostIP": "192.168.1.2",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-02T03:04:06Z"}],
                   "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2024-01-02T03:04:06Z"}},
                                          "lastState": {}, "image": "nginx:1.14.2", "imageID": "sha256:ab"}],
                   "startTime": "2024-01-02T03:04:05Z", "qosClass": "BestEffort"}
    assert validate(p) == []


def test_other_kinds():
    assert validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}) == []
    assert validate({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "host-1.example.com",
                     "labels": {"kubernetes.io/hostname": "host-1"}},
                     "spec": {"podCIDR": "10.88.1.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
                     "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                                "conditions": [{"type": "Ready", "status": "True"}]}}) == []
    assert validate({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "nginx.17a2b3c4d5", "namespace": "default"},
                     "involvedObject": {"kind": "Pod", "name": "nginx", "namespace": "default", "uid": "u"},
                     "reason": "Scheduled", "message": "Successfully assigned default/nginx to host-1",
                     "source": {"component": "default-scheduler"}, "count": 1, "type": "Normal",
                     "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:05Z"}) == []
    assert validate({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": "host-1", "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": "host-1", "leaseDurationSeconds": 40,
                              "renewTime": "2024-01-02T03:04:05.000000Z"}}) == []


def test_unknown_field_is_rejected_with_its_path():
    p = copy.deepcopy(MULTI)
    p["spec"]["containers"][1]["ports"] = [{"containerPort": 80}, {"containerPort": 81, "hostport": 8081}]
    p["spec"]["frobnicate"] = True
    p["metadata"]["labelz"] = {}
    cs = causes(p)
    by = {c["field"]: c for c in cs}
    assert by["spec.containers[1].ports[1].hostport"]["reason"] == "FieldValueInvalid"
    assert 'unknown field "spec.containers[1].ports[1].hostport"' == by["spec.containers[1].ports[1].hostport"]["message"]
    assert "spec.frobnicate" in by and "metadata.labelz" in by
    assert len(cs) == 3


def test_top_level_unknown_field_and_unknown_kind():
    p = copy.deepcopy(NGINX)
    p["sepc"] = {}
    assert fields(p) == {"sepc": "FieldValueInvalid"}
    assert fields({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}) == {"kind": "FieldValueNotSupported"}
    assert fields({"apiVersion": "apps/v2", "kind": "Pod", "metadata": {"name": "w"}}) == {"kind": "FieldValueNotSupported"}
    assert fields({"metadata": {"name": "w"}}) == {"apiVersion": "FieldValueRequired", "kind": "FieldValueRequired"}
    with pytest.raises(ValidationError):
        validate(["not", "an", "object"])


def test_required_fields_and_bad_values():
    p = copy.deepcopy(NGINX)
    del p["spec"]["containers"][0]["image"]
    p["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    p["spec"]["restartPolicy"] = "Sometimes"
    cs = {c["field"]: c for c in causes(p)}
    assert cs["spec.containers[0].image"] == {"field": "spec.containers[0].image", "reason": "FieldValueRequired",
                                             "message": "Required value"}
    assert cs["spec.containers[0].ports[0].containerPort"]["reason"] == "FieldValueInvalid"
    assert cs["spec.restartPolicy"]["reason"] == "FieldValueNotSupported"
    assert '"Always"' in cs["spec.restartPolicy"]["message"]
    assert fields(pod(containers=[])) == {"spec.containers": "FieldValueRequired"}
    q = copy.deepcopy(NGINX)
    del q["spec"]
    assert fields(q) == {"spec": "FieldValueRequired"}


def test_quantities():
    ok = pod(containers=[{"name": "a", "image": "x", "resources": {
        "requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": 2, "memory": "1.5Gi", "hugepages-2Mi": "2e3"}}}])
    assert validate(ok) == []
    bad = pod(containers=[{"name": "a", "image": "x", "resources": {"limits": {"memory": "64 MB"}}}])
    (c,) = causes(bad)
    assert c["field"] == "spec.containers[0].resources.limits.memory"
    assert "quantity" in c["message"]


@pytest.mark.parametrize("name", ["Nginx", "web_1", "-web", "web-", "a" * 254, "web..x"])
def test_bad_pod_names(name):
    p = copy.deepcopy(NGINX)
    p["metadata"]["name"] = name
    assert fields(p) == {"metadata.name": "FieldValueInvalid"}


def test_good_names_and_generate_name():
    p = copy.deepcopy(NGINX)
    p["metadata"]["name"] = "web.v1-" + "a" * 200   # subdomain rules: dots allowed, 253 chars
    assert validate(p) == []
    del p["metadata"]["name"]
    assert fields(p) == {"metadata.name": "FieldValueRequired"}
    p["metadata"]["generateName"] = "web-"
    assert validate(p) == []


def test_bad_container_names_and_duplicates():
    long = "a" * 64
    p = pod(containers=[{"name": long, "image": "x"}, {"name": "web.1", "image": "x"},
                        {"name": "ok", "image": "x"}, {"name": "ok", "image": "y"}])
    cs = {c["field"]: c for c in causes(p)}
    assert cs["spec.containers[0].name"]["reason"] == "FieldValueInvalid"
    assert "63" in cs["spec.containers[0].name"]["message"]
    assert cs["spec.containers[1].name"]["reason"] == "FieldValueInvalid"
    assert "Duplicate" in cs["spec.containers[3].name"]["message"]


def test_namespace_names_are_labels_and_cluster_scoped_kinds_have_no_namespace():
    assert fields({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}) == {"metadata.name": "FieldValueInvalid"}
    assert "metadata.namespace" in fields({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "namespace": "x"}})
    p = copy.deepcopy(NGINX)
    p["metadata"]["namespace"] = "Bad_NS"
    assert fields(p) == {"metadata.namespace": "FieldValueInvalid"}


def test_bad_labels():
    p = copy.deepcopy(NGINX)
    p["metadata"]["labels"] = {"app": "has space", "-bad": "x", "example.com/ok": "v"}
    f = fields(p)
    assert set(f) == {'metadata.labels.app', 'metadata.labels["-bad"]'}


def test_volume_mount_must_name_a_volume():
    p = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}])
    assert fields(p) == {"spec.containers[0].volumeMounts[0].name": "FieldValueInvalid"}


def test_unsupported_fields_warn():
    p = pod(runtimeClassName="gvisor", serviceAccountName="builder", serviceAccount="builder",
            automountServiceAccountToken=True)
    p["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}
    ws = validate(p)
    assert "spec.runtimeClassName is accepted but not supported by skiff" in ws
    # lifecycle hooks are served since issue 6's review, ServiceAccounts since they are objects: no warning
    # priorityClassName and priority are served since PriorityClasses are (the Priority admission),
    # automountServiceAccountToken since pods get their account's token
    assert {w.field for w in ws} == {"spec.runtimeClassName"}
    assert all(isinstance(w, str) for w in ws)


NODE_AFFINITY = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def test_affinity_and_spread_constraints_are_served_not_warned():
    p = pod(affinity={
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]},
                                      {"key": "cores", "operator": "Gt", "values": ["4"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]},
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                 "matchLabelKeys": ["pod-template-hash"]}],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {}, "namespaceSelector": {},
                                                    "topologyKey": "zone"}}]}},
        topologySpreadConstraints=[
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3,
             "labelSelector": {"matchLabels": {"app": "web"}}, "nodeTaintsPolicy": "Honor"},
            {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}])
    assert validate(p) == []


def test_node_affinity_is_validated_as_kubernetes_does():
    p = pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}})
    assert causes(p) == [{"field": NODE_AFFINITY + ".nodeSelectorTerms", "reason": "FieldValueRequired",
                          "message": "Required value: must have at least one node selector term"}]
    p = pod(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]},
                                 {"key": "b", "operator": "In"},
                                 {"key": "c", "operator": "Exists", "values": ["x"]},
                                 {"key": "d", "operator": "Gt", "values": ["1", "2"]},
                                 {"key": "e", "operator": "Lt", "values": ["ten"]}],
            "matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["n1"]},
                            {"key": "metadata.name", "operator": "Exists"}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}})
    term = NODE_AFFINITY + ".nodeSelectorTerms[0]"
    assert causes(p) == [
        {"field": term + ".matchExpressions[0].operator", "reason": "FieldValueInvalid",
         "message": 'Invalid value: "Equals": not a valid selector operator'},
        {"field": term + ".matchExpressions[1].values", "reason": "FieldValueRequired",
         "message": "Required value: must be specified when `operator` is 'In' or 'NotIn'"},
        {"field": term + ".matchExpressions[2].values", "reason": "FieldValueForbidden",
         "message": "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"},
        {"field": term + ".matchExpressions[3].values", "reason": "FieldValueRequired",
         "message": "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"},
        {"field": term + ".matchExpressions[4].values[0]", "reason": "FieldValueInvalid",
         "message": "Invalid value: \"ten\": for 'Gt', 'Lt' operators, the value must be an integer"},
        {"field": term + ".matchFields[0].key", "reason": "FieldValueInvalid",
         "message": 'Invalid value: "metadata.labels": not a valid field selector key'},
        {"field": term + ".matchFields[1].operator", "reason": "FieldValueInvalid",
         "message": 'Invalid value: "Exists": not a valid selector operator'},
        {"field": "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
         "reason": "FieldValueInvalid", "message": "Invalid value: 0: must be in the range 1-100"}]


def test_pod_affinity_is_validated_as_kubernetes_does():
    p = pod(affinity={
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 101, "podAffinityTerm": {"topologyKey": "zone", "mismatchLabelKeys": ["app"]}}]}})
    assert causes(p) == [
        {"field": "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector"
                  ".matchExpressions[0].operator", "reason": "FieldValueInvalid",
         "message": 'Invalid value: "Gt": not a valid selector operator'},
        {"field": "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
         "reason": "FieldValueRequired", "message": "Required value: can not be empty"},
        {"field": "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
         "reason": "FieldValueInvalid", "message": "Invalid value: 101: must be in the range 1-100"},
        {"field": "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
                  ".podAffinityTerm.mismatchLabelKeys", "reason": "FieldValueForbidden",
         "message": "Forbidden: must not be specified when labelSelector is not set"}]
    # the schema leaves affinity open: a wrong shape is a cause, not a crash
    assert fields(pod(affinity={"podAffinity": [1]})) == {"spec.affinity.podAffinity": "FieldValueInvalid"}


def test_topology_spread_constraints_are_validated_as_kubernetes_does():
    p = pod(topologySpreadConstraints=[
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2},
        {"maxSkew": 1, "whenUnsatisfiable": "Sometimes", "minDomains": 0, "nodeAffinityPolicy": "Always",
         "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["app"]},
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}])
    c0, c1 = "spec.topologySpreadConstraints[0]", "spec.topologySpreadConstraints[1]"
    assert causes(p) == [
        {"field": c0 + ".maxSkew", "reason": "FieldValueInvalid", "message": "Invalid value: 0: must be greater than zero"},
        {"field": c0 + ".{topologyKey, whenUnsatisfiable}", "reason": "FieldValueInvalid",
         "message": 'Duplicate value: "{zone, ScheduleAnyway}"'},
        {"field": c0 + ".minDomains", "reason": "FieldValueInvalid",
         "message": "Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"},
        {"field": c1 + ".topologyKey", "reason": "FieldValueRequired", "message": "Required value: can not be empty"},
        {"field": c1 + ".whenUnsatisfiable", "reason": "FieldValueNotSupported",
         "message": 'Unsupported value: "Sometimes": supported values: "DoNotSchedule", "ScheduleAnyway"'},
        {"field": c1 + ".minDomains", "reason": "FieldValueInvalid", "message": "Invalid value: 0: must be greater than zero"},
        {"field": c1 + ".minDomains", "reason": "FieldValueInvalid",
         "message": "Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not Sometimes"},
        {"field": c1 + ".nodeAffinityPolicy", "reason": "FieldValueNotSupported",
         "message": 'Unsupported value: "Always": supported values: "Honor", "Ignore"'},
        {"field": c1 + ".matchLabelKeys[0]", "reason": "FieldValueInvalid",
         "message": 'Invalid value: "app": exists in both matchLabelKeys and labelSelector'}]


def test_privileged_host_namespaces_are_served():
    """privileged, hostNetwork, hostPID and hostIPC are run by the agent: accepted, no warning."""
    p = copy.deepcopy(NGINX)
    p["spec"].update(hostNetwork=True, hostPID=True, hostIPC=True)
    p["spec"]["containers"][0]["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}
    assert validate(p) == [] and admit(p)[1] == []
    p["spec"]["containers"][0]["securityContext"] = {"privileged": False, "capabilities": {"add": []}}
    assert validate(p) == []


def test_privileged_rules_as_kubernetes():
    p = copy.deepcopy(NGINX)
    sc = {"privileged": True, "allowPrivilegeEscalation": False}
    p["spec"]["containers"][0]["securityContext"] = sc
    assert causes(p) == [{"field": "spec.containers[0].securityContext", "reason": "FieldValueInvalid",
                          "message": 'Invalid value: {"privileged": true, "allowPrivilegeEscalation": false}: '
                                     "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"}]
    sc["allowPrivilegeEscalation"] = True
    assert validate(p) == []
    p["spec"].update(hostPID=True, shareProcessNamespace=True)
    assert [c["message"] for c in causes(p)] == [
        "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"]
    # hostNetwork: a hostPort is the containerPort itself
    p = copy.deepcopy(NGINX)
    p["spec"]["hostNetwork"] = True
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert [(c["field"], c["message"]) for c in causes(p)] == [
        ("spec.containers[0].ports[0].hostPort", "Invalid value: 8080: must match `containerPort` when "
                                                "`hostNetwork` is true")]
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    obj, _ = admit(p)
    assert obj["spec"]["containers"][0]["ports"][0]["hostPort"] == 80   # defaulted, as Kubernetes


def test_hardened_security_context_is_served_not_warned():
    """What hardened charts write is enforced by the agent: no warning, no rejection. Capability
    names are not checked (as Kubernetes): a bad one fails the container at its start."""
    sc = {"runAsNonRoot": True, "runAsUser": 1001, "readOnlyRootFilesystem": True,
          "allowPrivilegeEscalation": False,
          "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_CHOWN", "no_such_cap"]}}
    p = pod(securityContext={"runAsNonRoot": True, "runAsUser": 1001, "fsGroup": 1001,
                             "supplementalGroups": [3000]},
            initContainers=[{"name": "init", "image": "busybox", "securityContext": copy.deepcopy(sc)}])
    p["spec"]["containers"][0]["securityContext"] = sc
    assert validate(p) == []
    # seccompProfile RuntimeDefault is served (docker's default profile); a Localhost profile
    # file is not: it warns, and the runtime's default profile is used
    sc["seccompProfile"] = {"type": "RuntimeDefault"}
    p["spec"]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert validate(p) == []
    sc["seccompProfile"] = {"type": "Localhost", "localhostProfile": "my.json"}
    [w] = validate(p)
    assert w.field == "spec.containers[0].securityContext.seccompProfile" and "RuntimeDefault" in str(w)


def test_volume_types_skiff_cannot_mount_are_rejected():
    p = pod(volumes=[{"name": "data", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}},
                     {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
                     {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                     {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc"}}])   # served since PVs
    cs = {c["field"]: c for c in causes(p)}
    assert set(cs) == {"spec.volumes[0].iscsi", "spec.volumes[1].nfs"}
    assert all(c["reason"] == "FieldValueNotSupported" and "is not supported by skiff" in c["message"]
               for c in cs.values())
    assert validate(pod(volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}])) == []  # served since issue 6
    assert fields(pod(volumes=[{"name": "two", "emptyDir": {}, "hostPath": {"path": "/x"}}])) == \
        {"spec.volumes[0]": "FieldValueInvalid"}


def test_validation_error_status_is_a_kubernetes_422():
    p = copy.deepcopy(NGINX)
    del p["spec"]["containers"][0]["image"]
    with pytest.raises(ValidationError) as ei:
        validate(p)
    st = ei.value.to_status()
    assert st["code"] == 422 and st["reason"] == "Invalid" and st["kind"] == "Status"
    assert st["details"]["kind"] == "Pod" and st["details"]["name"] == "nginx"
    assert st["details"]["causes"][0]["field"] == "spec.containers[0].image"
    assert str(ei.value) == 'Pod "nginx" is invalid: spec.containers[0].image: Required value'


def test_admission_fills_defaults_and_does_not_modify_its_input():
    before = copy.deepcopy(NGINX)
    obj, warnings = admit(NGINX)
    assert NGINX == before and warnings == []
    assert obj["metadata"]["namespace"] == "default"
    spec = obj["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["ports"][0]["protocol"] == "TCP"


def test_admission_keeps_given_values_and_defaults_every_container():
    obj, _ = admit(MULTI)
    assert obj["metadata"]["namespace"] == "shop"
    assert obj["spec"]["restartPolicy"] == "OnFailure"
    assert obj["spec"]["terminationGracePeriodSeconds"] == 10
    # the issue asks for IfNotPresent, also for untagged / :latest images
    assert [c["imagePullPolicy"] for c in obj["spec"]["initContainers"] + obj["spec"]["containers"]] == ["IfNotPresent"] * 3
    assert obj["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] == 10
    p = copy.deepcopy(NGINX)
    p["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    assert admit(p)[0]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


GRPC_LIVENESS = """\
apiVersion: v1
kind: Pod
metadata:
  name: etcd-with-grpc
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.1-0
    command: [ "/usr/local/bin/etcd", "--data-dir",  "/var/lib/etcd", "--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://127.0.0.1:2379", "--log-level", "debug"]
    ports:
    - containerPort: 2379
    livenessProbe:
      grpc:
        port: 2379
      initialDelaySeconds: 10
"""


def test_a_grpc_probes_service_defaults_to_empty_in_pods_and_templates():
    # kubernetes/website pods/probe/grpc-liveness.yaml: kubectl describe needs grpc.service set
    pod = yaml.safe_load(GRPC_LIVENESS)
    probe = admit(pod)[0]["spec"]["containers"][0]["livenessProbe"]
    assert probe["grpc"] == {"port": 2379, "service": ""} and probe["periodSeconds"] == 10
    pod["spec"]["containers"][0]["livenessProbe"]["grpc"]["service"] = "etcd"
    assert admit(pod)[0]["spec"]["containers"][0]["livenessProbe"]["grpc"]["service"] == "etcd"
    pod["spec"]["containers"][0]["livenessProbe"]["grpc"].pop("service")
    labels = {"app": "etcd"}
    for av, kind in (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet")):
        w = {"apiVersion": av, "kind": kind, "metadata": {"name": "etcd"},
             "spec": {"selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": copy.deepcopy(pod["spec"])}}}
        c = admit(w)[0]["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["grpc"] == {"port": 2379, "service": ""}, kind


def test_a_pods_limits_default_its_requests_but_not_a_templates():
    p = copy.deepcopy(NGINX)
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "64Mi"},
                                               "requests": {"cpu": "100m"}}
    got = admit(p)[0]["spec"]["containers"][0]["resources"]
    assert got["requests"] == {"cpu": "100m", "memory": "64Mi"}           # a given request is kept
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"selector": {"matchLabels": {"a": "b"}},
                  "template": {"metadata": {"labels": {"a": "b"}}, "spec": copy.deepcopy(p["spec"])}}}
    del d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    tmpl = admit(d)[0]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "requests" not in tmpl                                          # the pod-template-hash stays


def test_resource_field_refs_are_checked():
    def env(ref):
        p = copy.deepcopy(NGINX)
        p["spec"]["containers"][0]["env"] = [{"name": "X", "valueFrom": {"resourceFieldRef": ref}}]
        return p
    assert validate(env({"resource": "limits.memory", "divisor": "1Mi"})) == []
    assert validate(env({"containerName": "nginx", "resource": "requests.cpu", "divisor": "1m"})) == []
    assert validate(env({"resource": "limits.cpu", "divisor": "0"})) == []
    f = "spec.containers[0].env[0].valueFrom.resourceFieldRef"
    assert fields(env({"resource": "limits.gpu"})) == {f"{f}.resource": "FieldValueNotSupported"}
    assert fields(env({"resource": "limits.cpu", "divisor": "1Mi"})) == {f"{f}.divisor": "FieldValueNotSupported"}
    assert fields(env({"resource": "limits.memory", "divisor": "2"})) == {f"{f}.divisor": "FieldValueNotSupported"}
    assert fields(env({"divisor": "1"})) == {f"{f}.resource": "FieldValueRequired"}


def test_lifecycle_hooks_need_exactly_one_handler():
    def hooked(**lc):
        p = copy.deepcopy(NGINX)
        p["spec"]["containers"][0]["lifecycle"] = lc
        return p
    assert validate(hooked(preStop={"sleep": {"seconds": 5}}, postStart={"exec": {"command": ["true"]}})) == []
    f = "spec.containers[0].lifecycle"
    assert fields(hooked(preStop={})) == {f"{f}.preStop": "FieldValueRequired"}
    assert fields(hooked(postStart={"exec": {"command": ["x"]}, "httpGet": {"port": 80}})) == \
        {f"{f}.postStart": "FieldValueInvalid"}


def test_admission_namespace_from_path():
    obj, _ = admit(NGINX, namespace_from_path="shop")
    assert obj["metadata"]["namespace"] == "shop"
    p = copy.deepcopy(NGINX)
    p["metadata"]["namespace"] = "other"
    with pytest.raises(ValidationError) as ei:
        admit(p, namespace_from_path="shop")
    assert ei.value.causes[0]["field"] == "metadata.namespace"
    ns, _ = admit({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert "namespace" not in ns["metadata"]


def test_admission_validates():
    p = copy.deepcopy(NGINX)
    p["spec"]["containers"][0]["name"] = "NGINX"
    with pytest.raises(ValidationError):
        admit(p)


def test_json_path():
    assert validation.json_path(["spec", "containers", 0, "ports", 1, "containerPort"]) == \
        "spec.containers[0].ports[1].containerPort"
    assert validation.json_path(["metadata", "labels", "app.kubernetes.io/name"]) == \
        'metadata.labels["app.kubernetes.io/name"]'


def test_schemas_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SKIFF_SCHEMAS", str(SCHEMAS))
    assert validation.schemas_dir() == SCHEMAS


def test_null_fields_are_unset_as_kubernetes_decodes_them():
    """``annotations:``, ``resources:``, ``env:`` with nothing after them in YAML, or a template's
    ``nodeSelector: null``, are JSON nulls: Kubernetes' decoder leaves such fields unset."""
    p = pod(nodeSelector=None, tolerations=None, volumes=None)
    p["metadata"]["annotations"] = None
    p["spec"]["containers"][0].update(env=None, resources=None, args=None, ports=None)
    assert validate(p) == []
    assert "annotations" not in p["metadata"] and "nodeSelector" not in p["spec"]
    assert not {"env", "resources", "args", "ports"} & set(p["spec"]["containers"][0])
    # a required field that is null is missing, not of the wrong type
    q = pod()
    q["spec"]["containers"] = None
    with pytest.raises(ValidationError) as ei:
        validate(q)
    assert {c["field"]: c["message"] for c in ei.value.causes}["spec.containers"] == "Required value"
