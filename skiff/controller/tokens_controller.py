"""The tokens controller (kube-controller-manager's serviceaccount-token controller): the legacy,
long-lived ServiceAccount tokens kept in Secrets.

A Secret of type ``kubernetes.io/service-account-token`` names its account in the annotation
``kubernetes.io/service-account.name`` (the API server requires it). This controller fills it:
``data.token`` (a token with Kubernetes' legacy claims, signed like every ServiceAccount token,
without expiry: skiff.controller.satokens), ``data.ca.crt`` (the cluster CA, when the API server
speaks TLS) and ``data.namespace``, and sets ``kubernetes.io/service-account.uid`` to the
account's uid. A token Secret whose account does not exist (or is another one than the uid it
names) is deleted, and so are an account's token Secrets when the account is. The API server
accepts such a token only while its Secret holds it (skiff.controller.rbac.authenticate_legacy).

Like Kubernetes' since 1.24, nothing makes these Secrets for an account: users do, when they
want a token that does not expire.
"""
from __future__ import annotations

import base64
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.controller import satokens
from skiff.controller.workqueue import QueueController, WorkQueue

__all__ = ["TokensController", "SA_TOKEN_TYPE", "NAME_KEY", "UID_KEY", "token_of", "fill"]

log = logging.getLogger("skiff.tokens")

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_KEY = "kubernetes.io/service-account.name"
UID_KEY = "kubernetes.io/service-account.uid"


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def token_of(secret: dict, name: str, uid: str) -> bool:
    """Whether ``secret`` is a token Secret of the account ``name`` with ``uid`` (one that does not
    name a uid yet counts: it is that name's)."""
    if secret.get("type") != SA_TOKEN_TYPE:
        return False
    ann = (secret.get("metadata") or {}).get("annotations") or {}
    return ann.get(NAME_KEY) == name and ann.get(UID_KEY, "") in ("", uid)


def fill(secret: dict, sa: dict, key: bytes, ca_pem: str | None) -> dict | None:
    """``secret`` as the controller writes it for account ``sa``: with the CA, the namespace and a
    token where they are missing (the CA also when it changed), and the account's name and uid
    annotations. None when it needs nothing."""
    data = dict(secret.get("data") or {})
    md = secret.get("metadata") or {}
    ns = md.get("namespace") or ""
    want_ca = ca_pem and data.get("ca.crt") != _b64(ca_pem)
    want_ns = not data.get("namespace")
    want_token = not data.get("token")
    if not (want_ca or want_ns or want_token):
        return None
    if want_ca:
        data["ca.crt"] = _b64(ca_pem)
    if want_ns:
        data["namespace"] = _b64(ns)
    if want_token:
        data["token"] = _b64(satokens.encode(key, satokens.legacy_claims(sa, md.get("name") or "")))
    sa_md = sa.get("metadata") or {}
    ann = {**(md.get("annotations") or {}), NAME_KEY: sa_md.get("name") or "", UID_KEY: sa_md.get("uid") or ""}
    return {**secret, "metadata": {**md, "annotations": ann}, "data": data}


class TokensController(QueueController):
    """Keys: ("secret", ns, name) to fill or delete a token Secret; ("account", ns, name, uid)
    when an account is deleted, to delete its token Secrets."""

    def __init__(self, client, key: bytes, ca_pem: str | None = None):
        self.client, self.key, self.ca_pem = client, key, ca_pem or None
        self.queue = WorkQueue("serviceaccount-tokens")
        self.accounts: Informer | None = None
        self.secrets: Informer | None = None

    async def start(self) -> None:
        self.accounts = Informer(self.client, "serviceaccounts", name="tokens-serviceaccounts")
        self.secrets = Informer(self.client, "secrets", field_selector=f"type={SA_TOKEN_TYPE}",
                                name="tokens-secrets")
        self.accounts.add_handler(self._on_account)
        self.secrets.add_handler(self._on_secret)
        await self.accounts.start()
        await self.secrets.start()
        self.start_workers("serviceaccount-tokens")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf in (self.secrets, self.accounts):
            if inf is not None:
                await inf.stop()

    def _on_account(self, typ: str, sa: dict, old: dict | None) -> None:
        if typ == "DELETED":
            md = sa.get("metadata") or {}
            self.queue.add(("account", md.get("namespace") or "", md.get("name") or "", md.get("uid") or ""))

    def _on_secret(self, typ: str, secret: dict, old: dict | None) -> None:
        if typ != "DELETED":
            md = secret.get("metadata") or {}
            self.queue.add(("secret", md.get("namespace") or "", md.get("name") or ""))

    async def reconcile(self, key: tuple) -> float | None:
        if key[0] == "account":
            return await self._account_gone(*key[1:])
        return await self._sync_secret(*key[1:])

    async def _account(self, ns: str, name: str, uid: str) -> dict | None:
        """The account (from the cache, else from the API server: it may be newer than the cache),
        or None when there is none of that name (and that uid, when given)."""
        sa = self.accounts.get(f"{ns}/{name}")
        if sa is None:
            try:
                sa = await self.client.get("serviceaccounts", name, ns)
            except APIError as e:
                if e.code == 404:
                    return None
                raise
        return sa if not uid or (sa.get("metadata") or {}).get("uid") == uid else None

    async def _delete(self, secret: dict, why: str) -> None:
        md = secret.get("metadata") or {}
        try:
            await self.client.delete("secrets", md.get("name") or "", md.get("namespace") or "",
                                     preconditions={"uid": md.get("uid")})
        except APIError as e:
            if e.code not in (404, 409):     # gone already, or another Secret of that name now
                raise
            return
        log.info("deleted a ServiceAccount token Secret: %s", why,
                 extra={"fields": {"namespace": md.get("namespace"), "secret": md.get("name")}})

    async def _account_gone(self, ns: str, name: str, uid: str) -> float | None:
        cur = self.accounts.get(f"{ns}/{name}")
        if cur is not None and (cur.get("metadata") or {}).get("uid") == uid:
            return None
        for s in self.secrets.list():
            if (s.get("metadata") or {}).get("namespace") == ns and token_of(s, name, uid):
                await self._delete(s, f"its ServiceAccount {name} was deleted")
        return None

    async def _sync_secret(self, ns: str, name: str) -> float | None:
        cached = self.secrets.get(f"{ns}/{name}")
        if cached is None or (cached.get("metadata") or {}).get("deletionTimestamp"):
            return None
        ann = (cached.get("metadata") or {}).get("annotations") or {}
        sa = await self._account(ns, ann.get(NAME_KEY) or "", ann.get(UID_KEY) or "")
        if sa is None:
            await self._delete(cached, f"no ServiceAccount {ann.get(NAME_KEY)!r} with uid {ann.get(UID_KEY)!r}"
                               if ann.get(UID_KEY) else f"no ServiceAccount {ann.get(NAME_KEY)!r}")
            return None
        if fill(cached, sa, self.key, self.ca_pem) is None:
            return None
        try:
            # the stored Secret, not the cache's: a token is written into the newest one only
            live = await self.client.get("secrets", name, ns)
            if (live.get("metadata") or {}).get("uid") != (cached.get("metadata") or {}).get("uid"):
                return None
            want = fill(live, sa, self.key, self.ca_pem)
            if want is None:
                return None
            await self.client.update("secrets", want)
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:       # written meanwhile: look again
                return 0
            if e.code == 422:       # an immutable Secret, say: nothing this controller can do
                log.warning("cannot fill a ServiceAccount token Secret: %s", e,
                            extra={"fields": {"namespace": ns, "secret": name}})
                return None
            raise
        log.info("filled a ServiceAccount token Secret", extra={"fields": {"namespace": ns, "secret": name,
                                                                           "serviceaccount": ann.get(NAME_KEY)}})
        return None
