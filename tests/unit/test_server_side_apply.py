"""Server-side apply and managedFields: the field sets (fieldsV1, associative lists), the merge,
and the API (PATCH application/apply-patch+yaml over aiohttp's test server with a real SQLite
store): upsert 201/200, removal of fields no longer applied, conflicts (409 shape) and force,
apply after a client-side create, kubectl's metadata-only second apply, Update entries
(fieldManager / User-Agent), status writes, and the cost of an in-process pod create."""
from __future__ import annotations

import asyncio
import json
import statistics
import time

import pytest
import pytest_asyncio
import yaml

from skiff.controller import managedfields as MF
from tests.unit.apitest import api_test_client

pytestmark = pytest.mark.asyncio

APPLY = "application/apply-patch+yaml"
DEPS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"


def deployment(replicas=2, image="busybox", labels=None, env=None, name="api"):
    c = {"name": "c", "image": image, "ports": [{"containerPort": 80}]}
    if env is not None:
        c["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels if labels is not None else {"app": "api"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [c]}}}}


def entries(obj):
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields") or []}


# ----------------------------------------------------------------------------- unit

async def test_field_set_and_fields_v1():
    cfg = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["x/y"]},
           "spec": {"tolerations": [{"key": "k"}],
                    "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                                    "env": [{"name": "A", "value": "1"}]}]}}
    paths = MF.owned_paths(MF.flatten(cfg))
    fv1 = MF.to_fields_v1(paths)
    assert fv1 == {
        "f:metadata": {"f:finalizers": {'v:"x/y"': {}}, "f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {
            ".": {}, "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
            "f:image": {}, "f:name": {},
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}},
            "f:tolerations": {}}}
    assert MF.from_fields_v1(fv1) == paths
    # encode keeps the trees of sets that come again (every pod of a ReplicaSet): the same
    # tree for the same set, built afresh for another
    a = MF.encode([({"manager": "m"}, set(paths))])[0]["fieldsV1"]
    b = MF.encode([({"manager": "n"}, set(paths))])[0]["fieldsV1"]
    assert a == fv1 and b is a
    fewer = set(paths) - {("f:spec", "f:tolerations")}
    c = MF.encode([({"manager": "m"}, fewer)])[0]["fieldsV1"]
    assert "f:tolerations" not in c["f:spec"] and MF.from_fields_v1(c) == fewer
    assert MF.path_string(("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")) == \
        '.spec.containers[name="c"].image'
    assert MF.path_string(("f:spec", "f:containers", 'k:{"name":"c"}', "f:ports",
                           'k:{"containerPort":80,"protocol":"TCP"}')) == \
        '.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"]'


async def test_merge_lists_by_key_and_atomic_lists():
    live = {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                                    {"name": "b", "image": "y"}],
                     "tolerations": [{"key": "t1"}]}}
    cfg = {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]},
                                   {"name": "c", "image": "z"}],
                    "tolerations": [{"key": "t2"}]}}
    out = MF.merge(live, cfg)
    assert out["spec"]["containers"] == [
        {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "b", "image": "y"}, {"name": "c", "image": "z"}]
    assert out["spec"]["tolerations"] == [{"key": "t2"}]
    assert live["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]   # not modified
    with pytest.raises(MF.ApplyError, match='omits key field "name"'):
        MF.apply(None, {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "x"}]}},
                 None, "m", "v1", None, "main")


# ----------------------------------------------------------------------------- API

@pytest_asyncio.fixture
async def env(tmp_path):
    async with api_test_client(tmp_path, bookmark_interval=0.2) as (client, reg, token):
        async def call(method, path, body=None, *, ctype="application/json", params=None, ua=None, raw=None):
            headers = {"Authorization": f"Bearer {token}"}
            if ua:
                headers["User-Agent"] = ua
            data = raw
            if body is not None:
                data = json.dumps(body)
            if data is not None:
                headers["Content-Type"] = ctype
            async with client.request(method, path, data=data, headers=headers, params=params) as r:
                return r.status, await r.json()

        call.reg = reg
        yield call


async def apply(call, obj, manager="kubectl", force=False, path=None, as_yaml=False):
    md = obj["metadata"]
    base = DEPS if obj["kind"] == "Deployment" else PODS
    params = {"fieldManager": manager}
    if force:
        params["force"] = "true"
    raw = yaml.safe_dump(obj) if as_yaml else json.dumps(obj)
    return await call("PATCH", path or f"{base}/{md['name']}", raw=raw, ctype=APPLY, params=params)


async def test_create_by_apply_then_reapply_is_a_noop(env):
    st, out = await apply(env, deployment(), as_yaml=True)
    assert st == 201, out
    assert out["spec"]["replicas"] == 2 and out["metadata"]["generation"] == 1
    e = entries(out)[("kubectl", "Apply")]
    assert e["apiVersion"] == "apps/v1" and e["fieldsType"] == "FieldsV1" and e["time"]
    assert e["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert 'k:{"name":"c"}' in e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "f:name" not in e["fieldsV1"]["f:metadata"] and "subresource" not in e
    await asyncio.sleep(1.05)   # a new second: the entry's time must not change either
    st, again = await apply(env, deployment())
    assert st == 200
    assert again["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    assert again == out


async def test_omitted_fields_are_removed_unless_owned_by_another(env):
    env_vars = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    st, _ = await apply(env, deployment(labels={"app": "api", "tier": "web", "x": "1"}, env=env_vars))
    assert st == 201
    # another manager changes tier: it owns it now (an Update takes the fields it changes)
    st, _ = await env("PATCH", f"{DEPS}/api", {"metadata": {"labels": {"tier": "frontend"}}},
                      ctype="application/merge-patch+json", params={"fieldManager": "kubectl-label"})
    assert st == 200
    st, out = await apply(env, deployment(labels={"app": "api"}, env=[{"name": "A", "value": "1"}]))
    assert st == 200, out["message"]
    assert out["metadata"]["labels"] == {"app": "api", "tier": "frontend"}   # x removed, tier kept
    c = out["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert out["metadata"]["generation"] == 2
    ours = entries(out)[("kubectl", "Apply")]["fieldsV1"]
    assert ours["f:metadata"]["f:labels"] == {"f:app": {}}


async def test_conflict_between_appliers_and_force(env):
    assert (await apply(env, deployment(replicas=2), manager="alice"))[0] == 201
    st, out = await apply(env, deployment(replicas=5), manager="bob")
    assert st == 409
    assert out["kind"] == "Status" and out["reason"] == "Conflict" and out["code"] == 409
    assert out["message"] == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert out["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "alice"',
                                         "field": ".spec.replicas"}]
    # the same values: no conflict, shared ownership
    st, out = await apply(env, deployment(replicas=2), manager="bob")
    assert st == 200
    st, out = await apply(env, deployment(replicas=5, image="busybox:2"), manager="bob", force=True)
    assert st == 200 and out["spec"]["replicas"] == 5
    e = entries(out)
    assert "f:replicas" not in e[("alice", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" in e[("bob", "Apply")]["fieldsV1"]["f:spec"]
    st, out = await apply(env, deployment(replicas=2), manager="alice")
    assert st == 409 and len(out["details"]["causes"]) == 2
    assert out["message"].startswith('Apply failed with 2 conflicts: conflicts with "bob":\n- ')


async def test_apply_after_client_side_create(env):
    st, out = await env("POST", DEPS, deployment(), params={"fieldManager": "kubectl-client-side-apply"})
    assert st == 201
    e = entries(out)[("kubectl-client-side-apply", "Update")]
    assert e["apiVersion"] == "apps/v1"
    # defaults set at create belong to the creator, as with Kubernetes
    assert "f:imagePullPolicy" in e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    st, out = await apply(env, deployment(replicas=3))
    assert st == 409
    assert out["message"] == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                              'using apps/v1: .spec.replicas')
    assert out["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                         "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]
    st, out = await apply(env, deployment(replicas=3), force=True)
    assert st == 200 and out["spec"]["replicas"] == 3


async def test_metadata_only_second_apply_leaves_spec_alone(env):
    assert (await apply(env, deployment(replicas=4)))[0] == 201
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "default",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}}}
    st, out = await apply(env, body, manager="kubectl-last-applied")
    assert st == 200, out["message"]
    assert out["spec"]["replicas"] == 4 and out["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert out["metadata"]["labels"] == {"app": "api"}
    assert entries(out)[("kubectl-last-applied", "Apply")]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}


async def test_apply_errors(env):
    raw = json.dumps(deployment())
    st, out = await env("PATCH", f"{DEPS}/api", raw=raw, ctype=APPLY)
    assert st == 422 and out["reason"] == "Invalid"
    assert out["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: ' \
                             'is required for apply patch'
    bad = deployment()
    bad["apiVersion"] = "apps/v2"
    st, out = await apply(env, bad)
    assert st == 400 and "Incorrect version specified in apply patch" in out["message"]
    st, out = await env("PATCH", f"{DEPS}/api", raw="a: [", ctype=APPLY, params={"fieldManager": "m"})
    assert st == 400 and out["message"].startswith("error decoding YAML")


async def test_update_entries_user_agent_and_status(env):
    st, out = await env("POST", PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                        ua="kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07")
    assert st == 201
    assert list(entries(out)) == [("kubectl", "Update")]
    assert "f:status" not in entries(out)[("kubectl", "Update")]["fieldsV1"]
    st, out = await env("PATCH", f"{PODS}/web/status", {"status": {"phase": "Running"}},
                        ctype="application/merge-patch+json", ua="skiff/0.1")
    assert st == 200
    e = entries(out)[("skiff", "Update")]
    assert e["subresource"] == "status" and list(e["fieldsV1"]) == ["f:status"]
    # the status writer never takes spec fields: the creator keeps them
    assert "f:spec" in entries(out)[("kubectl", "Update")]["fieldsV1"]
    st, out = await env("PATCH", f"{PODS}/web", {"metadata": {"labels": {"a": "b"}}},
                        ctype="application/merge-patch+json", params={"fieldManager": "kubectl-label"})
    assert entries(out)[("kubectl-label", "Update")]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}


async def test_untracked_object_first_apply(env):
    await env.reg.create("deployments", deployment(), "default")   # in-process: no manager
    cur = await env.reg.get("deployments", "api", "default")
    assert "managedFields" not in cur["metadata"]
    st, out = await apply(env, deployment(replicas=7))
    assert st == 409 and 'conflict with "before-first-apply" using apps/v1' in out["message"]
    st, out = await apply(env, deployment(replicas=2))
    assert st == 200 and out["spec"]["replicas"] == 2
    assert ("kubectl", "Apply") in entries(out)


async def test_pod_create_cost(env, capsys):
    reg = env.reg

    def pod(i):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]}}
    lat = []
    for i in range(150):
        t = time.perf_counter()
        out = await reg.create("pods", pod(i), "default")
        lat.append(time.perf_counter() - t)
    assert "managedFields" not in out["metadata"]   # the in-process path does no tracking
    tracked = []
    for i in range(150, 300):
        t = time.perf_counter()
        out = await reg.create("pods", pod(i), "default", field_manager="kubectl")
        tracked.append(time.perf_counter() - t)
    assert entries(out)
    t = time.perf_counter()
    for _ in range(200):
        MF.track_update(None, None, out, "kubectl", "v1", None, "main")
    per_track = (time.perf_counter() - t) / 200
    with capsys.disabled():
        print(f"\npod create in-process: median {statistics.median(lat) * 1e3:.3f} ms untracked, "
              f"{statistics.median(tracked) * 1e3:.3f} ms with a field manager; "
              f"track_update alone {per_track * 1e6:.0f} us")
    assert statistics.median(lat) < 0.02 and per_track < 0.002


async def test_kubectl_managed_fields_upgrade_then_reapply(env):
    """kubectl's first server-side apply over a client-side-applied object rewrites
    managedFields with a JSON patch (the client-side entry becomes its Apply entry, "." on the
    lists included); the next apply must drop only the fields nobody applies any more."""
    st, out = await env("POST", DEPS, deployment(), params={"fieldManager": "kubectl-client-side-apply"})
    assert st == 201
    mf = []
    for e in out["metadata"]["managedFields"]:
        if e["manager"] == "kubectl-client-side-apply":
            e = {**e, "manager": "kubectl", "operation": "Apply"}
            tmpl = e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
            tmpl["f:containers"]["."] = {}
        mf.append(e)
    st, out = await env("PATCH", f"{DEPS}/api", [{"op": "replace", "path": "/metadata/managedFields", "value": mf}],
                        ctype="application/json-patch+json", params={"fieldManager": "kubectl"})
    assert st == 200 and list(entries(out)) == [("kubectl", "Apply")]
    st, out = await apply(env, deployment())
    assert st == 200, out["message"]
    c = out["spec"]["template"]["spec"]["containers"]
    assert [x["name"] for x in c] == ["c"] and c[0]["imagePullPolicy"] == "IfNotPresent"   # re-defaulted
    assert "f:imagePullPolicy" not in json.dumps(entries(out)[("kubectl", "Apply")]["fieldsV1"])
    st, out = await env("PATCH", f"{DEPS}/api", {"spec": {"replicas": 3}}, ctype="application/merge-patch+json",
                        params={"fieldManager": "x", "force": "true"})
    assert st == 422 and out["message"].endswith("force: Forbidden: may not be specified for non-apply patch")
