"""Legacy ServiceAccount token Secrets: the claims, what the tokens controller writes into a
Secret, the API server's validation, the `type` field selector of Secrets, the authenticator
(good only while the Secret holds the token), and the controller against a ControlPlane."""
from __future__ import annotations

import base64
import json

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.validation import ValidationError, validate
from skiff.controller import satokens
from skiff.controller.auth import TokenManager
from skiff.controller.controlplane import ControlPlane
from skiff.controller.selectors import parse_field_selector
from skiff.controller.tokens_controller import NAME_KEY, SA_TOKEN_TYPE, UID_KEY, fill, token_of

from tests.unit.test_controllers_live import wait_for
from tests.unit.test_rbac import _Store

KEY = b"k" * 32
SA = {"metadata": {"name": "build", "namespace": "ci", "uid": "u1"}}


def _secret(name="build-token", ann=None, data=None, **kw):
    md = {"name": name, "namespace": "ci", "uid": "s1",
          "annotations": {NAME_KEY: "build"} if ann is None else ann}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": md, "type": SA_TOKEN_TYPE,
            **({"data": data} if data is not None else {}), **kw}


def _claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_legacy_claims_are_kubernetes_ones_without_expiry():
    c = satokens.legacy_claims(SA, "build-token")
    assert c == {"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:build",
                 "kubernetes.io/serviceaccount/namespace": "ci",
                 "kubernetes.io/serviceaccount/secret.name": "build-token",
                 "kubernetes.io/serviceaccount/service-account.name": "build",
                 "kubernetes.io/serviceaccount/service-account.uid": "u1"}
    assert satokens.is_legacy(c) and not satokens.is_legacy(satokens.claims("ci", SA, ["a"], 1, 2, None))
    tok = satokens.encode(KEY, c)
    assert satokens.decode(KEY, tok) == c and satokens.decode(b"x" * 32, tok) is None


def test_fill_writes_token_ca_namespace_and_the_accounts_uid():
    out = fill(_secret(data={"extra": "eA=="}), SA, KEY, "PEM\n")
    d = out["data"]
    assert base64.b64decode(d["ca.crt"]) == b"PEM\n" and base64.b64decode(d["namespace"]) == b"ci"
    assert d["extra"] == "eA=="
    token = base64.b64decode(d["token"]).decode()
    assert _claims(token)["kubernetes.io/serviceaccount/secret.name"] == "build-token"
    assert satokens.decode(KEY, token) is not None
    assert out["metadata"]["annotations"] == {NAME_KEY: "build", UID_KEY: "u1"}
    assert fill(out, SA, KEY, "PEM\n") is None                   # nothing more to do
    assert fill(out, SA, KEY, None) is None                      # no CA (plain http): none is asked
    again = fill(out, SA, KEY, "NEW\n")                          # a new CA is written, the token kept
    assert base64.b64decode(again["data"]["ca.crt"]) == b"NEW\n" and again["data"]["token"] == d["token"]
    nons = fill(_secret(data={"token": "dA=="}), SA, KEY, None)  # a token of its own is left
    assert nons["data"] == {"token": "dA==", "namespace": base64.b64encode(b"ci").decode()}


def test_token_of_matches_name_and_uid_when_set():
    assert token_of(_secret(), "build", "u1")
    assert token_of(_secret(ann={NAME_KEY: "build", UID_KEY: "u1"}), "build", "u1")
    assert not token_of(_secret(ann={NAME_KEY: "build", UID_KEY: "u0"}), "build", "u1")
    assert not token_of(_secret(ann={NAME_KEY: "other"}), "build", "u1")
    assert not token_of({**_secret(), "type": "Opaque"}, "build", "u1")


def test_a_token_secret_must_name_its_account():
    validate(_secret())
    for ann in ({}, {NAME_KEY: ""}):
        with pytest.raises(ValidationError) as e:
            validate(_secret(ann=ann))
        assert [f"{c['field']}: {c['message']}" for c in e.value.causes] == [
            "metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    validate({**_secret(ann={}), "type": "Opaque"})


def test_secrets_select_on_type():
    sel = parse_field_selector(f"type={SA_TOKEN_TYPE}", "secrets")
    assert sel.matches(_secret()) and not sel.matches({**_secret(), "type": "Opaque"})
    with pytest.raises(APIError):
        parse_field_selector("type=Opaque", "configmaps")


@pytest.mark.asyncio
async def test_a_legacy_token_is_good_only_while_its_secret_holds_it():
    st = _Store()
    tm = TokenManager(st)
    await st.create("/serviceaccounts/ci/build", SA)
    key = await satokens.signing_key(st)
    token = satokens.encode(key, satokens.legacy_claims(SA, "build-token"))
    assert await tm.authenticate(token) is None                     # no Secret holds it
    secret = fill(_secret(), SA, key, None)
    await st.create("/secrets/ci/build-token", secret)
    stored = base64.b64decode(secret["data"]["token"]).decode()
    user = await tm.authenticate(stored)
    assert user.name == "system:serviceaccount:ci:build" and user.groups == (
        "system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated")
    assert stored == token                                          # the claims make it: nothing random
    st.d["/secrets/ci/build-token"] = {**secret, "data": {**secret["data"], "token": base64.b64encode(
        b"another").decode()}}
    assert await tm.authenticate(stored) is None                    # signed, but not the Secret's copy
    forged = satokens.encode(b"x" * 32, _claims(stored))
    assert await tm.authenticate(forged) is None
    st.d["/secrets/ci/build-token"] = {**secret, "metadata": {**secret["metadata"], "labels": {
        "kubernetes.io/legacy-token-invalid-since": "2024-01-01"}}}
    assert await tm.authenticate(stored) is None                    # marked invalid
    st.d["/secrets/ci/build-token"] = {**secret, "metadata": {**secret["metadata"],
                                                               "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    assert await tm.authenticate(stored) is None                    # being deleted
    st.d["/secrets/ci/build-token"] = {**secret, "type": "Opaque"}
    assert await tm.authenticate(stored) is None                    # not a token Secret
    st.d["/secrets/ci/build-token"] = secret
    st.d["/serviceaccounts/ci/build"] = {"metadata": {**SA["metadata"], "uid": "u2"}}
    assert await tm.authenticate(stored) is None                    # another account of that name
    st.d["/serviceaccounts/ci/build"] = SA
    assert await tm.authenticate(stored) is not None
    await st.delete("/secrets/ci/build-token")
    assert await tm.authenticate(stored) is None                    # the Secret is gone


# -- the controller in a ControlPlane --------------------------------------------------------------

@pytest_asyncio.fixture
async def cp(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


async def _get(c, resource, name, ns="default"):
    try:
        return await c.get(resource, name, ns)
    except APIError as e:
        if e.code == 404:
            return None
        raise


@pytest.mark.asyncio
async def test_the_controller_fills_and_deletes_token_secrets(cp):
    c = cp.local_client()
    sa = await c.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": {"name": "build"}}, "default")
    await c.create("secrets", {"apiVersion": "v1", "kind": "Secret", "type": SA_TOKEN_TYPE,
                               "metadata": {"name": "build-token", "annotations": {NAME_KEY: "build"}}}, "default")

    async def filled():
        s = await _get(c, "secrets", "build-token")
        return s if s and "token" in (s.get("data") or {}) else None
    s = await wait_for(filled)
    assert s["metadata"]["annotations"][UID_KEY] == sa["metadata"]["uid"]
    assert sorted(s["data"]) == ["namespace", "token"]          # no TLS: no CA to give
    token = base64.b64decode(s["data"]["token"]).decode()
    assert (await cp.tokens.authenticate(token)).name == "system:serviceaccount:default:build"

    # a Secret for an account that does not exist, or another one than its uid, goes
    for name, ann in (("nobody-token", {NAME_KEY: "nobody"}), ("old-token", {NAME_KEY: "build", UID_KEY: "u0"})):
        await c.create("secrets", {"apiVersion": "v1", "kind": "Secret", "type": SA_TOKEN_TYPE,
                                   "metadata": {"name": name, "annotations": ann}}, "default")

    async def gone(name):
        return await _get(c, "secrets", name) is None
    assert await wait_for(lambda: gone("nobody-token"))
    assert await wait_for(lambda: gone("old-token"))
    assert await _get(c, "secrets", "build-token") is not None

    # the account's deletion takes its token Secret, and its token with it
    await c.delete("serviceaccounts", "build", "default")
    assert await wait_for(lambda: gone("build-token"))
    assert await cp.tokens.authenticate(token) is None
