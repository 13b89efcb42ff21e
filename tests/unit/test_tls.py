"""The API server speaks HTTPS with a CA of the cluster's own; agents pin that CA through the
hash in the join token (k3s style)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
import pytest_asyncio
import yaml

from skiff.api.client import HTTPClient
from skiff.api.trust import TrustError, ensure_ca, secure_token, split_token
from skiff.controller.controlplane import ControlPlane
from skiff.controller.pki import ensure_pki



@pytest_asyncio.fixture
async def cp(tmp_path):
    c = ControlPlane(str(tmp_path / "data"), listen="127.0.0.1:0")
    await c.start()
    yield c
    await c.stop()


@pytest.mark.asyncio
async def test_https_with_the_clusters_ca(cp):
    assert cp.url.startswith("https://127.0.0.1:")
    doc = yaml.safe_load(open(cp.kubeconfig_path))
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == cp.url
    assert base64.b64decode(cluster["certificate-authority-data"]) == open(cp.ca_file, "rb").read()
    # verified against the CA: the API answers; the key files are private
    async with HTTPClient.from_kubeconfig(cp.kubeconfig_path) as c:
        ns = await c.list("namespaces")
        assert "default" in {n["metadata"]["name"] for n in ns["items"]}
    for f in ("ca.key", "server.key"):
        assert os.stat(os.path.join(cp.data_dir, "pki", f)).st_mode & 0o777 == 0o600
    # without the CA the connection is refused by the client (self-signed chain)
    with pytest.raises(urllib.error.URLError) as e:
        await asyncio.to_thread(urllib.request.urlopen, cp.url + "/healthz", timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)
    # plain http on the TLS port gets nothing useful
    with pytest.raises(Exception):
        await asyncio.to_thread(urllib.request.urlopen, cp.url.replace("https:", "http:") + "/healthz",
                                timeout=5)


@pytest.mark.asyncio
async def test_cacerts_and_secure_join_token(cp, tmp_path):
    ctx = ssl.create_default_context(cafile=cp.ca_file)
    resp = await asyncio.to_thread(urllib.request.urlopen, cp.url + "/cacerts", context=ctx, timeout=5)
    pem = resp.read()
    assert pem == open(cp.ca_file, "rb").read() and pem.startswith(b"-----BEGIN CERTIFICATE-----")
    token = await cp.mint_join_token()
    want, secret = split_token(token)
    assert want == hashlib.sha256(pem).hexdigest() and token == secure_token(want, secret)
    # the agent's side: fetched without verification, checked against the hash, saved
    dest = str(tmp_path / "agent" / "ca.crt")
    got = await asyncio.to_thread(ensure_ca, cp.url, token, dest)
    assert got == dest and open(dest, "rb").read() == pem
    # a token pinning another CA is refused, and nothing is saved
    other = str(tmp_path / "other" / "ca.crt")
    with pytest.raises(TrustError, match="refusing to join"):
        await asyncio.to_thread(ensure_ca, cp.url, secure_token("0" * 64, secret), other)
    assert not os.path.exists(other)
    # a token without a hash needs a CA from somewhere
    with pytest.raises(TrustError, match="no --ca-file"):
        await asyncio.to_thread(ensure_ca, cp.url, secret, str(tmp_path / "none" / "ca.crt"))
    # the full K10 form is accepted as a bearer token too (the secret is what is checked)
    async with HTTPClient(cp.url, token, ca_file=dest) as c:
        out = await c.request("POST", "/apis/skiff.dev/v1/nodetokens", json={"nodeName": "n1"})
        assert out["token"]


def test_serving_cert_names_and_renewal(tmp_path):
    d = str(tmp_path)
    pki = ensure_pki(d, "127.0.0.1", ("skiff.example", "10.9.8.7"))
    text = subprocess.run(["openssl", "x509", "-in", pki.cert_file, "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    for name in ("DNS:localhost", "DNS:skiff.example", "IP Address:127.0.0.1", "IP Address:10.9.8.7"):
        assert name in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", pki.ca_file, pki.cert_file], capture_output=True,
                            text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    ca_before, cert_before = open(pki.ca_file, "rb").read(), open(pki.cert_file, "rb").read()
    # same names: nothing is made again; a new address: a new serving cert, the same CA, old names kept
    ensure_pki(d, "127.0.0.1")
    assert open(pki.cert_file, "rb").read() == cert_before
    ensure_pki(d, "10.1.2.3")
    assert open(pki.ca_file, "rb").read() == ca_before
    text = subprocess.run(["openssl", "x509", "-in", pki.cert_file, "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "IP Address:10.1.2.3" in text and "DNS:skiff.example" in text
