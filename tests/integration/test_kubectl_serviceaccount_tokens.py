"""A pod's ServiceAccount credentials with the real kubectl 1.32 on skiff (controller + a real
agent running busybox): every container finds token, ca.crt and namespace at
/var/run/secrets/kubernetes.io/serviceaccount (the kube-api-access projected volume the admission
adds); the token is the pod's account's (`kubectl auth whoami` with it) and dies with the pod; a
projected token for another audience is written where asked and refused by the API server;
automountServiceAccountToken: false mounts nothing."""
from __future__ import annotations

import base64
import json
import os
import uuid

import yaml

from tests.integration.kubectl import ctr, kube, pod  # noqa: F401 (kube is a fixture)

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _as(kube, token: str) -> dict:
    with open(kube.kubectl.kubeconfig) as f:
        cfg = yaml.safe_load(f)
    for u in cfg["users"]:
        u["user"] = {"token": token}
    path = os.path.join(kube.host.workdir, f"kc-{uuid.uuid4().hex[:8]}")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return {"KUBECONFIG": path}


def test_a_pod_gets_its_accounts_token_and_it_dies_with_the_pod(kube):
    k = kube.kubectl
    vault = {"name": "vault", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "auth/token"}}]}}
    k.ok("apply", "-f", kube.file("client.yaml", pod(
        "api-client", ctr("main", volumeMounts=[{"name": "vault", "mountPath": "/vault"}]), volumes=[vault]),
        pod("no-token", ctr("main"), automountServiceAccountToken=False)))
    try:
        kube.wait_running("api-client", 40)
        kube.wait_running("no-token", 40)
        spec = k.json("get", "pod", "api-client", "-o", "json")["spec"]
        api = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
        assert len(api) == 1 and spec["containers"][0]["volumeMounts"][-1] == {
            "name": api[0]["name"], "mountPath": SA_DIR, "readOnly": True}
        assert "TokenExpirationSeconds:  3607" in k.ok("describe", "pod", "api-client")

        assert k.ok("exec", "api-client", "--", "ls", SA_DIR).split() == ["ca.crt", "namespace", "token"]
        assert k.ok("exec", "api-client", "--", "cat", f"{SA_DIR}/namespace") == "default"
        with open(kube.host.ca_file) as f:
            assert k.ok("exec", "api-client", "--", "cat", f"{SA_DIR}/ca.crt") == f.read()
        token = k.ok("exec", "api-client", "--", "cat", f"{SA_DIR}/token")
        other = k.ok("exec", "api-client", "--", "cat", "/vault/auth/token")
        assert token and other and token != other
        body = token.split(".")[1]     # a JWT with Kubernetes' claims, bound to the pod
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        assert claims["sub"] == "system:serviceaccount:default:default"
        assert claims["kubernetes.io"]["pod"]["name"] == "api-client"
        assert claims["exp"] - claims["iat"] == 3607
        # the token is the pod's account's; the one made for Vault is no key to the API server
        who = k("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", env=_as(kube, token))
        assert who.returncode == 0 and who.stdout == "system:serviceaccount:default:default", who.stderr
        refused = k("auth", "whoami", env=_as(kube, other))
        assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr
        # a mount the pod asked not to have is not there
        assert k("exec", "no-token", "--", "ls", SA_DIR).returncode != 0
        assert "volumes" not in k.json("get", "pod", "no-token", "-o", "json")["spec"]

        k.ok("delete", "pod", "api-client", "--wait=true", timeout=60)
        gone = k("auth", "whoami", env=_as(kube, token))
        assert gone.returncode != 0 and "Unauthorized" in gone.stderr, gone.stderr
    finally:
        k("delete", "pod", "api-client", "no-token", "--ignore-not-found", "--wait=true", timeout=60)
