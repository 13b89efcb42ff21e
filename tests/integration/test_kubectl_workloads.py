"""The real kubectl 1.32 driving Deployments on skiff (controller + a real agent): get deploy/rs/all,
scale (the /scale subresource), rollout status|restart|history|undo, describe deploy, delete."""
from __future__ import annotations

import re

from tests.integration.kubectl import ctr, deployment, kube, row, table  # noqa: F401 (kube is a fixture)


def test_deployment_commands(kube):
    k = kube.kubectl
    path = kube.file("api.yaml", deployment("api", 2, ctr("api")))
    assert k.ok("apply", "-f", path) == "deployment.apps/api created\n"
    out = k.ok("rollout", "status", "deploy/api", "--timeout=30s", timeout=40)
    assert out.splitlines()[-1] == 'deployment "api" successfully rolled out', out

    # get: Kubernetes' own columns for deployments and replicasets, short names, get all
    out = k.ok("get", "deploy")
    assert table(out)[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    r = row(out, "api")
    assert (r["READY"], r["UP-TO-DATE"], r["AVAILABLE"]) == ("2/2", "2", "2"), out
    wide = k.ok("get", "deploy", "api", "-o", "wide")
    assert table(wide)[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert row(wide, "api")["SELECTOR"] == "app=api" and row(wide, "api")["IMAGES"] == "busybox"
    rs = k.ok("get", "rs", "-l", "app=api")
    assert table(rs)[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    (rs_name, desired, current, ready, _), = table(rs)[1]
    assert rs_name.startswith("api-") and (desired, current, ready) == ("2", "2", "2"), rs
    all_ = k.ok("get", "all")
    assert re.search(rf"^pod/{rs_name}-\S+\s+1/1\s+Running\s", all_, re.M), all_
    assert re.search(r"^deployment\.apps/api\s+2/2\s+2\s+2\s", all_, re.M), all_
    assert re.search(rf"^replicaset\.apps/{rs_name}\s+2\s+2\s+2\s", all_, re.M), all_

    # scale through /scale; rollout status follows generation → observedGeneration and the counters
    assert k.ok("scale", "deploy", "api", "--replicas=3") == "deployment.apps/api scaled\n"
    out = k.ok("rollout", "status", "deployment/api", "--timeout=30s", timeout=40)
    assert out.splitlines()[-1] == 'deployment "api" successfully rolled out'
    assert row(k.ok("get", "deploy", "api"), "api")["READY"] == "3/3"
    assert k.ok("get", "deploy", "api", "-o", "jsonpath={.spec.replicas} {.status.observedGeneration}") == "3 2"

    # describe deploy: replicas line, replica sets, events from the deployment controller
    out = k.ok("describe", "deploy", "api")
    assert re.search(r"^Replicas:\s+3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable$", out, re.M), out
    assert re.search(rf"^NewReplicaSet:\s+{rs_name} \(3/3 replicas created\)$", out, re.M), out
    assert re.search(rf"Normal\s+ScalingReplicaSet\s+.*deployment-controller\s+Scaled up replica set {rs_name}"
                     r" (to|from \d+ to) 3", out), out

    # rollout restart: a new template (restartedAt annotation), a new replica set, rolled out
    assert k.ok("rollout", "restart", "deploy/api") == "deployment.apps/api restarted\n"
    out = k.ok("rollout", "status", "deploy/api", "--timeout=40s", timeout=50)
    assert out.splitlines()[-1] == 'deployment "api" successfully rolled out'
    assert "kubectl.kubernetes.io/restartedAt" in k.ok(
        "get", "deploy", "api", "-o", "jsonpath={.spec.template.metadata.annotations}")
    hist = k.ok("rollout", "history", "deploy/api")
    assert re.search(r"^REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>$", hist, re.M), hist
    new_rs = [r[0] for r in table(k.ok("get", "rs", "-l", "app=api"))[1] if r[1] == "3"]
    assert len(new_rs) == 1 and new_rs[0] != rs_name

    # rollout undo: back to revision 1's template (the first replica set scales up again)
    assert k.ok("rollout", "undo", "deploy/api") == "deployment.apps/api rolled back\n"
    out = k.ok("rollout", "status", "deploy/api", "--timeout=40s", timeout=50)
    assert out.splitlines()[-1] == 'deployment "api" successfully rolled out'
    rows = {r[0]: r[1:4] for r in table(k.ok("get", "rs", "-l", "app=api"))[1]}
    assert rows[rs_name] == ["3", "3", "3"] and rows[new_rs[0]] == ["0", "0", "0"], rows
    assert "kubectl.kubernetes.io/restartedAt" not in k.ok(
        "get", "deploy", "api", "-o", "jsonpath={.spec.template.metadata.annotations}")

    # delete KIND NAME: waits for the deployment; its replica sets and pods are collected
    assert k.ok("delete", "deploy", "api") == 'deployment.apps "api" deleted\n'
    assert k.fails("get", "deploy", "api").strip() == 'Error from server (NotFound): deployments.apps "api" not found'
    kube.wait(lambda: "No resources found" in k("get", "rs,pods", "-l", "app=api").stderr, 20,
              "the replica sets and pods of api to be gone")


def test_scale_and_errors_on_deployments(kube):
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("zero.yaml", deployment("zero", 0)))
    assert k.ok("scale", "deployment/zero", "--replicas=1", "--current-replicas=0") == "deployment.apps/zero scaled\n"
    err = k.fails("scale", "deployment/zero", "--replicas=2", "--current-replicas=5")
    assert "Expected replicas to be 5, was 1" in err, err
    out = k.ok("get", "--raw", "/apis/apps/v1/namespaces/default/deployments/zero/scale")
    assert '"kind":"Scale"' in out.replace(" ", "") and '"replicas":1' in out.replace(" ", "")
    err = k.fails("scale", "deploy", "nope", "--replicas=1")
    assert err == 'error: no objects passed to scale deployments.apps "nope" not found\n', err
    err = k.fails("rollout", "status", "deploy/nope")
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in err, err
    k.ok("delete", "deploy", "zero", "--wait=false")
