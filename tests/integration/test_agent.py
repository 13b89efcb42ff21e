"""The agent with a real controller on one host: pods as real containers, their status as
Kubernetes reports it, restart policies and back-off, graceful deletion, logs, and restarts
of the agent and of the controller that restart nothing."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import free_port, wait_for
from tests.integration.onehost import ctr, elapsed, host, pod  # noqa: F401 - host is a fixture

pytestmark = [needs_root, pytest.mark.timeout(180)]


def conditions(p: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in p["status"].get("conditions", [])}


def test_pod_runs_with_its_spec(host):
    hp = free_port()
    out = host.apply(pod(
        "web",
        ctr("server", "mkdir -p /www && echo hi from $(POD) > /www/index.html && exec httpd -f -p 8080 -h /www",
            env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            ports=[{"containerPort": 8080, "hostPort": hp}]),
        ctr("client", "echo ns=$NS ip=$IP uid=$(id -u) pwd=$(pwd); "
                      "until wget -q -O - http://localhost:8080/; do sleep 0.2; done; exec sleep 3600",
            workingDir="/tmp", securityContext={"runAsUser": 1234},
            env=[{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            resources={"limits": {"memory": "64Mi", "cpu": "500m"}})))
    assert out.strip() == "pod/web created"
    p = host.wait_phase("web", "Running")
    st = p["status"]
    assert st["podIP"].startswith(host.cluster_cidr.rsplit(".", 2)[0]) and st["hostIP"]
    assert conditions(p) == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                             "ContainersReady": "True", "PodScheduled": "True"}
    cs = {c["name"]: c for c in st["containerStatuses"]}
    assert set(cs) == {"server", "client"}
    assert all(c["ready"] and "running" in c["state"] and c["restartCount"] == 0 for c in cs.values())
    assert cs["server"]["containerID"].startswith("skiff://")
    text = wait_for(lambda: (lambda t: t if "hi from web" in t else None)(
        host.ctl("logs", "web", "-c", "client").stdout), 20, what="client output")
    assert f"ns=default ip={st['podIP']} uid=1234 pwd=/tmp" in text
    # the hostPort from the host's loopback
    body = wait_for(lambda: _get(f"http://127.0.0.1:{hp}/"), 10, what="the hostPort")
    assert body == "hi from web\n"
    # the memory limit reached the container's cgroup
    info = next(i for i in host.runtime().containers(p["metadata"]["uid"]) if i.name == "client")
    assert info.state == "running"
    reasons = {e["reason"] for e in host.get("events")["items"]
               if e["involvedObject"]["name"] == "web"}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons


def _get(url: str) -> str | None:
    try:
        return urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None


def test_crash_loop_backs_off(host):
    host.apply(pod("crash", ctr("main", "echo run; exit 3")))

    def looping():
        p = host.pod("crash")
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        w = cs.get("state", {}).get("waiting", {})
        return p if cs.get("restartCount", 0) >= 2 and w.get("reason") == "CrashLoopBackOff" else None
    p = wait_for(looping, 40, what="CrashLoopBackOff after 2 restarts")
    cs = p["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in cs["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Running"
    assert "CrashLoopBackOff" in host.ctl("get", "pods").stdout
    events = [e for e in host.get("events")["items"] if e["involvedObject"]["name"] == "crash"]
    backoff = [e for e in events if e["reason"] == "BackOff"]
    assert backoff and backoff[0]["type"] == "Warning"
    started = next(e for e in events if e["reason"] == "Started")
    assert started["count"] >= 2  # repeats are counted, not duplicated
    assert "run" in host.ctl("logs", "crash", "--previous").stdout
    # the waits grow: 1 s then 2 s then 4 s (capped) with --backoff 1,4,600
    restarts_at = []
    last = cs["restartCount"]
    deadline = time.monotonic() + 20
    while len(restarts_at) < 2 and time.monotonic() < deadline:
        n = host.pod("crash")["status"]["containerStatuses"][0]["restartCount"]
        if n > last:
            restarts_at.append(time.monotonic())
            last = n
        time.sleep(0.1)
    assert len(restarts_at) == 2
    assert restarts_at[1] - restarts_at[0] >= 1.5


@pytest.mark.parametrize("policy,code,phase", [("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded"),
                                               ("Never", 0, "Succeeded")])
def test_restart_policy(host, policy, code, phase):
    host.apply(pod("job", ctr("main", f"echo done; exit {code}"), restartPolicy=policy))
    p = host.wait_phase("job", phase)
    cs = p["status"]["containerStatuses"][0]
    assert cs["state"]["terminated"]["exitCode"] == code
    assert cs["state"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")
    time.sleep(1.5)
    assert host.pod("job")["status"]["containerStatuses"][0]["restartCount"] == 0
    assert conditions(host.pod("job"))["Ready"] == "False"


def test_graceful_delete(host):
    host.apply(pod("polite", ctr("main", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")),
               pod("stubborn", ctr("main", "trap '' TERM; exec sleep 3600"), terminationGracePeriodSeconds=2))
    host.wait_phase("polite", "Running")
    host.wait_phase("stubborn", "Running")
    uid = host.pod("polite")["metadata"]["uid"]
    took = elapsed(lambda: host.ctl("delete", "pod", "polite", "--wait=true"))
    assert took < 5
    assert host.runtime().containers(uid) == []
    # SIGTERM ignored: SIGKILL after the grace period; the object goes only once the agent confirms
    took = elapsed(lambda: host.ctl("delete", "pod", "stubborn", "--wait=true"))
    assert 1.5 <= took < 10, took
    assert host.ctl("get", "pod", "stubborn", check=False).returncode != 0
    names = {e["involvedObject"]["name"] for e in host.get("events")["items"] if e["reason"] == "Killing"}
    assert {"polite", "stubborn"} <= names


def test_agent_restart_adopts_running_pods(host):
    host.apply(*[pod(f"p{i}", ctr("main", "exec sleep 3600")) for i in range(5)],
               pod("crash", ctr("main", "exit 1")))
    for i in range(5):
        host.wait_phase(f"p{i}", "Running")
    wait_for(lambda: host.pod("crash")["status"]["containerStatuses"][0]["restartCount"] >= 1, 20,
             what="a restart")
    rt = host.runtime()
    before = {i.id: i.pid for infos in rt.all_pods().values() for i in infos if i.state == "running"}
    counts = {f"p{i}": host.pod(f"p{i}")["status"]["containerStatuses"][0]["restartCount"] for i in range(5)}
    host.kill_agent(signal.SIGKILL)
    host.start_agent()
    wait_for(lambda: host.read_log("agent.log", None).count("ready: node IP") >= 2, 20, what="the agent again")
    time.sleep(2)
    after = {i.id: i.pid for infos in rt.all_pods().values() for i in infos
             if i.state == "running" and i.id in before}
    assert {k: v for k, v in after.items()} == {k: v for k, v in before.items() if k in after}
    for i in range(5):
        p = host.pod(f"p{i}")
        assert p["status"]["containerStatuses"][0]["restartCount"] == counts[f"p{i}"]
        assert p["status"]["phase"] == "Running"
    running = [i for infos in rt.all_pods().values() for i in infos if i.state == "running"]
    assert len([i for i in running if i.name == "main" and i.id in before]) >= 5
    assert sum(1 for i in running if i.name == "main" and i.id not in before) <= 1  # only the crasher's


def test_pod_deleted_while_agent_down_is_removed(host):
    host.apply(pod("gone", ctr("main", "exec sleep 3600")))
    uid = host.wait_phase("gone", "Running")["metadata"]["uid"]
    host.kill_agent()
    host.ctl("delete", "pod", "gone", "--grace-period=0", "--force", "--wait=false")
    host.start_agent()
    wait_for(lambda: host.runtime().containers(uid) == [] and host.runtime().sandbox(uid) is None, 20,
             what="the orphan pod removed")


def test_controller_restart_resumes(host):
    host.apply(pod("a", ctr("main", "exec sleep 3600")))
    a = host.wait_phase("a", "Running")
    rt = host.runtime()
    ids = sorted(i.id for i in rt.containers(a["metadata"]["uid"]))
    host.kill_controller(signal.SIGKILL)
    time.sleep(1)
    host.start_controller()
    host.apply(pod("b", ctr("main", "exec sleep 3600")))
    host.wait_phase("b", "Running", timeout=40)
    assert sorted(i.id for i in rt.containers(a["metadata"]["uid"])) == ids
    assert host.pod("a")["status"]["containerStatuses"][0]["restartCount"] == 0
    assert host.node_ready() == "True"


def test_logs_options(host):
    host.apply(pod("talk", ctr("fixed", "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600"),
                   ctr("ticker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done")))
    host.wait_phase("talk", "Running")
    wait_for(lambda: "line 5" in host.ctl("logs", "talk", "-c", "fixed").stdout, 10)
    assert host.ctl("logs", "talk", "-c", "fixed", "--tail", "2").stdout.splitlines() == ["line 4", "line 5"]
    ts = host.ctl("logs", "talk", "-c", "fixed", "--timestamps", "--tail", "1").stdout
    stamp, _, text = ts.strip().partition(" ")
    assert stamp.startswith("20") and "T" in stamp and text == "line 5"
    assert host.ctl("logs", "talk", "-c", "fixed", "--since", "1h").stdout.count("line") == 5
    # several containers: -c is needed, as kubectl says
    # follow: a streaming reader sees lines written after it started
    f = subprocess.Popen([sys.executable, "-m", "skiff.cli.ctl.main", "--kubeconfig", host.kubeconfig,
                          "logs", "-f", "talk", "-c", "ticker", "--tail", "1"], stdout=subprocess.PIPE, text=True)
    try:
        first = f.stdout.readline()
        n = int(first.split()[1])
        later = [f.stdout.readline() for _ in range(3)]
        assert [int(x.split()[1]) for x in later] == [n + 1, n + 2, n + 3]
    finally:
        f.kill()
        f.wait()
    # the agent's log server refuses callers the API server does not vouch for
    node = host.get("node", host.node)
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ip = node["status"]["addresses"][0]["address"]
    req = urllib.request.Request(f"http://{ip}:{port}/containerLogs/default/talk/fixed",
                                 headers={"Authorization": "Bearer nope"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 401


from tests.integration.registry_fixture import registry  # noqa: E402,F401


def test_images_pulled_as_the_policy_says(host, registry, skiff_factory):  # noqa: F811
    pusher = skiff_factory("pusher")
    pusher.ok("mkimage", "busybox")
    ref = f"{registry.host}/team/pulled:1"
    pusher.ok("tag", "busybox", ref)
    pusher.ok("push", ref)
    host.apply(pod("fetch", {"name": "main", "image": ref, "command": ["sleep", "3600"]}),
               pod("never", {"name": "main", "image": f"{registry.host}/team/absent:1",
                             "imagePullPolicy": "Never", "command": ["true"]}),
               pod("missing", {"name": "main", "image": f"{registry.host}/team/absent:1",
                               "command": ["true"]}))
    host.wait_phase("fetch", "Running", timeout=60)
    reasons = [e["reason"] for e in host.get("events")["items"] if e["involvedObject"]["name"] == "fetch"]
    assert "Pulling" in reasons and "Pulled" in reasons
    pulled = next(e for e in host.get("events")["items"]
                  if e["involvedObject"]["name"] == "fetch" and e["reason"] == "Pulled")
    assert pulled["message"].startswith(f'Successfully pulled image "{ref}"')
    # the pull ran in a child process: the agent keeps one thread (monitors are forked, not spawned)
    with open(f"/proc/{host.agent.pid}/status") as f:
        assert "Threads:\t1\n" in f.read()

    def waiting(name):
        cs = (host.pod(name).get("status", {}).get("containerStatuses") or [{}])[0]
        return cs.get("state", {}).get("waiting", {}).get("reason")
    wait_for(lambda: waiting("never") == "ErrImageNeverPull", 20, what="ErrImageNeverPull")
    wait_for(lambda: waiting("missing") in ("ErrImagePull", "ImagePullBackOff"), 20, what="ErrImagePull")
    assert host.pod("missing")["status"]["phase"] == "Pending"
    failed = [e for e in host.get("events")["items"]
              if e["involvedObject"]["name"] == "missing" and e["reason"] == "Failed"]
    assert failed and failed[0]["type"] == "Warning" and "absent" in failed[0]["message"]
