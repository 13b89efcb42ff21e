"""Legacy ServiceAccount token Secrets against a real `skiff controller`: the tokens controller
fills a kubernetes.io/service-account-token Secret (token, ca.crt, namespace, the account's uid),
the API server takes its token as the account while the Secret holds it and refuses it (401)
once the Secret is deleted; a Secret naming no existing account is deleted, one naming none is
refused (422)."""
from __future__ import annotations

import base64
import json
import signal

from tests.e2e.cluster import wait_for
from tests.integration.test_controller_program import Controller, kubeconfig

TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_KEY = "kubernetes.io/service-account.name"
UID_KEY = "kubernetes.io/service-account.uid"


def _secret(name: str, annotations: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": name, "annotations": annotations}}


def test_token_secrets_are_filled_honoured_and_revoked(tmp_path):
    c = Controller(str(tmp_path / "data"), str(tmp_path / "controller.log"))
    try:
        c.start()
        _, admin = kubeconfig(c.data_dir)

        def call(method, path, body=None, token=admin):
            st, raw = c.raw(method, path, body, token=token)
            return st, json.loads(raw) if raw else None

        st, ns = call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "ci"}})
        assert st == 201, ns
        st, sa = call("POST", "/api/v1/namespaces/ci/serviceaccounts",
                      {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "build"}})
        assert st == 201, sa
        st, body = call("POST", "/api/v1/namespaces/ci/secrets", _secret("build-token", {NAME_KEY: "build"}))
        assert st == 201, body

        def filled():
            st, s = call("GET", "/api/v1/namespaces/ci/secrets/build-token")
            return s if st == 200 and {"token", "ca.crt", "namespace"} <= set(s.get("data") or {}) else None
        s = wait_for(filled, 15, 0.1, "the token Secret filled")
        assert s["metadata"]["annotations"] == {NAME_KEY: "build", UID_KEY: sa["metadata"]["uid"]}
        with open(c.data_dir + "/pki/ca.crt", "rb") as f:
            assert base64.b64decode(s["data"]["ca.crt"]) == f.read()
        assert base64.b64decode(s["data"]["namespace"]) == b"ci"
        token = base64.b64decode(s["data"]["token"]).decode()
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["iss"] == "kubernetes/serviceaccount" and "exp" not in claims
        assert claims["kubernetes.io/serviceaccount/secret.name"] == "build-token"

        # the token is the account's: who it is, and what RBAC lets it do
        st, review = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token)
        assert st == 201, review
        assert review["status"]["userInfo"] == {"username": "system:serviceaccount:ci:build", "groups": [
            "system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]}
        st, _ = call("GET", "/api/v1/namespaces/ci/serviceaccounts", token=token)
        assert st == 403
        st, body = call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ci/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "build-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "build", "namespace": "ci"}]})
        assert st == 201, body
        st, listed = call("GET", "/api/v1/namespaces/ci/serviceaccounts", token=token)
        assert st == 200 and "build" in [i["metadata"]["name"] for i in listed["items"]], listed

        # a Secret naming no such account is deleted; one naming none is refused
        st, body = call("POST", "/api/v1/namespaces/ci/secrets", _secret("nobody-token", {NAME_KEY: "nobody"}))
        assert st == 201, body
        wait_for(lambda: call("GET", "/api/v1/namespaces/ci/secrets/nobody-token")[0] == 404, 15, 0.1,
                 "the Secret of a missing account deleted")
        st, body = call("POST", "/api/v1/namespaces/ci/secrets", _secret("anon-token", {}))
        assert st == 422 and body["details"]["causes"] == [{
            "field": "metadata.annotations[kubernetes.io/service-account.name]", "reason": "FieldValueRequired",
            "message": "Required value"}], body

        # the Secret's deletion revokes the token at once
        st, _ = call("DELETE", "/api/v1/namespaces/ci/secrets/build-token")
        assert st == 200
        st, body = call("GET", "/api/v1/namespaces/ci/serviceaccounts", token=token)
        assert st == 401 and body["reason"] == "Unauthorized", body
    finally:
        c.stop(signal.SIGKILL)
