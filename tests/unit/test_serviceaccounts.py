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


async def test_automount_warns_that_no_token_is_mounted(cp):
    from skiff.controller.admission import admit
    _, warns = admit(_pod(automountServiceAccountToken=True, serviceAccountName="x"))
    assert [w.field for w in warns] == ["spec.automountServiceAccountToken"]
    assert "skiff mounts no service account token" in warns[0]


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
