"""The real CNCF registry (Debian ``docker-registry``, distribution 2.8) for tests.

``start_registry(tmp_dir, htpasswd=None)`` writes its own config (127.0.0.1 on a
free port, filesystem storage under ``tmp_dir``, optional htpasswd auth), starts
``docker-registry serve CONFIG`` and waits until ``/v2/`` answers. The fixtures
``registry`` and ``auth_registry`` kill it (SIGKILL) and remove its files.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

USER, PASSWORD = "alice", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryProc:
    def __init__(self, proc: subprocess.Popen, port: int, storage: str, workdir: str, log: str):
        self.proc, self.port, self.storage, self.workdir, self.log = proc, port, storage, workdir, log
        self.host = f"127.0.0.1:{port}"

    def blob_file(self, digest: str) -> str:
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.storage, "docker/registry/v2/blobs", algo, hexd[:2], hexd, "data")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_registry(workdir: str, htpasswd: tuple[str, str] | None = None) -> RegistryProc:
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip("docker-registry is not installed")
    os.makedirs(workdir, exist_ok=True)
    storage = os.path.join(workdir, "storage")
    os.makedirs(storage, exist_ok=True)
    auth = ""
    if htpasswd:
        p = subprocess.run(["htpasswd", "-Bbn", *htpasswd], capture_output=True, text=True, check=True)
        hp = os.path.join(workdir, "htpasswd")
        with open(hp, "w") as f:
            f.write(p.stdout)
        auth = f"auth:\n  htpasswd:\n    realm: skiff-test\n    path: {hp}\n"
    last = ""
    for _ in range(5):
        port = free_port()
        config = os.path.join(workdir, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{port}\n" + auth)
        log = os.path.join(workdir, "registry.log")
        with open(log, "ab") as lf:
            proc = subprocess.Popen([exe, "serve", config], stdout=lf, stderr=lf,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v2/")
                c.getresponse().read()
                c.close()
                return RegistryProc(proc, port, storage, workdir, log)
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with open(log, errors="replace") as f:
            last = f.read()[-2000:]
    raise RuntimeError(f"docker-registry did not start: {last}")


@pytest.fixture
def registry(tmp_path):
    r = start_registry(str(tmp_path / "registry"))
    yield r
    r.stop()


@pytest.fixture
def auth_registry(tmp_path):
    r = start_registry(str(tmp_path / "auth-registry"), (USER, PASSWORD))
    yield r
    r.stop()
