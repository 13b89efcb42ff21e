"""Identities, bearer tokens and the node restriction (contracts §1).

Tokens are stored hashed (sha256 hex) under the store key ``/tokens//<hash>``
(cluster-scoped resource "tokens", never served by the generic REST paths). Kinds:
``admin`` (user system:admin, group system:masters), ``apiserver`` (system:apiserver,
system:masters; the API server's own credential towards the agents' log servers),
``join`` (``<id>.<secret>``, with an expiration; user system:bootstrap:<id>, group
system:bootstrappers; only good for exchanging into a node token) and ``node`` (bound to a
node name; user system:node:<name>, group system:nodes).

:func:`authorize` decides a request (Kubernetes' RBAC for masters plus the Node authorizer
for nodes) and raises a 403 :class:`APIError` with Kubernetes' message.
"""
from __future__ import annotations

import datetime
import hashlib
import secrets
import string
import time
from dataclasses import dataclass, field

from skiff.api.errors import APIError, forbidden
from skiff.api.resources import NODE_LEASE_NAMESPACE, RESOURCES
from skiff.controller.storage import StoreError, key_for, prefix_for

MASTERS = "system:masters"
NODES = "system:nodes"
BOOTSTRAPPERS = "system:bootstrappers"
TOKENS = "tokens"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    node: str | None = field(default=None, compare=False)
    rbac: object = field(default=None, compare=False, repr=False)   # skiff.controller.rbac.Snapshot

    @property
    def is_master(self) -> bool:
        return MASTERS in self.groups

    @property
    def is_node(self) -> bool:
        return self.node is not None and NODES in self.groups

    @property
    def is_bootstrap(self) -> bool:
        return BOOTSTRAPPERS in self.groups

    def info(self) -> dict:
        return {"username": self.name, "groups": list(self.groups)}


ADMIN = User("system:admin", (MASTERS, "system:authenticated"))
APISERVER = User("system:apiserver", (MASTERS, "system:authenticated"))


def node_user(name: str) -> User:
    return User(f"system:node:{name}", (NODES, "system:authenticated"), node=name)


def bootstrap_user(token_id: str) -> User:
    return User(f"system:bootstrap:{token_id}", (BOOTSTRAPPERS, "system:authenticated"))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(s: str) -> float:
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


_ID_CHARS = string.ascii_lowercase + string.digits


class TokenManager:
    """Mints and checks tokens against the store (any :class:`Storage`; normally the watch
    cache, so a lookup is a dict read). Answers are cached in memory."""

    def __init__(self, storage):
        self.storage = storage
        self._cache: dict[str, tuple[User, float | None]] = {}

    async def _save(self, token: str, kind: str, **extra) -> dict:
        h = hash_token(token)
        obj = {"kind": "Token", "apiVersion": "skiff.dev/v1", "metadata": {"name": h},
               "type": kind, **extra}
        await self.storage.create(key_for(TOKENS, None, h), obj)
        return obj

    async def create_admin_token(self) -> str:
        token = secrets.token_hex(32)
        await self._save(token, "admin")
        return token

    async def create_apiserver_token(self) -> str:
        """A fresh token for this API server process; earlier ones are revoked."""
        items, _, _ = await self.storage.list(prefix_for(TOKENS))
        for t in items:
            if t.get("type") == "apiserver":
                try:
                    await self.storage.delete(key_for(TOKENS, None, t["metadata"]["name"]))
                except StoreError:
                    pass
        token = secrets.token_hex(32)
        await self._save(token, "apiserver")
        self._cache.clear()
        return token

    async def create_join_token(self, ttl_seconds: float | None = None) -> tuple[str, str]:
        """-> (token "<id>.<secret>", expiration RFC 3339). Default ttl 24 h."""
        tid = "".join(secrets.choice(_ID_CHARS) for _ in range(6))
        secret = "".join(secrets.choice(_ID_CHARS) for _ in range(16))
        token = f"{tid}.{secret}"
        exp = _rfc3339(time.time() + (86400 if ttl_seconds is None else float(ttl_seconds)))
        await self._save(token, "join", tokenID=tid, expiration=exp)
        return token, exp

    async def create_node_token(self, node_name: str) -> str:
        token = secrets.token_hex(32)
        await self._save(token, "node", nodeName=node_name)
        return token

    async def is_kind(self, token: str, kind: str) -> bool:
        try:
            obj = await self.storage.get(key_for(TOKENS, None, hash_token(token)))
        except StoreError:
            return False
        return obj.get("type") == kind

    async def authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        from skiff.controller import satokens
        if satokens.looks_like_jwt(token):     # a ServiceAccount's: never cached (its account may go)
            from skiff.controller.rbac import authenticate_legacy, authenticate_sa
            tok = satokens.decode(await satokens.signing_key(self.storage), token)
            if tok is None:
                return None
            if satokens.is_legacy(tok):     # a token Secret's: good while the Secret holds it
                return await authenticate_legacy(self.storage, tok, token)
            return await authenticate_sa(self.storage, tok)
        h = hash_token(token)
        hit = self._cache.get(h)
        now = time.time()
        if hit is not None:
            user, exp = hit
            if exp is None or exp > now:
                return user
            self._cache.pop(h, None)
            return None
        try:
            obj = await self.storage.get(key_for(TOKENS, None, h))
        except StoreError:
            return None
        kind = obj.get("type")
        exp = None
        if kind == "serviceaccount":    # stored by an earlier skiff; never cached: its account may go
            from skiff.controller.rbac import authenticate_sa, record_claims
            tok = record_claims(obj)
            return None if tok is None else await authenticate_sa(self.storage, tok)
        if kind == "admin":
            user = ADMIN
        elif kind == "apiserver":
            user = APISERVER
        elif kind == "node" and obj.get("nodeName"):
            user = node_user(obj["nodeName"])
        elif kind == "join":
            try:
                exp = _parse_rfc3339(obj["expiration"])
            except (KeyError, ValueError):
                return None
            if exp <= now:
                return None
            user = bootstrap_user(obj.get("tokenID", ""))
        else:
            return None
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[h] = (user, exp)
        return user


# ------------------------------------------------------------------------ authorization

def _deny(user: User, verb: str, resource: str, namespace: str | None, name: str | None,
          subresource: str | None, why: str = "") -> APIError:
    r = RESOURCES.get(resource)
    group = r.group if r else ""
    res = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    msg = f'User "{user.name}" cannot {verb} resource "{res}" in API group "{group}" {scope}'
    if why:
        msg += f": {why}"
    return forbidden(resource, name, msg, group)


def pod_references(pod: dict) -> set[tuple[str, str]]:
    """The ("configmap"|"secret", name) pairs a pod uses: env valueFrom, envFrom, volumes
    (projected sources too) and imagePullSecrets (what the Node authorizer's graph links a pod to)."""
    out: set[tuple[str, str]] = set()
    spec = pod.get("spec") or {}
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(group) or []:
            if not isinstance(c, dict):
                continue
            for e in c.get("env") or []:
                vf = (e or {}).get("valueFrom") or {}
                if isinstance(vf.get("configMapKeyRef"), dict) and vf["configMapKeyRef"].get("name"):
                    out.add(("configmap", vf["configMapKeyRef"]["name"]))
                if isinstance(vf.get("secretKeyRef"), dict) and vf["secretKeyRef"].get("name"):
                    out.add(("secret", vf["secretKeyRef"]["name"]))
            for e in c.get("envFrom") or []:
                e = e or {}
                if isinstance(e.get("configMapRef"), dict) and e["configMapRef"].get("name"):
                    out.add(("configmap", e["configMapRef"]["name"]))
                if isinstance(e.get("secretRef"), dict) and e["secretRef"].get("name"):
                    out.add(("secret", e["secretRef"]["name"]))
    for v in spec.get("volumes") or []:
        v = v or {}
        projected = v.get("projected") if isinstance(v.get("projected"), dict) else {}
        sources = [(v, "secretName")] + [(s, "name") for s in projected.get("sources") or [] if isinstance(s, dict)]
        for src, secret_key in sources:
            if isinstance(src.get("configMap"), dict) and src["configMap"].get("name"):
                out.add(("configmap", src["configMap"]["name"]))
            if isinstance(src.get("secret"), dict) and src["secret"].get(secret_key):
                out.add(("secret", src["secret"][secret_key]))
    for s in spec.get("imagePullSecrets") or []:
        if isinstance(s, dict) and s.get("name"):
            out.add(("secret", s["name"]))
    for v in spec.get("volumes") or []:
        pvc = (v or {}).get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName"):
            out.add(("persistentvolumeclaim", pvc["claimName"]))
    return out


def authorize(user: User, verb: str, resource: str, namespace: str | None = None,
              name: str | None = None, subresource: str | None = None, *,
              obj: dict | None = None, field_node: str | None = None, referenced: bool = False) -> None:
    """Raise 403 unless ``user`` may ``verb`` (get list watch create update patch delete)
    the resource. For a node user on pods: ``obj`` is the existing pod (get/update/patch/
    delete), ``field_node`` the spec.nodeName the list/watch's field selector demands. On
    configmaps and secrets: ``referenced`` says a pod bound to the node uses the object."""
    if user.is_master:
        return
    if not user.is_node:
        if user.rbac is not None:   # the RBAC authorizer (skiff.controller.rbac)
            r = RESOURCES.get(resource)
            if user.rbac.allows(user.name, user.groups, verb, r.group if r else "", resource, namespace, name,
                                subresource):
                return
        raise _deny(user, verb, resource, namespace, name, subresource)
    n = user.node
    if resource == "nodes":
        if verb in ("get", "list", "watch"):
            return
        if verb in ("create", "update", "patch") and name == n:
            return
        why = "" if verb == "delete" else f'node "{n}" is not allowed to modify node "{name}"'
        raise _deny(user, verb, resource, namespace, name, subresource, why)
    if resource == "leases":
        if verb in ("get", "create", "update", "patch") and namespace == NODE_LEASE_NAMESPACE and name == n:
            return
        raise _deny(user, verb, resource, namespace, name, subresource,
                    'can only access node lease with the same name as the requesting node')
    if resource == "pods":
        if verb in ("list", "watch"):
            # every pod, read only: the agent's network policy controller needs the IPs and labels
            # of the pods its policies' peers select on any node (skiff.agent.netpol), as k3s's
            # controller reads them (and the Node authorizer allowed before AuthorizeNodeWithSelectors)
            return
        if verb in ("get", "update", "patch", "delete"):
            if obj is not None and (obj.get("spec") or {}).get("nodeName") == n:
                return
            raise _deny(user, verb, resource, namespace, name, subresource,
                        f'node "{n}" can only access pods bound to it')
        raise _deny(user, verb, resource, namespace, name, subresource)
    if resource == "events":
        if verb in ("create", "patch", "get", "list"):
            return
        raise _deny(user, verb, resource, namespace, name, subresource)
    if resource == "networkpolicies":    # enforced by the agent (skiff.agent.netpol)
        if verb in ("get", "list", "watch") and not subresource:
            return
        raise _deny(user, verb, resource, namespace, name, subresource)
    if resource in ("services", "endpoints", "endpointslices"):
        # what kube-proxy (here: the agent) reads to serve Services on the node
        if verb in ("get", "list", "watch") and not subresource:
            return
        raise _deny(user, verb, resource, namespace, name, subresource)
    if resource == "namespaces":
        if verb in ("get", "list", "watch") and not subresource:   # list/watch: namespaceSelectors
            return
        raise _deny(user, verb, resource, namespace, name, subresource)
    if resource in ("configmaps", "secrets", "persistentvolumeclaims"):
        if verb == "get" and not subresource and referenced:
            return
        raise _deny(user, verb, resource, namespace, name, subresource,
                    f"no relationship found between node '{n}' and this object" if verb == "get" and name else "")
    if resource == "persistentvolumes":
        # get: a volume bound to a claim a pod of the node uses (``referenced``); list/watch, and
        # update/patch of a local-path volume of this node (``obj``): the agent removes such a
        # volume's data and then its finalizer (skiff.agent.claims)
        if verb in ("list", "watch") and not subresource:
            return
        if verb == "get" and not subresource and referenced:
            return
        if verb in ("update", "patch") and not subresource and obj is not None and \
                ((obj.get("metadata") or {}).get("annotations") or {}).get("skiff.dev/local-path-node") == n:
            return
        raise _deny(user, verb, resource, namespace, name, subresource,
                    f"no relationship found between node '{n}' and this object" if name else "")
    raise _deny(user, verb, resource, namespace, name, subresource)
