"""A synchronous Kubernetes-style REST client for skiffctl (http.client, bearer token).

Configuration comes from ``--kubeconfig`` > ``$KUBECONFIG`` > ``~/.skiff/kubeconfig``
(kubeconfig YAML: current-context -> cluster.server, user.token, context.namespace);
``--server`` and ``--token`` override it. Errors are Kubernetes ``Status`` objects, raised
as :class:`APIError` and printed the way kubectl prints them (:func:`format_error`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from urllib.parse import urlencode, urlsplit, quote

from skiff.errors import SkiffError

DEFAULT_KUBECONFIG = "~/.skiff/kubeconfig"


class CtlError(SkiffError):
    """A client-side error, printed as is (already formatted like kubectl) with exit code 1."""
    exit_code = 1


class APIError(CtlError):
    """An error reply from the server. ``status`` is the Status object (or a synthesised one)."""

    def __init__(self, code: int, status: dict, verb: str = "", what: str = ""):
        self.code = code
        self.status = status
        self.reason = status.get("reason") or ""
        self.message = status.get("message") or ""
        super().__init__(format_error(code, status, verb, what))


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
            422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}

_GENERIC = {400: "the server rejected our request for an unknown reason",
            401: "the server has asked for the client to provide credentials",
            403: "forbidden", 404: "the server could not find the requested resource",
            405: "the server does not allow this method on the requested resource",
            409: "the server reported a conflict", 410: "the server reported that the resource is gone",
            415: "the server responded with the status code 415 but did not return more information",
            422: "the server rejected our request due to an error in our request",
            500: "an error on the server has prevented the request from succeeding",
            503: "the server is currently unable to handle the request",
            504: "the server was unable to return a response in the time allotted"}


def _kind_title(details: dict) -> str:
    kind = details.get("kind") or ""
    try:
        from skiff.api.resources import RESOURCES
        if kind in RESOURCES:           # the server may send the plural ("pods"); kubectl shows the Kind
            kind = RESOURCES[kind].kind
    except Exception:  # noqa: BLE001
        pass
    group = details.get("group")
    return f"{kind}.{group}" if group and kind else kind


def format_error(code: int, status: dict, verb: str = "", what: str = "") -> str:
    """kubectl's wording of an API error (see KUBECTL.md §5).

    ``verb``/``what`` add kubectl's "error when creating "f.yaml": " context."""
    reason = status.get("reason") or ""
    message = status.get("message") or ""
    details = status.get("details") or {}
    if status.get("kind") == "Status" and (reason == "Invalid" or (code == 422 and reason == "")):
        if reason == "Invalid":
            if details.get("kind") or details.get("name"):
                s = f'The {_kind_title(details)} "{details.get("name", "")}" is invalid'
            else:
                s = "The request is invalid"
            causes = details.get("causes") or []
            errs = [f'{c["field"]}: {c.get("message", "")}' if c.get("field") else c.get("message", "")
                    for c in causes]
            if not errs:
                return s
            if len(errs) == 1:
                return f"{s}: {errs[0]}"
            return f"{s}: \n" + "\n".join(f"* {e}" for e in errs)
    ctx = f'error when {verb} "{what}": ' if verb and what else ""
    if status.get("kind") == "Status":
        if not reason:
            return f"Error from server: {ctx}{message}"
        return f"Error from server ({reason}): {ctx}{message}"
    reason = _REASONS.get(code, "")
    msg = _GENERIC.get(code, f"an error on the server ({message or code}) has prevented the request from succeeding")
    if reason:
        return f"Error from server ({reason}): {ctx}{msg}"
    return f"Error from server: {ctx}{msg}"


# ------------------------------------------------------------------ kubeconfig

class Config:
    def __init__(self, server: str, token: str | None = None, namespace: str | None = None,
                 ca_data: bytes | None = None, ca_file: str | None = None, insecure: bool = False,
                 path: str | None = None):
        self.server = server.rstrip("/")
        self.token = token
        self.namespace = namespace
        self.ca_data = ca_data
        self.ca_file = ca_file
        self.insecure = insecure
        self.path = path


def kubeconfig_path(explicit: str | None = None) -> str | None:
    """--kubeconfig > $KUBECONFIG (first existing entry of the list) > ~/.skiff/kubeconfig."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        for p in env.split(os.pathsep):
            if p and os.path.exists(os.path.expanduser(p)):
                return os.path.expanduser(p)
        return None
    p = os.path.expanduser(DEFAULT_KUBECONFIG)
    return p if os.path.exists(p) else None


def _named(items, name):
    for it in items or []:
        if isinstance(it, dict) and it.get("name") == name:
            return it
    return None


def load_config(kubeconfig: str | None = None, server: str | None = None, token: str | None = None,
                ca_file: str | None = None, insecure: bool = False) -> Config:
    path = kubeconfig_path(kubeconfig)
    doc: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CtlError(f"error: cannot read kubeconfig {path}: {e.strerror}") from None
        try:
            doc = json.loads(text) if text.lstrip().startswith("{") else None
        except ValueError:
            doc = None
        if doc is None:
            import yaml
            try:
                doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
            except yaml.YAMLError as e:
                raise CtlError(f"error: error loading config file \"{path}\": {e}") from None
        if not isinstance(doc, dict):
            raise CtlError(f'error: error loading config file "{path}": not a kubeconfig mapping')
    elif not server:
        where = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        raise CtlError(f"error: no kubeconfig at {where}; pass --kubeconfig FILE or --server URL "
                       "(`skiff controller --data-dir DIR` writes DIR/kubeconfig)")
    contexts = doc.get("contexts") or []
    cur = doc.get("current-context")
    ctx = (_named(contexts, cur) or (contexts[0] if contexts else {}) or {}).get("context") or {}
    cluster = (_named(doc.get("clusters"), ctx.get("cluster")) or
               ((doc.get("clusters") or [{}])[0]) or {}).get("cluster") or {}
    user = (_named(doc.get("users"), ctx.get("user")) or ((doc.get("users") or [{}])[0]) or {}).get("user") or {}
    url = server or cluster.get("server")
    if not url:
        raise CtlError(f"error: no server found for cluster in {path}")
    if "://" not in url:
        url = "https://" + url if url.endswith(":443") else "http://" + url
    tok = token if token is not None else user.get("token")
    if tok is None and user.get("tokenFile"):
        try:
            with open(os.path.expanduser(user["tokenFile"])) as f:
                tok = f.read().strip()
        except OSError:
            tok = None
    ca_data = None
    if cluster.get("certificate-authority-data"):
        import base64
        ca_data = base64.b64decode(cluster["certificate-authority-data"])
    ca = cluster.get("certificate-authority")
    if ca_file or (server and server != cluster.get("server")):
        ca_data = None  # another server (or an explicit CA): the kubeconfig's CA is not for it
        ca = ca_file
    elif ca and path and not os.path.isabs(os.path.expanduser(ca)):
        ca = os.path.join(os.path.dirname(path), ca)
    return Config(url, tok, ctx.get("namespace"), ca_data, ca,
                  insecure or bool(cluster.get("insecure-skip-tls-verify")), path)


# ------------------------------------------------------------------ client

class Response:
    """A streaming reply: iterate ``lines()`` (watch) or ``chunks()`` (logs); ``close()`` it."""

    def __init__(self, conn, resp):
        self.conn = conn
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers

    def lines(self):
        while True:
            line = self.resp.readline()
            if not line:
                return
            line = line.strip()
            if line:
                yield line

    def chunks(self, size: int = 65536):
        while True:
            try:
                b = self.resp.read1(size)
            except Exception:  # noqa: BLE001 - the connection ended mid-chunk
                return
            if not b:
                return
            yield b

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def ssl_context(config: Config):
    """The TLS context for the cluster: its CA (file or kubeconfig data), or no checks at all
    with --insecure-skip-tls-verify."""
    import ssl
    ctx = ssl.create_default_context(cafile=config.ca_file,
                                     cadata=config.ca_data.decode() if config.ca_data else None)
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client:
    def __init__(self, config: Config, timeout: float | None = 30, verbosity: int = 0):
        self.config = config
        self.timeout = timeout
        self.verbosity = verbosity
        u = urlsplit(config.server)
        self.scheme = u.scheme or "http"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")
        self._conn = None

    # -- connection
    def _connect(self, timeout):
        import http.client
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl_context(self.config))
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _send(self, method, path, params=None, body=None, content_type="application/json",
              stream=False, timeout="default"):
        url = self.prefix + path
        if params:
            q = urlencode({k: ("true" if v is True else "false" if v is False else v)
                           for k, v in params.items() if v is not None}, quote_via=quote, safe="")
            if q:
                url += "?" + q
        headers = {"Accept": "application/json", "User-Agent": "skiffctl/0.1"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        t = self.timeout if timeout == "default" else timeout
        start = time.monotonic()
        if stream:
            conn = self._connect(t)
        else:
            if self._conn is None:
                self._conn = self._connect(t)
            conn = self._conn
        try:
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                if stream or method != "GET":
                    raise
                import http.client  # noqa: F401 - a kept-alive connection the server closed: retry once
                conn.close()
                conn = self._conn = self._connect(t)
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
        except ConnectionRefusedError:
            raise CtlError(f"The connection to the server {self.host}:{self.port} was refused - "
                           "did you specify the right host or port?") from None
        except OSError as e:
            import socket
            if isinstance(e, (socket.timeout, TimeoutError)):
                raise CtlError(f"Unable to connect to the server: {method} {self.config.server}{url}: "
                               "net/http: request canceled (Client.Timeout exceeded)") from None
            raise CtlError(f"Unable to connect to the server: {e}") from None
        if self.verbosity >= 6:
            ms = int((time.monotonic() - start) * 1000)
            print(f"{method} {self.config.server}{url} {resp.status} {resp.reason} in {ms} milliseconds",
                  file=sys.stderr)
        for w in resp.headers.get_all("Warning") or []:
            print(f"Warning: {_warning_text(w)}", file=sys.stderr)
        return conn, resp

    def _error(self, resp, raw: bytes, verb="", what=""):
        try:
            st = json.loads(raw)
            if not isinstance(st, dict) or st.get("kind") != "Status":
                st = {"message": raw.decode(errors="replace").strip()}
        except ValueError:
            st = {"message": raw.decode(errors="replace").strip()}
        return APIError(resp.status, st, verb, what)

    def request(self, method, path, params=None, body=None, content_type="application/json",
                verb="", what="", raw=False):
        """Send a request; return the decoded JSON body (or bytes if raw); raise APIError >= 400."""
        conn, resp = self._send(method, path, params, body, content_type)
        data = resp.read()
        if resp.status >= 400:
            raise self._error(resp, data, verb, what)
        if raw:
            return data
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            return {"raw": data.decode(errors="replace")}

    def stream(self, path, params=None, timeout=None, verb="", what="") -> Response:
        conn, resp = self._send("GET", path, params, stream=True, timeout=timeout)
        if resp.status >= 400:
            data = resp.read()
            conn.close()
            raise self._error(resp, data, verb, what)
        return Response(conn, resp)

    # -- Kubernetes verbs
    def get(self, plural, name, namespace=None, subresource=None):
        from skiff.api.resources import path_for
        return self.request("GET", path_for(plural, namespace, name, subresource))

    def list(self, plural, namespace=None, label_selector=None, field_selector=None, limit=500):
        """Every item (follows ``continue``); returns the List with all items merged."""
        from skiff.api.resources import path_for
        out = None
        cont = None
        while True:
            params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                      "limit": limit, "continue": cont}
            page = self.request("GET", path_for(plural, namespace), params)
            if out is None:
                out = page
                out["items"] = list(page.get("items") or [])
            else:
                out["items"] += page.get("items") or []
                out.setdefault("metadata", {})["resourceVersion"] = \
                    (page.get("metadata") or {}).get("resourceVersion")
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                break
        (out.setdefault("metadata", {})).pop("continue", None)
        return out

    def watch(self, plural, namespace=None, resource_version=None, label_selector=None,
              field_selector=None, timeout_seconds=None, bookmarks=False):
        """Yield (type, object) for each watch event, until the server ends the stream."""
        from skiff.api.resources import path_for
        params = {"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if bookmarks else None}
        r = self.stream(path_for(plural, namespace), params)
        try:
            for line in r.lines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("type") == "ERROR":
                    st = ev.get("object") or {}
                    raise APIError(st.get("code") or 500, st)
                yield ev.get("type"), ev.get("object") or {}
        finally:
            r.close()

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _warning_text(h: str) -> str:
    """`299 - "message"` -> message (RFC 7234 warn-code warn-agent warn-text)."""
    parts = h.split(" ", 2)
    if len(parts) == 3 and parts[0].isdigit():
        t = parts[2].strip()
        if t.startswith('"'):
            end = t.rfind('"')
            t = t[1:end] if end > 0 else t[1:]
            t = t.replace('\\"', '"').replace("\\\\", "\\")
        return t
    return h
