"""PersistentVolumes, claims and classes against the real control plane (ControlPlane in
tmp_path with its SQLite store, in-process LocalClient, every standard controller): the default
StorageClass, the binder, the scheduler's VolumeBinding, local-path provisioning, reclaim and
protection. "Nodes" are Node objects and Leases written by the test (Cluster of
test_controllers_live); a fake kubelet makes bound pods Running and confirms their deletion."""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from skiff.api.errors import APIError
from skiff.controller.controllers import standard_controllers
from skiff.controller.controlplane import ControlPlane
from skiff.controller.volumes import logic as L

from tests.unit.test_controllers_live import Cluster, wait_for

pytestmark = pytest.mark.asyncio


class VCluster(Cluster):
    def __init__(self, cp):
        super().__init__(cp)
        self._kubelet = asyncio.create_task(self._run_kubelet())

    async def _run_kubelet(self):
        while True:
            await asyncio.sleep(0.05)
            try:
                pods = (await self.c.list("pods"))["items"]
            except APIError:
                continue
            for p in pods:
                md = p["metadata"]
                if p["spec"].get("nodeName") not in self.alive:
                    continue
                try:
                    if md.get("deletionTimestamp"):
                        await self.c.delete("pods", md["name"], md["namespace"], grace_period_seconds=0)
                    elif (p.get("status") or {}).get("phase") != "Running":
                        await self.c.patch("pods", md["name"], {"status": {"phase": "Running"}}, md["namespace"],
                                           subresource="status")
                except APIError:
                    pass

    async def close(self):
        self._kubelet.cancel()
        await asyncio.gather(self._kubelet, return_exceptions=True)
        await super().close()

    async def storage_node(self, name, base="/var/lib/skiff/storage"):
        await self.add_node(name)
        await self.c.patch("nodes", name, {"metadata": {"annotations": {L.LOCAL_PATH_DIR_ANNOTATION: base}}})

    async def claim(self, name, size="1Gi", cls=None, modes=("ReadWriteOnce",), **spec):
        s = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}
        if cls is not None:
            s["storageClassName"] = cls
        return await self.c.create("persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": s}, "default")

    async def volume(self, name, size="1Gi", cls="manual", modes=("ReadWriteOnce",), policy=None, node=None,
                     labels=None, **spec):
        s = {"accessModes": list(modes), "capacity": {"storage": size}, "storageClassName": cls,
             "hostPath": {"path": f"/tmp/skiff-test-pv/{name}"}, **spec}
        if policy:
            s["persistentVolumeReclaimPolicy"] = policy
        if node:
            s["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
        return await self.c.create("persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": s})

    async def pod_with_claim(self, name, claim):
        return await self.c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                            "spec": {"containers": [{"name": "c", "image": "busybox",
                                                                     "volumeMounts": [{"name": "d",
                                                                                       "mountPath": "/d"}]}],
                                                     "volumes": [{"name": "d", "persistentVolumeClaim": {
                                                         "claimName": claim}}]}}, "default")

    async def pvc(self, name):
        try:
            return await self.c.get("persistentvolumeclaims", name, "default")
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def pv(self, name):
        try:
            return await self.c.get("persistentvolumes", name)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def claim_events(self, name, reason):
        items = (await self.c.list("events", "default",
                                   field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if e.get("reason") == reason]


@pytest_asyncio.fixture
async def cluster(tmp_path):
    cp = ControlPlane(str(tmp_path / "cp"), listen="127.0.0.1:0")
    for f in standard_controllers(lease_grace=30, scheduler_retry=0.5):
        cp.add_controller(f)
    await cp.start()
    cl = VCluster(cp)
    try:
        yield cl
    finally:
        await cl.close()
        await cp.stop()


def phase(obj):
    return ((obj or {}).get("status") or {}).get("phase")


async def test_the_default_class_is_made_and_claims_without_a_class_get_it(cluster):
    c = cluster.c
    sc = await wait_for(lambda: _get(c, "storageclasses", "local-path"))
    assert sc["provisioner"] == "skiff.dev/local-path"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["reclaimPolicy"] == "Delete"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    pvc = await cluster.claim("data")
    assert pvc["spec"]["storageClassName"] == "local-path"
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert phase(pvc) == "Pending"
    ev = await wait_for(lambda: cluster.claim_events("data", "WaitForFirstConsumer"))
    assert ev[0]["message"] == "waiting for first consumer to be created before binding"
    # an explicit "" means no class, and stays so
    none = await cluster.claim("none", cls="")
    assert none["spec"]["storageClassName"] == ""
    ev = await wait_for(lambda: cluster.claim_events("none", "FailedBinding"))
    assert ev[0]["message"] == "no persistent volumes available for this claim and no storage class is set"
    # the user may delete the default class: it is not made again while the controller runs
    await c.delete("storageclasses", "local-path")
    await asyncio.sleep(0.3)
    assert await _get(c, "storageclasses", "local-path") is None
    later = await cluster.claim("later")
    assert "storageClassName" not in later["spec"]


async def _get(c, res, name, ns=None):
    try:
        return await c.get(res, name, ns)
    except APIError as e:
        if e.code == 404:
            return None
        raise


async def test_a_claim_binds_to_the_smallest_matching_volume(cluster):
    for name, size in (("big", "5Gi"), ("small", "1Gi"), ("tiny", "100Mi")):
        await cluster.volume(name, size)
    await cluster.volume("other-class", "1Gi", cls="fast")
    await cluster.volume("rox", "1Gi", modes=("ReadOnlyMany",))
    pv = await wait_for(lambda: _phased(cluster.pv("small"), "Available"))
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    await cluster.claim("data", "500Mi", cls="manual")
    pvc = await wait_for(lambda: _phased(cluster.pvc("data"), "Bound"))
    assert pvc["spec"]["volumeName"] == "small"
    ann = pvc["metadata"]["annotations"]
    assert ann[L.ANN_BIND_COMPLETED] == "yes" and ann[L.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert pvc["status"]["capacity"] == {"storage": "1Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    pv = await wait_for(lambda: _phased(cluster.pv("small"), "Bound"))
    ref = pv["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"], ref["uid"]) == ("default", "data", pvc["metadata"]["uid"])
    assert pv["metadata"]["annotations"][L.ANN_BOUND_BY_CONTROLLER] == "yes"
    for other in ("big", "tiny", "other-class", "rox"):
        assert phase(await cluster.pv(other)) == "Available"
    # pre-binding: a claim naming its volume gets that one, even when a smaller one fits
    await cluster.claim("pinned", "100Mi", cls="manual", volumeName="big")
    pvc = await wait_for(lambda: _phased(cluster.pvc("pinned"), "Bound"))
    assert pvc["spec"]["volumeName"] == "big"
    assert L.ANN_BOUND_BY_CONTROLLER not in pvc["metadata"]["annotations"]
    # a label selector
    await cluster.volume("labelled", "2Gi", labels={"tier": "gold"})
    await cluster.claim("gold", "100Mi", cls="manual", selector={"matchLabels": {"tier": "gold"}})
    pvc = await wait_for(lambda: _phased(cluster.pvc("gold"), "Bound"))
    assert pvc["spec"]["volumeName"] == "labelled"


async def _phased(coro, want):
    obj = await coro
    return obj if phase(obj) == want else None


async def test_claim_deletion_releases_and_reclaims(cluster):
    await cluster.volume("keep", "1Gi", policy="Retain")
    await cluster.claim("a", "1Gi", cls="manual")
    await wait_for(lambda: _phased(cluster.pvc("a"), "Bound"))
    await cluster.c.delete("persistentvolumeclaims", "a", "default")
    await wait_for(lambda: _none(cluster.pvc("a")))
    pv = await wait_for(lambda: _phased(cluster.pv("keep"), "Released"))
    assert pv["spec"]["claimRef"]["name"] == "a"
    # a released volume is not bound again
    await cluster.claim("b", "1Gi", cls="manual")
    await asyncio.sleep(0.5)
    assert phase(await cluster.pvc("b")) == "Pending"
    # Delete on a volume skiff did not provision: Failed, its data left alone
    await cluster.volume("static-delete", "1Gi", policy="Delete", cls="slow")
    await cluster.claim("c", "1Gi", cls="slow")
    await wait_for(lambda: _phased(cluster.pvc("c"), "Bound"))
    await cluster.c.delete("persistentvolumeclaims", "c", "default")
    pv = await wait_for(lambda: _phased(cluster.pv("static-delete"), "Failed"))
    assert "no deletable volume plugin matched" in pv["status"]["message"]
    # a Released volume can be deleted (pv-protection lets it go)
    await cluster.c.delete("persistentvolumes", "keep")
    await wait_for(lambda: _none(cluster.pv("keep")))


async def _none(coro):
    return (await coro) is None


async def test_local_path_provisioning_on_the_pods_node_and_protection(cluster):
    c = cluster.c
    await cluster.storage_node("n1", "/var/lib/skiff-n1/storage")
    await wait_for(lambda: _get(c, "storageclasses", "local-path"))
    pvc = await cluster.claim("data", "2Gi")
    await cluster.pod_with_claim("web", "data")
    assert await wait_for(lambda: cluster.node_of("web")) == "n1"
    uid = pvc["metadata"]["uid"]
    pvc = await wait_for(lambda: _phased(cluster.pvc("data"), "Bound"))
    assert pvc["metadata"]["annotations"][L.ANN_SELECTED_NODE] == "n1"
    assert pvc["metadata"]["annotations"][L.ANN_STORAGE_PROVISIONER] == "skiff.dev/local-path"
    assert pvc["spec"]["volumeName"] == f"pvc-{uid}"
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}
    pv = await cluster.pv(f"pvc-{uid}")
    assert pv["spec"]["hostPath"] == {"path": f"/var/lib/skiff-n1/storage/pvc-{uid}_default_data",
                                      "type": "DirectoryOrCreate"}
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["storageClassName"] == "local-path"
    assert pv["metadata"]["annotations"][L.ANN_PROVISIONED_BY] == "skiff.dev/local-path"
    assert set(pv["metadata"]["finalizers"]) == {"kubernetes.io/pv-protection", L.LOCAL_PATH_FINALIZER}
    assert await wait_for(lambda: cluster.claim_events("data", "ProvisioningSucceeded"))
    # protection: the claim stays while the running pod uses it
    await wait_for(lambda: _phased(cluster.get("web"), "Running"))
    await c.delete("persistentvolumeclaims", "data", "default")
    await asyncio.sleep(0.5)
    held = await cluster.pvc("data")
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    # a new pod naming a claim being deleted is not scheduled
    await cluster.pod_with_claim("late", "data")
    ev = await wait_for(lambda: cluster.events("late", "FailedScheduling"))
    assert ev[0]["message"] == '0/1 nodes are available: persistentvolumeclaim "data" is being deleted.'
    await c.delete("pods", "late", "default")
    await c.delete("pods", "web", "default")
    await wait_for(lambda: _none(cluster.pvc("data")), timeout=10)
    # reclaim Delete: the volume is deleted; its agent removes the directory and the finalizer
    pv = await wait_for(lambda: _deleting(cluster.pv(f"pvc-{uid}")))
    assert pv["metadata"]["finalizers"] == [L.LOCAL_PATH_FINALIZER]
    await c.patch("persistentvolumes", f"pvc-{uid}", {"metadata": {"finalizers": None}})
    await wait_for(lambda: _none(cluster.pv(f"pvc-{uid}")))


async def test_a_claim_whose_selected_node_is_gone_is_placed_again(cluster):
    """rescheduleProvisioning: the scheduler selected a node for a WaitForFirstConsumer claim, then
    that node went away before the volume was made: the selection is dropped (with a
    ProvisioningFailed event) and the claim's next consumer gets it provisioned on a live node."""
    c = cluster.c
    await cluster.storage_node("n2", "/var/lib/skiff-n2/storage")
    await wait_for(lambda: _get(c, "storageclasses", "local-path"))
    await cluster.claim("orphaned", "1Gi")
    await c.patch("persistentvolumeclaims", "orphaned", {"metadata": {"annotations": {L.ANN_SELECTED_NODE: "gone"}}},
                  "default")
    ev = await wait_for(lambda: cluster.claim_events("orphaned", "ProvisioningFailed"))
    assert ev[0]["message"] == 'failed to provision volume with StorageClass "local-path": node "gone" not found'

    async def unselected():
        p = await cluster.pvc("orphaned")
        return p if L.ANN_SELECTED_NODE not in (p["metadata"].get("annotations") or {}) else None
    await wait_for(unselected)
    await cluster.pod_with_claim("user", "orphaned")
    assert await wait_for(lambda: cluster.node_of("user")) == "n2"
    pvc = await wait_for(lambda: _phased(cluster.pvc("orphaned"), "Bound"))
    assert pvc["metadata"]["annotations"][L.ANN_SELECTED_NODE] == "n2"


async def _deleting(coro):
    obj = await coro
    if obj and obj["metadata"].get("deletionTimestamp") and "kubernetes.io/pv-protection" not in \
            obj["metadata"].get("finalizers", []):
        return obj
    return None


async def test_the_scheduler_checks_claims(cluster):
    c = cluster.c
    await cluster.storage_node("n1")
    await cluster.storage_node("n2")
    await cluster.pod_with_claim("nope", "missing")
    ev = await wait_for(lambda: cluster.events("nope", "FailedScheduling"))
    assert ev[0]["message"] == '0/2 nodes are available: persistentvolumeclaim "missing" not found.'
    pod = await cluster.get("nope")
    cond = next(x for x in pod["status"]["conditions"] if x["type"] == "PodScheduled")
    assert cond["reason"] == "Unschedulable"
    # the claim appears: the pod is scheduled
    await cluster.claim("missing")
    assert await wait_for(lambda: cluster.node_of("nope"))
    # an Immediate class without volumes
    await c.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": "now"}, "provisioner": "skiff.dev/local-path"})
    await cluster.claim("imm", cls="now")
    await cluster.pod_with_claim("p-imm", "imm")
    ev = await wait_for(lambda: cluster.events("p-imm", "FailedScheduling"))
    assert ev[0]["message"] == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    ev = await wait_for(lambda: cluster.claim_events("imm", "ProvisioningFailed"))
    assert "configuration error, no node was specified" in ev[0]["message"]
    # a bound volume with node affinity: only its node
    await cluster.volume("on-n2", "1Gi", node="n2")
    await cluster.claim("pinned", cls="manual")
    await wait_for(lambda: _phased(cluster.pvc("pinned"), "Bound"))
    for i in range(3):
        await cluster.pod_with_claim(f"follow-{i}", "pinned")
        assert await wait_for(lambda: cluster.node_of(f"follow-{i}")) == "n2"
    # and when that node cannot take it: the conflict is named
    await c.patch("nodes", "n2", {"spec": {"unschedulable": True}})
    await cluster.pod_with_claim("stuck", "pinned")
    ev = await wait_for(lambda: cluster.events("stuck", "FailedScheduling"))
    assert ev[0]["message"] == ("0/2 nodes are available: 1 node(s) had volume node affinity conflict, "
                                "1 node(s) were unschedulable.")


async def test_expansion_only_where_the_class_allows_it(cluster):
    c = cluster.c
    await cluster.storage_node("n1", "/var/lib/skiff-n1/storage")
    await c.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": "growable"}, "provisioner": "skiff.dev/local-path",
                                      "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True})
    await wait_for(lambda: _get(c, "storageclasses", "local-path"))
    await cluster.claim("fixed", "1Gi")
    await cluster.claim("grows", "1Gi", cls="growable")
    for name in ("fixed", "grows"):
        await cluster.pod_with_claim(f"p-{name}", name)
        await wait_for(lambda: _phased(cluster.pvc(name), "Bound"))
    with pytest.raises(APIError) as ei:
        await c.patch("persistentvolumeclaims", "fixed", {"spec": {"resources": {"requests": {"storage": "2Gi"}}}},
                      "default")
    assert ei.value.code == 403 and ei.value.message == (
        'persistentvolumeclaims "fixed" is forbidden: only dynamically provisioned pvc can be resized and the '
        'storageclass that provisions the pvc must support resize')
    await c.patch("persistentvolumeclaims", "grows", {"spec": {"resources": {"requests": {"storage": "3Gi"}}}},
                  "default")

    async def grown():
        pvc = await cluster.pvc("grows")
        return pvc if pvc["status"].get("capacity") == {"storage": "3Gi"} else None
    pvc = await wait_for(grown)
    assert (await cluster.pv(pvc["spec"]["volumeName"]))["spec"]["capacity"] == {"storage": "3Gi"}
    assert await cluster.claim_events("grows", "VolumeResizeSuccessful")
    # shrinking is refused by validation
    with pytest.raises(APIError) as ei:
        await c.patch("persistentvolumeclaims", "grows", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}},
                      "default")
    assert ei.value.code == 422 and "can not be less than status.capacity" in ei.value.message
