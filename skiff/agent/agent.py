"""The agent (the kubelet of skiff): one per host.

Start-up: get a node credential (exchanging the join token once), register the Node,
wait for the controller to give it a podCIDR, make the pod network, start the log server
and the Lease, then watch the pods bound to this node. The containers already on the host
are adopted: a pod still in the API keeps its running containers (same PIDs, same restart
counts); a pod no longer in the API is stopped and removed.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from skiff.api.errors import APIError
from skiff.api.resources import NODE_LEASE_NAMESPACE

from . import node as nodeinfo
from .backoff import Backoff
from .podworker import PodWorker, pod_ref

log = logging.getLogger("skiff.agent")


@dataclass
class AgentConfig:
    server: str
    token: str = ""
    node_name: str = ""
    root: str = "/var/lib/skiff"
    node_ip: str = ""
    log_host: str = ""              # default: node_ip
    log_port: int = 10250
    lease_duration: int = 40
    pod_bridge: str = "skiffpods0"
    pod_network: str = "pods"
    cgroup_parent: str = "skiff"
    labels: dict = field(default_factory=dict)
    backoff_initial: float = 10.0
    backoff_cap: float = 300.0
    backoff_reset: float = 600.0
    resync: float = 10.0
    # how often the ConfigMaps and Secrets of the pods' volumes are read again, and changed
    # files written (the kubelet's --sync-frequency, 1 min)
    sync_frequency: float = 60.0
    sandbox_retry: float = 5.0
    image_retry: float = 10.0
    insecure_registries: bool = False
    runtime: str = "real"           # "real" | "fake" (hollow node: FakePodRuntime, no root needed)
    ca_file: str = ""               # the CA of an https server (default: pinned by the join token)
    # Services (nftables, skiff.agent.serviceproxy) and routes to the other nodes' pods
    # (skiff.agent.noderoutes). None: on with the real runtime, off with the fake one (hollow
    # nodes: a thousand of them in one process would each watch every Node and Service).
    node_network: bool | None = None
    # cluster DNS (skiff.agent.clusterdns) on the pod bridge's gateway, port 53, answering from
    # the service proxy's informers; with node_network only. ClusterFirst pods use it.
    cluster_dns: bool = True
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"    # the host's: upstream servers, search domains
    dns_port: int = 53


class Agent:
    def __init__(self, config: AgentConfig, client=None, heartbeat_client=None):
        self.config = config
        self.name = config.node_name or os.uname().nodename.split(".")[0].lower()
        self.client = client
        # the Lease and node status go through this one when given (as the kubelet's own
        # heartbeat client): a queue of pod requests must not make the node look lost
        self.heartbeat_client = heartbeat_client
        self.runtime = None
        self.images = None
        self.events = None
        self.objects = None         # skiff.agent.objcache.ObjectCache: the pods' ConfigMaps and Secrets
        self.backoff = Backoff(config.backoff_initial, config.backoff_cap, config.backoff_reset)
        self.workers: dict[str, PodWorker] = {}
        self.host_ip = config.node_ip or nodeinfo.host_ip_for(config.server)
        self.node_ready = True
        self.pod_cidr = ""
        self.informer = None
        self.log_server = None
        self._own_log_server = False
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._ca: str | None = None
        self._cordoned: bool | None = None     # spec.unschedulable as last seen
        self.service_proxy = None
        self.node_routes = None
        self.network_policies = None   # skiff.agent.netpol.NetworkPolicyController (with node_network)
        self.cluster_dns = None
        self.reclaimer = None       # skiff.agent.claims.LocalPathReclaimer (real runtime only)

    # -- credentials --
    def _token_file(self) -> str:
        return os.path.join(self.config.root, "agent", "token")

    def _trust(self) -> str | None:
        """The CA file to verify the API server with (skiff.api.trust)."""
        from skiff.api.trust import ensure_ca
        return ensure_ca(self.config.server, self.config.token,
                         os.path.join(self.config.root, "agent", "ca.crt"), self.config.ca_file or None)

    async def _credentials(self) -> str:
        """The node token: saved from an earlier start, or exchanged for the join token."""
        path = self._token_file()
        try:
            with open(path) as f:
                saved = f.read().split()
            if len(saved) == 2 and saved[0] == self.name:
                return saved[1]
        except FileNotFoundError:
            pass
        from skiff.api.client import HTTPClient
        from skiff.api.trust import split_token
        _, secret = split_token(self.config.token)
        async with HTTPClient(self.config.server, secret, ca_file=self._ca) as c:
            try:
                out = await c.request("POST", "/apis/skiff.dev/v1/nodetokens", json={"nodeName": self.name})
            except APIError as e:
                if e.code in (401, 403):  # perhaps a node token already: use it as it is
                    return secret
                raise
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        from skiff.runtime.fsutil import atomic_write
        atomic_write(path, f"{self.name} {out['token']}\n", mode=0o600)
        return out["token"]

    # -- life --
    async def start(self) -> None:
        from skiff.controller.events import EventRecorder
        from skiff.runtime.images.store import ImageStore
        from skiff.runtime.root import Root

        from .images import ImageManager, use_pidfd_child_watcher
        from .podruntime import PodRuntime
        cfg = self.config
        fake = cfg.runtime == "fake"
        if not fake:
            use_pidfd_child_watcher()
        if self.client is None:
            from skiff.api.client import HTTPClient
            self._ca = self._trust()  # a file read, or one fetch at the first join: no thread (forks)
            token = await self._credentials()
            self.client = HTTPClient(cfg.server, token, ca_file=self._ca)
            if self.heartbeat_client is None:   # the kubelet's heartbeat client: a connection of
                # its own, and a timeout within the lease, so a lease is renewed while pod work waits
                self.heartbeat_client = HTTPClient(cfg.server, token, ca_file=self._ca, connection_limit=2,
                                                   timeout=max(5.0, min(30.0, cfg.lease_duration / 2)))
        self.events = EventRecorder(self.client, "kubelet", host=self.name)
        from .objcache import ObjectCache
        self.objects = ObjectCache(self.client)
        if fake:  # a hollow node: only the runtime is fake, every image is present
            from .fakeruntime import FakeImageManager, FakePodRuntime
            self.runtime = FakePodRuntime(cfg.root, pod_network=cfg.pod_network, bridge=cfg.pod_bridge)
            self.images = FakeImageManager(self.events)
        elif cfg.runtime == "real":
            self.runtime = PodRuntime(cfg.root, pod_network=cfg.pod_network, bridge=cfg.pod_bridge,
                                      cgroup_parent=cfg.cgroup_parent)
            self.images = ImageManager(ImageStore(Root(cfg.root)), self.events, insecure=cfg.insecure_registries)
        else:
            raise ValueError(f"unknown runtime {cfg.runtime!r}: want real or fake")
        self.runtime.host_ip = self.host_ip     # a hostNetwork pod's IP
        if self.log_server is None:
            from .logserver import LogServer
            self.log_server = LogServer(self, cfg.log_host or self.host_ip, cfg.log_port)
            self._own_log_server = True
            port = await self.log_server.start()
        else:  # shared (hollow nodes): started by its owner
            port = self.log_server.port
        await self._register(port)
        if not fake:    # local-path volumes: where they go, and their removal (skiff.agent.claims)
            from .claims import LocalPathReclaimer, publish_storage_dir
            await publish_storage_dir(self)
            self.reclaimer = LocalPathReclaimer(self)
            await self.reclaimer.start()
        self.runtime.ensure_network(self.pod_cidr)
        self.runtime.ensure_pause_image()
        self._tasks.append(asyncio.create_task(self._lease_loop(), name="lease"))
        node_network = cfg.node_network if cfg.node_network is not None else not fake
        if node_network and cfg.cluster_dns:   # before the pods: their resolv.conf names it
            await self._start_cluster_dns()
        await self._watch_pods()
        self._tasks.append(asyncio.create_task(self._resync_loop(), name="resync"))
        if node_network:
            await self._start_node_network()
            if self.cluster_dns is not None:
                self.cluster_dns.attach(self.service_proxy.services, self.service_proxy.slices)
        log.info("agent %s ready: node IP %s, podCIDR %s, logs on port %d", self.name, self.host_ip,
                 self.pod_cidr, port, extra={"fields": {"node": self.name, "podCIDR": self.pod_cidr}})

    async def stop(self) -> None:
        """Stop the agent; the containers keep running (a new agent adopts them)."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.informer is not None:
            await self.informer.stop()
        if self.reclaimer is not None:
            await self.reclaimer.stop()
        if self.cluster_dns is not None:
            await self.cluster_dns.stop()
        # the service table and the routes go with the agent (a new agent makes them again)
        for part in (self.service_proxy, self.node_routes, self.network_policies):
            if part is not None:
                await part.stop(cleanup=True)
        for w in list(self.workers.values()):
            await w.stop()
        self.workers.clear()
        if self.log_server is not None and self._own_log_server:
            await self.log_server.stop()
        if self.events is not None:
            await _maybe(self.events, "close")
        for c in (self.heartbeat_client, self.client):
            if c is not None:
                await c.close()

    async def known_services(self, timeout: float = 5.0) -> list[dict]:
        """The Services this node knows (the service proxy's cache; none on a hollow node),
        for the service environment variables of the containers it starts. Just after the
        agent starts, waits (up to ``timeout`` s) for that cache's first list, as the kubelet
        waits for its service informer, so that no container misses its variables."""
        inf = getattr(self.service_proxy, "services", None)
        if inf is None:
            return []
        if not inf.synced.is_set():
            try:
                await asyncio.wait_for(inf.synced.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning("services not listed after %.0f s: starting a container without "
                            "service variables", timeout)
        return inf.list()

    async def _start_cluster_dns(self) -> None:
        """Listen for DNS on the pod gateway; on failure (port 53 taken...) say so and leave
        ClusterFirst pods with the host's resolv.conf, as before."""
        from .clusterdns import ClusterDNS, PodDNS, read_resolv_conf
        cfg = self.config
        try:
            gateway = self.runtime.pod_gateway()
            servers, search = read_resolv_conf(cfg.resolv_conf)
            dns = ClusterDNS(cfg.cluster_domain, [(s, 53) for s in servers if s != gateway]
                             or [("127.0.0.1", 53)])
            await dns.start(gateway, cfg.dns_port)
        except (OSError, ValueError, KeyError, ImportError) as e:
            log.warning("no cluster DNS (ClusterFirst pods get the host's resolv.conf): %s", e)
            return
        self.cluster_dns = dns
        self.runtime.cluster_dns = PodDNS(gateway, dns.domain, tuple(search))

    async def _start_node_network(self) -> None:
        """Services and the routes to the other nodes' pods: both watch the API and write
        through the runtime's backends; neither blocks the start (they sync once their
        first lists are in)."""
        from .noderoutes import NodeRoutes
        from .serviceproxy import ServiceProxy, table_name_for
        self.node_routes = NodeRoutes(self.client, self.name, self.pod_cidr, self.runtime.route_backend())
        await self.node_routes.start()
        self.service_proxy = ServiceProxy(self.client, self.name, self.pod_cidr,
                                          self.runtime.service_backend(table_name_for(self.config.pod_bridge)))
        await self.service_proxy.start()
        # NetworkPolicies (skiff.agent.netpol): in nftables with the real runtime, in memory on a
        # hollow node
        from . import netpol
        table = netpol.table_name_for(self.config.pod_bridge)
        backend = (netpol.MemoryPolicyBackend(table) if self.config.runtime == "fake"
                   else netpol.NftPolicyBackend(table))
        self.network_policies = netpol.NetworkPolicyController(self.client, self.name, backend)
        await self.network_policies.start()

    # -- registration and lease --
    async def _register(self, port: int) -> None:
        body = nodeinfo.node_object(self.name, self.config.labels)
        while True:
            try:
                try:
                    node = await self.client.create("nodes", body)
                    log.info("registered node %s", self.name, extra={"fields": {"node": self.name}})
                except APIError as e:
                    if e.code != 409:
                        raise
                    node = await self.client.get("nodes", self.name)
                self._node_event("Starting", "Starting skiff agent.")
                await self._post_status(node, port)
                self._note_schedulable(node)
                break
            except (APIError, OSError) as e:
                log.warning("cannot register node %s yet: %s", self.name, e)
                await asyncio.sleep(1.0)
        # wait for the controller to give this node a podCIDR
        while not self.pod_cidr:
            node = await self.client.get("nodes", self.name)
            self.pod_cidr = (node.get("spec") or {}).get("podCIDR", "")
            if not self.pod_cidr:
                await asyncio.sleep(0.2)

    async def _post_status(self, node: dict, port: int | None = None) -> None:
        old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        st = nodeinfo.node_status(self.host_ip, port if port is not None else self.log_server.port,
                                  old.get("Ready"), self.config.root)
        await self._heartbeat.patch("nodes", self.name, {"status": st}, subresource="status")
        was = (old.get("Ready") or {}).get("status")
        now = next((c.get("status") for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
        if now == "True" and was != "True":
            self._node_event("NodeReady", f"Node {self.name} status is now: NodeReady")

    def _node_event(self, reason: str, message: str) -> None:
        """An event about this node, referenced as the kubelet does (uid = the node's name)."""
        if self.events is not None:
            self.events.record({"kind": "Node", "apiVersion": "v1",
                                "metadata": {"name": self.name, "uid": self.name}}, "Normal", reason, message)

    def _note_schedulable(self, node: dict) -> None:
        """NodeSchedulable / NodeNotSchedulable when spec.unschedulable changes (cordon)."""
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        if self._cordoned is not None and cordoned != self._cordoned:
            status = "NodeNotSchedulable" if cordoned else "NodeSchedulable"
            self._node_event(status, f"Node {self.name} status is now: {status}")
        self._cordoned = cordoned

    @property
    def _heartbeat(self):
        return self.heartbeat_client or self.client

    async def _lease_loop(self) -> None:
        cfg = self.config
        interval = max(cfg.lease_duration / 4.0, 0.2)
        lease = None
        hb = self._heartbeat
        while True:
            try:
                if lease is None:
                    try:
                        lease = await hb.create(
                            "leases", nodeinfo.lease_object(self.name, cfg.lease_duration), NODE_LEASE_NAMESPACE)
                    except APIError as e:
                        if e.code != 409:
                            raise
                        lease = await hb.get("leases", self.name, NODE_LEASE_NAMESPACE)
                lease = await hb.patch("leases", self.name, {"spec": {
                    "holderIdentity": self.name, "leaseDurationSeconds": int(cfg.lease_duration),
                    "renewTime": nodeinfo.micro_now()}}, NODE_LEASE_NAMESPACE)
                # the node lifecycle controller marks a node whose lease lapsed; say Ready again
                node = await hb.get("nodes", self.name)
                self._note_schedulable(node)
                ready = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}.get("Ready")
                if not ready or ready.get("status") != "True":
                    await self._post_status(node)
                    log.info("node %s is Ready again", self.name)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the controller may be restarting
                log.warning("lease renewal failed: %s", e)
                lease = None
            await asyncio.sleep(interval)

    # -- pods --
    async def _watch_pods(self) -> None:
        from skiff.api.informer import Informer
        self.informer = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.name}")
        self.informer.add_handler(self._on_pod)
        await self.informer.start()
        self._adopt()

    def _adopt(self) -> None:
        """Pods the runtime has that the API no longer has are stopped and removed."""
        known = {(o.get("metadata") or {}).get("uid") for o in self.informer.cache.values()}
        for uid in self.runtime.all_pods():
            if uid not in known and uid not in self.workers:
                log.info("removing pod %s: it is no longer in the API", uid)
                w = PodWorker(self, uid)
                w.pod = {"metadata": {"name": uid, "uid": uid, "namespace": ""},
                         "spec": {"containers": [], "terminationGracePeriodSeconds": 0}}
                self.workers[uid] = w
                w.update(None)

    def _on_pod(self, etype: str, obj: dict, old: dict | None = None) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid or self._stopping:
            return
        w = self.workers.get(uid)
        if etype == "DELETED":
            if w is not None:
                w.update(None)
            elif uid in self.runtime.all_pods():
                w = self.workers[uid] = PodWorker(self, uid)
                w.pod = obj
                w.update(None)
            return
        if w is None:
            w = self.workers[uid] = PodWorker(self, uid)
            log.info("pod %s bound to this node", pod_ref(obj),
                     extra={"fields": {"pod": pod_ref(obj), "uid": uid}})
        w.update(obj)

    def worker_done(self, uid: str) -> None:
        self.workers.pop(uid, None)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync)
            for w in list(self.workers.values()):
                w.wake()

    # -- for the log server --
    def container_instance(self, ns: str, pod: str, cname: str, previous: bool = False):
        obj = self.informer.cache.get(f"{ns}/{pod}") if self.informer else None
        if obj is None:
            return None
        from .status import latest_two
        cur, prev = latest_two(self.runtime.containers(obj["metadata"]["uid"]), cname)
        return prev if previous else cur


async def _maybe(obj, name: str) -> None:
    fn = getattr(obj, name, None)
    if fn is not None:
        r = fn()
        if asyncio.iscoroutine(r):
            await r
