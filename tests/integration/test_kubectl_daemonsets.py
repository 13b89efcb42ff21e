"""The real kubectl 1.32 driving a DaemonSet on skiff: one controller, a real agent running busybox
containers, and two hollow nodes (`skiff hollow`: the real agent over the fake runtime) so there
are three nodes to run a daemon pod on. apply, rollout status, get ds (Kubernetes' columns), one
pod per node, logs of the real node's pod, describe ds, rollout restart|history|undo through
ControllerRevisions, delete (the garbage collector removes the pods)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid

from tests.integration.kubectl import IDLE, kube, row, table  # noqa: F401 (kube is a fixture)
from tests.integration.onehost import REPO

HOLLOW_NODES = 2


def daemonset(name: str) -> dict:
    script = f'echo "hello from $NODE"; {IDLE}'
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                      "env": [{"name": "NODE", "valueFrom": {"fieldRef": {
                                          "fieldPath": "spec.nodeName"}}}]}]}}}}


def start_hollows(kube, prefix: str) -> subprocess.Popen:
    """Two hollow nodes joining the cluster with the agent's join token (their CA file and
    temporary files in the cluster's work dir)."""
    host = kube.host
    log = open(os.path.join(host.workdir, "hollow.log"), "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "skiff", "hollow", "--server", host.url, "--token", host.token,
             "--ca-file", host.ca_file, "--nodes", str(HOLLOW_NODES), "--prefix", prefix,
             "--lease-duration", "1", "--log-port", "-1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "TMPDIR": host.workdir})
    finally:
        log.close()


def pods_by_node(k, name: str) -> dict[str, str]:
    out = k.ok("get", "pods", "-l", f"app={name}", "-o",
               "jsonpath={range .items[*]}{.spec.nodeName} {.metadata.name} {.metadata.deletionTimestamp}{'\\n'}{end}")
    by: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:         # not being deleted
            assert parts[0] not in by, f"two pods on {parts[0]}:\n{out}"
            by[parts[0]] = parts[1]
    return by


def test_daemonset_commands(kube):
    k = kube.kubectl
    prefix = f"hollow-{uuid.uuid4().hex[:4]}-"
    hollow = start_hollows(kube, prefix)
    try:
        nodes = kube.wait(lambda: (lambda n: n if len(n) == HOLLOW_NODES + 1 else None)(
            [r[0] for r in table(k.ok("get", "nodes"))[1] if r[1] == "Ready"]), 60, "the hollow nodes to be Ready")
        assert kube.node in nodes
        _exercise(kube, k, sorted(nodes))
    finally:
        hollow.send_signal(signal.SIGKILL)
        hollow.wait(timeout=30)
        for i in range(HOLLOW_NODES):
            k("delete", "node", f"{prefix}{i:04d}", "--ignore-not-found", "--wait=false")


def _exercise(kube, k, nodes: list[str]) -> None:
    path = kube.file("ds.yaml", daemonset("agent"))
    assert k.ok("apply", "-f", path) == "daemonset.apps/agent created\n"
    out = k.ok("rollout", "status", "ds/agent", "--timeout=60s", timeout=70)
    assert out.splitlines()[-1] == 'daemon set "agent" successfully rolled out', out
    assert k.ok("apply", "-f", path) == "daemonset.apps/agent unchanged\n"     # the server's defaults are no change

    # get ds: Kubernetes' columns; one pod per node, the real node's running a real container
    out = k.ok("get", "ds")
    assert table(out)[0] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
    r = row(out, "agent")
    assert [r[c] for c in ("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR")] == \
        ["3", "3", "3", "3", "3", "<none>"], out
    wide = k.ok("get", "daemonset", "agent", "-o", "wide")
    assert table(wide)[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert [row(wide, "agent")[c] for c in ("CONTAINERS", "IMAGES", "SELECTOR")] == ["main", "busybox", "app=agent"]
    assert re.search(r"^daemonset\.apps/agent\s+3\s+3\s+3\s+3\s+3\s+<none>\s", k.ok("get", "all"), re.M)
    by_node = pods_by_node(k, "agent")
    assert sorted(by_node) == nodes, by_node
    # skiffctl prints the same
    ctl = kube.host.ctl
    head, rows = table(ctl("get", "ds").stdout)
    assert head == table(out)[0] and rows[0][:7] == table(out)[1][0][:7]     # all but AGE
    assert ctl("rollout", "status", "ds/agent").stdout == 'daemon set "agent" successfully rolled out\n'
    real = by_node[kube.node]
    kube.wait(lambda: f"hello from {kube.node}" in k("logs", real).stdout, 20, "the real pod's log line")
    pod = k.json("get", "pod", real)
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [kube.node]}]}]}
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"

    # describe ds: kubectl's layout and the controller's events
    out = k.ok("describe", "ds", "agent")
    for line in (r"Selector:\s+app=agent", r"Node-Selector:\s+<none>", "Desired Number of Nodes Scheduled: 3",
                 "Current Number of Nodes Scheduled: 3", "Number of Nodes Scheduled with Up-to-date Pods: 3",
                 "Number of Nodes Scheduled with Available Pods: 3", "Number of Nodes Misscheduled: 0",
                 r"Pods Status:\s+3 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
        assert re.search(f"^{line}$", out, re.M), (line, out)
    assert re.search(rf"Normal\s+SuccessfulCreate\s+.*daemonset-controller\s+Created pod: {real}", out), out

    # a template change rolls every node: new pods, a second revision
    assert k.ok("rollout", "restart", "ds/agent") == "daemonset.apps/agent restarted\n"
    out = k.ok("rollout", "status", "ds/agent", "--timeout=90s", timeout=100)
    assert out.splitlines()[-1] == 'daemon set "agent" successfully rolled out', out
    restarted = kube.wait(lambda: (lambda b: b if len(b) == 3 and not set(b.values()) & set(by_node.values())
                                   else None)(pods_by_node(k, "agent")), 30, "the old pods to be gone")
    assert sorted(restarted) == nodes
    assert k.ok("get", "pod", restarted[kube.node], "-o", "jsonpath={.metadata.labels.pod-template-generation}") \
        == "2"
    hist = k.ok("rollout", "history", "ds/agent")
    assert re.search(r"^REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>$", hist, re.M), hist
    revs = k.ok("get", "controllerrevisions", "-l", "app=agent")
    assert table(revs)[0] == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert sorted((r[1], r[2]) for r in table(revs)[1]) == [("daemonset.apps/agent", "1"),
                                                            ("daemonset.apps/agent", "2")], revs
    assert "kubectl.kubernetes.io/restartedAt" in k.ok("rollout", "history", "ds/agent", "--revision=2")

    # rollout undo: revision 1's template is back (as revision 3), rolled out again
    assert k.ok("rollout", "undo", "ds/agent") == "daemonset.apps/agent rolled back\n"
    out = k.ok("rollout", "status", "ds/agent", "--timeout=90s", timeout=100)
    assert out.splitlines()[-1] == 'daemon set "agent" successfully rolled out', out
    assert "restartedAt" not in k.ok("get", "ds", "agent", "-o", "jsonpath={.spec.template.metadata.annotations}")
    assert re.search(r"^2\s+<none>\n3\s+<none>$", k.ok("rollout", "history", "ds/agent"), re.M)

    # delete: the DaemonSet goes, the garbage collector deletes its pods and revisions
    assert k.ok("delete", "ds", "agent") == 'daemonset.apps "agent" deleted\n'
    kube.wait(lambda: "No resources found" in k("get", "pods,controllerrevisions", "-l", "app=agent").stderr, 30,
              "the daemon pods and revisions to be gone")
