"""ServiceAccounts: the kind (schema, table) and the controller that gives every active namespace
its ``default`` ServiceAccount, against a real ControlPlane in-process."""
from __future__ import annotations

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.api.tables import cells
from skiff.controller.controlplane import ControlPlane
from skiff.controller.namespace import NamespaceController
from skiff.controller.serviceaccounts import ServiceAccountsController
from skiff.controller.workloads.shared import SharedInformers

from tests.unit.test_controllers_live import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def cp(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    shared = SharedInformers()

    async def serviceaccounts(client):
        await ServiceAccountsController(client, shared=shared).run()

    async def namespace(client):
        await NamespaceController(client).run()
    cp.add_controller(serviceaccounts)
    cp.add_controller(namespace)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


async def _get(c, ns, name):
    try:
        return await c.get("serviceaccounts", name, ns)
    except APIError as e:
        if e.code == 404:
            return None
        raise


async def test_every_namespace_gets_a_default_service_account_back_when_deleted(cp):
    c = cp.local_client()
    assert await wait_for(lambda: _get(c, "default", "default"))
    await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    sa = await wait_for(lambda: _get(c, "team-a", "default"))
    await c.delete("serviceaccounts", "default", "team-a")

    async def again():
        cur = await _get(c, "team-a", "default")
        return cur if cur and cur["metadata"]["uid"] != sa["metadata"]["uid"] else None
    assert await wait_for(again)


async def test_a_users_service_account_is_stored_and_validated(cp):
    c = cp.local_client()
    sa = await c.create("serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"},
        "imagePullSecrets": [{"name": "regcred"}], "secrets": [{"name": "a"}, {"name": "b"}],
        "automountServiceAccountToken": False}, "default")
    assert sa["imagePullSecrets"] == [{"name": "regcred"}]
    assert cells("serviceaccounts", sa)[:2] == ["app", 2]
    with pytest.raises(APIError) as e:
        await c.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "Bad_Name"}}, "default")
    assert e.value.code == 422
    with pytest.raises(APIError) as e:
        await c.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "x"}, "tokens": []}, "default")
    assert e.value.code in (400, 422)


# -- pods: the ServiceAccount admission ------------------------------------------------------------

def _pod(name: str = "web", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def _sa(c, name: str, ns: str = "default", **body) -> dict:
    return await c.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                              "metadata": {"name": name}, **body}, ns)


async def test_a_pod_runs_as_default_unless_it_names_an_account(cp):
    c = cp.local_client()
    p = await c.create("pods", _pod(), "default")
    assert (p["spec"]["serviceAccountName"], p["spec"]["serviceAccount"]) == ("default", "default")
    await _sa(c, "builder")
    p = await c.create("pods", _pod("named", serviceAccountName="builder"), "default")
    assert (p["spec"]["serviceAccountName"], p["spec"]["serviceAccount"]) == ("builder", "builder")
    # the deprecated field alone names it too; the name wins over it when both are given
    p = await c.create("pods", _pod("old", serviceAccount="builder"), "default")
    assert (p["spec"]["serviceAccountName"], p["spec"]["serviceAccount"]) == ("builder", "builder")
    p = await c.create("pods", _pod("both", serviceAccountName="builder", serviceAccount="other"), "default")
    assert (p["spec"]["serviceAccountName"], p["spec"]["serviceAccount"]) == ("builder", "builder")


async def test_a_pod_naming_a_missing_account_is_forbidden_as_in_kubernetes(cp):
    c = cp.local_client()
    with pytest.raises(APIError) as e:
        await c.create("pods", _pod(serviceAccountName="ghost"), "default")
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    assert e.value.message == ('pods "web" is forbidden: error looking up service account default/ghost: '
                               'serviceaccount "ghost" not found')
    gen = _pod(serviceAccountName="ghost")
    gen["metadata"] = {"generateName": "web-"}
    with pytest.raises(APIError) as e:
        await c.create("pods", gen, "default")
    assert e.value.message.startswith('pods "web-" is forbidden: error looking up service account default/ghost')
    with pytest.raises(APIError) as e:
        await c.create("pods", _pod(serviceAccountName="Not_A_Name"), "default")
    assert e.value.code == 422 and "spec.serviceAccountName" in e.value.message
    assert not (await c.list("pods", "default"))["items"]


async def test_a_missing_default_account_does_not_hold_pods_up(tmp_path):
    # no serviceaccounts controller here: a fresh namespace has no "default" yet
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0", tls=False)
    await cp.start()
    try:
        c = cp.local_client()
        await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}})
        p = await c.create("pods", _pod(), "fresh")
        assert p["spec"]["serviceAccountName"] == "default"
        assert await _get(c, "fresh", "default") is None
    finally:
        await cp.stop()


async def test_a_pod_gets_its_accounts_image_pull_secrets_unless_it_has_its_own(cp):
    c = cp.local_client()
    await _sa(c, "puller", imagePullSecrets=[{"name": "regcred"}, {"name": "mirror"}])
    p = await c.create("pods", _pod(serviceAccountName="puller"), "default")
    assert p["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    p = await c.create("pods", _pod("own", serviceAccountName="puller", imagePullSecrets=[{"name": "mine"}]),
                       "default")
    assert p["spec"]["imagePullSecrets"] == [{"name": "mine"}]
    # the default account's too, once it has some
    await wait_for(lambda: _get(c, "default", "default"))
    await c.patch("serviceaccounts", "default", {"imagePullSecrets": [{"name": "regcred"}]}, "default")
    p = await c.create("pods", _pod("plain"), "default")
    assert p["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


async def test_a_pods_account_cannot_change(cp):
    c = cp.local_client()
    await _sa(c, "builder")
    p = await c.create("pods", _pod(serviceAccountName="builder"), "default")
    with pytest.raises(APIError) as e:
        await c.patch("pods", "web", {"spec": {"serviceAccountName": "default"}}, "default")
    assert e.value.code == 422 and "pod updates may not change fields" in e.value.message
    # an update that leaves the account out keeps it; the labels change
    body = {**p, "metadata": {**p["metadata"], "labels": {"a": "b"}},
            "spec": {k: v for k, v in p["spec"].items() if k not in ("serviceAccountName", "serviceAccount")}}
    out = await c.update("pods", body)
    assert out["spec"]["serviceAccountName"] == "builder" and out["metadata"]["labels"] == {"a": "b"}


async def test_pods_get_their_accounts_token_unless_automount_is_off(cp):
    import re
    from skiff.controller.admission import admit
    from skiff.controller.admission_serviceaccount import TOKEN_MOUNT_PATH
    _, warns = admit(_pod(automountServiceAccountToken=True))
    assert warns == []                                  # served: no "accepted but not supported"
    c = cp.local_client()
    await wait_for(lambda: _get(c, "default", "default"))
    p = await c.create("pods", _pod(initContainers=[{"name": "i", "image": "busybox"}], containers=[
        {"name": "a", "image": "busybox"},
        {"name": "own", "image": "busybox", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}],
        volumes=[{"name": "mine", "emptyDir": {}}]), "default")
    vols = p["spec"]["volumes"]
    assert len(vols) == 2 and re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", vols[1]["name"])
    assert vols[1]["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": vols[1]["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    assert p["spec"]["initContainers"][0]["volumeMounts"] == [mount]
    assert p["spec"]["containers"][0]["volumeMounts"] == [mount]
    assert p["spec"]["containers"][1]["volumeMounts"] == [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]
    p = await c.create("pods", _pod("off", automountServiceAccountToken=False), "default")
    assert "volumes" not in p["spec"] and "volumeMounts" not in p["spec"]["containers"][0]
    await _sa(c, "quiet", automountServiceAccountToken=False)
    p = await c.create("pods", _pod("quiet", serviceAccountName="quiet"), "default")
    assert "volumes" not in p["spec"]
    p = await c.create("pods", _pod("asked", serviceAccountName="quiet", automountServiceAccountToken=True), "default")
    assert [v["name"][:16] for v in p["spec"]["volumes"]] == ["kube-api-access-"]
    # one name for the pods of one account (their containers stay equal, shared in the caches);
    # a pod that brings a kube-api-access-* volume has it used, as Kubernetes does
    again = await c.create("pods", _pod("again"), "default")
    assert again["spec"]["volumes"][0]["name"] == vols[1]["name"]
    own = await c.create("pods", _pod("own", volumes=[{"name": "kube-api-access-mine", "emptyDir": {}}]), "default")
    assert [v["name"] for v in own["spec"]["volumes"]] == ["kube-api-access-mine"]
    assert own["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-mine"


async def test_a_token_bound_to_a_pod_dies_with_it(cp):
    c = cp.local_client()
    await wait_for(lambda: _get(c, "default", "default"))
    await _sa(c, "other")
    p = await c.create("pods", _pod(), "default")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": p["metadata"]["uid"]}
    tr = await c.create("serviceaccounts", {"spec": {"boundObjectRef": ref}}, "default",
                        subresource="token", name="default")
    assert tr["spec"]["boundObjectRef"] == ref
    assert (await cp.tokens.authenticate(tr["status"]["token"])).name == "system:serviceaccount:default:default"
    with pytest.raises(APIError) as e:     # another pod of that name
        await c.create("serviceaccounts", {"spec": {"boundObjectRef": {**ref, "uid": "u-old"}}}, "default",
                       subresource="token", name="default")
    assert e.value.code == 409 and "the UID in the bound object reference (u-old) does not match" in str(e.value)
    with pytest.raises(APIError) as e:
        await c.create("serviceaccounts", {"spec": {"boundObjectRef": ref}}, "default",
                       subresource="token", name="other")
    assert e.value.code == 400 and str(e.value).endswith(
        'cannot bind token for serviceaccount "other" to pod running with different serviceaccount name.')
    with pytest.raises(APIError) as e:
        await c.create("serviceaccounts", {"spec": {"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                       "name": "x"}}}, "default",
                       subresource="token", name="default")
    assert e.value.code == 400 and "cannot bind token for object of type apps/v1, Kind=Deployment" in str(e.value)
    await c.delete("pods", "web", "default")
    await wait_for(lambda: _gone(c, "web"))
    assert await cp.tokens.authenticate(tr["status"]["token"]) is None


async def _gone(c, name):
    try:
        await c.get("pods", name, "default")
        return False
    except APIError as e:
        return e.code == 404


async def test_a_node_gets_tokens_only_for_the_pods_bound_to_it(cp):
    from skiff.controller.auth import node_user
    c = cp.local_client()
    await wait_for(lambda: _get(c, "default", "default"))
    p = await c.create("pods", _pod(nodeName="node-a"), "default")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": p["metadata"]["uid"]}
    tr = await cp.local_client(node_user("node-a")).create(
        "serviceaccounts", {"spec": {"boundObjectRef": ref, "audiences": ["vault"]}}, "default",
        subresource="token", name="default")
    assert tr["status"]["token"] and tr["spec"]["audiences"] == ["vault"]
    for node, body, why in [
            ("node-b", {"spec": {"boundObjectRef": ref}}, "node requested token bound to a pod scheduled on a "
                                                          "different node"),
            ("node-a", {"spec": {}}, "node requested token not bound to a pod"),
            ("node-a", {"spec": {"boundObjectRef": {**ref, "uid": ""}}}, "a pod binding without a uid")]:
        with pytest.raises(APIError) as e:
            await cp.local_client(node_user(node)).create("serviceaccounts", body, "default",
                                                          subresource="token", name="default")
        assert e.value.code == 403 and why in str(e.value), str(e.value)


async def test_namespace_deletion_takes_its_accounts(cp):
    c = cp.local_client()
    await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}})
    await wait_for(lambda: _get(c, "gone", "default"))
    await _sa(c, "extra", "gone")
    await c.delete("namespaces", "gone")

    async def no_ns():
        try:
            await c.get("namespaces", "gone")
            return None
        except APIError as e:
            return e.code == 404
    assert await wait_for(no_ns, timeout=20)
    assert (await c.list("serviceaccounts", "gone"))["items"] == []


# -- kubectl's protobuf body, skiffctl describe ----------------------------------------------------

async def test_protobuf_service_account():
    from skiff.api.protobuf import decode
    from tests.unit.test_service_api import fld, num
    body = b"k8s\x00" + fld(1, fld(1, b"v1") + fld(2, b"ServiceAccount")) + fld(
        2, fld(1, fld(1, b"app") + fld(3, b"team")) + fld(2, fld(3, b"tok")) + fld(3, fld(1, b"regcred")) + num(4, 0))
    assert decode(body) == {"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": "app", "namespace": "team"}, "secrets": [{"name": "tok"}],
                            "imagePullSecrets": [{"name": "regcred"}], "automountServiceAccountToken": False}


async def test_describe_serviceaccount():
    from skiff.cli.ctl.describe_serviceaccount import describe_serviceaccount
    sa = {"metadata": {"name": "app", "namespace": "team", "uid": "u1", "labels": {"a": "b"}},
          "imagePullSecrets": [{"name": "regcred"}, {"name": "gone"}], "secrets": [{"name": "regcred"}]}
    secrets = [{"metadata": {"name": "regcred"}},
               {"metadata": {"name": "app-token", "annotations": {"kubernetes.io/service-account.name": "app",
                                                                  "kubernetes.io/service-account.uid": "u1"}},
                "type": "kubernetes.io/service-account-token"}]
    assert describe_serviceaccount(sa, [], secrets) == (
        "Name:                app\n"
        "Namespace:           team\n"
        "Labels:              a=b\n"
        "Annotations:         <none>\n"
        "Image pull secrets:  regcred\n"
        "                     gone (not found)\n"
        "Mountable secrets:   regcred\n"
        "Tokens:              app-token\n"
        "Events:              <none>\n")
    plain = describe_serviceaccount({"metadata": {"name": "default", "namespace": "default"}}, None, None)
    assert "Image pull secrets:  <none>\nMountable secrets:   <none>\nTokens:              <none>\n" in plain
