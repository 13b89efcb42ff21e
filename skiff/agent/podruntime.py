"""The agent's pod runtime adapter (contracts.md §5): pods on the runtime core, like the CRI.

A pod is a *sandbox* (a pause container: ``sleep`` forever on the pod network, holding the
pod's network, IPC and UTS namespaces and its published host ports) plus one container per
instance of each spec container, joining the sandbox's namespaces. Everything is found
again from the runtime's own state through labels, so a restarted agent adopts what runs.

Synchronous: the agent calls it from its event-loop thread, so that the monitor's
fork fast path is used (a threaded caller spawns the monitor instead, which also works).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import Conflict, InvalidArgument, NotFound, SkiffError
from ..runtime.containers.create import CreateOptions, create
from ..runtime.containers.remove import remove
from ..runtime.containers.rootfs import secure_join
from ..runtime.containers.start import start, start_async
from ..runtime.containers.stop import stop
from ..runtime.containers.store import Container, ContainerStore
from ..runtime.fsutil import FileLock, remove_tree, unmount_under
from ..runtime.images.store import ImageStore
from ..runtime.network.store import NetworkStore
from ..runtime.root import Root
from . import quantity
from .security import apply_security_context, verify_run_as_non_root
from .volumefiles import is_file_volume

PAUSE_IMAGE = "skiff/pause:latest"
# PID 1 of a pod that shares its process namespace: it must reap the orphans reparented to it,
# as Kubernetes' pause does (ash's wait collects any child, not only its job)
PAUSE_COMMAND = ["sh", "-c", "while :; do sleep 2147483647 & wait; done"]

LABEL_UID = "io.kubernetes.pod.uid"
LABEL_NAME = "io.kubernetes.pod.name"
LABEL_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER = "io.kubernetes.container.name"
LABEL_RESTARTS = "io.kubernetes.container.restartCount"
LABEL_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
MAX_MESSAGE = 4096            # the kubelet's bound on a termination message
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048   # FallbackToLogsOnError: the log's end
POD_CONTAINER = "POD"

LOG_MAX_SIZE = 10 * 2 ** 20  # the kubelet's containerLogMaxSize / MaxFiles defaults
LOG_MAX_FILES = 5

_HOSTPATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")


@dataclass
class Sandbox:
    id: str
    pod_uid: str
    ip: str              # no prefix length; "" while not running
    running: bool


@dataclass
class ContainerInfo:
    id: str
    name: str            # the Kubernetes container name
    attempt: int
    image: str
    image_id: str
    state: str           # "running" | "exited" | "created"
    pid: int
    exit_code: int
    started_at: str | None    # RFC 3339, seconds precision
    finished_at: str | None
    reason: str          # "" while running; "Completed" | "Error" | "OOMKilled" once exited
    oom_killed: bool
    message: str = ""    # once exited: its termination message (terminationMessagePath, or the log's end)


def _rfc3339(text: str) -> str | None:
    """The runtime's nanosecond times as the API writes them (2026-11-28T10:00:00Z)."""
    return text[:19] + "Z" if text and not text.startswith("0001-") else None


def _meta(pod: dict) -> tuple[str, str, str]:
    md = pod.get("metadata") or {}
    uid, name = md.get("uid"), md.get("name")
    if not uid or not name:
        raise InvalidArgument("pod has no metadata.uid or metadata.name")
    return uid, name, md.get("namespace") or "default"


class PodRuntime:
    def __init__(self, root: str, pod_network: str = "pods", bridge: str = "skiffpods0",
                 *, cgroup_parent: str = "skiff"):
        self.root = Root(root).ensure()
        self.store = ContainerStore(self.root)
        self.images = ImageStore(self.root)
        self.networks = NetworkStore(self.root)
        self.pod_network, self.bridge = pod_network, bridge
        self.cgroup_parent = cgroup_parent.strip("/")
        self.pods_dir = os.path.join(self.root.path, "pods")
        self._pause_id: str | None = None
        self._messages: dict[str, str] = {}   # exited container id -> its termination message (read once)
        self.cluster_dns = None   # clusterdns.PodDNS once the agent's cluster DNS listens
        self.host_ip = ""         # the node's InternalIP: a hostNetwork pod's IP (set by the agent)

    # -- network and pause image ---------------------------------------------------------
    def ensure_network(self, pod_cidr: str) -> None:
        """The pod network: subnet ``pod_cidr``, gateway .1, on the bridge ``self.bridge``.
        An unused definition with another subnet or bridge is replaced; a used one is a
        Conflict."""
        from ..runtime.network import ipam
        addr, plen = ipam.parse_subnet(pod_cidr)
        subnet = f"{ipam.format_ip(addr)}/{plen}"
        for _ in range(3):
            try:
                net = self.networks.get(self.pod_network)
            except NotFound:
                try:
                    self.networks.create(self.pod_network, subnet=subnet,
                                         labels={"skiff.dev/pod-network": "true"},
                                         bridge=self.bridge)
                    return
                except Conflict:  # made concurrently: check it again
                    continue
            if net.get("Subnet") == subnet and net.get("Bridge") == self.bridge:
                return
            try:
                self.networks.remove(self.pod_network, is_alive=self.store.exists,
                                     teardown=self.networks.teardown)
            except Conflict as e:
                raise Conflict(f"pod network {self.pod_network} has subnet {net.get('Subnet')} on "
                               f"{net.get('Bridge')}, not {subnet} on {self.bridge}, and is in "
                               f"use: {e}") from None
        raise SkiffError(f"cannot make pod network {self.pod_network}")

    # -- the node's share of the cluster network (the kernel side; fakeruntime keeps it in memory)
    def service_backend(self, table: str):
        """Services (skiff.agent.serviceproxy) in nftables table ``ip <table>``."""
        from .serviceproxy import NftServiceBackend
        return NftServiceBackend(table, self.bridge)

    def pod_gateway(self) -> str:
        """The pod network's gateway (the bridge's address): where the cluster DNS listens."""
        return self.networks.get(self.pod_network)["Gateway"]

    def route_backend(self):
        """Routes to the other nodes' pods (skiff.agent.noderoutes), recorded under the root."""
        from .noderoutes import KernelRoutes
        return KernelRoutes(self, os.path.join(self.root.path, "agent", "node-routes.json"))

    def set_pod_peers(self, peers: list[str], peer_hosts: list[str] = ()) -> bool:
        """Give the pod network a cluster node's host rules (nft.pod_network_rules) in place of
        a plain bridge network's: no masquerade towards ``peers`` (the other nodes' podCIDRs this
        node routes to), new connections from them and from ``peer_hosts`` (those nodes'
        addresses) let in, replies to the pods' own connections let in. The bridge is made first if missing, since the runtime gives a bridge it makes
        the plain rules; they are then replaced (owner ``net:<id>``, so that removing the network
        removes these too). True when the rules changed."""
        from ..runtime.network import nft
        from ..runtime.network.endpoint import nft_table
        net = self.networks.get(self.pod_network)
        self._ensure_pod_bridge(net)
        table = nft_table(self.root.path)
        owner = f"net:{net['Id'][:12]}"
        rules = nft.pod_network_rules(table.family, table.name, owner, net["Subnet"], net["Bridge"],
                                      peers, peer_hosts)
        return table.replace_rules(owner, rules, f"pod network {net['Subnet']} on {net['Bridge']}")

    def _ensure_pod_bridge(self, net: dict) -> None:
        from types import SimpleNamespace

        from ..runtime.network.rtnl import Netlink
        with Netlink() as nl:
            if nl.link_index(net["Bridge"]):
                return
        spec = SimpleNamespace(bridge=net["Bridge"], subnet=net["Subnet"], network_id=net["Id"],
                               gateway_cidr=f"{net['Gateway']}/{net['Subnet'].split('/')[1]}",
                               mtu=int(net.get("MTU") or 0))
        failed: list[BaseException] = []

        def make() -> None:
            from ..runtime.network.endpoint import ensure_network
            try:
                with Netlink() as nl:
                    ensure_network(nl, spec, self.root.path)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                failed.append(e)
        # pyroute2's blocking API (the bridge) runs its own event loop: not in the agent's thread
        import threading
        t = threading.Thread(target=make, name="skiff-pod-bridge")
        t.start()
        t.join()
        if failed:
            raise failed[0]

    def ensure_pause_image(self) -> str:
        """The id of "skiff/pause:latest", built from the host's busybox once (under a lock,
        so that concurrent agents or workers build it once)."""
        if self._pause_id is not None and self.images.exists(self._pause_id):
            return self._pause_id
        try:
            self._pause_id = self.images.resolve(PAUSE_IMAGE).id
            return self._pause_id
        except NotFound:
            pass
        with FileLock(self.root.lock_path("pause-image")):
            try:
                self._pause_id = self.images.resolve(PAUSE_IMAGE).id
            except NotFound:
                from ..runtime.images.busybox import make_busybox_image
                self._pause_id = make_busybox_image(self.images, PAUSE_IMAGE).id
        return self._pause_id

    # -- sandbox -------------------------------------------------------------------------
    def run_sandbox(self, pod: dict) -> Sandbox:
        """Start the pod's pause container. A running sandbox is returned as it is; an exited
        one is removed and replaced (its attempt + 1)."""
        c = self._sandbox_to_start(pod)
        if isinstance(c, Sandbox):
            return c
        start(c)  # on failure (a taken port...) the monitor leaves nothing behind
        return self._sandbox_of(c)

    async def run_sandbox_async(self, pod: dict) -> Sandbox:
        """``run_sandbox`` that yields to the event loop while the pause container starts."""
        c = self._sandbox_to_start(pod)
        if isinstance(c, Sandbox):
            return c
        await start_async(c)
        return self._sandbox_of(c)

    def _sandbox_to_start(self, pod: dict) -> "Sandbox | Container":
        uid, name, ns = _meta(pod)
        attempt = 0
        old = self._sandbox_container(uid)
        if old is not None:
            if old.state().running:
                return self._sandbox_of(old)
            attempt = self._attempt(old) + 1
            remove(old, force=True)
        self.ensure_pause_image()
        spec = pod.get("spec") or {}
        host_net = spec.get("hostNetwork") is True
        ports = host_ports(spec)
        if host_net:   # the ports are the host's own: nothing to publish (hostPort == containerPort)
            ports = []
        hostname = "" if host_net else (spec.get("hostname") or name)   # host network: the node's name
        opts = CreateOptions(
            image=PAUSE_IMAGE, command=list(PAUSE_COMMAND), entrypoint="",
            name=f"k8s_{POD_CONTAINER}_{name}_{ns}_{uid[:8]}_{attempt}",
            hostname=hostname[:63], network="host" if host_net else self.pod_network, ports=ports,
            uts="host" if host_net else "",          # as containerd's CRI: host network, host UTS
            ipc="host" if spec.get("hostIPC") is True else "",
            pid="host" if spec.get("hostPID") is True else "",
            labels=self._labels(uid, name, ns, POD_CONTAINER, attempt),
            stop_signal="SIGKILL", cgroup_parent=self._pod_cgroup(uid),
            log_max_size=LOG_MAX_SIZE, log_max_files=1,
            extra_hosts=[f"{h}:{a.get('ip')}" for a in spec.get("hostAliases") or [] for h in a.get("hostnames") or []])
        opts.dns, opts.dns_search, opts.dns_options = pod_dns(spec, ns, self.cluster_dns)
        opts.domainname = "" if host_net else pod_host_domain(spec, ns, self.cluster_dns)
        opts.sysctls = {s["name"].replace("/", "."): str(s.get("value", ""))
                        for s in (spec.get("securityContext") or {}).get("sysctls") or []}
        if host_net:
            opts.extra_hosts = []   # in the kubelet's own file, below
        c = create(self.store, self.images, opts)
        if host_net:   # before it starts; its containers copy it from the sandbox at their create
            from ..runtime.fsutil import atomic_write
            atomic_write(os.path.join(c.dir, "hosts"), host_network_hosts(spec).encode())
        return c

    def sandbox(self, pod_uid: str) -> Sandbox | None:
        c = self._sandbox_container(pod_uid)
        return self._sandbox_of(c) if c is not None else None

    def attach(self, cid: str):
        """An Attachment to running container ``cid`` (one run with stdin or a tty)."""
        from ..runtime.containers.attach import connect
        return connect(self._get(cid))

    def sandbox_netns(self, pod_uid: str) -> str | None:
        """The pod's network namespace (/proc/PID/ns/net of its running sandbox), or None."""
        c = self._sandbox_container(pod_uid)
        if c is None:
            return None
        st = c.state()
        return f"/proc/{st.pid}/ns/net" if st.running and st.pid else None

    def _sandbox_of(self, c: Container) -> Sandbox:
        st = c.state()
        running = st.running
        ip = c.spec.ip.split("/")[0] if c.spec.ip else ""
        if c.spec.network == "host":   # a hostNetwork pod: its IP is the node's (the kubelet's hostIP)
            ip = self.host_ip
        return Sandbox(id=c.id, pod_uid=c.spec.labels.get(LABEL_UID, ""),
                       ip=ip if running else "", running=running)

    def _sandbox_container(self, pod_uid: str) -> Container | None:
        for c in self._of_pod(pod_uid):  # newest first
            if c.spec.labels.get(LABEL_CONTAINER) == POD_CONTAINER:
                return c
        return None

    # -- containers ----------------------------------------------------------------------
    def start_container(self, pod: dict, sandbox: Sandbox, c: dict, attempt: int,
                        env: list[str]) -> ContainerInfo:
        ctr = self._container_to_start(pod, sandbox, c, attempt, env)
        start(ctr)
        return self._info(ctr)

    async def start_container_async(self, pod: dict, sandbox: Sandbox, c: dict, attempt: int,
                                    env: list[str]) -> ContainerInfo:
        """``start_container`` that yields to the event loop while the container starts."""
        ctr = self._container_to_start(pod, sandbox, c, attempt, env)
        await start_async(ctr)
        return self._info(ctr)

    def _pid_namespace(self, pod: dict, sandbox: Sandbox, c: dict) -> str:
        """The PID namespace a container joins: the pause container's when the pod shares one;
        an ephemeral container's target's (kubectl debug --target), when that one runs."""
        if (pod.get("spec") or {}).get("hostPID") is True:   # every container in the host's
            return "host"
        target = c.get("targetContainerName")
        if target and not (pod.get("spec") or {}).get("shareProcessNamespace"):
            uid = (pod.get("metadata") or {}).get("uid", "")
            running = [i for i in self.containers(uid) if i.name == target and i.state == "running"]
            if running:
                return f"container:{max(running, key=lambda i: i.attempt).id}"
        return f"container:{sandbox.id}" if (pod.get("spec") or {}).get("shareProcessNamespace") else ""

    def _container_to_start(self, pod: dict, sandbox: Sandbox, c: dict, attempt: int,
                            env: list[str]) -> Container:
        uid, pod_name, ns = _meta(pod)
        if sandbox.pod_uid and sandbox.pod_uid != uid:
            raise InvalidArgument(f"sandbox {sandbox.id[:12]} belongs to pod {sandbox.pod_uid}, not {uid}")
        spec = pod.get("spec") or {}
        cname = c.get("name")
        if not cname or not c.get("image"):
            raise InvalidArgument("container has no name or image")
        verify_run_as_non_root(pod, c, lambda: self._image_user(c["image"]))
        name = f"k8s_{cname}_{pod_name}_{ns}_{uid[:8]}_{attempt}"
        self._clear_name(name)
        opts = CreateOptions(image=c["image"], name=name, env=list(env),
                             workdir=c.get("workingDir") or "",
                             network=f"container:{sandbox.id}", ipc=f"container:{sandbox.id}",
                             uts=f"container:{sandbox.id}", tty=bool(c.get("tty")),
                             pid=self._pid_namespace(pod, sandbox, c),
                             stdin=bool(c.get("stdin")),
                             labels=self._labels(uid, pod_name, ns, cname, attempt),
                             cgroup_parent=self._pod_cgroup(uid),
                             log_max_size=LOG_MAX_SIZE, log_max_files=LOG_MAX_FILES)
        command, args = c.get("command") or [], c.get("args") or []
        if command:  # k8s: command replaces the Entrypoint (and then the image's Cmd goes too)
            opts.entrypoint, opts.command = "", list(command) + list(args)
        elif args:  # args alone replace the Cmd
            opts.command = list(args)
        resources = c.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if limits.get("memory") is not None:
            opts.memory = quantity.memory_bytes(limits["memory"])
            if opts.memory < 6 * 2 ** 20:  # docker's minimum: below it the container cannot start
                raise InvalidArgument(f"container {cname}: memory limit {limits['memory']} is below "
                                      f"the minimum of 6Mi")
        if limits.get("cpu") is not None:
            cpus = quantity.cpu_cores(limits["cpu"])
            opts.cpus = max(cpus, 0.01)  # the kubelet's minimum quota (10 ms per 100 ms)
        cpu_request = requests.get("cpu", limits.get("cpu"))  # requests default to limits
        if cpu_request is not None:
            opts.cpu_shares = quantity.cpu_shares(cpu_request)
        opts.user = run_as(spec.get("securityContext") or {}, c.get("securityContext") or {})
        apply_security_context(opts, spec, c)
        opts.mounts = self._mounts(uid, spec, c, env)
        # the termination message: a file of the pod's on the host, bound where the container writes it
        opts.mounts.append({"source": self._message_file(uid, cname, attempt, create=True),
                            "destination": c.get("terminationMessagePath") or "/dev/termination-log",
                            "readonly": False})
        if c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            opts.labels[LABEL_MESSAGE_POLICY] = "FallbackToLogsOnError"
        return create(self.store, self.images, opts)

    def _message_file(self, uid: str, cname: str, attempt: int, create: bool = False) -> str:
        d = os.path.join(self.pods_dir, uid, "containers", cname)
        path = os.path.join(d, str(attempt))
        if create:
            os.makedirs(d, 0o700, exist_ok=True)
            os.chmod(os.path.join(self.pods_dir, uid), 0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            os.fchmod(fd, 0o666)      # any runAsUser may write it, as the kubelet's
            os.close(fd)
        return path

    def _termination_message(self, c: Container, exit_code: int) -> str:
        """What the container left at its terminationMessagePath (at most 4 KiB); with
        FallbackToLogsOnError and a failure, the end of its log when it left nothing."""
        s = c.spec
        uid, cname = s.labels.get(LABEL_UID, ""), s.labels.get(LABEL_CONTAINER, "")
        try:
            with open(self._message_file(uid, cname, self._attempt(c)), "rb") as f:
                msg = f.read(MAX_MESSAGE).decode(errors="replace")
        except OSError:
            msg = ""
        if msg or exit_code == 0 or s.labels.get(LABEL_MESSAGE_POLICY) != "FallbackToLogsOnError":
            return msg
        from ..runtime.containers.logs import read_logs
        tail = b"".join(data for _, data in read_logs(os.path.join(c.dir, "log"), tail=FALLBACK_LINES))
        return tail[-FALLBACK_BYTES:].decode(errors="replace")

    def _image_user(self, ref: str) -> str:
        """The User of image ``ref``'s config ("" when it has none)."""
        return ((self.images.resolve(ref).config or {}).get("config") or {}).get("User") or ""

    def _clear_name(self, name: str) -> None:
        """A leftover of the same name (an agent that died between start and record): an
        exited one is removed, a running one is a Conflict."""
        try:
            old = self.store.get(name)
        except NotFound:
            return
        if old.state().running:
            raise Conflict(f'container name "{name}" is already in use by running container {old.id}')
        remove(old, force=True)

    def containers(self, pod_uid: str) -> list[ContainerInfo]:
        out = [self._info(c) for c in self._of_pod(pod_uid)
               if c.spec.labels.get(LABEL_CONTAINER) != POD_CONTAINER]
        out.reverse()  # oldest first
        return out

    def all_pods(self) -> dict[str, list[ContainerInfo]]:
        pods: dict[str, list[ContainerInfo]] = {}
        for c in reversed(self._listed()):  # oldest first
            labels = c.spec.labels
            uid = labels.get(LABEL_UID)
            if not uid:
                continue  # not a pod's: `skiff run` containers of the same root
            infos = pods.setdefault(uid, [])
            if labels.get(LABEL_CONTAINER) != POD_CONTAINER:
                try:
                    infos.append(self._info(c))
                except NotFound:  # removed meanwhile
                    pass
        return pods

    def running_cgroups(self, pod_uid: str) -> list[tuple[str, str, dict | None]]:
        """(container name, started at, cgroup as state.json records it) of the pod's running
        container instances, the sandbox's under the name ``POD``: for skiff.agent.stats."""
        out = []
        for c in self._of_pod(pod_uid):
            try:
                st = c.state()
                name = c.spec.labels.get(LABEL_CONTAINER, c.spec.name)
            except NotFound:
                continue
            if st.running and st.cgroup:
                out.append((name, _rfc3339(st.started_at) or "", st.cgroup))
        return out

    def stop_container(self, cid: str, grace: float) -> None:
        c = self._get(cid)
        stop(c, timeout=max(0.0, float(grace)))

    def signal_container(self, cid: str, sig: str | None = None) -> None:
        """Send ``sig`` (default: the container's stop signal) without waiting; nothing
        happens if the container is not running (any more)."""
        from skiff.runtime.containers.stop import kill
        try:
            c = self._get(cid)
            kill(c, sig or c.spec.stop_signal or "TERM")
        except (NotFound, Conflict):
            pass

    def exec_start(self, cid: str, argv: list[str], stdio: tuple[int, int, int], tty: bool = False) -> int:
        """Start ``argv`` in running container ``cid`` (an exec probe, ``pods/exec``) and return
        the pid of the forked helper, whose exit status is the command's (the caller waits for
        it). ``tty``: stdio is a terminal, which becomes the command's controlling one."""
        from ..runtime.containers.exec import exec_in
        return exec_in(self._get(cid), list(argv), stdio=stdio, tty=tty)

    def exec_pty(self, cid: str) -> tuple[int, int]:
        """A pseudo-terminal (master, slave) in container ``cid``'s devpts, for an exec."""
        from ..runtime.containers.exec import open_pty
        return open_pty(self._get(cid))

    def remove_container(self, cid: str) -> None:
        try:
            c = self._get(cid)
        except NotFound:
            return
        remove(c, force=True)
        self._messages.pop(cid, None)

    def remove_pod(self, pod_uid: str) -> None:
        """Kill and remove every container of the pod, then the sandbox (whose monitor takes
        the port rules and the address with it), then the pod's volumes directory."""
        cs = self._of_pod(pod_uid)
        cs.sort(key=lambda c: c.spec.labels.get(LABEL_CONTAINER) == POD_CONTAINER)
        errors = []
        for c in cs:
            self._messages.pop(c.id, None)
            try:
                remove(c, force=True)
            except NotFound:
                pass
            except SkiffError as e:
                errors.append(f"{c.name}: {e}")
        if errors:
            raise SkiffError(f"cannot remove pod {pod_uid}: " + "; ".join(errors))
        self._remove_volumes(pod_uid)

    def is_running(self, cid: str) -> bool:
        """Whether container instance ``cid`` runs (False once it exited or is gone); for
        log followers."""
        if not self.store.exists(cid):
            return False
        try:
            return self.store.by_id(cid).state().running
        except NotFound:
            return False

    def log_path(self, cid: str) -> str:
        return os.path.join(self._get(cid).dir, "log")

    # -- helpers -------------------------------------------------------------------------
    def _get(self, cid: str) -> Container:
        if not self.store.exists(cid):
            raise NotFound(f"No such container: {cid}")
        return self.store.by_id(cid)

    def _listed(self) -> list[Container]:
        out = []
        for c in self.store.list():  # newest first
            try:
                c.spec
            except NotFound:
                continue
            out.append(c)
        return out

    def _of_pod(self, pod_uid: str) -> list[Container]:
        """The pod's containers, newest first. Found through the name index (every name
        carries the uid's first 8 characters), so that a sync reads only its own pod's
        records, not every container of the host."""
        names_dir = self.store.root.names
        try:
            names = os.listdir(names_dir)
        except FileNotFoundError:
            return []
        mark = f"_{pod_uid[:8]}_"
        out = []
        for n in names:
            if not n.startswith("k8s_") or mark not in n:
                continue
            try:
                with open(os.path.join(names_dir, n)) as f:
                    cid = f.read().strip()
            except OSError:
                continue
            if not cid or not self.store.exists(cid):
                continue
            c = self.store.by_id(cid)
            try:
                if c.spec.labels.get(LABEL_UID) == pod_uid:
                    out.append(c)
            except NotFound:
                continue
        out.sort(key=lambda c: c.spec.created, reverse=True)
        return out

    @staticmethod
    def _labels(uid: str, name: str, ns: str, cname: str, attempt: int) -> dict[str, str]:
        return {LABEL_UID: uid, LABEL_NAME: name, LABEL_NAMESPACE: ns, LABEL_CONTAINER: cname,
                LABEL_RESTARTS: str(attempt)}

    @staticmethod
    def _attempt(c: Container) -> int:
        try:
            return int(c.spec.labels.get(LABEL_RESTARTS, "0"))
        except ValueError:
            return 0

    def _pod_cgroup(self, uid: str) -> str:
        return f"{self.cgroup_parent}/pod{uid}" if self.cgroup_parent else f"pod{uid}"

    def _info(self, c: Container) -> ContainerInfo:
        st = c.state()
        s = c.spec
        running = st.running
        if running:
            state, reason = "running", ""
        elif st.status == "exited":
            state = "exited"
            reason = ("OOMKilled" if st.oom_killed else "Completed" if st.exit_code == 0
                      else "Error")
        else:
            state, reason = "created", ""
        return ContainerInfo(
            id=c.id, name=s.labels.get(LABEL_CONTAINER, s.name), attempt=self._attempt(c),
            image=s.image, image_id=s.image_id, state=state, pid=st.pid if running else 0,
            exit_code=st.exit_code if state == "exited" else 0,
            started_at=_rfc3339(st.started_at), finished_at=_rfc3339(st.finished_at),
            reason=reason, oom_killed=bool(st.oom_killed),
            message=self._message_of(c, st.exit_code) if state == "exited" else "")

    def _message_of(self, c: Container, exit_code: int) -> str:
        msg = self._messages.get(c.id)
        if msg is None:     # an exited container's message does not change: read it once
            msg = self._messages[c.id] = self._termination_message(c, exit_code)
        return msg

    def volumes_dir(self, pod_uid: str) -> str:
        if not pod_uid or "/" in pod_uid or pod_uid.startswith("."):
            raise InvalidArgument(f"invalid pod uid {pod_uid!r}")
        return os.path.join(self.pods_dir, pod_uid, "volumes")

    def _remove_volumes(self, pod_uid: str) -> None:
        d = os.path.join(self.pods_dir, pod_uid)
        if pod_uid and "/" not in pod_uid and os.path.isdir(d):
            unmount_under(d)       # memory-backed emptyDirs
            remove_tree(d)

    def write_config_volume(self, uid: str, vname: str, files: list[tuple[str, bytes, int]] | None,
                            secret: bool = False, owner: tuple[int, int] | None = None) -> str:
        """Write a file volume's files (configMap, secret, downwardAPI, projected) under
        <root>/pods/<uid>/volumes/<vname> as the kubelet's atomic writer lays them out: the
        files in a directory ``..<UTC time>.<random>``, the link ``..data`` to it, and a link
        ``<name> -> ..data/<name>`` for each top-level name. A rewrite makes a new directory and
        swaps ``..data`` in one rename, so a running container (it mounts the volume's
        directory) sees either all the old files or all the new ones, as tools that watch
        ``..data`` expect. The pod's directory is 0700 (root only on the host); a secret
        volume's directories are 0700 too (owned by ``owner``, the containers'
        runAsUser/fsGroup, when given), a configMap's 0755; each file has its mode (defaultMode
        or the item's)."""
        import tempfile
        import time
        d = os.path.join(self.volumes_dir(uid), vname)
        pod_dir = os.path.join(self.pods_dir, uid)
        os.makedirs(d, exist_ok=True)
        os.chmod(pod_dir, 0o700)
        dmode = 0o700 if secret else 0o755
        gen = tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()), dir=d)
        for rel, data, mode in files or []:
            path = os.path.join(gen, rel)
            os.makedirs(os.path.dirname(path), dmode, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, data)
                os.fchmod(fd, mode & 0o7777)
                if owner is not None:
                    os.fchown(fd, owner[0], owner[1])
            finally:
                os.close(fd)
        for p in (gen, d):
            os.chmod(p, dmode)
            if owner is not None:
                os.chown(p, owner[0], owner[1])
        link = os.path.join(d, "..data")
        tmp = os.path.join(d, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.basename(gen), tmp)
        os.rename(tmp, link)     # the swap: one rename
        tops = {rel.split("/", 1)[0] for rel, _, _ in files or []}
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if name.startswith(".."):
                stale = name != "..data" and p != gen     # the directories of earlier writes
            else:
                stale = name not in tops or not os.path.islink(p)   # a name gone, or the old layout's file
            if stale and os.path.isdir(p) and not os.path.islink(p):
                remove_tree(p)
            elif stale:
                os.unlink(p)
        for name in tops:
            if not os.path.lexists(os.path.join(d, name)):
                os.symlink(f"..data/{name}", os.path.join(d, name))
        return d

    def _mounts(self, uid: str, spec: dict, c: dict, env: list[str] = ()) -> list[dict]:
        """The container's volume mounts; ``env`` (its K=V environment) expands subPathExpr."""
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        out = []
        for vm in c.get("volumeMounts") or []:
            vname, dest = vm.get("name"), vm.get("mountPath") or ""
            vol = volumes.get(vname)
            if vol is None:
                raise InvalidArgument(f"container {c.get('name')}: volumeMount {vname!r} names no volume of the pod")
            if not dest.startswith("/"):
                raise InvalidArgument(f"container {c.get('name')}: mountPath {dest!r} must be absolute")
            if "emptyDir" in vol:
                ed = vol.get("emptyDir") or {}
                medium = ed.get("medium") or ""
                if medium not in ("", "Memory"):
                    raise InvalidArgument(f"volume {vname}: emptyDir medium {medium!r} is not supported by skiff")
                source = os.path.join(self.volumes_dir(uid), vname)
                os.makedirs(source, exist_ok=True)
                if medium == "Memory" and not os.path.ismount(source):
                    mount_tmpfs(source, tmpfs_size(spec, ed.get("sizeLimit")))
                os.chmod(source, 0o777)  # as the kubelet makes it: any runAsUser may write
                fs_group = (spec.get("securityContext") or {}).get("fsGroup")
                if fs_group is not None:  # the kubelet's volume ownership: fsGroup's, setgid
                    os.chown(source, 0, fs_group)
                    os.chmod(source, 0o2777)
            elif "hostPath" in vol:
                source = prepare_host_path(vname, vol["hostPath"] or {})
            elif is_file_volume(vol):
                source = os.path.join(self.volumes_dir(uid), vname)
                if not os.path.isdir(source):
                    raise SkiffError(f"volume {vname}: its files were not written")
                vm = dict(vm, readOnly=True)   # as the kubelet mounts them: read-only
            else:
                kinds = [k for k in vol if k != "name"]
                raise InvalidArgument(f"volume {vname}: type {kinds[0] if kinds else '?'} is not supported by skiff")
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                from .env import expand
                sub = expand(vm["subPathExpr"], dict(e.split("=", 1) for e in env if "=" in e))
            if sub:
                if sub.startswith("/") or ".." in sub.split("/"):
                    raise InvalidArgument(f"volume {vname}: subPath {sub!r} must be a relative path inside the volume")
                # symlinks resolved inside the volume (a configMap's ``key -> ..data/key``; a
                # link a container made in an emptyDir cannot send the mount out of it)
                source = secure_join(source, sub)
                if not os.path.exists(source):
                    os.makedirs(source, 0o755)
            out.append({"source": source, "destination": dest, "readonly": bool(vm.get("readOnly"))})
        return out


def host_network_hosts(spec: dict, host_file: str = "/etc/hosts") -> str:
    """A hostNetwork pod's /etc/hosts, as the kubelet writes it: the node's own file under a
    header, then the pod's hostAliases."""
    try:
        with open(host_file) as f:
            content = f.read()
    except OSError:
        content = ""
    out = "# Kubernetes-managed hosts file (host network).\n" + content
    aliases = spec.get("hostAliases") or []
    if aliases:
        out += "\n# Entries added by HostAliases.\n"
        for a in aliases:
            out += f"{a.get('ip')}\t" + "\t".join(a.get("hostnames") or []) + "\n"
    return out


def pod_host_domain(spec: dict, namespace: str, cluster=None) -> str:
    """The domain of the pod's own name in its /etc/hosts (the kubelet's
    GeneratePodHostNameAndDomain): ``<subdomain>.<ns>.svc.<cluster domain>`` for a pod with
    spec.subdomain (a StatefulSet's pods: ``web-0.nginx.default.svc.cluster.local web-0``), else
    none."""
    sub = spec.get("subdomain")
    if not sub:
        return ""
    from .clusterdns import DEFAULT_DOMAIN
    domain = getattr(cluster, "domain", None) or DEFAULT_DOMAIN
    return f"{sub}.{namespace}.svc.{domain}"


def pod_dns(spec: dict, namespace: str = "default", cluster=None) -> tuple[list[str], list[str], list[str]]:
    """The pod's resolv.conf as (nameservers, searches, options) for the runtime; empty lists
    keep the runtime's own (the host's). As the kubelet: dnsPolicy ClusterFirst (the default;
    Default for a hostNetwork pod) and ClusterFirstWithHostNet, given ``cluster`` (a
    clusterdns.PodDNS: the node's cluster DNS listens), get that nameserver, the search path
    ``<ns>.svc.<domain> svc.<domain> <domain>`` then the host's, and ``ndots:5``; without
    ``cluster`` they are Default (a kubelet without --cluster-dns). dnsPolicy None:
    ``dnsConfig`` alone; otherwise the host's. ``dnsConfig`` is merged into all of them."""
    cfg = spec.get("dnsConfig") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    none = policy == "None"
    cluster_first = cluster is not None and (
        policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")))
    if cluster_first:
        d = cluster.domain
        servers = [cluster.nameserver]
        search = [f"{namespace}.svc.{d}", f"svc.{d}", d, *cluster.host_search]
        options = ["ndots:5"]
    elif not cfg and not none:
        return [], [], []
    else:
        from ..runtime.containers.create import host_resolv
        servers, search, options = ([], [], []) if none else host_resolv()
    servers = list(dict.fromkeys(servers + list(cfg.get("nameservers") or [])))[:3]
    search = list(dict.fromkeys(search + list(cfg.get("searches") or [])))[:32]
    merged = {o.split(":")[0]: o for o in options}
    for o in cfg.get("options") or []:
        merged[o.get("name", "")] = o["name"] + (f":{o['value']}" if o.get("value") is not None else "")
    return servers, search, [o for o in merged.values() if o]


def tmpfs_size(spec: dict, size_limit) -> int:
    """A memory-backed emptyDir's size, as the kubelet sizes it: its sizeLimit, else the pod's
    memory limit (when every container has one), else the host's memory; the smallest of them."""
    sizes = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    limits = [((c.get("resources") or {}).get("limits") or {}).get("memory") for c in spec.get("containers") or []]
    if limits and all(q is not None for q in limits):
        sizes.append(sum(quantity.memory_bytes(q) for q in limits))
    if size_limit is not None:
        sizes.append(quantity.memory_bytes(size_limit))
    return max(min(sizes), 4096)


def mount_tmpfs(target: str, size: int) -> None:
    """A tmpfs on the host at ``target`` (nosuid, nodev; any user may write), for a
    memory-backed emptyDir shared by the pod's containers; removed with the pod's volumes."""
    from ..runtime.kernel import MS_NODEV, MS_NOSUID, Kernel
    Kernel().mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0777,size={size}")


def run_as(pod_sc: dict, ctr_sc: dict) -> str:
    """The -u value from runAsUser/runAsGroup (the container's over the pod's)."""
    user = ctr_sc.get("runAsUser", pod_sc.get("runAsUser"))
    group = ctr_sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if user is None:
        if group is not None:
            raise InvalidArgument("runAsGroup needs runAsUser in skiff")
        return ""
    for what, v in (("runAsUser", user), ("runAsGroup", group)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise InvalidArgument(f"securityContext.{what} must be a non-negative integer, not {v!r}")
    return f"{user}:{group}" if group is not None else str(user)


def host_ports(spec: dict) -> list[dict]:
    """The ports of all containers with a hostPort, as ports.parse_publish makes them."""
    out, seen = [], set()
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            hp = p.get("hostPort")
            if not hp:
                continue
            proto = (p.get("protocol") or "TCP").lower()
            if proto not in ("tcp", "udp"):
                raise InvalidArgument(f"container {c.get('name')}: protocol {p.get('protocol')} is "
                                      f"not supported for hostPort by skiff")
            host_ip = p.get("hostIP") or ""
            if host_ip == "0.0.0.0":
                host_ip = ""
            cp = p.get("containerPort")
            if not isinstance(hp, int) or not isinstance(cp, int) or not (0 < hp < 65536 and 0 < cp < 65536):
                raise InvalidArgument(f"container {c.get('name')}: invalid port {p!r}")
            key = (host_ip, hp, proto)
            if key in seen:
                raise Conflict(f"hostPort {hp}/{proto} is used twice in the pod")
            seen.add(key)
            out.append({"host_ip": host_ip, "host_port": hp, "container_port": cp, "proto": proto})
    return out


def prepare_host_path(vname: str, hp: dict) -> str:
    """Check (or make) a hostPath volume's path as its ``type`` says."""
    path, kind = hp.get("path") or "", hp.get("type") or ""
    if not path.startswith("/"):
        raise InvalidArgument(f"volume {vname}: hostPath.path {path!r} must be absolute")
    if kind not in _HOSTPATH_TYPES:
        raise InvalidArgument(f"volume {vname}: hostPath.type {kind!r} is not supported")
    path = os.path.normpath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is None:
        if kind in ("", "DirectoryOrCreate"):  # "": what the docker runtime did: a directory
            os.makedirs(path, 0o755, exist_ok=True)
            return path
        if kind == "FileOrCreate":
            if not os.path.isdir(os.path.dirname(path)):
                raise SkiffError(f"volume {vname}: hostPath type check failed: {path}: the parent "
                                 f"directory does not exist")
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            return path
        raise SkiffError(f"volume {vname}: hostPath type check failed: {path} is not a "
                         f"{'directory' if kind == 'Directory' else kind.lower()}")
    want = {"Directory": stat.S_ISDIR, "DirectoryOrCreate": stat.S_ISDIR, "File": stat.S_ISREG,
            "FileOrCreate": stat.S_ISREG, "Socket": stat.S_ISSOCK, "CharDevice": stat.S_ISCHR,
            "BlockDevice": stat.S_ISBLK}.get(kind)
    if want is not None and not want(st.st_mode):
        raise SkiffError(f"volume {vname}: hostPath type check failed: {path} is not a "
                         f"{'directory' if 'Directory' in kind else 'file' if 'File' in kind else kind.lower()}")
    return path
