"""The RBAC authorizer (Kubernetes' plugin/pkg/auth/authorizer/rbac, in skiff's words) and
ServiceAccount tokens (the TokenRequest API).

Users that are neither system:masters nor nodes (today: ServiceAccounts through their tokens)
are authorized by the Roles and ClusterRoles their RoleBindings and ClusterRoleBindings grant.
:class:`Snapshot` is the RBAC objects of the store at one revision; :func:`snapshot` loads it
(reused while the store's revision does not move) and the token authenticator attaches it to
the :class:`~skiff.controller.auth.User`, so that the synchronous ``authorize`` can consult it.

ServiceAccount tokens are random, stored only hashed (sha256) like skiff's other tokens, with
the account's uid and an expiry: a token is good until it expires or its ServiceAccount is
deleted (a new account of the same name has another uid)."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from skiff.controller.storage import StoreError, key_for, prefix_for

__all__ = ["Snapshot", "snapshot", "rule_allows", "subject_applies", "sa_user", "issue_token",
           "authenticate_sa", "authenticate_legacy", "check_escalation", "covers", "SA_PREFIX", "rules_review"]

SA_PREFIX = "system:serviceaccount:"
RBAC_GROUP = "rbac.authorization.k8s.io"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2 ** 32


# ------------------------------------------------------------------ rules

def _verb(rule: dict, verb: str) -> bool:
    return any(v in ("*", verb) for v in rule.get("verbs") or [])


def _group(rule: dict, group: str) -> bool:
    return any(g in ("*", group) for g in rule.get("apiGroups") or [])


def _resource(rule: dict, resource: str, sub: str | None) -> bool:
    combined = f"{resource}/{sub}" if sub else resource
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if sub and r == "*/" + sub:
            return True
    return False


def _name(rule: dict, name: str | None) -> bool:
    names = rule.get("resourceNames") or []
    return not names or (bool(name) and name in names)


def _url(rule: dict, path: str) -> bool:
    for u in rule.get("nonResourceURLs") or []:
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


def rule_allows(rule: dict, verb: str, group: str = "", resource: str = "", sub: str | None = None,
                name: str | None = None, path: str | None = None) -> bool:
    """RuleAllows: a resource request (``resource`` given) or a non-resource one (``path``)."""
    if not isinstance(rule, dict) or not _verb(rule, verb):
        return False
    if path is not None:
        return _url(rule, path)
    return _group(rule, group) and _resource(rule, resource, sub) and _name(rule, name)


def subject_applies(s: dict, user_name: str, groups: Iterable[str], binding_ns: str = "") -> bool:
    """appliesToUser: a User by name, a Group by membership, a ServiceAccount by its user name (its
    namespace defaults to the binding's)."""
    kind = s.get("kind")
    if kind == "User":
        return s.get("name") == user_name
    if kind == "Group":
        return s.get("name") in set(groups)
    if kind == "ServiceAccount":
        return user_name == f"{SA_PREFIX}{s.get('namespace') or binding_ns}:{s.get('name')}"
    return False


@dataclass
class Snapshot:
    """The RBAC objects at one store revision."""
    roles: dict[tuple[str, str], dict] = field(default_factory=dict)
    clusterroles: dict[str, dict] = field(default_factory=dict)
    rolebindings: list[dict] = field(default_factory=list)
    clusterrolebindings: list[dict] = field(default_factory=list)

    def _role_rules(self, ref: dict, ns: str) -> list[dict]:
        if ref.get("kind") == "ClusterRole":
            role = self.clusterroles.get(ref.get("name") or "")
        elif ref.get("kind") == "Role":
            role = self.roles.get((ns, ref.get("name") or ""))
        else:
            role = None
        return [r for r in (role or {}).get("rules") or [] if isinstance(r, dict)]

    def rules_for(self, user_name: str, groups: Iterable[str], namespace: str | None) -> list[dict]:
        """Every rule that applies to the user in ``namespace`` (cluster-wide ones only when None)."""
        groups = tuple(groups)
        out: list[dict] = []
        for b in self.clusterrolebindings:
            if any(isinstance(s, dict) and subject_applies(s, user_name, groups) for s in b.get("subjects") or []):
                out.extend(self._role_rules(b.get("roleRef") or {}, ""))
        if namespace:
            for b in self.rolebindings:
                bns = (b.get("metadata") or {}).get("namespace") or ""
                if bns != namespace:
                    continue
                if any(isinstance(s, dict) and subject_applies(s, user_name, groups, bns)
                       for s in b.get("subjects") or []):
                    out.extend(self._role_rules(b.get("roleRef") or {}, bns))
        return out

    def allows(self, user_name: str, groups: Iterable[str], verb: str, group: str = "", resource: str = "",
               namespace: str | None = None, name: str | None = None, sub: str | None = None,
               path: str | None = None) -> bool:
        return any(rule_allows(r, verb, group, resource, sub, name, path)
                   for r in self.rules_for(user_name, groups, namespace))


async def snapshot(storage) -> Snapshot:
    """The RBAC objects of ``storage`` now (reused while its revision stays the same)."""
    rev = await storage.current_revision()
    hit = getattr(storage, "_rbac_snapshot", None)
    if hit is not None and hit[0] == rev:
        return hit[1]
    snap = Snapshot()
    for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
        items, _, _ = await storage.list(prefix_for(plural))
        for o in items:
            md = o.get("metadata") or {}
            if plural == "roles":
                snap.roles[(md.get("namespace") or "", md.get("name") or "")] = o
            elif plural == "clusterroles":
                snap.clusterroles[md.get("name") or ""] = o
            else:
                getattr(snap, plural).append(o)
    storage._rbac_snapshot = (rev, snap)
    return snap


# ------------------------------------------------------------------ escalation

def covers(owned: list[dict], wanted: dict) -> bool:
    """Whether the rules ``owned`` grant everything ``wanted`` does (validation.Covers, breaking
    the wanted rule down into single verb/group/resource/name/URL requests)."""
    verbs = wanted.get("verbs") or []
    if wanted.get("nonResourceURLs"):
        def url_ok(r: dict, v: str, u: str) -> bool:
            rv = r.get("verbs") or []
            return ("*" in rv or (v in rv and v != "*")) and any(
                x == "*" or x == u or (x.endswith("*") and u.startswith(x[:-1])) for x in r.get("nonResourceURLs") or [])
        return all(any(isinstance(r, dict) and url_ok(r, v, u) for r in owned)
                   for v in verbs for u in wanted["nonResourceURLs"])
    names = wanted.get("resourceNames") or [None]
    for v in verbs:
        for g in wanted.get("apiGroups") or []:
            for res in wanted.get("resources") or []:
                base, _, sub = res.partition("/")
                for n in names:
                    if not any(_covers_one(r, v, g, base, sub or None, res, n) for r in owned):
                        return False
    return True


def _covers_one(r: dict, verb: str, group: str, base: str, sub: str | None, res: str, name: str | None) -> bool:
    if not isinstance(r, dict) or not (("*" in (r.get("verbs") or [])) or verb in (r.get("verbs") or [])):
        return False
    if verb == "*" and "*" not in (r.get("verbs") or []):
        return False
    groups = r.get("apiGroups") or []
    if not ("*" in groups or group in groups):
        return False
    resources = r.get("resources") or []
    if not ("*" in resources or res in resources or (sub and "*/" + sub in resources)):
        return False
    if "*" in (base,) and "*" not in resources:
        return False
    rn = r.get("resourceNames") or []
    return not rn or (name is not None and name in rn)


def check_escalation(user, snap: Snapshot, rules: list[dict], namespace: str | None) -> list[dict]:
    """The rules of ``rules`` the user does not hold in ``namespace`` (ConfirmNoEscalation)."""
    owned = snap.rules_for(user.name, user.groups, namespace)
    return [r for r in rules if isinstance(r, dict) and not covers(owned, r)]


def _rule_string(r: dict) -> str:
    """rbacv1helpers.CompactString: {APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                       ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if r.get(key):
            parts.append(f"{label}:[" + " ".join(f'"{x}"' for x in r[key]) + "]")
    return "{" + ", ".join(parts) + "}"


def escalation_message(user, kind: str, name: str, namespace: str | None, missing: list[dict]) -> str:
    """The Forbidden message kube-apiserver gives for a role a user may not write."""
    what = f'{kind.lower()}s.{RBAC_GROUP} "{name}" is forbidden: '
    return (what + f'user "{user.name}" (groups={_go_list(user.groups)}) is attempting to grant RBAC permissions '
            f'not currently held:\n' + "\n".join(_rule_string(r) for r in missing))


def _go_list(xs: Iterable[str]) -> str:
    return "[" + " ".join(f'"{x}"' for x in xs) + "]"


# ------------------------------------------------------------------ rules review

def rules_review(snap: Snapshot, user, namespace: str) -> dict:
    """A SelfSubjectRulesReview's status: the resource and non-resource rules in ``namespace``."""
    res, nonres = [], []
    for r in snap.rules_for(user.name, user.groups, namespace):
        if r.get("nonResourceURLs"):
            nonres.append({"verbs": list(r.get("verbs") or []), "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            item = {"verbs": list(r.get("verbs") or []), "apiGroups": list(r.get("apiGroups") or []),
                    "resources": list(r.get("resources") or [])}
            if r.get("resourceNames"):
                item["resourceNames"] = list(r["resourceNames"])
            res.append(item)
    return {"resourceRules": res, "nonResourceRules": nonres, "incomplete": False}


# ------------------------------------------------------------------ tokens

def sa_user(namespace: str, name: str, rbac: Any = None):
    from skiff.controller.auth import User
    return User(f"{SA_PREFIX}{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
                rbac=rbac)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


_BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
# the API server's own audience: a token made for another (a projected token for Vault, say)
# is refused here, as kube-apiserver's authenticator does
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
# a token bound to a pod stays valid this long after the pod's deletion began (Kubernetes' validator)
BOUND_POD_GRACE = 60.0


async def _bound_object(storage, namespace: str, sa_name: str, ref: Any) -> dict | None:
    """The ``boundObjectRef`` of a TokenRequest checked as kube-apiserver's token REST does:
    a Pod (running as that account), a Secret of the namespace or a Node that exists, with the
    given uid. -> {kind, apiVersion, name, uid} for the token's record and the answer, or None."""
    from skiff.api import errors as E
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise E.bad_request("spec.boundObjectRef must be an object")
    kind, name, uid = ref.get("kind") or "", ref.get("name") or "", ref.get("uid") or ""
    api_version = ref.get("apiVersion") or "v1"
    resource = _BINDABLE.get(kind) if api_version == "v1" else None
    if resource is None:
        group, _, version = api_version.rpartition("/")
        raise E.bad_request(f"cannot bind token for object of type {group}/{version}, Kind={kind}")
    try:
        obj = await storage.get(key_for(resource, None if resource == "nodes" else namespace, name))
    except StoreError:
        raise E.not_found(resource, name) from None
    md = obj.get("metadata") or {}
    if uid and uid != md.get("uid"):
        raise E.APIError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": '
                         f"the UID in the bound object reference ({uid}) does not match the UID in record. "
                         f"The object might have been deleted and then recreated", name=name, kind=kind)
    if resource == "pods" and (obj.get("spec") or {}).get("serviceAccountName", "default") != sa_name:
        raise E.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with different '
                            f"serviceaccount name.")
    return {"kind": kind, "apiVersion": "v1", "name": name, "uid": md.get("uid")}


async def issue_token(storage, namespace: str, name: str, body: Any) -> dict:
    """POST serviceaccounts/NAME/token: a TokenRequest answered with its token (a JWT, nothing
    stored). With a ``boundObjectRef`` (a Pod, Secret or Node) the token dies with that object."""
    from skiff.api import errors as E
    spec = (body.get("spec") if isinstance(body, dict) else None) or {}
    if not isinstance(spec, dict):
        raise E.bad_request("the body of a serviceaccounts/token request must be a TokenRequest")
    try:
        sa = await storage.get(key_for("serviceaccounts", namespace, name))
    except StoreError:
        raise E.not_found("serviceaccounts", name) from None
    exp_s = spec.get("expirationSeconds")
    exp_s = DEFAULT_EXPIRATION if exp_s is None else exp_s
    if not isinstance(exp_s, int) or isinstance(exp_s, bool):
        raise E.bad_request("spec.expirationSeconds must be an integer")
    causes = []
    if exp_s < MIN_EXPIRATION:
        causes.append({"field": "spec.expirationSeconds", "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {exp_s}: may not specify a duration less than 10 minutes"})
    elif exp_s > MAX_EXPIRATION:
        causes.append({"field": "spec.expirationSeconds", "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {exp_s}: may not specify a duration larger than 2^32 seconds"})
    if causes:
        raise E.invalid("TokenRequest", name, causes, "tokenrequests", "authentication.k8s.io")
    bound = await _bound_object(storage, namespace, name, spec.get("boundObjectRef"))
    from skiff.controller import satokens
    now = int(time.time())
    audiences = spec.get("audiences") or [API_AUDIENCE]
    token = satokens.encode(await satokens.signing_key(storage),
                            satokens.claims(namespace, sa, audiences, now, now + exp_s, bound))
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": _rfc3339(now)},
            "spec": {"audiences": audiences, "expirationSeconds": exp_s, "boundObjectRef": bound},
            "status": {"token": token, "expirationTimestamp": _rfc3339(now + exp_s)}}


def _parse_time(s: str) -> float | None:
    try:
        return time.mktime(time.strptime(s or "", "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return None


def record_claims(obj: dict) -> dict | None:
    """The claims of a ServiceAccount token stored by an earlier skiff (a hashed record)."""
    exp = _parse_time(obj.get("expiration") or "")
    if exp is None:
        return None
    k8s: dict = {"namespace": obj.get("namespace") or "",
                 "serviceaccount": {"name": obj.get("serviceAccount") or "", "uid": obj.get("uid")}}
    return {"exp": exp, "aud": obj.get("audiences", [API_AUDIENCE]), "kubernetes.io": k8s}


async def authenticate_sa(storage, tok: dict):
    """The User of a ServiceAccount token's claims (skiff.controller.satokens), or None when it
    expired, was made for another audience, its account is gone (or replaced), or the object it
    is bound to is gone (a pod: a minute after its deletion began)."""
    exp = tok.get("exp")
    if not isinstance(exp, (int, float)) or exp <= time.time():
        return None
    if API_AUDIENCE not in (tok.get("aud") or ()):
        return None
    k8s = tok.get("kubernetes.io") if isinstance(tok.get("kubernetes.io"), dict) else {}
    ns = k8s.get("namespace") or ""
    who = k8s.get("serviceaccount") or {}
    name = who.get("name") or ""
    try:
        sa = await storage.get(key_for("serviceaccounts", ns, name))
    except StoreError:
        return None
    if (sa.get("metadata") or {}).get("uid") != who.get("uid") or (sa.get("metadata") or {}).get("deletionTimestamp"):
        return None
    for kind, resource in _BINDABLE.items():
        bound = k8s.get(kind.lower())
        if not isinstance(bound, dict):
            continue
        try:
            held = await storage.get(key_for(resource, None if resource == "nodes" else ns, bound.get("name") or ""))
        except StoreError:
            return None
        hmd = held.get("metadata") or {}
        if hmd.get("uid") != bound.get("uid"):
            return None
        gone_at = _parse_time(hmd["deletionTimestamp"]) if hmd.get("deletionTimestamp") else None
        if gone_at is not None and gone_at < time.time() - BOUND_POD_GRACE:
            return None
    return sa_user(ns, name, await snapshot(storage))


SA_TOKEN_SECRET = "kubernetes.io/service-account-token"
# a Secret the legacy token clean-up marked: its token is refused (Kubernetes' label)
LEGACY_INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since"


async def authenticate_legacy(storage, tok: dict, token: str):
    """The User of a legacy token's claims (skiff.controller.satokens.legacy_claims), looked up
    on every request as kube-apiserver's legacy validator does: None unless its Secret exists
    (not being deleted, not marked invalid) and still holds this very token, and its account
    exists with the uid in the token."""
    import base64
    import hmac
    from skiff.controller.satokens import LEGACY_PREFIX
    ns, secret_name, name, uid = (tok.get(LEGACY_PREFIX + k) for k in (
        "namespace", "secret.name", "service-account.name", "service-account.uid"))
    if not all(isinstance(v, str) and v for v in (ns, secret_name, name, uid)):
        return None
    if tok.get("sub") != f"{SA_PREFIX}{ns}:{name}":
        return None
    try:
        secret = await storage.get(key_for("secrets", ns, secret_name))
        sa = await storage.get(key_for("serviceaccounts", ns, name))
    except StoreError:
        return None
    smd = secret.get("metadata") or {}
    held = (secret.get("data") or {}).get("token")
    try:
        held = base64.b64decode(held, validate=True) if isinstance(held, str) else b""
    except ValueError:
        return None
    if secret.get("type") != SA_TOKEN_SECRET or smd.get("deletionTimestamp") \
            or LEGACY_INVALID_SINCE in (smd.get("labels") or {}) or not hmac.compare_digest(held, token.encode()):
        return None
    md = sa.get("metadata") or {}
    if md.get("uid") != uid or md.get("deletionTimestamp"):
        return None
    return sa_user(ns, name, await snapshot(storage))


async def token_request(registry, namespace: str, name: str, body: Any, user) -> dict:
    """create serviceaccounts/token, authorized as such. A node (the agent writing a pod's
    projected token) may ask only for a token bound to a pod scheduled to it that runs as that
    account: Kubernetes' Node authorizer and NodeRestriction admission."""
    from skiff.controller.auth import authorize
    if getattr(user, "is_node", False):
        await _node_may_request(registry.storage, user.node, namespace, name, body)
    else:
        authorize(user, "create", "serviceaccounts", namespace, name, "token")
    return await issue_token(registry.storage, namespace, name, body)


async def _node_may_request(storage, node: str, namespace: str, name: str, body: Any) -> None:
    from skiff.api.errors import forbidden
    ref = ((body.get("spec") if isinstance(body, dict) else None) or {}).get("boundObjectRef")
    what = f'User "system:node:{node}" cannot create resource "serviceaccounts/token" in API group "" ' \
           f'in the namespace "{namespace}"'
    if not isinstance(ref, dict) or ref.get("kind") != "Pod":
        raise forbidden("serviceaccounts", name, "node requested token not bound to a pod")
    if not ref.get("uid"):
        raise forbidden("serviceaccounts", name, "node requested token with a pod binding without a uid")
    try:
        pod = await storage.get(key_for("pods", namespace, ref.get("name") or ""))
    except StoreError:
        raise forbidden("serviceaccounts", name, f'pods "{ref.get("name") or ""}" not found') from None
    spec = pod.get("spec") or {}
    if (pod.get("metadata") or {}).get("uid") != ref["uid"]:
        raise forbidden("serviceaccounts", name, f"the UID in the bound object reference ({ref['uid']}) does not "
                        f"match the UID in record. The object might have been deleted and then recreated")
    if spec.get("nodeName") != node:
        raise forbidden("serviceaccounts", name, "node requested token bound to a pod scheduled on a different node")
    if spec.get("serviceAccountName", "default") != name:
        raise forbidden("serviceaccounts", name, f"{what}: no relationship found between node '{node}' "
                        f"and this object")


def self_rules_review(user, spec: dict) -> dict:
    """A SelfSubjectRulesReview answered: a master may do everything; others what RBAC grants."""
    ns = spec.get("namespace") or ""
    if user.is_master:
        status = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
    elif user.rbac is not None:
        status = rules_review(user.rbac, user, ns)
    else:
        status = {"resourceRules": [], "nonResourceRules": [], "incomplete": True,
                  "evaluationError": "skiff: this identity is authorized by the Node authorizer, not RBAC"}
    return {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": {"namespace": ns}, "status": status}


def confirm_no_escalation(user, resource: str, obj: dict) -> None:
    """Kubernetes' escalation prevention for a user that is not a master: a Role or ClusterRole
    only with rules the user holds (or the ``escalate`` verb on it), a binding only to a role
    whose rules the user holds (or the ``bind`` verb on that role). Raises 403."""
    from skiff.api.errors import APIError
    snap: Snapshot | None = user.rbac
    if snap is None:
        return      # the authorizer refused already (nodes never write RBAC objects)
    md = obj.get("metadata") or {}
    ns, name = md.get("namespace") or None, md.get("name") or ""
    if resource in ("roles", "clusterroles"):
        if snap.allows(user.name, user.groups, "escalate", RBAC_GROUP, resource, ns, name):
            return
        rules = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
    elif resource in ("rolebindings", "clusterrolebindings"):
        ref = obj.get("roleRef") or {}
        ref_res = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        if snap.allows(user.name, user.groups, "bind", RBAC_GROUP, ref_res, ns if ref_res == "roles" else ns,
                       ref.get("name")):
            return
        exists = snap.clusterroles.get(ref.get("name") or "") if ref_res == "clusterroles" else \
            snap.roles.get((ns or "", ref.get("name") or ""))
        if exists is None:      # GetRoleReferenceRules' error, as the Forbidden's reason
            raise APIError(403, "Forbidden", f'{resource}.{RBAC_GROUP} "{name}" is forbidden: {ref_res}.{RBAC_GROUP} '
                                             f'"{ref.get("name") or ""}" not found', name=name, kind=resource,
                           group=RBAC_GROUP)
        rules = snap._role_rules(ref, ns or "")
    else:
        return
    missing = check_escalation(user, snap, rules, ns)
    if missing:
        raise APIError(403, "Forbidden", escalation_message(user, resource[:-1], name, ns, missing), name=name,
                       kind=resource, group=RBAC_GROUP)


async def impersonate(storage, user, headers):
    """The identity of a request with Impersonate-User / Impersonate-Group headers (kubectl --as,
    --as-group): a master may act as anyone; others need the ``impersonate`` verb on users,
    groups or serviceaccounts (as Kubernetes' impersonation filter). Extra fields are not read."""
    from skiff.api.errors import forbidden
    from skiff.controller.auth import User
    name = headers.get("Impersonate-User") or ""
    groups = headers.getall("Impersonate-Group", []) if hasattr(headers, "getall") else []
    if not name:
        raise forbidden("users", None, "requested " + "".join(
            f"{{Group {g!r}}}" for g in groups) + " without impersonating a user")
    snap = await snapshot(storage)
    if not user.is_master:
        base = user if user.rbac is not None else User(user.name, user.groups, user.node, snap)
        checks = []
        if name.startswith(SA_PREFIX) and name.count(":") == 3:
            sa_ns, sa_name = name[len(SA_PREFIX):].split(":")
            checks.append(("serviceaccounts", sa_ns, sa_name))
        else:
            checks.append(("users", None, name))
        checks += [("groups", None, g) for g in groups]
        for res, ns, n in checks:
            if not snap.allows(base.name, base.groups, "impersonate", "", res, ns, n):
                scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                raise forbidden(res, n, f'User "{user.name}" cannot impersonate resource "{res}" in API group "" '
                                        f"{scope}")
    if name.startswith(SA_PREFIX) and name.count(":") == 3 and not groups:
        sa_ns, sa_name = name[len(SA_PREFIX):].split(":")
        return sa_user(sa_ns, sa_name, snap)
    if name == "system:anonymous":
        groups = list(groups) or ["system:unauthenticated"]
    elif "system:authenticated" not in groups:
        groups = list(groups) + ["system:authenticated"]
    return User(name, tuple(groups), None, snap)
