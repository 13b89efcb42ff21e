"""skiffctl's workload commands against a real `skiff controller` process (ReplicaSet,
Deployment, GC and namespace controllers; no agent runs, so the tests make pods Ready
themselves by patching pods/NAME/status with the admin token)."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import pytest
import yaml

from tests.integration.test_skiffctl import cluster, write  # noqa: F401 - the module fixture


# ------------------------------------------------------------------ helpers

class Api:
    """Raw REST calls with the admin token of the cluster's kubeconfig."""

    def __init__(self, cl):
        self.server = cl.server
        import ssl
        self.ssl = ssl.create_default_context(cafile=os.path.join(cl.data_dir, "pki", "ca.crt"))
        self.token = yaml.safe_load(open(cl.kubeconfig))["users"][0]["user"]["token"]

    def call(self, method, path, body=None, ctype="application/json"):
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=10, context=self.ssl) as r:
            return json.loads(r.read() or b"{}")

    def pods(self, ns="default", selector=None):
        q = f"?labelSelector={urllib.request.quote(selector)}" if selector else ""
        return self.call("GET", f"/api/v1/namespaces/{ns}/pods{q}")["items"]

    def make_ready(self, pod):
        md = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        conds = [c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") not in ("Ready", "ContainersReady", "Initialized")]
        conds += [{"type": t, "status": "True", "lastTransitionTime": now}
                  for t in ("Initialized", "ContainersReady", "Ready")]
        cs = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
               "started": True, "state": {"running": {"startedAt": now}}}
              for c in pod["spec"]["containers"]]
        try:
            self.call("PATCH", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/status",
                      {"status": {"phase": "Running", "conditions": conds, "containerStatuses": cs,
                                  "startTime": now}}, "application/merge-patch+json")
        except urllib.error.HTTPError as e:
            if e.code not in (404, 409):
                raise


def is_ready(pod) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class AutoReady:
    """Marks every pod of a namespace Ready, continuously, while active."""

    def __init__(self, api, ns="default"):
        self.api, self.ns = api, ns
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                for p in self.api.pods(self.ns):
                    if not is_ready(p) and not p["metadata"].get("deletionTimestamp"):
                        self.api.make_ready(p)
            except Exception:  # noqa: BLE001 - keep trying
                pass
            self.stop.wait(0.2)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(5)


def wait_for(fn, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def deploy_yaml(name, image="busybox", replicas=2, ns=None, cause=None):
    nsl = f"\n  namespace: {ns}" if ns else ""
    ann = f"\n  annotations: {{kubernetes.io/change-cause: \"{cause}\"}}" if cause else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}{nsl}{ann}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: c
        image: {image}
        command: [sleep, "3600"]
"""


def names(cl, *args):
    return cl.ok("get", *args, "-o", "name").split()


@pytest.fixture(scope="module")
def api(cluster):  # noqa: F811
    return Api(cluster)


# ------------------------------------------------------------------ tests

def test_create_get_and_scale(cluster, api):  # noqa: F811
    assert cluster.ok("create", "deployment", "web", "--image", "busybox", "--replicas", "2", "--",
                      "sleep", "3600") == "deployment.apps/web created\n"
    wait_for(lambda: len(api.pods(selector="app=web")) == 2, what="2 pods")
    out = cluster.ok("get", "deploy,rs,pods", "-l", "app=web")
    tables = out.split("\n\n")
    assert len(tables) == 3, out
    assert tables[0].splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert tables[0].splitlines()[1].split()[0] == "deployment.apps/web"
    assert tables[1].splitlines()[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    rsname = tables[1].splitlines()[1].split()[0]
    assert rsname.startswith("replicaset.apps/web-")
    assert tables[1].splitlines()[1].split()[1:3] == ["2", "2"]
    assert tables[2].splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert all(line.startswith(f"pod/{rsname.split('/')[1]}-") for line in tables[2].splitlines()[1:])
    wide = cluster.ok("get", "deploy", "web", "-o", "wide").splitlines()
    assert wide[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[5:] == ["busybox", "busybox", "app=web"]
    allout = cluster.ok("get", "all")
    assert "deployment.apps/web" in allout and rsname in allout and "pod/web-" in allout
    # scale through /scale
    assert cluster.ok("scale", "deploy/web", "--replicas", "3") == "deployment.apps/web scaled\n"
    wait_for(lambda: len(api.pods(selector="app=web")) == 3, what="3 pods")
    assert cluster.ok("get", "deploy", "web", "-o", "json") and \
        json.loads(cluster.ok("get", "deploy", "web", "-o", "json"))["spec"]["replicas"] == 3
    assert cluster.ok("scale", "deployment", "web", "--replicas=1") == "deployment.apps/web scaled\n"
    wait_for(lambda: len([p for p in api.pods(selector="app=web")
                          if not p["metadata"].get("deletionTimestamp")]) == 1, what="1 pod")
    rs = rsname.split("/")[1]
    assert cluster.ok("scale", f"rs/{rs}", "--replicas", "1") == f"replicaset.apps/{rs} scaled\n"
    p = cluster("scale", "deploy/nope", "--replicas", "1")
    assert p.returncode == 1 and 'deployments.apps "nope" not found' in p.stderr
    p = cluster("scale", "deploy/web")
    assert p.returncode == 1 and 'required flag(s) "replicas" not set' in p.stderr


def test_rollout_status_history_undo_restart(cluster, api, tmp_path):  # noqa: F811
    f = write(tmp_path, "roll.yaml", deploy_yaml("roll", "busybox:1.35", cause="first"))
    assert cluster.ok("apply", "-f", f) == "deployment.apps/roll created\n"
    # nothing becomes Ready on its own: status waits, then times out
    p = cluster("rollout", "status", "deploy/roll", "--timeout", "3s")
    assert p.returncode == 1 and "timed out waiting for the condition" in p.stderr
    assert 'Waiting for deployment "roll" rollout to finish' in p.stdout or \
        "Waiting for deployment spec update to be observed..." in p.stdout
    p = cluster("rollout", "status", "deploy/roll", "--watch=false")
    assert p.returncode == 0 and p.stdout.startswith("Waiting for")
    with AutoReady(api):
        p = cluster("rollout", "status", "deploy/roll", "--timeout", "60s", timeout=70)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines()[-1] == 'deployment "roll" successfully rolled out'
        out = cluster.ok("get", "deploy", "roll").splitlines()
        assert out[1].split()[1:4] == ["2/2", "2", "2"]
        # a new template: revision 2
        cluster.ok("apply", "-f", write(tmp_path, "roll.yaml", deploy_yaml("roll", "busybox:1.36", cause="second")))
        p = cluster("rollout", "status", "deployment", "roll", "--timeout", "60s", timeout=70)
        assert p.returncode == 0 and p.stdout.splitlines()[-1] == 'deployment "roll" successfully rolled out', \
            p.stdout + p.stderr
        hist = cluster.ok("rollout", "history", "deploy/roll")
        assert hist.splitlines()[0] == "deployment.apps/roll "
        assert [line.split(None, 1) for line in hist.splitlines()[1:] if line] == \
            [["REVISION", "CHANGE-CAUSE"], ["1", "first"], ["2", "second"]]
        one = cluster.ok("rollout", "history", "deploy/roll", "--revision", "1")
        assert one.startswith("deployment.apps/roll with revision #1\nPod Template:\n")
        assert "busybox:1.35" in one and "busybox:1.36" not in one
        p = cluster("rollout", "history", "deploy/roll", "--revision", "9")
        assert p.returncode == 1 and "unable to find the specified revision" in p.stderr
        # describe shows the new RS and the old one
        d = cluster.ok("describe", "deployment", "roll")
        lines = d.splitlines()
        assert any(line.split()[:1] == ["Replicas:"] and line.split()[1:] ==
                   ["2", "desired", "|", "2", "updated", "|", "2", "total", "|", "2", "available", "|",
                    "0", "unavailable"] for line in lines), d
        assert any(line.split() == ["StrategyType:", "RollingUpdate"] for line in lines)
        assert any(line.split() == ["RollingUpdateStrategy:", "25%", "max", "unavailable,", "25%", "max", "surge"]
                   for line in lines)
        assert "Pod Template:" in lines and "busybox:1.36" in d
        new = next(line for line in lines if line.startswith("NewReplicaSet:"))
        assert new.split()[1].startswith("roll-") and new.endswith("(2/2 replicas created)")
        old = next(line for line in lines if line.startswith("OldReplicaSets:"))
        assert "(0/0 replicas created)" in old
        assert any(line.split()[:1] == ["Available"] and "True" in line for line in lines)
        # undo: back to revision 1's template, which becomes revision 3
        assert cluster.ok("rollout", "undo", "deploy/roll") == "deployment.apps/roll rolled back\n"
        cluster.ok("rollout", "status", "deploy/roll", "--timeout", "60s", timeout=70)
        live = json.loads(cluster.ok("get", "deploy", "roll", "-o", "json"))
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.35"
        assert "pod-template-hash" not in live["spec"]["template"]["metadata"]["labels"]
        wait_for(lambda: [line.split()[0] for line in cluster.ok("rollout", "history", "deploy/roll").splitlines()[2:]
                          if line] == ["2", "3"], what="revisions 2, 3")
        assert cluster.ok("rollout", "undo", "deploy/roll", "--to-revision", "3") == \
            "deployment.apps/roll skipped rollback (current template already matches revision 3)\n"
        p = cluster("rollout", "undo", "deploy/roll", "--to-revision", "7")
        assert p.returncode == 1 and "unable to find specified revision 7 in history" in p.stderr
        assert cluster.ok("rollout", "undo", "deploy/roll", "--to-revision", "2") == "deployment.apps/roll rolled back\n"
        cluster.ok("rollout", "status", "deploy/roll", "--timeout", "60s", timeout=70)
        live = json.loads(cluster.ok("get", "deploy", "roll", "-o", "json"))
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
        # restart: a template annotation, a new revision
        assert cluster.ok("rollout", "restart", "deploy/roll") == "deployment.apps/roll restarted\n"
        live = json.loads(cluster.ok("get", "deploy", "roll", "-o", "json"))
        assert "kubectl.kubernetes.io/restartedAt" in live["spec"]["template"]["metadata"]["annotations"]
        p = cluster("rollout", "status", "deploy/roll", "--timeout", "60s", timeout=70)
        assert p.returncode == 0 and p.stdout.splitlines()[-1] == 'deployment "roll" successfully rolled out'
        revs = [line.split()[0] for line in cluster.ok("rollout", "history", "deploy/roll").splitlines()[2:] if line]
        assert revs[-1] == "5", revs
    p = cluster("rollout", "status", "deploy/missing")
    assert p.returncode == 1 and 'deployments.apps "missing" not found' in p.stderr


def test_delete_cascade_orphan_and_background(cluster, api, tmp_path):  # noqa: F811
    cluster.ok("apply", "-f", write(tmp_path, "orph.yaml", deploy_yaml("orph", replicas=2)))
    wait_for(lambda: len(api.pods(selector="app=orph")) == 2, what="2 pods")
    rs = wait_for(lambda: names(cluster, "rs", "-l", "app=orph"), what="the RS")[0].split("/")[1]
    pods_before = sorted(p["metadata"]["name"] for p in api.pods(selector="app=orph"))
    assert cluster.ok("delete", "deploy", "orph", "--cascade=orphan", "--timeout", "30s") == \
        'deployment.apps "orph" deleted\n'
    assert cluster("get", "deploy", "orph").returncode == 1
    # the RS and its pods stay; the RS has lost its owner
    time.sleep(1.0)
    live = json.loads(cluster.ok("get", "rs", rs, "-o", "json"))
    assert not live["metadata"].get("ownerReferences")
    assert sorted(p["metadata"]["name"] for p in api.pods(selector="app=orph")) == pods_before
    # a background delete of the RS takes its pods
    assert cluster.ok("delete", f"rs/{rs}") == f'replicaset.apps "{rs}" deleted\n'
    wait_for(lambda: not api.pods(selector="app=orph"), what="the pods to go")
    p = cluster("delete", "deploy", "x", "--cascade=sideways")
    assert p.returncode == 1 and "invalid cascade value" in p.stderr


def test_create_and_delete_namespace(cluster, api, tmp_path):  # noqa: F811
    assert cluster.ok("create", "namespace", "team") == "namespace/team created\n"
    p = cluster("create", "namespace", "team")
    assert p.returncode == 1 and "AlreadyExists" in p.stderr
    assert cluster.ok("-n", "team", "create", "deployment", "app", "--image", "busybox") == \
        "deployment.apps/app created\n"
    wait_for(lambda: api.pods("team"), what="a pod in team")
    assert cluster.ok("delete", "namespace", "team", "--timeout", "60s", timeout=70) == 'namespace "team" deleted\n'
    p = cluster("get", "namespace", "team")
    assert p.returncode == 1 and "NotFound" in p.stderr
    p = cluster("delete", "namespace", "default")
    assert p.returncode == 1 and "Forbidden" in p.stderr
