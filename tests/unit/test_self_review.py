"""SelfSubjectAccessReview (`can-i`) and SelfSubjectReview (`whoami`) over JSON, answered by
the authorizer every request goes through."""
from __future__ import annotations

import json

import pytest

from skiff.controller.auth import TokenManager
from tests.unit.apitest import api_test_client

pytestmark = pytest.mark.asyncio

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def review(verb, resource, group="", namespace="", name=""):
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                            "namespace": namespace, "name": name}}}


async def test_can_i_and_whoami(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, admin):
        node_token = await TokenManager(reg._storage).create_node_token("n1")

        async def post(path, body, token):
            async with client.post(path, data=json.dumps(body), headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
                return r.status, await r.json()

        st, out = await post(SSAR, review("create", "pods", namespace="default"), admin)
        assert st == 201 and out["status"]["allowed"] is True
        st, out = await post(SSAR, review("create", "deployments", "apps", "default"), admin)
        assert out["status"]["allowed"] is True
        st, out = await post(SSAR, review("create", "widgets"), admin)
        assert out["status"]["allowed"] is False
        # a node may patch its own Node, not another's, and not delete nodes
        assert (await post(SSAR, review("patch", "nodes", name="n1"), node_token))[1]["status"]["allowed"] is True
        out = (await post(SSAR, review("patch", "nodes", name="n2"), node_token))[1]["status"]
        assert out["allowed"] is False and 'not allowed to modify node "n2"' in out["reason"]
        assert (await post(SSAR, review("delete", "nodes", name="n1"), node_token))[1]["status"]["allowed"] is False
        st, out = await post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, node_token)
        assert st == 201 and out["status"]["userInfo"]["username"] == "system:node:n1"
