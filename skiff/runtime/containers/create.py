"""`create`: from an image and the user's options to a container directory, ready to start."""

from __future__ import annotations

import os

from ...errors import InvalidArgument, SkiffError
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
    env: list[str] = []
    workdir: str = ""
    user: str = ""
    tty: bool = False
    stdin: bool = False
    autoremove: bool = False
    network: str = "bridge"
    memory: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cgroup_parent: str = "skiff"
    log_max_size: int | None = None
    log_max_files: int = 1
    ulimits: dict[str, list[int]] = {}
    labels: dict[str, str] = {}
    stop_signal: str | None = None
    stop_timeout: int | None = None
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []


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
    from ..network.modes import parse_mode
    network = parse_mode(opts.network).name
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
    hostname = opts.hostname or (os.uname().nodename if network == "host" else cid[:12])
    spec = ContainerSpec(
        id=cid, name="", image=opts.image, image_id=image.id, created=now_rfc3339(),
        path=argv[0], args=argv[1:], entrypoint=entrypoint or None, cmd=cmd or None,
        env=merge_env(cfg.get("Env") or [], opts.env, hostname, opts.tty),
        workdir=opts.workdir or cfg.get("WorkingDir") or "", user=opts.user or cfg.get("User") or "",
        hostname=hostname, tty=opts.tty, stdin=opts.stdin, autoremove=opts.autoremove,
        network=network, memory=opts.memory, cpus=opts.cpus, cpu_shares=opts.cpu_shares,
        pids_limit=opts.pids_limit, cgroup_parent=opts.cgroup_parent,
        log_max_size=opts.log_max_size, log_max_files=opts.log_max_files, ulimits=opts.ulimits,
        labels={**(cfg.get("Labels") or {}), **opts.labels},
        stop_signal=opts.stop_signal or cfg.get("StopSignal") or "SIGTERM",
        stop_timeout=opts.stop_timeout, layer_dirs=image.layer_dirs(),
        extra_hosts=opts.extra_hosts, dns=opts.dns, dns_search=opts.dns_search,
        dns_options=opts.dns_options,
    )
    files = etc_files(spec)  # may reject --add-host: before the name is taken
    spec.name = store.reserve_name(opts.name, cid)
    return store.create(spec, files)


def etc_files(spec: ContainerSpec) -> dict[str, str]:
    """The container's own /etc/hostname, /etc/hosts and /etc/resolv.conf, as docker writes them."""
    if spec.network == "host":
        hosts = _read("/etc/hosts") or "127.0.0.1\tlocalhost\n"
    else:
        hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n")
    for entry in spec.extra_hosts:
        # docker: HOST:IP split at the first colon (so IPv6 works), or HOST=IP
        sep = "=" if "=" in entry else ":"
        name, found, ip = entry.partition(sep)
        if not found or not name or not ip:
            raise InvalidArgument(f'invalid argument "{entry}" for "--add-host" flag: use HOST:IP')
        hosts += f"{ip.strip('[]')}\t{name}\n"
    return {"hostname": spec.hostname + "\n", "hosts": hosts, "resolv.conf": resolv_conf(spec)}


def resolv_conf(spec: ContainerSpec) -> str:
    """The host's resolv.conf, less loopback resolvers unless sharing the host's network,
    overridden by --dns, --dns-search and --dns-option."""
    host = _read("/etc/resolv.conf")
    servers, search, options = [], [], []
    for line in host.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            if spec.network == "host" or not parts[1].startswith(("127.", "::1")):
                servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
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
