"""skiffctl on StatefulSets, over canned objects and a fake client: describe sts (kubectl's
layout), kubectl's StatefulSetStatusViewer messages, rollout history|undo|restart through the
set's ControllerRevisions, and the pod that logs sts/NAME picks."""
from __future__ import annotations

import copy

import pytest

from skiff.cli.ctl import statefulsets as STS
from skiff.cli.ctl.client import CtlError
from skiff.cli.ctl.common import pod_for
from skiff.cli.ctl.describe_statefulset import describe_statefulset

from tests.unit.test_ctl_workloads import FakeClient, _rollout, ts

TEMPLATE = {"metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}], "restartPolicy": "Always"}}


def sset(gen=2, observed=2, replicas=3, ready=3, updated=3, current=3, partition=0, strategy="RollingUpdate",
         cur_rev="web-a", upd_rev="web-a", image=None, claims=True):
    t = copy.deepcopy(TEMPLATE)
    if image:
        t["spec"]["containers"][0]["image"] = image
    us = {"type": strategy}
    if strategy == "RollingUpdate" and partition is not None:
        us["rollingUpdate"] = {"partition": partition}
    spec = {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
            "template": t, "updateStrategy": us, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10}
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "www", "labels": {"tier": "data"}},
                                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                                                  "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "sts-uid", "generation": gen,
                         "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": spec,
            "status": {"observedGeneration": observed, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": updated, "currentReplicas": current, "currentRevision": cur_rev,
                       "updateRevision": upd_rev, "availableReplicas": ready, "collisionCount": 0}}


def revision(n, image, owner="sts-uid"):
    t = copy.deepcopy(TEMPLATE)
    t["spec"]["containers"][0]["image"] = image
    md = {"name": f"web-h{n}", "namespace": "default", "labels": {"app": "nginx"},
          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": owner,
                               "controller": True, "blockOwnerDeletion": True}]}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": {"spec": {"template": {**t, "$patch": "replace"}}}, "revision": n}


def pod(name, phase, ready=True):
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "nginx"},
                         "creationTimestamp": ts(100),
                         "ownerReferences": [{"kind": "StatefulSet", "uid": "sts-uid", "controller": True}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_describe_statefulset_layout():
    pods = [pod("web-0", "Running"), pod("web-1", "Running"), pod("web-2", "Pending")]
    events = [{"type": "Normal", "reason": "SuccessfulCreate",
               "message": "create Pod web-0 in StatefulSet web successful", "source": {"component": "statefulset-controller"}, "lastTimestamp": ts(30), "count": 1}]
    out = describe_statefulset(sset(), events, pods)
    lines = out.splitlines()
    assert lines[:11] == [
        "Name:               web",
        "Namespace:          default",
        "CreationTimestamp:  Tue, 02 Jan 2024 03:04:05 +0000",
        "Selector:           app=nginx",
        "Labels:             <none>",
        "Annotations:        <none>",
        "Replicas:           3 desired | 3 total",
        "Update Strategy:    RollingUpdate",
        "  Partition:        0",
        "Pods Status:        2 Running / 1 Waiting / 0 Succeeded / 0 Failed",
        "Pod Template:"], out
    i = lines.index("Volume Claims:")
    assert [ln.split(None, 1) for ln in lines[i + 1:i + 7]] == [
        ["Name:", "www"], ["StorageClass:", "local"], ["Labels:", "tier=data"], ["Annotations:", "<none>"],
        ["Capacity:", "1Gi"], ["Access", "Modes:  [ReadWriteOnce]"]]
    assert lines[-1].endswith("statefulset-controller  create Pod web-0 in StatefulSet web successful")
    plain = describe_statefulset(sset(claims=False, strategy="OnDelete"), None, None)
    assert plain.splitlines()[-1].split() == ["Volume", "Claims:", "<none>"] and "Partition" not in plain
    assert "Pods Status:" in plain and "error in fetching pods" in plain


@pytest.mark.parametrize("s,msg,done", [
    (sset(gen=3, observed=2), "Waiting for statefulset spec update to be observed...", False),
    (sset(observed=0, gen=1), "Waiting for statefulset spec update to be observed...", False),
    (sset(ready=1), "Waiting for 2 pods to be ready...", False),
    (sset(updated=1, partition=1), "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been "
                                   "updated...", False),
    (sset(updated=2, partition=1), "partitioned roll out complete: 2 new pods have been updated...", True),
    (sset(), "partitioned roll out complete: 3 new pods have been updated...", True),
    (sset(partition=None, updated=1, upd_rev="web-b"), "waiting for statefulset rolling update to complete 1 pods "
                                                       "at revision web-b...", False),
    (sset(partition=None), "statefulset rolling update complete 3 pods at revision web-a...", True),
])
def test_rollout_status_messages(s, msg, done):
    assert STS.status_message(s) == (msg, done)


def test_rollout_status_on_delete():
    with pytest.raises(CtlError, match="rollout status is only available for RollingUpdate strategy type"):
        STS.status_message(sset(strategy="OnDelete"))


def test_rollout_commands(capsys):
    objs = {("statefulsets", "web"): sset(image="nginx:2", claims=False),
            ("controllerrevisions", "web-h1"): revision(1, "nginx:1"),
            ("controllerrevisions", "web-h2"): revision(2, "nginx:2"),
            ("controllerrevisions", "other-h9"): revision(9, "nginx:9", owner="other")}
    c = FakeClient(objs)
    assert _rollout(c, "history", "sts/web") == 0
    assert capsys.readouterr().out == "statefulset.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n" \
                                      "2         <none>\n\n"
    assert _rollout(c, "undo", "sts/web") == 0
    assert capsys.readouterr().out == "statefulset.apps/web rolled back\n"
    assert c.requests[-1] == ("PATCH", "/apis/apps/v1/namespaces/default/statefulsets/web",
                              revision(1, "nginx:1")["data"], "application/strategic-merge-patch+json")
    assert _rollout(c, "restart", "statefulset/web") == 0
    assert capsys.readouterr().out == "statefulset.apps/web restarted\n"
    assert "kubectl.kubernetes.io/restartedAt" in c.requests[-1][2]["spec"]["template"]["metadata"]["annotations"]
    assert _rollout(c, "status", "sts/web") == 0
    assert capsys.readouterr().out == "partitioned roll out complete: 3 new pods have been updated...\n"
    with pytest.raises(CtlError, match="no pauser has been implemented"):
        _rollout(c, "pause", "sts/web")


def test_logs_and_exec_pick_a_pod_of_the_set():
    c = FakeClient({("statefulsets", "web"): sset(), ("pods", "web-1"): pod("web-1", "Pending"),
                    ("pods", "web-0"): pod("web-0", "Running")})
    assert pod_for(c, "default", "sts/web")["metadata"]["name"] == "web-0"
