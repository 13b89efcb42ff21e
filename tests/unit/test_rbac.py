"""RBAC: validation and defaulting of the four kinds (kube-apiserver's messages), the authorizer's
rule matching and bindings, escalation checks, aggregation, tokens, and the tables."""
from __future__ import annotations

import pytest

from skiff.api.tables import CELLS, columns
from skiff.api.validation import ValidationError, validate, validate_update
from skiff.controller.admission import admit
from skiff.controller.auth import User, authorize
from skiff.api.errors import APIError
from skiff.controller.rbac import Snapshot, covers, rule_allows, confirm_no_escalation, sa_user, rules_review
from skiff.controller.rbac_bootstrap import BOOTSTRAP_CLUSTER_ROLES, aggregated_rules

G = "rbac.authorization.k8s.io"
AV = f"{G}/v1"


def _msgs(obj) -> list[str]:
    with pytest.raises(ValidationError) as e:
        validate(obj)
    return [f"{c['field']}: {c['message']}" for c in e.value.causes]


def test_rules_need_verbs_groups_resources_and_urls_only_in_clusterroles():
    role = {"apiVersion": AV, "kind": "Role", "metadata": {"name": "r", "namespace": "a"},
            "rules": [{"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]},
                      {"verbs": ["get"], "apiGroups": [""]}]}
    assert _msgs(role) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        'rules[1].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to non-resource URLs',
        "rules[2].resources: Required value: resource rules must supply at least one resource"]
    cr = {"apiVersion": AV, "kind": "ClusterRole", "metadata": {"name": "c"},
          "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/y"], "resources": ["pods"]}]}
    assert _msgs(cr) == ['rules[1].nonResourceURLs: Invalid value: []string{"/y"}: rules cannot apply to both '
                         'regular resources and non-resource URLs']
    cr = {"apiVersion": AV, "kind": "ClusterRole", "metadata": {"name": "c"}, "aggregationRule": {}}
    assert _msgs(cr) == ["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector "
                         "required if aggregationRule is non-nil"]


def test_names_are_path_segments():
    for name, why in (("a/b", "may not contain '/'"), ("..", "may not be '..'"), ("a%b", "may not contain '%'")):
        assert _msgs({"apiVersion": AV, "kind": "ClusterRole", "metadata": {"name": name}}) == \
            [f'metadata.name: Invalid value: "{name}": {why}']
    validate({"apiVersion": AV, "kind": "ClusterRole", "metadata": {"name": "system:Auth_x"}})   # colons, capitals


def test_bindings_roleref_and_subjects():
    rb = {"apiVersion": AV, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
          "roleRef": {"apiGroup": "x", "kind": "Thing"},
          "subjects": [{"kind": "ServiceAccount", "name": "s", "apiGroup": G}, {"kind": "Robot", "name": "r"},
                       {"kind": "User", "name": ""}]}
    assert _msgs(rb) == [
        'roleRef.apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: ""',
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        "subjects[2].name: Required value",
        'subjects[2].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"']   # undefaulted
    crb = {"apiVersion": AV, "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
           "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "s"}]}
    out, _ = admit({**crb, "roleRef": {"kind": "ClusterRole", "name": "r"},     # defaulting: the apiGroups
                    "subjects": [{"kind": "ServiceAccount", "name": "s", "namespace": "n"}]})
    assert out["roleRef"]["apiGroup"] == G and out["subjects"][0]["apiGroup"] == ""
    with pytest.raises(ValidationError) as e:
        admit(crb)
    assert [c["message"] for c in e.value.causes] == ['Unsupported value: "Role": supported values: "ClusterRole"',
                                                       "Required value"]
    assert [c["field"] for c in e.value.causes] == ["roleRef.kind", "subjects[0].namespace"]
    ok, _ = admit({**crb, "roleRef": {"kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "User", "name": "alice"}]})
    assert ok["subjects"] == [{"kind": "User", "name": "alice", "apiGroup": G}]


def test_roleref_is_immutable():
    cur = {"apiVersion": AV, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
           "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "edit"}}
    new = {**cur, "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"}}
    with pytest.raises(ValidationError) as e:
        validate_update(cur, new)
    assert str(e.value.causes[0]["message"]) == ('Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
                                                 'Kind:"ClusterRole", Name:"view"}: cannot change roleRef')
    validate_update(cur, {**cur, "subjects": [{"kind": "User", "name": "x", "apiGroup": G}]})


def test_rule_matching():
    r = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"], "resourceNames": ["web"]}
    assert rule_allows(r, "get", "", "pods", None, "web")
    assert not rule_allows(r, "list", "", "pods", None, None)      # resourceNames: only named requests
    assert rule_allows(r, "get", "", "pods", "log", "web")
    assert not rule_allows(r, "get", "", "pods", "exec", "web")
    assert not rule_allows(r, "get", "apps", "pods", None, "web")
    assert not rule_allows(r, "delete", "", "pods", None, "web")
    star = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/scale"]}
    assert rule_allows(star, "update", "apps", "deployments", "scale") and not rule_allows(star, "get", "apps",
                                                                                           "deployments")
    urls = {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}
    assert rule_allows(urls, "get", path="/healthz") and rule_allows(urls, "get", path="/apis/apps")
    assert not rule_allows(urls, "get", path="/api") and not rule_allows(urls, "post", path="/healthz")


def _snap() -> Snapshot:
    s = Snapshot()
    s.roles[("a", "reader")] = {"rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}
    s.clusterroles["secrets"] = {"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}
    s.rolebindings.append({"metadata": {"name": "b", "namespace": "a"}, "roleRef": {"kind": "Role", "name": "reader"},
                           "subjects": [{"kind": "ServiceAccount", "name": "sa"}]})
    s.rolebindings.append({"metadata": {"name": "c", "namespace": "b"},
                           "roleRef": {"kind": "ClusterRole", "name": "secrets"},
                           "subjects": [{"kind": "Group", "name": "system:serviceaccounts:a"}]})
    return s


def test_authorizer_bindings_namespaces_and_messages():
    user = sa_user("a", "sa", _snap())
    authorize(user, "list", "pods", "a")
    authorize(user, "get", "secrets", "b", "s1")         # a ClusterRole through a RoleBinding in b, by group
    with pytest.raises(APIError) as e:
        authorize(user, "list", "secrets", "a")
    assert e.value.code == 403 and e.value.status["message"] == (
        'secrets is forbidden: User "system:serviceaccount:a:sa" cannot list resource "secrets" in API group "" '
        'in the namespace "a"')
    with pytest.raises(APIError) as e:
        authorize(user, "list", "pods", "b")
    with pytest.raises(APIError):
        authorize(user, "list", "pods", None)            # a RoleBinding grants nothing cluster-wide
    other = sa_user("a", "other", _snap())
    with pytest.raises(APIError):
        authorize(other, "list", "pods", "a")
    assert User("x", ()).rbac is None
    with pytest.raises(APIError):                        # no RBAC snapshot: nothing allowed
        authorize(User("x", ("system:authenticated",)), "get", "pods", "a")
    rr = rules_review(_snap(), user, "a")
    assert rr["resourceRules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]


def test_escalation():
    owned = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]
    assert covers(owned, {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["x"]})
    assert not covers(owned, {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]})
    assert not covers(owned, {"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]})
    assert not covers(owned, {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]})
    assert covers([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  {"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*"]})
    user = sa_user("a", "sa", _snap())
    role = {"metadata": {"name": "x", "namespace": "a"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "secrets"]}]}
    with pytest.raises(APIError) as e:
        confirm_no_escalation(user, "roles", role)
    assert e.value.status["message"] == (
        'roles.rbac.authorization.k8s.io "x" is forbidden: user "system:serviceaccount:a:sa" (groups=['
        '"system:serviceaccounts" "system:serviceaccounts:a" "system:authenticated"]) is attempting to grant RBAC '
        'permissions not currently held:\n{APIGroups:[""], Resources:["pods" "secrets"], Verbs:["get"]}')
    confirm_no_escalation(user, "roles", {**role, "rules": role["rules"][:0] + [
        {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]})
    binding = {"metadata": {"name": "y", "namespace": "a"}, "roleRef": {"kind": "ClusterRole", "name": "secrets"}}
    with pytest.raises(APIError):
        confirm_no_escalation(user, "rolebindings", binding)
    with pytest.raises(APIError) as e:
        confirm_no_escalation(user, "rolebindings", {**binding, "roleRef": {"kind": "Role", "name": "nope"}})
    assert e.value.status["message"] == ('rolebindings.rbac.authorization.k8s.io "y" is forbidden: '
                                         'roles.rbac.authorization.k8s.io "nope" not found')
    confirm_no_escalation(user, "rolebindings", {**binding, "roleRef": {"kind": "Role", "name": "reader"}})
    snap = _snap()      # the bind verb on that role lets it through
    snap.roles[("a", "reader")]["rules"].append({"verbs": ["bind"], "apiGroups": [G], "resources": ["clusterroles"],
                                                 "resourceNames": ["secrets"]})
    confirm_no_escalation(sa_user("a", "sa", snap), "rolebindings", binding)


def test_aggregation_and_bootstrap_roles():
    roles = [{"metadata": {"name": n, "labels": l}, "rules": r} for n, l, r in (
        ("b", {"agg": "x"}, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
        ("a", {"agg": "x"}, [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]},
                             {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
        ("c", {"agg": "y"}, [{"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]}]))]
    agg = {"metadata": {"name": "agg", "labels": {"agg": "x"}},
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "x"}}]}}
    assert aggregated_rules(agg, roles + [agg]) == [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]},
                                                    {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]
    by_name = {r["metadata"]["name"]: r for r in BOOTSTRAP_CLUSTER_ROLES}
    for r in BOOTSTRAP_CLUSTER_ROLES:
        validate(r)
    # view is aggregated into edit, edit into admin, as Kubernetes labels them
    assert by_name["view"]["metadata"]["labels"][f"{G}/aggregate-to-edit"] == "true"
    assert by_name["edit"]["metadata"]["labels"][f"{G}/aggregate-to-admin"] == "true"
    view = aggregated_rules(by_name["view"], BOOTSTRAP_CLUSTER_ROLES)
    admin = aggregated_rules(by_name["admin"], BOOTSTRAP_CLUSTER_ROLES)
    assert any("pods" in r["resources"] for r in view) and not any("secrets" in r["resources"] for r in view)
    assert any("roles" in r.get("resources", []) for r in admin)


def test_tables():
    assert [c["name"] for c in columns("rolebindings")] == ["Name", "Role", "Age", "Users", "Groups",
                                                            "ServiceAccounts"]
    assert [c["priority"] for c in columns("clusterrolebindings")] == [0, 0, 0, 1, 1, 1]
    assert [c["name"] for c in columns("roles")] == ["Name", "Created At"]
    b = {"metadata": {"name": "b", "creationTimestamp": "2026-01-01T00:00:00Z"},
         "roleRef": {"kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "User", "name": "u1"}, {"kind": "User", "name": "u2"}, {"kind": "Group", "name": "g"},
                      {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]}
    cells = CELLS["rolebindings"](b, None)
    assert cells[0:2] == ["b", "ClusterRole/view"] and cells[3:] == ["u1, u2", "g", "n/s"]


class _Store:
    """A dict store with what the token code calls (the real one is skiff.controller.storage)."""

    def __init__(self):
        from skiff.controller.storage import StoreError
        self.d, self.rev, self.err = {}, 1, StoreError

    async def get(self, key):
        if key not in self.d:
            raise self.err("NotFound", 404, key)
        return self.d[key]

    async def create(self, key, obj):
        self.d[key] = obj
        self.rev += 1
        return obj

    async def delete(self, key, expect_rv=None):
        self.rev += 1
        return self.d.pop(key)

    async def current_revision(self):
        return self.rev

    async def list(self, prefix, limit=None, *a, **kw):
        return [v for k, v in self.d.items() if k.startswith(prefix)], None, self.rev


@pytest.mark.asyncio
async def test_tokens_expire_and_die_with_their_serviceaccount(monkeypatch):
    import time as _time
    from skiff.controller.auth import TokenManager
    from skiff.controller.rbac import issue_token
    st = _Store()
    await st.create("/serviceaccounts/a/sa", {"metadata": {"name": "sa", "namespace": "a", "uid": "u1"}})
    tr = await issue_token(st, "a", "sa", {"spec": {"expirationSeconds": 600}})
    assert tr["kind"] == "TokenRequest" and tr["spec"]["expirationSeconds"] == 600
    token = tr["status"]["token"]
    assert not any(token in str(v) for v in st.d.values())          # nothing stored: a signed JWT
    import base64
    import json
    head, body, _sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert (claims["sub"], claims["iss"], claims["aud"], claims["exp"] - claims["iat"]) == (
        "system:serviceaccount:a:sa", "https://kubernetes.default.svc.cluster.local",
        ["https://kubernetes.default.svc.cluster.local"], 600)
    assert claims["kubernetes.io"] == {"namespace": "a", "serviceaccount": {"name": "sa", "uid": "u1"}}
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps({**claims, "sub": "x"}).encode()).decode().rstrip("="),
                       _sig])
    assert await TokenManager(st).authenticate(forged) is None      # the signature covers the claims
    tm = TokenManager(st)
    user = await tm.authenticate(token)
    assert user.name == "system:serviceaccount:a:sa" and user.groups == (
        "system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated")
    real = _time.time
    monkeypatch.setattr(_time, "time", lambda: real() + 601)
    assert await tm.authenticate(token) is None                     # expired
    monkeypatch.setattr(_time, "time", real)
    token = (await issue_token(st, "a", "sa", {}))["status"]["token"]
    assert await tm.authenticate(token) is not None
    await st.delete("/serviceaccounts/a/sa")
    await st.create("/serviceaccounts/a/sa", {"metadata": {"name": "sa", "namespace": "a", "uid": "u2"}})
    assert await tm.authenticate(token) is None                     # another account of the same name
    with pytest.raises(APIError) as e:
        await issue_token(st, "a", "sa", {"spec": {"expirationSeconds": 60}})
    assert e.value.status["message"] == ('TokenRequest "sa" is invalid: spec.expirationSeconds: Invalid value: 60: '
                                         'may not specify a duration less than 10 minutes')
