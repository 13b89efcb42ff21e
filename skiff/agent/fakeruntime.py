"""A fake pod runtime for hollow nodes (like kubemark's hollow kubelet).

``FakePodRuntime`` has :class:`skiff.agent.podruntime.PodRuntime`'s interface, but keeps the
pods in memory: a sandbox "runs" as soon as it is made (an address from the node's podCIDR),
a container "starts" at once and runs until it is stopped or signalled (SIGTERM, SIGKILL or
the stop signal end it; exit 0 for TERM, 137 for KILL, as a real process would report).
Only the runtime is fake: the real Agent, pod workers, status, lease and informer run on top.

It needs no root, no bridge, no images; the pid of every instance is 0, so the pod workers
do not watch pidfds (nothing would ever exit on its own). Its service table, node routes and
pod network peers (``service_backend``, ``route_backend``, ``set_pod_peers``) are only kept in
memory: a hollow node never touches nftables or the routing table.
"""
from __future__ import annotations

import atexit
import ipaddress
import itertools
import os
import tempfile

from skiff.api.timefmt import rfc3339

from ..errors import InvalidArgument, NotFound
from .images import ImageManager
from .podruntime import ContainerInfo, Sandbox, _meta

FAKE_IMAGE_ID = "sha256:" + "0" * 64
_LOG_FILE: str | None = None   # one empty log file for every hollow container of the process



def _remove_log_file(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Instance:
    __slots__ = ("id", "pod_uid", "name", "attempt", "image", "state", "exit_code",
                 "started_at", "finished_at", "reason", "created")

    def __init__(self, cid: str, pod_uid: str, name: str, attempt: int, image: str, seq: int):
        self.id = cid
        self.pod_uid = pod_uid
        self.name = name
        self.attempt = attempt
        self.image = image
        self.state = "running"
        self.exit_code = 0
        self.started_at: str | None = rfc3339()
        self.finished_at: str | None = None
        self.reason = ""
        self.created = seq

    def info(self) -> ContainerInfo:
        return ContainerInfo(id=self.id, name=self.name, attempt=self.attempt, image=self.image,
                             image_id=FAKE_IMAGE_ID, state=self.state, pid=0,
                             exit_code=self.exit_code if self.state == "exited" else 0,
                             started_at=self.started_at, finished_at=self.finished_at,
                             reason=self.reason, oom_killed=False)

    def exit(self, code: int) -> None:
        if self.state != "running":
            return
        self.state = "exited"
        self.exit_code = code
        self.reason = "Completed" if code == 0 else "Error"
        self.finished_at = rfc3339()


class _FakePod:
    __slots__ = ("uid", "sandbox", "containers")

    def __init__(self, uid: str):
        self.uid = uid
        self.sandbox: Sandbox | None = None
        self.containers: list[_Instance] = []   # oldest first


class FakePodRuntime:
    """In-memory pods with PodRuntime's interface (contracts.md §5)."""

    fake = True

    def __init__(self, root: str | None = None, pod_network: str = "pods", bridge: str = "skiffpods0",
                 *, cgroup_parent: str = "skiff"):
        self.root = root
        self.pod_network, self.bridge = pod_network, bridge
        self.pod_cidr = ""
        self._pods: dict[str, _FakePod] = {}
        self._by_id: dict[str, _Instance] = {}
        self._ids = itertools.count(1)
        self._hosts = None
        self._free_ips: list[str] = []
        self._ip_of: dict[str, str] = {}
        self.pod_peers: list[str] = []
        self.pod_peer_hosts: list[str] = []
        self.host_ip = ""   # the node's InternalIP: a hostNetwork pod's IP (set by the agent)
        self.services: FakeServiceBackend | None = None
        self.routes: FakeRouteBackend | None = None

    # -- network and pause image ------------------------------------------------------------
    def ensure_network(self, pod_cidr: str) -> None:
        if pod_cidr and pod_cidr != self.pod_cidr:
            self.pod_cidr = pod_cidr
            net = ipaddress.ip_network(pod_cidr, strict=False)
            self._hosts = itertools.islice(net.hosts(), 1, None)  # .1 is the gateway

    def ensure_pause_image(self) -> str:
        return FAKE_IMAGE_ID

    def _next_id(self) -> str:
        return f"{next(self._ids):012x}{os.urandom(26).hex()}"

    def _alloc_ip(self, uid: str) -> str:
        ip = self._ip_of.get(uid)
        if ip:
            return ip
        if self._free_ips:
            ip = self._free_ips.pop()
        else:
            ip = ""
            if self._hosts is not None:
                ip = str(next(self._hosts, "") or "")
            if not ip:
                ip = "10.255.255.254"
        self._ip_of[uid] = ip
        return ip

    # -- sandbox ----------------------------------------------------------------------------
    def run_sandbox(self, pod: dict) -> Sandbox:
        uid, _name, _ns = _meta(pod)
        p = self._pods.get(uid)
        if p is None:
            p = self._pods[uid] = _FakePod(uid)
        if p.sandbox is not None and p.sandbox.running:
            return p.sandbox
        host_net = (pod.get("spec") or {}).get("hostNetwork") is True   # the node's IP, as PodRuntime
        p.sandbox = Sandbox(id=self._next_id(), pod_uid=uid, ip=self.host_ip if host_net else self._alloc_ip(uid),
                            running=True)
        return p.sandbox

    async def run_sandbox_async(self, pod: dict) -> Sandbox:
        return self.run_sandbox(pod)

    def sandbox(self, pod_uid: str) -> Sandbox | None:
        p = self._pods.get(pod_uid)
        return p.sandbox if p is not None else None

    # -- containers -------------------------------------------------------------------------
    def start_container(self, pod: dict, sandbox: Sandbox, c: dict, attempt: int,
                        env: list[str]) -> ContainerInfo:
        uid, _name, _ns = _meta(pod)
        if sandbox.pod_uid and sandbox.pod_uid != uid:
            raise InvalidArgument(f"sandbox {sandbox.id[:12]} belongs to pod {sandbox.pod_uid}, not {uid}")
        if not c.get("name") or not c.get("image"):
            raise InvalidArgument("container has no name or image")
        p = self._pods.get(uid)
        if p is None:
            p = self._pods[uid] = _FakePod(uid)
        inst = _Instance(self._next_id(), uid, c["name"], attempt, c["image"], next(self._ids))
        p.containers.append(inst)
        self._by_id[inst.id] = inst
        return inst.info()

    async def start_container_async(self, pod: dict, sandbox: Sandbox, c: dict, attempt: int,
                                    env: list[str]) -> ContainerInfo:
        return self.start_container(pod, sandbox, c, attempt, env)

    def containers(self, pod_uid: str) -> list[ContainerInfo]:
        p = self._pods.get(pod_uid)
        return [i.info() for i in p.containers] if p is not None else []

    def all_pods(self) -> dict[str, list[ContainerInfo]]:
        return {uid: [i.info() for i in p.containers] for uid, p in self._pods.items()}

    def running_cgroups(self, pod_uid: str) -> list[tuple[str, str, dict | None]]:
        """(container name, started at, cgroup) of the running instances: a hollow container
        has no cgroup, so its usage is not known (skiff.agent.stats reports none)."""
        p = self._pods.get(pod_uid)
        return [(i.name, i.started_at or "", None) for i in p.containers if i.state == "running"] if p else []

    def signal_container(self, cid: str, sig: str | None = None) -> None:
        inst = self._by_id.get(cid)
        if inst is None:
            return
        s = (sig or "TERM").upper().removeprefix("SIG")
        if s in ("KILL", "9"):
            inst.exit(137)
        elif s in ("TERM", "15", "INT", "2", "QUIT", "3"):
            inst.exit(0 if s in ("TERM", "15") else 128 + {"INT": 2, "2": 2}.get(s, 3))

    def stop_container(self, cid: str, grace: float) -> None:
        inst = self._by_id.get(cid)
        if inst is None:
            raise NotFound(f"No such container: {cid}")
        inst.exit(0)

    def remove_container(self, cid: str) -> None:
        inst = self._by_id.pop(cid, None)
        if inst is None:
            return
        p = self._pods.get(inst.pod_uid)
        if p is not None:
            p.containers = [i for i in p.containers if i.id != cid]

    def remove_pod(self, pod_uid: str) -> None:
        p = self._pods.pop(pod_uid, None)
        if p is None:
            return
        for i in p.containers:
            self._by_id.pop(i.id, None)
        ip = self._ip_of.pop(pod_uid, None)
        if ip and ip != "10.255.255.254":
            self._free_ips.append(ip)

    def is_running(self, cid: str) -> bool:
        inst = self._by_id.get(cid)
        return inst is not None and inst.state == "running"

    def log_path(self, cid: str) -> str:
        """An empty json-file log (hollow containers write nothing)."""
        if cid not in self._by_id:
            raise NotFound(f"No such container: {cid}")
        global _LOG_FILE
        if _LOG_FILE is None or not os.path.exists(_LOG_FILE):
            fd, path = tempfile.mkstemp(prefix="skiff-hollow-", suffix=".log")
            os.close(fd)
            _LOG_FILE = path
            atexit.register(_remove_log_file, path)     # not left in /tmp by each hollow process
        return _LOG_FILE

    # -- the node's share of the cluster network: kept in memory, never in the kernel ----------
    def service_backend(self, table: str) -> "FakeServiceBackend":
        self.services = FakeServiceBackend(table)
        return self.services

    def route_backend(self) -> "FakeRouteBackend":
        self.routes = FakeRouteBackend(self)
        return self.routes

    def set_pod_peers(self, peers: list[str], peer_hosts: list[str] = ()) -> bool:
        changed = (list(peers), list(peer_hosts)) != (self.pod_peers, self.pod_peer_hosts)
        self.pod_peers, self.pod_peer_hosts = list(peers), list(peer_hosts)
        return changed

    # -- what the agent's image manager asks --------------------------------------------------
    def volumes_dir(self, pod_uid: str) -> str:
        return os.path.join(self.root or tempfile.gettempdir(), "pods", pod_uid, "volumes")


class FakeImageManager(ImageManager):
    """The agent's ImageManager over the fake runtime: every image is present; a pull (policy
    Always) succeeds at once without a child process. Events are as the kubelet's."""

    def __init__(self, events, **kw):
        super().__init__(FakeImageStore(), events, **kw)

    def present(self, ref: str) -> bool:
        return True

    async def _pull(self, ref: str, auths: dict | None = None) -> None:
        return None


class FakeImageStore:
    """Every image is present (an ImageStore stand-in for the ImageManager)."""

    def __init__(self, root: str | None = None):
        self.root = type("R", (), {"path": root or ""})()

    def resolve(self, ref: str):
        return type("Image", (), {"id": FAKE_IMAGE_ID, "ref": ref})()

    def exists(self, _id: str) -> bool:
        return True


class FakeServiceBackend:
    """The service table of a hollow node: the last state it was given, nothing in nftables."""

    def __init__(self, table: str):
        self.table = table
        self.state = None          # a skiff.agent.serviceproxy.ProxyState once applied
        self.applies = 0

    def apply(self, state) -> None:
        self.state = state
        self.applies += 1

    def present(self) -> bool:
        return self.state is not None

    def remove(self) -> bool:
        had, self.state = self.state is not None, None
        return had

    def bridge_netfilter(self) -> bool:
        return True

    async def ensure_hairpin(self) -> int:
        return 0


class FakeRouteBackend:
    """The routes of a hollow node: every wanted route is "in place", nothing in the kernel."""

    def __init__(self, runtime: FakePodRuntime):
        self.runtime = runtime
        self.routes: dict[str, str] = {}

    async def sync(self, want: dict[str, str]) -> dict[str, str]:
        self.routes = dict(want)
        return dict(want)

    async def remove_all(self) -> None:
        self.routes = {}

    def set_pod_peers(self, cidrs: list[str], hosts: list[str] = ()) -> None:
        self.runtime.set_pod_peers(cidrs, hosts)
