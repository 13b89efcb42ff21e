"""PriorityClasses and pod priority with the real kubectl 1.32 (controller + a real agent): the
system classes, kubectl create priorityclass (protobuf), get pc columns, the Priority admission
(priority and preemptionPolicy from the class, the global default, unknown classes refused),
the rules on system classes and on a second default."""
from __future__ import annotations

from tests.integration.kubectl import ctr, kube, pod, row, table  # noqa: F401 (kube is a fixture)


def test_priority_classes(kube):
    k = kube.kubectl
    try:
        out = k.ok("get", "pc")
        assert table(out)[0] == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
        r = row(out, "system-node-critical")
        assert (r["VALUE"], r["GLOBAL-DEFAULT"], r["PREEMPTIONPOLICY"]) == ("2000001000", "false",
                                                                           "PreemptLowerPriority")
        assert row(out, "system-cluster-critical")["VALUE"] == "2000000000"
        assert k.ok("create", "priorityclass", "prio-high", "--value=1000", "--description=front end",
                    "--preemption-policy=Never") == "priorityclass.scheduling.k8s.io/prio-high created\n"
        assert k.json("get", "pc", "prio-high")["preemptionPolicy"] == "Never"

        k.ok("apply", "-f", kube.file("p.yaml", pod("prio-a", ctr("main"), priorityClassName="prio-high"),
                                      pod("prio-b", ctr("main"))))
        a, b = k.json("get", "pod", "prio-a")["spec"], k.json("get", "pod", "prio-b")["spec"]
        assert (a["priority"], a["preemptionPolicy"]) == (1000, "Never")
        assert (b.get("priority"), b["preemptionPolicy"], b.get("priorityClassName")) == (0, "PreemptLowerPriority",
                                                                                          None)
        kube.wait_running("prio-a")
        assert "Priority:             1000" in k.ok("describe", "pod", "prio-a")
        from tests.integration.test_skiffctl import Ctl
        out = Ctl(kube.kubeconfig, "", "").ok("describe", "pod", "prio-a")
        assert "Priority:             1000\nPriority Class Name:  prio-high\n" in out, out
        assert table(Ctl(kube.kubeconfig, "", "").ok("get", "pc"))[0] == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE",
                                                                         "PREEMPTIONPOLICY"]

        err = k.fails("apply", "-f", kube.file("bad.yaml", pod("prio-c", ctr("main"), priorityClassName="nope")))
        assert 'pods "prio-c" is forbidden: no PriorityClass with name nope was found' in err, err
        err = k.fails("apply", "-f", kube.file("bad2.yaml", pod("prio-d", ctr("main"), priorityClassName="prio-high",
                                                                priority=7)))
        assert ("the integer value of priority (7) must not be provided in pod spec; priority admission controller "
                "computed 1000 from the given PriorityClass name") in err, err

        # the global default: pods without a class get it; a second one is refused
        k.ok("create", "priorityclass", "prio-default", "--value=10", "--global-default")
        k.ok("apply", "-f", kube.file("p2.yaml", pod("prio-e", ctr("main"))))
        e = k.json("get", "pod", "prio-e")["spec"]
        assert (e["priorityClassName"], e["priority"]) == ("prio-default", 10)
        err = k.fails("create", "priorityclass", "prio-default2", "--value=11", "--global-default")
        assert ("PriorityClass prio-default is already marked as default. Only one default can exist") in err, err

        err = k.fails("delete", "pc", "system-node-critical")
        assert ('priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority '
                'class and cannot be deleted') in err, err
        err = k.fails("create", "priorityclass", "system-mine", "--value=5")
        assert "priority class names with 'system-' prefix are reserved for system use only" in err, err
        err = k.fails("create", "priorityclass", "prio-huge", "--value=2000000000")
        assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in err, err
        err = k.fails("patch", "pc", "prio-high", "-p", '{"value": 5}')
        assert "value: Forbidden: may not be changed in an update." in err, err
    finally:
        k("delete", "pod", "prio-a", "prio-b", "prio-e", "--grace-period=0", "--ignore-not-found", "--wait=false")
        k("delete", "pc", "prio-high", "prio-default", "--ignore-not-found")


def test_preemption_on_a_real_node(kube):
    """A pod of higher priority that does not fit preempts a lower-priority pod on the real node:
    the victim is stopped by the agent, the preemptor is nominated, then runs."""
    k = kube.kubectl
    alloc = k.json("get", "node", kube.node)["status"]["allocatable"]["cpu"]
    milli = int(alloc[:-1]) if alloc.endswith("m") else int(float(alloc) * 1000)
    used = sum(int(c["resources"].get("requests", {}).get("cpu", "0m").rstrip("m") or 0)
               for p in k.json("get", "pods", "-A")["items"] if p["spec"].get("nodeName") == kube.node
               and p["status"].get("phase") in ("Pending", "Running") for c in p["spec"]["containers"]
               if c.get("resources", {}).get("requests", {}).get("cpu", "").endswith("m"))
    half = (milli - used) // 2 + 10           # two of them never fit together
    try:
        for name, value in (("pre-low", 10), ("pre-high", 1000)):
            k.ok("create", "priorityclass", name, f"--value={value}")
        victim = pod("pre-victim", ctr("main", resources={"requests": {"cpu": f"{half}m"}}),
                     priorityClassName="pre-low", terminationGracePeriodSeconds=1)
        k.ok("apply", "-f", kube.file("victim.yaml", victim))
        kube.wait_running("pre-victim")
        k.ok("apply", "-f", kube.file("vip.yaml", pod("pre-vip", ctr("main", resources={"requests": {"cpu": f"{half}m"}}),
                                                      priorityClassName="pre-high")))
        kube.wait(lambda: kube.gone("pod", "pre-victim"), 30, "the victim to be preempted")
        kube.wait_running("pre-vip", 30)
        ev = k.ok("get", "events", "--field-selector", "reason=Preempted,involvedObject.name=pre-victim",
                  "-o", "jsonpath={.items[*].message}")
        uid = k.json("get", "pod", "pre-vip")["metadata"]["uid"]
        assert ev == f"Preempted by pod {uid} on node {kube.node}", ev
    finally:
        k("delete", "pod", "pre-victim", "pre-vip", "--grace-period=0", "--ignore-not-found", "--wait=false")
        k("delete", "pc", "pre-low", "pre-high", "--ignore-not-found")
