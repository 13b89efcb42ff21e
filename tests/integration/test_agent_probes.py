"""Probes, ConfigMaps/Secrets and OOM kills with a real controller and a real agent on one
host (real containers)."""
from __future__ import annotations

import base64
import os
import stat
import time

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import wait_for
from tests.integration.onehost import ctr, host, pod  # noqa: F401 - host is a fixture

pytestmark = [needs_root, pytest.mark.timeout(180)]


def conditions(p: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in p["status"].get("conditions", [])}


def cstatus(p: dict, name: str) -> dict:
    return next((c for c in p.get("status", {}).get("containerStatuses") or [] if c["name"] == name), {})


def events(host, name: str) -> list[dict]:
    return [e for e in host.get("events")["items"] if e["involvedObject"]["name"] == name]


def wait_pod(host, name: str, pred, timeout: float = 40, what: str = ""):
    def check():
        p = host.pod(name)
        return p if pred(p) else None
    return wait_for(check, timeout, what=what or f"pod {name}")


HTTPD = "mkdir -p /www && echo ok > /www/healthz && echo hi > /www/index.html; "


def test_readiness_gates_ready_exec_probe(host):
    # ready between 2 s and 7 s after the start, then not ready again
    host.apply(pod("rd", ctr("main", "sleep 2; touch /tmp/ready; sleep 5; rm /tmp/ready; exec sleep 3600",
                             readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                                             "failureThreshold": 1})))
    p = host.wait_phase("rd", "Running")
    cs = cstatus(p, "main")
    assert cs["started"] is True and cs["ready"] is False   # a readiness probe starts not ready
    assert conditions(p)["Ready"] == "False" and conditions(p)["ContainersReady"] == "False"
    p = wait_pod(host, "rd", lambda p: conditions(p).get("Ready") == "True", 20, "Ready")
    assert cstatus(p, "main")["ready"] is True
    p = wait_pod(host, "rd", lambda p: conditions(p).get("Ready") == "False", 20, "not Ready again")
    assert cstatus(p, "main")["restartCount"] == 0    # readiness never restarts
    ev = [e for e in events(host, "rd") if e["reason"] == "Unhealthy"]
    assert ev and ev[0]["type"] == "Warning"
    assert ev[0]["message"].startswith("Readiness probe failed: cat: can't open '/tmp/ready'")
    assert "0/1" in host.ctl("get", "pods").stdout


def test_liveness_http_failure_restarts(host):
    # the pod's own httpd on a named port; its /healthz goes away after 3 s
    host.apply(pod("live", ctr(
        "web", HTTPD + "(sleep 3; rm /www/healthz) & exec httpd -f -p 8080 -h /www",
        ports=[{"name": "http", "containerPort": 8080}],
        livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                       "failureThreshold": 2},
        readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}),
        terminationGracePeriodSeconds=2))
    p = wait_pod(host, "live", lambda p: conditions(p).get("Ready") == "True", 30, "Ready")
    p = wait_pod(host, "live", lambda p: cstatus(p, "web").get("restartCount", 0) >= 1, 40, "a restart")
    cs = cstatus(p, "web")
    assert cs["restartCount"] == 1
    assert "terminated" in cs["lastState"]
    ev = events(host, "live")
    unhealthy = [e for e in ev if e["reason"] == "Unhealthy"]
    assert any(e["message"] == "Liveness probe failed: HTTP probe failed with statuscode: 404" for e in unhealthy)
    assert all(e["type"] == "Warning" for e in unhealthy)
    killing = [e for e in ev if e["reason"] == "Killing"]
    assert killing and killing[0]["type"] == "Normal"
    assert killing[0]["message"] == "Container web failed liveness probe, will be restarted"
    assert killing[0]["involvedObject"].get("fieldPath") == "spec.containers{web}"
    # the restarted instance serves again and becomes Ready
    wait_pod(host, "live", lambda p: cstatus(p, "web").get("restartCount") == 1
             and "running" in cstatus(p, "web")["state"], 20, "running again")


def test_grpc_readiness_probe(host):
    """A grpc probe asks the standard health service (grpc.health.v1.Health/Check) of a real
    gRPC server (grpcio): here the pod is on the host's network, so the probe goes to its
    podIP, the host's loopback address, where the test's server listens."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    h = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(h, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        h.set("app", health_pb2.HealthCheckResponse.SERVING)
        probe = {"grpc": {"port": port, "service": "app"}, "periodSeconds": 1, "failureThreshold": 1}
        host.apply(pod("grpcpod", ctr("main", "exec sleep 3600", readinessProbe=probe), hostNetwork=True))
        p = wait_pod(host, "grpcpod", lambda p: conditions(p).get("Ready") == "True", what="Ready by the grpc probe")
        assert p["status"]["podIP"] == "127.0.0.1"
        h.set("app", health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_pod(host, "grpcpod", lambda p: conditions(p).get("Ready") == "False", 20, what="not Ready")
        msgs = [e["message"] for e in events(host, "grpcpod") if e["reason"] == "Unhealthy"]
        assert 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' in msgs, msgs
        h.set("app", health_pb2.HealthCheckResponse.SERVING)
        wait_pod(host, "grpcpod", lambda p: conditions(p).get("Ready") == "True", 20, what="Ready again")
    finally:
        host.ctl("delete", "pod", "grpcpod", check=False)
        srv.stop(None).wait()


def test_startup_probe_and_tcp_socket(host):
    host.apply(pod(
        "st",
        # starts slowly: the startup probe holds liveness/readiness until /tmp/up exists;
        # then httpd listens on 9000 for the tcpSocket probes
        ctr("slow", "sleep 3; touch /tmp/up; exec httpd -f -p 9000 -h /tmp",
            ports=[{"name": "echo", "containerPort": 9000}],
            startupProbe={"exec": {"command": ["test", "-f", "/tmp/up"]}, "periodSeconds": 1,
                          "failureThreshold": 30},
            livenessProbe={"tcpSocket": {"port": "echo"}, "periodSeconds": 1, "failureThreshold": 1},
            readinessProbe={"tcpSocket": {"port": 9000}, "periodSeconds": 1}),
        # never starts: killed after 2 failed startup probes
        ctr("never", "exec sleep 3600",
            startupProbe={"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}),
        terminationGracePeriodSeconds=1))
    p = host.wait_phase("st", "Running")
    cs = cstatus(p, "slow")
    assert cs["started"] is False and cs["ready"] is False
    p = wait_pod(host, "st", lambda p: cstatus(p, "slow").get("ready") is True, 30, "slow ready")
    cs = cstatus(p, "slow")
    assert cs["started"] is True and cs["restartCount"] == 0
    assert cstatus(p, "never")["started"] is False
    p = wait_pod(host, "st", lambda p: cstatus(p, "never").get("restartCount", 0) >= 1, 40, "never restarted")
    ev = events(host, "st")
    assert any(e["reason"] == "Killing" and e["message"] == "Container never failed startup probe, will be restarted"
               for e in ev)
    assert any(e["reason"] == "Unhealthy" and e["message"].startswith("Startup probe failed") for e in ev)
    assert cstatus(host.pod("st"), "slow")["restartCount"] == 0   # liveness over tcp kept passing
    assert conditions(p)["Ready"] == "False"                       # "never" is not ready


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_configmap_and_secret_env_and_volumes(host):
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                "data": {"greeting": "hello", "color": "blue", "app.conf": "a=1\n"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                "data": {"password": _b64("s3cret"), "user": _b64("admin")}})
    script = ("echo G=$GREETING C=$CFG_color P=$S_password U=$USER_NAME O=[$OPT]; "
              "cat /etc/cfg/app.conf /etc/cfg/greeting; echo; cat /etc/sec/db/pw; echo; "
              "stat -L -c '%a %n' /etc/sec /etc/sec/db/pw /etc/cfg/greeting /etc/one/u; "
              "touch /etc/cfg/x 2>/dev/null && echo WRITABLE || echo READONLY; exec sleep 3600")
    host.apply(pod("cfgpod", ctr(
        "main", script,
        envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}, "prefix": "S_"}],
        env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
             {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "user"}}},
             {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}}}],
        volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "sec", "mountPath": "/etc/sec"},
                      {"name": "one", "mountPath": "/etc/one"}]),
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}},
                 {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400,
                                            "items": [{"key": "password", "path": "db/pw"}]}},
                 {"name": "one", "secret": {"secretName": "sec", "items": [{"key": "user", "path": "u", "mode": 0o440}]}}]))
    p = host.wait_phase("cfgpod", "Running")
    out = wait_for(lambda: (lambda t: t if "READONLY" in t or "WRITABLE" in t else None)(
        host.ctl("logs", "cfgpod").stdout), 20, what="the pod's output")
    assert "G=hello C=blue P=s3cret U=admin O=[]" in out
    assert "a=1\nhello\ns3cret\n" in out
    assert "700 /etc/sec\n400 /etc/sec/db/pw\n644 /etc/cfg/greeting\n440 /etc/one/u\n" in out
    assert "READONLY" in out
    # on the host: under the pod's volumes directory, the pod's directory root only
    uid = p["metadata"]["uid"]
    pod_dir = os.path.join(host.root, "pods", uid)
    assert stat.S_IMODE(os.stat(pod_dir).st_mode) == 0o700
    sec = os.path.join(pod_dir, "volumes", "sec")
    assert stat.S_IMODE(os.stat(sec).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(sec, "db", "pw")).st_mode) == 0o400
    assert open(os.path.join(sec, "db", "pw")).read() == "s3cret"
    host.ctl("delete", "pod", "cfgpod")
    wait_for(lambda: not os.path.exists(pod_dir), 30, what="the pod's volumes removed")


def test_changed_configmap_and_secret_reach_the_running_container(host):
    """A ConfigMap or Secret changed while its pod runs: the mounted files change in place
    (a new ..data swapped in; the agent runs with --sync-frequency 2), the environment and a
    subPath mount keep what the container started with, as in Kubernetes; nothing restarts."""
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"},
                "data": {"mode": "slow", "level": "1"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "livesec"},
                "data": {"pw": _b64("old")}})
    host.apply(pod("livepod", ctr(
        "main", "echo STARTED; exec sleep 3600",
        env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "live", "key": "mode"}}}],
        volumeMounts=[{"name": "cfg", "mountPath": "/etc/live"}, {"name": "sec", "mountPath": "/etc/sec"},
                      {"name": "cfg", "mountPath": "/etc/level", "subPath": "level"}]),
        volumes=[{"name": "cfg", "configMap": {"name": "live"}},
                 {"name": "sec", "secret": {"secretName": "livesec"}}]))
    host.wait_phase("livepod", "Running")

    def sh(cmd: str, check: bool = True) -> str:
        return host.ctl("exec", "livepod", "--", "sh", "-c", cmd, check=check).stdout

    assert sh("cat /etc/live/mode /etc/level /etc/sec/pw; echo; echo $MODE") == "slow1old\nslow\n"
    assert "..data" in sh("ls -a /etc/live").split()
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"},
                "data": {"mode": "fast", "level": "2", "extra": "x"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "livesec"},
                "data": {"pw": _b64("new")}})
    wait_for(lambda: sh("cat /etc/live/mode /etc/live/extra /etc/sec/pw", check=False) == "fastxnew", 20,
             what="the changed ConfigMap and Secret in the running container")
    assert sh("cat /etc/level; echo $MODE") == "1slow\n"     # subPath and env: as started
    assert cstatus(host.pod("livepod"), "main")["restartCount"] == 0
    host.ctl("delete", "pod", "livepod")


def test_downward_api_and_projected_volumes(host):
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pcfg"}, "data": {"mode": "fast"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "psec"}, "data": {"token": _b64("t0k")}})
    info = {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                             "divisor": "1Mi"}}]}}
    allv = {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "pcfg", "items": [{"key": "mode", "path": "conf/mode"}]}},
        {"secret": {"name": "psec"}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    script = ("cat /etc/info/labels; echo; cat /etc/info/name; echo; cat /etc/info/mem; echo; "
              "cat /etc/all/conf/mode /etc/all/token /etc/all/ns; echo; stat -L -c '%a %n' /etc/all/token; "
              "echo DONE; exec sleep 3600")
    p = pod("dwpod", ctr("main", script, resources={"limits": {"memory": "32Mi"}},
                         volumeMounts=[{"name": "info", "mountPath": "/etc/info"},
                                       {"name": "all", "mountPath": "/etc/all"}]),
            volumes=[info, allv])
    p["metadata"]["labels"] = {"app": "dw", "tier": "front"}
    host.apply(p)
    host.wait_phase("dwpod", "Running")
    out = wait_for(lambda: (lambda t: t if "DONE" in t else None)(host.ctl("logs", "dwpod").stdout), 20,
                   what="the pod's output")
    assert 'app="dw"\ntier="front"\ndwpod\n32\nfastt0kdefault\n440 /etc/all/token\n' in out
    # a label changed on the pod reaches the file in the running container (no restart)
    p["metadata"]["labels"] = {"app": "dw", "tier": "back"}
    host.apply(p)
    wait_for(lambda: 'tier="back"' in host.ctl("exec", "dwpod", "--", "cat", "/etc/info/labels").stdout,
             20, what="the labels file updated")
    assert cstatus(host.pod("dwpod"), "main")["restartCount"] == 0
    host.ctl("delete", "pod", "dwpod")


def test_memory_backed_empty_dir(host):
    from skiff.runtime.fsutil import mounts_under
    mount = [{"name": "cache", "mountPath": "/cache"}]
    writer = ctr("writer", "echo shared > /cache/f; df -k /cache | tail -1; "
                 "dd if=/dev/zero of=/cache/big bs=1M count=16 2>&1; echo DD-DONE; exec sleep 3600", volumeMounts=mount)
    reader = ctr("reader", "while [ ! -f /cache/f ]; do sleep 0.1; done; cat /cache/f; exec sleep 3600",
                 volumeMounts=mount)
    host.apply(pod("tmpfspod", writer, reader,
                   volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]))
    p = host.wait_phase("tmpfspod", "Running")
    out = wait_for(lambda: (lambda t: t if "DD-DONE" in t else None)(
        host.ctl("logs", "tmpfspod", "-c", "writer").stdout), 20, what="the writer's output")
    fs, size = out.splitlines()[0].split()[:2]
    assert fs == "tmpfs" and size == "8192"              # the sizeLimit, in KiB
    assert "No space left on device" in out
    wait_for(lambda: "shared" in host.ctl("logs", "tmpfspod", "-c", "reader").stdout, 20, what="the reader")
    vol = os.path.join(host.root, "pods", p["metadata"]["uid"], "volumes", "cache")
    assert mounts_under(host.root) == [vol]               # one tmpfs on the host, for the pod
    host.ctl("delete", "pod", "tmpfspod", "--grace-period", "0")
    wait_for(lambda: not mounts_under(host.root), 30, what="the tmpfs unmounted")
    assert not os.path.exists(vol)


def test_termination_messages(host):
    host.apply(pod("msgpod",
                   ctr("file", "echo 'bad config: x' > /dev/termination-log; exit 2"),
                   ctr("custom", "echo done > /tmp/why; exit 0", terminationMessagePath="/tmp/why",
                       securityContext={"runAsUser": 1000}),
                   ctr("logs", "for i in $(seq 1 100); do echo line $i; done; exit 1",
                       terminationMessagePolicy="FallbackToLogsOnError"),
                   ctr("quiet", "echo not a message; exit 1"),
                   restartPolicy="Never"))
    p = host.wait_phase("msgpod", "Failed", 40)
    term = {c["name"]: c["state"]["terminated"] for c in p["status"]["containerStatuses"]}
    assert term["file"]["message"] == "bad config: x\n" and term["file"]["exitCode"] == 2
    assert term["custom"]["message"] == "done\n"           # another path, written by a non-root user
    lines = term["logs"]["message"].splitlines()           # the log's last 80 lines
    assert lines[0] == "line 21" and lines[-1] == "line 100" and len(lines) == 80
    assert "message" not in term["quiet"]                   # File policy: the log is not used
    host.ctl("delete", "pod", "msgpod", "--grace-period", "0")


def test_sub_path_expr(host):
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    host.apply(pod("subexpr",
                   ctr("writer", "echo mine > /data/f; exec sleep 3600", env=env,
                       volumeMounts=[{"name": "v", "mountPath": "/data", "subPathExpr": "$(POD_NAME)/logs"}]),
                   ctr("reader", "while [ ! -f /all/subexpr/logs/f ]; do sleep 0.1; done; cat /all/subexpr/logs/f; "
                       "exec sleep 3600", volumeMounts=[{"name": "v", "mountPath": "/all"}]),
                   volumes=[{"name": "v", "emptyDir": {}}]))
    host.wait_phase("subexpr", "Running")
    wait_for(lambda: "mine" in host.ctl("logs", "subexpr", "-c", "reader").stdout, 20, what="the reader")
    host.ctl("delete", "pod", "subexpr", "--grace-period", "0")


def test_active_deadline_seconds(host):
    host.apply(pod("deadline", ctr("main", "trap 'exit 0' TERM; sleep 3600 & wait"), activeDeadlineSeconds=2))
    p = host.wait_phase("deadline", "Failed", 30)
    assert p["status"]["reason"] == "DeadlineExceeded"
    assert p["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    assert "terminated" in cstatus(p, "main")["state"]
    assert any(e["reason"] == "DeadlineExceeded" for e in events(host, "deadline"))
    host.ctl("delete", "pod", "deadline", "--grace-period", "0")


def test_readiness_gate(host):
    p = pod("gated", ctr("main", "exec sleep 3600"))
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb-ready"}]
    host.apply(p)
    q = wait_pod(host, "gated", lambda q: conditions(q).get("ContainersReady") == "True", 30, "containers ready")
    ready = next(c for c in q["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    # an outside controller sets the gate's condition through the status subresource
    from skiff.api.client import HTTPClient
    import asyncio
    async def set_gate(status):
        async with HTTPClient.from_kubeconfig(host.kubeconfig) as c:
            cur = await c.get("pods", "gated", "default")
            conds = [x for x in cur["status"]["conditions"] if x["type"] != "example.com/lb-ready"]
            conds.append({"type": "example.com/lb-ready", "status": status,
                          "lastTransitionTime": "2026-11-28T10:00:00Z"})
            await c.patch("pods", "gated", {"status": {"conditions": conds}}, "default", subresource="status")
    asyncio.run(set_gate("True"))
    q = wait_pod(host, "gated", lambda q: conditions(q).get("Ready") == "True", 30, "Ready through the gate")
    assert conditions(q)["example.com/lb-ready"] == "True"    # the agent's writes keep it
    host.ctl("delete", "pod", "gated", "--grace-period", "0")


def test_share_process_namespace(host):
    # b leaves an orphan that exits at once: reparented to PID 1 (the pause), it must be reaped
    host.apply(pod("sharedpid", ctr("a", "exec sleep 3600"),
                   ctr("b", "(sleep 0.2 &); sleep 2; ps -o pid,stat,args; exec sleep 3600"),
                   shareProcessNamespace=True))
    host.wait_phase("sharedpid", "Running")
    out = wait_for(lambda: (lambda t: t if "ps -o" in t else None)(host.ctl("logs", "sharedpid", "-c", "b").stdout),
                   20, what="b's process list")
    procs = [line.split(None, 2) for line in out.splitlines()[1:]]
    assert procs[0][0] == "1" and "sleep 2147483647" in procs[0][2]   # the pause container is PID 1
    assert any(args == "sleep 3600" for _, _, args in procs)          # container a's process, seen from b
    assert not [p for p in procs if p[1].startswith("Z")], out        # no zombie left
    host.ctl("delete", "pod", "sharedpid", "--grace-period", "0")


def test_pod_sysctls(host):
    host.apply(pod("sysctlpod", ctr("main", "cat /proc/sys/net/ipv4/ping_group_range; exec sleep 3600"),
                   securityContext={"sysctls": [{"name": "net.ipv4.ping_group_range", "value": "0 1000"}]}))
    host.wait_phase("sysctlpod", "Running")
    wait_for(lambda: host.ctl("logs", "sysctlpod").stdout.split() == ["0", "1000"], 20, what="the sysctl")
    host.apply(pod("unsafe", ctr("main", "exec sleep 3600"),
                   securityContext={"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}))
    p = host.wait_phase("unsafe", "Failed", 30)
    assert p["status"]["reason"] == "SysctlForbidden"
    assert p["status"]["message"] == 'Pod was rejected: forbidden sysctl: "net.core.somaxconn" not allowlisted'
    for name in ("sysctlpod", "unsafe"):
        host.ctl("delete", "pod", name, "--grace-period", "0")


def test_missing_configmap_is_create_container_config_error(host):
    host.apply(pod("cce", ctr("main", "echo $V; exec sleep 3600",
                              env=[{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "v"}}}])))
    p = wait_pod(host, "cce", lambda p: cstatus(p, "main").get("state", {}).get("waiting", {}).get("reason")
                 == "CreateContainerConfigError", 30, "CreateContainerConfigError")
    w = cstatus(p, "main")["state"]["waiting"]
    assert w["message"] == 'configmap "later" not found'
    assert p["status"]["phase"] == "Pending"
    assert "CreateContainerConfigError" in host.ctl("get", "pods").stdout
    assert any(e["reason"] == "Failed" and e["message"] == 'Error: configmap "later" not found'
               for e in events(host, "cce"))
    # a missing key is an error too; then the right key starts it
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"w": "1"}})
    wait_pod(host, "cce", lambda p: cstatus(p, "main").get("state", {}).get("waiting", {}).get("message")
             == "couldn't find key v in ConfigMap default/later", 30, "missing key")
    host.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"v": "now"}})
    host.wait_phase("cce", "Running", 30)
    wait_for(lambda: "now" in host.ctl("logs", "cce").stdout, 20, what="the value")


def test_oom_killed(host):
    host.apply(pod("oom", ctr("hog", "echo start; x=a; while true; do x=$x$x; done",
                              resources={"limits": {"memory": "16Mi"}})))

    def oomed(p):
        last = cstatus(p, "hog").get("lastState", {}).get("terminated") or {}
        return last.get("reason") == "OOMKilled"
    p = wait_pod(host, "oom", oomed, 60, "OOMKilled")
    last = cstatus(p, "hog")["lastState"]["terminated"]
    assert last["exitCode"] == 137
    assert cstatus(p, "hog")["restartCount"] >= 1


def test_agent_restart_keeps_probed_pod_ready(host):
    host.apply(pod("keep", ctr("main", "exec sleep 3600",
                               readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
                               startupProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})))
    p = wait_pod(host, "keep", lambda p: conditions(p).get("Ready") == "True", 30, "Ready")
    since = next(c["lastTransitionTime"] for c in p["status"]["conditions"] if c["type"] == "Ready")
    host.kill_agent()
    host.start_agent()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        p = host.pod("keep")
        assert conditions(p)["Ready"] == "True"
        time.sleep(0.3)
    assert next(c["lastTransitionTime"] for c in p["status"]["conditions"] if c["type"] == "Ready") == since
    cs = cstatus(p, "main")
    assert cs["restartCount"] == 0 and cs["started"] is True and cs["ready"] is True


def test_lifecycle_hooks_post_start_and_pre_stop(host):
    """postStart runs after the start; preStop before the stop signal, which comes only once the
    hook is done (the file's order says so); both in the container."""
    log_dir = os.path.join(host.workdir, "hooklog")
    os.makedirs(log_dir)
    host.apply(pod("hooked", ctr(
        "c", "trap 'echo term >> /h/log; exit 0' TERM; echo main >> /h/log; while true; do sleep 0.1; done",
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo poststart $(hostname) >> /h/log"]}},
                   "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /h/log; sleep 1; "
                                                    "echo prestop-done >> /h/log"]}}},
        volumeMounts=[{"name": "h", "mountPath": "/h"}]),
        volumes=[{"name": "h", "hostPath": {"path": log_dir}}], terminationGracePeriodSeconds=10))
    host.wait_phase("hooked", "Running")
    path = os.path.join(log_dir, "log")
    wait_for(lambda: "poststart" in open(path).read(), 10, what="the postStart hook")
    assert open(path).read().splitlines()[-1] == "poststart hooked"
    host.ctl("delete", "pod", "hooked")
    assert open(path).read().splitlines() == ["main", "poststart hooked", "prestop", "prestop-done", "term"]


def test_failing_post_start_hook_kills_the_container(host):
    host.apply(pod("badhook", ctr("c", "exec sleep 3600",
                                  lifecycle={"postStart": {"httpGet": {"port": 9, "path": "/ready"}}}),
                   terminationGracePeriodSeconds=1))
    p = wait_pod(host, "badhook", lambda p: cstatus(p, "c").get("restartCount", 0) >= 1, 40, "a restart")
    ev = events(host, "badhook")
    failed = [e for e in ev if e["reason"] == "FailedPostStartHook"]
    assert failed and failed[0]["type"] == "Warning", ev
    assert failed[0]["message"].startswith('HTTP lifecycle hook (/ready) for Container "c" in Pod "badhook_default(')
    assert "connection refused" in failed[0]["message"]
    assert any(e["reason"] == "Killing" and e["message"] == "FailedPostStartHook" for e in ev)


def test_env_resource_field_refs(host):
    host.apply(pod("res", ctr(
        "main", "echo MEM=$MEM CPU=$CPU REQ=$REQ NODE_CPU=$NODE_CPU; exec sleep 3600",
        resources={"limits": {"cpu": "500m", "memory": "64Mi"}},
        env=[{"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
             {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
             {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
             {"name": "NODE_CPU", "valueFrom": {"resourceFieldRef": {"containerName": "side",
                                                                       "resource": "limits.cpu"}}}]),
        ctr("side", "exec sleep 3600")))
    p = host.wait_phase("res", "Running")
    # the pod's requests were defaulted from its limits; a container without a limit has the node's
    assert p["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "64Mi"}
    out = wait_for(lambda: host.ctl("logs", "res", "-c", "main").stdout or None, 20, what="the pod's output")
    assert out.strip() == f"MEM=64 CPU=500 REQ={64 * 2 ** 20} NODE_CPU={os.cpu_count()}"
