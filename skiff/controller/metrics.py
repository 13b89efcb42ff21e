"""Resource metrics (what metrics-server computes for ``metrics.k8s.io``): CPU rates from two
scrapes of the agents' cumulative counters (``GET /stats/summary``, :mod:`skiff.agent.stats`),
memory working set from the latest scrape.

Cost when unused: nothing. No scrape runs until someone asks (``kubectl top``, the HPA
controller through the metrics API). A request finds the cache fresh (served at once) or
stale: then every node is scraped, and scraped once more ``MIN_WINDOW`` seconds later if
there is no recent previous scrape to take a rate against. After a request a background loop
keeps scraping every ``INTERVAL`` seconds (metrics-server's 15 s), so that the next request
and the HPA's periodic reads are answered from the cache; the loop ends ``IDLE`` seconds after
the last request, and the samples are dropped with it.

The pure part (:func:`rates`) turns two parsed summaries into NodeMetrics / PodMetrics values
and is unit-tested on its own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger("skiff.controller.metrics")

INTERVAL = 15.0      # seconds between scrapes while metrics are being asked for
IDLE = 300.0         # the loop stops this long after the last request
MIN_WINDOW = 1.0     # the shortest window a first request waits for
STALE = 2 * INTERVAL  # an older previous scrape is not used for a rate
TIMEOUT = 5.0        # per node
CONCURRENCY = 64     # scrapes in flight


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Point:
    """One cumulative reading: when, CPU ns so far (None: not known), working set."""
    t: float
    cpu: int | None
    mem: int | None


def _point(entry: dict) -> Point | None:
    cpu, mem = entry.get("cpu") or {}, entry.get("memory") or {}
    t = parse_time(cpu.get("time")) or parse_time(mem.get("time"))
    if t is None:
        return None
    c = cpu.get("usageCoreNanoSeconds")
    m = mem.get("workingSetBytes")
    return Point(t, int(c) if isinstance(c, int) else None, int(m) if isinstance(m, int) else None)


@dataclass
class PodSample:
    uid: str
    containers: dict[str, tuple[str, Point | None]] = field(default_factory=dict)  # name -> (startTime, point)


@dataclass
class NodeSample:
    """One scrape of one node: parsed from its summary."""
    node: Point | None
    pods: dict[tuple[str, str], PodSample]


def parse_summary(doc: dict) -> NodeSample:
    node = _point(doc.get("node") or {})
    pods: dict[tuple[str, str], PodSample] = {}
    for p in doc.get("pods") or []:
        ref = p.get("podRef") or {}
        if not ref.get("name"):
            continue
        ps = PodSample(ref.get("uid") or "")
        for c in p.get("containers") or []:
            if c.get("name"):
                ps.containers[c["name"]] = (c.get("startTime") or "", _point(c))
        pods[(ref.get("namespace") or "default", ref["name"])] = ps
    return NodeSample(node, pods)


@dataclass
class Usage:
    """A rate over a window: CPU in nanocores, memory in bytes, at ``timestamp``."""
    timestamp: float
    window: float
    cpu: int
    memory: int


def _rate(old: Point | None, new: Point | None) -> Usage | None:
    """CPU rate between two readings of one counter; None if either is missing, the counter
    went back (a restarted container), or no time passed."""
    if old is None or new is None or old.cpu is None or new.cpu is None or new.mem is None:
        return None
    dt = new.t - old.t
    if dt <= 0 or new.cpu < old.cpu:
        return None
    return Usage(new.t, dt, int((new.cpu - old.cpu) / dt), new.mem)


def rates(old: NodeSample, new: NodeSample) -> tuple[Usage | None, dict[tuple[str, str], dict[str, Usage]]]:
    """(the node's usage, {(ns, pod): {container: usage}}) between two scrapes of one node.
    A pod is left out unless every container of the new scrape has a rate (metrics-server
    does the same: partial pod metrics would mislead the HPA)."""
    node = _rate(old.node, new.node)
    pods: dict[tuple[str, str], dict[str, Usage]] = {}
    for key, ps in new.pods.items():
        prev = old.pods.get(key)
        if prev is None or prev.uid != ps.uid or not ps.containers:
            continue
        out: dict[str, Usage] = {}
        for name, (started, pt) in ps.containers.items():
            was = prev.containers.get(name)
            if was is None or was[0] != started:
                break
            u = _rate(was[1], pt)
            if u is None:
                break
            out[name] = u
        else:
            pods[key] = out
    return node, pods


# ---------------------------------------------------------------- the scraper

def node_endpoint(node: dict) -> str | None:
    """The base URL of a node's agent server (its InternalIP and kubelet endpoint port)."""
    st = node.get("status") or {}
    addrs = st.get("addresses") or []
    ip = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None) or \
        next((a.get("address") for a in addrs if a.get("address")), None)
    port = (((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port"))
    if not ip or not port:
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


class MetricsScraper:
    """The on-demand scraper. ``list_nodes``: an async function returning the Node objects;
    ``session``: a function returning an aiohttp session; ``headers``: the agents' bearer."""

    def __init__(self, list_nodes, session, headers, *, interval: float = INTERVAL, idle: float = IDLE,
                 min_window: float = MIN_WINDOW, timeout: float = TIMEOUT):
        self.list_nodes, self.session, self.headers = list_nodes, session, headers
        self.interval, self.idle, self.min_window, self.timeout = interval, idle, min_window, timeout
        self._prev: dict[str, NodeSample] = {}
        self._last: dict[str, NodeSample] = {}
        self._scraped_at = 0.0          # monotonic time of the last complete scrape
        self._prev_at = 0.0
        self._demand = 0.0
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task | None = None
        self.scrapes = 0                # complete scrapes so far (tests, logs)

    async def current(self) -> tuple[dict[str, Usage], dict[tuple[str, str], dict[str, Usage]]]:
        """(node name -> usage, (ns, pod) -> {container: usage}) as fresh as the cache allows:
        the entry point of every metrics request."""
        self._demand = time.monotonic()
        async with self._lock:
            now = time.monotonic()
            if now - self._scraped_at >= self.interval:
                await self._scrape_all()
            if not self._prev or time.monotonic() - self._prev_at > STALE:
                # no earlier scrape to take a rate against: make one window now
                await asyncio.sleep(self.min_window)
                await self._scrape_all()
            self._ensure_loop()
            return self._computed()

    def _computed(self):
        nodes: dict[str, Usage] = {}
        pods: dict[tuple[str, str], dict[str, Usage]] = {}
        for name, new in self._last.items():
            old = self._prev.get(name)
            if old is None:
                continue
            n, ps = rates(old, new)
            if n is not None:
                nodes[name] = n
            pods.update(ps)
        return nodes, pods

    def _ensure_loop(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._keep_warm(), name="metrics-scraper")

    async def _keep_warm(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                if time.monotonic() - self._demand > self.idle:
                    break
                async with self._lock:
                    if time.monotonic() - self._scraped_at >= self.interval * 0.9:
                        await self._scrape_all()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("metrics scrape loop failed")
        finally:
            # nobody asks: drop the samples (the next request starts a fresh window)
            if time.monotonic() - self._demand > self.idle:
                self._prev, self._last, self._scraped_at, self._prev_at = {}, {}, 0.0, 0.0

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            try:
                await self._loop
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._loop = None

    async def _scrape_all(self) -> None:
        nodes = await self.list_nodes()
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(node: dict):
            name = (node.get("metadata") or {}).get("name")
            async with sem:
                return name, await self._scrape(node)
        results = await asyncio.gather(*(one(n) for n in nodes))
        fresh = {name: s for name, s in results if name and s is not None}
        self._prev = {name: self._last[name] for name in fresh if name in self._last}
        self._prev_at = self._scraped_at
        self._last = fresh
        self._scraped_at = time.monotonic()
        self.scrapes += 1

    async def _scrape(self, node: dict) -> NodeSample | None:
        import aiohttp
        base = node_endpoint(node)
        name = (node.get("metadata") or {}).get("name")
        if base is None:
            return None
        try:
            async with self.session().get(f"{base}/stats/summary", params={"node": name},
                                          headers=self.headers(),
                                          timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if resp.status != 200:
                    log.info("metrics: node %s answered %d to /stats/summary", name, resp.status)
                    return None
                return parse_summary(await resp.json())
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
            log.info("metrics: cannot scrape node %s: %s", name, e)
            return None
