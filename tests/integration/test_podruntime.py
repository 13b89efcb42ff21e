"""The agent's pod runtime adapter (contracts.md §5) with real pods: a pause sandbox on a pod
bridge, containers sharing its network, IPC and UTS namespaces, volumes, limits, host ports,
adoption and removal that leaves nothing behind.

Each test has its own root, pod bridge (derived from the root's unique default bridge),
pod subnet and cgroup parent; traffic only goes to 127.0.0.1 and to the pod's namespace.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import pytest

from skiff.agent.podruntime import PodRuntime
from skiff.runtime.containers.cgroups import detect
from skiff.runtime.containers.state import State
from skiff.runtime.network.endpoint import host_veth_name, nft_table
from tests.conftest import needs_root
from tests.integration.ctr_helpers import wait_for

pytestmark = [needs_root]


@pytest.fixture
def prt(skiff_root, cg_parent):
    with open(os.path.join(skiff_root, "daemon.json")) as f:
        cfg = json.load(f)
    bridge = cfg["bridge"] + "p"  # skt + 8 hex + p: unique, 12 characters
    tag = uuid.uuid4().bytes
    cidr = f"10.{200 + tag[0] % 50}.{tag[1]}.0/24"
    rt = PodRuntime(skiff_root, pod_network="pods", bridge=bridge, cgroup_parent=cg_parent)
    rt.ensure_network(cidr)
    rt.ensure_pause_image()
    from skiff.runtime.images.busybox import make_busybox_image
    make_busybox_image(rt.images, "busybox:latest")
    rt.test_cidr = cidr
    yield rt
    for uid in list(rt.all_pods()):
        try:
            rt.remove_pod(uid)
        except Exception:  # noqa: BLE001 - the root's own clean-up follows
            pass


def make_pod(containers: list[dict], volumes: list[dict] | None = None, **spec) -> dict:
    return {"metadata": {"name": "p" + uuid.uuid4().hex[:8], "namespace": "default",
                         "uid": str(uuid.uuid4())},
            "spec": {"containers": containers, "volumes": volumes or [], **spec}}


def run_pod(rt: PodRuntime, pod: dict) -> tuple:
    sb = rt.run_sandbox(pod)
    infos = [rt.start_container(pod, sb, c, 0, [f"POD_NAME={pod['metadata']['name']}"])
             for c in pod["spec"]["containers"]]
    return sb, infos


def log_text(rt: PodRuntime, cid: str) -> str:
    try:
        with open(rt.log_path(cid)) as f:
            return "".join(json.loads(line)["log"] for line in f if line.strip())
    except FileNotFoundError:
        return ""


def wait_log(rt: PodRuntime, cid: str, needle: str, timeout: float = 10) -> str:
    return wait_for(lambda: (lambda t: t if needle in t else None)(log_text(rt, cid)), timeout,
                    what=f"{needle!r} in the log of {cid[:12]}")


def wait_exit(rt: PodRuntime, uid: str, name: str, timeout: float = 15):
    def done():
        for i in rt.containers(uid):
            if i.name == name and i.state == "exited":
                return i
        return None
    return wait_for(done, timeout, what=f"container {name} to exit")


def ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def sandbox_pid(rt: PodRuntime, sb) -> int:
    return State.load(os.path.join(rt.root.containers, sb.id, "state.json")).pid


def test_pod_shares_localhost_hostname_and_ipc(prt):
    pod = make_pod([
        {"name": "srv", "image": "busybox", "command": ["sh", "-c"],
         "args": ["echo hello-pod > /tmp/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp"]},
        {"name": "cli", "image": "busybox", "command": ["sh", "-c", (
            "hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/net; "
            "for i in $(seq 50); do out=$(printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | "
            "nc -w 3 127.0.0.1 8080) && [ -n \"$out\" ] && break; sleep 0.1; done; "
            "echo \"$out\" | tail -n 1; echo env=$POD_NAME; exec sleep 60")]},
    ])
    sb, (srv, cli) = run_pod(prt, pod)
    assert sb.running and sb.ip.startswith(prt.test_cidr.rsplit(".", 1)[0] + ".")
    out = wait_log(prt, cli.id, "env=" + pod["metadata"]["name"] + "\n")
    lines = out.splitlines()
    name = pod["metadata"]["name"]
    assert lines[0] == name  # the pod's hostname, from the shared UTS namespace
    spid = sandbox_pid(prt, sb)
    assert lines[1] == ns(spid, "ipc") == ns(srv.pid, "ipc")
    assert lines[2] == ns(spid, "net") == ns(srv.pid, "net")
    assert ns(srv.pid, "uts") == ns(cli.pid, "uts") == ns(spid, "uts")
    assert ns(srv.pid, "ipc") != ns(os.getpid(), "ipc")
    assert lines[3] == "hello-pod"
    assert lines[4] == "env=" + name
    assert {i.name: i.state for i in prt.containers(pod["metadata"]["uid"])} == {
        "srv": "running", "cli": "running"}
    assert srv.attempt == 0 and srv.image == "busybox" and srv.image_id.startswith("sha256:")
    assert srv.started_at and srv.started_at.endswith("Z") and len(srv.started_at) == 20


def test_empty_dir_shared_between_containers(prt):
    pod = make_pod([
        {"name": "writer", "image": "busybox", "command": ["sh", "-c", "echo shared-data > /out/f; sleep 60"],
         "volumeMounts": [{"name": "cache", "mountPath": "/out"}]},
        {"name": "reader", "image": "busybox", "command": ["sh", "-c",
         "until [ -f /in/f ]; do sleep 0.05; done; cat /in/f; sleep 60"],
         "volumeMounts": [{"name": "cache", "mountPath": "/in"}]},
    ], volumes=[{"name": "cache", "emptyDir": {}}])
    uid = pod["metadata"]["uid"]
    _, (_, reader) = run_pod(prt, pod)
    assert wait_log(prt, reader.id, "shared-data") == "shared-data\n"
    vdir = os.path.join(prt.root.path, "pods", uid, "volumes", "cache")
    with open(os.path.join(vdir, "f")) as f:
        assert f.read() == "shared-data\n"


def test_host_path_read_only_and_types(prt, tmp_path):
    host = tmp_path / "hp"
    host.mkdir()
    (host / "data").write_text("from-host\n")
    rw_file = tmp_path / "created.log"
    pod = make_pod([
        {"name": "c", "image": "busybox", "command": ["sh", "-c",
         "cat /ro/data; echo x > /ro/new || echo denied; echo appended >> /rw.log; echo end; sleep 60"],
         "volumeMounts": [{"name": "ro", "mountPath": "/ro", "readOnly": True},
                          {"name": "logf", "mountPath": "/rw.log"}]},
    ], volumes=[{"name": "ro", "hostPath": {"path": str(host), "type": "Directory"}},
                {"name": "logf", "hostPath": {"path": str(rw_file), "type": "FileOrCreate"}}])
    _, (c,) = run_pod(prt, pod)
    out = wait_log(prt, c.id, "end\n")
    assert out.startswith("from-host\n") and "denied" in out
    assert not (host / "new").exists()
    assert rw_file.read_text() == "appended\n"
    bad = make_pod([{"name": "c", "image": "busybox", "command": ["true"],
                     "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                   volumes=[{"name": "v", "hostPath": {"path": str(tmp_path / "nope"), "type": "Directory"}}])
    sb = prt.run_sandbox(bad)
    with pytest.raises(Exception, match="hostPath type check failed"):
        prt.start_container(bad, sb, bad["spec"]["containers"][0], 0, [])
    assert prt.containers(bad["metadata"]["uid"]) == []


def test_resource_limits_in_the_cgroup(prt):
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sleep", "60"],
                     "resources": {"limits": {"memory": "64Mi", "cpu": "500m"},
                                   "requests": {"cpu": "250m"}}}])
    _, (c,) = run_pod(prt, pod)
    st = State.load(os.path.join(prt.root.containers, c.id, "state.json"))
    cg = detect().load(st.cgroup)
    assert c.pid in cg.pids()
    assert f"pod{pod['metadata']['uid']}" in cg.parent
    if cg.version == 1:
        with open(cg.path("memory") + "/memory.limit_in_bytes") as f:
            assert int(f.read()) == 64 * 2 ** 20
        with open(cg.path("cpu") + "/cpu.cfs_quota_us") as f, open(cg.path("cpu") + "/cpu.cfs_period_us") as g:
            assert int(f.read()) / int(g.read()) == 0.5
        with open(cg.path("cpu") + "/cpu.shares") as f:
            assert int(f.read()) == 256
    else:
        with open(cg.path + "/memory.max") as f:
            assert int(f.read()) == 64 * 2 ** 20


def test_run_as_user(prt):
    pod = make_pod([
        {"name": "a", "image": "busybox", "command": ["sh", "-c", "id -u; id -g; sleep 60"]},
        {"name": "b", "image": "busybox", "command": ["sh", "-c", "id -u; id -g; sleep 60"],
         "securityContext": {"runAsUser": 2345, "runAsGroup": 3456}},
    ], securityContext={"runAsUser": 1234})
    _, (a, b) = run_pod(prt, pod)
    assert wait_log(prt, a.id, "\n0\n") == "1234\n0\n"
    assert wait_log(prt, b.id, "3456\n") == "2345\n3456\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_host_port_reachable_from_loopback(prt):
    port = free_port()
    pod = make_pod([{"name": "web", "image": "busybox", "command": ["sh", "-c",
                     "echo via-hostport > /tmp/index.html; exec httpd -f -p 80 -h /tmp"],
                     "ports": [{"containerPort": 80, "hostPort": port}]}])
    run_pod(prt, pod)

    def get():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return data.decode() if b"via-hostport" in data else None
        except OSError:
            return None
    assert "200 OK" in wait_for(get, 10, 0.1, "the page through the host port")
    # the port is held: a second pod asking for it is refused and leaves nothing behind
    other = make_pod([{"name": "web", "image": "busybox", "command": ["true"],
                       "ports": [{"containerPort": 80, "hostPort": port}]}])
    with pytest.raises(Exception, match="port is already allocated"):
        prt.run_sandbox(other)
    assert prt.sandbox(other["metadata"]["uid"]) is None
    assert other["metadata"]["uid"] not in prt.all_pods()


def test_adoption_after_a_new_runtime(prt):
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sleep", "60"]},
                    {"name": "done", "image": "busybox", "command": ["sh", "-c", "exit 3"]}])
    uid = pod["metadata"]["uid"]
    sb, (c, _) = run_pod(prt, pod)
    wait_exit(prt, uid, "done")
    again = PodRuntime(prt.root.path, pod_network="pods", bridge=prt.bridge,
                       cgroup_parent=prt.cgroup_parent)
    pods = again.all_pods()
    assert uid in pods
    by_name = {i.name: i for i in pods[uid]}
    assert by_name["c"].id == c.id and by_name["c"].state == "running" and by_name["c"].pid == c.pid
    d = by_name["done"]
    assert (d.state, d.exit_code, d.reason, d.oom_killed) == ("exited", 3, "Error", False)
    assert d.finished_at and d.finished_at.endswith("Z")
    s2 = again.sandbox(uid)
    assert s2 is not None and s2.id == sb.id and s2.running and s2.ip == sb.ip
    assert again.run_sandbox(pod).id == sb.id  # idempotent while it runs


def test_remove_pod_leaves_nothing(prt, tmp_path):
    port = free_port()
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sleep", "60"],
                     "ports": [{"containerPort": 80, "hostPort": port}],
                     "volumeMounts": [{"name": "e", "mountPath": "/e"},
                                      {"name": "h", "mountPath": "/h"}]}],
                   volumes=[{"name": "e", "emptyDir": {}},
                            {"name": "h", "hostPath": {"path": str(tmp_path / "h")}}])
    uid = pod["metadata"]["uid"]
    sb, (c,) = run_pod(prt, pod)
    veth = host_veth_name(sb.id)
    table = nft_table(prt.root.path)
    assert os.path.exists(f"/sys/class/net/{veth}")
    assert table.rules(sb.id)
    st = State.load(os.path.join(prt.root.containers, c.id, "state.json"))
    cg = detect().load(st.cgroup)
    prt.remove_pod(uid)
    assert uid not in prt.all_pods() and prt.sandbox(uid) is None
    assert not os.path.exists(os.path.join(prt.root.containers, c.id))
    assert not os.path.exists(os.path.join(prt.root.containers, sb.id))
    assert not os.path.exists(os.path.join(prt.root.path, "pods", uid))
    assert not table.rules(sb.id)
    assert all(not os.path.exists(d) for d in cg.dirs())
    wait_for(lambda: not os.path.exists(f"/sys/class/net/{veth}"), 10, what=f"{veth} to go")
    with open("/proc/self/mountinfo") as f:
        assert not [ln for ln in f if prt.root.path in ln or str(tmp_path / "h") in ln]
    net = prt.networks.get("pods")
    assert sb.id not in net["Allocations"]
    # the port is free again
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))


def test_oom_kill_reported(prt):
    pod = make_pod([{"name": "hog", "image": "busybox",
                     "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                     "resources": {"limits": {"memory": "16Mi"}}},
                    {"name": "ok", "image": "busybox", "command": ["true"]}])
    uid = pod["metadata"]["uid"]
    run_pod(prt, pod)
    hog = wait_exit(prt, uid, "hog")
    assert (hog.reason, hog.oom_killed, hog.exit_code) == ("OOMKilled", True, 137)
    ok = wait_exit(prt, uid, "ok")
    assert (ok.reason, ok.oom_killed, ok.exit_code) == ("Completed", False, 0)


def test_stop_container_and_restart_attempt(prt):
    pod = make_pod([{"name": "c", "image": "busybox",
                     "command": ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"]}])
    uid = pod["metadata"]["uid"]
    sb, (c,) = run_pod(prt, pod)
    assert prt.is_running(c.id)
    prt.stop_container(c.id, 5)
    assert not prt.is_running(c.id)
    (i,) = prt.containers(uid)
    assert (i.state, i.exit_code, i.reason) == ("exited", 0, "Completed")
    assert "got-term" in log_text(prt, c.id)
    c1 = prt.start_container(pod, sb, pod["spec"]["containers"][0], 1, [])
    assert c1.attempt == 1 and c1.state == "running"
    assert [x.attempt for x in prt.containers(uid)] == [0, 1]
    prt.remove_container(c.id)
    assert [x.id for x in prt.containers(uid)] == [c1.id]
    assert not prt.is_running(c.id)
