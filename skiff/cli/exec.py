"""skiff exec: run a command in a running container (all its namespaces, its cgroup)."""

from __future__ import annotations

import os

from .parser import Command, Opt

COMMAND = Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", [
    Opt(("-i", "--interactive"), "interactive", help="Keep STDIN open even if not attached"),
    Opt(("-t", "--tty"), "tty", help="Allocate a pseudo-TTY"),
    Opt(("-d", "--detach"), "detach", help="Detached mode: run command in the background"),
    Opt(("-e", "--env"), "env", "list", "Set environment variables", "list"),
    Opt(("-u", "--user"), "user", "str", "Username or UID (format: <name|uid>[:<group|gid>])", "string"),
    Opt(("-w", "--workdir"), "workdir", "str", "Working directory inside the container", "string"),
], min_args=2, interspersed=False)


def main(ctx, values, args) -> int:
    from ..runtime.containers.exec import exec_in
    c = ctx.containers.get(args[0])
    argv = args[1:]
    tty = values["tty"]
    common = dict(env=values["env"], user=values["user"] or "", workdir=values["workdir"] or "", tty=tty)
    if values["detach"]:
        null = os.open(os.devnull, os.O_RDWR)
        exec_in(c, argv, stdio=(null, null, null), **common)
        return 0
    if not tty:
        stdio = None if values["interactive"] else (os.open(os.devnull, os.O_RDONLY), 1, 2)
        pid = exec_in(c, argv, stdio=stdio, **common)
        return _wait(pid)
    return _exec_tty(c, argv, values["interactive"], common)


def _wait(pid: int) -> int:
    while True:
        try:
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            return 128 - code if code < 0 else code
        except InterruptedError:
            continue


def _exec_tty(c, argv, interactive, common) -> int:
    import select
    import signal
    import fcntl
    from ..runtime.containers.exec import exec_in, open_pty
    from .attach import RawTerminal, terminal_size
    master, slave = open_pty(c)
    size = terminal_size(0)
    if size:
        import struct
        fcntl.ioctl(slave, 0x5414, struct.pack("HHHH", size[0], size[1], 0, 0))
    pid = exec_in(c, argv, stdio=(slave, slave, slave), **common)
    os.close(slave)

    def resize(*_):
        s = terminal_size(0)
        if s:
            import struct
            fcntl.ioctl(master, 0x5414, struct.pack("HHHH", s[0], s[1], 0, 0))
    signal.signal(signal.SIGWINCH, resize)
    with RawTerminal(0) if interactive else _Null():
        fds = [master] + ([0] if interactive else [])
        while True:
            try:
                r, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if not data:
                    fds.remove(0)
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    os.close(master)
    return _wait(pid)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return None
