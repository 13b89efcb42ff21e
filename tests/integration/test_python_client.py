"""The official `kubernetes` Python client (PyPI) against skiff: a Configuration loaded from the
kubeconfig skiff writes (HTTPS with its CA, bearer token), then list, watch, create, patch and
delete pods and deployments on a real controller with a real agent."""
from __future__ import annotations

import os
import time

import pytest

from tests.integration.kubectl import IDLE, start_cluster

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root: a real agent runs containers")
    yield from start_cluster(str(tmp_path_factory.mktemp("pyclient")))


@pytest.fixture(scope="module")
def api(cluster):
    cfg = client.Configuration()
    config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=cfg)
    assert cfg.host.startswith("https://127.0.0.1:") and cfg.ssl_ca_cert
    with client.ApiClient(cfg) as c:
        yield c


def _pod(name: str, labels: dict) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[
            client.V1Container(name="c", image="busybox", command=["sh", "-c", IDLE])]))


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[
                    client.V1Container(name="c", image="busybox", command=["sh", "-c", IDLE])]))))


def test_version_nodes_and_namespaces(api, cluster):
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor) == ("1", "32")
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == [cluster.node]
    ready = {c.type: c.status for c in nodes[0].status.conditions}["Ready"]
    assert ready == "True"
    names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_pods_create_list_watch_delete(api, cluster):
    v1 = client.CoreV1Api(api)
    rv0 = v1.list_namespaced_pod("default", label_selector="py=yes").metadata.resource_version
    assert rv0
    created = v1.create_namespaced_pod("default", _pod("py-pod", {"py": "yes"}))
    assert created.metadata.uid and created.metadata.resource_version and created.status.phase == "Pending"
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_pod("default", _pod("py-pod", {"py": "yes"}))
    assert ei.value.status == 409 and '"reason":"AlreadyExists"' in ei.value.body.replace(" ", "")

    listed = v1.list_namespaced_pod("default", label_selector="py=yes")
    assert [p.metadata.name for p in listed.items] == ["py-pod"]

    # watch from before the create until the pod runs on our node
    w = watch.Watch()
    seen = []
    for ev in w.stream(v1.list_namespaced_pod, "default", label_selector="py=yes", resource_version=rv0,
                       timeout_seconds=20):
        seen.append(ev["type"])
        if ev["object"].status.phase == "Running":
            assert ev["object"].spec.node_name == cluster.node and ev["object"].status.pod_ip
            w.stop()
    assert seen[0] == "ADDED" and seen[-1] == "MODIFIED", seen

    got = v1.read_namespaced_pod("py-pod", "default")
    assert got.status.container_statuses[0].ready is True
    patched = v1.patch_namespaced_pod("py-pod", "default", {"metadata": {"labels": {"extra": "1"}}})
    assert patched.metadata.labels == {"py": "yes", "extra": "1"}
    assert v1.read_namespaced_pod_log("py-pod", "default", container="c") == ""

    # delete, and see the DELETED event on a watch filtered on the name (kubectl's wait does the same)
    rv = v1.list_namespaced_pod("default", field_selector="metadata.name=py-pod").metadata.resource_version
    v1.delete_namespaced_pod("py-pod", "default")
    types = []
    for ev in w.stream(v1.list_namespaced_pod, "default", field_selector="metadata.name=py-pod",
                       resource_version=rv, timeout_seconds=15):
        assert ev["object"].metadata.name == "py-pod"
        types.append(ev["type"])
        if ev["type"] == "DELETED":
            w.stop()
    assert types[-1] == "DELETED", types
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_pod("py-pod", "default")
    assert ei.value.status == 404 and '"reason":"NotFound"' in ei.value.body.replace(" ", "")


def test_deployments_create_list_watch_scale_delete(api, cluster):
    apps, v1 = client.AppsV1Api(api), client.CoreV1Api(api)
    d = apps.create_namespaced_deployment("default", _deployment("py-deploy", 2))
    assert d.metadata.generation == 1
    assert "py-deploy" in [x.metadata.name for x in apps.list_namespaced_deployment("default").items]

    def wait_available(n: int) -> None:
        w = watch.Watch()
        for ev in w.stream(apps.list_namespaced_deployment, "default", field_selector="metadata.name=py-deploy",
                           timeout_seconds=30):
            st = ev["object"].status
            if st and st.available_replicas == n and st.updated_replicas == n and \
                    st.observed_generation == ev["object"].metadata.generation:
                w.stop()
                return
        raise AssertionError(f"py-deploy never had {n} available replicas")

    wait_available(2)
    pods = v1.list_namespaced_pod("default", label_selector="app=py-deploy").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)

    scale = apps.patch_namespaced_deployment_scale("py-deploy", "default", {"spec": {"replicas": 1}})
    assert scale.spec.replicas == 1
    assert apps.read_namespaced_deployment_scale("py-deploy", "default").spec.replicas == 1
    wait_available(1)

    apps.delete_namespaced_deployment("py-deploy", "default", propagation_policy="Foreground")
    deadline = time.monotonic() + 20
    while v1.list_namespaced_pod("default", label_selector="app=py-deploy").items or \
            apps.list_namespaced_deployment("default", field_selector="metadata.name=py-deploy").items:
        assert time.monotonic() < deadline, "py-deploy and its pods were not deleted"
        time.sleep(0.2)
    with pytest.raises(client.ApiException) as ei:
        apps.read_namespaced_deployment("py-deploy", "default")
    assert ei.value.status == 404
