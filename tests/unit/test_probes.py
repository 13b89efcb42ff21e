"""Probe logic (handlers, thresholds, startup gating, kills) against a tiny local HTTP/TCP
server and fake exec results; ConfigMap/Secret env and volume files from dict inputs."""
from __future__ import annotations

import asyncio
import base64
import os
import stat
import time
from types import SimpleNamespace

import pytest

from skiff.agent import probes as P
from skiff.agent import status as pstatus
from skiff.agent.env import ConfigError, container_env, env_refs
from skiff.agent.volumefiles import volume_files, volume_refs


# -- a tiny HTTP server: GET /code/NNN answers NNN, /slow never answers --
async def _http_server(state: dict):
    async def handle(r, w):
        line = await r.readline()
        headers = {}
        while (h := await r.readline()) not in (b"\r\n", b""):
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        state.setdefault("requests", []).append((line.decode().split()[1], headers))
        path = line.decode().split()[1]
        if path == "/slow":
            await asyncio.sleep(5)
        code = int(path.rsplit("/", 1)[1]) if path.startswith("/code/") else state.get("code", 200)
        w.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def _closed_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_http_probe_codes_headers_and_errors():
    async def main():
        state = {}
        srv, port = await _http_server(state)
        async with srv:
            assert await P.http_probe("127.0.0.1", port, "/code/200") == (P.SUCCESS, "")
            assert (await P.http_probe("127.0.0.1", port, "/code/302"))[0] == P.SUCCESS
            assert await P.http_probe("127.0.0.1", port, "/code/500") == \
                (P.FAILURE, "HTTP probe failed with statuscode: 500")
            assert (await P.http_probe("127.0.0.1", port, "healthz", headers=[
                {"name": "X-Custom", "value": "1"}, {"name": "host", "value": "example"}]))[0] == P.SUCCESS
            path, hdrs = state["requests"][-1]
            assert path == "/healthz" and hdrs["x-custom"] == "1" and hdrs["host"] == "example"
            assert hdrs["user-agent"].startswith("kube-probe/")
            res, msg = await P.http_probe("127.0.0.1", port, "/slow", timeout=0.2)
            assert res == P.FAILURE and "context deadline exceeded" in msg
        closed = _closed_port()
        res, msg = await P.http_probe("127.0.0.1", closed, "/x")
        assert res == P.FAILURE
        assert msg == f'Get "http://127.0.0.1:{closed}/x": dial tcp 127.0.0.1:{closed}: connect: connection refused'
    asyncio.run(main())


def test_tcp_probe():
    async def main():
        srv, port = await _http_server({})
        async with srv:
            assert await P.tcp_probe("127.0.0.1", port, 1) == (P.SUCCESS, "")
        closed = _closed_port()
        assert await P.tcp_probe("127.0.0.1", closed, 1) == \
            (P.FAILURE, f"dial tcp 127.0.0.1:{closed}: connect: connection refused")
    asyncio.run(main())


def _spawn(argv):
    """A fake runtime exec: the command runs on the host with the given stdio."""
    def start(stdio):
        fa = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
        return os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=fa)
    return start


def test_exec_probe_exit_output_and_timeout():
    async def main():
        assert await P.exec_probe(_spawn(["sh", "-c", "echo fine"]), ["x"], 2) == (P.SUCCESS, "fine\n")
        assert await P.exec_probe(_spawn(["sh", "-c", "echo bad >&2; exit 3"]), ["x"], 2) == (P.FAILURE, "bad\n")
        t0 = time.monotonic()
        res, msg = await P.exec_probe(_spawn(["sh", "-c", "sleep 30"]), ["sh", "-c", "sleep 30"], 0.3)
        assert res == P.FAILURE and msg == 'command "sh -c sleep 30" timed out'
        assert time.monotonic() - t0 < 5

        # the loop keeps running while an exec probe waits
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)
        t = asyncio.create_task(tick())
        await P.exec_probe(_spawn(["sh", "-c", "sleep 0.3"]), ["x"], 2)
        t.cancel()
        assert ticks > 10

        from skiff.errors import SkiffError

        def fails(_stdio):
            raise SkiffError("exec: \"nope\": executable file not found in $PATH", 127)
        assert (await P.exec_probe(fails, ["nope"], 1))[0] == P.FAILURE
    asyncio.run(main())


def test_resolve_named_port():
    c = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert P.resolve_port("http", c) == 8080
    assert P.resolve_port(81, c) == 81
    assert P.resolve_port("82", c) == 82
    with pytest.raises(ValueError):
        P.resolve_port("nope", c)


def test_probe_spec_defaults():
    s = P.ProbeSpec.parse({"tcpSocket": {"port": 80}})
    assert (s.handler, s.initial_delay, s.period, s.timeout, s.failure_threshold, s.success_threshold) == \
        ("tcpSocket", 0, 10, 1, 3, 1)


# -- the workers with fake results --
class FakeEvents:
    def __init__(self):
        self.events = []

    def record(self, obj, etype, reason, message, field_path=None):
        self.events.append((etype, reason, message))


class FakeRuntime:
    def __init__(self):
        self.signals = []

    def signal_container(self, cid, sig=None):
        self.signals.append((cid, sig))

    def is_running(self, cid):
        return False


class FakePodWorker:
    def __init__(self):
        self.uid = "uid-1"
        self.agent = SimpleNamespace(events=FakeEvents(), runtime=FakeRuntime())
        self.wakes = 0

    def wake(self):
        self.wakes += 1

    def wake_after(self, _d):
        self.wakes += 1

    def pod_ip(self):
        return "127.0.0.1"


def _info(cid="c1", name="web"):
    from skiff.api.timefmt import rfc3339
    return SimpleNamespace(id=cid, name=name, state="running", pid=0, started_at=rfc3339(), attempt=0)


def _pod(**probes):
    c = {"name": "web", "image": "busybox", **probes}
    return {"metadata": {"name": "p", "uid": "uid-1"}, "spec": {"containers": [c],
                                                                "terminationGracePeriodSeconds": 0}}


def _scripted(manager, results: dict[str, list]):
    """Replace the handler run with scripted results per kind (then the last forever)."""
    async def run(w):
        seq = results[w.kind]
        r = seq.pop(0) if len(seq) > 1 else seq[0]
        return (P.SUCCESS, "") if r else (P.FAILURE, f"{w.kind} says no")
    manager.run = run


FAST = {"periodSeconds": 0.02, "tcpSocket": {"port": 1}}


def test_readiness_thresholds():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        pod = _pod(readinessProbe={**FAST, "successThreshold": 2, "failureThreshold": 3})
        # ready after 2 successes; then 2 failures keep it ready, the 3rd makes it unready
        _scripted(m, {"readiness": [True, True, True, False, False, True, False, False, False, False]})
        info = _info()
        m.sync(pod, [info])
        assert not m.ready("c1") and m.started("c1")   # a readiness probe starts not ready
        seen = []
        for _ in range(60):
            await asyncio.sleep(0.01)
            seen.append(m.ready("c1"))
        # it became ready, stayed ready through the two failures, and went unready at the end
        assert True in seen and seen[-1] is False
        first = seen.index(True)
        assert all(seen[first:first + 3])
        unhealthy = [e for e in pw.agent.events.events if e[1] == "Unhealthy"]
        assert unhealthy and unhealthy[0] == ("Warning", "Unhealthy", "Readiness probe failed: readiness says no")
        assert not [e for e in pw.agent.events.events if e[1] == "Killing"]  # readiness never kills
        assert pw.wakes >= 2
        m.stop()
    asyncio.run(main())


def test_liveness_failure_kills_once_and_holds():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        pod = _pod(livenessProbe={**FAST, "failureThreshold": 2})
        _scripted(m, {"liveness": [True, False, False]})
        m.sync(pod, [_info()])
        await asyncio.sleep(0.4)
        kills = [e for e in pw.agent.events.events if e[1] == "Killing"]
        assert kills == [("Normal", "Killing", "Container web failed liveness probe, will be restarted")]
        assert [e[2] for e in pw.agent.events.events if e[1] == "Unhealthy"] == \
            ["Liveness probe failed: liveness says no"] * 2
        assert pw.agent.runtime.signals[0] == ("c1", "KILL")   # grace 0
        # held: no more probes for this instance; a new instance gets a new worker
        n = len(pw.agent.events.events)
        await asyncio.sleep(0.1)
        assert len(pw.agent.events.events) == n
        m.sync(pod, [_info("c2")])
        assert ("c1", "liveness") not in m.workers and ("c2", "liveness") in m.workers
        m.stop()
    asyncio.run(main())


def test_startup_gates_liveness_and_readiness():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        pod = _pod(startupProbe={**FAST, "failureThreshold": 30},
                   readinessProbe=dict(FAST), livenessProbe=dict(FAST))
        calls = {"startup": 0, "readiness": 0, "liveness": 0}
        open_at = time.monotonic() + 0.2

        async def run(w):
            calls[w.kind] += 1
            if w.kind == "startup":
                return (P.SUCCESS, "") if time.monotonic() > open_at else (P.FAILURE, "not yet")
            return P.SUCCESS, ""
        m.run = run
        m.sync(pod, [_info()])
        await asyncio.sleep(0.1)
        assert not m.started("c1") and not m.ready("c1")
        assert calls["readiness"] == calls["liveness"] == 0
        await asyncio.sleep(0.4)
        assert m.started("c1") and m.ready("c1")
        assert calls["readiness"] > 0 and calls["liveness"] > 0
        n = calls["startup"]
        await asyncio.sleep(0.1)
        assert calls["startup"] == n    # the startup probe stopped
        m.stop()
    asyncio.run(main())


def test_startup_failure_kills():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        m.run = lambda w: asyncio.sleep(0, result=(P.FAILURE, "no"))
        m.sync(_pod(startupProbe={**FAST, "failureThreshold": 3}), [_info()])
        await asyncio.sleep(0.3)
        assert ("Normal", "Killing", "Container web failed startup probe, will be restarted") in \
            pw.agent.events.events
        assert not m.started("c1")
        m.stop()
    asyncio.run(main())


def test_initial_delay():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        _scripted(m, {"readiness": [True]})
        m.sync(_pod(readinessProbe={**FAST, "initialDelaySeconds": 1}), [_info()])
        await asyncio.sleep(0.3)
        assert not m.ready("c1")
        await asyncio.sleep(1.0)
        assert m.ready("c1")
        m.stop()
    asyncio.run(main())


def test_http_probe_through_manager_named_port():
    async def main():
        state = {"code": 503}
        srv, port = await _http_server(state)
        async with srv:
            pw = FakePodWorker()
            m = P.ProbeManager(pw)
            pod = _pod(ports=[{"name": "web", "containerPort": port}],
                       readinessProbe={"periodSeconds": 0.02, "httpGet": {"port": "web", "path": "/ready"}})
            m.sync(pod, [_info()])
            await asyncio.sleep(0.15)
            assert not m.ready("c1")
            assert ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503") \
                in pw.agent.events.events
            state["code"] = 200
            await asyncio.sleep(0.15)
            assert m.ready("c1")
            m.stop()
    asyncio.run(main())


def test_status_ready_and_started_from_probes():
    c = {"name": "web", "image": "busybox"}
    cur = SimpleNamespace(id="c1", name="web", attempt=0, image_id="", state="running", started_at=None)
    st = pstatus.container_status(c, cur, None, None, (False, False))
    assert st["started"] is False and st["ready"] is False and "running" in st["state"]
    st = pstatus.container_status(c, cur, None, None, (True, False))
    assert st["started"] is True and st["ready"] is False
    assert pstatus.container_status(c, cur, None, None)["ready"] is True

    class Probes:
        def started(self, cid):
            return True

        def ready(self, cid):
            return False
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [c]}}
    s = pstatus.pod_status(pod, SimpleNamespace(running=True, ip="10.0.0.2"), [cur], {}, True, "1.2.3.4",
                           None, Probes())
    conds = {x["type"]: x for x in s["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["ContainersReady"]["reason"] == "ContainersNotReady"
    assert s["phase"] == "Running"


# -- ConfigMaps and Secrets --
def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


CM = {"metadata": {"name": "cfg"}, "data": {"A": "1", "B": "two", "bad=key": "x"},
      "binaryData": {"bin": _b64("\x00")}}
SEC = {"metadata": {"name": "sec"}, "data": {"password": _b64("s3cret"), "user": _b64("admin")}}
OBJS = {("configmaps", "cfg"): CM, ("secrets", "sec"): SEC, ("configmaps", "gone"): None,
        ("secrets", "gone"): None}
POD = {"metadata": {"name": "p", "namespace": "ns1", "uid": "u"}, "spec": {}}


def _env(c):
    return dict(e.split("=", 1) for e in container_env(POD, c, "10.0.0.2", "1.2.3.4", OBJS))


def test_env_from_configmaps_and_secrets():
    c = {"name": "x", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                  {"secretRef": {"name": "sec"}, "prefix": "S_"},
                                  {"configMapRef": {"name": "gone", "optional": True}}],
         "env": [{"name": "B", "value": "override"},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                 {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "A"}}},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "A", "optional": True}}},
                 {"name": "OPTK", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "no", "optional": True}}},
                 {"name": "REF", "value": "$(A)-$(S_user)"}]}
    env = _env(c)
    assert env == {"A": "1", "B": "override", "S_password": "s3cret", "S_user": "admin", "PW": "s3cret",
                   "K": "1", "REF": "1-admin"}
    assert env_refs(c) == {("configmaps", "cfg"), ("secrets", "sec"), ("configmaps", "gone")}


@pytest.mark.parametrize("c,msg", [
    ({"envFrom": [{"configMapRef": {"name": "gone"}}]}, 'configmap "gone" not found'),
    ({"envFrom": [{"secretRef": {"name": "gone"}}]}, 'secret "gone" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "a"}}}]},
     'configmap "gone" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "zz"}}}]},
     "couldn't find key zz in ConfigMap ns1/cfg"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "zz"}}}]},
     "couldn't find key zz in Secret ns1/sec"),
])
def test_env_missing_is_a_config_error(c, msg):
    with pytest.raises(ConfigError) as e:
        _env({"name": "x", **c})
    assert str(e.value) == msg and e.value.reason == "CreateContainerConfigError"


def test_volume_files_items_and_modes():
    vol = {"name": "v", "configMap": {"name": "cfg"}}
    files = volume_files(vol, OBJS)
    assert ("A", b"1", 0o644) in files and ("bin", b"\x00", 0o644) in files
    vol = {"name": "v", "secret": {"secretName": "sec", "defaultMode": 0o400,
                                   "items": [{"key": "password", "path": "db/pw"},
                                             {"key": "user", "path": "user", "mode": 0o440}]}}
    assert volume_files(vol, OBJS) == [("db/pw", b"s3cret", 0o400), ("user", b"admin", 0o440)]
    assert volume_files({"name": "v", "secret": {"secretName": "gone", "optional": True}}, OBJS) is None
    with pytest.raises(ConfigError) as e:
        volume_files({"name": "v", "secret": {"secretName": "gone"}}, OBJS)
    assert e.value.reason == "FailedMount" and 'secret "gone" not found' in str(e.value)
    with pytest.raises(ConfigError):
        volume_files({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}, OBJS)
    spec = {"volumes": [{"name": "a", "configMap": {"name": "cfg"}}, {"name": "b", "secret": {"secretName": "sec"}},
                        {"name": "c", "emptyDir": {}}]}
    assert volume_refs(spec) == {("configmaps", "cfg"), ("secrets", "sec")}
    assert volume_refs(spec, {"volumeMounts": [{"name": "b"}]}) == {("secrets", "sec")}


def test_write_config_volume_modes(tmp_path):
    from skiff.agent.podruntime import PodRuntime
    rt = PodRuntime(str(tmp_path / "root"))
    files = [("db/pw", b"s3cret", 0o400), ("user", b"admin", 0o440)]
    d = rt.write_config_volume("uid1", "sec", files, secret=True)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(rt.pods_dir, "uid1")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(d, "db", "pw")).st_mode) == 0o400
    assert open(os.path.join(d, "user"), "rb").read() == b"admin"
    # the kubelet's layout: the files in ..<time>.<random>, ..data links to it, each
    # top-level name links through ..data
    first = os.readlink(os.path.join(d, "..data"))
    assert first.startswith("..20") and os.readlink(os.path.join(d, "db")) == "..data/db"
    assert os.readlink(os.path.join(d, "user")) == "..data/user"
    assert stat.S_IMODE(os.stat(os.path.join(d, first)).st_mode) == 0o700
    # rewritten in place (the same directory, as a running container's mount sees it): a new
    # generation swapped in through ..data, the old one and the names gone from it removed
    ino = os.stat(d).st_ino
    d2 = rt.write_config_volume("uid1", "sec", [("user", b"root", 0o400)], secret=True)
    assert d2 == d and os.stat(d).st_ino == ino
    second = os.readlink(os.path.join(d, "..data"))
    assert second != first and sorted(os.listdir(d)) == sorted([second, "..data", "user"])
    assert open(os.path.join(d, "user"), "rb").read() == b"root"
    # a volume written by the older layout (plain files) is taken over
    old = os.path.join(rt.volumes_dir("uid1"), "legacy")
    os.makedirs(os.path.join(old, "sub"))
    open(os.path.join(old, "k"), "w").write("x")
    rt.write_config_volume("uid1", "legacy", [("k", b"y", 0o644)])
    assert os.path.islink(os.path.join(old, "k")) and open(os.path.join(old, "k")).read() == "y"
    assert not os.path.exists(os.path.join(old, "sub"))
    c = rt.write_config_volume("uid1", "cfg", [("A", b"1", 0o644)])
    assert stat.S_IMODE(os.stat(c).st_mode) == 0o755
    mounts = rt._mounts("uid1", {"volumes": [{"name": "cfg", "configMap": {"name": "x"}}]},
                        {"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]})
    assert mounts == [{"source": c, "destination": "/etc/cfg", "readonly": True}]
    # a subPath is resolved inside the volume: a key's link leads to the current generation's
    # file; a link a container left in an emptyDir cannot lead the mount out of the volume
    [m] = rt._mounts("uid1", {"volumes": [{"name": "cfg", "configMap": {"name": "x"}}]},
                     {"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/a", "subPath": "A"}]})
    assert m["source"] == os.path.join(c, os.readlink(os.path.join(c, "..data")), "A")
    spec = {"volumes": [{"name": "scratch", "emptyDir": {}}]}
    rt._mounts("uid1", spec, {"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]})
    scratch = os.path.join(rt.volumes_dir("uid1"), "scratch")
    os.symlink("/etc", os.path.join(scratch, "evil"))
    [m] = rt._mounts("uid1", spec, {"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/x", "subPath": "evil/passwd"}]})
    assert m["source"] == os.path.join(scratch, "etc", "passwd") and os.path.isdir(m["source"])


def test_adopted_instance_keeps_ready_and_started():
    async def main():
        pw = FakePodWorker()
        m = P.ProbeManager(pw)
        _scripted(m, {"readiness": [True], "startup": [True]})
        pod = _pod(readinessProbe={**FAST, "initialDelaySeconds": 30}, startupProbe={**FAST, "initialDelaySeconds": 30})
        pod["status"] = {"containerStatuses": [{"name": "web", "containerID": "skiff://c1", "ready": True,
                                                "started": True, "state": {"running": {}}}]}
        m.sync(pod, [_info()])
        assert m.started("c1") and m.ready("c1")
        m.sync(pod, [_info("c2")])   # a new instance starts over
        assert not m.started("c2") and not m.ready("c2")
        m.stop()
    asyncio.run(main())
