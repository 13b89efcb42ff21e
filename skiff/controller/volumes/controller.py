"""The persistent volume controller: kube-controller-manager's PV binder and protection
controllers, and skiff's local-path provisioner (k3s's local-path-provisioner, in-process).

- At start: the StorageClass ``local-path`` (the default class, provisioner
  ``skiff.dev/local-path``, WaitForFirstConsumer, reclaim Delete) is made when no class of that
  name exists. A user may delete or replace it; it is made again only at the next start.
- Claims (keys ``("claim", "ns/name")``): an unbound claim binds to a matching volume
  (:func:`.logic.find_best_match`; the PV's claimRef first, then the claim's volumeName, the
  bind-completed / bound-by-controller annotations, then both statuses). When none matches:
  with a WaitForFirstConsumer class the claim waits for the scheduler's
  ``volume.kubernetes.io/selected-node`` (event WaitForFirstConsumer); a claim of the local-path
  class with a selected node gets a PersistentVolume made for it on that node (events
  Provisioning, ProvisioningSucceeded); an Immediate local-path claim cannot be provisioned (no
  node) and stays Pending (ProvisioningFailed); other provisioners are waited for
  (ExternalProvisioning). A bound claim whose volume is gone is Lost.
- Volumes (keys ``("volume", name)``): Available without a claim; Bound with it; Released when
  its claim is gone, and then deleted with reclaim policy Delete when skiff's local-path
  provisioner made it (the agent of its node removes its directory, then the
  ``skiff.dev/local-path-cleanup`` finalizer), Failed with Delete otherwise (skiff cannot delete
  other volumes' data), kept with Retain.
- Protection: a claim being deleted keeps ``kubernetes.io/pvc-protection`` while a scheduled pod
  that has not finished uses it; a volume being deleted keeps ``kubernetes.io/pv-protection``
  while it is Bound.
"""
from __future__ import annotations

import asyncio
import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.api.timefmt import rfc3339
from skiff.controller.admission_storage import PV_PROTECTION, PVC_PROTECTION, default_class_name
from skiff.controller.events import EventRecorder
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import SharedInformers

from . import logic as L

__all__ = ["PersistentVolumeController"]

log = logging.getLogger("skiff.volumes")

CLAIMS, VOLUMES, CLASSES = "persistentvolumeclaims", "persistentvolumes", "storageclasses"


def _md(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _phase(obj: dict) -> str:
    return (obj.get("status") or {}).get("phase") or ""


class PersistentVolumeController(QueueController):
    def __init__(self, client, *, workers: int = 2, shared: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, make_default_class: bool = True):
        self.client = client
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.queue = WorkQueue("persistentvolumes")
        self.recorder = recorder or EventRecorder(client, "persistentvolume-controller")
        self._own_recorder = recorder is None
        self.make_default_class = make_default_class
        self.claims: Informer | None = None
        self.volumes: Informer | None = None
        self.classes: Informer | None = None
        self.pods: Informer | None = None
        self.nodes: Informer | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.make_default_class:
            await self.ensure_default_class()
        self.classes = await self.shared.acquire(self.client, CLASSES)
        self.volumes = await self.shared.acquire(self.client, VOLUMES)
        self.claims = await self.shared.acquire(self.client, CLAIMS)
        self.nodes = await self.shared.acquire(self.client, "nodes")
        self.pods = await self.shared.acquire(self.client, "pods")
        self.classes.add_handler(self._on_class)
        self.volumes.add_handler(self._on_volume)
        self.claims.add_handler(self._on_claim)
        self.pods.add_handler(self._on_pod)
        self.start_workers("persistentvolume-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        for res, inf, h in ((CLASSES, self.classes, self._on_class), (VOLUMES, self.volumes, self._on_volume),
                            (CLAIMS, self.claims, self._on_claim), ("pods", self.pods, self._on_pod),
                            ("nodes", self.nodes, None)):
            if inf is not None:
                if h is not None:
                    inf.remove_handler(h)
                await self.shared.release(self.client, res)
        if self._own_recorder:
            await self.recorder.close()

    async def ensure_default_class(self) -> None:
        sc = L.default_storage_class()
        try:
            await self.client.get(CLASSES, sc["metadata"]["name"])
            return
        except APIError as e:
            if e.code != 404:
                raise
        try:
            await self.client.create(CLASSES, sc)
            log.info("created the default StorageClass", extra={"fields": {"storageClass": sc["metadata"]["name"]}})
        except APIError as e:
            if e.code != 409:
                raise

    # -- event handlers -----------------------------------------------------------------------
    def _on_claim(self, typ: str, pvc: dict, old: dict | None) -> None:
        self.queue.add(("claim", L.claim_key(pvc)))
        vol = (pvc.get("spec") or {}).get("volumeName")
        if vol:
            self.queue.add(("volume", vol))
        if typ == "DELETED":        # its volume is released
            for pv in self.volumes.list():
                if L.is_bound_to_claim(pv, pvc):
                    self.queue.add(("volume", _md(pv).get("name")))

    def _on_volume(self, typ: str, pv: dict, old: dict | None) -> None:
        self.queue.add(("volume", _md(pv).get("name")))
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref and ref.get("name"):
            self.queue.add(("claim", f"{ref.get('namespace') or 'default'}/{ref['name']}"))
        if typ != "MODIFIED" or _phase(pv) == "Available":
            self._pending_claims()

    def _on_class(self, typ: str, sc: dict, old: dict | None) -> None:
        if typ != "DELETED":
            self._pending_claims()

    def _pending_claims(self) -> None:
        for pvc in self.claims.list() if self.claims is not None else ():
            if _phase(pvc) != "Bound":
                self.queue.add(("claim", L.claim_key(pvc)))

    def _on_pod(self, typ: str, pod: dict, old: dict | None) -> None:
        names = L.pod_claims(pod)
        if not names:
            return
        ns = _md(pod).get("namespace") or "default"
        for n in names:
            key = f"{ns}/{n}"
            pvc = self.claims.get(key)
            if pvc is not None and _md(pvc).get("deletionTimestamp"):
                self.queue.add(("claim", key))

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key) -> float | None:
        what, name = key
        try:
            if what == "claim":
                await self.sync_claim(name)
            else:
                await self.sync_volume(name)
        except APIError as e:
            if e.code in (404, 409):    # changed or gone meanwhile: the informer brings it back
                return 0.2
            raise
        return None

    # -- claims -------------------------------------------------------------------------------
    async def sync_claim(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None:
            return
        md = _md(pvc)
        if md.get("deletionTimestamp"):
            await self._protect_claim(pvc)
            return
        if (md.get("annotations") or {}).get(L.ANN_BIND_COMPLETED) != "yes":
            await self._sync_unbound(pvc)
        else:
            await self._sync_bound(pvc)

    def _class(self, name: str) -> dict | None:
        return self.classes.get(name) if name else None

    async def _sync_unbound(self, pvc: dict) -> None:
        spec = pvc.get("spec") or {}
        if spec.get("storageClassName") is None and "volume.beta.kubernetes.io/storage-class" not in (
                _md(pvc).get("annotations") or {}):
            # RetroactiveDefaultStorageClass: a claim made while there was no default gets it now
            default = default_class_name(self.classes.list())
            if default:
                await self.client.update(CLAIMS, {**pvc, "spec": {**spec, "storageClassName": default}})
                return
        vol_name = spec.get("volumeName")
        if vol_name:                    # pre-bound by the user to one volume
            pv = self.volumes.get(vol_name)
            if pv is None:
                await self._claim_phase(pvc, "Pending")
                return
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref and not L.is_bound_to_claim(pv, pvc):
                self.recorder.record(pvc, "Warning", "FailedBinding",
                                     f'volume "{vol_name}" already bound to a different claim.')
                await self._claim_phase(pvc, "Pending")
                return
            why = L.volume_fits(pv, pvc)
            if why is not None:
                self.recorder.record(pvc, "Warning", "VolumeMismatch",
                                     f'Cannot bind to requested volume "{vol_name}": {why}')
                await self._claim_phase(pvc, "Pending")
                return
            await self._bind(pvc, pv)
            return
        cls = L.class_of(pvc)
        sc = self._class(cls)
        ann = _md(pvc).get("annotations") or {}
        node_name = ann.get(L.ANN_SELECTED_NODE)
        delayed = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        node = None
        if node_name:
            nobj = self.nodes.get(node_name)
            node = (node_name, (_md(nobj).get("labels") or {}) if nobj is not None else None)
        pv = L.find_best_match(pvc, self.volumes.list(), node)
        if pv is not None and not (delayed and node is None and not L.is_bound_to_claim(pv, pvc)):
            await self._bind(pvc, pv)
            return
        await self._claim_phase(pvc, "Pending")
        if delayed and not node_name:
            self.recorder.record(pvc, "Normal", "WaitForFirstConsumer",
                                 "waiting for first consumer to be created before binding")
            return
        if not cls:
            self.recorder.record(pvc, "Normal", "FailedBinding",
                                 "no persistent volumes available for this claim and no storage class is set")
            return
        if sc is None:
            self.recorder.record(pvc, "Warning", "ProvisioningFailed",
                                 f'storageclass.storage.k8s.io "{cls}" not found')
            return
        prov = sc.get("provisioner") or ""
        if prov == "kubernetes.io/no-provisioner":
            self.recorder.record(pvc, "Normal", "FailedBinding",
                                 "no persistent volumes available for this claim and no storage class is set"
                                 if not cls else "no persistent volumes available for this claim")
            return
        if prov != L.LOCAL_PATH_PROVISIONER:
            await self._mark_provisioner(pvc, prov)
            self.recorder.record(pvc, "Normal", "ExternalProvisioning",
                                 f"Waiting for a volume to be created either by the external provisioner '{prov}' "
                                 f"or manually by the system administrator. If volume creation is delayed, please "
                                 f"verify that the provisioner is running and correctly registered.")
            return
        await self._provision_local(pvc, sc, node_name)

    async def _mark_provisioner(self, pvc: dict, prov: str) -> dict:
        md = _md(pvc)
        ann = md.get("annotations") or {}
        if ann.get(L.ANN_STORAGE_PROVISIONER) == prov and ann.get(L.ANN_BETA_STORAGE_PROVISIONER) == prov:
            return pvc
        new_md = {**md, "annotations": {**ann, L.ANN_STORAGE_PROVISIONER: prov, L.ANN_BETA_STORAGE_PROVISIONER: prov}}
        return await self.client.update(CLAIMS, {**pvc, "metadata": new_md})

    async def _provision_local(self, pvc: dict, sc: dict, node_name: str | None) -> None:
        cname = _md(sc).get("name")
        if not node_name:
            self.recorder.record(pvc, "Warning", "ProvisioningFailed",
                                 f'failed to provision volume with StorageClass "{cname}": configuration error, '
                                 f'no node was specified (skiff\'s local-path volumes live on one node: use '
                                 f'volumeBindingMode WaitForFirstConsumer)')
            return
        pv_name = f"pvc-{_md(pvc).get('uid')}"
        if self.volumes.get(pv_name) is not None:
            return                      # made: the binder binds it when it sees it
        node = self.nodes.get(node_name)
        base = ((_md(node).get("annotations") or {}).get(L.LOCAL_PATH_DIR_ANNOTATION)) if node else None
        if node is None or not base:
            why = f'node "{node_name}" not found' if node is None else \
                f'node "{node_name}" has no local-path directory (its agent sets the {L.LOCAL_PATH_DIR_ANNOTATION} ' \
                f'annotation)'
            self.recorder.record(pvc, "Warning", "ProvisioningFailed",
                                 f'failed to provision volume with StorageClass "{cname}": {why}')
            if node is None:
                await self._reschedule(pvc)
            return
        pvc = await self._mark_provisioner(pvc, L.LOCAL_PATH_PROVISIONER)
        key = L.claim_key(pvc)
        self.recorder.record(pvc, "Normal", "Provisioning",
                             f'External provisioner is provisioning volume for claim "{key}"')
        pv = L.local_path_volume(pvc, sc, node_name, base)
        try:
            await self.client.create(VOLUMES, pv)
        except APIError as e:
            if e.code != 409:
                self.recorder.record(pvc, "Warning", "ProvisioningFailed",
                                     f'failed to provision volume with StorageClass "{cname}": {e.message}')
                raise
            return
        self.recorder.record(pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        log.info("provisioned a local-path volume", extra={"fields": {
            "claim": key, "volume": pv_name, "node": node_name, "path": pv["spec"]["hostPath"]["path"]}})

    async def _reschedule(self, pvc: dict) -> None:
        """rescheduleProvisioning (the external provisioners' library): the node the scheduler
        selected is gone, so the selection is dropped and the claim's next consumer is placed anew."""
        md = _md(pvc)
        ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != L.ANN_SELECTED_NODE}
        try:
            await self.client.update(CLAIMS, {**pvc, "metadata": {**md, "annotations": ann}})
        except APIError as e:
            if e.code not in (404, 409):
                raise
            return
        log.info("selected node gone: claim rescheduled", extra={"fields": {"claim": L.claim_key(pvc)}})

    async def _sync_bound(self, pvc: dict) -> None:
        vol_name = (pvc.get("spec") or {}).get("volumeName")
        if not vol_name:
            if _phase(pvc) != "Lost":
                await self._claim_phase(pvc, "Lost")
                self.recorder.record(pvc, "Warning", "ClaimLost",
                                     "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        pv = self.volumes.get(vol_name)
        if pv is None:
            if _phase(pvc) != "Lost":
                await self._claim_phase(pvc, "Lost")
                self.recorder.record(pvc, "Warning", "ClaimLost",
                                     "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or L.is_bound_to_claim(pv, pvc):
            await self._bind(pvc, pv)      # finishes a binding (idempotent)
            await self._expand(pvc, pv)
            return
        if _phase(pvc) != "Lost":
            await self._claim_phase(pvc, "Lost")
            self.recorder.record(pvc, "Warning", "ClaimMisbound",
                                 "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _expand(self, pvc: dict, pv: dict) -> None:
        """A bound claim that asks for more than its volume has (admission let it: its class allows
        expansion): a local-path volume is a directory, so it just records the new size (the
        claim's status follows through _bind); others wait for an external resizer."""
        want = L.storage_request(pvc)
        if want <= L.pv_capacity(pv):
            return
        if (_md(pv).get("annotations") or {}).get(L.ANN_PROVISIONED_BY) != L.LOCAL_PATH_PROVISIONER:
            self.recorder.record(pvc, "Normal", "ExternalExpanding",
                                 "Ignoring the PVC: didn't find a plugin capable of expanding the volume; waiting "
                                 "for an external controller to process this PVC.")
            return
        size = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        spec = {**(pv.get("spec") or {}), "capacity": {**((pv.get("spec") or {}).get("capacity") or {}),
                                                       "storage": size}}
        await self.client.update(VOLUMES, {**pv, "spec": spec})
        self.recorder.record(pvc, "Normal", "VolumeResizeSuccessful", "Resize volume succeeded")

    async def _bind(self, pvc: dict, pv: dict) -> None:
        new_pv = L.bind_volume(pv, pvc)
        if new_pv is not None:
            pv = await self.client.update(VOLUMES, new_pv)
        if _phase(pv) != "Bound":
            pv = await self._volume_phase(pv, "Bound")
        new_pvc = L.bind_claim(pvc, pv)
        if new_pvc is not None:
            pvc = await self.client.update(CLAIMS, new_pvc)
        st = L.claim_status_bound(pvc, pv)
        if st != (pvc.get("status") or {}):
            await self.client.update(CLAIMS, {**pvc, "status": st}, "status")
            log.info("bound a claim", extra={"fields": {"claim": L.claim_key(pvc), "volume": _md(pv).get("name")}})

    async def _claim_phase(self, pvc: dict, phase: str) -> None:
        if _phase(pvc) == phase:
            return
        st = dict(pvc.get("status") or {})
        st["phase"] = phase
        if phase != "Bound":
            st.pop("capacity", None)
            st.pop("accessModes", None)
        await self.client.update(CLAIMS, {**pvc, "status": st}, "status")

    async def _protect_claim(self, pvc: dict) -> None:
        fins = _md(pvc).get("finalizers") or []
        if PVC_PROTECTION not in fins or self._claim_in_use(pvc):
            return
        md = {**_md(pvc), "finalizers": [f for f in fins if f != PVC_PROTECTION]}
        await self.client.update(CLAIMS, {**pvc, "metadata": md})
        log.info("released the claim's protection: no pod uses it", extra={"fields": {"claim": L.claim_key(pvc)}})

    def _claim_in_use(self, pvc: dict) -> bool:
        md = _md(pvc)
        ns, name = md.get("namespace") or "default", md.get("name")
        for pod in self.pods.list():
            pmd = pod.get("metadata") or {}
            if (pmd.get("namespace") or "default") != ns or not (pod.get("spec") or {}).get("nodeName"):
                continue
            if _phase(pod) in ("Succeeded", "Failed"):
                continue
            if name in L.pod_claims(pod):
                return True
        return False

    # -- volumes ------------------------------------------------------------------------------
    async def _volume_phase(self, pv: dict, phase: str, message: str | None = None) -> dict:
        st = {"phase": phase, "lastPhaseTransitionTime": rfc3339()}
        if message:
            st["message"] = message
        return await self.client.update(VOLUMES, {**pv, "status": st}, "status")

    async def sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            return
        md, spec = _md(pv), pv.get("spec") or {}
        if md.get("deletionTimestamp"):
            fins = md.get("finalizers") or []
            if PV_PROTECTION in fins and _phase(pv) != "Bound":
                new_md = {**md, "finalizers": [f for f in fins if f != PV_PROTECTION]}
                await self.client.update(VOLUMES, {**pv, "metadata": new_md})
            return
        ref = spec.get("claimRef")
        if not ref:
            if _phase(pv) != "Available":
                await self._volume_phase(pv, "Available")
            return
        key = f"{ref.get('namespace') or 'default'}/{ref.get('name')}"
        pvc = self.claims.get(key)
        if pvc is not None and ref.get("uid") and _md(pvc).get("uid") != ref["uid"]:
            pvc = None                  # a new claim of the same name: not this volume's
        if pvc is None:
            if not ref.get("uid"):      # pre-bound to a claim not made yet
                if _phase(pv) != "Available":
                    await self._volume_phase(pv, "Available")
                return
            if _phase(pv) not in ("Released", "Failed"):
                pv = await self._volume_phase(pv, "Released")
            await self._reclaim(pv)
            return
        bound_to = (pvc.get("spec") or {}).get("volumeName")
        if not bound_to:
            if _phase(pv) not in ("Available", "Bound"):
                await self._volume_phase(pv, "Available")
            self.queue.add(("claim", key))
        elif bound_to == name:
            if _phase(pv) != "Bound":
                await self._volume_phase(pv, "Bound")
        elif (md.get("annotations") or {}).get(L.ANN_BOUND_BY_CONTROLLER) == "yes":
            # the claim went to another volume: this one is free again
            ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != L.ANN_BOUND_BY_CONTROLLER}
            new_spec = {k: v for k, v in spec.items() if k != "claimRef"}
            pv = await self.client.update(VOLUMES, {**pv, "metadata": {**md, "annotations": ann}, "spec": new_spec})
            await self._volume_phase(pv, "Available")
        elif _phase(pv) != "Available":
            await self._volume_phase(pv, "Available")

    async def _reclaim(self, pv: dict) -> None:
        md, spec = _md(pv), pv.get("spec") or {}
        policy = spec.get("persistentVolumeReclaimPolicy") or "Retain"
        if policy != "Delete" or _phase(pv) == "Failed":
            return
        if (md.get("annotations") or {}).get(L.ANN_PROVISIONED_BY) != L.LOCAL_PATH_PROVISIONER:
            msg = f'error getting deleter volume plugin for volume "{md.get("name")}": no deletable volume plugin ' \
                  f'matched (skiff deletes only the volumes of its local-path provisioner)'
            await self._volume_phase(pv, "Failed", msg)
            self.recorder.record(pv, "Warning", "VolumeFailedDelete", msg)
            return
        try:
            await self.client.delete(VOLUMES, md["name"], preconditions={"uid": md.get("uid")})
        except APIError as e:
            if e.code not in (404, 409):
                raise
            return
        log.info("deleted a released volume (reclaim policy Delete)", extra={"fields": {
            "volume": md.get("name"), "node": (md.get("annotations") or {}).get(L.ANN_LOCAL_PATH_NODE)}})
