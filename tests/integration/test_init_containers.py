"""Init containers and sidecars with a real controller and a real agent on one host (real
containers): order, restarts, failure under restartPolicy Never, the status the kubelet
reports, and sidecars (restartPolicy Always) that start first and stop last."""
from __future__ import annotations

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import wait_for
from tests.integration.onehost import ctr, host, pod  # noqa: F401 - host is a fixture

pytestmark = [needs_root, pytest.mark.timeout(180)]

WORK = {"name": "work", "emptyDir": {}}
MOUNT = [{"name": "work", "mountPath": "/w"}]


def statuses(p: dict, key: str) -> dict[str, dict]:
    return {s["name"]: s for s in p.get("status", {}).get(key) or []}


def condition(p: dict, ctype: str) -> dict:
    return next((c for c in p["status"].get("conditions", []) if c["type"] == ctype), {})


def test_init_containers_run_in_order_and_retry_before_the_main_one(host):
    # "first" fails once (a crash the agent restarts), then succeeds; "second" waits for a
    # file the test writes, so the pod is seen initializing; "main" reads what they wrote
    first = ("if [ -f /w/tried ]; then echo one >> /w/log; exit 0; fi; touch /w/tried; "
             "echo first-fails; exit 1")
    second = "echo two >> /w/log; while [ ! -f /w/go ]; do sleep 0.1; done"
    p = pod("initpod", ctr("main", "cat /w/log; echo main-ran; exec sleep 3600", volumeMounts=MOUNT),
            initContainers=[ctr("first", first, volumeMounts=MOUNT), ctr("second", second, volumeMounts=MOUNT)],
            volumes=[WORK])
    host.apply(p)

    def initializing():
        q = host.pod("initpod")
        st = statuses(q, "initContainerStatuses")
        return q if "running" in st.get("second", {}).get("state", {}) else None
    q = wait_for(initializing, 40, what="the second init container running")
    assert q["status"]["phase"] == "Pending"
    assert condition(q, "Initialized")["status"] == "False"
    assert condition(q, "Initialized")["message"] == "containers with incomplete status: [second]"
    init = statuses(q, "initContainerStatuses")
    assert init["first"]["restartCount"] == 1 and init["first"]["ready"] is True
    assert init["first"]["state"]["terminated"]["reason"] == "Completed"
    assert init["first"]["lastState"]["terminated"]["exitCode"] == 1
    assert statuses(q, "containerStatuses")["main"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    row = host.ctl("get", "pod", "initpod").stdout.splitlines()[1].split()
    assert row[1:3] == ["0/1", "Init:1/2"]
    assert "first-fails" in host.ctl("logs", "initpod", "-c", "first", "--previous").stdout

    host.ctl("exec", "initpod", "-c", "second", "--", "touch", "/w/go")
    q = host.wait_phase("initpod", "Running", 40)
    assert condition(q, "Initialized")["status"] == "True"
    wait_for(lambda: "main-ran" in host.ctl("logs", "initpod").stdout, 20, what="main's output")
    assert host.ctl("logs", "initpod").stdout.startswith("one\ntwo\n")
    evs = [e for e in host.get("events")["items"] if e["involvedObject"]["name"] == "initpod"]
    assert any(e["reason"] == "Started" and e["involvedObject"].get("fieldPath") == "spec.initContainers{first}"
               for e in evs)
    host.ctl("delete", "pod", "initpod", "--grace-period", "0")


def test_failed_init_container_fails_a_never_restarting_pod(host):
    host.apply(pod("initfail", ctr("main", "echo should-not-run"),
                   initContainers=[ctr("setup", "echo broken; exit 3")], restartPolicy="Never"))
    q = host.wait_phase("initfail", "Failed", 40)
    init = statuses(q, "initContainerStatuses")["setup"]
    assert init["state"]["terminated"]["exitCode"] == 3 and init["restartCount"] == 0
    assert condition(q, "Initialized")["status"] == "False"
    assert statuses(q, "containerStatuses")["main"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert host.ctl("get", "pod", "initfail").stdout.splitlines()[1].split()[2] == "Init:Error"
    assert host.runtime().containers(q["metadata"]["uid"])   # the init container is kept for its logs
    assert all(i.name != "main" for i in host.runtime().containers(q["metadata"]["uid"]))
    host.ctl("delete", "pod", "initfail", "--grace-period", "0")


def test_sidecar_starts_first_and_stops_when_the_job_is_done(host):
    side = ctr("side", "trap 'exit 0' TERM; while true; do date > /w/side; sleep 0.1; done", volumeMounts=MOUNT,
               restartPolicy="Always")
    host.apply(pod("sidecar", ctr("main", "test -s /w/side && echo sidecar-was-up; sleep 1", volumeMounts=MOUNT),
                   initContainers=[side], volumes=[WORK], restartPolicy="Never"))
    q = host.wait_phase("sidecar", "Succeeded", 60)
    assert "sidecar-was-up" in host.ctl("logs", "sidecar").stdout
    side_st = statuses(q, "initContainerStatuses")["side"]
    assert "terminated" in side_st["state"], side_st     # stopped once main was done
    assert all(i.state == "exited" for i in host.runtime().containers(q["metadata"]["uid"]))
    host.ctl("delete", "pod", "sidecar", "--grace-period", "0")
