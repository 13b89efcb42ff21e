"""skiffctl on DaemonSets, over canned objects and a fake client: describe ds (kubectl's layout),
rollout status messages, rollout history|undo|restart through ControllerRevisions, and the pod
that logs ds/NAME picks."""
from __future__ import annotations

import copy

import pytest

from skiff.cli.ctl import daemonsets as DS
from skiff.cli.ctl.client import CtlError
from skiff.cli.ctl.common import pod_for
from skiff.cli.ctl.describe_daemonset import describe_daemonset

from tests.unit.test_ctl_workloads import Ctx, FakeClient, _rollout, ts

TEMPLATE = {"metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "agent", "image": "busybox:1"}], "restartPolicy": "Always",
                     "nodeSelector": {"disk": "ssd"}}}


def daemonset(gen=2, observed=2, desired=3, updated=3, available=3, ready=3, strategy="RollingUpdate", image=None):
    t = copy.deepcopy(TEMPLATE)
    if image:
        t["spec"]["containers"][0]["image"] = image
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": gen,
                         "creationTimestamp": ts(300), "labels": {"team": "infra"},
                         "annotations": {"deprecated.daemonset.template.generation": "2"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": t,
                     "updateStrategy": {"type": strategy}, "revisionHistoryLimit": 10},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "currentNumberScheduled": desired, "numberReady": ready, "updatedNumberScheduled": updated,
                       "numberAvailable": available, "numberMisscheduled": 1}}


def revision(n, image, cause=None, owner="ds-uid"):
    t = copy.deepcopy(TEMPLATE)
    t["spec"]["containers"][0]["image"] = image
    md = {"name": f"agent-h{n}", "namespace": "default",
          "labels": {"app": "agent", "controller-revision-hash": f"h{n}"},
          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": owner,
                               "controller": True, "blockOwnerDeletion": True}]}
    if cause:
        md["annotations"] = {"kubernetes.io/change-cause": cause}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": {"spec": {"template": {**t, "$patch": "replace"}}}, "revision": n}


def pod(name, phase, ready=True):
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "agent"},
                         "creationTimestamp": ts(100),
                         "ownerReferences": [{"kind": "DaemonSet", "uid": "ds-uid", "controller": True}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_describe_daemonset_layout():
    pods = [pod("agent-a", "Running"), pod("agent-b", "Running"), pod("agent-c", "Pending"), pod("agent-d", "Failed")]
    events = [{"type": "Normal", "reason": "SuccessfulCreate", "message": "Created pod: agent-a",
               "source": {"component": "daemonset-controller"}, "lastTimestamp": ts(30), "count": 1}]
    out = describe_daemonset(daemonset(), events, pods)
    lines = out.splitlines()
    assert lines[:12] == [
        "Name:           agent",
        "Selector:       app=agent",
        "Node-Selector:  disk=ssd",
        "Labels:         team=infra",
        "Annotations:    deprecated.daemonset.template.generation: 2",
        "Desired Number of Nodes Scheduled: 3",
        "Current Number of Nodes Scheduled: 3",
        "Number of Nodes Scheduled with Up-to-date Pods: 3",
        "Number of Nodes Scheduled with Available Pods: 3",
        "Number of Nodes Misscheduled: 1",
        "Pods Status:  2 Running / 1 Waiting / 0 Succeeded / 1 Failed",      # a block of its own, as kubectl's
        "Pod Template:"], out
    assert "    Image:         busybox:1" in lines
    assert any(line.startswith("  Node-Selectors:  disk=ssd") for line in lines)
    assert lines[-3].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert "SuccessfulCreate" in lines[-1] and lines[-1].endswith("daemonset-controller  Created pod: agent-a")
    assert "Pods Status:  error in fetching pods" in describe_daemonset(daemonset(), None, None)


@pytest.mark.parametrize("d,msg,done", [
    (daemonset(gen=3, observed=2), "Waiting for daemon set spec update to be observed...", False),
    (daemonset(updated=1), 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been '
                           'updated...', False),
    (daemonset(available=2), 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are '
                             'available...', False),
    (daemonset(), 'daemon set "agent" successfully rolled out', True),
])
def test_rollout_status_messages(d, msg, done):
    assert DS.status_message(d) == (msg, done)


def test_rollout_status_on_delete():
    with pytest.raises(CtlError, match="rollout status is only available for RollingUpdate strategy type"):
        DS.status_message(daemonset(strategy="OnDelete"))


def test_rollout_commands(capsys):
    objs = {("daemonsets", "agent"): daemonset(image="busybox:3"),
            ("controllerrevisions", "agent-h1"): revision(1, "busybox:1", cause="first"),
            ("controllerrevisions", "agent-h3"): revision(3, "busybox:3"),
            ("controllerrevisions", "agent-h2"): revision(2, "busybox:2"),
            ("controllerrevisions", "other-h9"): revision(9, "busybox:9", owner="other")}
    c = FakeClient(objs)
    assert _rollout(c, "history", "ds/agent") == 0
    assert capsys.readouterr().out == ("daemonset.apps/agent \nREVISION  CHANGE-CAUSE\n1         first\n"
                                       "2         <none>\n3         <none>\n\n")
    assert _rollout(c, "history", "daemonset", "agent", revision=2) == 0
    out = capsys.readouterr().out
    assert out.startswith("daemonset.apps/agent with revision #2\nPod Template:\n  Labels:\tapp=agent\n")
    assert "busybox:2" in out and "$patch" not in out
    with pytest.raises(CtlError, match="unable to find the specified revision"):
        _rollout(c, "history", "ds/agent", revision=9)
    # undo: the previous revision's data, as a strategic merge patch
    assert _rollout(c, "undo", "ds/agent") == 0
    assert capsys.readouterr().out == "daemonset.apps/agent rolled back\n"
    assert c.requests[-1] == ("PATCH", "/apis/apps/v1/namespaces/default/daemonsets/agent",
                              revision(2, "busybox:2")["data"], "application/strategic-merge-patch+json")
    assert _rollout(c, "undo", "ds/agent", to_revision=3) == 0
    assert capsys.readouterr().out == ("daemonset.apps/agent skipped rollback "
                                       "(current template already matches revision 3)\n")
    with pytest.raises(CtlError, match="unable to find specified revision 7 in history"):
        _rollout(c, "undo", "ds/agent", to_revision=7)
    # restart: the restartedAt annotation on the template
    assert _rollout(c, "restart", "ds/agent") == 0
    assert capsys.readouterr().out == "daemonset.apps/agent restarted\n"
    m, path, body, ctype = c.requests[-1]
    assert (m, path, ctype) == ("PATCH", "/apis/apps/v1/namespaces/default/daemonsets/agent",
                                "application/strategic-merge-patch+json")
    assert "kubectl.kubernetes.io/restartedAt" in body["spec"]["template"]["metadata"]["annotations"]
    # status
    assert _rollout(c, "status", "ds/agent") == 0
    assert capsys.readouterr().out == 'daemon set "agent" successfully rolled out\n'
    c.objs[("daemonsets", "agent")] = daemonset(updated=2)
    assert _rollout(c, "status", "ds/agent", watch=False) == 0
    assert "2 out of 3 new pods have been updated" in capsys.readouterr().out
    with pytest.raises(CtlError, match="no pauser has been implemented"):
        _rollout(c, "pause", "ds/agent")
    # a DaemonSet with one revision has nothing to go back to
    one = FakeClient({("daemonsets", "agent"): daemonset(),
                      ("controllerrevisions", "agent-h1"): revision(1, "busybox:1")})
    with pytest.raises(CtlError, match="no last revision to roll back to"):
        _rollout(one, "undo", "ds/agent")


def test_logs_and_exec_pick_a_daemon_pod():
    c = FakeClient({("daemonsets", "agent"): daemonset(), ("pods", "agent-b"): pod("agent-b", "Pending"),
                    ("pods", "agent-a"): pod("agent-a", "Running"),
                    ("pods", "web-x"): {**pod("web-x", "Running"), "metadata": {"name": "web-x", "labels": {}}}})
    assert pod_for(c, "default", "ds/agent")["metadata"]["name"] == "agent-a"
    from skiff.cli.ctl import logs
    with pytest.raises(CtlError, match="daemon sets"):
        logs.run(Ctx(c), ["cm/x"], {"container": None})
