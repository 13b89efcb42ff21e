"""The issue-6 REST surface over a real ControlPlane (127.0.0.1, port 0): CRUD of deployments,
replicasets, configmaps and secrets; the autoscaling/v1 /scale subresource; propagationPolicy
(Orphan / Foreground finalizers, Background); namespace Terminating, 403 on create, removal
after finalize; the node authorizer for configmaps/secrets; discovery of apps/v1; the state
files' modes; the HTTP client's scale and propagation_policy."""
from __future__ import annotations

import base64
import copy
import os
import stat

import aiohttp
import pytest
import pytest_asyncio

from skiff.api.client import HTTPClient
from skiff.api.errors import APIError
from skiff.controller.controlplane import ControlPlane

pytestmark = pytest.mark.asyncio

DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
RS = "/apis/apps/v1/namespaces/default/replicasets"
CM = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"


def deployment(name="web", replicas=2, labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def replicaset(name="rs1", replicas=1):
    d = deployment(name, replicas)
    return {**d, "kind": "ReplicaSet"}


class API:
    def __init__(self, cp, s):
        self.cp, self.s = cp, s

    async def __call__(self, method, path, body=None, *, token=None, ctype=None, params=None):
        headers = {"Authorization": f"Bearer {token or self.cp.admin_token}"}
        data = None
        if body is not None:
            import json
            data = json.dumps(body)
            headers["Content-Type"] = ctype or "application/json"
        async with self.s.request(method, self.cp.url + path, data=data, headers=headers, params=params) as r:
            try:
                out = await r.json(content_type=None)
            except ValueError:
                out = await r.text()
            return r.status, out


@pytest_asyncio.fixture
async def cp(tmp_path):
    c = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", pod_eviction_timeout=17)
    await c.start()
    yield c
    await c.stop()


@pytest_asyncio.fixture
async def api(cp):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cp.client_ssl())) as s:
        yield API(cp, s)


async def test_discovery_lists_apps(api):
    st, body = await api("GET", "/apis")
    assert st == 200 and "apps" in [g["name"] for g in body["groups"]]
    apps = next(g for g in body["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    st, body = await api("GET", "/apis/apps/v1")
    assert st == 200 and body["groupVersion"] == "apps/v1"
    res = {r["name"]: r for r in body["resources"]}
    assert res["deployments"]["shortNames"] == ["deploy"] and res["deployments"]["categories"] == ["all"]
    assert res["replicasets"]["shortNames"] == ["rs"]
    assert res["deployments/scale"]["kind"] == "Scale" and res["deployments/scale"]["group"] == "autoscaling"
    assert res["deployments/scale"]["version"] == "v1"
    assert res["deployments/scale"]["verbs"] == ["get", "patch", "update"]
    assert {"deployments/status", "replicasets/scale", "replicasets/status"} <= set(res)
    st, body = await api("GET", "/api/v1")
    names = {r["name"] for r in body["resources"]}
    assert {"configmaps", "secrets", "namespaces/finalize"} <= names


async def test_crud_of_the_four_kinds(api):
    st, d = await api("POST", DEPLOY, deployment())
    assert st == 201, d
    assert d["metadata"]["generation"] == 1 and d["spec"]["strategy"]["type"] == "RollingUpdate"
    st, d = await api("GET", DEPLOY + "/web")
    assert st == 200 and d["kind"] == "Deployment" and d["apiVersion"] == "apps/v1"
    st, lst = await api("GET", DEPLOY)
    assert lst["kind"] == "DeploymentList" and [i["metadata"]["name"] for i in lst["items"]] == ["web"]
    st, d2 = await api("PATCH", DEPLOY + "/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, ctype="application/merge-patch+json")
    assert st == 200 and d2["metadata"]["generation"] == 2
    # the selector is immutable
    bad = copy.deepcopy(d2)
    bad["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    bad["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    st, body = await api("PUT", DEPLOY + "/web", bad)
    assert st == 422 and body["details"]["causes"][0]["field"] == "spec.selector"
    # mismatch -> 422 with Kubernetes' message
    st, body = await api("POST", DEPLOY, deployment("bad") | {"spec": {**deployment("bad")["spec"],
                                                                       "selector": {"matchLabels": {"app": "x"}}}})
    assert st == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
                               'map[string]string{"app":"bad"}: `selector` does not match template `labels`')
    # unknown fields: dropped under the default fieldValidation=Warn, a 400 under Strict (as Kubernetes)
    st, body = await api("POST", DEPLOY, {**deployment("u"), "bogus": 1}, params={"fieldValidation": "Strict"})
    assert st == 400 and body["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: '
                                             'strict decoding error: unknown field "bogus"')
    w = copy.deepcopy(d2)
    w["metadata"].pop("resourceVersion", None)
    w["bogus"] = 1
    st, body = await api("PUT", DEPLOY + "/web", w)
    assert st == 200 and "bogus" not in body

    st, rs = await api("POST", RS, replicaset())
    assert st == 201 and rs["spec"]["replicas"] == 1
    st, body = await api("GET", "/apis/apps/v1/replicasets")
    assert st == 200 and body["kind"] == "ReplicaSetList" and len(body["items"]) == 1

    st, cm = await api("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                    "data": {"a": "1"}})
    assert st == 201 and cm["data"] == {"a": "1"}
    st, cm = await api("PUT", CM + "/cfg", {**cm, "data": {"a": "2"}})
    assert st == 200 and cm["data"] == {"a": "2"}

    st, sec = await api("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                                          "stringData": {"password": "hunter2"}})
    assert st == 201 and "stringData" not in sec and sec["type"] == "Opaque"
    assert base64.b64decode(sec["data"]["password"]) == b"hunter2"
    st, body = await api("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                                           "data": {"k": "%%%"}})
    assert st == 400 and body["reason"] == "BadRequest" and "illegal base64 data" in body["message"]

    for path in (DEPLOY + "/web", RS + "/rs1", CM + "/cfg", SECRETS + "/db"):
        st, _ = await api("DELETE", path)
        assert st == 200
        st, body = await api("GET", path)
        assert st == 404


async def test_pods_get_tolerations_from_the_eviction_timeout(api):
    st, p = await api("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert st == 201
    assert {(t["key"], t["effect"], t["tolerationSeconds"]) for t in p["spec"]["tolerations"]} == {
        ("node.kubernetes.io/not-ready", "NoExecute", 17), ("node.kubernetes.io/unreachable", "NoExecute", 17)}


@pytest.mark.parametrize("base,make", [(DEPLOY, deployment), (RS, replicaset)])
async def test_scale_subresource(api, base, make):
    name = make()["metadata"]["name"]
    st, d = await api("POST", base, make())
    assert st == 201
    st, sc = await api("GET", f"{base}/{name}/scale")
    assert st == 200 and sc["kind"] == "Scale" and sc["apiVersion"] == "autoscaling/v1"
    assert sc["spec"] == {"replicas": d["spec"]["replicas"]}
    assert sc["status"] == {"replicas": 0, "selector": f"app={name}"}
    assert sc["metadata"]["uid"] == d["metadata"]["uid"] and sc["metadata"]["namespace"] == "default"
    st, sc2 = await api("PUT", f"{base}/{name}/scale", {**sc, "spec": {"replicas": 5}})
    assert st == 200 and sc2["spec"]["replicas"] == 5
    st, d2 = await api("GET", f"{base}/{name}")
    assert d2["spec"]["replicas"] == 5 and d2["metadata"]["generation"] == 2
    assert sc2["metadata"]["resourceVersion"] == d2["metadata"]["resourceVersion"]
    # stale resourceVersion -> 409
    st, body = await api("PUT", f"{base}/{name}/scale", {**sc, "spec": {"replicas": 1}})
    assert st == 409 and body["reason"] == "Conflict"
    st, sc3 = await api("PATCH", f"{base}/{name}/scale", {"spec": {"replicas": 0}},
                        ctype="application/merge-patch+json")
    assert st == 200 and sc3["spec"]["replicas"] == 0
    st, d3 = await api("GET", f"{base}/{name}")
    assert d3["spec"]["replicas"] == 0 and d3["metadata"]["generation"] == 3
    st, body = await api("PATCH", f"{base}/{name}/scale", {"spec": {"replicas": -1}},
                         ctype="application/merge-patch+json")
    assert st == 422 and body["details"]["causes"][0]["field"] == "spec.replicas"
    st, body = await api("GET", f"{base}/nope/scale")
    assert st == 404
    st, body = await api("GET", f"/api/v1/namespaces/default/configmaps/x/scale")
    assert st == 404


async def test_client_scale_and_propagation(cp):
    c = HTTPClient(cp.url, cp.admin_token, ca_file=cp.ca_file)
    try:
        await c.create("deployments", deployment("api", 1), "default")
        sc = await c.get("deployments", "api", "default", subresource="scale")
        assert sc["spec"]["replicas"] == 1
        sc = await c.patch("deployments", "api", {"spec": {"replicas": 4}}, "default", subresource="scale")
        assert sc["spec"]["replicas"] == 4
        sc["spec"]["replicas"] = 3
        sc = await c.update("deployments", sc, subresource="scale")
        assert (await c.get("deployments", "api", "default"))["spec"]["replicas"] == 3
        out = await c.delete("deployments", "api", "default", propagation_policy="Orphan")
        assert out["metadata"]["finalizers"] == ["orphan"] and out["metadata"]["deletionTimestamp"]
        lc = cp.local_client()
        sc = await lc.get("deployments", "api", "default", subresource="scale")
        assert sc["spec"]["replicas"] == 3
        await lc.patch("deployments", "api", {"metadata": {"finalizers": None}}, "default")
        with pytest.raises(APIError) as ei:
            await c.get("deployments", "api", "default")
        assert ei.value.code == 404
    finally:
        await c.close()


@pytest.mark.parametrize("how", ["body", "query"])
async def test_propagation_policies(api, how):
    async def delete(path, policy):
        if how == "body":
            return await api("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "propagationPolicy": policy})
        return await api("DELETE", path, params={"propagationPolicy": policy})

    for name, policy, fin in (("o", "Orphan", "orphan"), ("f", "Foreground", "foregroundDeletion")):
        await api("POST", DEPLOY, deployment(name))
        st, d = await delete(f"{DEPLOY}/{name}", policy)
        assert st == 200 and d["metadata"]["finalizers"] == [fin] and d["metadata"]["deletionTimestamp"]
        st, d = await api("GET", f"{DEPLOY}/{name}")
        assert st == 200 and d["metadata"]["finalizers"] == [fin]       # kept until the GC is done
        # removing the last finalizer removes the object
        st, _ = await api("PATCH", f"{DEPLOY}/{name}", {"metadata": {"finalizers": []}},
                          ctype="application/merge-patch+json")
        assert st == 200
        st, _ = await api("GET", f"{DEPLOY}/{name}")
        assert st == 404
    await api("POST", RS, replicaset("b"))
    st, d = await delete(f"{RS}/b", "Background")
    assert st == 200
    st, _ = await api("GET", f"{RS}/b")
    assert st == 404
    # an object with another finalizer stays, marked
    await api("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "kept", "finalizers": ["example.com/hold"]}})
    st, d = await delete(f"{CM}/kept", "Orphan")
    assert d["metadata"]["finalizers"] == ["example.com/hold", "orphan"]
    st, d = await delete(f"{CM}/kept", "Background")   # Background drops the orphan finalizer
    assert d["metadata"]["finalizers"] == ["example.com/hold"]
    st, body = await delete(f"{CM}/kept", "Sideways")
    assert st == 422 and "propagationPolicy" in body["message"]


async def test_namespace_terminating(api):
    st, ns = await api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": "team"}})
    assert st == 201
    await api("POST", "/api/v1/namespaces/team/configmaps",
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    st, ns = await api("DELETE", "/api/v1/namespaces/team")
    assert st == 200 and ns["metadata"]["deletionTimestamp"]
    assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    st, body = await api("POST", "/api/v1/namespaces/team/configmaps",
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}})
    assert st == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('configmaps "d" is forbidden: unable to create new content in namespace team '
                               'because it is being terminated')
    st, body = await api("POST", "/apis/apps/v1/namespaces/team/deployments", deployment())
    assert st == 403
    # objects in it can still be read and deleted (the namespace controller's work)
    st, _ = await api("DELETE", "/api/v1/namespaces/team/configmaps/c")
    assert st == 200
    st, ns = await api("GET", "/api/v1/namespaces/team")
    assert st == 200 and ns["status"]["phase"] == "Terminating"   # still there: finalizer
    st, ns2 = await api("PUT", "/api/v1/namespaces/team/finalize", {**ns, "spec": {"finalizers": []}})
    assert st == 200
    st, _ = await api("GET", "/api/v1/namespaces/team")
    assert st == 404
    st, body = await api("DELETE", "/api/v1/namespaces/kube-system")
    assert st == 403


async def test_namespace_removed_by_update_emptying_finalizers(api):
    await api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t2"}})
    st, ns = await api("DELETE", "/api/v1/namespaces/t2")
    assert st == 200
    st, _ = await api("PATCH", "/api/v1/namespaces/t2", {"spec": {"finalizers": []}},
                      ctype="application/merge-patch+json")
    assert st == 200
    st, _ = await api("GET", "/api/v1/namespaces/t2")
    assert st == 404


async def test_node_may_get_only_referenced_configmaps_and_secrets(api, cp):
    for kind, path, name in (("Secret", SECRETS, "mine"), ("Secret", SECRETS, "other"),
                             ("ConfigMap", CM, "cfg"), ("ConfigMap", CM, "cfg-other"),
                             ("Secret", SECRETS, "vol")):
        st, _ = await api("POST", path, {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}})
        assert st == 201
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeName": "n1", "containers": [{
               "name": "c", "image": "busybox",
               "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "pw"}}}],
               "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
               "volumes": [{"name": "v", "secret": {"secretName": "vol"}}]}}
    st, body = await api("POST", "/api/v1/namespaces/default/pods", pod)
    assert st == 201, body
    tok = await cp.mint_node_token("n1")
    other = await cp.mint_node_token("n2")
    for path in (SECRETS + "/mine", SECRETS + "/vol", CM + "/cfg"):
        st, body = await api("GET", path, token=tok)
        assert st == 200, (path, body)
        st, body = await api("GET", path, token=other)
        assert st == 403
    # the check reads the node's own pods from the cache's node index, never the whole namespace
    # (a GET per pod start: listing every pod made it quadratic)
    listed = []
    real_list = cp.registry.storage.list_keyed

    async def spy(prefix, *a, **kw):
        listed.append(prefix)
        return await real_list(prefix, *a, **kw)
    cp.registry.storage.list_keyed = spy
    try:
        assert (await api("GET", CM + "/cfg", token=tok))[0] == 200
    finally:
        del cp.registry.storage.list_keyed
    assert not any("/pods/" in p for p in listed), listed
    st, body = await api("GET", SECRETS + "/other", token=tok)
    assert st == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('secrets "other" is forbidden: User "system:node:n1" cannot get resource "secrets" '
                               'in API group "" in the namespace "default": no relationship found between node '
                               "'n1' and this object")
    st, _ = await api("GET", CM + "/cfg-other", token=tok)
    assert st == 403
    st, _ = await api("GET", SECRETS, token=tok)
    assert st == 403
    st, _ = await api("GET", SECRETS, token=tok, params={"watch": "true"})
    assert st == 403
    st, _ = await api("PUT", SECRETS + "/mine", {"apiVersion": "v1", "kind": "Secret",
                                                 "metadata": {"name": "mine"}}, token=tok)
    assert st == 403


async def test_state_files_are_private(cp):
    d = cp.data_dir
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for f in os.listdir(d):
        if f.startswith("state.db"):
            assert stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode) == 0o600, f
    assert os.path.exists(os.path.join(d, "state.db"))


async def test_state_dir_is_tightened_on_start(tmp_path):
    d = tmp_path / "loose"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    c = ControlPlane(str(d), listen="127.0.0.1:0")
    await c.start()
    try:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(d / "state.db").st_mode) == 0o600
    finally:
        await c.stop()
