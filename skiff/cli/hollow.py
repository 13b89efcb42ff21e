"""skiff hollow: N hollow nodes (the real agent over the fake runtime) in one process.

Like kubemark's hollow nodes: each hollow node is a real :class:`skiff.agent.agent.Agent`
(its own Node, Lease, node token, pod informer with its own ``spec.nodeName`` field selector,
pod workers, status updates, events) whose only fake part is the runtime
(:class:`skiff.agent.fakeruntime.FakePodRuntime`). They share one aiohttp connector (one
connection pool) and one log server port.

    skiff hollow --server URL --token T --nodes N [--prefix hollow-] [--lease-duration 40]
"""
from __future__ import annotations

from ..errors import InvalidArgument
from .parser import Command, Opt

COMMAND = Command("hollow", "hollow --server URL --token TOKEN --nodes N [OPTIONS]",
                  "Run N hollow nodes (the real agent over a fake runtime) in one process", [
                      Opt(("--server",), "server", "str", "URL of the API server", "URL"),
                      Opt(("--token",), "token", "str", "Join token (or admin token)", "TOKEN"),
                      Opt(("--ca-file",), "ca_file", "str", "CA to verify the API server with (default: "
                          "the one the join token's hash pins)", "FILE"),
                      Opt(("--nodes",), "nodes", "int", "How many hollow nodes", "N", 10),
                      Opt(("--prefix",), "prefix", "str", "Node name prefix", "PREFIX", "hollow-"),
                      Opt(("--lease-duration",), "lease", "int", "Node lease duration in seconds",
                          "SECONDS", 40),
                      Opt(("--resync",), "resync", "str", "Pod worker resync period in seconds",
                          "SECONDS", "60"),
                      Opt(("--log-port",), "log_port", "int", "Port of the shared log server "
                          "(0: any free one; -1: none)", "PORT", 0),
                      Opt(("--start-concurrency",), "concurrency", "int",
                          "How many nodes register at a time", "N", 50),
                      Opt(("--connections",), "connections", "int",
                          "Connections the nodes' requests share (watches have their own; 0: no "
                          "cap)", "N", 32),
                      Opt(("--log-format",), "log_format", "str", "Log line format: text or json",
                          "FORMAT", "text"),
                      Opt(("--log-level",), "log_level", "str", "Log level", "LEVEL", "WARNING"),
                  ], max_args=0)


class _Mux:
    """What the shared log server needs from 'the agent': the pods of every hollow node."""

    def __init__(self, agents):
        self.agents = agents
        self.runtime = self

    @property
    def client(self):
        return self.agents[0].client

    def container_instance(self, ns: str, pod: str, cname: str, previous: bool = False):
        for a in self.agents:
            if a.informer is not None and f"{ns}/{pod}" in a.informer.cache:
                return a.container_instance(ns, pod, cname, previous)
        return None

    def _rt(self, cid: str):
        for a in self.agents:
            if a.runtime is not None and cid in getattr(a.runtime, "_by_id", {}):
                return a.runtime
        from ..errors import NotFound
        raise NotFound(f"No such container: {cid}")

    def log_path(self, cid: str) -> str:
        return self._rt(cid).log_path(cid)

    def is_running(self, cid: str) -> bool:
        try:
            return self._rt(cid).is_running(cid)
        except Exception:  # noqa: BLE001
            return False


class Hollow:
    def __init__(self, server: str, token: str, nodes: int, prefix: str = "hollow-", *,
                 lease_duration: int = 40, resync: float = 60.0, log_port: int = 0,
                 concurrency: int = 50, root: str | None = None, ca_file: str | None = None,
                 connections: int = 32):
        self.ca_file = ca_file or None
        self.server, self.token = server.rstrip("/"), token
        self.n, self.prefix = nodes, prefix
        self.lease_duration, self.resync = lease_duration, resync
        self.log_port, self.concurrency = log_port, concurrency
        self.root = root
        self.agents: list = []
        # A kubelet has one HTTP/2 connection to the API server for its watches and requests.
        # Here every node's watch is its own HTTP/1.1 stream, and the nodes' short requests share
        # a capped pool: without the cap, bursts grew it to ~1000 keep-alive TLS connections,
        # each costing the API server memory and a handshake.
        self.connections = max(connections, 0)
        self.connector = None           # for requests
        self.stream_connector = None    # for watches
        self.heartbeat_connector = None  # for the Leases and node status
        self.log_server = None

    @property
    def heartbeat_connections(self) -> int:
        """The heartbeats' pool: a Lease renewal per node every lease/4 seconds, each a few ms."""
        return max(2, self.connections // 4) if self.connections else 0

    def names(self) -> list[str]:
        width = max(len(str(self.n - 1)), 4)
        return [f"{self.prefix}{i:0{width}d}" for i in range(self.n)]

    def _client(self, token: str, heartbeat: bool = False):
        import json

        import aiohttp

        from skiff.api.client import HTTPClient
        # heartbeats (Lease, node status) have their own small pool, not the requests' queue:
        # a burst of pod starts must not let the nodes' leases lapse (the kubelet's heartbeat
        # client). A request may wait in the queue as long as it takes (the API server is the
        # bottleneck it queues for); once sent, the usual 30 s apply.
        stream_connector = self.stream_connector
        connector = self.heartbeat_connector if heartbeat else self.connector
        queued = None if heartbeat or not self.connections else aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=30, sock_read=30)

        class SharedClient(HTTPClient):
            _stream = None

            def _shared(self, conn, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    headers=self._headers, connector=conn, connector_owner=False, timeout=timeout,
                    json_serialize=lambda o: json.dumps(o, separators=(",", ":")))

            @property
            def session(self) -> aiohttp.ClientSession:
                if self._session is None or self._session.closed:
                    self._session = self._shared(connector, queued or self._timeout)
                return self._session

            @property
            def stream_session(self) -> aiohttp.ClientSession:
                if self._stream is None or self._stream.closed:
                    self._stream = self._shared(stream_connector, self._timeout)
                return self._stream

            async def close(self) -> None:
                if self._stream is not None and not self._stream.closed:
                    await self._stream.close()
                await super().close()
        return SharedClient(self.server, token)

    async def _node_token(self, boot, name: str) -> str:
        from skiff.api.errors import APIError
        try:
            out = await boot.request("POST", "/apis/skiff.dev/v1/nodetokens", json={"nodeName": name})
            return out["token"]
        except APIError as e:
            if e.code in (401, 403):
                return self.token
            raise

    async def start(self) -> None:
        import asyncio
        import logging
        import os
        import tempfile

        import aiohttp

        from skiff.agent.agent import Agent, AgentConfig
        log = logging.getLogger("skiff.hollow")
        root = self.root or os.path.join(tempfile.gettempdir(), "skiff-hollow")
        from skiff.api.trust import ensure_ca, split_token
        ca = ensure_ca(self.server, self.token, os.path.join(root, "hollow-ca.crt"), self.ca_file)
        ssl_ctx = True
        if ca:
            import ssl
            ssl_ctx = ssl.create_default_context(cafile=ca)
        self.token = split_token(self.token)[1]
        self.connector = aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=60, ssl=ssl_ctx)
        self.stream_connector = aiohttp.TCPConnector(limit=0, ssl=ssl_ctx)
        self.heartbeat_connector = aiohttp.TCPConnector(limit=self.heartbeat_connections, keepalive_timeout=60,
                                                        ssl=ssl_ctx)
        boot = self._client(self.token)
        sem = asyncio.Semaphore(max(self.concurrency, 1))
        if self.log_port >= 0:
            from skiff.agent.logserver import LogServer
            self.log_server = LogServer(_Mux(self.agents), "127.0.0.1", self.log_port)
            await self.log_server.start()

        async def one(name: str) -> None:
            async with sem:
                token = await self._node_token(boot, name)
                cfg = AgentConfig(server=self.server, token=token, node_name=name, runtime="fake",
                                  root=os.path.join(root, name), lease_duration=self.lease_duration,
                                  resync=self.resync, node_ip="127.0.0.1",
                                  labels={"skiff.dev/hollow": "true"})
                a = Agent(cfg, client=self._client(token), heartbeat_client=self._client(token, heartbeat=True))
                a.log_server = self.log_server or _NoLogServer()
                self.agents.append(a)
                await a.start()
        t0 = asyncio.get_running_loop().time()
        try:
            await asyncio.gather(*(one(n) for n in self.names()))
        finally:
            await boot.close()
        log.warning("%d hollow nodes ready in %.1f s", len(self.agents),
                    asyncio.get_running_loop().time() - t0)

    async def stop(self) -> None:
        import asyncio
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)
        if self.log_server is not None:
            await self.log_server.stop()
        for conn in (self.connector, self.stream_connector, self.heartbeat_connector):
            if conn is not None:
                await conn.close()


class _NoLogServer:
    port = 0

    async def stop(self) -> None:
        return None


def main(ctx, values, args) -> int:
    if not values["server"] or not values["token"]:
        raise InvalidArgument("skiff hollow needs --server URL and --token TOKEN")
    if values["nodes"] < 1:
        raise InvalidArgument("--nodes must be at least 1")
    try:
        resync = float(values["resync"])
    except ValueError:
        raise InvalidArgument(f"invalid --resync {values['resync']!r}") from None
    import logging
    import sys

    from ..logutil import setup_logging
    setup_logging(values["log_format"], values["log_level"].upper())
    h = Hollow(values["server"], values["token"], values["nodes"], values["prefix"],
               lease_duration=values["lease"], resync=resync, log_port=values["log_port"],
               concurrency=values["concurrency"], root=ctx.root_path, ca_file=values.get("ca_file"),
               connections=values["connections"])

    async def start():
        await h.start()
        sys.stderr.write(f"skiff hollow: {len(h.agents)} nodes ready\n")
        sys.stderr.flush()
        logging.getLogger("skiff.hollow").info("ready")
    from .agent import run_until_signalled
    return run_until_signalled(start, h.stop)
