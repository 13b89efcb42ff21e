"""core/v1 ReplicationControllers with the real kubectl 1.32 (controller + a real agent): the docs'
nginx example shape (selector and labels defaulted from the template), get rc (kubectl's columns,
short name, get all), describe rc, scale (/scale), adoption of a matching orphan pod, a
PodDisruptionBudget counting the controller's scale, and deletion with its pods (garbage
collection) or without them (--cascade=orphan)."""
from __future__ import annotations

import re

from tests.integration.kubectl import ctr, kube, pod, row, table  # noqa: F401 (kube is a fixture)


def rc(name: str, replicas: int) -> dict:
    # as content/en/examples/controllers/replication.yaml: no selector, no labels of its own
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": {"replicas": replicas, "template": {"metadata": {"name": name, "labels": {"app": name}},
                                                        "spec": {"containers": [ctr("main")]}}}}


def _pods(k, app: str) -> list[str]:
    out = k.ok("get", "pods", "-l", f"app={app}", "-o",
               "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{end}"
               "{range .items[*]}{.metadata.name} {.status.phase}{'\\n'}{end}")
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def test_replication_controller(kube):
    k = kube.kubectl
    try:
        # an orphan that matches before the controller exists: it is adopted and counts
        k.ok("apply", "-f", kube.file("orphan.yaml", pod("rcweb-orphan", ctr("main"), labels={"app": "rcweb"})))
        assert k.ok("apply", "-f", kube.file("rc.yaml", rc("rcweb", 3))) == \
            "replicationcontroller/rcweb created\n"
        got = k.json("get", "rc", "rcweb")
        assert got["spec"]["selector"] == {"app": "rcweb"} and got["metadata"]["labels"] == {"app": "rcweb"}
        kube.wait(lambda: k.ok("get", "rc", "rcweb", "-o", "jsonpath={.status.readyReplicas}") == "3", 40,
                  "3 ready replicas")
        names = _pods(k, "rcweb")
        assert len(names) == 3 and "rcweb-orphan" in names, names
        owner = k.json("get", "pod", "rcweb-orphan")["metadata"]["ownerReferences"][0]
        assert (owner["apiVersion"], owner["kind"], owner["name"], owner["controller"]) == \
            ("v1", "ReplicationController", "rcweb", True)

        out = k.ok("get", "rc")
        assert table(out)[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        r = row(out, "rcweb")
        assert (r["DESIRED"], r["CURRENT"], r["READY"]) == ("3", "3", "3"), out
        wide = k.ok("get", "replicationcontrollers", "rcweb", "-o", "wide")
        assert table(wide)[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
        assert row(wide, "rcweb")["SELECTOR"] == "app=rcweb"
        assert re.search(r"^replicationcontroller/rcweb\s+3\s+3\s+3\s", k.ok("get", "all"), re.M)

        out = k.ok("describe", "rc", "rcweb")
        assert re.search(r"^Replicas:\s+3 current / 3 desired$", out, re.M), out
        assert re.search(r"^Pods Status:\s+3 Running / 0 Waiting / 0 Succeeded / 0 Failed$", out, re.M), out
        assert re.search(r"Normal\s+SuccessfulCreate\s+.*replication-controller\s+Created pod: rcweb-", out), out

        # skiffctl: the same columns and description
        from tests.integration.test_skiffctl import Ctl
        sk = Ctl(kube.kubeconfig, "", "")
        out = sk.ok("get", "rc")
        assert table(out)[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] and row(out, "rcweb")["READY"] == "3"
        out = sk.ok("describe", "rc", "rcweb")
        assert re.search(r"^Selector:\s+app=rcweb$", out, re.M), out
        assert re.search(r"^Pods Status:\s+3 Running / 0 Waiting / 0 Succeeded / 0 Failed$", out, re.M), out

        # a budget's expectedPods is the controller's scale
        k.ok("apply", "-f", kube.file("pdb.yaml", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "rcweb"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "rcweb"}}}}))
        kube.wait(lambda: k.ok("get", "pdb", "rcweb", "-o",
                               "jsonpath={.status.expectedPods}/{.status.disruptionsAllowed}") == "3/1", 20,
                  "the budget's status")

        # scale down through /scale: back to 1, the surplus deleted
        assert k.ok("scale", "rc", "rcweb", "--replicas=1") == "replicationcontroller/rcweb scaled\n"
        kube.wait(lambda: len(_pods(k, "rcweb")) == 1 and
                  k.ok("get", "rc", "rcweb", "-o", "jsonpath={.status.replicas}") == "1", 40, "one replica")
        assert k.json("get", "rc", "rcweb", "--subresource=scale")["status"]["selector"] == "app=rcweb"

        # a template whose labels the selector does not match is refused
        bad = rc("rcbad", 1)
        bad["spec"]["selector"] = {"app": "other"}
        err = k.fails("apply", "-f", kube.file("bad.yaml", bad))
        assert ('The ReplicationController "rcbad" is invalid: spec.template.metadata.labels: Invalid value: '
                'map[string]string{"app":"rcbad"}: `selector` does not match template `labels`') in err, err

        # delete with --cascade=orphan keeps the pod, without an owner; a plain delete takes them
        k.ok("delete", "rc", "rcweb", "--cascade=orphan")
        kube.wait(lambda: not k.json("get", "pod", _pods(k, "rcweb")[0])["metadata"].get("ownerReferences"), 20,
                  "the orphaned pod released")
        assert len(_pods(k, "rcweb")) == 1
        k.ok("apply", "-f", kube.file("rc2.yaml", rc("rcweb", 2)))
        kube.wait(lambda: k.ok("get", "rc", "rcweb", "-o", "jsonpath={.status.readyReplicas}") == "2", 40,
                  "the orphan adopted again and one more made")
        k.ok("delete", "rc", "rcweb")
        kube.wait(lambda: _pods(k, "rcweb") == [], 40, "the controller's pods deleted with it")
    finally:
        k("delete", "rc", "rcweb", "rcbad", "--ignore-not-found", "--wait=false")
        k("delete", "pdb", "rcweb", "--ignore-not-found")
        k("delete", "pods", "-l", "app=rcweb", "--grace-period=0", "--ignore-not-found", "--wait=false")
