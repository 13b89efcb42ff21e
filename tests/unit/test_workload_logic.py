"""The pure workload logic (skiff/controller/workloads/logic.py) against plain dicts, with the
numbers of Kubernetes' own unit tests where they exist."""
from __future__ import annotations

import pytest

from skiff.controller.workloads import logic as L


def dep(replicas=3, surge="25%", unavail="25%", strategy="RollingUpdate", gen=1, status=None, **spec):
    s = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
         "strategy": {"type": strategy}, **spec}
    if strategy == "RollingUpdate":
        s["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavail}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": gen},
            "spec": s, "status": status or {}}


def rs(name, replicas, available=None, created="2024-01-01T00:00:00Z", rev=None, ready=None, actual=None,
       desired=None, maxr=None):
    ann = {}
    if rev is not None:
        ann[L.REVISION_ANNOTATION] = str(rev)
    if desired is not None:
        ann[L.DESIRED_REPLICAS_ANNOTATION] = str(desired)
    if maxr is not None:
        ann[L.MAX_REPLICAS_ANNOTATION] = str(maxr)
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": created, "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if actual is None else actual,
                       "availableReplicas": replicas if available is None else available,
                       "readyReplicas": replicas if ready is None else ready, "observedGeneration": 1}}


# -- hash ----------------------------------------------------------------------------------------
def test_fnv32a_and_safe_encode():
    assert L.fnv32a(b"") == 0x811C9DC5
    assert L.fnv32a(b"a") == 0xE40C292C
    assert L.safe_encode("0123456789") == "456789bcdf"


def test_compute_hash_stable_and_collision_count():
    t = dep()["spec"]["template"]
    h = L.compute_hash(t)
    assert h == L.compute_hash(dict(t)) and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert L.compute_hash(t, 1) != h and L.compute_hash(t, 1) != L.compute_hash(t, 2)


def test_equal_ignore_hash():
    a = dep()["spec"]["template"]
    b = {"metadata": {"labels": {"app": "web", L.HASH_LABEL: "abc"}}, "spec": a["spec"]}
    assert L.equal_ignore_hash(a, b)
    c = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "y"}]}}
    assert not L.equal_ignore_hash(a, c)


def test_new_rs_object():
    d = dep()
    r = L.new_rs_object(d, None)
    h = r["metadata"]["labels"][L.HASH_LABEL]
    assert r["metadata"]["name"] == f"web-{h}"
    assert r["spec"]["selector"]["matchLabels"] == {"app": "web", L.HASH_LABEL: h}
    assert r["spec"]["template"]["metadata"]["labels"][L.HASH_LABEL] == h
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]   # not mutated
    assert r["metadata"]["ownerReferences"][0]["controller"] is True


# -- intstr --------------------------------------------------------------------------------------
@pytest.mark.parametrize("v,total,up,want", [
    ("25%", 10, True, 3), ("25%", 10, False, 2), ("25%", 1, True, 1), ("25%", 1, False, 0),
    (2, 10, True, 2), ("50%", 5, False, 2), ("50%", 5, True, 3), ("0%", 5, True, 0), ("3", 5, True, 3)])
def test_scaled_value(v, total, up, want):
    assert L.scaled_value(v, total, up) == want


def test_fenceposts():
    assert L.resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert L.resolve_fenceposts(0, 0, 5) == (0, 1)
    assert L.resolve_fenceposts("0%", "0%", 5) == (0, 1)
    assert L.max_unavailable(dep(3, surge=0, unavail=5)) == 3
    assert L.max_surge(dep(10)) == 3 and L.max_unavailable(dep(10)) == 2
    assert L.max_surge(dep(10, strategy="Recreate")) == 0


# -- rolling steps -------------------------------------------------------------------------------
def test_new_rs_new_replicas():
    d = dep(10, surge=2, unavail=0)
    new, old = rs("new", 0), rs("old", 10)
    assert L.new_rs_new_replicas(d, [old, new], new) == 2
    new2 = rs("new", 2, available=0)
    assert L.new_rs_new_replicas(d, [old, new2], new2) == 2      # at maxTotal
    assert L.new_rs_new_replicas(dep(10, strategy="Recreate"), [old, new], new) == 10


def test_reconcile_old_rss_respects_unavailable():
    d = dep(10, surge=2, unavail=0)
    new, old = rs("new", 2, available=0, created="2024-01-02T00:00:00Z"), rs("old", 10)
    assert L.reconcile_old_rss(d, [old, new], [old], new) == []     # new pods not available yet
    new = rs("new", 2, available=2, created="2024-01-02T00:00:00Z")
    plan = L.reconcile_old_rss(d, [old, new], [old], new)
    assert [(r["metadata"]["name"], n) for r, n in plan] == [("old", 8)]


def test_reconcile_old_rss_cleans_unhealthy_first():
    d = dep(3, surge=1, unavail=0)
    old1 = rs("old1", 2, available=0, created="2024-01-01T00:00:00Z")
    old2 = rs("old2", 2, available=2, created="2024-01-02T00:00:00Z")
    new = rs("new", 0, created="2024-01-03T00:00:00Z")
    plan = dict((r["metadata"]["name"], n) for r, n in L.reconcile_old_rss(d, [old1, old2, new], [old1, old2], new))
    # 4 pods, 3 must stay available: one may go, and the unhealthy old RS loses it; old2's
    # available pods (2 < minAvailable 3) are kept
    assert plan == {"old1": 1}


def test_proportional_scaling_mid_rollout():
    # Kubernetes' TestScale "proportional scaling: 5 -> 10" style case
    d = dep(10, surge=3, unavail=2, status={"replicas": 8})
    new = rs("new", 3, created="2024-01-02T00:00:00Z", desired=5, maxr=8)
    old = rs("old", 5, created="2024-01-01T00:00:00Z", desired=5, maxr=8)
    assert L.is_scaling_event(d, [new, old])
    plan, op = L.proportional_scale(d, new, [old])
    sizes = {r["metadata"]["name"]: n for r, n in plan}
    assert op == "up" and sizes["old"] + sizes["new"] == 13
    assert sizes == {"old": 8, "new": 5}


def test_scale_single_active():
    d = dep(5)
    new = rs("new", 3)
    plan, op = L.proportional_scale(d, new, [rs("old", 0)])
    assert [(r["metadata"]["name"], n) for r, n in plan] == [("new", 5)] and op == "up"


def test_history_to_prune():
    d = dep(3, revisionHistoryLimit=1)
    olds = [rs("a", 0, rev=1), rs("b", 0, rev=2), rs("c", 1, rev=3)]
    assert [r["metadata"]["name"] for r in L.history_to_prune(d, olds)] == ["a", "b"]
    assert [r["metadata"]["name"] for r in L.history_to_prune(dep(3, revisionHistoryLimit=2), olds)] == ["a"]
    assert L.history_to_prune(dep(3), olds) == []


def test_new_rs_annotations_rollback_history():
    a = L.new_rs_annotations(dep(3), {L.REVISION_ANNOTATION: "1"}, 3, True)
    assert a[L.REVISION_ANNOTATION] == "3" and a[L.REVISION_HISTORY_ANNOTATION] == "1"
    a = L.new_rs_annotations(dep(4), None, 1, False)
    assert a == {L.REVISION_ANNOTATION: "1", L.DESIRED_REPLICAS_ANNOTATION: "4", L.MAX_REPLICAS_ANNOTATION: "5"}


# -- status --------------------------------------------------------------------------------------
def test_calculate_status_and_available():
    d = dep(4)
    new = rs("new", 4, available=3, ready=4)
    s = L.calculate_status(d, [new], new, now="T")
    assert s["replicas"] == 4 and s["updatedReplicas"] == 4 and s["availableReplicas"] == 3
    assert s["unavailableReplicas"] == 1 and s["observedGeneration"] == 1
    assert L.get_condition(s, "Available")["reason"] == "MinimumReplicasAvailable"
    s = L.calculate_status(dep(4, surge=1, unavail=0), [new], new, now="T")
    assert L.get_condition(s, "Available") == {
        "type": "Available", "status": "False", "lastUpdateTime": "T", "lastTransitionTime": "T",
        "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}


def test_rollout_status_progressing_complete_timeout():
    new = rs("web-abc", 3, available=3)
    d = dep(3)
    d["spec"]["progressDeadlineSeconds"] = 600
    s = L.rollout_status(d, [new], new)
    c = L.get_condition(s, "Progressing")
    assert (c["status"], c["reason"], c["message"]) == ("True", "NewReplicaSetAvailable",
                                                         'ReplicaSet "web-abc" has successfully progressed.')
    stuck = rs("web-abc", 3, available=0, ready=0)
    d2 = dep(3, status={"replicas": 3, "updatedReplicas": 3, "conditions": [
        L.new_condition("Progressing", "True", "ReplicaSetUpdated", "x", "2020-01-01T00:00:00Z")]})
    d2["spec"]["progressDeadlineSeconds"] = 10
    s = L.rollout_status(d2, [stuck], stuck)
    c = L.get_condition(s, "Progressing")
    assert (c["status"], c["reason"], c["message"]) == ("False", "ProgressDeadlineExceeded",
                                                         'ReplicaSet "web-abc" has timed out progressing.')
    # progress made: ReplicaSetUpdated, lastTransitionTime kept
    better = rs("web-abc", 3, available=1, ready=1)
    s = L.rollout_status(d2, [better], better)
    c = L.get_condition(s, "Progressing")
    assert c["reason"] == "ReplicaSetUpdated" and c["message"] == 'ReplicaSet "web-abc" is progressing.'
    assert c["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert L.stuck_requeue_after(d2, s) is not None


def test_set_condition_keeps_same_reason():
    st = {}
    L.set_condition(st, L.new_condition("Available", "True", "A", "m1", "T1"))
    L.set_condition(st, L.new_condition("Available", "True", "A", "m2", "T2"))
    assert st["conditions"][0]["message"] == "m1"
    L.set_condition(st, L.new_condition("Available", "True", "B", "m3", "T3"))
    assert st["conditions"][0]["lastTransitionTime"] == "T1" and st["conditions"][0]["reason"] == "B"


# -- pods ----------------------------------------------------------------------------------------
def pod(name, node=None, phase="Running", ready=True, created="2024-01-01T00:00:00Z", restarts=0,
        ready_since="2024-01-01T00:00:00Z"):
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_since}]
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "web"}},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_pods_to_delete_order():
    pods = [pod("old-ready", "n1", created="2024-01-01T00:00:00Z"),
            pod("young-ready", "n2", created="2024-01-02T00:00:00Z", ready_since="2024-01-02T00:00:00Z"),
            pod("not-ready", "n3", ready=False),
            pod("pending", "n4", phase="Pending", ready=False),
            pod("unscheduled", None, phase="Pending", ready=False)]
    got = [p["metadata"]["name"] for p in L.pods_to_delete(pods, pods, 4)]
    assert got == ["unscheduled", "pending", "not-ready", "young-ready"]


def test_pods_to_delete_prefers_doubled_up_nodes():
    a, b = pod("a", "n1", created="2024-01-03T00:00:00Z"), pod("b", "n2", created="2024-01-01T00:00:00Z")
    sibling = pod("s", "n2")
    assert [p["metadata"]["name"] for p in L.pods_to_delete([a, b], [a, b, sibling], 1)] == ["b"]


def test_pods_to_delete_prefers_restarts_then_young():
    a = pod("a", "n1", created="2024-01-01T00:00:00Z")
    b = pod("b", "n2", created="2024-01-03T00:00:00Z")
    c = pod("c", "n3", created="2024-01-02T00:00:00Z", restarts=5)
    assert [p["metadata"]["name"] for p in L.pods_to_delete([a, b, c], [a, b, c], 2)] == ["c", "b"]


def test_pod_availability_and_rs_status():
    p = pod("a", ready_since="2024-01-01T00:00:00Z")
    t = L.parse_time("2024-01-01T00:00:05Z")
    assert L.is_pod_available(p, 0, t) and not L.is_pod_available(p, 10, t) and L.is_pod_available(p, 5, t)
    r = {"metadata": {"name": "web-x", "uid": "u", "generation": 2},
         "spec": {"replicas": 2, "minReadySeconds": 10,
                  "template": {"metadata": {"labels": {"app": "web"}}}}}
    s = L.rs_status(r, [p, pod("b", ready=False)], None, 0, now=t)
    assert s == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "observedGeneration": 2}
    s = L.rs_status(r, [p], "quota exceeded", -1, now=t)
    assert L.get_condition(s, "ReplicaFailure")["reason"] == "FailedCreate"
    assert L.min_ready_requeue(r, {"readyReplicas": 2}) == 10.0


def test_rs_status_counts_fully_labeled_pods_per_labels_object():
    r = {"metadata": {"name": "web-x", "uid": "u", "generation": 1},
         "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}}}
    shared = {"app": "web", "tier": "fe"}       # one object, as hash-consed pods of a template share
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    pods[0]["metadata"]["labels"] = pods[1]["metadata"]["labels"] = shared
    pods[2]["metadata"]["labels"] = {"app": "web"}                  # the selector's, not the template's
    s = L.rs_status(r, pods, None, 0)
    assert s["replicas"] == 4 and s["fullyLabeledReplicas"] == 2
    # an empty template label set: every pod is fully labeled, as labels.SelectorFromSet({}) matches all
    r["spec"]["template"]["metadata"]["labels"] = {}
    assert L.rs_status(r, pods, None, 0)["fullyLabeledReplicas"] == 4


def test_label_match_remembers_per_labels_object_only():
    from skiff.controller.selectors import LabelRequirement, LabelSelector
    m = L.LabelMatch(LabelSelector([LabelRequirement("app", "=", ("web",))]))
    same = {"app": "web"}
    a = {"metadata": {"labels": same}}
    b = {"metadata": {"labels": same}}
    c = {"metadata": {"labels": {"app": "db"}}}
    assert m(a) and m(b) and not m(c)
    assert len(m.seen) == 2                       # a and b: one match
    assert not L.LabelMatch(None)(a) and not L.LabelMatch(LabelSelector([]))(a)   # empty selects nothing


def test_pod_from_template():
    r = {"metadata": {"name": "web-x", "namespace": "default", "uid": "u"},
         "spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    p = L.pod_from_template(r)
    assert p["metadata"]["generateName"] == "web-x-"
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x",
                                                 "uid": "u", "controller": True, "blockOwnerDeletion": True}]
    assert p["metadata"]["annotations"] == {"a": "b"}


def test_selector_from():
    s = L.selector_from({"matchLabels": {"app": "web"},
                         "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                              {"key": "x", "operator": "DoesNotExist"}]})
    assert L.selects(s, {"metadata": {"labels": {"app": "web", "tier": "a"}}})
    assert not L.selects(s, {"metadata": {"labels": {"app": "web", "tier": "c"}}})
    assert not L.selects(s, {"metadata": {"labels": {"app": "web", "tier": "a", "x": "1"}}})
    assert L.selector_from(None) is None
    assert L.selector_string({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
