"""The root CA publisher (kube-controller-manager's root-ca-cert-publisher): every namespace has
a ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the cluster CA's certificate, so a pod can
verify the API server (in-cluster clients read it from the service account volume, and many
charts mount the ConfigMap themselves). It is made when a namespace appears, and put back as it
should be when it is deleted or changed; the annotation kubernetes.io/description says what it is.
"""
from __future__ import annotations

import logging

from skiff.api.errors import APIError
from skiff.api.informer import Informer
from skiff.controller.workqueue import QueueController, WorkQueue

__all__ = ["RootCAPublisher", "ROOT_CA_CONFIGMAP"]

log = logging.getLogger("skiff.rootca")

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCAPublisher(QueueController):
    def __init__(self, client, ca_pem: str):
        self.client, self.ca_pem = client, ca_pem
        self.queue = WorkQueue("root-ca-cert-publisher")
        self.namespaces: Informer | None = None
        self.maps: Informer | None = None

    async def start(self) -> None:
        self.namespaces = Informer(self.client, "namespaces", name="rootca-namespaces")
        self.maps = Informer(self.client, "configmaps", field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}",
                             name="rootca-configmaps")
        self.namespaces.add_handler(lambda typ, ns, old: typ != "DELETED" and self.queue.add(ns["metadata"]["name"]))
        self.maps.add_handler(lambda typ, cm, old: self.queue.add(cm["metadata"].get("namespace") or ""))
        await self.namespaces.start()
        await self.maps.start()
        self.start_workers("root-ca-cert-publisher")

    async def stop(self) -> None:
        await self.stop_workers()
        for inf in (self.maps, self.namespaces):
            if inf is not None:
                await inf.stop()

    def _want(self, ns: str) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                             "annotations": {"kubernetes.io/description": DESCRIPTION}},
                "data": {"ca.crt": self.ca_pem}}

    async def reconcile(self, ns: str) -> float | None:
        nso = self.namespaces.get(ns)
        if nso is None or (nso.get("metadata") or {}).get("deletionTimestamp"):
            return None         # gone or going: the namespace controller empties it
        cur = self.maps.get(f"{ns}/{ROOT_CA_CONFIGMAP}")
        want = self._want(ns)
        try:
            if cur is None:
                await self.client.create("configmaps", want, ns)
                log.info("published the root CA", extra={"fields": {"namespace": ns}})
            elif cur.get("data") != want["data"] or \
                    (cur["metadata"].get("annotations") or {}).get("kubernetes.io/description") != DESCRIPTION:
                md = {**cur["metadata"], "annotations": {**(cur["metadata"].get("annotations") or {}),
                                                         "kubernetes.io/description": DESCRIPTION}}
                await self.client.update("configmaps", {**cur, "metadata": md, "data": want["data"],
                                                        "binaryData": None})
        except APIError as e:
            if e.code in (404, 409, 403):     # the namespace is going, or a newer object: look again
                return 1.0 if e.code == 409 else None
            raise
        return None
