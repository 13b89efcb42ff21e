"""A small synchronous client of the OCI distribution API (docker registry v2).

One ``Registry`` per registry host: a kept-alive ``http.client`` connection,
basic or bearer-token auth from the ``WWW-Authenticate`` challenge, docker's
error strings (``manifest unknown: manifest unknown``), and plain HTTP only
for registries that allow it (``--insecure``, daemon.json
``insecure-registries``, and the loopback addresses always).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import re
import socket
import urllib.parse

from skiff.errors import SkiffError

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST))
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

HUB_API = "registry-1.docker.io"
CHUNK = 1 << 20
SEND_SLICE = 8 << 20  # sendfile in slices of this size when progress is shown
TIMEOUT = 60.0


class RegistryError(SkiffError):
    """An error answered by a registry, or the failure to reach one; exit status 1 like docker."""

    exit_code = 1

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


def api_host(domain: str) -> str:
    return HUB_API if domain in ("docker.io", "index.docker.io") else domain


def _host_only(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_insecure(host: str, insecure_registries: list[str] = (), force: bool = False) -> bool:
    """Whether ``host`` (host[:port]) may be reached over plain HTTP."""
    if force:
        return True
    name = _host_only(host)
    if name in ("localhost", "127.0.0.1", "::1") or name.startswith("127."):
        return True
    for entry in insecure_registries or ():
        entry = entry.strip()
        for prefix in ("http://", "https://"):
            if entry.startswith(prefix):
                entry = entry[len(prefix):]
        entry = entry.rstrip("/")
        if entry in (host, name):
            return True
        if "/" in entry:  # a CIDR, as docker allows
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
    return False


def registry_error(status: int, body: bytes, what: str = "") -> RegistryError:
    """Docker's message for an error response: ``code words: message``."""
    try:
        errors = json.loads(body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors and isinstance(errors[0], dict):
        e = errors[0]
        code = str(e.get("code") or "")
        words = code.lower().replace("_", " ") or f"status {status}"
        msg = e.get("message") or http.client.responses.get(status, "")
        text = f"{words}: {msg}" if msg else words
        return RegistryError(text, status, code)
    if status == 401:
        return RegistryError("unauthorized: authentication required", status, "UNAUTHORIZED")
    if status == 404 and what:
        return RegistryError(f"{what}: not found", status, "NOT_FOUND")
    reason = http.client.responses.get(status, "error")
    return RegistryError(f"{what + ': ' if what else ''}received unexpected HTTP status: {status} {reason}",
                         status)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): (q if q or not u else u)
              for k, q, u in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^",\s]*))', rest)}
    return scheme.lower(), params


class Response:
    """A response whose body may still be streaming (``read``/``readinto``)."""

    def __init__(self, resp: http.client.HTTPResponse):
        self.raw = resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self, n: int = -1) -> bytes:
        return self.raw.read(n) if n >= 0 else self.raw.read()

    def readinto(self, b) -> int:
        return self.raw.readinto(b)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def close(self) -> None:
        self.raw.close()


class Registry:
    """A session with one registry host (``host[:port]`` as in image references)."""

    def __init__(self, host: str, insecure: bool = False, credentials: tuple[str, str] | None = None,
                 timeout: float = TIMEOUT):
        self.host = api_host(host)
        self.ref_host = host
        self.scheme = "http" if insecure else "https"
        self.credentials = credentials
        self.timeout = timeout
        self._conns: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._auth_header: str | None = None
        self._challenge: tuple[str, dict] | None = None
        self._scope = ""

    # ------------------------------------------------------------ connections

    def _conn(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        c = self._conns.get(key)
        if c is None:
            if scheme == "https":
                import ssl
                c = http.client.HTTPSConnection(netloc, timeout=self.timeout,
                                                context=ssl.create_default_context(), blocksize=CHUNK)
            else:
                c = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=CHUNK)
            self._conns[key] = c
        return c

    def close(self) -> None:
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}{path}"

    def _split(self, url: str) -> tuple[str, str, str]:
        u = urllib.parse.urlsplit(urllib.parse.urljoin(self.url("/v2/"), url))
        target = u.path + ("?" + u.query if u.query else "")
        return u.scheme, u.netloc, target

    def _send(self, method: str, url: str, headers: dict, body=None, body_len: int | None = None,
              sendfile: tuple | None = None, on_sent=None) -> Response:
        """One request on a kept-alive connection (reconnecting once if the server closed it)."""
        scheme, netloc, target = self._split(url)
        for attempt in (0, 1):
            conn = self._conn(scheme, netloc)
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                h = dict(headers)
                if self._auth_header and netloc == self.host and "Authorization" not in h:
                    h["Authorization"] = self._auth_header
                if sendfile is not None:
                    h["Content-Length"] = str(sendfile[2])
                elif body is not None:
                    h["Content-Length"] = str(len(body) if body_len is None else body_len)
                elif method in ("PUT", "POST", "PATCH"):
                    h["Content-Length"] = "0"
                for k, v in h.items():
                    conn.putheader(k, v)
                conn.endheaders()
                if sendfile is not None:
                    f, offset, count = sendfile
                    if on_sent is None:
                        conn.sock.sendfile(f, offset, count)
                    else:
                        done = 0
                        while done < count:
                            n = min(SEND_SLICE, count - done)
                            conn.sock.sendfile(f, offset + done, n)
                            done += n
                            on_sent(done)
                elif body is not None:
                    conn.send(body)
                return Response(conn.getresponse())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                if attempt:
                    raise self._unreachable(method, url, e) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise self._unreachable(method, url, e) from None
        raise AssertionError("unreachable")

    def _unreachable(self, method: str, url: str, e: Exception) -> RegistryError:
        full = urllib.parse.urljoin(self.url("/v2/"), url)
        if isinstance(e, socket.gaierror):
            why = f"dial tcp: lookup {self.host}: {e.strerror or e}"
        elif isinstance(e, ConnectionRefusedError):
            why = f"dial tcp {self.host}: connect: connection refused"
        elif isinstance(e, (socket.timeout, TimeoutError)):
            why = "i/o timeout"
        else:
            why = str(getattr(e, "strerror", None) or e) or type(e).__name__
        verb = method.capitalize() if method in ("GET", "HEAD", "PUT", "POST", "PATCH") else method
        return RegistryError(f'{verb} "{full}": {why}')

    # ------------------------------------------------------------ auth

    def authenticate(self, scope: str = "") -> None:
        """Ping ``/v2/`` and set up the Authorization header its challenge asks for."""
        self._scope = scope
        r = self._send("GET", "/v2/", {})
        body = r.read()
        if r.status == 200:
            self._auth_header = None
            return
        if r.status != 401:
            raise registry_error(r.status, body, "GET /v2/")
        self._answer(r.header("WWW-Authenticate") or "", body, scope)

    def _answer(self, challenge: str, body: bytes, scope: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials:
                raise registry_error(401, body)
            user, password = self.credentials
            self._auth_header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif scheme == "bearer":
            if params.get("scope"):
                scope = params["scope"]
            self._auth_header = "Bearer " + self._token(params, scope)
        else:
            raise registry_error(401, body)

    def _token(self, params: dict, scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError("unauthorized: the registry's bearer challenge has no realm", 401)
        query = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            query["scope"] = scope
        if self.credentials:
            query["account"] = self.credentials[0]
        u = urllib.parse.urlsplit(realm)
        target = u.path or "/"
        q = "&".join(filter(None, [u.query, urllib.parse.urlencode(query)]))
        if q:
            target += "?" + q
        headers = {}
        if self.credentials:
            user, password = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if u.scheme == "https":
            import ssl
            c = http.client.HTTPSConnection(u.netloc, timeout=self.timeout, context=ssl.create_default_context())
        else:
            c = http.client.HTTPConnection(u.netloc, timeout=self.timeout)
        try:
            c.request("GET", target, headers=headers)
            r = c.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f'Get "{realm}": {getattr(e, "strerror", None) or e}') from None
        finally:
            c.close()
        if r.status != 200:
            if r.status == 401:
                raise RegistryError("unauthorized: authentication required", 401, "UNAUTHORIZED")
            raise registry_error(r.status, body, f"GET {realm}")
        try:
            data = json.loads(body)
            return data.get("token") or data["access_token"]
        except (ValueError, KeyError, AttributeError, TypeError):
            raise RegistryError(f"invalid token response from {realm}") from None

    def request(self, method: str, url: str, headers: dict | None = None, body=None,
                sendfile: tuple | None = None, expect: tuple[int, ...] = (200,),
                what: str = "", on_sent=None) -> Response:
        """A request, answered again once after a 401 challenge; errors for other statuses."""
        headers = headers or {}
        for attempt in (0, 1):
            r = self._send(method, url, headers, body=body, sendfile=sendfile, on_sent=on_sent)
            if r.status in expect:
                return r
            data = r.read()
            if r.status == 401 and attempt == 0 and r.header("WWW-Authenticate"):
                before = self._auth_header
                self._answer(r.header("WWW-Authenticate"), data, self._scope)
                if self._auth_header != before:
                    continue
            raise registry_error(r.status, data, what)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ API

    def get_manifest(self, path: str, reference: str) -> tuple[bytes, str, str | None]:
        """(bytes, media type, Docker-Content-Digest) of a manifest by tag or digest."""
        r = self.request("GET", f"/v2/{path}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
        data = r.read()
        mtype = (r.header("Content-Type") or "").split(";")[0].strip()
        try:
            parsed = json.loads(data)
            mtype = parsed.get("mediaType") or mtype
        except (ValueError, AttributeError):
            raise RegistryError(f"invalid manifest for {path}:{reference}: not JSON") from None
        return data, mtype, r.header("Docker-Content-Digest")

    def get_blob(self, path: str, digest: str) -> Response:
        """A streaming blob response (following redirects, without auth to other hosts)."""
        url = f"/v2/{path}/blobs/{digest}"
        r = self.request("GET", url, expect=(200, 307, 302, 303, 301, 308), what=f"blob {digest}")
        for _ in range(5):
            if r.status == 200:
                return r
            r.read()
            location = r.header("Location")
            if not location:
                raise RegistryError(f"blob {digest}: redirect without a Location")
            url = urllib.parse.urljoin(self.url(url) if url.startswith("/") else url, location)
            r = self._send("GET", url, {})
            if r.status not in (200, 301, 302, 303, 307, 308):
                raise registry_error(r.status, r.read(), f"blob {digest}")
        raise RegistryError(f"blob {digest}: too many redirects")

    def blob_exists(self, path: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{path}/blobs/{digest}", expect=(200, 404))
        r.read()
        return r.status == 200

    def upload_blob(self, path: str, digest: str, f, size: int, chunk_size: int,
                    progress=None) -> None:
        """POST, then one PUT (small blobs) or PATCH chunks and a closing PUT, following Location.

        ``progress(bytes_sent)`` is called as the body goes out (every SEND_SLICE bytes).
        """
        r = self.request("POST", f"/v2/{path}/blobs/uploads/", expect=(202,), what=f"upload {digest}")
        r.read()
        location = self._location(r)
        if size <= chunk_size:
            r = self.request("PUT", _with_digest(location, digest),
                             {"Content-Type": "application/octet-stream"},
                             sendfile=(f, 0, size), expect=(201,), what=f"upload {digest}",
                             on_sent=progress)
            r.read()
        else:
            offset = 0
            while offset < size:
                n = min(chunk_size, size - offset)
                r = self.request("PATCH", location, {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + n - 1}",
                }, sendfile=(f, offset, n), expect=(202,), what=f"upload {digest}",
                   on_sent=(lambda k, base=offset: progress(base + k)) if progress else None)
                r.read()
                location = self._location(r)
                offset += n
            r = self.request("PUT", _with_digest(location, digest), expect=(201,), what=f"upload {digest}")
            r.read()

    def _location(self, r: Response) -> str:
        location = r.header("Location")
        if not location:
            raise RegistryError("the registry's upload answer has no Location")
        return location

    def put_manifest(self, path: str, reference: str, data: bytes, media_type: str) -> str | None:
        r = self.request("PUT", f"/v2/{path}/manifests/{reference}", {"Content-Type": media_type},
                         body=data, expect=(201, 200), what="manifest")
        r.read()
        return r.header("Docker-Content-Digest")


def _with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={urllib.parse.quote(digest, safe='')}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_registry(domain: str, root=None, insecure: bool = False, scope: str = "") -> Registry:
    """A Registry for ``domain`` with the stored credentials, authenticated for ``scope``."""
    from .auth import get_credentials

    allowed: list[str] = []
    if root is not None and not insecure:
        try:
            from ..network.daemon_config import load_daemon_config
            allowed = load_daemon_config(root).get("insecure-registries") or []
        except SkiffError:
            raise
    reg = Registry(domain, insecure=is_insecure(domain, allowed, insecure),
                   credentials=get_credentials(domain))
    reg.authenticate(scope)
    return reg
