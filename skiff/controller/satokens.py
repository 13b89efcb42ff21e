"""ServiceAccount tokens as Kubernetes issues them: JSON Web Tokens carrying its claims (``iss``,
``sub`` system:serviceaccount:NS:NAME, ``aud``, ``exp``/``iat``/``nbf``, ``jti``, and
``kubernetes.io`` with the namespace, the account's name and uid and the object the token is
bound to). Nothing is stored per token: a pod's token costs no write, and a token that is never
used again leaves nothing behind. The signature is HMAC-SHA256 (``HS256``) with a key kept in the
store (made on first use), where kube-apiserver signs with RS256: only the API server checks
these tokens (directly, or for others through TokenReview), so no public key is published.

A token is refused once it expired, once its account is gone (or replaced: the uid is in the
token), or once the object it is bound to is (skiff.controller.rbac.authenticate_sa).

Legacy tokens (:func:`legacy_claims`) are the long-lived ones the tokens controller writes into
Secrets of type kubernetes.io/service-account-token (skiff.controller.tokens_controller): signed
with the same key, with Kubernetes' legacy claims (issuer ``kubernetes/serviceaccount``, no
audience, no expiry); one is good while its Secret exists and holds it, and its account is the
same (skiff.controller.rbac.authenticate_legacy).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid

from skiff.controller.storage import StoreError, key_for

__all__ = ["ISSUER", "LEGACY_ISSUER", "encode", "decode", "looks_like_jwt", "signing_key", "claims",
           "legacy_claims", "is_legacy"]

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEGACY_PREFIX = "kubernetes.io/serviceaccount/"
KEY_NAME = "serviceaccount-signing-key"
_HEAD = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


async def signing_key(storage) -> bytes:
    """The key tokens are signed with (kept with skiff's internal token records)."""
    from skiff.controller.auth import TOKENS
    k = key_for(TOKENS, None, KEY_NAME)
    try:
        obj = await storage.get(k)
    except StoreError:
        try:
            obj = await storage.create(k, {"kind": "Token", "apiVersion": "skiff.dev/v1", "metadata": {"name": KEY_NAME},
                                           "type": "signing-key", "key": secrets.token_hex(32)})
        except StoreError:      # made meanwhile by another request
            obj = await storage.get(k)
    return bytes.fromhex(obj["key"])


def claims(namespace: str, sa: dict, audiences: list, now: int, exp: int, bound: dict | None) -> dict:
    """Kubernetes' claims of a ServiceAccount token (``bound``: {kind, name, uid} or None)."""
    md = sa.get("metadata") or {}
    k8s: dict = {"namespace": namespace, "serviceaccount": {"name": md.get("name", ""), "uid": md.get("uid", "")}}
    if bound is not None:
        k8s[bound["kind"].lower()] = {"name": bound["name"], "uid": bound["uid"]}
    return {"aud": list(audiences), "exp": exp, "iat": now, "iss": ISSUER, "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s, "nbf": now, "sub": f"system:serviceaccount:{namespace}:{md.get('name', '')}"}


def legacy_claims(sa: dict, secret_name: str) -> dict:
    """The claims of a legacy token for ServiceAccount ``sa`` kept in Secret ``secret_name``
    (Kubernetes' LegacyClaims: no aud, exp, iat or jti; the token lives as long as the Secret)."""
    md = sa.get("metadata") or {}
    ns, name = md.get("namespace") or "", md.get("name") or ""
    return {"iss": LEGACY_ISSUER, "sub": f"system:serviceaccount:{ns}:{name}",
            LEGACY_PREFIX + "namespace": ns, LEGACY_PREFIX + "secret.name": secret_name,
            LEGACY_PREFIX + "service-account.name": name, LEGACY_PREFIX + "service-account.uid": md.get("uid") or ""}


def is_legacy(body: dict) -> bool:
    return body.get("iss") == LEGACY_ISSUER


def encode(key: bytes, body: dict) -> str:
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    sig = hmac.new(key, f"{_HEAD}.{payload}".encode(), hashlib.sha256).digest()
    return f"{_HEAD}.{payload}.{_b64(sig)}"


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def decode(key: bytes, token: str) -> dict | None:
    """The claims of a token signed with ``key``; None when it is not one (a bad signature)."""
    head, payload, sig = token.split(".")
    try:
        ok = hmac.compare_digest(hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest(), _unb64(sig))
        body = json.loads(_unb64(payload)) if ok and head == _HEAD else None
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None
