"""Container probes (liveness, readiness, startup) as the kubelet runs them.

One asyncio task per (container instance, probe kind); nothing blocks the event loop:
``exec`` forks through the runtime's exec and waits on the helper's pidfd, reading the
output from a non-blocking pipe; ``httpGet`` and ``tcpSocket`` are asyncio streams to the
pod IP (the agent is in the host network namespace; pod IPs are on the node's bridge).

Semantics (pkg/kubelet/prober/worker.go):
- defaults: initialDelaySeconds 0, periodSeconds 10, timeoutSeconds 1, failureThreshold 3,
  successThreshold 1;
- the first probe runs as soon as the container has run initialDelaySeconds, then every
  periodSeconds;
- a result flips only after failureThreshold consecutive failures / successThreshold
  consecutive successes; readiness starts Failure (not ready), liveness Success, startup
  Unknown (not started);
- liveness and readiness do not run until the startup probe succeeded; the startup probe
  stops once it succeeded;
- a liveness or startup Failure kills the container (its grace period) and the worker holds
  until the container instance changes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable

from .env import field_path, is_sidecar

log = logging.getLogger("skiff.agent")

KINDS = ("startup", "readiness", "liveness")
SPEC_KEY = {"startup": "startupProbe", "readiness": "readinessProbe", "liveness": "livenessProbe"}
TITLE = {"startup": "Startup", "readiness": "Readiness", "liveness": "Liveness"}
MAX_OUTPUT = 10 * 1024   # the kubelet's maxReadLength
USER_AGENT = "kube-probe/1.30"

SUCCESS, FAILURE = "success", "failure"


@dataclass
class ProbeSpec:
    handler: str                  # "exec" | "httpGet" | "tcpSocket" | "grpc"
    action: dict
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    failure_threshold: int = 3
    success_threshold: int = 1
    grace: float | None = None    # probe-level terminationGracePeriodSeconds

    @classmethod
    def parse(cls, probe: dict) -> "ProbeSpec":
        handler = next((h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in probe), "")
        return cls(handler=handler, action=probe.get(handler) or {},
                   initial_delay=float(probe.get("initialDelaySeconds") or 0),
                   period=float(probe.get("periodSeconds") or 10),
                   timeout=float(probe.get("timeoutSeconds") or 1),
                   failure_threshold=int(probe.get("failureThreshold") or 3),
                   success_threshold=int(probe.get("successThreshold") or 1),
                   grace=probe.get("terminationGracePeriodSeconds"))


def resolve_port(port: Any, container: dict) -> int:
    """An IntOrString port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        for p in container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"port {port!r} not found in container")
    raise ValueError(f"invalid port {port!r}")


def dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(e, OSError) and e.strerror:
        return f"dial tcp {host}:{port}: connect: {e.strerror.lower()}"
    return f"dial tcp {host}:{port}: {e}"


async def tcp_probe(host: str, port: int, timeout: float) -> tuple[str, str]:
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return FAILURE, dial_error(host, port, e)
    w.close()
    try:
        await w.wait_closed()
    except OSError:
        pass
    return SUCCESS, ""


async def http_probe(host: str, port: int, path: str = "/", scheme: str = "HTTP",
                     headers: list[dict] | None = None, timeout: float = 1) -> tuple[str, str]:
    """GET scheme://host:port/path; 200-399 is success (redirects are not followed: a 3xx
    is already a success)."""
    scheme = (scheme or "HTTP").upper()
    if not path.startswith("/"):
        path = "/" + path
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{scheme.lower()}://{hostport}{path}"
    hdrs = {"Host": hostport, "User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in headers or []:
        name = h.get("name") or ""
        if name:
            # the kubelet: a header given replaces the default of the same name
            for k in list(hdrs):
                if k.lower() == name.lower():
                    del hdrs[k]
            hdrs[name] = str(h.get("value", ""))
    hdrs["Connection"] = "close"
    ctx = None
    if scheme == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # as the kubelet: no verification
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    w = None
    try:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            return FAILURE, f'Get "{url}": {dial_error(host, port, e)}'
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        w.write(req.encode("latin-1", errors="replace"))
        try:
            await asyncio.wait_for(w.drain(), max(0.001, deadline - loop.time()))
            line = await asyncio.wait_for(r.readline(), max(0.001, deadline - loop.time()))
        except (asyncio.TimeoutError, TimeoutError):
            return FAILURE, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded '
                             f'while awaiting headers)')
        except OSError as e:
            return FAILURE, f'Get "{url}": {e}'
        parts = line.decode("latin-1").split()
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return FAILURE, f'Get "{url}": malformed HTTP response {line[:40]!r}'
        code = int(parts[1])
        if 200 <= code < 400:
            return SUCCESS, ""
        return FAILURE, f"HTTP probe failed with statuscode: {code}"
    finally:
        if w is not None:
            w.close()


async def wait_pidfd(pidfd: int, timeout: float | None) -> bool:
    """Wait until the process of ``pidfd`` exits; False on timeout."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(pidfd, lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


async def exec_probe(start: Callable[[tuple[int, int, int]], int], argv: list[str],
                     timeout: float) -> tuple[str, str]:
    """Run ``argv`` through ``start(stdio) -> pid`` (the runtime's exec: a forked helper whose
    exit status is the command's); exit 0 is success, the output is the message."""
    from skiff.errors import SkiffError
    r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = start((devnull, w, w))
    except SkiffError as e:
        os.close(r)
        return FAILURE, str(e)
    finally:
        os.close(w)
        os.close(devnull)
    out = bytearray()
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            while chunk := os.read(r, 65536):
                if len(out) < MAX_OUTPUT:
                    out.extend(chunk[:MAX_OUTPUT - len(out)])
        except BlockingIOError:
            return
        except OSError:
            pass
        loop.remove_reader(r)   # EOF
    loop.add_reader(r, readable)
    pidfd = os.pidfd_open(pid)
    try:
        if not await wait_pidfd(pidfd, timeout):
            kill_tree(pid)
            await wait_pidfd(pidfd, 5)
            os.waitpid(pid, os.WNOHANG)
            return FAILURE, f'command "{" ".join(argv)}" timed out'
        _, status = os.waitpid(pid, 0)
        readable()
        code = os.waitstatus_to_exitcode(status)
    finally:
        loop.remove_reader(r)
        os.close(r)
        os.close(pidfd)
    text = out.decode(errors="replace")
    if code == 0:
        return SUCCESS, text
    return FAILURE, text


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_tree(pid: int) -> None:
    """SIGKILL an exec helper and the command it forked (its children)."""
    for child in _children(pid):
        _kill(child)
    _kill(pid)


class ProbeWorker:
    """Probes one container instance of one kind until cancelled (or held after a kill)."""

    def __init__(self, manager: "ProbeManager", kind: str, container: dict, info, spec: ProbeSpec):
        self.m, self.kind, self.container, self.info, self.spec = manager, kind, container, info, spec
        self.result: str | None = {"readiness": FAILURE, "liveness": SUCCESS}.get(kind)
        self.last: str | None = None
        self.run_count = 0
        self.on_hold = False
        self.task = asyncio.create_task(self._run(), name=f"probe-{kind}-{info.id[:8]}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started_at = self.m.started_epoch(self.info)
        while not self.on_hold:
            t0 = loop.time()
            age = time.time() - started_at
            if age < self.spec.initial_delay:
                await asyncio.sleep(self.spec.initial_delay - age)
                continue
            if self.kind == "startup" and self.m.started(self.info.id):
                return   # done: the container has started
            if self.kind != "startup" and not self.m.started(self.info.id):
                await asyncio.sleep(min(self.spec.period, 1.0))
                continue
            try:
                res, msg = await self.m.run(self)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a probe error is a failure, never a crash
                res, msg = FAILURE, str(e)
            self.record(res, msg)
            if self.on_hold:
                return
            await asyncio.sleep(max(0.0, self.spec.period - (loop.time() - t0)))

    def record(self, res: str, msg: str) -> None:
        if res == FAILURE:
            self.m.failed(self, msg)
        if res == self.last:
            self.run_count += 1
        else:
            self.last, self.run_count = res, 1
        if (res == FAILURE and self.run_count < self.spec.failure_threshold) or \
                (res == SUCCESS and self.run_count < self.spec.success_threshold):
            return
        changed = res != self.result
        self.result = res
        if changed:
            self.m.changed(self)
        if res == FAILURE and self.kind in ("liveness", "startup"):
            self.on_hold = True   # until the container instance changes
            self.run_count = 0
            self.m.kill(self, msg)


class ProbeManager:
    """The probe workers of one pod. ``sync(pod, infos)`` after each pod sync keeps one
    worker per probe of each running container instance; ``ready``/``started`` are read by
    the status."""

    def __init__(self, pod_worker):
        self.pw = pod_worker
        self.workers: dict[tuple[str, str], ProbeWorker] = {}
        self.pod: dict | None = None
        self._kills: set[asyncio.Task] = set()

    # -- wiring --
    def sync(self, pod: dict, infos: list) -> None:
        self.pod = pod
        want: dict[tuple[str, str], tuple[dict, Any, ProbeSpec]] = {}
        specs = {c["name"]: c for c in pod["spec"].get("containers", [])
                 + [c for c in pod["spec"].get("initContainers") or [] if is_sidecar(c)]}
        for i in infos:
            c = specs.get(i.name)
            if c is None or i.state != "running":
                continue
            for kind in KINDS:
                p = c.get(SPEC_KEY[kind])
                if p:
                    want[(i.id, kind)] = (c, i, ProbeSpec.parse(p))
        for key in list(self.workers):
            if key not in want:
                w = self.workers.pop(key)
                if not w.task.done():
                    w.task.cancel()
        known = {}   # what the API says of the instances: kept over an agent restart
        st = pod.get("status") or {}
        for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
            known[(cs.get("containerID") or "").partition("://")[2]] = cs
        for key, (c, i, spec) in want.items():
            if key not in self.workers:
                w = self.workers[key] = ProbeWorker(self, key[1], c, i, spec)
                cs = known.get(i.id)
                if cs and "running" in (cs.get("state") or {}):
                    # an adopted instance keeps its results (no Ready flap when the agent restarts)
                    if key[1] == "startup" and cs.get("started"):
                        w.result = SUCCESS
                    elif key[1] == "readiness" and cs.get("ready"):
                        w.result = SUCCESS

    def stop(self) -> None:
        for w in self.workers.values():
            w.task.cancel()
        self.workers.clear()
        for t in self._kills:
            t.cancel()

    # -- for the status --
    def started(self, cid: str) -> bool:
        w = self.workers.get((cid, "startup"))
        return True if w is None else w.result == SUCCESS

    def ready(self, cid: str) -> bool:
        if not self.started(cid):
            return False
        w = self.workers.get((cid, "readiness"))
        return True if w is None else w.result == SUCCESS

    def has_probes(self, c: dict) -> bool:
        return any(c.get(SPEC_KEY[k]) for k in KINDS)

    # -- for the workers --
    def started_epoch(self, info) -> float:
        """When the instance started; its status time has whole seconds, so the time is
        rounded up (never before the worker saw it start)."""
        from .podworker import _epoch
        return min(time.time(), _epoch(info.started_at) + 1.0)

    async def run(self, w: ProbeWorker) -> tuple[str, str]:
        spec, c = w.spec, w.container
        a = spec.action
        if getattr(self.pw.agent.runtime, "fake", False):
            return SUCCESS, ""   # a hollow node: its containers run nowhere, their probes pass
        if spec.handler == "exec":
            argv = list(a.get("command") or [])
            if not argv:
                return FAILURE, "exec probe without a command"
            rt = self.pw.agent.runtime
            starter = getattr(rt, "exec_start", None)
            if starter is None:   # a runtime without exec (the fake one): nothing to run
                return SUCCESS, ""
            return await exec_probe(lambda stdio: starter(w.info.id, argv, stdio), argv, spec.timeout)
        if spec.handler in ("httpGet", "tcpSocket"):
            host = a.get("host") or self.pw.pod_ip()
            if not host:
                return FAILURE, "the pod has no IP yet"
            try:
                port = resolve_port(a.get("port"), c)
            except ValueError as e:
                return FAILURE, str(e)
            if spec.handler == "tcpSocket":
                return await tcp_probe(host, port, spec.timeout)
            return await http_probe(host, port, a.get("path") or "/", a.get("scheme") or "HTTP",
                                    a.get("httpHeaders"), spec.timeout)
        if spec.handler == "grpc":
            host = self.pw.pod_ip()
            if not host:
                return FAILURE, "the pod has no IP yet"
            from .grpcprobe import grpc_probe
            return await grpc_probe(host, int(a.get("port") or 0), a.get("service") or "", spec.timeout)
        return FAILURE, "probe has no handler"

    def failed(self, w: ProbeWorker, msg: str) -> None:
        pod = self.pod
        if pod is None:
            return
        self.pw.agent.events.record(pod, "Warning", "Unhealthy", f"{TITLE[w.kind]} probe failed: {msg}",
                                    field_path=field_path(self.pod, w.info.name))

    def changed(self, w: ProbeWorker) -> None:
        log.info("pod %s: container %s %s probe result %s", self.pw.uid, w.info.name, w.kind, w.result)
        self.pw.wake()

    def kill(self, w: ProbeWorker, msg: str) -> None:
        pod = self.pod
        if pod is None:
            return
        name = w.info.name
        self.pw.agent.events.record(pod, "Normal", "Killing",
                                    f"Container {name} failed {w.kind} probe, will be restarted",
                                    field_path=field_path(self.pod, name))
        grace = w.spec.grace
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        t = asyncio.create_task(self._stop_container(w.info, float(grace or 0)),
                                name=f"probe-kill-{w.info.id[:8]}")
        self._kills.add(t)
        t.add_done_callback(self._kills.discard)

    async def _stop_container(self, info, grace: float) -> None:
        from .hooks import stop_container
        log.info("pod %s: stopping container %s (failed probe), grace %ss", self.pw.uid, info.name, grace)
        await stop_container(self.pw.agent, self.pod, info, grace, self.pw.pod_ip())
        self.pw.wake_after(0.05)


def probe_kinds(c: dict) -> list[str]:
    return [k for k in KINDS if c.get(SPEC_KEY[k])]


__all__ = ["ProbeSpec", "ProbeWorker", "ProbeManager", "http_probe", "tcp_probe", "exec_probe",
           "resolve_port", "SUCCESS", "FAILURE"]
