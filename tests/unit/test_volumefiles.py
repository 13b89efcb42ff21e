"""downwardAPI and projected volumes: the files the agent writes, the refs it fetches, the node
authorizer's view of them, and the API server's checks."""
import base64

import pytest

from skiff.agent.env import ConfigError
from skiff.agent.volumefiles import (format_map, go_quote, holds_secrets, token_key, token_sources, volume_files,
                                     volume_refs)
from skiff.api.validation import validate
from skiff.controller.auth import pod_references
from skiff.errors import SkiffError

CM = {"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}
SEC = {"metadata": {"name": "sec"}, "data": {"token": base64.b64encode(b"t0k").decode()}}
OBJS = {("configmaps", "cfg"): CM, ("secrets", "sec"): SEC, ("configmaps", "gone"): None}
POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                    "labels": {"tier": "front", "app": "web"},
                    "annotations": {"note": 'say "hi"\nbye', "é": "ü\x01"}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}}


def test_go_quote_and_format_map_are_the_kubelets():
    assert go_quote('a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert go_quote("ü\x01\u00a0") == '"ü\\x01\\u00a0"'
    assert format_map({"tier": "front", "app": "web"}) == 'app="web"\ntier="front"'
    assert format_map({}) == ""


def test_downward_api_files():
    vol = {"name": "info", "downwardAPI": {"defaultMode": 0o600, "items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}, "mode": 0o444},
        {"path": "ids/name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
    ]}}
    files = {p: (d, m) for p, d, m in volume_files(vol, {}, POD)}
    assert files["labels"] == (b'app="web"\ntier="front"', 0o600)
    assert files["annotations"] == ('note="say \\"hi\\"\\nbye"\né="ü\\x01"'.encode(), 0o444)
    assert files["ids/name"] == (b"web-1", 0o600)
    assert files["ns"][0] == b"shop" and files["uid"][0] == b"u-1" and files["tier"][0] == b"front"
    assert files["cpu"][0] == b"500" and files["mem"][0] == b"64"
    assert volume_refs({"volumes": [vol]}) == set()


def test_downward_api_unknown_container_fails_the_mount():
    vol = {"name": "info", "downwardAPI": {"items": [
        {"path": "cpu", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}]}}
    with pytest.raises(ConfigError) as e:
        volume_files(vol, {}, POD)
    assert e.value.reason == "FailedMount" and 'volume "info"' in str(e.value)


def test_projected_merges_sources_with_one_default_mode():
    vol = {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "conf/a"}]}},
        {"secret": {"name": "sec"}},
        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"configMap": {"name": "gone", "optional": True}},
    ]}}
    assert volume_files(vol, OBJS, POD) == [("conf/a", b"1", 0o440), ("token", b"t0k", 0o440),
                                            ("labels", b'app="web"\ntier="front"', 0o440)]
    assert volume_refs({"volumes": [vol]}) == {("configmaps", "cfg"), ("secrets", "sec"), ("configmaps", "gone")}
    assert holds_secrets(vol)
    assert not holds_secrets({"name": "x", "projected": {"sources": [{"configMap": {"name": "cfg"}}]}})
    # the node authorizer lets the node read what the projection names (a projected secret is `name`)
    assert {("configmap", "cfg"), ("secret", "sec"), ("configmap", "gone")} <= pod_references(
        {"spec": {"volumes": [vol]}})


def test_projected_missing_object_fails_unless_optional():
    vol = {"name": "all", "projected": {"sources": [{"configMap": {"name": "gone"}}]}}
    with pytest.raises(ConfigError) as e:
        volume_files(vol, OBJS, POD)
    assert e.value.reason == "FailedMount" and 'configmap "gone" not found' in str(e.value)
    vol = {"name": "all", "projected": {"sources": [{"configMap": {"name": "gone", "optional": True}}]}}
    assert volume_files(vol, OBJS, POD) == []


def test_projected_token_is_the_one_requested_for_its_audience_and_lifetime():
    from skiff.controller.admission_serviceaccount import token_volume
    vol = token_volume("kube-api-access-x2b4c")
    vault = {"name": "vault", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 7200, "path": "sa/token"}}]}}
    spec = {"containers": [{"name": "c", "volumeMounts": [{"name": "vault", "mountPath": "/v"}]}],
            "volumes": [vol, vault]}
    assert token_sources(spec) == [("kube-api-access-x2b4c", {"expirationSeconds": 3607, "path": "token"}),
                                   ("vault", vault["projected"]["sources"][0]["serviceAccountToken"])]
    assert token_sources(spec, spec["containers"][0]) == [("vault", vault["projected"]["sources"][0]
                                                          ["serviceAccountToken"])]
    # the token is no object to fetch; the CA's ConfigMap is
    assert volume_refs(spec) == {("configmaps", "kube-root-ca.crt")}
    objs = {("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}},
            token_key({"expirationSeconds": 3607}): {"token": "tok-a"},
            token_key({"audience": "vault", "expirationSeconds": 7200}): {"token": "tok-v"}}
    assert volume_files(vol, objs, POD) == [("token", b"tok-a", 0o644), ("ca.crt", b"PEM", 0o644),
                                            ("namespace", b"shop", 0o644)]
    assert volume_files(vault, objs, POD) == [("sa/token", b"tok-v", 0o644)]
    with pytest.raises(ConfigError) as e:      # not requested (refused): the mount fails
        volume_files(vault, {}, POD)
    assert e.value.reason == "FailedMount" and 'volume "vault" : failed to fetch token' in str(e.value)


def _pod(vols):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                {"name": v["name"], "mountPath": "/m/" + v["name"]} for v in vols]}], "volumes": vols}}


def test_api_accepts_downward_and_projected_volumes():
    assert validate(_pod([
        {"name": "d", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "a", "fieldRef": {"fieldPath": "metadata.annotations['x']"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu"}}]}},
        {"name": "p", "projected": {"defaultMode": 0o400, "sources": [
            {"configMap": {"name": "a"}}, {"secret": {"name": "s", "items": [{"key": "k", "path": "k"}]}}]}},
    ])) == []


@pytest.mark.parametrize("vol,msg", [
    ({"downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}},
     'spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "status.podIP": '
     'supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", '
     '"metadata.uid"'),
    ({"downwardAPI": {"items": [{"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]}},
     "spec.volumes[0].downwardAPI.items[0].path: Invalid value: \"../x\": must not contain '..'"),
    ({"downwardAPI": {"items": [{"path": "x"}]}},
     "spec.volumes[0].downwardAPI.items[0]: Required value: one of fieldRef and resourceFieldRef is required"),
    ({"downwardAPI": {"items": [{"path": "x", "resourceFieldRef": {"resource": "limits.cpu"}}]}},
     "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"),
    ({"projected": {"sources": [{"clusterTrustBundle": {"path": "b", "name": "x"}}]}},
     "spec.volumes[0].projected.sources[0].clusterTrustBundle is not supported by skiff"),
    ({"projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 599}}]}},
     "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 599: "
     "may not specify a duration less than 10 minutes"),
    ({"projected": {"sources": [{"serviceAccountToken": {"path": "/token"}}]}},
     'spec.volumes[0].projected.sources[0].serviceAccountToken.path: Invalid value: "/token": must be a relative path'),
    ({"projected": {"sources": [{"serviceAccountToken": {}}]}},
     "spec.volumes[0].projected.sources[0].serviceAccountToken.path: Required value"),
    ({"projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                                {"serviceAccountToken": {"path": "t", "audience": "vault"}}]}},
     'spec.volumes[0].projected.sources[1].serviceAccountToken.path: Invalid value: "t": conflicting duplicate paths'),
    ({"projected": {"sources": [{"configMap": {"name": "a"}, "secret": {"name": "b"}}]}},
     "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source"),
    ({"projected": {"sources": [{"configMap": {"name": "a", "items": [{"key": "k", "path": "x"}]}},
                                {"downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
     'spec.volumes[0].projected.sources[1].downwardAPI.items[0].path: Invalid value: "x": conflicting duplicate paths'),
    ({"projected": {"sources": [{"secret": {"items": [{"key": "k", "path": "k"}]}}]}},
     "spec.volumes[0].projected.sources[0].secret.name: Required value"),
    ({"configMap": {"name": "a", "items": [{"key": "k", "path": "/etc/k"}]}},
     'spec.volumes[0].configMap.items[0].path: Invalid value: "/etc/k": must be a relative path'),
])
def test_api_rejects_bad_file_volumes(vol, msg):
    with pytest.raises(SkiffError) as e:
        validate(_pod([{"name": "v", **vol}]))
    assert msg in str(e.value)


def test_describe_shows_downward_and_projected_volumes():
    from skiff.cli.ctl.describe import describe_pod
    p = {"metadata": {"name": "p", "namespace": "default"}, "status": {},
         "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": [
             {"name": "info", "downwardAPI": {"items": [
                 {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                 {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}]}},
             {"name": "all", "projected": {"sources": [{"configMap": {"name": "cfg"}},
                                                       {"secret": {"name": "sec", "optional": True}},
                                                       {"downwardAPI": {"items": []}},
                                                       {"serviceAccountToken": {"expirationSeconds": 3607,
                                                                                "path": "token"}}]}}]}}
    lines = [" ".join(line.split()) for line in describe_pod(p, []).splitlines()]
    i = lines.index("info:")
    assert lines[i + 1:i + 5] == ["Type: DownwardAPI (a volume populated by information about the pod)",
                                  "Items:", "metadata.labels -> labels", "limits.cpu -> cpu"]
    i = lines.index("all:")
    assert lines[i + 1:i + 7] == ["Type: Projected (a volume that contains injected data from multiple sources)",
                                  "ConfigMapName: cfg", "ConfigMapOptional: <nil>", "SecretName: sec",
                                  "SecretOptional: true", "DownwardAPI: true"]
    assert lines[i + 7] == "TokenExpirationSeconds: 3607"


@pytest.mark.asyncio
async def test_the_agent_renews_a_token_at_80_percent_of_its_life_and_rewrites_its_volume():
    import time
    from types import SimpleNamespace
    from skiff.agent.podworker import PodWorker
    from skiff.controller.admission_serviceaccount import token_volume

    class Client:
        def __init__(self):
            self.asked = []

        async def create(self, resource, body, namespace, subresource=None, name=None):
            self.asked.append((resource, subresource, name, namespace, body))
            return {"status": {"token": f"tok-{len(self.asked)}"}}

    vol = token_volume("kube-api-access-x2b4c")
    pod = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"},
           "spec": {"serviceAccountName": "app", "volumes": [vol], "containers": [
               {"name": "c", "volumeMounts": [{"name": vol["name"], "mountPath": "/var/run/secrets/x"}]}]}}
    w = object.__new__(PodWorker)      # the worker's state, without its task
    w.uid, w._written = "u-1", {vol["name"]: []}
    w.agent = SimpleNamespace(client=Client(), runtime=SimpleNamespace())
    key = token_key({"expirationSeconds": 3607})
    w._objects = {("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}},
                  key: {"token": "tok-0", "renew_at": time.monotonic() + 60}}
    await w.renew_tokens(pod)           # not due: nothing asked
    assert w.agent.client.asked == [] and w._written[vol["name"]] == []
    w._objects[key]["renew_at"] = time.monotonic() - 1
    await w.renew_tokens(pod)
    [(resource, sub, name, ns, body)] = w.agent.client.asked
    assert (resource, sub, name, ns) == ("serviceaccounts", "token", "app", "shop")
    assert body["spec"] == {"audiences": [], "expirationSeconds": 3607, "boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "u-1"}}
    assert ("token", b"tok-1", 0o644) in w._written[vol["name"]]
    assert w._objects[key]["renew_at"] > time.monotonic() + 0.8 * 3607 - 5
