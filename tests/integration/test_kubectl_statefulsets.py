"""The real kubectl 1.32 driving a StatefulSet on skiff (one controller, a real agent running busybox
containers): apply with a headless Service, rollout status (kubectl's StatefulSet status viewer),
get sts (Kubernetes' columns, -o wide), pods web-0 and web-1 made in order with their identity,
their FQDN in /etc/hosts and in the cluster DNS, describe sts, scale up and down (highest ordinal
first), rollout restart|history|undo through ControllerRevisions, skiffctl's same views, delete
--cascade=orphan (pods kept), then delete of the pods."""
from __future__ import annotations

import re

from tests.integration.kubectl import IDLE, kube, row, table  # noqa: F401 (kube is a fixture)

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
           "spec": {"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"name": "web", "port": 80}]}}


def statefulset(replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"serviceName": "nginx", "replicas": replicas, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "main", "image": "busybox", "command": ["sh", "-c", IDLE],
                                      "ports": [{"name": "web", "containerPort": 80}]}]}}}}


def live_pods(k) -> list[str]:
    out = k.ok("get", "pods", "-l", "app=nginx", "-o",
               "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{'\\n'}{end}")
    return sorted(line.split()[0] for line in out.splitlines() if len(line.split()) == 1)


def uids(k) -> dict[str, str]:
    out = k.ok("get", "pods", "-l", "app=nginx", "-o",
               "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid}{'\\n'}{end}")
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_statefulset_commands(kube):
    k = kube.kubectl
    path = kube.file("web.yaml", SERVICE, statefulset())
    out = k.ok("apply", "-f", path)
    assert out == "service/nginx created\nstatefulset.apps/web created\n", out
    out = k.ok("rollout", "status", "sts/web", "--timeout=90s", timeout=100)
    assert out.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated...", out
    assert k.ok("apply", "-f", path) == "service/nginx unchanged\nstatefulset.apps/web unchanged\n"
    try:
        _exercise(kube, k)
    finally:
        k("delete", "sts", "web", "--ignore-not-found", "--wait=false")
        k("delete", "pods", "-l", "app=nginx", "--ignore-not-found", "--wait=false")
        k("delete", "svc", "nginx", "--ignore-not-found")
        k("delete", "controllerrevisions", "-l", "app=nginx", "--ignore-not-found")


def _exercise(kube, k) -> None:
    # get sts: Kubernetes' columns
    out = k.ok("get", "sts")
    assert table(out)[0] == ["NAME", "READY", "AGE"], out
    assert row(out, "web")["READY"] == "2/2", out
    wide = k.ok("get", "statefulset", "web", "-o", "wide")
    assert table(wide)[0] == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert [row(wide, "web")[c] for c in ("CONTAINERS", "IMAGES")] == ["main", "busybox"]
    assert re.search(r"^statefulset\.apps/web\s+2/2\s", k.ok("get", "all"), re.M)
    assert live_pods(k) == ["web-0", "web-1"]
    created = k.ok("get", "pods", "web-0", "web-1", "-o",
                   "jsonpath={.items[0].metadata.creationTimestamp} {.items[1].metadata.creationTimestamp}").split()
    assert created[0] <= created[1]
    pod = k.json("get", "pod", "web-1")
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "nginx"
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1" and labels["apps.kubernetes.io/pod-index"] == "1"
    rev1 = labels["controller-revision-hash"]
    sts = k.json("get", "sts", "web")
    assert sts["status"]["currentRevision"] == rev1 == sts["status"]["updateRevision"]
    assert sts["status"]["replicas"] == 2 and sts["status"]["readyReplicas"] == 2

    # stable network identity: the FQDN in /etc/hosts, the endpoint's hostname, the cluster DNS
    hosts = k.ok("exec", "web-0", "--", "cat", "/etc/hosts")
    ip0 = k.ok("get", "pod", "web-0", "-o", "jsonpath={.status.podIP}")
    assert f"{ip0}\tweb-0.nginx.default.svc.cluster.local\tweb-0" in hosts.splitlines(), hosts
    ep = kube.wait(lambda: (lambda e: e if len((e.get("subsets") or [{}])[0].get("addresses") or []) == 2 else None)(
        k.json("get", "endpoints", "nginx")), 20, "the endpoints of both pods")
    assert sorted(a.get("hostname") for a in ep["subsets"][0]["addresses"]) == ["web-0", "web-1"]
    resolv = k.ok("exec", "web-0", "--", "cat", "/etc/resolv.conf")
    if "svc.cluster.local" in resolv:       # the agent's cluster DNS serves this node's pods
        ip1 = k.ok("get", "pod", "web-1", "-o", "jsonpath={.status.podIP}")
        ans = kube.wait(lambda: (lambda p: p.stdout if p.returncode == 0 and ip1 in p.stdout else None)(
            k("exec", "web-0", "--", "nslookup", "web-1.nginx.default.svc.cluster.local")), 20, "DNS answer")
        assert ip1 in ans

    # describe sts: kubectl's layout and the controller's events
    out = k.ok("describe", "sts", "web")
    for line in (r"Name:\s+web", r"Namespace:\s+default", r"Selector:\s+app=nginx",
                 r"Replicas:\s+2 desired \| 2 total", r"Update Strategy:\s+RollingUpdate", r"  Partition:\s+0",
                 r"Pods Status:\s+2 Running / 0 Waiting / 0 Succeeded / 0 Failed", r"Volume Claims:\s+<none>"):
        assert re.search(f"^{line}$", out, re.M), (line, out)
    assert re.search(r"Normal\s+SuccessfulCreate\s+.*statefulset-controller\s+create Pod web-1 in StatefulSet "
                     r"web successful", out), out

    # scale: up through web-2, down from the highest ordinal
    assert k.ok("scale", "sts", "web", "--replicas=3") == "statefulset.apps/web scaled\n"
    out = k.ok("rollout", "status", "sts/web", "--timeout=90s", timeout=100)
    assert out.splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated...", out
    assert live_pods(k) == ["web-0", "web-1", "web-2"]
    assert k.ok("scale", "sts", "web", "--replicas=2") == "statefulset.apps/web scaled\n"
    kube.wait(lambda: live_pods(k) == ["web-0", "web-1"], 30, "web-2 to go")

    # rollout restart: every pod replaced (web-1 first), a second revision; history; undo
    before = uids(k)
    assert k.ok("rollout", "restart", "sts/web") == "statefulset.apps/web restarted\n"
    out = k.ok("rollout", "status", "sts/web", "--timeout=120s", timeout=130)
    assert out.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated...", out
    after = kube.wait(lambda: (lambda u: u if len(u) == 2 and not set(u.values()) & set(before.values()) else None)(
        uids(k)), 60, "both pods replaced")
    assert sorted(after) == ["web-0", "web-1"]
    rev2 = k.ok("get", "pod", "web-0", "-o", "jsonpath={.metadata.labels.controller-revision-hash}")
    assert rev2 != rev1
    hist = k.ok("rollout", "history", "sts/web")
    assert re.search(r"^REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>$", hist, re.M), hist
    revs = k.ok("get", "controllerrevisions", "-l", "app=nginx")
    assert sorted((r[0], r[1], r[2]) for r in table(revs)[1]) == sorted([(rev1, "statefulset.apps/web", "1"),
                                                                         (rev2, "statefulset.apps/web", "2")]), revs
    assert "kubectl.kubernetes.io/restartedAt" in k.ok("rollout", "history", "sts/web", "--revision=2")
    assert k.ok("rollout", "undo", "sts/web") == "statefulset.apps/web rolled back\n"
    out = k.ok("rollout", "status", "sts/web", "--timeout=120s", timeout=130)
    assert out.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated...", out
    kube.wait(lambda: k.ok("get", "sts", "web", "-o", "jsonpath={.status.currentRevision}") == rev1, 60,
              "revision 1 current again")
    assert re.search(r"^2\s+<none>\n3\s+<none>$", k.ok("rollout", "history", "sts/web"), re.M)

    # skiffctl shows the same
    ctl = kube.host.ctl
    head, rows = table(ctl("get", "sts").stdout)
    assert head == ["NAME", "READY", "AGE"] and rows[0][:2] == ["web", "2/2"]
    assert ctl("rollout", "status", "sts/web").stdout == \
        "partitioned roll out complete: 2 new pods have been updated...\n"
    assert re.search(r"^Replicas:\s+2 desired \| 2 total$", ctl("describe", "sts", "web").stdout, re.M)

    # delete --cascade=orphan: the set goes, its pods stay (without an owner)
    pods = uids(k)
    assert k.ok("delete", "sts", "web", "--cascade=orphan") == 'statefulset.apps "web" deleted\n'
    kube.wait(lambda: kube.gone("sts", "web"), 20, "the set to go")
    kube.wait(lambda: not k.ok("get", "pods", "-l", "app=nginx", "-o",
                               "jsonpath={.items[*].metadata.ownerReferences}").strip(), 20, "the pods orphaned")
    assert uids(k) == pods
