"""The pure endpoints logic (skiff/controller/workloads/endpointslogic.py) against plain dicts:
which pods are endpoints and whether ready, port resolution, the Endpoints subsets and when
they are written, the EndpointSlices (grouping, splitting at 100, in-place updates, the
placeholder) and the last-change-trigger-time."""
from __future__ import annotations

import copy

from skiff.controller.workloads import endpointslogic as E


def svc(name="web", selector=None, ports=None, labels=None, cluster_ip="10.96.0.10", **spec):
    s = {"selector": {"app": "web"} if selector is None else selector,
         "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}] if ports is None else ports,
         **spec}
    if cluster_ip is not None:
        s["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-svc-{name}",
                         "creationTimestamp": "2025-01-01T00:00:00Z", "labels": labels or {}},
            "spec": s}


def pod(name, ip="10.1.0.1", ready=True, node="n1", labels=None, deleted=False, phase="Running",
        ports=None, ready_at="2025-01-01T00:00:10Z", **spec):
    md = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleted:
        md["deletionTimestamp"] = "2025-01-01T00:01:00Z"
    st = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                          "lastTransitionTime": ready_at}]}
    if ip:
        st["podIP"] = ip
        st["podIPs"] = [{"ip": ip}]
    c = {"name": "c", "image": "busybox"}
    if ports:
        c["ports"] = ports
    return {"metadata": md, "spec": {"nodeName": node, "containers": [c], **spec}, "status": st}


def ref(name):
    return {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"}


def addr(name, ip, node="n1"):
    return {"ip": ip, "nodeName": node, "targetRef": ref(name)}


HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


# -- which pods, ready or not --------------------------------------------------------------------------
def test_ready_and_not_ready_addresses():
    pods = [pod("b", "10.1.0.2"), pod("a", "10.1.0.10"), pod("c", "10.1.0.3", ready=False)]
    assert E.desired_subsets(svc(), pods) == [{
        "addresses": [addr("b", "10.1.0.2"), addr("a", "10.1.0.10")],     # numeric IP order
        "notReadyAddresses": [addr("c", "10.1.0.3")], "ports": [HTTP]}]


def test_pods_without_ip_finished_or_terminating_are_left_out():
    pods = [pod("noip", ip=None), pod("done", "10.1.0.2", phase="Succeeded"), pod("failed", "10.1.0.3", phase="Failed"),
            pod("going", "10.1.0.4", deleted=True), pod("ok", "10.1.0.5")]
    assert E.desired_subsets(svc(), pods) == [{"addresses": [addr("ok", "10.1.0.5")], "ports": [HTTP]}]
    # in slices a terminating pod is there, not ready, serving as its readiness says
    (g,) = E.desired_slices(svc(), pods)["IPv4"].values()
    eps = sorted(g.endpoints.values(), key=lambda e: e["addresses"])
    assert [(e["addresses"], e["conditions"]) for e in eps] == [
        (["10.1.0.4"], {"ready": False, "serving": True, "terminating": True}),
        (["10.1.0.5"], {"ready": True, "serving": True, "terminating": False})]


def test_publish_not_ready_addresses_makes_every_pod_ready():
    s = svc(publishNotReadyAddresses=True)
    pods = [pod("a", "10.1.0.1", ready=False), pod("b", "10.1.0.2", deleted=True)]
    assert E.desired_subsets(s, pods) == [{"addresses": [addr("a", "10.1.0.1"), addr("b", "10.1.0.2")],
                                           "ports": [HTTP]}]
    (g,) = E.desired_slices(s, pods)["IPv4"].values()
    conds = {e["targetRef"]["name"]: e["conditions"] for e in g.endpoints.values()}
    assert conds == {"a": {"ready": True, "serving": False, "terminating": False},
                     "b": {"ready": True, "serving": True, "terminating": True}}


def test_selector_matching_and_services_left_alone():
    assert E.selects({"app": "web"}, {"app": "web", "x": "y"})
    assert not E.selects({"app": "web", "tier": "fe"}, {"app": "web"})
    assert not E.selects({"app": "web"}, None)
    assert E.manages(svc())
    assert not E.manages(svc(selector={}))                       # an empty selector is none
    no_sel = svc()
    del no_sel["spec"]["selector"]
    assert not E.manages(no_sel)
    assert not E.manages(svc(type="ExternalName", externalName="example.com"))


# -- ports ------------------------------------------------------------------------------------------------
def test_named_target_port_resolves_per_pod():
    s = svc(ports=[{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    pods = [pod("a", "10.1.0.1", ports=[{"name": "http", "containerPort": 8080}]),
            pod("b", "10.1.0.2", ports=[{"name": "http", "containerPort": 9090, "protocol": "TCP"}]),
            pod("c", "10.1.0.3", ports=[{"name": "http", "containerPort": 7070, "protocol": "UDP"}]),  # wrong protocol
            pod("d", "10.1.0.4")]                                                                       # no such port
    assert E.find_port(pods[0], s["spec"]["ports"][0]) == 8080
    assert E.find_port(pods[3], s["spec"]["ports"][0]) is None
    assert E.desired_subsets(s, pods) == [
        {"addresses": [addr("a", "10.1.0.1")], "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]},
        {"addresses": [addr("b", "10.1.0.2")], "ports": [{"name": "web", "port": 9090, "protocol": "TCP"}]}]
    groups = E.desired_slices(s, pods)["IPv4"]
    by_ports = {k: sorted(e["targetRef"]["name"] for e in g.endpoints.values()) for k, g in groups.items()}
    # in slices, pods that resolve no port still are endpoints, in a slice without ports
    assert by_ports == {(("web", 8080, "TCP", ""),): ["a"], (("web", 9090, "TCP", ""),): ["b"], (): ["c", "d"]}


def test_named_port_of_a_sidecar_resolves():
    s = svc(ports=[{"port": 80, "targetPort": "metrics", "protocol": "TCP"}])
    p = pod("a", "10.1.0.1")
    p["spec"]["initContainers"] = [{"name": "side", "image": "x", "restartPolicy": "Always",
                                    "ports": [{"name": "metrics", "containerPort": 9100}]}]
    assert E.find_port(p, s["spec"]["ports"][0]) == 9100
    p["spec"]["initContainers"][0].pop("restartPolicy")
    assert E.find_port(p, s["spec"]["ports"][0]) is None


def test_multiple_ports_and_subsets_by_identical_addresses():
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                   {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP",
                    "appProtocol": "http"},
                   {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}])
    both = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]
    pods = [pod("a", "10.1.0.1", ports=both), pod("b", "10.1.0.2", ports=both[:1]),
            pod("c", "10.1.0.3", ports=both, ready=False)]
    dns = {"name": "dns", "port": 5353, "protocol": "UDP"}
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    metrics = {"name": "metrics", "port": 9100, "protocol": "TCP", "appProtocol": "http"}
    assert E.desired_subsets(s, pods) == [
        # dns and http: every pod; metrics: a and c only
        {"addresses": [addr("a", "10.1.0.1"), addr("b", "10.1.0.2")], "notReadyAddresses": [addr("c", "10.1.0.3")],
         "ports": [dns, http]},
        {"addresses": [addr("a", "10.1.0.1")], "notReadyAddresses": [addr("c", "10.1.0.3")], "ports": [metrics]}]
    groups = E.desired_slices(s, pods)["IPv4"]
    assert sorted(len(g.endpoints) for g in groups.values()) == [1, 2]
    g = next(g for g in groups.values() if len(g.endpoints) == 2)
    assert g.ports == [{"name": "http", "port": 8080, "protocol": "TCP"},
                       {"name": "metrics", "port": 9100, "protocol": "TCP", "appProtocol": "http"},
                       {"name": "dns", "port": 5353, "protocol": "UDP"}]


def test_unnamed_port_and_headless_without_ports():
    s = svc(ports=[{"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    assert E.desired_subsets(s, [pod("a")]) == [{"addresses": [addr("a", "10.1.0.1")],
                                                "ports": [{"port": 8080, "protocol": "TCP"}]}]
    (g,) = E.desired_slices(s, [pod("a")])["IPv4"].values()
    assert g.ports == [{"name": "", "port": 8080, "protocol": "TCP"}]
    headless = svc(ports=[], cluster_ip="None")
    assert E.desired_subsets(headless, [pod("a")]) == [{"addresses": [addr("a", "10.1.0.1")]}]
    assert E.desired_subsets(svc(ports=[]), [pod("a")]) == []     # not headless: no ports, no endpoints


def test_hostname_for_a_pod_in_the_services_subdomain():
    s = svc(cluster_ip="None")
    p = pod("a", hostname="web-0", subdomain="web")
    (sub,) = E.desired_subsets(s, [p])
    assert sub["addresses"][0]["hostname"] == "web-0"
    (g,) = E.desired_slices(s, [p])["IPv4"].values()
    assert next(iter(g.endpoints.values()))["hostname"] == "web-0"
    (sub,) = E.desired_subsets(s, [pod("b", hostname="web-1", subdomain="other")])
    assert "hostname" not in sub["addresses"][0]


# -- the Endpoints object ----------------------------------------------------------------------------------
def test_endpoints_object_then_no_write_when_unchanged():
    s = svc(labels={"team": "a"})
    pods = [pod("a", "10.1.0.1"), pod("b", "10.1.0.2", ready=False)]
    new = E.endpoints_update(s, None, E.desired_subsets(s, pods), "2025-01-01T00:00:10Z")
    assert new == {"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": "web", "namespace": "default", "labels": {"team": "a"},
                                "annotations": {E.TRIGGER_TIME_ANNOTATION: "2025-01-01T00:00:10Z"}},
                   "subsets": [{"addresses": [addr("a", "10.1.0.1")], "notReadyAddresses": [addr("b", "10.1.0.2")],
                                "ports": [HTTP]}]}
    stored = copy.deepcopy(new)
    stored["metadata"].update(resourceVersion="7", uid="u")
    # the same pods in another order, a pod's resourceVersion in its targetRef: no write
    stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "5"
    assert E.endpoints_update(s, stored, E.desired_subsets(s, list(reversed(pods))), None) is None
    # b ready: written, resourceVersion kept (a compare-and-swap update), the trigger time updated
    pods[1] = pod("b", "10.1.0.2", ready_at="2025-01-01T00:00:20Z")
    upd = E.endpoints_update(s, stored, E.desired_subsets(s, pods), "2025-01-01T00:00:20Z")
    assert upd["metadata"]["resourceVersion"] == "7"
    assert upd["metadata"]["annotations"] == {E.TRIGGER_TIME_ANNOTATION: "2025-01-01T00:00:20Z"}
    assert upd["subsets"] == [{"addresses": [addr("a", "10.1.0.1"), addr("b", "10.1.0.2")], "ports": [HTTP]}]
    # the Service's labels changed: written
    s2 = svc(labels={"team": "b"})
    assert E.endpoints_update(s2, stored, E.desired_subsets(s2, pods[:1] + [pod("b", "10.1.0.2", ready=False)]),
                              None)["metadata"]["labels"] == {"team": "b"}


def test_endpoints_of_a_headless_service_and_with_no_pods():
    s = svc(cluster_ip="None")
    new = E.endpoints_update(s, None, [], None)
    assert new["metadata"]["labels"] == {E.HEADLESS_LABEL: ""} and "subsets" not in new
    assert "annotations" not in new["metadata"]
    assert E.endpoints_update(s, {**new, "subsets": []}, [], None) is None


def test_endpoints_truncated_beyond_capacity():
    s = svc()
    pods = [pod(f"p{i}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(1200)]
    new = E.endpoints_update(s, None, E.desired_subsets(s, pods), None)
    assert sum(len(x.get("addresses") or ()) for x in new["subsets"]) == 1000
    assert new["metadata"]["annotations"] == {E.OVER_CAPACITY_ANNOTATION: "truncated"}
    assert E.endpoints_update(s, new, E.desired_subsets(s, pods), None) is None


# -- EndpointSlices ------------------------------------------------------------------------------------------
def _stored(plan_objs, start=0):
    """What the API server would hand back for created slices: names and resourceVersions."""
    out = []
    for i, s in enumerate(plan_objs):
        s = copy.deepcopy(s)
        m = s["metadata"]
        m.setdefault("name", m.pop("generateName", "web-") + f"s{start + i}")
        m["resourceVersion"] = str(100 + start + i)
        m["uid"] = f"uid-slice-{start + i}"
        out.append(s)
    return out


def test_one_slice_for_a_service_then_nothing_to_do():
    s = svc(labels={"team": "a"})
    pods = [pod("a", "10.1.0.1"), pod("b", "10.1.0.2", ready=False, node="n2")]
    plan = E.plan_slices(s, [], E.desired_slices(s, pods, {"n1": "z1"}.get), trigger_time="2025-01-01T00:00:10Z")
    assert not plan.update and not plan.delete
    (sl,) = plan.create
    assert sl["metadata"] == {
        "generateName": "web-", "namespace": "default",
        "labels": {"team": "a", E.SERVICE_NAME_LABEL: "web", E.MANAGED_BY_LABEL: E.CONTROLLER_NAME},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-svc-web",
                             "controller": True, "blockOwnerDeletion": True}],
        "annotations": {E.TRIGGER_TIME_ANNOTATION: "2025-01-01T00:00:10Z"}}
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert sl["endpoints"] == [
        {"addresses": ["10.1.0.1"], "conditions": {"ready": True, "serving": True, "terminating": False},
         "targetRef": ref("a"), "nodeName": "n1", "zone": "z1"},
        {"addresses": ["10.1.0.2"], "conditions": {"ready": False, "serving": False, "terminating": False},
         "targetRef": ref("b"), "nodeName": "n2"}]
    existing = _stored(plan.create)
    # the same pods (in another order): nothing to write
    again = E.plan_slices(s, existing, E.desired_slices(s, list(reversed(pods)), {"n1": "z1"}.get))
    assert again.empty()


def test_slices_updated_in_place():
    s = svc()
    pods = [pod("a", "10.1.0.1"), pod("b", "10.1.0.2")]
    existing = _stored(E.plan_slices(s, [], E.desired_slices(s, pods)).create)
    # b not ready, a gone, c new: the one slice is updated, its name and resourceVersion kept
    pods = [pod("b", "10.1.0.2", ready=False), pod("c", "10.1.0.3")]
    plan = E.plan_slices(s, existing, E.desired_slices(s, pods))
    assert not plan.create and not plan.delete
    (u,) = plan.update
    assert u["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert u["metadata"]["resourceVersion"] == existing[0]["metadata"]["resourceVersion"]
    assert [(e["targetRef"]["name"], e["conditions"]["ready"]) for e in u["endpoints"]] == [("b", False), ("c", True)]
    # the Service's labels changed: an update even with the same endpoints
    s2 = svc(labels={"new": "label"})
    (u,) = E.plan_slices(s2, existing, E.desired_slices(s2, [pod("a", "10.1.0.1"), pod("b", "10.1.0.2")])).update
    assert u["metadata"]["labels"]["new"] == "label"


def test_more_than_100_endpoints_are_split():
    s = svc()
    pods = [pod(f"p{i:03}", f"10.1.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = E.plan_slices(s, [], E.desired_slices(s, pods))
    assert [len(x["endpoints"]) for x in plan.create] == [100, 100, 50]
    assert len({e["targetRef"]["name"] for x in plan.create for e in x["endpoints"]}) == 250
    existing = _stored(plan.create)
    assert E.plan_slices(s, existing, E.desired_slices(s, pods)).empty()
    # 30 more: they fit in the slice with 50 (one update, no new slice)
    more = pods + [pod(f"q{i:03}", f"10.2.0.{i + 1}") for i in range(30)]
    plan = E.plan_slices(s, existing, E.desired_slices(s, more))
    assert not plan.create and not plan.delete
    (u,) = plan.update
    assert len(u["endpoints"]) == 80 and u["metadata"]["name"] == existing[2]["metadata"]["name"]
    # down to 20 pods: the slices left empty go, one keeps what is left
    plan = E.plan_slices(s, existing, E.desired_slices(s, pods[:20]))
    assert not plan.create and len(plan.update) == 1 and len(plan.delete) == 2
    assert len(plan.update[0]["endpoints"]) == 20


def test_max_endpoints_per_slice_is_a_parameter():
    s = svc()
    pods = [pod(f"p{i}", f"10.1.0.{i + 1}") for i in range(5)]
    assert [len(x["endpoints"]) for x in E.plan_slices(s, [], E.desired_slices(s, pods), 2).create] == [2, 2, 1]


def test_ports_change_reuses_the_slice_and_no_pods_keeps_a_placeholder():
    s = svc()
    existing = _stored(E.plan_slices(s, [], E.desired_slices(s, [pod("a")])).create)
    # another target port: the old slice is rewritten with the new ports (one update, no create/delete)
    s2 = svc(ports=[{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}])
    plan = E.plan_slices(s2, existing, E.desired_slices(s2, [pod("a")]))
    assert not plan.create and not plan.delete
    (u,) = plan.update
    assert u["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert u["ports"] == [{"name": "http", "port": 9090, "protocol": "TCP"}]
    # no pods: the slice is kept empty as the placeholder
    plan = E.plan_slices(s, existing, E.desired_slices(s, []))
    (u,) = plan.update
    assert u["endpoints"] == [] and u["ports"] == [] and not plan.create and not plan.delete
    placeholder = _stored([u])
    assert E.plan_slices(s, placeholder, E.desired_slices(s, [])).empty()
    # a new Service with no pods gets one empty slice
    (p,) = E.plan_slices(s, [], E.desired_slices(s, [])).create
    assert p["endpoints"] == [] and p["ports"] == [] and p["addressType"] == "IPv4"


def test_slices_of_another_service_uid_or_family_are_deleted():
    s = svc()
    old = _stored(E.plan_slices(s, [], E.desired_slices(s, [pod("a")])).create)
    old[0]["metadata"]["ownerReferences"][0]["uid"] = "uid-of-a-deleted-service"
    plan = E.plan_slices(s, old, E.desired_slices(s, [pod("a")]))
    assert plan.delete == old and len(plan.create) == 1 and not plan.update
    v6 = copy.deepcopy(_stored(E.plan_slices(s, [], E.desired_slices(s, [pod("a")])).create, 5))
    v6[0]["addressType"] = "IPv6"
    plan = E.plan_slices(s, v6, E.desired_slices(s, [pod("a")]))
    assert plan.delete == v6 and len(plan.create) == 1


def test_address_types():
    assert E.address_types(svc()) == ["IPv4"]
    assert E.address_types(svc(ipFamilies=["IPv6", "IPv4"])) == ["IPv6", "IPv4"]
    assert E.address_types(svc(cluster_ip="None")) == ["IPv4", "IPv6"]
    p = pod("a")
    p["status"]["podIPs"] = [{"ip": "10.1.0.1"}, {"ip": "fd00::1"}]
    d = E.desired_slices(svc(ipFamilies=["IPv4", "IPv6"]), [p])
    assert [e["addresses"] for g in d["IPv6"].values() for e in g.endpoints.values()] == [["fd00::1"]]
    assert [e["addresses"] for g in d["IPv4"].values() for e in g.endpoints.values()] == [["10.1.0.1"]]
    # an IPv4 Service's Endpoints take the pod's IPv4 address
    (sub,) = E.desired_subsets(svc(), [p])
    assert sub["addresses"][0]["ip"] == "10.1.0.1"


def test_headless_label_on_slices():
    s = svc(cluster_ip="None", labels={E.SERVICE_NAME_LABEL: "spoof", "x": "y"})
    assert E.slice_labels(s) == {"x": "y", E.HEADLESS_LABEL: "", E.SERVICE_NAME_LABEL: "web",
                                 E.MANAGED_BY_LABEL: E.CONTROLLER_NAME}


# -- trigger times and pod changes ---------------------------------------------------------------------------
def test_trigger_time_is_the_earliest_change_since_the_last_sync():
    t = E.TriggerTimes()
    s = svc()
    a, b = pod("a", ready_at="2025-01-01T00:00:10Z"), pod("b", ready_at="2025-01-01T00:00:12Z")
    assert t.compute("default/web", s, [a, b]) == "2025-01-01T00:00:00Z"     # a new Service: its creation
    assert t.compute("default/web", s, [a, b]) is None                       # nothing changed
    b2 = pod("b", ready=False, ready_at="2025-01-01T00:00:30Z")
    c = pod("c", ready_at="2025-01-01T00:00:20Z")
    assert t.compute("default/web", s, [a, b2, c]) == "2025-01-01T00:00:20Z"
    t.forget("default/web")
    assert t.compute("default/web", s, [a]) == "2025-01-01T00:00:00Z"


def test_pod_view_ignores_what_endpoints_do_not_show():
    a = pod("a")
    b = copy.deepcopy(a)
    b["metadata"]["annotations"] = {"x": "y"}
    b["status"]["containerStatuses"] = [{"name": "c", "restartCount": 1}]
    assert E.pod_view(a) == E.pod_view(b)
    for change in (lambda p: p["status"].update(podIP="10.9.9.9"),
                   lambda p: p["status"]["conditions"][0].update(status="False"),
                   lambda p: p["metadata"].update(deletionTimestamp="2025-01-01T00:00:00Z"),
                   lambda p: p["spec"]["containers"][0].update(ports=[{"name": "h", "containerPort": 1}])):
        c = copy.deepcopy(a)
        change(c)
        assert E.pod_view(a) != E.pod_view(c)
