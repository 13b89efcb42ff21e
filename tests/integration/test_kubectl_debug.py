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
