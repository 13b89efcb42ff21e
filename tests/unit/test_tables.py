"""Server-side Table output (meta.k8s.io/v1 Table) negotiated by Accept on GET list, GET item
and watch; includeObject; aggregated discovery (apidiscovery.k8s.io/v2) on /api and /apis.
Plus the cells themselves (skiff.api.tables), which skiffctl's printers share."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import pytest_asyncio

from skiff.api import tables as T
from skiff.cli.ctl import printers as P
from skiff.controller.controlplane import ControlPlane

TBL = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
       "application/json")
AGG = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
       "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
PODS = "/api/v1/namespaces/default/pods"


def ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))


def pod(name="web", containers=("c",), labels=None, **spec):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers], **spec}}


# ------------------------------------------------------------------ cells (no server)

def test_pod_cells_restarts_sidecars_and_conditions():
    p = {"metadata": {"name": "w", "creationTimestamp": ts(400)},
         "spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}, {"name": "i"}],
                  "containers": [{"name": "a"}], "nodeName": "n1",
                  "readinessGates": [{"conditionType": "x/ok"}]},
         "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.9"}],
                    "conditions": [{"type": "Initialized", "status": "True"}, {"type": "x/ok", "status": "True"}],
                    "initContainerStatuses": [
                        {"name": "side", "ready": True, "started": True, "restartCount": 1,
                         "state": {"running": {}}},
                        {"name": "i", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}],
                    "containerStatuses": [
                        {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}},
                         "lastState": {"terminated": {"finishedAt": ts(300)}}}]}}
    cells = T.pod_cells(p)
    # the sidecar counts as a container: 2/2 ready; its restarts add up
    assert cells[:3] == ["w", "2/2", "Running"]
    assert cells[3] in ("3 (5m ago)", "3 (5m1s ago)")
    assert cells[4] in ("6m40s", "6m41s")
    assert cells[5:] == ["10.244.0.9", "n1", "<none>", "1/1"]
    assert T.pod_conditions(p) is None
    p["status"]["phase"] = "Succeeded"
    assert T.pod_conditions(p)[0]["type"] == "Completed"


def test_other_kinds_cells():
    d = {"metadata": {"name": "api", "creationTimestamp": ts(5)},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                  "template": {"spec": {"containers": [{"name": "a", "image": "busybox"},
                                                       {"name": "b", "image": "nginx"}]}}},
         "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert T.deployment_cells(d) == ["api", "2/3", 3, 2, T.since(ts(5)), "a,b", "busybox,nginx", "app=api"]
    assert T.replicaset_cells(d)[:4] == ["api", 3, 0, 2]
    ev = {"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Pulled", "message": "ok\n",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
          "source": {"component": "kubelet", "host": "n1"}, "firstTimestamp": ts(130), "lastTimestamp": ts(3),
          "count": 2}
    c = T.event_cells(ev)
    assert c[1:8] == ["Normal", "Pulled", "pod/web", "spec.containers{c}", "kubelet, n1", "ok", "2m10s"] \
        or c[7] == "2m11s"
    assert c[8:] == [2, "web.1"]
    assert T.secret_cells({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}})[:3] == \
        ["s", "Opaque", 2]
    assert T.configmap_cells({"metadata": {"name": "c"}, "data": {"a": "1"}})[:2] == ["c", 1]
    assert T.cells("frobs", {"metadata": {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}}) == \
        ["x", "2026-01-01T00:00:00Z"]
    assert [c["name"] for c in T.columns("frobs")] == ["Name", "Created At"]
    # every kind's cells line up with its columns
    for plural, cols in T.COLUMNS.items():
        assert len(T.cells(plural, {"metadata": {"name": "x"}})) == len(cols), plural


def test_skiffctl_uses_the_same_columns():
    assert P.headers_for("events", wide=True) == [c["name"].upper() for c in T.COLUMNS["events"]]
    assert P.headers_for("pods") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert P.headers_for("replicasets") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    d = {"metadata": {"name": "api"}, "spec": {"replicas": 1}, "status": {}}
    assert P.row_for("replicasets", d)[:4] == ["api", "1", "0", "0"]


def test_negotiate():
    assert T.table_version(TBL) == "v1"
    assert T.table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert T.table_version("application/json") is None
    assert T.table_version("application/json, application/json;as=Table;v=v1;g=meta.k8s.io") is None
    assert T.table_version(None) is None
    assert T.negotiate(AGG, "APIGroupDiscoveryList", "apidiscovery.k8s.io", ("v2", "v2beta1")) == "v2"


def test_parse_time_and_age():
    assert T.parse_time("2026-11-28T10:00:00Z") == T.parse_time("2026-11-28T11:00:00+01:00")
    assert T.parse_time("2026-11-28T10:00:00.250000Z") - T.parse_time("2026-11-28T10:00:00Z") == \
        pytest.approx(0.25)
    assert T.parse_time("garbage") is None
    assert T.human_duration(192) == "3m12s" and T.human_duration(50 * 3600) == "2d2h"


# ------------------------------------------------------------------ over the API



@pytest_asyncio.fixture
async def cp(tmp_path):
    c = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0", watch_cache_capacity=50)
    await c.start()
    yield c
    await c.stop()


class API:
    def __init__(self, cp, s):
        self.cp, self.s = cp, s
        self.auth = {"Authorization": f"Bearer {cp.admin_token}"}

    async def __call__(self, method, path, body=None, *, accept=None, params=None, ctype="application/json"):
        headers = dict(self.auth)
        if accept:
            headers["Accept"] = accept
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), ctype
        async with self.s.request(method, self.cp.url + path, data=data, headers=headers, params=params) as r:
            return r.status, json.loads(await r.text()), r.headers


@pytest_asyncio.fixture
async def api(cp):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cp.client_ssl())) as s:
        yield API(cp, s)


@pytest.mark.asyncio
async def test_list_and_get_as_table(api):
    for n in ("a", "b", "c"):
        st, _, _ = await api("POST", PODS, pod(n, labels={"app": n}))
        assert st == 201
    st, t, h = await api("GET", PODS, accept=TBL, params={"limit": "500"})
    assert st == 200 and h["Content-Type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"]["resourceVersion"] and "continue" not in t["metadata"]
    cols = t["columnDefinitions"]
    assert [(c["name"], c["priority"]) for c in cols] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1),
        ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert cols[0]["format"] == "name" and cols[0]["type"] == "string" and cols[0]["description"]
    assert [r["cells"][:4] for r in t["rows"]] == [[n, "0/1", "Pending", "0"] for n in "abc"]
    assert t["rows"][0]["cells"][5:] == ["<none>"] * 4
    obj = t["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["namespace"] == "default" and obj["metadata"]["labels"] == {"app": "a"}
    assert "spec" not in obj
    # paging: metadata.continue carried over
    st, t, _ = await api("GET", PODS, accept=TBL, params={"limit": "2"})
    assert len(t["rows"]) == 2 and t["metadata"]["continue"]
    st, t2, _ = await api("GET", PODS, accept=TBL, params={"limit": "2", "continue": t["metadata"]["continue"]})
    assert [r["cells"][0] for r in t2["rows"]] == ["c"]
    # includeObject
    st, t, _ = await api("GET", PODS, accept=TBL, params={"includeObject": "Object"})
    assert t["rows"][0]["object"]["kind"] == "Pod" and t["rows"][0]["object"]["spec"]["containers"]
    st, t, _ = await api("GET", PODS, accept=TBL, params={"includeObject": "None"})
    assert t["rows"][0]["object"] is None
    st, body, _ = await api("GET", PODS, accept=TBL, params={"includeObject": "Everything"})
    assert st == 400 and body["reason"] == "BadRequest"
    # one object
    st, t, h = await api("GET", PODS + "/b", accept=TBL)
    assert st == 200 and t["kind"] == "Table" and [r["cells"][0] for r in t["rows"]] == ["b"]
    assert t["metadata"]["resourceVersion"] == t["rows"][0]["object"]["metadata"]["resourceVersion"]
    # v1beta1 only
    st, t, h = await api("GET", PODS, accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io")
    assert t["apiVersion"] == "meta.k8s.io/v1beta1" and "v=v1beta1" in h["Content-Type"]
    # plain JSON stays a PodList
    st, lst, h = await api("GET", PODS, accept="application/json")
    assert lst["kind"] == "PodList" and h["Content-Type"].startswith("application/json")
    st, got, _ = await api("GET", PODS + "/b")
    assert got["kind"] == "Pod"


@pytest.mark.asyncio
async def test_kind_tables(api):
    st, _, _ = await api("POST", "/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
            "node-role.kubernetes.io/control-plane": ""}}, "spec": {"unschedulable": True}})
    assert st == 201
    await api("PATCH", "/api/v1/nodes/n1/status", {"status": {
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": ts(0),
                        "lastTransitionTime": ts(0)}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
        "nodeInfo": {"kubeletVersion": "v1.32.0-skiff", "osImage": "Debian", "kernelVersion": "6.1",
                     "containerRuntimeVersion": "skiff://1", "machineID": "", "systemUUID": "", "bootID": "",
                     "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}}},
        ctype="application/merge-patch+json")
    st, t, _ = await api("GET", "/api/v1/nodes", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
        "Container-Runtime"]
    (row,) = [r for r in t["rows"] if r["cells"][0] == "n1"]
    assert row["cells"][1:3] == ["Ready,SchedulingDisabled", "control-plane"]
    assert row["cells"][4:] == ["v1.32.0-skiff", "10.0.0.2", "<none>", "Debian", "6.1", "skiff://1"]

    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    st, _, _ = await api("POST", "/apis/apps/v1/namespaces/default/deployments", dep)
    assert st == 201
    st, t, _ = await api("GET", "/apis/apps/v1/namespaces/default/deployments", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    cells = t["rows"][0]["cells"]
    assert cells[0] == "api" and cells[1].endswith("/2") and cells[5:] == ["c", "busybox", "app=api"]
    assert t["rows"][0]["object"]["metadata"]["name"] == "api"

    st, t, _ = await api("GET", "/apis/apps/v1/namespaces/default/replicasets", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]][:5] == ["Name", "Desired", "Current", "Ready", "Age"]
    assert [c["type"] for c in t["columnDefinitions"]][1:4] == ["integer"] * 3

    st, t, _ = await api("GET", "/api/v1/namespaces", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert ["default", "Active"] in [r["cells"][:2] for r in t["rows"]]

    await api("POST", "/api/v1/namespaces/default/configmaps",
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}})
    st, t, _ = await api("GET", "/api/v1/namespaces/default/configmaps/cm", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Data", "Age"] and t["rows"][0]["cells"][:2] == \
        ["cm", 2]
    await api("POST", "/api/v1/namespaces/default/secrets",
              {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}})
    st, t, _ = await api("GET", "/api/v1/namespaces/default/secrets", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert t["rows"][0]["cells"][:3] == ["s", "Opaque", 1]
    st, t, _ = await api("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", accept=TBL)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Holder", "Age"]

    await api("POST", PODS, pod("web"))
    await api("POST", "/api/v1/namespaces/default/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"}, "type": "Warning",
        "reason": "FailedScheduling", "message": "no nodes", "count": 3,
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "source": {"component": "default-scheduler"}, "firstTimestamp": ts(300), "lastTimestamp": ts(10)})
    st, t, _ = await api("GET", "/api/v1/namespaces/default/events", accept=TBL)
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    (row,) = [r for r in t["rows"] if r["cells"][-1] == "web.1"]
    assert row["cells"][1:7] == ["Warning", "FailedScheduling", "pod/web", "", "default-scheduler", "no nodes"]
    assert row["cells"][8] == 3


async def read_events(resp, n, timeout=5.0):
    out = []
    while len(out) < n:
        line = await asyncio.wait_for(resp.content.readline(), timeout)
        assert line, "stream ended"
        out.append(json.loads(line))
    return out


@pytest.mark.asyncio
async def test_watch_as_table(api):
    st, _, _ = await api("POST", PODS, pod("a"))
    st, t, _ = await api("GET", PODS, accept=TBL)
    rv = t["metadata"]["resourceVersion"]
    headers = {**api.auth, "Accept": TBL}
    async with api.s.get(api.cp.url + PODS, params={"watch": "true", "resourceVersion": rv},
                         headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
        await api("POST", PODS, pod("b"))
        await api("DELETE", PODS + "/a")
        evs = await read_events(resp, 2)
    assert [e["type"] for e in evs[:1]] == ["ADDED"]
    first, second = evs[0]["object"], evs[1]["object"]
    assert first["kind"] == "Table" and len(first["rows"]) == 1
    assert first["columnDefinitions"][0]["name"] == "Name"
    assert first["rows"][0]["cells"][:3] == ["b", "0/1", "Pending"]
    assert first["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert first["metadata"]["resourceVersion"] == first["rows"][0]["object"]["metadata"]["resourceVersion"]
    assert second["columnDefinitions"] is None and second["rows"][0]["cells"][0] == "a"
    # a plain watch still streams objects
    async with api.s.get(api.cp.url + PODS, params={"watch": "true", "resourceVersion": rv},
                         headers=api.auth) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        (ev,) = await read_events(resp, 1)
    assert ev["object"]["kind"] == "Pod"


@pytest.mark.asyncio
async def test_aggregated_discovery(api):
    st, body, h = await api("GET", "/api", accept=AGG)
    assert st == 200 and h["Content-Type"] == \
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    (core,) = body["items"]
    assert core["metadata"]["name"] == ""
    (v1,) = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    res = {r["resource"]: r for r in v1["resources"]}
    assert res["pods"]["shortNames"] == ["po"] and res["pods"]["categories"] == ["all"]
    assert res["pods"]["scope"] == "Namespaced" and res["nodes"]["scope"] == "Cluster"
    assert res["pods"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {s["subresource"] for s in res["pods"]["subresources"]} >= {"log", "status", "binding"}
    assert {n: res[n]["shortNames"] for n in ("nodes", "namespaces", "events", "configmaps")} == \
        {"nodes": ["no"], "namespaces": ["ns"], "events": ["ev"], "configmaps": ["cm"]}
    assert "list" in res["pods"]["verbs"] and res["pods"]["singularResource"] == "pod"

    st, body, h = await api("GET", "/apis", accept=AGG)
    assert "as=APIGroupDiscoveryList" in h["Content-Type"]
    groups = {g["metadata"]["name"]: g for g in body["items"]}
    assert "" not in groups and {"apps", "coordination.k8s.io"} <= set(groups)
    apps = {r["resource"]: r for r in groups["apps"]["versions"][0]["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and apps["replicasets"]["shortNames"] == ["rs"]
    assert apps["deployments"]["categories"] == ["all"] and apps["replicasets"]["categories"] == ["all"]
    scale = next(s for s in apps["deployments"]["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}

    st, body, h = await api("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                                                   "as=APIGroupDiscoveryList")
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2beta1" and "v=v2beta1" in h["Content-Type"]
    # the legacy documents otherwise
    st, body, h = await api("GET", "/api", accept="application/json, */*")
    assert body["kind"] == "APIVersions" and h["Content-Type"].startswith("application/json")
    assert "as=" not in h["Content-Type"]
    st, body, _ = await api("GET", "/apis")
    assert body["kind"] == "APIGroupList"
