"""kubectl debug with the real kubectl 1.32 (controller + a real agent): an ephemeral container
added to a running pod through the pods/ephemeralcontainers subresource, in the process
namespace of its --target, started once, with its status, logs and an interactive session."""
from __future__ import annotations

from tests.integration.kubectl import ctr, kube, pod  # noqa: F401 (kube is a fixture)


def _ephemeral(k, name: str, cname: str) -> dict:
    st = k.json("get", "pod", name).get("status") or {}
    return next((s for s in st.get("ephemeralContainerStatuses") or () if s["name"] == cname), {})


def test_kubectl_debug_target_and_interactive(kube):
    k = kube.kubectl
    try:
        k.ok("apply", "-f", kube.file("dbg.yaml", pod("dbg-target", ctr("app", "exec sleep 3600"))))
        kube.wait_running("dbg-target")
        out = k.ok("debug", "dbg-target", "--image=busybox", "--target=app", "-c", "look", "--profile=general",
                   "--", "sh", "-c", "ps -o pid,args")
        assert 'Targeting container "app"' in out or out == "", out
        kube.wait(lambda: "terminated" in _ephemeral(k, "dbg-target", "look").get("state", {}), 30,
                  "the ephemeral container to run and end")
        st = _ephemeral(k, "dbg-target", "look")
        assert st["state"]["terminated"]["exitCode"] == 0 and st["restartCount"] == 0 and st["ready"] is False
        procs = k.ok("logs", "dbg-target", "-c", "look")
        assert "sleep 3600" in procs, procs            # the target's processes are visible
        # interactive: kubectl waits for it to run and attaches
        p = k("debug", "dbg-target", "-i", "--image=busybox", "-c", "talk", "--profile=general", "--", "sh",
              input="echo hello-$((6*7))\nexit 0\n", timeout=60)
        assert "hello-42" in p.stdout, (p.stdout, p.stderr)
        # ephemeral containers are never restarted, changed or removed
        kube.wait(lambda: "terminated" in _ephemeral(k, "dbg-target", "talk").get("state", {}), 30, "talk ends")
        assert _ephemeral(k, "dbg-target", "look")["restartCount"] == 0
        spec = k.json("get", "pod", "dbg-target")["spec"]
        assert [c["name"] for c in spec["ephemeralContainers"]] == ["look", "talk"]
        assert spec["ephemeralContainers"][0]["targetContainerName"] == "app"
        err = k.fails("debug", "dbg-target", "--image=busybox", "--target=nope", "-c", "bad", "--profile=general",
                      "--", "true")
        assert 'spec.ephemeralContainers[2].targetContainerName: Not found: "nope"' in err, err
    finally:
        k("delete", "pod", "dbg-target", "--grace-period=0", "--wait=false")
        kube.wait(lambda: kube.gone("pod", "dbg-target"), 30, "the pod to go")


def test_kubectl_debug_copy_to(kube):
    """kubectl debug POD --copy-to: kubectl sends the copied Pod (with a debugging container added and
    the process namespace shared) as protobuf; skiff reads it and the copy runs beside the original."""
    k = kube.kubectl
    try:
        k.ok("apply", "-f", kube.file("orig.yaml", pod("dbg-orig", ctr("app", "exec sleep 3600"),
                                                       labels={"app": "dbg-orig"})))
        kube.wait_running("dbg-orig")
        k.ok("debug", "dbg-orig", "--image=busybox", "--copy-to=dbg-copy", "--container=dbg", "--share-processes",
             "--", "sh", "-c", "ps -o pid,args; sleep 3600")
        kube.wait_running("dbg-copy", 40)
        copy = k.json("get", "pod", "dbg-copy")
        assert copy["spec"]["shareProcessNamespace"] is True
        assert [c["name"] for c in copy["spec"]["containers"]] == ["app", "dbg"]
        assert copy["metadata"].get("labels", {}) == {}          # kubectl drops them (--same-node etc. aside)
        kube.wait(lambda: "sleep 3600" in k.ok("logs", "dbg-copy", "-c", "dbg"), 20, "the debugger's ps output")
        assert kube.pod_phase("dbg-orig") == "Running"
    finally:
        k("delete", "pod", "dbg-orig", "dbg-copy", "--grace-period=0", "--ignore-not-found", "--wait=false")
