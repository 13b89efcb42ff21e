"""The DaemonSet controller's pure decisions (skiff.controller.workloads.daemonlogic): which nodes
should run a daemon pod, its tolerations, the pod made for a node, what to create and delete per
node, the rolling-update steps under maxUnavailable and maxSurge, the status, the failed-pod
back-off and the ControllerRevisions."""
from __future__ import annotations

import copy
import time

from skiff.controller.workloads import daemonlogic as D

NOW = 1_800_000_000.0


def ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def daemonset(strategy=None, mrs=0, gen="2", **pod_spec):
    spec = {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}, "annotations": {"note": "x"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}], **pod_spec}},
            "updateStrategy": strategy or {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10}
    if mrs:
        spec["minReadySeconds"] = mrs
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "a", "namespace": "default", "uid": "ds-uid", "generation": 3,
                         "annotations": {D.TEMPLATE_GENERATION_ANNOTATION: gen}},
            "spec": spec, "status": {}}


def node(name, labels=None, taints=None, ready="True", unschedulable=False):
    n = {"metadata": {"name": name, "labels": labels or {}},
         "spec": {"taints": taints or []},
         "status": {"conditions": [{"type": "Ready", "status": ready}]}}
    if unschedulable:
        n["spec"]["unschedulable"] = True
    return n


def pod(name, node_name, hash_="new", phase="Running", ready=True, ready_since=NOW - 100, created=NOW - 200,
        deleting=False, bound=True, gen=None):
    labels = {"app": "a", D.REVISION_HASH_LABEL: hash_}
    if gen is not None:
        labels[D.TEMPLATE_GENERATION_LABEL] = gen
    p = {"metadata": {"name": name, "namespace": "default", "labels": labels, "creationTimestamp": ts(created)},
         "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
             "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                     "values": [node_name]}]}]}}}},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                    "lastTransitionTime": ts(ready_since)}]}}
    if bound:
        p["spec"]["nodeName"] = node_name
    if deleting:
        p["metadata"]["deletionTimestamp"] = ts(NOW)
    return p


def names(pods):
    return sorted(p["metadata"]["name"] for p in pods)


# -- which nodes -----------------------------------------------------------------------------------

def test_daemon_tolerations():
    tols = D.daemon_tolerations({})
    assert [(t["key"], t["effect"]) for t in tols] == [
        ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert all(t["operator"] == "Exists" and "tolerationSeconds" not in t for t in tols)
    # hostNetwork pods also tolerate network-unavailable
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in \
        [(t["key"], t["effect"]) for t in D.daemon_tolerations({"hostNetwork": True})]
    # the template's own are kept; one that is the same toleration is replaced (its seconds go)
    mine = [{"key": "dedicated", "operator": "Exists"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 60}]
    tols = D.daemon_tolerations({"tolerations": mine})
    assert tols[0] == mine[0] and len(tols) == 7
    assert tols[1] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}


def test_node_fit():
    fit = D.NodeFit(daemonset())
    assert fit(node("n1")) == (True, True)
    # a cordoned node runs daemon pods (they tolerate unschedulable)
    assert fit(node("n1", unschedulable=True)) == (True, True)
    # an untolerated NoSchedule taint: not desired, but a pod there keeps running
    assert fit(node("n1", taints=[{"key": "k", "effect": "NoSchedule"}])) == (False, True)
    # NoExecute: its pod must go
    assert fit(node("n1", taints=[{"key": "k", "effect": "NoExecute"}])) == (False, False)
    # PreferNoSchedule does not count
    assert fit(node("n1", taints=[{"key": "k", "effect": "PreferNoSchedule"}])) == (True, True)
    # the Ready condition's taint (not-ready / unreachable NoSchedule) as the scheduler sees it
    assert fit(node("n1", ready="False")) == (False, True)
    assert fit(node("n1", ready="Unknown")) == (False, True)
    # the daemon tolerations count: pressure taints are tolerated
    assert fit(node("n1", taints=[{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}])) \
        == (True, True)
    tolerating = D.NodeFit(daemonset(tolerations=[{"key": "k", "operator": "Exists"}]))
    assert tolerating(node("n1", taints=[{"key": "k", "effect": "NoExecute"}])) == (True, True)
    # nodeSelector, required node affinity and nodeName: (False, False) when they do not match
    sel = D.NodeFit(daemonset(nodeSelector={"disk": "ssd"}))
    assert sel(node("n1")) == (False, False) and sel(node("n2", {"disk": "ssd"})) == (True, True)
    aff = D.NodeFit(daemonset(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}))
    assert aff(node("n1", {"zone": "b"})) == (False, False) and aff(node("n1", {"zone": "a"})) == (True, True)
    named = D.NodeFit(daemonset(nodeName="n2"))
    assert named(node("n1")) == (False, False) and named(node("n2")) == (True, True)


def test_pod_for_node_and_target():
    ds = daemonset(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "preference": {}}]}})
    tmpl = D.pod_template(ds, "h1")
    assert tmpl["metadata"]["generateName"] == "a-"
    assert tmpl["metadata"]["labels"] == {"app": "a", D.TEMPLATE_GENERATION_LABEL: "2", D.REVISION_HASH_LABEL: "h1"}
    assert tmpl["metadata"]["annotations"] == {"note": "x"}
    assert tmpl["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "a",
                                                    "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}]
    assert len(tmpl["spec"]["tolerations"]) == 6
    p = D.pod_for_node(tmpl, "n7")
    na = p["spec"]["affinity"]["nodeAffinity"]
    # the required terms are replaced, the preferred ones kept; the template is not changed
    assert na["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert na["preferredDuringSchedulingIgnoredDuringExecution"] == [{"weight": 5, "preference": {}}]
    assert "matchExpressions" in str(tmpl["spec"]["affinity"])
    assert D.target_node(p) == "n7"
    assert D.target_node({"spec": {"nodeName": "n2"}}) == "n2"
    assert D.target_node({"spec": {}}) is None
    # a template without the generation annotation: no generation label
    ds["metadata"]["annotations"] = {}
    assert D.TEMPLATE_GENERATION_LABEL not in D.pod_template(ds, "h1")["metadata"]["labels"]


def test_pods_by_node_and_updated():
    pods = [pod("a", "n1"), pod("b", "n2", bound=False), pod("c", "n1", phase="Failed", deleting=True),
            pod("d", "n1", deleting=True)]
    by = D.pods_by_node(pods)
    # finished pods being deleted are done with; unscheduled ones count for the node they are for
    assert {k: names(v) for k, v in by.items()} == {"n1": ["a", "d"], "n2": ["b"]}
    assert D.is_updated(pod("x", "n1", hash_="h"), "h", None)
    assert not D.is_updated(pod("x", "n1", hash_="old"), "h", 2)
    # the template generation label makes it up to date too
    assert D.is_updated(pod("x", "n1", hash_="old", gen="2"), "h", 2)


# -- manage ----------------------------------------------------------------------------------------

def _manage(ds, nodes, pods, backoff=None, now=NOW):
    return D.manage(ds, nodes, D.NodeFit(ds), D.pods_by_node(pods), "new", backoff or D.Backoff(), now)


def test_manage_creates_and_deletes():
    ds = daemonset()
    nodes = [node("n1"), node("n2"), node("n3", taints=[{"key": "k", "effect": "NoExecute"}]),
             node("n4", taints=[{"key": "k", "effect": "NoSchedule"}])]
    pods = [pod("n1-old", "n1", created=NOW - 500), pod("n1-young", "n1", created=NOW - 10),
            pod("n1-unbound", "n1", bound=False, created=NOW - 900),
            pod("n3-a", "n3"), pod("n4-a", "n4"),
            pod("gone-node-pending", "n9", bound=False), pod("gone-node-bound", "n8")]
    plan = _manage(ds, nodes, pods)
    assert plan.create == ["n2"]
    # n1: the oldest scheduled pod stays; n3: NoExecute; n4 keeps its pod; a node that does not
    # exist: its unscheduled pod goes (a scheduled one is the pod garbage collector's)
    assert names(plan.delete) == ["gone-node-pending", "n1-unbound", "n1-young", "n3-a"]
    # a node whose only pod is being deleted waits for it to go (no surge)
    plan = _manage(ds, [node("n1")], [pod("x", "n1", deleting=True)])
    assert plan.create == [] and plan.delete == []


def test_manage_failed_and_succeeded_pods_with_backoff():
    ds = daemonset()
    backoff = D.Backoff()
    plan = _manage(ds, [node("n1"), node("n2")], [pod("f", "n1", phase="Failed"), pod("s", "n2", phase="Succeeded")],
                   backoff)
    assert names(plan.delete) == ["f", "s"] and [(p["metadata"]["name"], n) for p, n in plan.failed] == [("f", "n1")]
    assert [(p["metadata"]["name"], n) for p, n in plan.succeeded] == [("s", "n2")]
    # its replacement fails at once: it is deleted only after the back-off (1 s, then 2 s)
    plan = _manage(ds, [node("n1")], [pod("f2", "n1", phase="Failed")], backoff, NOW + 0.5)
    assert plan.delete == [] and plan.retry == 0.5
    plan = _manage(ds, [node("n1")], [pod("f2", "n1", phase="Failed")], backoff, NOW + 1.0)
    assert names(plan.delete) == ["f2"]
    assert backoff.waiting(("ds-uid", 0, "n1"), NOW + 1.0) == 2.0
    # a new generation of the DaemonSet starts afresh
    ds["status"]["observedGeneration"] = 4
    assert names(_manage(ds, [node("n1")], [pod("f3", "n1", phase="Failed")], backoff, NOW + 1.5).delete) == ["f3"]
    backoff.forget("ds-uid")
    assert backoff.entries == {}


def test_backoff_doubles_to_cap_and_expires():
    b = D.Backoff(base=1, cap=4)
    key = ("u", "n")
    delays = []
    for i in range(5):
        b.step(key, float(i))
        delays.append(b.entries[key][0])
    assert delays == [1, 2, 4, 4, 4]
    b.step(("u", "other"), 100.0)        # entries idle for more than twice the cap are dropped
    assert key not in b.entries


def test_manage_with_surge_keeps_old_until_new_is_available():
    ds = daemonset({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, mrs=30)
    n1 = [node("n1")]
    # new not yet available (ready 10 s < minReadySeconds 30): both stay
    plan = _manage(ds, n1, [pod("old", "n1", hash_="o"), pod("new", "n1", ready_since=NOW - 10, created=NOW - 20)])
    assert plan.delete == [] and plan.create == []
    # available: the old one goes
    plan = _manage(ds, n1, [pod("old", "n1", hash_="o"), pod("new", "n1", ready_since=NOW - 40, created=NOW - 50)])
    assert names(plan.delete) == ["old"]
    # an old pod that is not ready goes at once
    plan = _manage(ds, n1, [pod("old", "n1", hash_="o", ready=False),
                            pod("new", "n1", ready_since=NOW - 10, created=NOW - 20)])
    assert names(plan.delete) == ["old"]
    # a third pod is always extra; a node whose pod is being deleted gets a new one at once
    plan = _manage(ds, n1, [pod("old", "n1", hash_="o"), pod("old2", "n1", hash_="o", created=NOW - 1),
                            pod("new", "n1", ready_since=NOW - 10, created=NOW - 20)])
    assert names(plan.delete) == ["old2"]
    assert _manage(ds, n1, [pod("x", "n1", deleting=True)]).create == ["n1"]


# -- rolling updates -------------------------------------------------------------------------------

def _roll(ds, nodes, pods, now=NOW):
    return D.rolling_update(ds, nodes, D.NodeFit(ds), D.pods_by_node(pods), "new", now)


def test_surge_and_unavailable_counts():
    def counts(ru, desired, typ="RollingUpdate"):
        return D.surge_and_unavailable(daemonset({"type": typ, "rollingUpdate": ru}), desired)
    assert counts({"maxUnavailable": 1, "maxSurge": 0}, 5) == (0, 1)
    assert counts({"maxUnavailable": "30%", "maxSurge": 0}, 5) == (0, 2)     # percentages round up
    assert counts({"maxUnavailable": 0, "maxSurge": "10%"}, 5) == (1, 0)
    assert counts({"maxUnavailable": 0, "maxSurge": 0}, 5) == (0, 1)          # both 0: one unavailable
    assert counts({"maxUnavailable": 0, "maxSurge": 0}, 0) == (0, 0)
    assert D.surge_and_unavailable(daemonset({"type": "OnDelete"}), 5) == (0, 0)


def test_rolling_update_max_unavailable():
    ds = daemonset()
    nodes = [node(f"n{i}") for i in range(1, 5)]
    old = [pod(f"old{i}", f"n{i}", hash_="o") for i in range(1, 5)]
    # all old and available: one at a time (node order)
    delete, create = _roll(ds, nodes, old)
    assert names(delete) == ["old1"] and create == []
    # a node being replaced (no live pod yet) uses up the budget
    delete, _ = _roll(ds, nodes, [pod("old1", "n1", hash_="o", deleting=True)] + old[1:])
    assert delete == []
    # a new pod that is not available yet too; an available one does not
    delete, _ = _roll(ds, nodes, [pod("new1", "n1", ready=False)] + old[1:])
    assert delete == []
    delete, _ = _roll(ds, nodes, [pod("new1", "n1")] + old[1:])
    assert names(delete) == ["old2"]
    # old pods that are not available are replaced regardless of the budget
    delete, _ = _roll(ds, nodes, [pod("new1", "n1", ready=False), pod("old2", "n2", hash_="o", ready=False)] + old[2:])
    assert names(delete) == ["old2"]
    # 50% of 4 = 2 at a time; the generation label makes a pod up to date
    ds2 = daemonset({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}})
    delete, _ = _roll(ds2, nodes, old)
    assert names(delete) == ["old1", "old2"]
    delete, _ = _roll(ds2, nodes, [pod(f"g{i}", f"n{i}", hash_="o", gen="2") for i in range(1, 5)])
    assert delete == []
    # minReadySeconds: a new pod ready for 10 s of 30 is not available yet
    ds3 = daemonset(mrs=30)
    delete, _ = _roll(ds3, nodes, [pod("new1", "n1", ready_since=NOW - 10)] + old[1:])
    assert delete == []


def test_rolling_update_max_surge():
    ds = daemonset({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    nodes = [node(f"n{i}") for i in range(1, 4)]
    old = [pod(f"old{i}", f"n{i}", hash_="o") for i in range(1, 4)]
    # create first, on maxSurge nodes at a time
    delete, create = _roll(ds, nodes, old)
    assert delete == [] and create == ["n1"]
    # a surge pod not available yet uses up the budget
    delete, create = _roll(ds, nodes, old + [pod("new1", "n1", ready=False, created=NOW - 10)])
    assert delete == [] and create == []
    # available: its old pod goes, the next node surges
    delete, create = _roll(ds, nodes, old + [pod("new1", "n1", created=NOW - 10)])
    assert names(delete) == ["old1"] and create == ["n2"]
    # an old pod that is not available gets its replacement at once, beyond maxSurge
    delete, create = _roll(ds, nodes, [pod("old1", "n1", hash_="o", ready=False)] + old[1:])
    assert delete == [] and create == ["n1", "n2"]
    # 100% surge: every node at once
    ds2 = daemonset({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "100%"}})
    assert _roll(ds2, nodes, old)[1] == ["n1", "n2", "n3"]
    # an old available pod on a node that no longer qualifies goes only while more nodes than
    # desired are available
    nodes3 = nodes + [node("n4", taints=[{"key": "k", "effect": "NoSchedule"}])]
    news = [pod(f"new{i}", f"n{i}") for i in range(1, 4)]
    delete, _ = _roll(ds, nodes3, news + [pod("old4", "n4", hash_="o")])
    assert names(delete) == ["old4"]
    delete, _ = _roll(ds, nodes3, news[:2] + [pod("new3", "n3", ready=False), pod("old4", "n4", hash_="o")])
    assert delete == []


# -- status ----------------------------------------------------------------------------------------

def test_daemon_status():
    ds = daemonset(mrs=30)
    ds["status"] = {"collisionCount": 1}
    nodes = [node("n1"), node("n2"), node("n3"), node("n4"), node("n5", taints=[{"key": "k", "effect": "NoSchedule"}])]
    pods = [pod("a", "n1"),                                           # ready, available, up to date
            pod("b", "n2", hash_="o", ready_since=NOW - 10),          # ready, not available yet, old
            pod("c-old", "n3", created=NOW - 300, ready=False),       # the oldest decides: not ready
            pod("c-new", "n3", created=NOW - 5),
            pod("e", "n5")]                                           # misscheduled
    st = D.daemon_status(ds, nodes, D.NodeFit(ds), D.pods_by_node(pods), "new", NOW, 3)
    assert st == {"currentNumberScheduled": 3, "numberMisscheduled": 1, "desiredNumberScheduled": 4,
                  "numberReady": 2, "observedGeneration": 3, "updatedNumberScheduled": 2, "numberAvailable": 1,
                  "numberUnavailable": 3, "collisionCount": 1}
    assert D.min_ready_requeue(ds, st) == 30.0
    # nothing to run: the four node counts stay, at 0
    empty = D.daemon_status(daemonset(), [], D.NodeFit(ds), {}, "new", NOW, 1)
    assert empty == {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                     "numberReady": 0, "observedGeneration": 1}
    assert D.min_ready_requeue(daemonset(), empty) is None


# -- revisions -------------------------------------------------------------------------------------

def test_revisions():
    ds = daemonset()
    h = D.revision_hash(ds)
    rev = D.new_revision(ds, 3)
    assert rev["metadata"]["name"] == f"a-{h}" and rev["revision"] == 3
    assert rev["metadata"]["labels"] == {"app": "a", D.REVISION_HASH_LABEL: h}
    assert rev["metadata"]["annotations"] == {D.TEMPLATE_GENERATION_ANNOTATION: "2"}
    assert rev["data"] == {"spec": {"template": {**ds["spec"]["template"], "$patch": "replace"}}}
    # another collision count, another hash
    ds2 = copy.deepcopy(ds)
    ds2["status"]["collisionCount"] = 1
    assert D.revision_hash(ds2) != h
    other = copy.deepcopy(ds)
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    old = D.new_revision(other, 1)
    cur, olds = D.split_revisions(ds, [old, rev])
    assert cur == [rev] and olds == [old] and D.next_revision(olds) == 2
    # the old ones beyond revisionHistoryLimit, oldest first, passing over those some pod still runs
    ds["spec"]["revisionHistoryLimit"] = 1
    olds = [{**old, "revision": n, "metadata": {**old["metadata"], "name": f"a-{n}",
                                                "labels": {D.REVISION_HASH_LABEL: f"h{n}"}}} for n in (1, 2, 3)]
    assert [r["revision"] for r in D.revisions_to_prune(ds, olds, set())] == [1, 2]
    assert [r["revision"] for r in D.revisions_to_prune(ds, olds, {"h1"})] == [2, 3]
