"""Registry client pieces: challenges, errors, plain-HTTP policy, credentials file,
digest checks, and bearer-token auth against a small fake registry and token server."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import stat
import threading

import pytest

from skiff.errors import SkiffError
from skiff.runtime.images import auth
from skiff.runtime.images.pull import VerifyingReader, _choose
from skiff.runtime.images.registry import (Registry, RegistryError, is_insecure, parse_challenge,
                                           registry_error)


def test_parse_challenge():
    scheme, p = parse_challenge('Bearer realm="http://127.0.0.1:1/token",service="reg",'
                                'scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert p == {"realm": "http://127.0.0.1:1/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_registry_error_text():
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert str(registry_error(404, body)) == "manifest unknown: manifest unknown"
    assert str(registry_error(401, b"")) == "unauthorized: authentication required"
    assert registry_error(500, b"oops").exit_code == 1


def test_insecure_policy():
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost") and is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com")
    assert is_insecure("registry.example.com", force=True)
    assert is_insecure("reg.lan:5000", ["reg.lan:5000"])
    assert is_insecure("reg.lan:5000", ["http://reg.lan"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("11.1.2.3:5000", ["10.0.0.0/8"])
    assert Registry("example.com").scheme == "https"
    assert Registry("docker.io").host == "registry-1.docker.io"


def test_credentials_file(tmp_path, monkeypatch):
    d = tmp_path / "cfg"
    monkeypatch.setenv("SKIFF_CONFIG", str(d))
    assert auth.get_credentials("127.0.0.1:5000") is None
    auth.store_credentials("127.0.0.1:5000", "u", "p:w")
    f = d / "config.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and stat.S_IMODE(d.stat().st_mode) == 0o700
    data = json.loads(f.read_text())
    assert base64.b64decode(data["auths"]["127.0.0.1:5000"]["auth"]) == b"u:p:w"
    assert auth.get_credentials("127.0.0.1:5000") == ("u", "p:w")
    auth.store_credentials("docker.io", "hub", "x")
    assert auth.HUB_KEY in json.loads(f.read_text())["auths"]
    assert auth.erase_credentials("127.0.0.1:5000") and not auth.erase_credentials("127.0.0.1:5000")
    assert auth.get_credentials("127.0.0.1:5000") is None


def test_verifying_reader():
    data = b"x" * 3_000_000
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    r = VerifyingReader(io.BytesIO(data), d, len(data))
    assert b"".join(iter(lambda: r.read(1 << 20), b"")) == data
    bad = bytearray(data)
    bad[5] ^= 1
    r = VerifyingReader(io.BytesIO(bytes(bad)), d, len(data))
    with pytest.raises(SkiffError, match="verification failed"):
        while r.read(1 << 20):
            pass
    with pytest.raises(SkiffError, match="more than"):
        VerifyingReader(io.BytesIO(data), d, 10).read(100)
    with pytest.raises(SkiffError, match="short read"):
        r = VerifyingReader(io.BytesIO(data[:10]), d, len(data))
        while r.read(100):
            pass


def test_choose_platform():
    index = {"manifests": [
        {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert _choose(index, ("linux", "amd64"))["digest"] == "sha256:b"
    with pytest.raises(RegistryError, match="no matching manifest for linux/s390x"):
        _choose(index, ("linux", "s390x"))


# ---------------------------------------------------------------- bearer tokens

class _Fake(http.server.BaseHTTPRequestHandler):
    """/token gives a token for basic creds; /v2/... needs "Bearer <token>"."""

    protocol_version = "HTTP/1.1"
    server_version = "fake"
    TOKEN = "tok-123"
    log: list

    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        self.server.log.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"bob:pw").decode():
                return self._send(401, b"{}")
            return self._send(200, json.dumps({"token": self.TOKEN}).encode())
        if self.headers.get("Authorization") != "Bearer " + self.TOKEN:
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', [
                ("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",service="fake",'
                                     'scope="repository:x/y:pull"')])
        if self.path == "/v2/":
            return self._send(200, b"{}")
        if self.path == "/v2/x/y/manifests/1":
            return self._send(200, b'{"schemaVersion":2}',
                              [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')

    do_HEAD = do_GET


@pytest.fixture
def fake_registry():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    srv.log = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_bearer_token_flow(fake_registry):
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    reg = Registry(host, insecure=True, credentials=("bob", "pw"))
    reg.authenticate("repository:x/y:pull")
    data, mtype, _ = reg.get_manifest("x/y", "1")
    assert data == b'{"schemaVersion":2}' and mtype.endswith("manifest.v1+json")
    token_reqs = [p for p, _ in fake_registry.log if p.startswith("/token")]
    assert token_reqs and "scope=repository%3Ax%2Fy%3Apull" in token_reqs[0] and "service=fake" in token_reqs[0]
    with pytest.raises(RegistryError, match="manifest unknown: manifest unknown"):
        reg.get_manifest("x/y", "2")
    reg.close()

    bad = Registry(host, insecure=True, credentials=("bob", "nope"))
    with pytest.raises(RegistryError, match="unauthorized: authentication required"):
        bad.authenticate("repository:x/y:pull")
    bad.close()
