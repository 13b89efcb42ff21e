"""The real kubectl 1.32 writing objects into skiff: apply (client-side and server-side), create,
replace, the default strict validation (OpenAPI v3 + fieldValidation), and the protobuf bodies of
`kubectl create namespace`. One cluster (controller + real agent) serves the module."""
from __future__ import annotations

import copy
import json
import re

from tests.integration.kubectl import ctr, deployment, kube, pod  # noqa: F401 (kube is a fixture)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _managers(obj: dict) -> dict[str, dict]:
    return {f"{m['manager']}/{m['operation']}": m for m in obj["metadata"].get("managedFields") or []}


def test_apply_client_side_create_configure_unchanged(kube):
    k = kube.kubectl
    # replicas 0: only the Deployment object itself is exercised
    d = deployment("cfg", 0, ctr("a", env=[{"name": "ONE", "value": "1"}, {"name": "TWO", "value": "2"}]),
                   labels={"app": "cfg", "tier": "one"})
    path = kube.file("cfg.yaml", d)
    assert k.ok("apply", "-f", path) == "deployment.apps/cfg created\n"
    live = k.json("get", "deploy", "cfg")
    applied = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert applied["metadata"]["labels"] == {"app": "cfg", "tier": "one"}
    # the same file again: nothing to change, and no PATCH is sent at all
    rv = live["metadata"]["resourceVersion"]
    p = k("apply", "-f", path, "-v=6")
    assert p.returncode == 0 and p.stdout == "deployment.apps/cfg unchanged\n", p
    assert "PATCH " not in p.stderr, p.stderr
    assert k.ok("get", "deploy", "cfg", "-o", "jsonpath={.metadata.resourceVersion}") == rv

    # another writer adds an env var to container `a` (not in the file: apply must keep it)
    k.ok("set", "env", "deploy/cfg", "-c", "a", "EXTRA=kept")

    d2 = copy.deepcopy(d)
    del d2["metadata"]["labels"]["tier"]                        # label removed → sent as null
    spec = d2["spec"]["template"]["spec"]
    spec["containers"][0]["env"][1]["value"] = "22"             # a list entry changed, by its key (name)
    spec["containers"].insert(0, ctr("first"))                  # a new container before `a`: $setElementOrder
    p = k("apply", "-f", kube.file("cfg.yaml", d2), "-v=6")
    assert p.returncode == 0 and p.stdout == "deployment.apps/cfg configured\n", p
    assert re.search(r"PATCH https://\S+/apis/apps/v1/namespaces/default/deployments/cfg\?fieldManager="
                     r"kubectl-client-side-apply&fieldValidation=Strict 200", p.stderr), p.stderr
    live = k.json("get", "deploy", "cfg")
    assert live["metadata"]["labels"] == {"app": "cfg"}
    cs = live["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["first", "a"]
    assert cs[1]["env"] == [{"name": "ONE", "value": "1"}, {"name": "TWO", "value": "22"},
                            {"name": "EXTRA", "value": "kept"}]
    assert cs[1]["command"] == ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    assert json.loads(live["metadata"]["annotations"][LAST_APPLIED])["spec"]["template"]["spec"]["containers"][0]["name"] == "first"

    assert k.ok("delete", "-f", path) == 'deployment.apps "cfg" deleted\n'


def test_apply_multi_document_in_file_order(kube):
    k = kube.kubectl
    path = kube.file("multi.yaml", deployment("multi", 0), pod("multi-pod", ctr("c")))
    assert k.ok("apply", "-f", path) == "deployment.apps/multi created\npod/multi-pod created\n"
    assert k.ok("apply", "-f", path) == "deployment.apps/multi unchanged\npod/multi-pod unchanged\n"
    assert k.ok("delete", "-f", path, "--wait=false") == 'deployment.apps "multi" deleted\npod "multi-pod" deleted\n'


def test_apply_server_side(kube):
    k = kube.kubectl
    p1 = pod("ssa", ctr("c"), labels={"app": "ssa"})
    path = kube.file("ssa.yaml", p1)
    p = k("apply", "--server-side", "-f", path, "-v=6")
    assert p.returncode == 0 and p.stdout == "pod/ssa serverside-applied\n", p
    assert re.search(r"PATCH https://\S+/api/v1/namespaces/default/pods/ssa\?fieldManager=kubectl&"
                     r"fieldValidation=Strict&force=false 201", p.stderr), p.stderr
    live = k.json("get", "pod", "ssa", "--show-managed-fields")
    m = _managers(live)["kubectl/Apply"]
    assert m["fieldsType"] == "FieldsV1" and m["apiVersion"] == "v1"
    assert m["fieldsV1"]["f:metadata"]["f:labels"] == {"f:app": {}}
    assert 'k:{"name":"c"}' in m["fieldsV1"]["f:spec"]["f:containers"]
    # kubectl hides managedFields unless asked
    assert "managedFields" not in k.json("get", "pod", "ssa")["metadata"]

    # a change: 200, the label follows the file; a label this manager no longer applies is removed
    p2 = copy.deepcopy(p1)
    p2["metadata"]["labels"] = {"app": "ssa", "v": "2"}
    assert k.ok("apply", "--server-side", "-f", kube.file("ssa.yaml", p2)) == "pod/ssa serverside-applied\n"
    assert k.json("get", "pod", "ssa")["metadata"]["labels"] == {"app": "ssa", "v": "2"}
    p2["metadata"]["labels"] = {"app": "ssa"}
    assert k.ok("apply", "--server-side", "-f", kube.file("ssa.yaml", p2)) == "pod/ssa serverside-applied\n"
    assert k.json("get", "pod", "ssa")["metadata"]["labels"] == {"app": "ssa"}

    # a field another manager owns, with another value: a conflict, then --force-conflicts takes it
    assert k.ok("label", "pod", "ssa", "app=other", "--overwrite") == "pod/ssa labeled\n"
    err = k.fails("apply", "--server-side", "-f", path)
    assert err.startswith('error: Apply failed with 1 conflict: conflict with "kubectl-label" using v1: '
                          '.metadata.labels.app'), err
    assert "--force-conflicts" in err
    assert k.ok("apply", "--server-side", "--force-conflicts", "-f", path) == "pod/ssa serverside-applied\n"
    assert k.json("get", "pod", "ssa")["metadata"]["labels"] == {"app": "ssa"}
    k.ok("delete", "pod", "ssa", "--wait=false")


def test_apply_server_side_after_client_side(kube):
    """The second, metadata-only apply (fieldManager=kubectl-last-applied) must leave spec alone."""
    k = kube.kubectl
    d = deployment("mig", 0, ctr("a", env=[{"name": "ONE", "value": "1"}]))
    path = kube.file("mig.yaml", d)
    assert k.ok("apply", "-f", path) == "deployment.apps/mig created\n"
    d["metadata"]["labels"]["extra"] = "yes"
    p = k("apply", "--server-side", "-f", kube.file("mig.yaml", d), "-v=6")
    assert p.returncode == 0 and p.stdout == "deployment.apps/mig serverside-applied\n", p
    assert "fieldManager=kubectl-last-applied" in p.stderr, p.stderr
    live = k.json("get", "deploy", "mig")
    assert live["metadata"]["labels"] == {"app": "mig", "extra": "yes"}
    c = live["spec"]["template"]["spec"]["containers"]
    assert [x["name"] for x in c] == ["a"] and c[0]["env"] == [{"name": "ONE", "value": "1"}]
    assert live["spec"]["replicas"] == 0 and live["spec"]["selector"] == {"matchLabels": {"app": "mig"}}
    # the annotation now holds the server-side applied configuration
    assert json.loads(live["metadata"]["annotations"][LAST_APPLIED])["metadata"]["labels"]["extra"] == "yes"
    # and client-side apply takes over again: the first rewrites the annotation in kubectl's own
    # form (it holds "annotations":{} and the server-side one does not), the next has nothing to do
    assert k.ok("apply", "-f", path) in ("deployment.apps/mig configured\n", "deployment.apps/mig unchanged\n")
    assert k.ok("apply", "-f", path) == "deployment.apps/mig unchanged\n"
    k.ok("delete", "-f", path)


def test_create_and_replace(kube):
    k = kube.kubectl
    d = deployment("made", 0)
    path = kube.file("made.yaml", d)
    assert k.ok("create", "-f", path) == "deployment.apps/made created\n"
    assert LAST_APPLIED not in (k.json("get", "deploy", "made")["metadata"].get("annotations") or {})
    err = k.fails("create", "-f", path)
    assert err.strip() == (f'Error from server (AlreadyExists): error when creating "{path}": '
                           'deployments.apps "made" already exists'), err
    d["metadata"]["labels"]["v"] = "2"
    assert k.ok("replace", "-f", kube.file("made.yaml", d)) == "deployment.apps/made replaced\n"
    assert k.json("get", "deploy", "made")["metadata"]["labels"] == {"app": "made", "v": "2"}
    # apply on an object made by create: kubectl warns about the missing annotation, then patches
    d["metadata"]["labels"]["v"] = "3"
    p = k("apply", "-f", kube.file("made.yaml", d))
    assert p.returncode == 0 and p.stdout == "deployment.apps/made configured\n", p
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in p.stderr
    assert k.json("get", "deploy", "made")["metadata"]["labels"]["v"] == "3"
    assert k.ok("delete", "-f", path) == 'deployment.apps "made" deleted\n'
    err = k.fails("replace", "-f", path)
    assert err.strip() == f'Error from server (NotFound): error when replacing "{path}": deployments.apps "made" not found', err

    # a pod: replace what `get -o yaml` printed (a scheduled pod's spec can only change its images)
    assert k.ok("create", "-f", kube.file("madepod.yaml", pod("madepod", ctr("c")))) == "pod/madepod created\n"
    kube.wait_running("madepod")
    live = k.ok("get", "pod", "madepod", "-o", "yaml").replace("image: busybox\n", "image: busybox:latest\n", 1)
    assert k.ok("replace", "-f", "-", input=live) == "pod/madepod replaced\n"
    assert k.ok("get", "pod", "madepod", "-o", "jsonpath={.spec.containers[0].image}") == "busybox:latest"
    stale = live.replace("image: busybox:latest\n", "image: busybox\n", 1)   # the old resourceVersion
    err = k.fails("replace", "-f", "-", input=stale)
    assert err.startswith('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
                          'on pods "madepod": the object has been modified; please apply your changes to the latest '
                          'version and try again'), err
    k.ok("delete", "pod", "madepod", "--wait=false")


def test_default_strict_validation_rejects_unknown_fields(kube):
    k = kube.kubectl
    bad = pod("strict", ctr("c"))
    bad["spec"]["foo"] = 1
    bad["spec"]["containers"][0]["bar"] = True
    text = json.dumps(bad)
    # kubectl's default --validate=strict: the server checks (fieldValidation=Strict) and answers 400
    p = k("apply", "-f", "-", "-v=6", input=text)
    assert p.returncode != 0
    assert "fieldValidation=Strict" in p.stderr and "/openapi/v3" in p.stderr
    assert ('Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be '
            'handled as a Pod: strict decoding error: unknown field ') in p.stderr, p.stderr
    assert 'unknown field "spec.containers[0].bar"' in p.stderr and 'unknown field "spec.foo"' in p.stderr
    err = k.fails("create", "-f", "-", input=text)
    assert "strict decoding error:" in err and 'unknown field "spec.foo"' in err, err
    assert 'pods "strict" not found' in k.fails("get", "pod", "strict")
    # --validate=warn: created, the server's warnings printed; --validate=false: dropped silently
    p = k("create", "--validate=warn", "-f", "-", input=text)
    assert p.returncode == 0 and p.stdout == "pod/strict created\n", p
    assert 'Warning: unknown field "spec.foo"' in p.stderr, p.stderr
    assert "foo" not in k.json("get", "pod", "strict")["spec"]
    k.ok("delete", "pod", "strict", "--wait=false")
    bad["metadata"]["name"] = "lax"
    p = k("create", "--validate=false", "-f", "-", input=json.dumps(bad))
    assert p.returncode == 0 and p.stdout == "pod/lax created\n" and "Warning" not in p.stderr, p
    k.ok("delete", "pod", "lax", "--wait=false")


def test_explain(kube):
    out = kube.kubectl.ok("explain", "pod.spec.containers.image")
    assert re.search(r"^KIND:\s+Pod$", out, re.M) and re.search(r"^FIELD:\s+image\s+<string>$", out, re.M), out


def test_protobuf_bodies_read_or_refused_clearly(kube):
    """kubectl 1.32 sends protobuf for its typed commands: skiff reads Namespace, ConfigMap,
    Secret and the self reviews (`auth can-i`, `auth whoami`); any other kind gets a 415 that
    says what to run instead."""
    k = kube.kubectl
    assert k.ok("create", "namespace", "pbns") == "namespace/pbns created\n"
    assert k.ok("get", "ns", "pbns", "-o", "jsonpath={.status.phase}") == "Active"
    assert k.json("get", "ns", "pbns")["metadata"]["labels"] == {"kubernetes.io/metadata.name": "pbns"}
    assert k.ok("create", "configmap", "pbcm", "-n", "pbns", "--from-literal=a=b", "--from-literal=c=d") == \
        "configmap/pbcm created\n"
    assert k.json("get", "cm", "pbcm", "-n", "pbns")["data"] == {"a": "b", "c": "d"}
    assert k.ok("create", "secret", "generic", "pbs", "-n", "pbns", "--from-literal=pw=hunter2") == \
        "secret/pbs created\n"
    s = k.json("get", "secret", "pbs", "-n", "pbns")
    assert s["type"] == "Opaque" and s["data"] == {"pw": "aHVudGVyMg=="}
    assert k.ok("create", "serviceaccount", "pbsa", "-n", "pbns") == "serviceaccount/pbsa created\n"
    assert k.json("get", "sa", "pbsa", "-n", "pbns")["metadata"]["namespace"] == "pbns"
    assert k.ok("auth", "can-i", "create", "pods") == "yes\n"
    assert k("auth", "can-i", "create", "widgets").stdout == "no\n"
    assert "system:admin" in k.ok("auth", "whoami")
    # the workloads kubectl create writes
    assert k.ok("create", "deployment", "pbd", "--image=busybox", "--replicas=0", "--port=8080", "-n", "pbns",
                "--", "sleep", "3600") == "deployment.apps/pbd created\n"
    d = k.json("get", "deploy", "pbd", "-n", "pbns")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (d["spec"]["replicas"], c["image"], c["command"], c["ports"]) == \
        (0, "busybox", ["sleep", "3600"], [{"containerPort": 8080, "protocol": "TCP"}])
    assert "creationTimestamp" not in d["spec"]["template"]["metadata"]       # Go's zero time: unset
    assert k.ok("create", "cronjob", "pbc", "--image=busybox", "--schedule=*/5 * * * *", "-n", "pbns",
                "--", "date") == "cronjob.batch/pbc created\n"
    assert k.ok("create", "job", "pbj", "--from=cronjob/pbc", "-n", "pbns") == "job.batch/pbj created\n"
    j = k.json("get", "job", "pbj", "-n", "pbns")
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    # the pod template's volumes are read
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "vols"},
          "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {"spec": {
              "restartPolicy": "Never", "volumes": [{"name": "v", "emptyDir": {}}],
              "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}}}}}}
    k.ok("apply", "-n", "pbns", "-f", kube.file("vols.yaml", cj))
    assert k.ok("create", "job", "pbv", "--from=cronjob/vols", "-n", "pbns") == "job.batch/pbv created\n"
    assert k.json("get", "job", "pbv", "-n", "pbns")["spec"]["template"]["spec"]["volumes"] == \
        [{"name": "v", "emptyDir": {}}]
    # a field skiff does not read from protobuf (a container's resizePolicy) is refused, never
    # dropped, with what to do instead
    c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    c["resizePolicy"] = [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    cj["metadata"]["name"] = "resize"
    k.ok("apply", "-n", "pbns", "-f", kube.file("resize.yaml", cj))
    err = k.fails("create", "job", "pbr", "--from=cronjob/resize", "-n", "pbns")
    assert "the body of the request was in protobuf" in err, err
    assert "(got Job: spec.template.spec.containers: field 23 is not one skiff reads from protobuf)" in err, err
    assert "--dry-run=client -o yaml" in err and "kubectl apply -f -" in err, err
    k.ok("delete", "ns", "pbns", "--wait=false")


def test_server_dry_run_and_diff_change_nothing(kube):
    """`--dry-run=server` (apply, server-side apply, delete) and `kubectl diff` go through every
    server check and persist nothing."""
    k = kube.kubectl
    d = deployment("dry", 0, ctr("a"))
    path = kube.file("dry.yaml", d)
    assert k.ok("apply", "-f", path, "--dry-run=server") == "deployment.apps/dry created (server dry run)\n"
    assert k("get", "deploy", "dry").returncode == 1                        # nothing was made
    assert k.ok("apply", "-f", path) == "deployment.apps/dry created\n"
    rv = k.ok("get", "deploy", "dry", "-o", "jsonpath={.metadata.resourceVersion}")
    d["metadata"]["labels"]["tier"] = "new"
    path = kube.file("dry.yaml", d)
    p = k("diff", "-f", path)
    assert p.returncode == 1 and "+    tier: new" in p.stdout, p            # the change, as a diff
    assert k.ok("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", path) == \
        "deployment.apps/dry serverside-applied (server dry run)\n"
    assert k.ok("delete", "deploy", "dry", "--dry-run=server") == 'deployment.apps "dry" deleted (server dry run)\n'
    live = k.json("get", "deploy", "dry")
    assert live["metadata"]["resourceVersion"] == rv and "tier" not in live["metadata"]["labels"]
    assert not live["metadata"].get("deletionTimestamp")
    k.ok("delete", "-f", path)
