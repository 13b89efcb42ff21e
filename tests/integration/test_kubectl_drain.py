"""kubectl drain through the pods/eviction subresource and PodDisruptionBudgets, with the real
kubectl 1.32 (controller + a real agent): a budget that allows it lets the pod go; one that does
not makes kubectl report the refusal and retry until its timeout."""
from __future__ import annotations

from tests.integration.kubectl import ctr, kube, pod  # noqa: F401 (kube is a fixture)


def test_drain_evicts_within_the_budget(kube):
    k = kube.kubectl
    node = kube.node
    try:
        k.ok("apply", "-f", kube.file("p.yaml", pod("keep", ctr("main"), labels={"app": "keep"}),
                                      pod("go", ctr("main"), labels={"app": "go"})))
        kube.wait_running("keep")
        kube.wait_running("go")
        # one budget from kubectl create (a protobuf body), one from a manifest
        assert k.ok("create", "pdb", "keep", "--selector=app=keep", "--min-available=1") == \
            "poddisruptionbudget.policy/keep created\n"
        k.ok("apply", "-f", kube.file("go-pdb.yaml", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "go"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "go"}}}}))
        kube.wait(lambda: k.ok("get", "pdb", "go", "-o", "jsonpath={.status.disruptionsAllowed}") == "1", 20,
                  "the budgets' status")
        out = k.ok("get", "pdb")
        assert "MIN AVAILABLE" in out and "ALLOWED DISRUPTIONS" in out
        p = k("drain", node, "--force", "--ignore-daemonsets", "--timeout=8s", "--grace-period=0", timeout=60)
        assert p.returncode != 0                                    # keep's budget holds it
        assert "Cannot evict pod as it would violate the pod's disruption budget." in p.stderr, p.stderr
        assert 'evicting pod default/go' in p.stdout + p.stderr
        kube.wait(lambda: kube.gone("pod", "go"), 30, "the evicted pod to go")
        assert kube.pod_phase("keep") == "Running"
        assert k.json("get", "node", node)["spec"].get("unschedulable") is True
    finally:
        k("uncordon", node)
        k("delete", "pdb", "keep", "go", "--ignore-not-found")
        k("delete", "pod", "keep", "go", "--grace-period=0", "--ignore-not-found", "--wait=false")
