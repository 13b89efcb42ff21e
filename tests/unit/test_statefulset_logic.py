"""The StatefulSet controller's pure logic (skiff.controller.workloads.statefullogic): identities,
claims, the steps of one sync under OrderedReady and Parallel, rolling updates with a partition,
OnDelete, the status, history and the claims' owner references."""
from __future__ import annotations

import copy

from skiff.controller.workloads import statefullogic as S

NOW = 1_000_000.0
T0 = "1970-01-12T13:46:40Z"      # NOW


def sset(replicas=3, **spec):
    s = {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "web", "namespace": "ns", "uid": "u-web", "generation": 1},
         "spec": {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                  "podManagementPolicy": "OrderedReady",
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "c", "image": "img:1"}]}}}}
    s["spec"].update(spec)
    return s


def pod(name, rev="r1", phase="Running", ready=True, deleting=False, uid=None, ready_since=T0):
    p = {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"u-{name}",
                      "labels": {"app": "web", S.REVISION_LABEL: rev, S.POD_NAME_LABEL: name,
                                 S.POD_INDEX_LABEL: name.rsplit("-", 1)[1]}},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                    "lastTransitionTime": ready_since}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = T0
    return p


def ops(plan):
    out = []
    for s in plan.steps:
        if s.op == "create":
            out.append(("create", s.ordinal, s.revision))
        elif s.op == "delete":
            out.append(("delete", s.pod["metadata"]["name"], s.why))
        else:
            out.append((s.op, s.pod["metadata"]["name"]))
    return out


def test_identity_and_new_pod():
    s = sset(ordinals={"start": 2}, volumeClaimTemplates=[
        {"metadata": {"name": "www", "labels": {"tier": "data"}}, "spec": {"accessModes": ["ReadWriteOnce"]}}])
    s["spec"]["template"]["spec"]["volumes"] = [{"name": "www", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]
    assert S.ordinal_of("web", {"metadata": {"name": "web-12"}}) == 12
    assert S.ordinal_of("web", {"metadata": {"name": "web-x"}}) == -1
    assert S.ordinal_of("web", {"metadata": {"name": "webapp-1"}}) == -1
    assert S.ordinal_of("my-web", {"metadata": {"name": "my-web-0"}}) == 0
    assert [S.in_range(s, o) for o in (1, 2, 4, 5)] == [False, True, True, False]
    p = S.new_pod(s, s["spec"]["template"], 3, "web-abc")
    assert p["metadata"]["name"] == "web-3"
    assert p["metadata"]["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": "web-3",
                                       "apps.kubernetes.io/pod-index": "3", "controller-revision-hash": "web-abc"}
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                 "uid": "u-web", "controller": True, "blockOwnerDeletion": True}]
    assert p["spec"]["hostname"] == "web-3" and p["spec"]["subdomain"] == "nginx"
    # the claim's volume replaces the template's volume of that name, and comes first
    assert p["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-3"}},
                                    {"name": "cfg", "emptyDir": {}}]
    assert "hostname" not in s["spec"]["template"]["spec"]       # the template is not modified
    claims = S.claims_for(s, 3)
    assert claims == [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": "www-web-3", "namespace": "ns", "labels": {"tier": "data", "app": "web"}},
                       "spec": {"accessModes": ["ReadWriteOnce"]}}]
    no_svc = sset(serviceName="")
    assert "subdomain" not in S.new_pod(no_svc, no_svc["spec"]["template"], 0, "r")["spec"]
    q = pod("web-1")
    del q["metadata"]["labels"][S.POD_INDEX_LABEL]
    assert S.identity_patch(s, q, 1) == {S.POD_INDEX_LABEL: "1"}
    assert S.identity_patch(s, pod("web-1"), 1) is None


def test_ordered_ready_creates_one_at_a_time_in_order():
    s = sset()
    assert ops(S.plan(s, [], "r1", "r1", NOW)) == [("create", 0, "r1")]
    assert S.plan(s, [], "r1", "r1", NOW).steps[0].stop
    # web-0 created but not ready: wait
    p = S.plan(s, [pod("web-0", phase="Pending", ready=False)], "r1", "r1", NOW)
    assert ops(p) == [] and "web-0" in p.waiting
    p = S.plan(s, [pod("web-0", ready=False)], "r1", "r1", NOW)
    assert ops(p) == []
    assert ops(S.plan(s, [pod("web-0")], "r1", "r1", NOW)) == [("create", 1, "r1")]
    # a gap below: the lowest missing ordinal first
    assert ops(S.plan(s, [pod("web-0"), pod("web-2")], "r1", "r1", NOW)) == [("create", 1, "r1")]
    # terminating: wait for it to go
    assert ops(S.plan(s, [pod("web-0", deleting=True)], "r1", "r1", NOW)) == []
    # minReadySeconds: ready but not yet available -> wait, requeue after it
    s10 = sset(minReadySeconds=10)
    p = S.plan(s10, [pod("web-0", ready_since=T0)], "r1", "r1", NOW)
    assert ops(p) == [] and p.requeue == 10.0
    assert ops(S.plan(s10, [pod("web-0", ready_since="1970-01-12T13:46:00Z")], "r1", "r1", NOW)) == \
        [("create", 1, "r1")]


def test_failed_and_succeeded_pods_are_recreated():
    s = sset(replicas=2)
    p = S.plan(s, [pod("web-0", phase="Failed", ready=False), pod("web-1")], "r1", "r1", NOW)
    assert ops(p) == [("delete", "web-0", "failed"), ("create", 0, "r1")]
    p = S.plan(s, [pod("web-0"), pod("web-1", phase="Succeeded", ready=False)], "r1", "r1", NOW)
    assert ops(p) == [("delete", "web-1", "succeeded"), ("create", 1, "r1")]


def test_parallel_creates_and_deletes_at_once():
    s = sset(replicas=3, podManagementPolicy="Parallel")
    p = S.plan(s, [pod("web-1", phase="Pending", ready=False)], "r1", "r1", NOW)
    assert ops(p) == [("create", 0, "r1"), ("create", 2, "r1")]
    assert not any(st.stop for st in p.steps)
    s1 = sset(replicas=1, podManagementPolicy="Parallel")
    pods = [pod("web-0"), pod("web-1", ready=False), pod("web-2"), pod("web-3", deleting=True)]
    assert ops(S.plan(s1, pods, "r1", "r1", NOW)) == [("delete", "web-2", "condemned"),
                                                        ("delete", "web-1", "condemned")]


def test_ordered_ready_scale_down_highest_first_one_at_a_time():
    s = sset(replicas=1)
    pods = [pod("web-0"), pod("web-1"), pod("web-2")]
    p = S.plan(s, pods, "r1", "r1", NOW)
    assert ops(p) == [("delete", "web-2", "condemned")] and p.steps[0].stop
    # web-2 terminating: wait for it before web-1
    assert ops(S.plan(s, [pod("web-0"), pod("web-1"), pod("web-2", deleting=True)], "r1", "r1", NOW)) == []
    # a not-ready condemned pod that is not the first unhealthy one blocks
    pods = [pod("web-0"), pod("web-1", ready=False), pod("web-2", ready=False)]
    assert ops(S.plan(s, pods, "r1", "r1", NOW)) == []
    # ... but the first unhealthy one (lowest condemned) may go
    pods = [pod("web-0"), pod("web-1", ready=False), pod("web-2")]
    assert ops(S.plan(s, pods, "r1", "r1", NOW)) == [("delete", "web-2", "condemned")]
    pods = [pod("web-0"), pod("web-1", ready=False)]
    assert ops(S.plan(s, pods, "r1", "r1", NOW)) == [("delete", "web-1", "condemned")]
    # an unready replica in range blocks scaling down under OrderedReady
    assert ops(S.plan(s, [pod("web-0", ready=False), pod("web-1")], "r1", "r1", NOW)) == []
    # a set being deleted does nothing
    gone = sset(replicas=0)
    gone["metadata"]["deletionTimestamp"] = T0
    assert ops(S.plan(gone, [pod("web-0")], "r1", "r1", NOW)) == []


def test_rolling_update_from_the_highest_ordinal_with_partition():
    s = sset(replicas=3)
    old = [pod("web-0"), pod("web-1"), pod("web-2")]
    p = S.plan(s, old, "r1", "r2", NOW)
    assert ops(p) == [("delete", "web-2", "update")]
    # web-2 was deleted; it is made again from the update revision
    assert ops(S.plan(s, old[:2], "r1", "r2", NOW)) == [("create", 2, "r2")]
    # the new web-2 not ready yet: wait
    assert ops(S.plan(s, old[:2] + [pod("web-2", "r2", ready=False)], "r1", "r2", NOW)) == []
    assert ops(S.plan(s, old[:2] + [pod("web-2", "r2")], "r1", "r2", NOW)) == [("delete", "web-1", "update")]
    # partition 2: ordinals 0 and 1 stay on the current revision, also when made again
    sp = sset(replicas=3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    done = [pod("web-0"), pod("web-1"), pod("web-2", "r2")]
    assert ops(S.plan(sp, done, "r1", "r2", NOW)) == []
    assert ops(S.plan(sp, [pod("web-0"), pod("web-2", "r2")], "r1", "r2", NOW)) == [("create", 1, "r1")]
    assert ops(S.plan(sp, [pod("web-0"), pod("web-1")], "r1", "r2", NOW)) == [("create", 2, "r2")]
    # ordinals.start: the partition counts from the first ordinal
    so = sset(replicas=2, ordinals={"start": 5},
              updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    assert ops(S.plan(so, [pod("web-5"), pod("web-6")], "r1", "r2", NOW)) == [("delete", "web-6", "update")]
    assert ops(S.plan(so, [pod("web-6", "r2")], "r1", "r2", NOW)) == [("create", 5, "r1")]
    # OnDelete: never deletes for an update; a deleted pod comes back from the update revision
    sd = sset(replicas=2, updateStrategy={"type": "OnDelete"})
    assert ops(S.plan(sd, [pod("web-0"), pod("web-1")], "r1", "r2", NOW)) == []
    assert ops(S.plan(sd, [pod("web-0")], "r1", "r2", NOW)) == [("create", 1, "r2")]
    # the update in Parallel is one at a time as well
    sq = sset(replicas=3, podManagementPolicy="Parallel")
    assert ops(S.plan(sq, old, "r1", "r2", NOW)) == [("delete", "web-2", "update")]


def test_status():
    s = sset(replicas=3, minReadySeconds=100)
    pods = [pod("web-0"), pod("web-1", "r2"), pod("web-2", "r2", ready=False, phase="Pending"),
            pod("web-3", deleting=True), {"metadata": {"name": "other-0", "labels": {}}, "status": {}}]
    st = S.status_of(s, pods, "r1", "r2", NOW, 0, 4)
    assert st == {"observedGeneration": 4, "replicas": 4, "readyReplicas": 3, "currentReplicas": 1,
                  "updatedReplicas": 2, "currentRevision": "r1", "updateRevision": "r2", "collisionCount": 0,
                  "availableReplicas": 0}
    # all updated and ready: the update revision becomes current
    st = S.status_of(sset(replicas=2), [pod("web-0", "r2"), pod("web-1", "r2")], "r1", "r2", NOW, 1, 2)
    assert st["currentRevision"] == "r2" and st["currentReplicas"] == 2 and st["collisionCount"] == 1
    assert st["availableReplicas"] == 2
    # OnDelete: never completed that way
    st = S.status_of(sset(replicas=1, updateStrategy={"type": "OnDelete"}), [pod("web-0", "r2")], "r1", "r2",
                     NOW, 0, 2)
    assert st["currentRevision"] == "r1" and "currentReplicas" not in st
    empty = S.status_of(sset(replicas=0), [], "r1", "r1", NOW, 0, 1)
    assert empty == {"observedGeneration": 1, "replicas": 0, "currentRevision": "r1", "updateRevision": "r1",
                     "collisionCount": 0, "availableReplicas": 0}


def test_revisions_and_history():
    s = sset()
    r = S.new_revision(s, 3, 0)
    assert r["metadata"]["name"].startswith("web-") and r["revision"] == 3
    assert r["data"]["spec"]["template"]["$patch"] == "replace"
    assert S.revision_template(r) == s["spec"]["template"]
    assert r["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert r["metadata"]["labels"]["app"] == "web"
    assert S.new_revision(s, 3, 1)["metadata"]["name"] != r["metadata"]["name"]       # a collision
    s2 = copy.deepcopy(s)
    s2["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    assert S.new_revision(s2, 4, 0)["metadata"]["name"] != r["metadata"]["name"]
    revs = [{"metadata": {"name": f"web-{i}"}, "revision": i} for i in range(1, 6)]
    s["spec"]["revisionHistoryLimit"] = 2      # web-2 and web-3 are history (no pod runs them): kept
    assert S.history_to_prune(s, revs, {"web-5", "web-4", "web-1"}) == []
    s["spec"]["revisionHistoryLimit"] = 1
    pruned = S.history_to_prune(s, revs, {"web-5", "web-4", "web-1"})
    assert [x["metadata"]["name"] for x in pruned] == ["web-2"]
    s["spec"]["revisionHistoryLimit"] = 0
    assert [x["metadata"]["name"] for x in S.history_to_prune(s, revs, {"web-5"})] == \
        ["web-1", "web-2", "web-3", "web-4"]


def test_claim_owner_refs_follow_the_retention_policy():
    def policy(deleted, scaled, replicas=2):
        return sset(replicas=replicas, persistentVolumeClaimRetentionPolicy={"whenDeleted": deleted,
                                                                             "whenScaled": scaled})
    claim = {"metadata": {"name": "www-web-1"}}
    set_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u-web"}
    pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "u-web-1"}
    assert S.claim_owner_refs(policy("Retain", "Retain"), pod("web-1"), claim) is None
    assert S.claim_owner_refs(policy("Delete", "Retain"), pod("web-1"), claim) == [set_ref]
    assert S.claim_owner_refs(policy("Delete", "Retain"), None, claim) == [set_ref]
    # whenScaled Delete: the pod owns it once it is scaled away (not while in range)
    assert S.claim_owner_refs(policy("Retain", "Delete"), pod("web-1"), claim) is None
    assert S.claim_owner_refs(policy("Retain", "Delete", 1), pod("web-1"), claim) == [pod_ref]
    assert S.claim_owner_refs(policy("Delete", "Delete", 1), pod("web-1"), claim) == [pod_ref]
    assert S.claim_owner_refs(policy("Delete", "Delete"), pod("web-1"), claim) == [set_ref]
    # back to Retain: the references go, others stay
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u-x"}
    owned = {"metadata": {"name": "www-web-1", "ownerReferences": [set_ref, other]}}
    assert S.claim_owner_refs(policy("Retain", "Retain"), pod("web-1"), owned) == [other]
    assert S.claim_owner_refs(policy("Delete", "Retain"), pod("web-1"), owned) is None
