"""skiff run: create a container from an image and start it, in the foreground or with -d."""

from __future__ import annotations

from ..errors import InvalidArgument
from .parser import Command, Opt

DEFAULT_NETWORK = "bridge"

COMMAND = Command(
    "run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
    [
        Opt(("-d", "--detach"), "detach", help="Run container in background and print container ID"),
        Opt(("-i", "--interactive"), "interactive", help="Keep STDIN open even if not attached"),
        Opt(("-t", "--tty"), "tty", help="Allocate a pseudo-TTY"),
        Opt(("--rm",), "rm", help="Automatically remove the container when it exits"),
        Opt(("--name",), "name", "str", "Assign a name to the container", "string"),
        Opt(("-h", "--hostname"), "hostname", "str", "Container host name", "string"),
        Opt(("-e", "--env"), "env", "list", "Set environment variables", "list"),
        Opt(("--env-file",), "env_file", "list", "Read in a file of environment variables", "list"),
        Opt(("-w", "--workdir"), "workdir", "str", "Working directory inside the container", "string"),
        Opt(("-u", "--user"), "user", "str", "Username or UID (format: <name|uid>[:<group|gid>])", "string"),
        Opt(("--entrypoint",), "entrypoint", "str", "Overwrite the default ENTRYPOINT of the image", "string"),
        Opt(("-m", "--memory"), "memory", "str", "Memory limit", "bytes"),
        Opt(("--cpus",), "cpus", "str", "Number of CPUs", "decimal"),
        Opt(("-c", "--cpu-shares"), "cpu_shares", "int", "CPU shares (relative weight)", "int"),
        Opt(("--pids-limit",), "pids_limit", "int", "Tune container pids limit (-1 for unlimited)", "int"),
        Opt(("--cgroup-parent",), "cgroup_parent", "str", "Parent cgroup for the container", "string"),
        Opt(("--network", "--net"), "network", "str",
            "Connect a container to a network (bridge, NAME, host, none, container:NAME)", "network"),
        Opt(("-p", "--publish"), "publish", "list", "Publish a container's port(s) to the host "
            "([IP:][HOSTPORT:]CONTAINERPORT[/PROTO])", "list"),
        Opt(("--log-opt",), "log_opt", "list", "Log driver options (max-size, max-file)", "list"),
        Opt(("--ulimit",), "ulimit", "list", "Ulimit options (e.g. nofile=1024:2048)", "ulimit"),
        Opt(("--sysctl",), "sysctl", "list", "Sysctl options (namespaced: net.*, kernel.shm*...)", "map"),
        Opt(("-l", "--label"), "label", "list", "Set meta data on a container", "list"),
        Opt(("--stop-signal",), "stop_signal", "str", "Signal to stop the container", "string"),
        Opt(("--stop-timeout",), "stop_timeout", "int", "Timeout (in seconds) to stop a container", "int"),
        Opt(("--add-host",), "add_host", "list", "Add a custom host-to-IP mapping (host:ip)", "list"),
        Opt(("--dns",), "dns", "list", "Set custom DNS servers", "list"),
        Opt(("--dns-search",), "dns_search", "list", "Set custom DNS search domains", "list"),
        Opt(("--dns-option",), "dns_option", "list", "Set DNS options", "list"),
        Opt(("-v", "--volume"), "volume", "list", "Bind mount a volume (/host:/ctr[:ro])", "list"),
        Opt(("--mount",), "mount", "list",
            "Attach a filesystem mount (type=bind,source=..,target=..[,readonly])", "mount"),
        Opt(("--ipc",), "ipc", "str", "IPC mode to use (private, shareable, host, container:NAME)", "string"),
        Opt(("--uts",), "uts", "str", "UTS namespace to use (host, container:NAME)", "string"),
        Opt(("--pid",), "pid", "str", "PID namespace to use (host, container:NAME)", "string"),
        Opt(("--cap-add",), "cap_add", "list", "Add Linux capabilities", "list"),
        Opt(("--cap-drop",), "cap_drop", "list", "Drop Linux capabilities", "list"),
        Opt(("--read-only",), "read_only", help="Mount the container's root filesystem as read only"),
        Opt(("--privileged",), "privileged", help="Give extended privileges to this container"),
        Opt(("--security-opt",), "security_opt", "list",
            "Security options (seccomp=unconfined: no seccomp filter; no-new-privileges)", "list"),
        Opt(("--group-add",), "group_add", "list", "Add additional groups to join", "list"),
    ],
    min_args=1, interspersed=False)


def build_options(values: dict, args: list[str]):
    """Turn the parsed flags into CreateOptions; every bad value is a one-line error, before
    anything is created."""
    from ..runtime.containers.create import CreateOptions
    opts = CreateOptions(image=args[0], command=args[1:])
    opts.name = values["name"]
    opts.hostname = values["hostname"] or ""
    opts.env = _env_files(values["env_file"]) + values["env"]
    for e in opts.env:
        if e.startswith("="):
            raise InvalidArgument(f"invalid environment variable: {e}")
    opts.workdir = values["workdir"] or ""
    opts.user = values["user"] or ""
    opts.entrypoint = values["entrypoint"]
    opts.tty, opts.stdin, opts.autoremove = values["tty"], values["interactive"], values["rm"]
    opts.network = values["network"] or DEFAULT_NETWORK
    if values["publish"]:
        from ..runtime.network.ports import parse_publish
        opts.ports = [parse_publish(p) for p in values["publish"]]
    if values["memory"] is not None or values["cpus"] is not None:
        from ..runtime.containers.cgroups import parse_cpus, parse_memory
        if values["memory"] is not None:
            opts.memory = parse_memory(values["memory"])
        if values["cpus"] is not None:
            opts.cpus = parse_cpus(values["cpus"])
    opts.cpu_shares = values["cpu_shares"]
    pl = values["pids_limit"]
    opts.pids_limit = pl if pl is not None and pl > 0 else None
    if values["cgroup_parent"]:
        opts.cgroup_parent = values["cgroup_parent"].strip("/")
    for item in values["log_opt"]:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidArgument(f'invalid log-opt "{item}": use KEY=VALUE')
        if k == "max-size":
            from ..runtime.containers.logs import parse_size
            opts.log_max_size = parse_size(v)
        elif k == "max-file":
            if not v.isdigit() or int(v) < 1:
                raise InvalidArgument(f'invalid log-opt max-file "{v}": must be a positive number')
            opts.log_max_files = int(v)
        else:
            raise InvalidArgument(f'unknown log opt \'{k}\' for json-file log driver')
    opts.ulimits = parse_ulimits(values["ulimit"])
    opts.sysctls = parse_sysctls(values["sysctl"])
    opts.labels = dict(_kv(l, "label") for l in values["label"])
    opts.stop_signal = values["stop_signal"]
    if opts.stop_signal:
        from ..runtime.containers.signals import parse
        parse(opts.stop_signal)
    opts.stop_timeout = values["stop_timeout"]
    opts.extra_hosts, opts.dns = values["add_host"], values["dns"]
    opts.dns_search, opts.dns_options = values["dns_search"], values["dns_option"]
    if values["volume"] or values["mount"]:
        from ..runtime.containers.volumes import parse_mount, parse_volume
        # --mount first: a missing --mount source is an error before -v creates anything
        mounts = [parse_mount(m) for m in values["mount"]]
        opts.mounts = [parse_volume(v, create_missing=False) for v in values["volume"]] + mounts
        for m in opts.mounts:  # docker: -v makes a missing host directory
            if m.get("bind"):
                parse_volume(m["bind"], create_missing=True)
    opts.ipc, opts.uts, opts.pid = values["ipc"] or "", values["uts"] or "", values["pid"] or ""
    opts.cap_add, opts.cap_drop = values["cap_add"], values["cap_drop"]
    opts.read_only, opts.group_add = values["read_only"], values["group_add"]
    opts.privileged = values["privileged"]
    opts.seccomp = parse_security_opts(values.get("security_opt") or [])
    return opts


def parse_security_opts(items: list[str]) -> str:
    """--security-opt: "default" or "unconfined" seccomp. no-new-privileges is taken as it is
    (skiff sets no_new_privs for every container but a privileged one); anything else is refused."""
    from ..errors import InvalidArgument
    mode = "default"
    for item in items:
        key, sep, value = item.partition("=" if "=" in item else ":")
        if key == "seccomp" and sep and value in ("unconfined", "builtin", "default"):
            mode = "unconfined" if value == "unconfined" else "default"
        elif key == "seccomp":
            raise InvalidArgument(f"invalid --security-opt {item!r}: skiff takes seccomp=unconfined or "
                                  f"seccomp=builtin (docker's default profile), not a profile file")
        elif key == "no-new-privileges" and value in ("", "true"):
            continue
        else:
            raise InvalidArgument(f"invalid --security-opt {item!r}: skiff takes seccomp=unconfined|builtin "
                                  f"and no-new-privileges")
    return mode


def parse_sysctls(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f'invalid argument "{item}" for "--sysctl" flag: use KEY=VALUE')
        out[key.strip()] = value
    return out


def parse_ulimits(items: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    if not items:
        return out
    from ..runtime.containers.init import RLIMITS
    for item in items:
        name, sep, val = item.partition("=")
        if not sep or name not in RLIMITS:
            raise InvalidArgument(f'invalid ulimit "{item}": use NAME=SOFT[:HARD], NAME one of {", ".join(sorted(RLIMITS))}')
        soft, _, hard = val.partition(":")
        try:
            s = _limit_value(soft)
            h = _limit_value(hard) if hard else s
        except ValueError:
            raise InvalidArgument(f'invalid ulimit "{item}": values must be numbers, -1 or "unlimited"') from None
        if s < 0 and h >= 0:
            raise InvalidArgument(f'invalid ulimit "{item}": an unlimited soft limit needs an unlimited hard limit')
        if h >= 0 and s > h:
            raise InvalidArgument(f'invalid ulimit "{item}": soft limit {s} is greater than hard limit {h}')
        out[name] = [s, h]
    return out


def _limit_value(text: str) -> int:
    if text.lower() in ("unlimited", "infinity", "-1"):
        return -1
    n = int(text)
    if n < 0:
        raise ValueError(text)
    return n


def _kv(item: str, what: str) -> tuple[str, str]:
    k, _, v = item.partition("=")
    if not k:
        raise InvalidArgument(f'invalid {what} "{item}"')
    return k, v


def _env_files(paths: list[str]) -> list[str]:
    env = []
    for p in paths:
        try:
            with open(p) as f:
                for n, line in enumerate(f, 1):
                    line = line.lstrip().rstrip("\r\n")
                    if line and not line.startswith("#"):
                        env.append(line)
        except OSError as e:
            raise InvalidArgument(f"open {p}: {e.strerror}") from None
    return env


def main(ctx, values, args) -> int:
    opts = build_options(values, args)
    from ..runtime.containers.create import create
    from ..runtime.containers.start import start
    c = create(ctx.containers, ctx.images, opts)
    if values["detach"]:
        start(c)
        print(c.id)
        return 0
    from .attach import attach_and_wait, terminal_size
    winsize = terminal_size() if opts.tty else None
    att = start(c, attach=True, winsize=winsize)
    return attach_and_wait(c, att, opts.tty, opts.stdin)
