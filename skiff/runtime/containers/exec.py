"""`exec`: a new process in a running container: its cgroup, all its namespaces, its user.

The caller forks a helper that joins the cgroup and the ipc, uts, net, pid and
mount namespaces of the container's init; joining a PID namespace only applies
to children, so the helper forks once more, and that process becomes the
command. The helper relays its exit status.
"""

from __future__ import annotations

import os

from ...errors import Conflict, SkiffError
from ..kernel import NS_FILES, Kernel, kernel
from .store import Container


def exec_in(c: Container, argv: list[str], env: list[str] = (), user: str = "", workdir: str = "",
            tty: bool = False, stdio: tuple[int, int, int] | None = None,
            k: Kernel = kernel) -> int:
    """Start ``argv`` in ``c`` and return the pid of the helper; its exit status is the command's.

    ``stdio``: the fds to give the command (default: the caller's). Raises SkiffError with
    126/127 when the command cannot be run.
    """
    from .spec import merge_env
    st = c.state()
    if not st.running:
        raise Conflict(f"container {c.id} is not running")
    spec = c.spec
    procs = []
    if st.cgroup:
        from .cgroups import detect
        procs = detect().load(st.cgroup).self_join_files()
    ns_fds = []
    try:
        for ns in NS_FILES:
            ns_fds.append((os.open(f"/proc/{st.pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), NS_FILES[ns]))
    except OSError as e:
        for fd, _ in ns_fds:
            os.close(fd)
        raise Conflict(f"container {c.id} is not running: {e.strerror}") from None
    full_env = merge_env(spec.env, list(env), spec.hostname, tty)
    errr, errw = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        _helper(k, procs, ns_fds, errw, argv, full_env, user or spec.user, spec,
                workdir or spec.workdir or "/", tty, stdio)
    for fd, _ in ns_fds:
        os.close(fd)
    os.close(errw)
    msg = b""
    while chunk := os.read(errr, 4096):
        msg += chunk
    os.close(errr)
    if msg:
        os.waitpid(pid, 0)
        code, _, text = msg.decode(errors="replace").partition(" ")
        raise SkiffError(text, int(code) if code.isdigit() else 125)
    return pid


def open_pty(c: Container) -> tuple[int, int]:
    """A new pseudo-terminal in the container's own devpts (so that ``tty`` names it there):
    (master, slave), both for the caller to close. Opened from the host through
    /proc/<init>/root, the slave through TIOCGPTPEER (no path lookup)."""
    import fcntl
    import struct
    st = c.state()
    if not st.running:
        raise Conflict(f"container {c.id} is not running")
    try:
        master = os.open(f"/proc/{st.pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return os.openpty()    # no devpts of its own: a host terminal still works
    try:
        fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))    # TIOCSPTLCK: unlock
        slave = fcntl.ioctl(master, 0x5441, os.O_RDWR | os.O_NOCTTY)   # TIOCGPTPEER
    except OSError:
        os.close(master)
        raise
    return master, slave


def _helper(k, procs, ns_fds, errw, argv, env, user, spec, workdir, tty, stdio) -> None:
    from . import init
    import fcntl  # noqa: F401 - after setns(mnt) the host's Python library is out of reach
    try:
        init.join_cgroup(procs)
        for fd, nstype in ns_fds:
            k.setns(fd, nstype)
            os.close(fd)
        child = os.fork()
        if child == 0:
            try:
                if stdio is not None:
                    for target, fd in enumerate(stdio):
                        os.dup2(fd, target)
                if tty:
                    import fcntl
                    os.setsid()
                    fcntl.ioctl(0, 0x540E, 0)  # TIOCSCTTY
                home = init.switch_user(k, user, spec)   # the container's groups and capabilities
                init.default_signals()
                init.exec_process(argv, env, workdir, home)
            except BaseException as e:  # noqa: BLE001
                init.fail(errw, e)
        # Let go of every fd inherited from the caller (forked, not exec'd: its pipes and
        # sockets are all here): the caller's end of the command's stdin pipe must close
        # when the caller closes it, or the command never sees EOF.
        os.closerange(3, 1 << 20)
        status = os.waitpid(child, 0)[1]
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
    except BaseException as e:  # noqa: BLE001
        init.fail(errw, e)
