"""The status of a pod with init containers and sidecars, as the kubelet reports it, and the
API server's rules for a container's restartPolicy."""
import pytest

from skiff.agent.podruntime import ContainerInfo
from skiff.agent.status import pod_status
from skiff.api.validation import validate
from skiff.errors import SkiffError


def info(name, attempt=0, state="exited", code=0):
    return ContainerInfo(id=f"{name}{attempt}", name=name, attempt=attempt, image="busybox", image_id="",
                         state=state, pid=1 if state == "running" else 0, exit_code=code,
                         started_at="2026-11-28T10:00:00Z", finished_at=None if state == "running" else
                         "2026-11-28T10:00:01Z", reason="" if state == "running" else
                         ("Completed" if code == 0 else "Error"), oom_killed=False)


def pod(policy="Always", sidecar=False):
    init = [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]
    if sidecar:
        init[1]["restartPolicy"] = "Always"
    return {"metadata": {"name": "p"}, "spec": {"restartPolicy": policy, "initContainers": init,
                                                "containers": [{"name": "main", "image": "busybox"}]}}


def status(p, infos, waiting=None):
    st = pod_status(p, None, infos, waiting or {}, True, "10.0.0.1", None)
    conds = {c["type"]: c for c in st["conditions"]}
    return st, conds


def test_initializing_pod_is_pending_with_init_statuses():
    st, conds = status(pod(), [info("a"), info("b", state="running")], {"main": ("PodInitializing", "")})
    assert st["phase"] == "Pending"
    init = {s["name"]: s for s in st["initContainerStatuses"]}
    assert init["a"]["ready"] is True and init["a"]["state"]["terminated"]["reason"] == "Completed"
    assert init["b"]["state"].keys() == {"running"}
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["reason"] == "ContainersNotInitialized"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [b]"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_not_started_init_containers_wait_pod_initializing():
    st, conds = status(pod(), [])
    assert [s["state"] for s in st["initContainerStatuses"]] == [{"waiting": {"reason": "PodInitializing"}}] * 2
    assert conds["Initialized"]["message"] == "containers with incomplete status: [a b]"


def test_failed_init_container_fails_only_under_never():
    st, conds = status(pod("Never"), [info("a", code=2)])
    assert st["phase"] == "Failed" and conds["Initialized"]["status"] == "False"
    st, _ = status(pod("OnFailure"), [info("a", code=2)], {"a": ("CrashLoopBackOff", "back-off")})
    assert st["phase"] == "Pending"


def test_initialized_when_done_and_running():
    st, conds = status(pod(), [info("a"), info("b"), info("main", state="running")])
    assert st["phase"] == "Running" and conds["Initialized"]["status"] == "True"
    assert conds["Ready"]["status"] == "True"


def test_sidecar_counts_once_started_and_gates_readiness():
    st, conds = status(pod(sidecar=True), [info("a"), info("b", state="running"), info("main", state="running")])
    assert conds["Initialized"]["status"] == "True" and conds["Ready"]["status"] == "True"
    st, conds = status(pod(sidecar=True), [info("a"), info("b", state="exited", code=1),
                                           info("main", state="running")], {"b": ("CrashLoopBackOff", "")})
    assert st["phase"] == "Running"
    assert conds["ContainersReady"]["message"] == "containers with unready status: [b]"


def _pod_with(init=None, containers=None):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"initContainers": init or [], "containers": containers or [{"name": "c", "image": "busybox"}]}}


@pytest.mark.parametrize("obj,msg", [
    (_pod_with(init=[{"name": "i", "image": "busybox", "restartPolicy": "Never"}]),
     'spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    (_pod_with(containers=[{"name": "c", "image": "busybox", "restartPolicy": "Always"}]),
     "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"),
    (_pod_with(init=[{"name": "i", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}]),
     "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
     "restartPolicy=Always"),
])
def test_restart_policy_rules(obj, msg):
    with pytest.raises(SkiffError) as e:
        validate(obj)
    assert msg in str(e.value)


def test_sidecar_may_have_probes():
    assert validate(_pod_with(init=[{"name": "i", "image": "busybox", "restartPolicy": "Always",
                                     "readinessProbe": {"exec": {"command": ["true"]}}}])) == []


def test_describe_lists_init_containers_and_the_controller():
    from skiff.cli.ctl.describe import describe_pod
    p = pod()
    p["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web-1", "controller": True}]
    p["status"], _ = status(p, [info("a"), info("b", state="running")])
    lines = [" ".join(line.split()) for line in describe_pod(p, []).splitlines()]
    assert "Controlled By: ReplicaSet/web-1" in lines
    i, j = lines.index("Init Containers:"), lines.index("Containers:")
    assert i < j and lines[i + 1] == "a:" and "b:" in lines[i:j]
    assert "State: Terminated" in lines[i:j] and "State: Running" in lines[i:j]
    assert "Init Containers:" not in describe_pod({"metadata": {"name": "x"}, "spec": {"containers": []}}, [])


@pytest.mark.parametrize("spec,msg", [
    ({"hostAliases": [{"ip": "nope", "hostnames": ["a"]}]}, 'spec.hostAliases[0].ip: Invalid value: "nope"'),
    ({"dnsPolicy": "None"}, "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ({"dnsPolicy": "None", "dnsConfig": {"searches": ["a"]}},
     "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver"),
    ({"dnsConfig": {"nameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "9.9.9.9"]}},
     "must not have more than 3 nameservers"),
    ({"dnsConfig": {"options": [{"value": "1"}]}}, "spec.dnsConfig.options[0].name: Required value"),
])
def test_dns_rules(spec, msg):
    obj = _pod_with()
    obj["spec"].update(spec)
    with pytest.raises(SkiffError) as e:
        validate(obj)
    assert msg in str(e.value)


def test_pod_dns_merges_as_the_kubelet():
    from skiff.agent.podruntime import pod_dns
    from skiff.runtime.containers.create import host_resolv
    assert pod_dns({}) == ([], [], [])
    assert pod_dns({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"], "options": [
        {"name": "ndots", "value": "5"}, {"name": "rotate"}]}}) == (["192.0.2.1"], [], ["ndots:5", "rotate"])
    servers, search, _ = host_resolv()
    got = pod_dns({"dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["x.example"]}})
    assert got[0] == (servers + ["192.0.2.1"])[:3] and got[1] == search + ["x.example"]


def test_readiness_gates_hold_ready_and_their_conditions_are_kept():
    p = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main"}],
                                             "readinessGates": [{"conditionType": "example.com/lb"}]}}
    running = [info("main", state="running")]
    st, conds = status(p, running)
    assert conds["ContainersReady"]["status"] == "True" and conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert conds["Ready"]["message"] == 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    gate = {"type": "example.com/lb", "status": "False", "lastTransitionTime": "2026-11-28T10:00:00Z"}
    st = pod_status(p, None, running, {}, True, "10.0.0.1", {"conditions": [gate]})
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["message"] == 'the status of pod readiness gate "example.com/lb" is not "True", but False'
    assert conds["example.com/lb"] == gate                     # someone else's condition, kept as it is
    st = pod_status(p, None, running, {}, True, "10.0.0.1", {"conditions": [dict(gate, status="True")]})
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"


def test_a_pod_the_agent_failed_reports_why():
    p = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main"}]}}
    st = pod_status(p, None, [info("main", state="exited", code=137)], {}, True, "10.0.0.1", None,
                    failed=("DeadlineExceeded", "Pod was active on the node longer than the specified deadline"))
    assert (st["phase"], st["reason"]) == ("Failed", "DeadlineExceeded")
    assert {c["type"]: c.get("reason") for c in st["conditions"]}["Ready"] == "PodCompleted"


def test_pod_os_linux_is_served_windows_refused():
    obj = _pod_with()
    obj["spec"]["os"] = {"name": "linux"}
    assert validate(obj) == []
    obj["spec"]["os"] = {"name": "windows"}
    with pytest.raises(SkiffError) as e:
        validate(obj)
    assert "spec.os.name is not supported by skiff" in str(e.value)
