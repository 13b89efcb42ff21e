"""The per-container monitor (a shim, like conmon): one small process per container.

It is started detached from the caller (double fork and setsid, or a spawned
``python -I -m skiff.runtime.containers.monitor`` from a threaded caller), so
killing the CLI or agent never kills the container. It:

  1. creates the cgroup and unshares a PID namespace, then forks the init;
  2. learns whether execve succeeded (the init's O_CLOEXEC error pipe);
  3. records the state, streams stdout/stderr (or the pty) into the json log
     and to an attached client, feeds the client's stdin to the container;
  4. on exit records the exit code, OOM kill and time, removes the cgroup,
     removes the container too when it was run with --rm, tells the client.

If the monitor itself is killed, the init dies with it (PR_SET_PDEATHSIG), and
readers of the state see the monitor gone and report the container exited.
"""

from __future__ import annotations

import errno
import os
import select
import _signal as signal  # not `signal`: it imports enum (ms on the start path)
import sys

from . import frames
from .state import EXITED, RUNNING, State, now_rfc3339, proc_start_time


class Client:
    """The attached caller: frames out on ``wfd``, frames in on ``rfd``. Gone on any error."""

    def __init__(self, wfd: int, rfd: int):
        self.wfd, self.rfd = wfd, rfd
        self.reader = frames.Reader()

    def send(self, kind: int, payload: bytes = b"") -> None:
        if self.wfd < 0:
            return
        try:
            frames.write_frame(self.wfd, kind, payload)
        except OSError:
            self.close()

    def close(self) -> None:
        for fd in (self.wfd, self.rfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.wfd = self.rfd = -1


def _isolate_fds(keep: set[int]) -> None:
    """Stdio to /dev/null and no inherited descriptors, so `$(skiff run -d ...)` does not hang."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        if fd not in keep:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    for fd in _open_fds():
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


class Monitor:
    def __init__(self, root_path: str, cid: str, client: Client):
        from ..root import Root
        from .store import ContainerStore
        self.store = ContainerStore(Root(root_path))
        self.container = self.store.by_id(cid)
        self.spec = self.container.spec
        self.cdir = self.container.dir
        self.client = client
        self.state = State(status="created", monitor_pid=os.getpid(),
                           monitor_start=proc_start_time(os.getpid()) or 0)
        self.cgroup = None
        self.pid = 0
        self.log = None
        self.outputs: dict[int, str] = {}  # fd -> stream name
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.master = -1
        self.port_fds: list[int] = []
        self.wired = False
        self.listener = None                   # the attach socket (containers with stdin or a tty)
        self.attached: dict[int, Client] = {}  # rfd -> a client attached later (skiff attach, the agent)

    # -- start ---------------------------------------------------------------------------
    def fail(self, code: int, message: str) -> None:
        """Start failed: leave nothing behind, tell the caller, exit."""
        self.unwire()
        if self.cgroup is not None:
            self.cgroup.destroy()
        try:
            self.store.remove_files(self.container)
        finally:
            self.client.send(frames.ERROR, frames.json_payload({"code": code, "message": message}))
            os._exit(code)

    def create_cgroup(self) -> None:
        from .cgroups import Limits, detect
        s = self.spec
        self.cgroup = detect().create(s.cgroup_parent, s.id, Limits(
            memory=s.memory, cpus=s.cpus, cpu_shares=s.cpu_shares, pids=s.pids_limit))
        self.state.cgroup = self.cgroup.to_dict()

    def start(self, winsize) -> None:
        from ...errors import SkiffError
        from ..kernel import CLONE_NEWPID, kernel
        from . import init
        try:
            self.create_cgroup()
            if self.spec.pid.startswith("container:"):   # --pid container:NAME: its children join
                fd = self._target_ns(self.spec.pid[10:], "pid")
                try:
                    kernel.setns(fd, CLONE_NEWPID)
                finally:
                    os.close(fd)
            elif self.spec.pid != "host":               # --pid host: the host's PID namespace
                kernel.unshare(CLONE_NEWPID)
        except SkiffError as e:
            self.fail(e.exit_code, str(e))
        except OSError as e:
            self.fail(125, f"cannot create container: {e}")
        errr, errw = os.pipe2(os.O_CLOEXEC)
        child_fds: list[int] = []
        stdio = console = None
        net_sync = netns_fd = mon_net = None
        join_fds: list[tuple[int, str]] = []
        try:
            if self.spec.bridge:
                from ..network.ports import hold
                self.state.ports, self.port_fds = hold(self.spec.ports)
                to_mon_r, to_mon_w = os.pipe2(os.O_CLOEXEC)
                to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
                net_sync, mon_net = (to_child_r, to_mon_w), (to_mon_r, to_child_w)
                child_fds += [to_child_r, to_mon_w]
            elif self.spec.netns_container:
                netns_fd = self._target_netns()
                child_fds.append(netns_fd)
            for kind in ("ipc", "uts"):  # --ipc/--uts container:NAME
                mode = getattr(self.spec, kind)
                if mode.startswith("container:"):
                    join_fds.append((self._target_ns(mode[10:], kind), kind))
                    child_fds.append(join_fds[-1][0])
        except SkiffError as e:
            self.fail(e.exit_code, str(e))
        if self.spec.tty:
            import socket
            parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console = child_sock.detach()
            child_fds.append(console)
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            if self.spec.stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                self.stdin_fd = in_w
                os.set_blocking(in_w, False)
            else:
                in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            stdio = (in_r, out_w, err_w)
            child_fds += [in_r, out_w, err_w]
            self.outputs = {out_r: "stdout", err_r: "stderr"}
        pid = os.fork()
        if pid == 0:
            os.close(errr)
            init.run(kernel, init.InitConfig(self.spec, self.cdir, self.cgroup.self_join_files(),
                                             errw, stdio=stdio, console_sock=console,
                                             winsize=winsize, net_sync=net_sync,
                                             netns_fd=netns_fd, join_fds=join_fds))
        self.pid = pid
        os.close(errw)
        for fd in child_fds:
            os.close(fd)
        if mon_net is not None:
            self._wire(*mon_net)
        msg = b""
        while chunk := os.read(errr, 4096):
            msg += chunk
        os.close(errr)
        if msg:
            os.waitpid(pid, 0)
            code, _, text = msg.decode(errors="replace").partition(" ")
            self.fail(int(code) if code.isdigit() else 125, text)
        if self.spec.tty:
            self.master = self._receive_master(parent_sock)
            if self.spec.stdin:
                self.stdin_fd = os.dup(self.master)
                os.set_blocking(self.stdin_fd, False)
            self.outputs = {self.master: "stdout"}
        self.state.status = RUNNING
        self.state.pid = pid
        self.state.pid_start = proc_start_time(pid) or 0
        self.state.started_at = now_rfc3339()
        self.state.save(self.cdir + "/state.json")
        if self.spec.stdin or self.spec.tty:
            from .attach import listen
            self.listener = listen(self.cdir)
        from .logs import LogWriter
        self.log = LogWriter(self.cdir + "/log", self.spec.log_max_size, self.spec.log_max_files)
        self.client.send(frames.STARTED, frames.json_payload({"pid": pid}))

    def _target_netns(self) -> int:
        """container:NAME: the network namespace of that container's init."""
        return self._target_ns(self.spec.netns_container, "net")

    def _target_ns(self, cid: str, ns: str) -> int:
        """An fd on namespace ``ns`` (net, ipc, uts, pid) of container ``cid``'s init."""
        from ...errors import SkiffError
        what = "network" if ns == "net" else ns.upper()
        target = self.store.by_id(cid)
        st = target.state()
        if not st.running:
            raise SkiffError(f"cannot join {what} of a non running container: {target.name}")
        try:
            fd = os.open(f"/proc/{st.pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SkiffError(f"cannot join {what} of container {target.name}: {e.strerror}") from None
        from .state import proc_start_time
        if proc_start_time(st.pid) != st.pid_start:  # the pid was recycled meanwhile
            os.close(fd)
            raise SkiffError(f"cannot join {what} of a non running container: {target.name}")
        return fd

    def _wire(self, rfd: int, wfd: int) -> None:
        """Once the init has its network namespace: veth, address, route, published ports."""
        try:
            ready = os.read(rfd, 1) == b"n"
        finally:
            os.close(rfd)
        if not ready:  # the init failed before: its error pipe says why
            os.close(wfd)
            return
        try:
            from ..network import endpoint
            netns = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.wired = True
                endpoint.attach(self.spec, netns, self.store.root.path, self.state.ports)
            finally:
                os.close(netns)
        except Exception as e:  # noqa: BLE001 - any failure: the container must not start
            os.close(wfd)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.fail(125, f"cannot connect the container to network {self.spec.network}: {e}")
        try:
            os.write(wfd, b"g")
        except BrokenPipeError:  # the init failed meanwhile: its error pipe says why
            pass
        finally:
            os.close(wfd)

    def unwire(self) -> None:
        """Undo _wire (idempotent): port rules, the veth, the held host ports."""
        for fd in self.port_fds:
            os.close(fd)
        self.port_fds = []
        if self.wired:
            self.wired = False
            from ..network import endpoint
            try:
                endpoint.detach(self.spec.id, self.store.root.path, bool(self.state.ports))
            except Exception:  # noqa: BLE001 - best effort: the namespace is gone anyway
                pass

    @staticmethod
    def _receive_master(sock) -> int:
        import array
        import socket
        fds = array.array("i")
        _, anc, _, _ = sock.recvmsg(1, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        sock.close()
        return fds[0]

    # -- run -----------------------------------------------------------------------------
    def loop(self) -> int:
        pidfd = os.pidfd_open(self.pid)
        poller = select.poll()
        for fd in self.outputs:
            poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        if self.client.rfd >= 0:
            poller.register(self.client.rfd, select.POLLIN)
        if self.listener is not None:
            poller.register(self.listener.fileno(), select.POLLIN)
        status = None
        deadline = None
        while True:
            if status is not None and (not self.outputs or deadline <= _now()):
                break
            timeout = None if status is None else max(0, int((deadline - _now()) * 1000))
            for fd, ev in poller.poll(timeout):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    status = os.waitpid(self.pid, 0)[1]
                    deadline = _now() + 2.0  # drain what is left in the pipes
                elif fd in self.outputs:
                    if not self._pump_output(fd):
                        poller.unregister(fd)
                elif fd == self.client.rfd:
                    if not self._pump_client(self.client, poller):
                        poller.unregister(fd)
                elif fd in self.attached:
                    if not self._pump_client(self.attached[fd], poller):
                        poller.unregister(fd)
                        del self.attached[fd]
                elif self.listener is not None and fd == self.listener.fileno():
                    self._accept(poller)
                elif fd == self.stdin_fd:
                    self._flush_stdin(poller)
        os.close(pidfd)
        return status

    def _pump_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, 16384)  # small reads keep the monitor's peak memory low
        except OSError as e:
            if e.errno not in (errno.EIO,):  # EIO: the pty's slave side is gone
                raise
            data = b""
        stream = self.outputs[fd]
        if not data:
            del self.outputs[fd]
            if fd != self.master:
                os.close(fd)
            return False
        self.log.write(stream, data)
        self._send(frames.STDOUT if stream == "stdout" else frames.STDERR, data)
        return True

    def _send(self, kind: int, payload: bytes) -> None:
        """To the caller that started the container and to every client attached since."""
        self.client.send(kind, payload)
        for c in self.attached.values():
            c.send(kind, payload)

    def _accept(self, poller) -> None:
        from .attach import accept
        fd = accept(self.listener)
        if fd is not None:
            self.attached[fd] = Client(os.dup(fd), fd)
            poller.register(fd, select.POLLIN)

    def _pump_client(self, client: Client, poller) -> bool:
        try:
            data = os.read(client.rfd, 65536)
        except OSError:
            data = b""
        if not data:
            client.close()
            return False
        for kind, payload in client.reader.feed(data):
            if kind == frames.STDIN and self.stdin_fd >= 0:
                self.stdin_buf += payload
            elif kind == frames.STDIN_EOF:
                self.stdin_eof = True
            elif kind == frames.RESIZE and self.master >= 0:
                import fcntl
                fcntl.ioctl(self.master, 0x5414, payload[:8])  # TIOCSWINSZ
        self._flush_stdin(poller)
        return True

    def _flush_stdin(self, poller) -> None:
        if self.stdin_fd < 0:
            return
        try:
            while self.stdin_buf:
                n = os.write(self.stdin_fd, self.stdin_buf)
                del self.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.stdin_buf.clear()
            self.stdin_eof = True
        registered = getattr(self, "_stdin_polled", False)
        if self.stdin_buf and not registered:
            poller.register(self.stdin_fd, select.POLLOUT)
            self._stdin_polled = True
        elif not self.stdin_buf and registered:
            poller.unregister(self.stdin_fd)
            self._stdin_polled = False
        if self.stdin_eof and not self.stdin_buf:
            if self.spec.tty:  # a pty has no EOF of its own: send ^D as a terminal would
                try:
                    os.write(self.stdin_fd, b"\x04")
                except OSError:
                    pass
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    # -- exit ----------------------------------------------------------------------------
    def finish(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code
        if self.log is not None:
            self.log.flush_partial()
            self.log.close()
        st = self.state
        st.oom_killed = bool(self.cgroup and self.cgroup.oom_killed())
        self.unwire()
        if self.cgroup is not None:
            self.cgroup.destroy()
        st.status, st.exit_code, st.finished_at, st.cgroup = EXITED, code, now_rfc3339(), None
        if self.spec.autoremove:
            self.store.remove_files(self.container)
        else:
            st.save(self.cdir + "/state.json")
            # skiff cannot restart an exited container, so its address goes back now
            from .create import release_address
            release_address(self.store, self.spec)
        self._send(frames.EXIT, frames.json_payload({"code": code, "oom_killed": st.oom_killed}))
        self.client.close()
        for c in self.attached.values():
            c.close()
        if self.listener is not None:
            from .attach import close
            close(self.listener, self.cdir)


def _now() -> float:
    import time
    return time.monotonic()


def serve(root_path: str, cid: str, wfd: int, rfd: int, winsize=None) -> None:
    """The monitor's whole life, in an already detached process. Never returns."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    _isolate_fds({wfd, rfd} - {-1})
    client = Client(wfd, rfd)
    code = 125
    try:
        m = Monitor(root_path, cid, client)
        m.start(winsize)
        status = m.loop()
        m.finish(status)
        code = 0
    except BaseException as e:  # noqa: BLE001 - last resort: tell the caller in one line
        client.send(frames.ERROR, frames.json_payload({"code": 125, "message": f"monitor: {e}"}))
    os._exit(code)


def launch(root_path: str, cid: str, attach: bool, winsize=None) -> tuple[int, int]:
    """Start a detached monitor for container ``cid``; returns (frames_from, frames_to) fds.

    The fast path forks without exec (about 1 ms), but only from a single-threaded
    process; a threaded caller spawns ``python -I -m`` instead.
    """
    _preload()
    mon_r, cli_w = os.pipe2(os.O_CLOEXEC)
    cli_r, mon_w = os.pipe2(os.O_CLOEXEC)
    threading = sys.modules.get("threading")  # not imported: no threads (and no import cost)
    if threading is None or threading.active_count() == 1:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    os.close(cli_w)
                    os.close(cli_r)
                    serve(root_path, cid, mon_w, mon_r if attach else -1, winsize)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    else:
        import subprocess
        args = [sys.executable, "-I", "-m", "skiff.runtime.containers.monitor", root_path, cid,
                str(mon_w), str(mon_r if attach else -1)]
        if winsize:
            args += [str(winsize[0]), str(winsize[1])]
        os.set_inheritable(mon_w, True)
        os.set_inheritable(mon_r, True)
        subprocess.Popen(args, pass_fds=(mon_w, mon_r), start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).wait()
    os.close(mon_w)
    os.close(mon_r)
    if not attach:
        os.close(cli_w)
        cli_w = -1
    return cli_r, cli_w


def _preload() -> None:
    """Import what the monitor needs before forking it: a long-lived caller (the agent) then
    pays for it once, not once per container (about 5 ms each)."""
    from . import init, logs  # noqa: F401
    from .cgroups import detect
    from ..kernel import kernel
    detect()
    kernel.libc
    import array, fcntl, struct, _socket  # noqa: F401,E401 - the init's, before it forks


def _main(argv: list[str]) -> None:
    root_path, cid, wfd, rfd = argv[0], argv[1], int(argv[2]), int(argv[3])
    winsize = (int(argv[4]), int(argv[5])) if len(argv) >= 6 else None
    if os.fork() != 0:  # let the spawning caller reap us at once
        os._exit(0)
    serve(root_path, cid, wfd, rfd, winsize)


if __name__ == "__main__":
    _main(sys.argv[1:])
