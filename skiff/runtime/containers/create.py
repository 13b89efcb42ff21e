"""`create`: from an image and the user's options to a container directory, ready to start."""

from __future__ import annotations

import os

from ...errors import Conflict, InvalidArgument, SkiffError
from ..record import Record
from .spec import ContainerSpec, merge_env
from .state import now_rfc3339
from .store import Container, ContainerStore


class CreateOptions(Record):
    image: str
    command: list[str] = []
    entrypoint: str | None = None
    name: str | None = None
    hostname: str = ""
    domainname: str = ""            # /etc/hosts names the container "hostname.domainname hostname"
    env: list[str] = []
    workdir: str = ""
    user: str = ""
    tty: bool = False
    stdin: bool = False
    autoremove: bool = False
    network: str = "bridge"
    ports: list[dict] = []
    memory: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cgroup_parent: str = "skiff"
    log_max_size: int | None = None
    log_max_files: int = 1
    ulimits: dict[str, list[int]] = {}
    sysctls: dict[str, str] = {}    # namespaced kernel parameters (--sysctl), set in the container's namespaces
    labels: dict[str, str] = {}
    stop_signal: str | None = None
    stop_timeout: int | None = None
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []
    mounts: list[dict] = []         # bind mounts: {"source", "destination", "readonly"}
    ipc: str = ""                   # "" (private), "private", "shareable", "host", "container:NAME"
    uts: str = ""                   # "" (private), "host", "container:NAME"
    pid: str = ""                   # "" (private), "host", "container:NAME" (a pod's shared PID namespace)
    cap_add: list[str] = []         # capability names, with or without CAP_, any case; ALL
    cap_drop: list[str] = []
    read_only: bool = False
    group_add: list[str] = []       # extra supplementary groups: gids or names
    privileged: bool = False        # --privileged: all capabilities, host devices, no masked paths
    seccomp: str = "default"        # "default" (docker's profile) or "unconfined" (--security-opt seccomp=unconfined)


def create(store: ContainerStore, images, opts: CreateOptions) -> Container:
    """Resolve the image, reserve the name and write the container. Nothing is left on error."""
    from ...errors import NotFound
    try:
        image = images.resolve(opts.image)
    except NotFound:
        ref = opts.image
        try:
            from ..images.reference import parse_reference
            ref = str(parse_reference(opts.image))
        except (SkiffError, ImportError):
            pass
        raise NotFound(f"Unable to find image '{ref}' locally") from None
    from ..network.modes import BRIDGE, CONTAINER, parse_mode
    mode = parse_mode(opts.network)
    network = mode.name
    if opts.ports and mode.kind != BRIDGE:
        raise InvalidArgument(f"conflicting options: port publishing and the {mode.kind} network mode")
    net, target = None, None
    if mode.kind == BRIDGE:
        from ..network.store import NetworkStore
        nets = NetworkStore(store.root)
        net = (nets.default(is_alive=store.exists, teardown=nets.teardown)
               if mode.network == "bridge" else nets.get(mode.network))
    elif mode.kind == CONTAINER:
        if opts.hostname:
            raise InvalidArgument("conflicting options: hostname and the network mode")
        target = store.get(mode.container)
        if not target.state().running:
            raise SkiffError(f"cannot join network of a non running container: {mode.container}")
    ipc_target = _ns_target(store, "ipc", opts.ipc, ("", "private", "shareable", "host"))
    uts_target = _ns_target(store, "uts", opts.uts, ("", "host"))
    pid_target = _ns_target(store, "pid", opts.pid, ("", "host"))
    if uts_target is not None or opts.uts == "host":
        if opts.hostname:
            raise InvalidArgument("conflicting options: hostname and the UTS mode")
    mounts = []
    if opts.mounts:
        from .volumes import check_mounts
        mounts = check_mounts(opts.mounts)
    cap_add, cap_drop = opts.cap_add, opts.cap_drop
    if cap_add or cap_drop:
        from .caps import normalize
        cap_add, cap_drop = normalize(cap_add, "CapAdd"), normalize(cap_drop, "CapDrop")
    cfg = (image.config or {}).get("config") or {}
    entrypoint = cfg.get("Entrypoint") or []
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
    cmd = list(opts.command) if opts.command else (
        list(cfg.get("Cmd") or []) if opts.entrypoint is None else [])
    argv = list(entrypoint) + cmd
    if not argv:
        raise InvalidArgument("No command specified")
    cid = os.urandom(32).hex()
    hostname = opts.hostname or (
        uts_target.spec.hostname if uts_target is not None else
        os.uname().nodename if network == "host" or opts.uts == "host" else
        target.spec.hostname if target is not None else cid[:12])
    spec = ContainerSpec(
        id=cid, name="", image=opts.image, image_id=image.id, created=now_rfc3339(),
        path=argv[0], args=argv[1:], entrypoint=entrypoint or None, cmd=cmd or None,
        env=merge_env(cfg.get("Env") or [], opts.env, hostname, opts.tty),
        workdir=opts.workdir or cfg.get("WorkingDir") or "", user=opts.user or cfg.get("User") or "",
        hostname=hostname, domainname=opts.domainname, tty=opts.tty, stdin=opts.stdin, autoremove=opts.autoremove,
        network=network, memory=opts.memory, cpus=opts.cpus, cpu_shares=opts.cpu_shares,
        pids_limit=opts.pids_limit, cgroup_parent=opts.cgroup_parent,
        log_max_size=opts.log_max_size, log_max_files=opts.log_max_files, ulimits=opts.ulimits,
        sysctls=check_sysctls(opts.sysctls, network, opts.ipc),
        labels={**(cfg.get("Labels") or {}), **opts.labels},
        stop_signal=opts.stop_signal or cfg.get("StopSignal") or "SIGTERM",
        stop_timeout=opts.stop_timeout, layer_dirs=image.layer_dirs(),
        extra_hosts=opts.extra_hosts, dns=opts.dns, dns_search=opts.dns_search,
        dns_options=opts.dns_options, ports=list(opts.ports),
        netns_container=target.id if target is not None else "",
        mounts=mounts,
        ipc="container:" + ipc_target.id if ipc_target is not None else opts.ipc,
        uts="container:" + uts_target.id if uts_target is not None else opts.uts,
        pid="container:" + pid_target.id if pid_target is not None else opts.pid,
        cap_add=cap_add, cap_drop=cap_drop, read_only=opts.read_only,
        group_add=list(opts.group_add), privileged=opts.privileged,
        seccomp="" if opts.privileged or opts.seccomp == "unconfined" else "default",
    )
    if net is not None:
        spec.network, spec.network_id, spec.bridge = net["Name"], net["Id"], net["Bridge"]
        spec.subnet, spec.gateway, spec.mtu = net["Subnet"], net["Gateway"], int(net.get("MTU") or 0)
        spec.gateway_cidr = f"{net['Gateway']}/{net['Subnet'].split('/')[1]}"
    parse_extra_hosts(spec.extra_hosts)  # reject a bad --add-host before the name is taken
    spec.name = store.reserve_name(opts.name, cid)
    try:
        if net is not None:
            from ..network import ipam
            spec.ip = ipam.allocate(nets, net["Name"], cid, is_alive=store.exists)
        files = etc_files(spec, target)
    except BaseException:
        store.release_name(spec.name, cid)
        raise
    try:
        return store.create(spec, files)
    except BaseException:
        release_address(store, spec)
        raise


def _ns_target(store: ContainerStore, kind: str, mode: str, plain: tuple[str, ...]):
    """--ipc/--uts/--pid container:NAME: the running container whose namespace is joined (None
    for the container's own namespace, or the host's)."""
    if mode in plain:
        return None
    if not mode.startswith("container:") or not mode[10:]:
        named = [repr(p) for p in plain if p]
        raise InvalidArgument(f'invalid {kind.upper()} mode: "{mode}" (use '
                              f'{", ".join(named) + " or " if named else ""}container:NAME)')
    target = store.get(mode[10:])
    if not target.state().running:
        raise Conflict(f"cannot join {kind.upper()} of a non running container: {mode[10:]}")
    return target


# The kernel parameters that belong to a namespace (docker's list): IPC ones and net.*
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def check_sysctls(sysctls: dict[str, str], network: str, ipc: str) -> dict[str, str]:
    """--sysctl KEY=VALUE: only namespaced parameters, and only in namespaces of the container's
    own (net.* not with the host's network, IPC ones not with the host's IPC)."""
    for key in sysctls:
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc == "host":
                raise InvalidArgument(f"sysctl {key!r} is not allowed when the container shares the host's IPC namespace")
        elif key.startswith("net."):
            if network == "host":
                raise InvalidArgument(f"sysctl {key!r} is not allowed in host network mode")
        else:
            raise InvalidArgument(f"sysctl {key!r} is not whitelisted (namespaced ones only: net.*, fs.mqueue.*, "
                                  f"{', '.join(IPC_SYSCTLS)})")
        if "/" in key or ".." in key.split("."):
            raise InvalidArgument(f"invalid sysctl {key!r}")
    return dict(sysctls)


def release_address(store: ContainerStore, spec: ContainerSpec) -> None:
    """Give the container's address back to its network (at rm, or when create fails)."""
    if not spec.ip or not spec.network:
        return
    from ..network import ipam
    from ..network.store import NetworkStore
    try:
        ipam.release(NetworkStore(store.root), spec.network, spec.id)
    except SkiffError:  # the network is gone: nothing to give back
        pass


def parse_extra_hosts(entries: list[str]) -> list[tuple[str, str]]:
    """--add-host HOST:IP (split at the first colon, so IPv6 works) or HOST=IP."""
    out = []
    for entry in entries:
        sep = "=" if "=" in entry else ":"
        name, found, ip = entry.partition(sep)
        if not found or not name or not ip:
            raise InvalidArgument(f'invalid argument "{entry}" for "--add-host" flag: use HOST:IP')
        out.append((name, ip.strip("[]")))
    return out


def etc_files(spec: ContainerSpec, target: Container | None = None) -> dict[str, str]:
    """The container's own /etc/hostname, /etc/hosts and /etc/resolv.conf, as docker writes them.
    A container joining another's network (``target``) gets that one's files."""
    if target is not None:
        return {n: _read(f"{target.dir}/{n}") for n in ("hostname", "hosts", "resolv.conf")}
    if spec.network == "host":
        hosts = _read("/etc/hosts") or "127.0.0.1\tlocalhost\n"
    else:
        hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n")
    if spec.ip and spec.domainname:     # as docker (and the kubelet for a pod with a subdomain)
        hosts += f"{spec.ip.split('/')[0]}\t{spec.hostname}.{spec.domainname}\t{spec.hostname}\n"
    elif spec.ip:
        hosts += f"{spec.ip.split('/')[0]}\t{spec.hostname}\n"
    for name, ip in parse_extra_hosts(spec.extra_hosts):
        hosts += f"{ip}\t{name}\n"
    return {"hostname": spec.hostname + "\n", "hosts": hosts, "resolv.conf": resolv_conf(spec)}


def host_resolv(host_network: bool = False) -> tuple[list[str], list[str], list[str]]:
    """The host's resolv.conf as (nameservers, search domains, options); loopback resolvers
    are left out unless the container shares the host's network."""
    servers, search, options = [], [], []
    for line in _read("/etc/resolv.conf").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            if host_network or not parts[1].startswith(("127.", "::1")):
                servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    return servers, search, options


def resolv_conf(spec: ContainerSpec) -> str:
    """The host's resolv.conf, less loopback resolvers unless sharing the host's network,
    overridden by --dns, --dns-search and --dns-option."""
    servers, search, options = host_resolv(spec.network == "host")
    if not servers and not spec.dns and spec.network != "host":
        servers = ["8.8.8.8", "8.8.4.4"]  # docker's fallback when the host has only local resolvers
    servers = spec.dns or servers
    search = spec.dns_search or search
    options = spec.dns_options or options
    out = [f"nameserver {s}" for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
