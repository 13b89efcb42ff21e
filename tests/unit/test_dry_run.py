"""?dryRun=All: every check of a real write, nothing persisted (kubectl --dry-run=server, diff)."""
from __future__ import annotations

import json

import pytest
import pytest_asyncio

from tests.unit.apitest import api_test_client

pytestmark = pytest.mark.asyncio

PODS = "/api/v1/namespaces/default/pods"


def pod(name="web", image="busybox"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image}]}}


@pytest_asyncio.fixture
async def api(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        async def call(method, path, body=None, *, ctype="application/json", params=None):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
            data = json.dumps(body) if body is not None else None
            async with client.request(method, path, data=data, headers=headers, params=params) as r:
                return r.status, await r.json()
        yield call


DRY = {"dryRun": "All"}


async def test_create_update_patch_delete_persist_nothing(api):
    st, out = await api("POST", PODS, pod(), params=DRY)
    assert st == 201 and out["metadata"]["uid"] and out["status"]["phase"] == "Pending"
    assert out["spec"]["restartPolicy"] == "Always"          # admission ran
    assert (await api("GET", PODS + "/web"))[0] == 404
    st, out = await api("POST", PODS, pod(image=""), params=DRY)   # validation ran
    assert st == 422 and out["reason"] == "Invalid"

    st, live = await api("POST", PODS, pod())
    assert st == 201
    rv = live["metadata"]["resourceVersion"]
    st, out = await api("PATCH", PODS + "/web", {"metadata": {"labels": {"x": "1"}}},
                        ctype="application/merge-patch+json", params=DRY)
    assert st == 200 and out["metadata"]["labels"]["x"] == "1" and out["metadata"]["resourceVersion"] == rv
    changed = {**live, "metadata": {**live["metadata"], "labels": {"y": "2"}}}
    st, out = await api("PUT", PODS + "/web", changed, params=DRY)
    assert st == 200 and out["metadata"]["labels"] == {"y": "2"}
    stale = {**changed, "metadata": {**changed["metadata"], "resourceVersion": "1"}}
    assert (await api("PUT", PODS + "/web", stale, params=DRY))[0] == 409   # conflicts still found
    st, out = await api("PATCH", PODS + "/web", pod(), ctype="application/apply-patch+yaml",
                        params={**DRY, "fieldManager": "kubectl"})
    assert st == 200
    st, out = await api("DELETE", PODS + "/web", {"gracePeriodSeconds": 0}, params=DRY)
    assert st == 200
    st, out = await api("DELETE", PODS + "/web", {"gracePeriodSeconds": 0, "dryRun": ["All"]})  # kubectl's way
    assert st == 200
    st, out = await api("DELETE", PODS, {"dryRun": ["All"]})        # a collection too
    assert st == 200
    assert (await api("POST", PODS, pod(), params=DRY))[0] == 409            # AlreadyExists still found

    st, now = await api("GET", PODS + "/web")
    assert st == 200 and now["metadata"]["resourceVersion"] == rv and now["metadata"]["labels"] == {"app": "web"}
    assert not now["metadata"].get("deletionTimestamp")


async def test_unknown_dry_run_value_is_refused(api):
    st, out = await api("POST", PODS, pod(), params={"dryRun": "Some"})
    assert st == 400 and 'supported values: "All"' in out["message"]
    assert (await api("GET", PODS + "/web"))[0] == 404
    # the next request on the same connection is a real one again
    assert (await api("POST", PODS, pod()))[0] == 201
    assert (await api("GET", PODS + "/web"))[0] == 200


HPA_V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"


async def test_autoscaling_v1_deletions_dry_run_too(api):
    # kubernetes/website controllers/hpa-rs.yaml, through the v1 API (converted to the stored v2)
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "frontend-scaler"},
           "spec": {"scaleTargetRef": {"kind": "ReplicaSet", "name": "frontend"}, "minReplicas": 3,
                    "maxReplicas": 10, "targetCPUUtilizationPercentage": 50}}
    st, out = await api("POST", HPA_V1, hpa, params=DRY)
    assert st == 201 and out["spec"]["targetCPUUtilizationPercentage"] == 50
    assert (await api("GET", HPA_V1 + "/frontend-scaler"))[0] == 404
    assert (await api("POST", HPA_V1, hpa))[0] == 201
    st, _ = await api("DELETE", HPA_V1 + "/frontend-scaler", {"dryRun": ["All"]})   # kubectl --dry-run=server
    assert st == 200 and (await api("GET", HPA_V1 + "/frontend-scaler"))[0] == 200
    assert (await api("DELETE", HPA_V1, {"dryRun": ["All"]}))[0] == 200
    assert (await api("GET", HPA_V1 + "/frontend-scaler"))[0] == 200
    assert (await api("DELETE", HPA_V1 + "/frontend-scaler"))[0] == 200
    assert (await api("GET", HPA_V1 + "/frontend-scaler"))[0] == 404
