"""The agent's log server: ``GET /containerLogs/{namespace}/{pod}/{container}``, as the
kubelet serves it to the API server, ``/exec/{namespace}/{pod}/{container}`` and
``/attach/...`` (WebSockets: :mod:`skiff.agent.execserver`, :mod:`skiff.agent.attachserver`), ``/portForward/{namespace}/{pod}?port=N`` (a
WebSocket per forwarded connection: :mod:`skiff.agent.portforward`) and ``/stats/summary``
(resource usage: :mod:`skiff.agent.stats`).

Query: ``follow``, ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``timestamps``,
``previous``. Callers authenticate with a bearer token that the API server vouches for
(a TokenReview, cached for a minute); only cluster admins (group ``system:masters``,
which the API server's own token is in) may read logs, exec or forward ports.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from aiohttp import web

from skiff.runtime.containers.state import parse_rfc3339

log = logging.getLogger("skiff.agent")

_FOLLOW_POLL = 0.1


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def no_logs_message(pod_obj: dict | None, pod: str, cname: str, previous: bool) -> str:
    """Why a container has no logs to show, in the kubelet's words (validateContainerLogStatus),
    from the pod's reported container status."""
    if previous:
        return f'previous terminated container "{cname}" in pod "{pod}" not found'
    st = (pod_obj or {}).get("status") or {}
    cs = next((c for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
               for c in st.get(key) or () if c.get("name") == cname), None)
    if cs is None:
        return f'container "{cname}" in pod "{pod}" is not available'
    state = cs.get("state") or {}
    if "terminated" in state or "terminated" in (cs.get("lastState") or {}):
        return f'container "{cname}" in pod "{pod}" is terminated'
    reason = (state.get("waiting") or {}).get("reason")
    if reason == "ErrImagePull":
        return f'container "{cname}" in pod "{pod}" is waiting to start: image can\'t be pulled'
    if reason == "ImagePullBackOff":
        return f'container "{cname}" in pod "{pod}" is waiting to start: trying and failing to pull image'
    if reason:
        return f'container "{cname}" in pod "{pod}" is waiting to start: {reason}'
    return f'container "{cname}" in pod "{pod}" is waiting to start - no logs yet'


def _bool(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


class LogServer:
    def __init__(self, agent, host: str, port: int):
        self.agent = agent
        self.host = host
        self.port = port
        self._reviews: dict[str, tuple[float, bool]] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_route("*", "/exec/{ns}/{pod}/{container}", self.exec)
        app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)
        app.router.add_route("*", "/attach/{ns}/{pod}/{container}", self.attach)
        app.router.add_get("/stats/summary", self.stats_summary)
        app.router.add_get("/healthz", _healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            from skiff.errors import SkiffError
            why = (os.strerror(e.errno) if e.errno else str(e)).lower()
            raise SkiffError(f"the agent's log server (logs, exec, port-forward) cannot listen on "
                             f"{self.host}:{self.port}: {why} (another agent on this host? --log-port sets "
                             f"another port)") from None
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _allowed(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        token = auth[7:].strip()
        hit = self._reviews.get(token)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        ok = False
        try:
            review = await self.agent.client.request(
                "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
            st = review.get("status") or {}
            ok = bool(st.get("authenticated")) and "system:masters" in ((st.get("user") or {}).get("groups") or [])
        except Exception as e:  # noqa: BLE001
            log.warning("token review failed: %s", e)
            return False
        self._reviews[token] = (time.monotonic() + 60, ok)
        return ok

    async def exec(self, request: web.Request) -> web.StreamResponse:
        if not await self._allowed(request):
            return _unauthorized()
        from .execserver import serve_exec
        m = request.match_info
        return await serve_exec(self.agent, request, m["ns"], m["pod"], m["container"])

    async def attach(self, request: web.Request) -> web.StreamResponse:
        if not await self._allowed(request):
            return _unauthorized()
        from .attachserver import serve_attach
        m = request.match_info
        return await serve_attach(self.agent, request, m["ns"], m["pod"], m["container"])

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        if not await self._allowed(request):
            return _unauthorized()
        from .portforward import serve_port_forward
        return await serve_port_forward(self.agent, request, request.match_info["ns"], request.match_info["pod"])

    async def stats_summary(self, request: web.Request) -> web.Response:
        """The node's and its pods' usage (:mod:`skiff.agent.stats`), read when asked;
        ``?node=NAME`` picks one node of a hollow process (they share this server)."""
        if not await self._allowed(request):
            return _unauthorized()
        from .stats import agent_summary
        doc = agent_summary(self.agent, request.query.get("node"))
        if doc is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "NotFound", "code": 404,
                                      "message": f'node "{request.query.get("node")}" is not served here'},
                                     status=404)
        return web.json_response(doc)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        if not await self._allowed(request):
            return _unauthorized()
        ns, pod, cname = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        info = self.agent.container_instance(ns, pod, cname, previous=_bool(q.get("previous")))
        if info is None:
            inf = getattr(self.agent, "informer", None)
            obj = inf.cache.get(f"{ns}/{pod}") if inf is not None else None
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "BadRequest", "code": 400,
                                      "message": no_logs_message(obj, pod, cname, _bool(q.get("previous")))},
                                     status=400)
        tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
        since = None
        if q.get("sinceSeconds"):
            since = time.time() - int(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = parse_rfc3339(q["sinceTime"])
        stamps = _bool(q.get("timestamps"))
        follow = _bool(q.get("follow")) and not _bool(q.get("previous"))
        path = self.agent.runtime.log_path(info.id)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        from skiff.runtime.containers.logs import read_logs
        for _stream, data in read_logs(path, tail=tail, timestamps=True):
            line = _select(data, since, stamps)
            if line is not None:
                await resp.write(line)
        if follow:
            await self._follow(resp, path, info.id, since, stamps)
        await resp.write_eof()
        return resp

    async def _follow(self, resp, path: str, cid: str, since, stamps: bool) -> None:
        """New entries as they are written, until the container has exited and all is read."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            pos = os.fstat(fd).st_size
            ident = os.fstat(fd).st_ino
            buf = b""
            while True:
                chunk = os.pread(fd, 1 << 16, pos)
                if chunk:
                    pos += len(chunk)
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for raw in lines:
                        entry = _entry(raw)
                        if entry is not None:
                            line = _select(entry, since, stamps)
                            if line is not None:
                                await resp.write(line)
                    continue
                running = self.agent.runtime.is_running(cid)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    return
                if st.st_ino != ident:  # rotated: go on with the new file
                    os.close(fd)
                    fd = os.open(path, os.O_RDONLY)
                    ident, pos, buf = st.st_ino, 0, b""
                    continue
                if not running:
                    return
                await asyncio.sleep(_FOLLOW_POLL)
        finally:
            os.close(fd)


def _unauthorized() -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": "Unauthorized", "code": 401, "message": "Unauthorized"}, status=401)


def _entry(raw: bytes) -> bytes | None:
    """One json-file line -> b"<time> <log>" (as read_logs gives with timestamps)."""
    import json
    try:
        d = json.loads(raw)
        return f"{d['time']} {d['log']}".encode()
    except (ValueError, KeyError, TypeError):
        return None


def _select(data: bytes, since: float | None, stamps: bool) -> bytes | None:
    ts, _, text = data.partition(b" ")
    if since is not None:
        try:
            if parse_rfc3339(ts.decode()) < since:
                return None
        except ValueError:
            pass
    return data if stamps else text
