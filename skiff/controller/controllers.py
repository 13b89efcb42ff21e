"""The controllers a ``skiff controller`` runs in-process, as ControlPlane.add_controller factories
(each an ``async fn(client)`` that runs until cancelled)::

    for f in standard_controllers(lease_grace=40.0):
        cp.add_controller(f)
"""
from __future__ import annotations

from typing import Awaitable, Callable

from skiff.controller.nodeipam import DEFAULT_CLUSTER_CIDR, NodeIPAMController
from skiff.controller.nodelifecycle import NodeLifecycleController
from skiff.controller.scheduler import Scheduler
from skiff.controller.daemonset import DaemonSetController
from skiff.controller.deployment import DeploymentController
from skiff.controller.endpoints import EndpointsController, EndpointSliceController
from skiff.controller.gc import GC_RESOURCES, GarbageCollector
from skiff.controller.job import JobController
from skiff.controller.namespace import NamespaceController
from skiff.controller.replicaset import ReplicaSetController
from skiff.controller.cronjob import CronJobController
from skiff.controller.disruption import DisruptionController
from skiff.controller.quota import ResourceQuotaController
from skiff.controller.serviceaccounts import ServiceAccountsController
from skiff.controller.ttlafterfinished import TTLAfterFinishedController
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["standard_controllers"]

Factory = Callable[[object], Awaitable[None]]


def standard_controllers(lease_grace: float = 40.0, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, *,
                         node_mask: int | None = None, scheduler_retry: float = 5.0,
                         monitor_interval: float | None = None) -> list[Factory]:
    """[scheduler, node lifecycle, node IPAM, replicaset, replication, deployment, daemonset, job, cronjob,
    ttl-after-finished, endpoints, endpointslice, servicelb, serviceaccounts, resourcequota, garbage collector,
    namespace]
    factories."""

    # ONE informer per resource for all of them: at 10 000 pods each pods cache is ~100 MB. Its
    # objects are shared and read-only: a controller never modifies what it gets from it.
    shared = SharedInformers()

    async def scheduler(client) -> None:
        await Scheduler(client, retry_interval=scheduler_retry, shared=shared).run()

    async def nodelifecycle(client) -> None:
        await NodeLifecycleController(client, grace=lease_grace, interval=monitor_interval,
                                      shared=shared).run()

    async def nodeipam(client) -> None:
        await NodeIPAMController(client, cluster_cidr=cluster_cidr, node_mask=node_mask, shared=shared).run()

    async def replicaset(client) -> None:
        await ReplicaSetController(client, shared=shared).run()

    async def replication(client) -> None:
        from skiff.controller.replicaset import ReplicationManager
        await ReplicationManager(client, shared=shared).run()

    async def deployment(client) -> None:
        await DeploymentController(client, shared=shared).run()

    async def daemonset(client) -> None:
        await DaemonSetController(client, shared=shared).run()

    async def statefulset(client) -> None:
        from skiff.controller.statefulset import StatefulSetController
        await StatefulSetController(client, shared=shared).run()

    async def job(client) -> None:
        await JobController(client, shared=shared).run()

    async def ttlafterfinished(client) -> None:
        await TTLAfterFinishedController(client, shared=shared).run()

    async def endpoints(client) -> None:
        await EndpointsController(client, shared=shared).run()

    async def endpointslice(client) -> None:
        await EndpointSliceController(client, shared=shared).run()

    async def servicelb(client) -> None:
        # k3s's ServiceLB: LoadBalancer Services get the nodes' addresses as their ingress
        from skiff.controller.servicelb import ServiceLBController
        await ServiceLBController(client, shared=shared).run()

    async def disruption(client) -> None:
        await DisruptionController(client, shared=shared).run()

    async def cronjob(client) -> None:
        await CronJobController(client, shared=shared).run()

    async def serviceaccounts(client) -> None:
        await ServiceAccountsController(client, shared=shared).run()

    async def resourcequota(client) -> None:
        await ResourceQuotaController(client, shared=shared).run()

    async def horizontalpodautoscaler(client) -> None:
        from skiff.controller.hpa import HPAController
        await HPAController(client, shared=shared).run()

    async def persistentvolume(client) -> None:
        # the PV binder, pv/pvc protection, the local-path provisioner and the default StorageClass
        from skiff.controller.volumes.controller import PersistentVolumeController
        await PersistentVolumeController(client, shared=shared).run()

    async def garbagecollector(client) -> None:
        # services and endpointslices too: the slices a Service owns go with it
        await GarbageCollector(client, shared=shared, resources=GC_RESOURCES + ("services", "endpointslices")).run()

    async def namespace(client) -> None:
        await NamespaceController(client).run()

    async def customresourcedefinitions(client) -> None:
        # names, Established, serving and the cleanup of CRDs (skiff.controller.crd)
        from skiff.controller.crd.controller import CRDController
        await CRDController(client).run()

    return [scheduler, nodelifecycle, nodeipam, replicaset, replication, deployment, daemonset, statefulset, job, cronjob,
            ttlafterfinished, endpoints, endpointslice, servicelb, serviceaccounts, resourcequota, horizontalpodautoscaler, disruption,
            persistentvolume, garbagecollector, namespace, customresourcedefinitions]
