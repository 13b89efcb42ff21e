"""ControlPlane: the store, the watch cache, the registry, the API server and the in-process
controllers of one ``skiff controller`` (contracts §1, §2).

    cp = ControlPlane("/var/lib/skiff-controller", listen="127.0.0.1:0")
    await cp.start()          # DIR/state.db, default namespaces, tokens, DIR/kubeconfig, HTTP
    cp.url, cp.registry, cp.local_client(), cp.admin_token, await cp.mint_node_token("n1")
    cp.add_controller(lambda client: scheduler(client))   # runs after start, cancelled at stop
    await cp.stop()
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Awaitable, Callable

import yaml
from aiohttp import web

from skiff.controller.apiserver import APIServer
from skiff.controller.auth import ADMIN, TokenManager, User
from skiff.controller.local_client import LocalClient
from skiff.controller.registry import Registry
from skiff.controller.serviceips import DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR
from skiff.controller.storage import SqliteStore, WatchCache

log = logging.getLogger("skiff.controlplane")

ControllerFactory = Callable[[LocalClient], Awaitable[None]]


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = listen, "6443"
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def kubeconfig_text(server: str, token: str, ca_pem: bytes | None = None) -> str:
    cluster: dict = {"server": server}
    if ca_pem:
        import base64
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "skiff", "cluster": cluster}],
           "users": [{"name": "skiff-admin", "user": {"token": token}}],
           "contexts": [{"name": "skiff", "context": {"cluster": "skiff", "user": "skiff-admin"}}],
           "current-context": "skiff", "preferences": {}}
    return yaml.safe_dump(doc, sort_keys=False)


def read_kubeconfig_token(path: str) -> str | None:
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        return doc["users"][0]["user"]["token"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def write_private(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def secure_state_files(data_dir: str, db: str) -> None:
    """The store holds Secrets (and token hashes): its directory is 0700 and state.db (and
    SQLite's -wal/-shm/-journal, which SQLite creates with the database file's mode) 0600,
    readable by the controller's user only."""
    os.chmod(data_dir, 0o700)
    if not os.path.exists(db):
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (db, db + "-wal", db + "-shm", db + "-journal"):
        try:
            os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


def _small_tls_buffers(size: int = 4 * 1024) -> None:
    """asyncio (3.11) gives every TLS connection a 256 KiB read buffer, kept until the
    connection object is collected; with a thousand agents' connections that was ~540 MB of
    the controller's RSS at 1000 hollow nodes (bench/scale_bench.py). Requests are small: 4 KiB
    (a large body is read in more steps) keeps 1000 idle connections at ~60 MB where 16 KiB
    took ~73 MB (measured: 1000 TLS watches on an aiohttp server)."""
    try:
        from asyncio import sslproto
        if getattr(sslproto.SSLProtocol, "max_size", 0) > size:
            sslproto.SSLProtocol.max_size = size
    except (ImportError, AttributeError):  # another Python's asyncio: leave it
        pass


async def return_free_heap(interval: float = 10.0) -> None:
    """Every ``interval`` s, hand the C heap's free pages back to the kernel (glibc's
    malloc_trim). OpenSSL's allocations for TLS handshakes stay in glibc's heap once freed
    (measured: 3000 handshakes, 1000 at a time, left ~70 MB of free heap in the RSS; one trim
    returned 60 MB in 7 ms, later ones take <1 ms). Without glibc: nothing to do."""
    try:
        import ctypes
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    while True:
        await asyncio.sleep(interval)
        trim(0)


class ControlPlane:
    def __init__(self, data_dir: str, listen: str = "127.0.0.1:0", log_format: str = "text", *,
                 watch_cache_capacity: int = 2048, bookmark_interval: float = 10.0,
                 pod_eviction_timeout: int = 300, tls: bool = True, tls_sans: tuple[str, ...] = (),
                 service_cidr: str | None = None, node_port_range: str | None = None,
                 advertise_address: str | None = None):
        self.data_dir = os.path.abspath(data_dir)
        # HTTPS with a CA of the cluster's own (DATA_DIR/pki): kubectl sends tokens only over TLS
        self.tls = tls
        self.tls_sans = tuple(tls_sans)
        self.ca_file: str | None = None
        self.ca_hash: str | None = None
        self.listen = listen
        self.log_format = log_format
        self.watch_cache_capacity = watch_cache_capacity
        self.bookmark_interval = bookmark_interval
        # seconds a pod tolerates its node being not-ready/unreachable (--pod-eviction-timeout):
        # the tolerationSeconds of the default NoExecute tolerations admission gives every pod
        self.pod_eviction_timeout = int(pod_eviction_timeout)
        # where Services' cluster IPs and node ports come from (--service-cidr,
        # --service-node-port-range; None: Kubernetes' defaults)
        self.service_cidr = service_cidr or DEFAULT_SERVICE_CIDR
        self.node_port_range = node_port_range or DEFAULT_NODE_PORT_RANGE
        # where pods reach the API server (the kubernetes Service's endpoint; see apiendpoints)
        self.advertise_address = advertise_address
        self.kubernetes_service_interval = 10.0    # how often that Service is checked (tests: less)
        self.url: str | None = None
        self.registry: Registry | None = None
        self.tokens: TokenManager | None = None
        self.admin_token: str | None = None
        self.apiserver_token: str | None = None
        self.kubeconfig_path = os.path.join(self.data_dir, "kubeconfig")
        self._store: SqliteStore | None = None
        self._cache: WatchCache | None = None
        self._runner: web.ServerRunner | None = None
        self._api = None
        self._factories: list[ControllerFactory] = []
        self._tasks: list[asyncio.Task] = []
        self._started = False

    def client_ssl(self):
        """An ssl context trusting this cluster's CA (True when serving plain http), for
        aiohttp.TCPConnector(ssl=...)."""
        if not self.ca_file:
            return True
        import ssl
        return ssl.create_default_context(cafile=self.ca_file)

    def local_client(self, user: User = ADMIN) -> LocalClient:
        return LocalClient(self.registry, user)

    async def mint_node_token(self, node_name: str) -> str:
        return await self.tokens.create_node_token(node_name)

    async def mint_join_token(self, ttl_seconds: float | None = None) -> str:
        """A join token; on TLS it carries the CA's hash (K10<sha256>::secret) for the agent."""
        token, _ = await self.tokens.create_join_token(ttl_seconds)
        if self.ca_hash:
            from skiff.api.trust import secure_token
            token = secure_token(self.ca_hash, token)
        return token

    def add_controller(self, coro_factory: ControllerFactory) -> None:
        self._factories.append(coro_factory)
        if self._started:
            self._spawn(coro_factory)

    def _spawn(self, factory: ControllerFactory) -> None:
        name = getattr(factory, "__name__", "controller")

        async def run() -> None:
            try:
                await factory(self.local_client())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a controller must not take the server down
                log.exception("controller %s failed", name)
        self._tasks.append(asyncio.create_task(run(), name=f"controller-{name}"))

    async def start(self) -> None:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        db = os.path.join(self.data_dir, "state.db")
        secure_state_files(self.data_dir, db)
        self._store = SqliteStore(db)
        try:
            self._cache = WatchCache(self._store, capacity=self.watch_cache_capacity, uncached=("/events/",))
            await self._cache.start()
            self.registry = Registry(self._cache, bookmark_interval=self.bookmark_interval,
                                     pod_eviction_timeout=self.pod_eviction_timeout,
                                     service_cidr=self.service_cidr, node_port_range=self.node_port_range)
            self.tokens = TokenManager(self._cache)
            await self.registry.ensure_namespaces()
            from skiff.controller.admission_priority import ensure_system_priority_classes
            await ensure_system_priority_classes(self.registry)
            from skiff.controller.rbac_bootstrap import ensure_bootstrap_policy
            await ensure_bootstrap_policy(self.registry)     # default ClusterRoles and bindings
            # the cluster IPs and node ports the stored services hold, before any request
            await self.registry.service_ips.ensure_loaded(self._cache)
            token = read_kubeconfig_token(self.kubeconfig_path)
            if token is None or not await self.tokens.is_kind(token, "admin"):
                token = await self.tokens.create_admin_token()
            self.admin_token = token
            self.apiserver_token = await self.tokens.create_apiserver_token()
            server = APIServer(self.registry, self.tokens, self.apiserver_token)
            host, port = parse_listen(self.listen)
            ssl_context = None
            if self.tls:
                from skiff.controller.pki import ensure_pki
                from skiff.controller.apiendpoints import advertise_address
                adv = advertise_address(host, self.advertise_address)
                # pods reach the server as kubernetes.default.svc at the Service's cluster IP
                sans = self.tls_sans + (self.registry.service_ips.reserved_ip,) + ((adv,) if adv else ())
                pki = ensure_pki(self.data_dir, host, sans)  # once, before serving
                ssl_context = pki.server_context()
                _small_tls_buffers()
                server.ca_pem, server.ca_hash = pki.ca_pem, pki.ca_hash
                self.ca_file, self.ca_hash = pki.ca_file, pki.ca_hash
            self._api = server
            self._runner = web.ServerRunner(server.make_server(access_log=None, handler_cancellation=True),
                                            shutdown_timeout=2.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=ssl_context)
            await site.start()
            sock = site._server.sockets[0]  # the real port when port is 0
            port = sock.getsockname()[1]
            hostpart = f"[{host}]" if ":" in host else host
            scheme = "https" if self.tls else "http"
            self.url = f"{scheme}://{hostpart}:{port}"
            server.server_address = f"{hostpart}:{port}"
            write_private(self.kubeconfig_path, kubeconfig_text(self.url, self.admin_token, server.ca_pem))
        except BaseException:
            await self._close_backend()
            raise
        self._started = True
        self._tasks.append(asyncio.create_task(return_free_heap(), name="return-free-heap"))
        from skiff.controller.apiendpoints import advertise_address, run_kubernetes_service
        self._tasks.append(asyncio.create_task(run_kubernetes_service(
            self.registry, self.registry.service_ips.reserved_ip, advertise_address(host, self.advertise_address),
            port, self.kubernetes_service_interval), name="kubernetes-service"))
        ca_pem = None
        if self.ca_file:
            from skiff.controller.rootca import RootCAPublisher
            with open(self.ca_file) as f:
                ca_pem = f.read()
            self._tasks.append(asyncio.create_task(RootCAPublisher(self.local_client(), ca_pem).run(),
                                                   name="root-ca-cert-publisher"))
        # the tokens controller signs with the ServiceAccount key and hands out the CA: it runs
        # here, with that material, as kube-controller-manager runs it first and on its own
        from skiff.controller import satokens
        from skiff.controller.tokens_controller import TokensController
        sa_key = await satokens.signing_key(self._cache)
        self._tasks.append(asyncio.create_task(TokensController(self.local_client(), sa_key, ca_pem).run(),
                                               name="serviceaccount-tokens"))
        from skiff.controller.rbac_bootstrap import ClusterRoleAggregator
        self._tasks.append(asyncio.create_task(ClusterRoleAggregator(self.local_client()).run(),
                                               name="clusterrole-aggregation"))
        for f in self._factories:
            self._spawn(f)
        log.info("API server listening on %s", self.url)

    async def _close_backend(self) -> None:
        if self._cache is not None:
            # first: open watches end (their streams finish), so the HTTP server can stop at once
            await self._cache.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._api is not None:
            await self._api.close()
            self._api = None
        self._cache = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._started = False
        await self._close_backend()

    async def __aenter__(self) -> "ControlPlane":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
