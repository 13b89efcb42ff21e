"""A small in-test HTTP server speaking the Kubernetes wire format, for client/informer/event tests.

Not the real API server (that one lives in skiff/controller/apiserver.py): just enough of the
protocol, for any resource of ``RESOURCES``: list (limit/continue), watch (resourceVersion, ADDED
replay, BOOKMARK, ERROR 410 when compacted), get, create (generateName, 409), PUT (409 on a stale
resourceVersion), PATCH (merge / strategic as merge / a JSON patch subset), DELETE, pods/x/binding,
pods/x/log (streamed text), Status errors, bearer-token auth and a Warning header.

Test hooks: ``put``/``remove`` change objects server-side (``silent=True``: no watch event, as if
missed), ``compact()`` makes older resourceVersions expire, ``expire_watches()`` sends an ERROR 410
line, ``close_watches()`` ends every open watch, ``send_raw`` writes any event to open watches.
Binds 127.0.0.1 port 0.
"""
from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

from aiohttp import web

from skiff.api.resources import RESOURCES


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def err(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status(code, reason, message), status=code)


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target: dict, ops: list) -> dict:
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                else:
                    parent.insert(int(last), op["value"]) if op["op"] == "add" else parent.__setitem__(int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported op {op['op']}")
    return doc


class _Watcher:
    def __init__(self, plural: str, namespace: str | None):
        self.plural = plural
        self.namespace = namespace
        self.queue: asyncio.Queue = asyncio.Queue()

    def wants(self, plural: str, obj: dict) -> bool:
        return plural == self.plural and (
            not self.namespace or (obj.get("metadata") or {}).get("namespace") == self.namespace)


class WireDouble:
    def __init__(self, token: str | None = None):
        self.token = token
        self.rev = 100
        self.compacted = 0
        self.objects: dict[tuple[str, str, str], dict] = {}     # (plural, ns, name) -> obj
        self.history: list[tuple[int, str, str, dict]] = []     # (rev, plural, type, obj)
        self.watchers: set[_Watcher] = set()
        self.requests: list[dict] = []
        self.warning: str | None = None
        self.log_chunks: list[bytes] = [b"line 1\n", b"line 2\n"]
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> "WireDouble":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test hooks ---------------------------------------------------------------------------
    def _bump(self) -> str:
        self.rev += 1
        return str(self.rev)

    def _notify(self, plural: str, typ: str, obj: dict, silent: bool) -> None:
        if silent:
            return
        self.history.append((int(obj["metadata"]["resourceVersion"]), plural, typ, obj))
        for w in list(self.watchers):
            if w.wants(plural, obj):
                w.queue.put_nowait({"type": typ, "object": obj})

    def put(self, plural: str, obj: dict, *, silent: bool = False) -> dict:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        r = RESOURCES[plural]
        obj.setdefault("kind", r.kind)
        obj.setdefault("apiVersion", r.api_version)
        if r.namespaced:
            md.setdefault("namespace", "default")
        key = (plural, md.get("namespace", ""), md["name"])
        old = self.objects.get(key)
        md.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
        md.setdefault("creationTimestamp", "2026-11-28T10:00:00Z")
        md["resourceVersion"] = self._bump()
        self.objects[key] = obj
        self._notify(plural, "MODIFIED" if old else "ADDED", obj, silent)
        return obj

    def remove(self, plural: str, name: str, namespace: str = "", *, silent: bool = False) -> dict | None:
        if RESOURCES[plural].namespaced:
            namespace = namespace or "default"
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is not None:
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._bump()
            self._notify(plural, "DELETED", obj, silent)
        return obj

    def compact(self) -> None:
        self.compacted = self.rev
        self.history.clear()

    def send_raw(self, event: dict) -> None:
        for w in list(self.watchers):
            w.queue.put_nowait(event)

    def expire_watches(self) -> None:
        self.send_raw({"type": "ERROR", "object": status(410, "Expired", "too old resource version")})
        self.close_watches()

    def close_watches(self) -> None:
        for w in list(self.watchers):
            w.queue.put_nowait(None)

    def bookmark(self, plural: str = "pods") -> None:
        self.send_raw({"type": "BOOKMARK", "object": {"kind": RESOURCES[plural].kind, "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": str(self.rev)}}})

    def watch_requests(self) -> list[dict]:
        return [r for r in self.requests if r["query"].get("watch") in ("true", "1")]

    def list_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET" and r["kind"] == "collection"
                and r["query"].get("watch") not in ("true", "1")]

    # -- HTTP ---------------------------------------------------------------------------------
    @staticmethod
    def _parse(path: str) -> tuple[str, str, str | None, str | None] | None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            rest = parts[3:]
        else:
            return None
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in RESOURCES and RESOURCES[rest[2]].namespaced:
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in RESOURCES:
            return None
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return plural, ns, name, sub

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        parsed = self._parse(request.path)
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "content_type": request.headers.get("Content-Type"),
                              "authorization": request.headers.get("Authorization"),
                              "body": body, "peer": request.transport.get_extra_info("peername") if request.transport else None,
                              "kind": "object" if parsed and parsed[2] else "collection"})
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return err(401, "Unauthorized", "Unauthorized")
        if parsed is None:
            return err(404, "NotFound", "the server could not find the requested resource")
        plural, ns, name, sub = parsed
        r = RESOURCES[plural]
        m = request.method
        if name is None:
            if m == "GET" and request.query.get("watch") in ("true", "1"):
                return await self._watch(request, plural, ns)
            if m == "GET":
                return self._list(request, plural, ns)
            if m == "POST":
                return self._create(plural, ns, json.loads(body))
            return err(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        key = (plural, ns, name)
        if sub == "log" and m == "GET":
            return await self._log(request, key)
        if sub == "binding" and m == "POST":
            return self._bind(key, json.loads(body))
        obj = self.objects.get(key)
        if obj is None:
            return err(404, "NotFound", f'{plural} "{name}" not found')
        if m == "GET":
            return self._ok(obj)
        if m == "PUT":
            new = json.loads(body)
            rv = new.get("metadata", {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                return err(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object has '
                                            f'been modified; please apply your changes to the latest version and try again')
            new["metadata"]["uid"] = obj["metadata"]["uid"]
            new["metadata"].pop("resourceVersion", None)
            return self._ok(self.put(plural, new))
        if m == "PATCH":
            ctype = request.headers.get("Content-Type", "")
            p = json.loads(body)
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                new = merge_patch(obj, p)
            elif ctype == "application/json-patch+json":
                new = json_patch(obj, p)
            else:
                return err(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                                        f"accepted media types include: application/json-patch+json, "
                                                        f"application/merge-patch+json")
            new["metadata"].pop("resourceVersion", None)
            return self._ok(self.put(plural, new))
        if m == "DELETE":
            return self._ok(self.remove(plural, name, ns))
        return err(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _ok(self, obj: dict, code: int = 200) -> web.Response:
        headers = {"Warning": f'299 - "{self.warning}"'} if self.warning else None
        return web.json_response(obj, status=code, headers=headers)

    def _list(self, request: web.Request, plural: str, ns: str) -> web.Response:
        items = [o for (p, n, _), o in sorted(self.objects.items()) if p == plural and (not ns or n == ns)]
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0)
        cont = ""
        if limit and start + limit < len(items):
            cont = str(start + limit)
            items = items[start:start + limit]
        else:
            items = items[start:]
        md = {"resourceVersion": str(self.rev)}
        if cont:
            md["continue"] = cont
        return web.json_response({"kind": RESOURCES[plural].kind + "List", "apiVersion": "v1",
                                  "metadata": md, "items": items})

    def _create(self, plural: str, ns: str, obj: dict) -> web.Response:
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
        if ns:
            md["namespace"] = ns
        if (plural, ns, md.get("name")) in self.objects:
            return err(409, "AlreadyExists", f'{plural} "{md["name"]}" already exists')
        return self._ok(self.put(plural, obj), 201)

    def _bind(self, key, binding: dict) -> web.Response:
        obj = self.objects.get(key)
        if obj is None:
            return err(404, "NotFound", f'pods "{key[2]}" not found')
        if obj.get("spec", {}).get("nodeName"):
            return err(409, "Conflict", f'Operation cannot be fulfilled on pods/binding "{key[2]}": pod {key[2]} '
                                        f'is already assigned to node "{obj["spec"]["nodeName"]}"')
        new = copy.deepcopy(obj)
        new.setdefault("spec", {})["nodeName"] = binding["target"]["name"]
        del new["metadata"]["resourceVersion"]
        self.put("pods", new)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "code": 201}, status=201)

    async def _log(self, request: web.Request, key) -> web.StreamResponse:
        if key not in self.objects:
            return err(404, "NotFound", f'pods "{key[2]}" not found')
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for c in self.log_chunks:
            await resp.write(c)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def _watch(self, request: web.Request, plural: str, ns: str) -> web.StreamResponse:
        rv = request.query.get("resourceVersion") or "0"
        timeout = request.query.get("timeoutSeconds")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def send(ev: dict) -> None:
            await resp.write(json.dumps(ev).encode() + b"\n")

        if rv != "0" and int(rv) < self.compacted:
            await send({"type": "ERROR", "object": status(410, "Expired",
                                                          f"too old resource version: {rv} ({self.compacted})")})
            await resp.write_eof()
            return resp
        w = _Watcher(plural, ns)
        if rv == "0":
            for (p, n, _), o in sorted(self.objects.items()):
                if w.wants(p, o):
                    await send({"type": "ADDED", "object": o})
        else:
            for hrev, p, typ, o in self.history:
                if hrev > int(rv) and w.wants(p, o):
                    await send({"type": typ, "object": o})
        self.watchers.add(w)
        try:
            deadline = asyncio.get_running_loop().time() + float(timeout) if timeout else None
            while True:
                now = asyncio.get_running_loop().time()
                if deadline is not None and now >= deadline:
                    break
                if request.transport is None or request.transport.is_closing():
                    break           # the client went away
                step = 0.05 if deadline is None else min(0.05, deadline - now)
                try:
                    ev = await asyncio.wait_for(w.queue.get(), step)
                except asyncio.TimeoutError:
                    continue
                if ev is None:
                    break
                await send(ev)
        except ConnectionResetError:
            pass
        finally:
            self.watchers.discard(w)
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp
