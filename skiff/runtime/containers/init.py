"""The container's first process, from fork to execve: the create path, one step a function.

Runs in the child that the monitor forked after unshare(CLONE_NEWPID), so it is
PID 1 of the new PID namespace (with --pid host it is an ordinary process of the host's:
its orphans go to the host's reaper, and the monitor's cgroup removal kills what it
leaves behind, as runc does for a container without a PID namespace). Steps, in order:

  die_with_monitor -> join the cgroup -> unshare -> rootfs (overlay, /proc,
  /dev, /sys, masks, /etc files, volumes, --read-only) -> hostname -> console ->
  pivot_root -> stdio -> rlimits -> user + groups + capabilities + no_new_privs ->
  workdir -> execve

The child joins its cgroup itself, while it still has one thread: on cgroup v1
it writes "0" to `tasks`, which spares the kernel's global threadgroup lock and
its RCU grace period (see Cgroup.self_join_files).

Any failure is written to the error pipe as "<exit code> <message>" and the
child exits; the monitor reports it. A successful execve closes the pipe
(O_CLOEXEC), which is how the monitor learns that the container is running.
"""

from __future__ import annotations

import errno
import os
import _signal as signal  # not `signal`: it imports enum (ms on the start path)

from ...errors import SkiffError
from ..kernel import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, PR_SET_KEEPCAPS,
                      PR_SET_PDEATHSIG, Kernel)
from . import caps, rootfs, seccomp
from ..network.modes import NetworkMode, parse_mode
from .spec import ContainerSpec
from .users import resolve as resolve_user

RLIMITS = {"core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12,
           "nice": 13, "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15,
           "sigpending": 11, "stack": 3}


class InitConfig:
    """Everything the child needs that is not in the spec."""

    def __init__(self, spec: ContainerSpec, cdir: str, join_files: list[str], errw: int,
                 stdio: tuple[int, int, int] | None = None,
                 console_sock: int | None = None, winsize: tuple[int, int] | None = None,
                 net_sync: tuple[int, int] | None = None, netns_fd: int | None = None,
                 join_fds: list[tuple[int, str]] | None = None):
        self.spec, self.cdir, self.join_files = spec, cdir, join_files
        self.join_fds = join_fds or []  # (fd, "ipc"|"uts"): --ipc/--uts container:NAME
        self.errw = errw
        self.net_sync = net_sync    # (read, write): wait for the monitor to wire eth0
        self.netns_fd = netns_fd    # container:NAME: the namespace to join
        self.stdio, self.console_sock, self.winsize = stdio, console_sock, winsize


def die_with_monitor(k: Kernel, errw: int) -> None:
    """SIGKILL this process when the monitor dies. The monitor's pid is not visible from the
    new PID namespace, so whether it died before prctl took effect is read from the error
    pipe: its write end reports POLLERR once the monitor's read end is gone."""
    k.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    import select
    p = select.poll()
    p.register(errw, 0)
    if p.poll(0):
        os._exit(137)


def network_ready(wfd: int) -> None:
    """Tell the monitor the network namespace exists: it wires eth0 while we build the rootfs."""
    os.write(wfd, b"n")
    os.close(wfd)


def wait_for_network(rfd: int) -> None:
    """Before the command runs: wait until the monitor has wired eth0."""
    if os.read(rfd, 1) != b"g":  # the monitor failed (it reports why) or died
        os._exit(125)
    os.close(rfd)


def join_cgroup(procs_files: list[str]) -> None:
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def namespace_flags(network: NetworkMode, ipc: str = "", uts: str = "") -> int:
    """The namespaces the init makes of its own: not those it joins (container:NAME) or
    shares with the host."""
    flags = CLONE_NEWNS
    if ipc != "host" and not ipc.startswith("container:"):
        flags |= CLONE_NEWIPC
    if uts != "host" and not uts.startswith("container:"):
        flags |= CLONE_NEWUTS
    if network.new_namespace:
        flags |= CLONE_NEWNET
    return flags


def own_uts(spec: ContainerSpec) -> bool:
    """Whether the container has a UTS namespace of its own (then it sets its hostname)."""
    return spec.uts != "host" and not spec.uts.startswith("container:")


def join_namespaces(k: Kernel, join_fds: list[tuple[int, str]]) -> None:
    for fd, kind in join_fds:
        k.setns(fd, CLONE_NEWIPC if kind == "ipc" else CLONE_NEWUTS)
        os.close(fd)


def build_rootfs(k: Kernel, spec: ContainerSpec, cdir: str) -> str:
    """Mount the overlay and, inside it, /proc, /dev, /sys and the /etc files.

    Every path inside the root is resolved with rootfs.secure_join, so that a symlink
    in the image (/etc -> /somewhere, /proc -> /) resolves inside the container and
    can never point a mount or a write at the host.
    """
    root = cdir + "/rootfs"
    rootfs.make_private(k)
    rootfs.mount_overlay(k, spec.layer_dirs, cdir + "/upper", cdir + "/work", root)
    rootfs.mount_proc(k, root)
    for key, value in spec.sysctls.items():    # before /proc/sys goes read-only
        with open(rootfs.secure_join(root, "/proc/sys/" + key.replace(".", "/")), "w") as f:
            f.write(value)
    rootfs.mount_dev(k, root, privileged=spec.privileged)
    rootfs.mount_sys(k, root, readonly=not spec.privileged)
    if not spec.privileged:  # --privileged: nothing masked, /proc/sys and friends writable
        rootfs.mask_paths(k, root)
    rootfs.bind_etc_files(k, root, {n: f"{cdir}/{n}" for n in rootfs.ETC_FILES
                                    if os.path.exists(f"{cdir}/{n}")})
    if spec.mounts:
        rootfs.bind_mounts(k, root, spec.mounts)
    if spec.read_only:
        rootfs.make_read_only(k, root, spec.workdir)
    return root


def preload(spec: ContainerSpec) -> None:
    """Import now what is needed after pivot_root, when the host's Python library is gone."""
    import array  # noqa: F401
    import fcntl  # noqa: F401
    import struct  # noqa: F401
    import _socket  # noqa: F401
    if spec.seccomp:
        import ctypes  # noqa: F401 - seccomp.install
    if spec.ulimits:
        import resource  # noqa: F401


def default_signals() -> None:
    """Undo what the container would otherwise inherit from Python and the monitor: ignored
    SIGPIPE, SIGXFSZ, SIGINT, SIGTERM... and a blocked mask. A shell as PID 1 must be able to
    trap SIGTERM, and `skiff stop` relies on it."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) is not signal.SIG_DFL:
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def open_console(k: Kernel, root: str, sock: int, winsize) -> None:
    """Make a pty in the container's own devpts, hand the master to the monitor, use the slave."""
    import array
    import fcntl
    import struct
    import _socket
    pts = rootfs.secure_join(root, "/dev/pts")  # our own devpts: mounted by mount_dev
    master = os.open(pts + "/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))  # TIOCSPTLCK: unlock
    n = struct.unpack("I", fcntl.ioctl(master, 0x80045430, b"\0" * 4))[0]  # TIOCGPTN
    slave_path = f"{pts}/{n}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    if winsize:
        fcntl.ioctl(slave, 0x5414, struct.pack("HHHH", winsize[0], winsize[1], 0, 0))  # TIOCSWINSZ
    rootfs.bind_file(k, slave_path, rootfs.secure_join(root, "/dev/console"))
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock)
    s.sendmsg([b"c"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [master]))])
    s.close()
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, 0x540E, 0)  # TIOCSCTTY
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def set_stdio(stdio: tuple[int, int, int]) -> None:
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    for fd in set(stdio):
        if fd > 2:
            os.close(fd)


def set_rlimits(ulimits: dict[str, list[int]]) -> None:
    """Apply --ulimit values, never above the caller's hard limit (raising it needs privileges
    root may not have here: the hard nofile limit on these hosts is 20000)."""
    import resource
    inf = resource.RLIM_INFINITY
    for name, (soft, hard) in ulimits.items():
        res = RLIMITS[name]
        soft = inf if soft < 0 else soft
        hard = inf if hard < 0 else hard
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != inf:
            hard = cur_hard if hard == inf else min(hard, cur_hard)
            soft = hard if soft == inf else min(soft, hard)
        resource.setrlimit(res, (soft, hard))


def switch_user(k: Kernel, user: str, spec: ContainerSpec) -> str:
    """Drop to ``user`` with the container's extra groups (--group-add), keeping its
    capabilities (docker's set, changed by --cap-add/--cap-drop), then load the seccomp filter
    (docker's default profile, for those capabilities); returns $HOME."""
    u = resolve_user(user, "/etc", spec.group_add)
    keep = caps.all_mask() if spec.privileged else caps.keep_mask(spec.cap_add, spec.cap_drop)
    caps.drop_bounding(k, keep)
    if u.uid != 0 or u.gid != 0:
        k.prctl(PR_SET_KEEPCAPS, 1)
        os.setgroups(u.groups)
        os.setgid(u.gid)
        os.setuid(u.uid)
        k.prctl(PR_SET_KEEPCAPS, 0)
    else:
        os.setgroups(u.groups)
    caps.apply(k, keep, no_new_privs=not spec.privileged)
    if spec.seccomp == seccomp.DEFAULT:     # never for a privileged container (create)
        prog = seccomp.build(keep)
        if prog is not None:
            seccomp.install(k, prog)
    return u.home


def find_executable(name: str, env: list[str]) -> str:
    """Resolve argv[0] as execvp would, with the container's PATH; docker's 126/127 errors."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    denied = None
    for c in candidates:
        try:
            st = os.stat(c)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and os.access(c, os.X_OK):
            return c
        denied = c
    if denied is not None:
        raise SkiffError(f'exec: "{name}": permission denied', 126)
    if "/" in name:
        raise SkiffError(f'exec: "{name}": stat {name}: no such file or directory', 127)
    raise SkiffError(f'exec: "{name}": executable file not found in $PATH', 127)


def exec_process(argv: list[str], env: list[str], workdir: str, home: str) -> None:
    if not any(e.startswith("HOME=") for e in env):
        env = [*env, f"HOME={home}"]
    if workdir:
        try:
            os.makedirs(workdir, exist_ok=True)
        except OSError:
            pass
        try:
            os.chdir(workdir)
        except OSError as e:
            raise SkiffError(f"chdir to cwd (\"{workdir}\") set in config.json failed: {e.strerror}", 126)
    path = find_executable(argv[0], env)
    try:
        os.execve(path, argv, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as e:
        code = 126 if e.errno in (errno.EACCES, errno.ENOEXEC, errno.EPERM) else 127
        raise SkiffError(f'exec: "{argv[0]}": {e.strerror.lower()}', code)


def run(k: Kernel, cfg: InitConfig) -> None:
    """The child's whole life before execve. Never returns."""
    try:
        spec = cfg.spec
        die_with_monitor(k, cfg.errw)
        join_cgroup(cfg.join_files)
        preload(spec)
        network = parse_mode(spec.network)
        k.unshare(namespace_flags(network, spec.ipc, spec.uts))
        if cfg.netns_fd is not None:
            k.setns(cfg.netns_fd, CLONE_NEWNET)
            os.close(cfg.netns_fd)
        join_namespaces(k, cfg.join_fds)
        network.setup_inside()
        if cfg.net_sync is not None:
            network_ready(cfg.net_sync[1])
        root = build_rootfs(k, spec, cfg.cdir)
        if own_uts(spec):
            k.sethostname(spec.hostname)
        if cfg.console_sock is not None:
            open_console(k, root, cfg.console_sock, cfg.winsize)
        rootfs.pivot(k, root)
        if cfg.stdio is not None:
            set_stdio(cfg.stdio)
        if spec.ulimits:
            set_rlimits(spec.ulimits)
        home = switch_user(k, spec.user, spec)
        default_signals()
        if cfg.net_sync is not None:
            wait_for_network(cfg.net_sync[0])
        exec_process(spec.argv, spec.env, spec.workdir or "/", home)
    except BaseException as e:  # noqa: BLE001 - report anything, the child must not unwind
        fail(cfg.errw, e)


def fail(errw: int, e: BaseException) -> None:
    """Report ``e`` on the error pipe as "<exit code> <one line>" and exit. Never returns."""
    code = 125
    if isinstance(e, SkiffError):
        code, msg = e.exit_code, str(e)
    elif isinstance(e, OSError):
        msg = f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    else:
        msg = f"container init: {type(e).__name__}: {e}"
    try:
        os.write(errw, f"{code} {msg}".encode())
    finally:
        os._exit(code)
