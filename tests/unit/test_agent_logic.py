"""The agent's pure logic: restart back-off, pod status and phase, environment."""
from __future__ import annotations

import pytest

from skiff.agent.backoff import Backoff
from skiff.agent.env import container_env, expand, expand_argv
from skiff.agent.status import phase, pod_status, qos_class
from skiff.errors import SkiffError


class Info:
    def __init__(self, name, attempt, state, exit_code=0, reason="", cid=None):
        self.name, self.attempt, self.state, self.exit_code, self.reason = name, attempt, state, exit_code, reason
        self.id = cid or f"{name}{attempt}"
        self.image_id = "sha256:abc"
        self.pid = 1
        self.started_at = "2026-11-28T10:00:00.123456789Z"
        self.finished_at = "2026-11-28T10:00:05.5Z" if state == "exited" else ""
        self.oom_killed = reason == "OOMKilled"


class Sandbox:
    ip = "10.244.1.5"
    running = True


def pod(policy="Always", names=("a",)):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"restartPolicy": policy, "nodeName": "n1",
                     "containers": [{"name": n, "image": "busybox"} for n in names]}}


def test_env_resource_field_refs():
    p = pod(names=("a", "b"))
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "250m", "memory": "64Mi"},
                                               "requests": {"cpu": "100m", "memory": "48Mi"}}
    p["spec"]["containers"][1]["resources"] = {"requests": {"memory": "1G"}}
    c = p["spec"]["containers"][0]

    def ref(name, resource, **kw):
        return {"name": name, "valueFrom": {"resourceFieldRef": {"resource": resource, **kw}}}
    c["env"] = [ref("CPU", "limits.cpu"), ref("MCPU", "limits.cpu", divisor="1m"),
                ref("MEM", "limits.memory"), ref("MEM_MI", "limits.memory", divisor="1Mi"),
                ref("REQ_MI", "requests.memory", divisor="1Mi", containerName="a"),
                ref("B_CPU", "limits.cpu", containerName="b"), ref("B_MEM", "limits.memory", containerName="b"),
                ref("B_REQ", "requests.memory", divisor="1M", containerName="b"),
                ref("B_REQ_CPU", "requests.cpu", containerName="b", divisor="0")]
    env = container_env(p, c, "", "", allocatable={"cpu": "2", "memory": "4Gi"})
    assert env == ["CPU=1", "MCPU=250", f"MEM={64 * 2 ** 20}", "MEM_MI=64", "REQ_MI=48",
                   "B_CPU=2", f"B_MEM={4 * 2 ** 30}", "B_REQ=1000", "B_REQ_CPU=0"]
    with pytest.raises(SkiffError, match="container nope not found"):
        container_env(p, {"name": "a", "env": [ref("X", "limits.cpu", containerName="nope")]}, "", "")


def test_backoff_doubles_caps_and_resets():
    b = Backoff(initial=10, cap=40, reset_after=600)
    k = ("u", "c")
    assert b.wait_left(k, 0, 5, 5) == 0          # the first restart is immediate
    b.restarted(k)
    assert b.wait_left(k, 5, 6, 6) == 10         # then 10 s
    b.restarted(k)
    assert b.wait_left(k, 20, 21, 21) == 20      # 20 s
    b.restarted(k)
    b.restarted(k)
    b.restarted(k)
    assert b.wait_left(k, 100, 101, 101) == 40   # capped
    assert b.wait_left(k, 100, 101, 131) == 10   # time passes
    assert b.wait_left(k, 0, 700, 700) == 0      # ran 10 minutes: back to no wait
    b.forget("u")
    assert b.wait_left(k, 0, 1, 1) == 0


def test_status_running_then_crashloop():
    p = pod()
    st = pod_status(p, Sandbox(), [Info("a", 0, "running")], {}, True, "192.0.2.1", None)
    assert st["phase"] == "Running"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds["Ready"] == "True" and conds["ContainersReady"] == "True" and conds["PodScheduled"] == "True"
    cs = st["containerStatuses"][0]
    assert cs["state"]["running"]["startedAt"] == "2026-11-28T10:00:00Z"
    assert cs["ready"] and cs["restartCount"] == 0 and cs["containerID"] == "skiff://a0"
    assert st["podIP"] == "10.244.1.5" and st["hostIP"] == "192.0.2.1"

    infos = [Info("a", 0, "exited", 1), Info("a", 1, "exited", 2)]
    st2 = pod_status(p, Sandbox(), infos, {"a": ("CrashLoopBackOff", "back-off 10s")}, True, "192.0.2.1", st)
    cs = st2["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2 and cs["restartCount"] == 1
    assert st2["phase"] == "Running"
    assert {c["type"]: c["status"] for c in st2["conditions"]}["Ready"] == "False"
    # a condition that did not change keeps its transition time
    t1 = {c["type"]: c for c in st["conditions"]}["PodScheduled"]["lastTransitionTime"]
    assert {c["type"]: c for c in st2["conditions"]}["PodScheduled"]["lastTransitionTime"] == t1


@pytest.mark.parametrize("policy,codes,expect", [
    ("Never", [0, 0], "Succeeded"), ("Never", [0, 1], "Failed"), ("OnFailure", [0, 0], "Succeeded"),
    ("OnFailure", [0, 1], "Running"), ("Always", [0, 0], "Running")])
def test_phase_when_everything_exited(policy, codes, expect):
    p = pod(policy, ("a", "b"))
    infos = [Info("a", 0, "exited", codes[0]), Info("b", 0, "exited", codes[1])]
    st = pod_status(p, Sandbox(), infos, {}, True, "", None)
    assert st["phase"] == expect
    if expect in ("Succeeded", "Failed"):
        assert st["containerStatuses"][1]["state"]["terminated"]["reason"] == ("Completed" if codes[1] == 0 else "Error")


def test_pending_until_every_container_started():
    p = pod(names=("a", "b"))
    st = pod_status(p, Sandbox(), [Info("a", 0, "running")], {}, True, "", None)
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][1]["state"]["waiting"]["reason"] == "ContainerCreating"
    assert phase(p, st["containerStatuses"]) == "Pending"


def test_node_not_ready_makes_pod_unready():
    st = pod_status(pod(), Sandbox(), [Info("a", 0, "running")], {}, False, "", None)
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"


def test_qos():
    p = pod()
    assert qos_class(p) == "BestEffort"
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(p) == "Guaranteed"
    p["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "500m"}
    assert qos_class(p) == "Burstable"


def test_env_field_refs_and_expansion():
    p = pod()
    c = {"name": "a", "env": [
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "URL", "value": "http://$(IP):80/$(NOPE)/$$(IP)"}]}
    env = container_env(p, c, "10.244.0.9", "192.0.2.1")
    assert env == ["NAME=p", "NS=ns", "IP=10.244.0.9", "APP=x", "URL=http://10.244.0.9:80/$(NOPE)/$(IP)"]
    assert expand_argv(["echo", "$(NAME)"], env) == ["echo", "p"]
    assert expand_argv(None, env) is None
    assert expand("$(A)$(B)", {"A": "1"}) == "1$(B)"
    with pytest.raises(SkiffError):
        container_env(p, {"name": "a", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
                      "", "")


# ---------------------------------------------------------------- service environment variables

def _svc(name, ip, ports, ns="default"):
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


def test_service_env_variables_as_the_kubelet_gives_them():
    from skiff.agent.env import container_env
    services = [
        _svc("redis-primary", "10.96.0.11", [{"name": "redis", "port": 6379, "protocol": "TCP"}]),
        _svc("dns", "10.96.0.10", [{"name": "dns-udp", "port": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
        _svc("headless", "None", [{"port": 80}]),                 # no cluster IP: no variables
        _svc("other-ns", "10.96.0.12", [{"port": 80}], ns="team"),  # another namespace: none
    ]
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c"}]}}
    c = {"name": "c", "env": [{"name": "URL", "value": "redis://$(REDIS_PRIMARY_SERVICE_HOST):6379"},
                              {"name": "DNS_SERVICE_PORT", "value": "mine"}]}
    env = dict(e.split("=", 1) for e in container_env(pod, c, "10.244.0.5", "10.0.0.1", {}, services=services))
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.11"
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_REDIS"] == "6379"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_PRIMARY_PORT_6379_TCP"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_PRIMARY_PORT_6379_TCP_PROTO"] == "tcp"
    assert env["REDIS_PRIMARY_PORT_6379_TCP_PORT"] == "6379"
    assert env["REDIS_PRIMARY_PORT_6379_TCP_ADDR"] == "10.96.0.11"
    assert env["DNS_PORT"] == "udp://10.96.0.10:53"
    assert env["DNS_SERVICE_PORT_DNS_UDP"] == "53" and env["DNS_PORT_53_TCP_PROTO"] == "tcp"
    assert env["URL"] == "redis://10.96.0.11:6379"        # $(VAR) sees the service variables
    assert env["DNS_SERVICE_PORT"] == "mine"               # the container's own win
    assert not [k for k in env if k.startswith(("HEADLESS_", "OTHER_NS_"))]
    # enableServiceLinks: false -> none of them
    pod["spec"]["enableServiceLinks"] = False
    env = dict(e.split("=", 1) for e in container_env(pod, c, "10.244.0.5", "10.0.0.1", {}, services=services))
    assert "REDIS_PRIMARY_SERVICE_HOST" not in env and env["URL"] == "redis://$(REDIS_PRIMARY_SERVICE_HOST):6379"


def test_the_kubernetes_service_reaches_every_namespace():
    """The kubelet's master service: default/kubernetes gives every pod KUBERNETES_SERVICE_HOST
    and _PORT, in any namespace and with enableServiceLinks false; other Services stay in theirs."""
    from skiff.agent.env import container_env
    services = [_svc("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}]),
                _svc("web", "10.96.0.20", [{"port": 80}])]
    for ns, links in (("team", True), ("default", False)):
        pod = {"metadata": {"name": "p", "namespace": ns},
               "spec": {"containers": [{"name": "c"}], "enableServiceLinks": links}}
        env = dict(e.split("=", 1) for e in container_env(pod, {"name": "c"}, "10.244.0.5", "10.0.0.1", {},
                                                          services=services))
        assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("10.96.0.1", "443")
        assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443" and env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
        assert "WEB_SERVICE_HOST" not in env


def test_sync_frequency_flag():
    """--sync-frequency (the kubelet's): how often mounted ConfigMaps and Secrets are read again."""
    import types

    from skiff.cli.agent import COMMAND, agent_config
    from skiff.cli.parser import parse
    from skiff.errors import InvalidArgument
    ctx = types.SimpleNamespace(root=types.SimpleNamespace(path="/var/lib/skiff"))
    base = ["--server", "https://127.0.0.1:1", "--token", "t"]

    def config(*extra):
        values, _ = parse(COMMAND, base + list(extra))
        return agent_config(values, ctx, values["server"], values["token"])
    assert config().sync_frequency == 60
    assert config("--sync-frequency", "5").sync_frequency == 5
    with pytest.raises(InvalidArgument, match="--sync-frequency"):
        config("--sync-frequency", "0")


@pytest.mark.asyncio
async def test_log_port_taken_is_a_one_line_error():
    import socket

    from skiff.agent.logserver import LogServer
    from skiff.errors import SkiffError
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SkiffError) as e:
            await LogServer(None, "127.0.0.1", port).start()
    msg = str(e.value)
    assert "\n" not in msg and f"127.0.0.1:{port}: address already in use" in msg and "--log-port" in msg
