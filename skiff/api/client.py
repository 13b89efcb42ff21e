"""HTTPClient: the §3 ``Client`` over HTTP(S) with aiohttp, speaking the Kubernetes wire format.

One ``aiohttp.ClientSession`` (one connection pool, keep-alive) per client, created on first use.
Bodies are encoded once and decoded once (``jsoncodec``: orjson, the stdlib behind it). A non-2xx answer
becomes ``APIError`` built from the server's Status (or a synthesised one if the body is not a
Status). A failure to reach the server is ``APIConnectionError``.

Watches are async generators of ``(type, object)``: newline-delimited JSON read with our own
buffering (lines of any length), no total timeout, ``{"type": "ERROR"}`` lines raised as
``APIError`` (410 Expired = the resourceVersion is too old: relist). The generator ends when the
server ends the stream (also on an abrupt close after streaming began, like client-go's
StreamWatcher); the caller re-watches from the last resourceVersion it saw.

Namespaced resources: when no namespace is given for an object operation, the object's
``metadata.namespace`` (create) or "default" is used, as kubectl does. ``list``/``watch`` without a
namespace cover all namespaces.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
from http import HTTPStatus
from typing import Any, AsyncIterator, Mapping

import aiohttp

from skiff.api import jsoncodec
from skiff.api.client_base import Client
from skiff.api.errors import APIError
from skiff.api.kubeconfig import resolve_kubeconfig
from skiff.api.resources import RESOURCES, Resource, lookup, path_for, namespace_for
from skiff.errors import SkiffError

__all__ = ["HTTPClient", "APIConnectionError", "APIError", "PATCH_CONTENT_TYPES", "status_for"]

log = logging.getLogger("skiff.client")

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class APIConnectionError(SkiffError):
    """The API server could not be reached (connection refused, reset, timed out)."""


def status_for(code: int, message: str, reason: str | None = None) -> dict:
    """A Kubernetes Status dict for an HTTP error that did not come with one."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason or _REASONS.get(code, "Unknown"), "code": code}


_dumps = jsoncodec.dumps   # compact JSON bytes


def _param_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: _param_value(v) for k, v in params.items() if v is not None}


def _parse_warnings(values: list[str]) -> list[str]:
    """Warning header values `299 - "text"` -> ["text"] (RFC 7234 warn-text, quoted-string)."""
    out = []
    for v in values:
        parts = v.split(" ", 2)
        text = parts[2] if len(parts) == 3 else v
        if text.startswith('"'):
            try:
                text = json.loads(text.split('" ', 1)[0] + '"' if not text.endswith('"') else text)
            except ValueError:
                text = text.strip('"')
        out.append(text)
    return out


class HTTPClient(Client):
    def __init__(self, server_url: str, token: str | None = None, *, timeout: float = 30,
                 ca_file: str | None = None, insecure: bool = False, user_agent: str = "skiff/0.1",
                 connection_limit: int = 256):
        self.server = server_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ca_file = ca_file
        self.insecure = insecure
        self.connection_limit = connection_limit
        self.warnings: list[str] = []          # the Warning headers of the last request
        self.on_warning = None                  # callable(str) -> None; default: log
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout,
                                                     sock_read=None)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, context: str | None = None,
                        timeout: float = 30, **kw) -> "HTTPClient":
        """A client for the cluster of ``path`` (> $KUBECONFIG > ~/.skiff/kubeconfig)."""
        access = resolve_kubeconfig(path, context)
        return cls(access.server, access.token, timeout=timeout, ca_file=access.ca_file,
                   insecure=access.insecure, **kw)

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https:"):
            return True
        if self.insecure:
            return False
        if self.ca_file:
            return ssl.create_default_context(cafile=self.ca_file)
        return True

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connection_limit, ssl=self._ssl(),
                                             keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                headers=self._headers, connector=connector, timeout=self._timeout,
                json_serialize=jsoncodec.dumps_str,
                auto_decompress=True)
        return self._session

    @property
    def stream_session(self) -> aiohttp.ClientSession:
        """The session for long-lived requests (watches, followed logs): the same one here; a
        client whose pool is capped gives them their own, so they cannot use up the cap."""
        return self.session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "HTTPClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- raw requests --------------------------------------------------------------------------
    def _handle_warnings(self, resp: aiohttp.ClientResponse) -> None:
        vals = resp.headers.getall("Warning", [])
        self.warnings = _parse_warnings(vals) if vals else []
        for w in self.warnings:
            if self.on_warning is not None:
                self.on_warning(w)
            else:
                log.warning("server warning", extra={"fields": {"warning": w}})

    @staticmethod
    async def _error_from(resp: aiohttp.ClientResponse, body: bytes | None = None) -> APIError:
        if body is None:
            try:
                body = await resp.read()
            except aiohttp.ClientError:
                body = b""
        status = None
        try:
            doc = json.loads(body) if body else None
            if isinstance(doc, dict) and doc.get("kind") == "Status":
                status = doc
        except ValueError:
            pass
        if status is None:
            text = body.decode("utf-8", "replace").strip() if body else ""
            try:
                phrase = HTTPStatus(resp.status).phrase
            except ValueError:
                phrase = "error"
            status = status_for(resp.status, text or f"the server responded {resp.status} {phrase}")
        status.setdefault("code", resp.status)
        return APIError(status)

    def _conn_error(self, e: BaseException) -> APIConnectionError:
        what = "timed out" if isinstance(e, asyncio.TimeoutError) else (str(e) or type(e).__name__)
        return APIConnectionError(f"cannot reach the API server at {self.server}: {what}")

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None,
                      data: bytes | None = None) -> Any:
        """One request; returns the decoded JSON body (a dict for API objects), or the text for
        non-JSON answers. Raises APIError for a non-2xx answer, APIConnectionError when the
        server cannot be reached."""
        hdrs = dict(headers) if headers else {}
        if json is not None and data is None:
            data = _dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        try:
            async with self.session.request(method, self.server + path, params=_params(params),
                                            data=data, headers=hdrs) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise await self._error_from(resp, body)
                if "Warning" in resp.headers:
                    self._handle_warnings(resp)
                elif self.warnings:
                    self.warnings = []
                if not body:
                    return {}
                ctype = resp.headers.get("Content-Type", "")
                if "json" in ctype or body[:1] in (b"{", b"["):
                    try:
                        return _loads(body)
                    except ValueError:
                        pass
                return body.decode("utf-8", "replace")
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            raise self._conn_error(e) from e

    async def stream(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[bytes]:
        """GET ``path`` and yield the body's chunks as they arrive (pod logs with follow=true).
        No total timeout. Raises APIError for a non-2xx answer."""
        try:
            async with self.stream_session.get(self.server + path, params=_params(params),
                                               timeout=self._stream_timeout) as resp:
                if resp.status >= 400:
                    raise await self._error_from(resp)
                try:
                    async for chunk in resp.content.iter_any():
                        yield chunk
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                        aiohttp.ClientOSError, ConnectionResetError):
                    return          # the server ended the stream abruptly
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            raise self._conn_error(e) from e

    # -- the Client interface -------------------------------------------------------------------
    @staticmethod
    def _res(resource: str) -> Resource:
        r = RESOURCES.get(resource)
        if r is None:
            r = lookup(resource)
            if r is None:
                raise APIError(status_for(
                    404, f"the server doesn't have a resource type \"{resource}\"", "NotFound"))
        return r

    _ns = staticmethod(namespace_for)

    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> dict:
        r = self._res(resource)
        return await self.request("GET", path_for(r.plural, self._ns(r, namespace), name, subresource))

    async def list(self, resource: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None) -> dict:
        r = self._res(resource)
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "limit": limit, "continue": continue_ or None}
        return await self.request("GET", path_for(r.plural, namespace if r.namespaced else None),
                                  params=params)

    async def watch(self, resource: str, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    bookmarks: bool = True, timeout_seconds: int | None = None
                    ) -> AsyncIterator[tuple[str, dict]]:
        r = self._res(resource)
        params = {"watch": "true", "resourceVersion": resource_version or None,
                  "allowWatchBookmarks": "true" if bookmarks else None,
                  "timeoutSeconds": timeout_seconds,
                  "labelSelector": label_selector or None, "fieldSelector": field_selector or None}
        path = path_for(r.plural, namespace if r.namespaced else None)
        async for ev in self.watch_path(path, params):
            yield ev

    async def watch_path(self, path: str, params: Mapping[str, Any] | None = None
                         ) -> AsyncIterator[tuple[str, dict]]:
        """Watch any path that streams watch events (the raw form of ``watch``)."""
        try:
            resp = await self.stream_session.get(self.server + path, params=_params(params),
                                                 timeout=self._stream_timeout)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            raise self._conn_error(e) from e
        try:
            if resp.status >= 400:
                raise await self._error_from(resp)
            buf = bytearray()
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    start = 0
                    while True:
                        i = buf.find(b"\n", start)
                        if i < 0:
                            break
                        line = bytes(buf[start:i])
                        start = i + 1
                        if line.strip():
                            yield _event(line)
                    if start:
                        del buf[:start]
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError, ConnectionResetError):
                return          # the server went away mid-stream: the watch ends
            if buf.strip():
                yield _event(bytes(buf))
        finally:
            if resp.content.is_eof():
                resp.release()      # the connection goes back to the pool
            else:
                resp.close()        # abandoned mid-stream: drop the connection

    async def create(self, resource: str, obj: dict, namespace: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> dict:
        r = self._res(resource)
        ns = self._ns(r, namespace, obj)
        if subresource:
            nm = name or (obj.get("metadata") or {}).get("name")
            path = path_for(r.plural, ns, nm, subresource)
        else:
            path = path_for(r.plural, ns)
        return await self.request("POST", path, json=obj)

    async def update(self, resource: str, obj: dict, subresource: str | None = None) -> dict:
        r = self._res(resource)
        md = obj.get("metadata") or {}
        return await self.request("PUT", path_for(r.plural, self._ns(r, None, obj), md.get("name"), subresource),
                                  json=obj)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None) -> dict:
        r = self._res(resource)
        try:
            ctype = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r} (want merge, json or strategic)") from None
        data = patch if isinstance(patch, (bytes, bytearray)) else _dumps(patch)
        return await self.request("PATCH", path_for(r.plural, self._ns(r, namespace), name, subresource),
                                  data=bytes(data), headers={"Content-Type": ctype})

    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None, preconditions: dict | None = None,
                     propagation_policy: str | None = None) -> dict:
        r = self._res(resource)
        body = None
        if grace_period_seconds is not None or preconditions or propagation_policy:
            body = {"kind": "DeleteOptions", "apiVersion": "v1"}
            if grace_period_seconds is not None:
                body["gracePeriodSeconds"] = grace_period_seconds
            if preconditions:
                body["preconditions"] = preconditions
            if propagation_policy:
                body["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", path_for(r.plural, self._ns(r, namespace), name), json=body)


_loads = jsoncodec.loads


def _event(line: bytes) -> tuple[str, dict]:
    try:
        ev = _loads(line)
    except ValueError as e:
        raise APIError(status_for(500, f"unable to decode watch event: {e}", "InternalError")) from None
    typ = ev.get("type")
    obj = ev.get("object")
    if typ == "ERROR":
        if isinstance(obj, dict) and obj.get("kind") == "Status":
            raise APIError(obj)
        raise APIError(status_for(500, f"watch error: {obj!r}", "InternalError"))
    return typ, obj
