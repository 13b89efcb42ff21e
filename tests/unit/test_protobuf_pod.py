"""Pods in protobuf, as kubectl 1.32's `debug node/NAME` and `debug POD --copy-to` send them (the
field numbers of k8s.io/api core/v1; these bodies mirror ones captured from the real kubectl):
volumes with their inline source, tolerations, host namespaces, security contexts with explicit
false values kept, probes with their inline handler, env sources; a field skiff does not read is
refused by name, never dropped."""
from __future__ import annotations

import pytest

from skiff.api.protobuf import Unsupported, decode
from tests.unit.pbenc import envelope as _envelope


from tests.unit.pbenc import fld as ld, num as vi  # noqa: E402


def envelope(raw: bytes) -> bytes:
    return _envelope("v1", "Pod", raw)


def debug_node_body(container_extra: bytes = b"") -> bytes:
    """kubectl debug node/n1 --image=busybox --profile=legacy|sysadmin|restricted -- true"""
    meta = ld(1, "node-debugger-n1-5jdzj") + ld(2, "") + vi(7, 0)
    volume = ld(1, "host-root") + ld(2, ld(1, ld(1, "/")))
    container = (ld(1, "debugger") + ld(2, "busybox") + ld(3, "true") + ld(5, "") + ld(8, "")
                 + ld(9, ld(1, "host-root") + vi(2, 0) + ld(3, "/host") + ld(4, ""))
                 + container_extra + vi(16, 0) + vi(17, 0) + vi(18, 0) + ld(20, "File"))
    spec = (ld(1, volume) + ld(2, container) + ld(3, "Never") + ld(6, "") + ld(10, "n1")
            + vi(11, 1) + vi(12, 1) + vi(13, 1) + ld(22, ld(1, "") + ld(2, "Exists") + ld(3, "") + ld(4, "")))
    return envelope(ld(1, meta) + ld(2, spec) + ld(3, ld(1, "")))


def test_kubectl_debug_node_pod():
    pod = decode(debug_node_body())
    assert pod == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-debugger-n1-5jdzj"}, "spec": {
        "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "debugger", "image": "busybox", "command": ["true"], "resources": {},
                        "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                        "terminationMessagePolicy": "File"}],
        "restartPolicy": "Never", "nodeName": "n1", "hostNetwork": True, "hostPID": True, "hostIPC": True,
        "tolerations": [{"operator": "Exists"}]}}


def test_security_context_keeps_explicit_false_and_pointer_zeroes():
    # --profile=restricted: drop ALL, runAsNonRoot true, allowPrivilegeEscalation FALSE, RuntimeDefault
    sc = ld(1, ld(2, "ALL")) + vi(5, 1) + vi(7, 0) + ld(11, ld(1, "RuntimeDefault")) + vi(4, 0)
    c = decode(debug_node_body(ld(15, sc)))["spec"]["containers"][0]
    assert c["securityContext"] == {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                                    "allowPrivilegeEscalation": False, "runAsUser": 0,
                                    "seccompProfile": {"type": "RuntimeDefault"}}
    # --profile=sysadmin: privileged
    assert decode(debug_node_body(ld(15, vi(2, 1))))["spec"]["containers"][0]["securityContext"] == \
        {"privileged": True}


def test_copied_pod_with_probes_env_and_config_volumes():
    probe = ld(1, ld(2, ld(1, "/healthz") + ld(2, vi(1, 0) + vi(2, 8080)) + ld(4, "HTTP"))) + vi(3, 1) + vi(4, 10) \
        + vi(5, 1) + vi(6, 3)
    env = ld(1, "CFG") + ld(3, ld(3, ld(1, ld(1, "app-config")) + ld(2, "mode") + vi(3, 1)))
    env_from = ld(1, "S_") + ld(3, ld(1, ld(1, "creds")))
    container = ld(1, "app") + ld(2, "nginx") + ld(7, env) + ld(19, env_from) + ld(10, probe) \
        + ld(12, ld(2, ld(4, vi(1, 5))))
    volume = ld(1, "cfg") + ld(2, ld(19, ld(1, ld(1, "app-config")) + ld(2, ld(1, "a") + ld(2, "a.conf")) + vi(3, 0o644)))
    empty = ld(1, "scratch") + ld(2, ld(2, ld(1, "Memory") + ld(2, ld(1, "64Mi"))))
    spec = (ld(1, volume) + ld(1, empty) + ld(2, container) + vi(27, 1) + vi(30, 0)
            + ld(14, vi(5, 2000) + vi(4, 10) + vi(4, 20)) + ld(15, ld(1, "regcred")))
    pod = decode(envelope(ld(1, ld(1, "web-copy") + ld(3, "default") + ld(11, ld(1, "app") + ld(2, "web")))
                          + ld(2, spec)))
    s = pod["spec"]
    assert pod["metadata"] == {"name": "web-copy", "namespace": "default", "labels": {"app": "web"}}
    assert s["volumes"] == [{"name": "cfg", "configMap": {"name": "app-config", "items": [{"key": "a", "path": "a.conf"}],
                                                          "defaultMode": 0o644}},
                            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    c = s["containers"][0]
    assert c["env"] == [{"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode",
                                                                           "optional": True}}}]
    assert c["envFrom"] == [{"prefix": "S_", "secretRef": {"name": "creds"}}]
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert s["shareProcessNamespace"] is True and s["enableServiceLinks"] is False
    assert s["securityContext"] == {"fsGroup": 2000, "supplementalGroups": [10, 20]}
    assert s["imagePullSecrets"] == [{"name": "regcred"}]


def test_unread_pod_fields_are_refused_by_name():
    spec = ld(2, ld(1, "c") + ld(2, "busybox") + ld(21, ld(1, "dev") + ld(2, "/dev/xvda")))   # volumeDevices
    with pytest.raises(Unsupported) as ei:
        decode(envelope(ld(1, ld(1, "p")) + ld(2, spec)))
    assert "spec.containers: field 21 is not one skiff reads from protobuf" in str(ei.value)
    with pytest.raises(Unsupported) as ei:                        # an nfs volume (VolumeSource field 7)
        decode(envelope(ld(1, ld(1, "p")) + ld(2, ld(1, ld(1, "v") + ld(2, ld(7, ld(1, "srv")))))))
    assert "spec.volumes: field 7 is not one skiff reads from protobuf" in str(ei.value)


def test_kubectl_create_pdb():
    """kubectl create pdb p1 --selector=app=a --min-available=1 / p2 ... --max-unavailable=50%"""
    def body(name, spec):
        return b"k8s\x00" + ld(1, ld(1, "policy/v1") + ld(2, "PodDisruptionBudget")) + ld(2, (
            ld(1, ld(1, name) + ld(2, "") + vi(7, 0)) + ld(2, spec)
            + ld(3, vi(1, 0) + vi(3, 0) + vi(4, 0) + vi(5, 0) + vi(6, 0))))
    sel = ld(2, ld(1, ld(1, "app") + ld(2, "a")))
    assert decode(body("p1", ld(1, vi(1, 0) + vi(2, 1) + ld(3, "")) + sel))["spec"] == \
        {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}
    assert decode(body("p2", sel + ld(3, vi(1, 1) + vi(2, 0) + ld(3, "50%"))))["spec"] == \
        {"selector": {"matchLabels": {"app": "a"}}, "maxUnavailable": "50%"}
