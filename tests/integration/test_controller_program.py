"""`skiff controller` as a program: starts, serves with the kubeconfig it wrote, stops on
SIGTERM, restarts with its data and the same admin token, and keeps every acknowledged
write across kill -9."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml

SKIFF = os.path.join(os.path.dirname(sys.executable), "skiff")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Controller:
    def __init__(self, data_dir: str, log_path: str):
        self.data_dir, self.log_path = data_dir, log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SKIFF, "controller", "--data-dir", self.data_dir,
                                      "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"controller exited {self.proc.returncode}: {open(self.log_path).read()}")
            try:
                st, body = self.raw("GET", "/healthz", token=None)
                if st == 200 and body == b"ok":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("controller did not become healthy: " + open(self.log_path).read())

    def connect(self, host: str, port: int) -> http.client.HTTPSConnection:
        """A connection verified against the cluster's CA (DATA_DIR/pki/ca.crt)."""
        import ssl
        ca = os.path.join(self.data_dir, "pki", "ca.crt")
        if not os.path.exists(ca):
            raise OSError("no CA yet")
        return http.client.HTTPSConnection(host, port, timeout=10, context=ssl.create_default_context(cafile=ca))

    def raw(self, method: str, path: str, body=None, token: str | None = None, server: str | None = None):
        url = urllib.parse.urlsplit(server or f"https://127.0.0.1:{self.port}")
        conn = self.connect(url.hostname, url.port)
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        p, self.proc = self.proc, None
        if p is None:
            return 0
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise


@pytest.fixture
def controller(tmp_path):
    c = Controller(str(tmp_path / "data"), str(tmp_path / "controller.log"))
    yield c
    c.stop(signal.SIGKILL)


def kubeconfig(data_dir: str) -> tuple[str, str]:
    path = os.path.join(data_dir, "kubeconfig")
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = yaml.safe_load(open(path))
    assert doc["current-context"] == "skiff"
    return doc["clusters"][0]["cluster"]["server"], doc["users"][0]["user"]["token"]


def pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_start_serve_restart(controller):
    controller.start()
    server, token = kubeconfig(controller.data_dir)
    assert server == f"https://127.0.0.1:{controller.port}"
    st, body = controller.raw("GET", "/api/v1/namespaces", token=token, server=server)
    assert st == 200
    assert sorted(n["metadata"]["name"] for n in json.loads(body)["items"]) == \
        ["default", "kube-node-lease", "kube-system"]
    st, body = controller.raw("GET", "/api/v1/namespaces", token=None)
    assert st == 401 and json.loads(body)["reason"] == "Unauthorized"
    st, body = controller.raw("POST", "/api/v1/namespaces/default/pods", pod("web"), token=token)
    assert st == 201, body
    uid = json.loads(body)["metadata"]["uid"]
    assert controller.stop() == 0  # SIGTERM: clean exit
    controller.start()  # another port
    server2, token2 = kubeconfig(controller.data_dir)
    assert token2 == token and server2 == f"https://127.0.0.1:{controller.port}" and server2 != server
    st, body = controller.raw("GET", "/api/v1/namespaces/default/pods/web", token=token)
    assert st == 200 and json.loads(body)["metadata"]["uid"] == uid
    assert controller.stop(signal.SIGINT) == 0


def test_acknowledged_writes_survive_kill_9(controller):
    controller.start()
    _, token = kubeconfig(controller.data_dir)
    conn = controller.connect("127.0.0.1", controller.port)  # one keep-alive connection
    acked = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for i in range(1000):
        if i % 2:
            conn.request("PATCH", f"/api/v1/namespaces/default/pods/p{i - 1}",
                         body=json.dumps({"metadata": {"labels": {"n": str(i)}}}),
                         headers={**headers, "Content-Type": "application/merge-patch+json"})
        else:
            conn.request("POST", "/api/v1/namespaces/default/pods", body=json.dumps(pod(f"p{i}")),
                         headers=headers)
        r = conn.getresponse()
        body = r.read()
        assert r.status in (200, 201), body
        acked.append(json.loads(body)["metadata"]["resourceVersion"])
    conn.close()
    controller.stop(signal.SIGKILL)
    controller.start()
    st, body = controller.raw("GET", "/api/v1/namespaces/default/pods", token=token)
    assert st == 200
    items = {p["metadata"]["name"]: p for p in json.loads(body)["items"]}
    assert len(items) == 500
    for i in range(0, 1000, 2):
        p = items[f"p{i}"]
        assert p["metadata"]["labels"] == {"n": str(i + 1)}
        # controllers (the scheduler) may have written since: never older than the acknowledged write
        assert int(p["metadata"]["resourceVersion"]) >= int(acked[i + 1])
