"""The Kubernetes-shaped REST API over aiohttp (contracts §2).

``APIServer(registry, tokens).make_server() -> web.Server``: aiohttp's low-level server with
one handler (no Application, router or middleware chain: 4-5% of the API server's CPU under
load went to them). The handler parses Kubernetes paths (``/api/v1/...``,
``/apis/<group>/<version>/...``) for every resource of :data:`skiff.api.resources.RESOURCES`; plus discovery (``/api``, ``/apis``,
``/api/v1``, ``/apis/<group>/<version>``), ``/version``, ``/healthz``, ``/readyz``,
``/livez``, the skiff.dev join/node token endpoints, TokenReview, and the pods/log proxy to
the agents. Every error is a Kubernetes Status. Bearer token auth on everything but
/healthz, /readyz, /livez and /version.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from skiff.api import errors as E
from skiff.api import jsoncodec
from skiff.api.errors import APIError
from skiff.api.resources import RESOURCES, Resource
from skiff.api import tables as T
from skiff.api.validation import dns1123_subdomain_error
from skiff.controller.auth import TokenManager, User
from skiff.controller.crd.versions import ALT as CRD_ALT_VERSIONS
from skiff.controller.dryrun import dry_run_scope
from skiff.controller.storage.base import IDLE, RawObject

log = logging.getLogger("skiff.apiserver")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

VERSION_INFO = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-skiff", "gitCommit": "skiff",
                "gitTreeState": "clean", "buildDate": "2026-11-28T00:00:00Z", "goVersion": "python3",
                "compiler": "skiff", "platform": "linux/amd64"}
PUBLIC = frozenset({"/healthz", "/readyz", "/livez", "/version", "/version/", "/cacerts"})

USER_KEY = web.RequestKey("skiff_user", User) if hasattr(web, "RequestKey") else "skiff_user"

_PATCH_TYPES = {"application/merge-patch+json": "merge", "application/json-patch+json": "json",
                "application/strategic-merge-patch+json": "strategic"}
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "log": ["get"], "binding": ["create"],
                      "exec": ["create", "get"], "attach": ["create", "get"], "portforward": ["create", "get"],
                      "scale": ["get", "patch", "update"], "finalize": ["update"], "eviction": ["create"],
                      "token": ["create"],
                      "ephemeralcontainers": ["get", "patch", "update"]}
_SUBRESOURCE_KINDS = {"binding": "Binding", "exec": "PodExecOptions", "attach": "PodAttachOptions",
                      "portforward": "PodPortForwardOptions"}
MAX_BODY = 3 * 1024 * 1024
WATCH_BURST = 64 * 1024     # a watch's gathered event lines are sent once they reach this size
_LOG_PARAMS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes")


_dumps = jsoncodec.dumps   # compact JSON bytes


def json_response(obj: Any, status: int = 200, warnings: list | None = None) -> web.Response:
    headers = None
    if warnings:
        headers = CIMultiDict()
        for w in warnings:
            headers.add("Warning", '299 - "' + str(w).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return web.Response(body=_dumps(obj), status=status, content_type="application/json", headers=headers)


def status_response(e: APIError) -> web.Response:
    return web.Response(body=_dumps(e.status), status=e.code, content_type="application/json")


def _bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes")


def _int(v: str | None, name: str) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise E.bad_request(f'invalid value for {name}: "{v}"') from None


def _field_manager(request: web.Request) -> str:
    """The manager of a non-apply write: ?fieldManager=, else the User-Agent's product name
    (``kubectl`` for ``kubectl/v1.32.4 (linux/amd64) ...``), as Kubernetes does."""
    fm = request.query.get("fieldManager")
    if fm:
        return fm
    ua = request.headers.get("User-Agent", "")
    return ua.split("/", 1)[0].strip()[:128] or "unknown"


PROTOBUF = "application/vnd.kubernetes.protobuf"
PROTOBUF_MESSAGE = (
    "the body of the request was in protobuf (application/vnd.kubernetes.protobuf): skiff reads protobuf "
    "only for Namespace, ConfigMap, Secret, Service, ServiceAccount, ResourceQuota, PodDisruptionBudget, PriorityClass, Ingress, IngressClass, the Pod (kubectl debug), "
    "Deployment, Job and CronJob fields kubectl writes, and the self reviews, and JSON and YAML for everything. kubectl "
    "1.32 sends protobuf for its imperative create commands; "
    "have kubectl write the object as YAML and apply that instead (add --dry-run=client -o yaml and pipe it "
    "to kubectl apply -f -), for example: "
    "kubectl create deployment x --image=y --dry-run=client -o yaml | kubectl apply -f -")
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
# bodies sent without a media type (or as bytes/text) are read as JSON
_LENIENT_TYPES = frozenset({"", "application/octet-stream", "text/plain"})


def _field_validation(request: web.Request) -> str:
    """?fieldValidation= (Strict|Warn|Ignore); Warn when absent, as Kubernetes >= 1.27."""
    from skiff.api.validation import FIELD_VALIDATION
    fv = request.query.get("fieldValidation") or "Warn"
    if fv not in FIELD_VALIDATION:
        raise E.bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: "", '
                            + ", ".join(f'"{v}"' for v in FIELD_VALIDATION))
    return fv


def _loads_strict(raw: bytes, r: Resource) -> Any:
    """json.loads that refuses duplicate fields (their paths in the message)."""
    marked: dict[int, tuple[dict, list[str]]] = {}

    def hook(pairs):
        d = dict(pairs)
        if len(d) != len(pairs):
            seen: set = set()
            dup = []
            for k, _ in pairs:
                if k in seen and k not in dup:
                    dup.append(k)
                seen.add(k)
            marked[id(d)] = (d, dup)
        return d

    out = json.loads(raw, object_pairs_hook=hook)
    if marked:
        from skiff.api.validation import StrictDecodingError, json_path
        found: list[str] = []

        def walk(node, path):
            if isinstance(node, dict):
                if id(node) in marked:
                    found.extend(json_path(path + [k]) for k in marked[id(node)][1])
                for k, v in node.items():
                    walk(v, path + [k])
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, path + [i])
        walk(out, [])
        name = ((out.get("metadata") or {}).get("name") or "") if isinstance(out, dict) else ""
        e = StrictDecodingError(r.kind, r.api_version, str(name), duplicate=found)
        raise APIError(e.to_status())
    return out


def _propagation(opts: Any, q) -> str | None:
    """DeleteOptions.propagationPolicy from the body, else ?propagationPolicy=; the legacy
    orphanDependents (body or query) maps to Orphan/Background."""
    from skiff.controller.registry_kinds import check_propagation_policy
    opts = opts if isinstance(opts, dict) else {}
    policy = opts.get("propagationPolicy") or q.get("propagationPolicy")
    orphan = opts.get("orphanDependents")
    if orphan is None and q.get("orphanDependents") is not None:
        orphan = _bool(q.get("orphanDependents"))
    return check_propagation_policy(policy, orphan)


# ------------------------------------------------------------------------ discovery

# subresources served in another group's kind (kubectl drain looks for eviction to evict rather
# than delete; token is the TokenRequest API, skiff.controller.rbac)
_SUBRESOURCE_GVK = {"scale": ("autoscaling", "v1", "Scale"), "eviction": ("policy", "v1", "Eviction"),
                    "token": ("authentication.k8s.io", "v1", "TokenRequest")}


def _subresource_gvk(r, sub: str, group: str, version: str) -> tuple[str, str, str]:
    return _SUBRESOURCE_GVK.get(sub) or (group, version, _SUBRESOURCE_KINDS.get(sub, r.kind))


def _names(r, d: dict) -> dict:
    if r.short_names:
        d["shortNames"] = list(r.short_names)
    if r.categories:
        d["categories"] = list(r.categories)
    return d


def legacy_entries(r, group: str, version: str) -> list[dict]:
    """A resource's APIResourceList entries: itself, then each subresource."""
    out = [_names(r, {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": list(r.verbs)})]
    for sub in r.subresources:
        g, v, kind = _subresource_gvk(r, sub, group, version)
        d = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
             "kind": kind, "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])}
        if sub in _SUBRESOURCE_GVK:
            d.update(group=g, version=v)
        out.append(d)
    return out


def aggregated_entry(r, group: str, version: str) -> dict:
    """A resource's entry in aggregated discovery (APIGroupDiscoveryList) as served at group/version."""
    d = _names(r, {"resource": r.plural, "responseKind": {"group": group, "version": version, "kind": r.kind},
                   "scope": "Namespaced" if r.namespaced else "Cluster",
                   "singularResource": r.singular, "verbs": list(r.verbs)})
    subs = []
    for sub in r.subresources:
        g, v, kind = _subresource_gvk(r, sub, group, version)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind},
                     "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])})
    if subs:
        d["subresources"] = subs
    return d


def _resource_list(group: str, version: str) -> dict:
    res = []
    for r in RESOURCES.values():
        if r.group == group and r.version == version:
            res += legacy_entries(r, group, version)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}


_DISCOVERY_CT = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"


def _aggregated(core: bool, dv: str) -> dict:
    """The aggregated discovery document (apidiscovery.k8s.io/<dv> APIGroupDiscoveryList):
    the core group alone for /api (core=True), every named group for /apis."""
    groups: dict[str, dict[str, list]] = {}
    for r in RESOURCES.values():
        if bool(r.group) == core:
            continue
        groups.setdefault(r.group, {}).setdefault(r.version, []).append(aggregated_entry(r, r.group, r.version))
    items = [{"metadata": {"name": g, "creationTimestamp": None},
              "versions": [{"version": v, "resources": res, "freshness": "Current"} for v, res in vs.items()]}
             for g, vs in groups.items()]
    if not core:
        from skiff.controller.hpa_v1 import add_v1_to_aggregated
        from skiff.controller.metrics_api import aggregated_item
        add_v1_to_aggregated(items)   # autoscaling/v1, converted (skiff.controller.hpa_v1)
        from skiff.controller.crd import versions as crd_versions
        crd_versions.add_to_aggregated(items)    # custom resources' other served versions
        items.append(aggregated_item())
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{dv}",
            "metadata": {}, "items": items}


def _discovery_response(request: web.Request, core: bool, legacy) -> web.Response:
    """/api or /apis: the aggregated document when Accept asks for it, else the legacy one."""
    dv = T.negotiate(request.headers.get("Accept"), "APIGroupDiscoveryList", "apidiscovery.k8s.io",
                     ("v2", "v2beta1"))
    if dv is None:
        return json_response(legacy())
    return web.Response(body=_dumps(_aggregated(core, dv)),
                        headers={"Content-Type": _DISCOVERY_CT.format(v=dv), "Vary": "Accept"})


def _table_options(request: web.Request) -> tuple[str, str] | None:
    """(Table apiVersion, includeObject) when the request's Accept asks for a Table."""
    tv = T.table_version(request.headers.get("Accept"))
    if tv is None:
        return None
    inc = request.query.get("includeObject") or "Metadata"
    if inc not in T.INCLUDE_OBJECT:
        raise E.bad_request(f'includeObject: Unsupported value: "{inc}": supported values: '
                            f'"Metadata", "None", "Object"')
    return f"meta.k8s.io/{tv}", inc


def table_response(r: Resource, objs: list, opts: tuple[str, str], list_meta: dict | None) -> web.Response:
    doc = T.table(r.plural, objs, include=opts[1], list_meta=list_meta, kind=(r.api_version, r.kind),
                  api_version=opts[0])
    return web.Response(body=_dumps(doc), headers={"Content-Type": _table_ctype(opts)})


def _table_ctype(opts: tuple[str, str]) -> str:
    return T.TABLE_CONTENT_TYPE.replace("v=v1", "v=" + opts[0].rpartition("/")[2])


def _groups() -> list[dict]:
    seen: dict[str, list[str]] = {}
    for r in RESOURCES.values():
        if r.group and r.version not in seen.setdefault(r.group, []):
            seen[r.group].append(r.version)
    out = []
    for g, versions in seen.items():
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        out.append({"name": g, "versions": vs, "preferredVersion": vs[0]})
    from skiff.controller.hpa_v1 import add_v1_to_groups
    from skiff.controller.metrics_api import api_group
    add_v1_to_groups(out)     # autoscaling/v1 next to v2 (skiff.controller.hpa_v1)
    from skiff.controller.crd import versions as crd_versions
    crd_versions.add_to_groups(out)     # custom resources' other served versions
    out.append(api_group())   # metrics.k8s.io: served by skiff.controller.metrics_api
    return out


# ------------------------------------------------------------------------ the server

async def _relay(up, down) -> None:
    """Binary messages both ways between two WebSockets until either side closes; then the
    other is closed too."""
    async def pipe(src, dst):
        async for msg in src:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)
    tasks = [asyncio.ensure_future(pipe(up, down)), asyncio.ensure_future(pipe(down, up))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws in (up, down):
            if not ws.closed:
                try:
                    await ws.close()
                except (ConnectionError, RuntimeError):
                    pass


class APIServer:
    def __init__(self, registry, tokens: TokenManager, apiserver_token: str | None = None):
        self.registry = registry
        self.tokens = tokens
        self.apiserver_token = apiserver_token
        self._session: aiohttp.ClientSession | None = None
        self._metrics_api()   # made now (it scrapes nothing until asked): in-process readers find it
        self.server_address = "127.0.0.1:6443"
        self.ca_pem: bytes | None = None     # the cluster CA (served at /cacerts) when on TLS
        self.ca_hash: str | None = None      # its SHA-256: join tokens carry it (K10<hash>::secret)

    def make_server(self, **kwargs) -> web.Server:
        """The aiohttp server, for a ServerRunner: every request goes to :meth:`handle`.
        (aiohttp's RawTestServer takes ``handle`` and ``request_factory`` the same way.)"""
        return web.Server(self.handle, request_factory=self.request_factory, **kwargs)

    @staticmethod
    def request_factory(message, payload, protocol, writer, task) -> web.BaseRequest:
        """Requests whose bodies may be up to MAX_BODY (the kube-apiserver takes 3 MB)."""
        return web.BaseRequest(message, payload, protocol, writer, task, asyncio.get_running_loop(),
                               client_max_size=MAX_BODY)

    def _metrics_api(self):
        """The metrics.k8s.io server (skiff.controller.metrics_api): it reaches the agents as
        the pods/log proxy does, with this server's session and token."""
        from skiff.controller.metrics_api import metrics_for
        return metrics_for(self.registry, session=self._agent_session, headers=self._agent_headers)

    async def close(self) -> None:
        """Let go of the client session of the pods/log proxy."""
        from skiff.controller.metrics_api import close_metrics
        await close_metrics(self.registry)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self._middleware(request, self.dispatch)

    async def _middleware(self, request: web.BaseRequest, handler):
        try:
            if request.path not in PUBLIC:
                auth = request.headers.get("Authorization", "")
                token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
                if token and token.startswith("K10"):  # a join token with its CA hash
                    token = token.rpartition("::")[2]
                user = await self.tokens.authenticate(token)
                if user is None:
                    raise E.unauthorized()
                if "Impersonate-User" in request.headers or "Impersonate-Group" in request.headers:
                    from skiff.controller.rbac import impersonate     # kubectl --as / --as-group
                    user = await impersonate(self.registry.storage, user, request.headers)
                request[USER_KEY] = user
            if request.method in _WRITE_METHODS and "dryRun" in request.query:
                # this request only: the registry writes through a view that persists nothing
                with dry_run_scope(request.query.getall("dryRun")):
                    return await handler(request)
            return await handler(request)
        except APIError as e:
            return status_response(e)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            reason = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed",
                      413: "RequestEntityTooLarge", 415: "UnsupportedMediaType"}.get(e.status, "InternalError")
            return status_response(APIError(e.status, reason, e.reason or reason))
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            raise
        except Exception as e:  # noqa: BLE001 - every error is a Status
            log.exception("internal error serving %s %s", request.method, request.path)
            return status_response(E.internal(f"{type(e).__name__}: {e}"))

    async def _body(self, request: web.Request, required: bool = True, strict: Resource | None = None) -> Any:
        """The decoded request body: JSON, or YAML for application/yaml (POST/PUT take either,
        as Kubernetes). Protobuf bodies are refused with a 415 that says what to do instead.
        ``strict``: the resource of a create/update; under ``fieldValidation=Strict`` a JSON
        object with a duplicate field is a 400, as the kube-apiserver's strict decoder says."""
        raw = await request.read()
        if not raw:
            if required:
                raise E.bad_request("the request body is empty")
            return None
        ctype = request.content_type
        if ctype == PROTOBUF or raw[:4] == b"k8s\x00":
            from skiff.api import protobuf
            try:
                return protobuf.decode(raw)
            except protobuf.Unsupported as e:
                what = f" (got {e.kind}" + (f": {e})" if str(e).endswith("from protobuf") else ")") if e.kind else ""
                raise E.unsupported_media_type(PROTOBUF_MESSAGE + what) from None
        if ctype in _YAML_TYPES:
            import yaml
            try:
                return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except yaml.YAMLError as e:
                raise E.bad_request(f"couldn't get version/kind; yaml parse error: {e}") from None
        if not (ctype.endswith("json") or ctype in _LENIENT_TYPES):
            raise E.unsupported_media_type(
                f'the body of the request was in an unknown format - accepted media types include: '
                f'application/json, application/yaml (skiff does not take "{ctype}")')
        try:
            if strict is not None and request.query.get("fieldValidation") == "Strict":
                return _loads_strict(raw, strict)
            return jsoncodec.loads(raw)
        except ValueError as e:
            raise E.bad_request(f"couldn't get version/kind; json parse error: {e}") from None

    # ---------------------------------------------------------------- routing
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path in ("/version", "/version/"):
            return json_response(VERSION_INFO)
        if path == "/cacerts":
            if self.ca_pem is None:
                raise E.path_not_found()
            return web.Response(body=self.ca_pem, content_type="application/x-pem-file")
        parts = [p for p in path.split("/") if p]
        method = request.method
        if not parts:
            return json_response({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/readyz", "/version"]
                                  + [f"/apis/{g['name']}/{v['version']}" for g in _groups()
                                     for v in g["versions"]]})
        if parts[0] == "openapi":
            return self.openapi(request, parts[1:])
        if parts[0] == "api":
            if len(parts) == 1:
                return _discovery_response(request, True, lambda: {
                    "kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                    "serverAddress": self.server_address}]})
            if parts[1] != "v1":
                raise E.path_not_found()
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return _discovery_response(request, False, lambda: {"kind": "APIGroupList", "apiVersion": "v1",
                                                                    "groups": _groups()})
            group = parts[1]
            if len(parts) == 2:
                g = next((g for g in _groups() if g["name"] == group), None)
                if g is None:
                    raise E.path_not_found()
                return json_response({"kind": "APIGroup", "apiVersion": "v1", **g})
            version, rest = parts[2], parts[3:]
            if (group, version) in CRD_ALT_VERSIONS:     # a CRD's other served versions (skiff.controller.crd)
                from skiff.controller.crd import versions as crd_versions
                return await crd_versions.handle(self, request, group, version, rest, request[USER_KEY])
            if group == "metrics.k8s.io":
                out = await self._metrics_api().handle(request, version, rest, request[USER_KEY])
                return out if isinstance(out, web.StreamResponse) else json_response(out)
            if group == "autoscaling" and version == "v1" and (not rest or "horizontalpodautoscalers" in rest[:3]):
                from skiff.controller import hpa_v1
                return await hpa_v1.handle(self, request, rest, request[USER_KEY])
            if group == "skiff.dev" and version == "v1" and len(rest) == 1 and method == "POST":
                if rest[0] == "jointokens":
                    return await self.join_token(request)
                if rest[0] == "nodetokens":
                    return await self.node_token(request)
            if group == "authentication.k8s.io" and version == "v1" and rest == ["tokenreviews"] \
                    and method == "POST":
                return await self.token_review(request)
            if method == "POST" and version == "v1" and (group, rest) in (
                    ("authorization.k8s.io", ["selfsubjectaccessreviews"]),
                    ("authorization.k8s.io", ["selfsubjectrulesreviews"]),
                    ("authentication.k8s.io", ["selfsubjectreviews"])):
                return await self.self_review(request, rest[0])
        else:
            raise E.path_not_found()
        if not rest:
            if method != "GET":
                raise E.method_not_allowed()
            doc = _resource_list(group, version)
            if not doc["resources"]:
                raise E.path_not_found()
            return json_response(doc)
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in RESOURCES \
                and RESOURCES[rest[2]].namespaced:
            ns, rest = rest[1], rest[2:]
        r = RESOURCES.get(rest[0])
        if r is None or r.group != group or r.version != version or len(rest) > 3:
            raise E.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (name and r.namespaced and ns is None) or (sub and sub not in r.subresources):
            raise E.path_not_found()
        user: User = request[USER_KEY]
        q = request.query
        reg = self.registry
        if name is None:
            if method == "GET":
                if _bool(q.get("watch")):
                    return await self.watch(request, r, ns, user)
                topts = _table_options(request)
                lst = await reg.list(
                    r.plural, ns, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
                    limit=_int(q.get("limit"), "limit"), continue_=q.get("continue"), user=user)
                if topts:
                    return table_response(r, lst.get("items") or [], topts, lst.get("metadata"))
                return json_response(lst)
            if method == "DELETE":
                opts = await self._body(request, required=False) or {}
                grace = opts.get("gracePeriodSeconds") if isinstance(opts, dict) else None
                if grace is None:
                    grace = _int(q.get("gracePeriodSeconds"), "gracePeriodSeconds")
                with dry_run_scope(opts.get("dryRun") if isinstance(opts, dict) else None):
                    return json_response(await reg.delete_collection(
                        r.plural, ns, label_selector=q.get("labelSelector"),
                        field_selector=q.get("fieldSelector"), grace_period_seconds=grace,
                        propagation_policy=_propagation(opts, q), user=user))
            if method == "POST":
                if r.namespaced and ns is None:
                    raise E.method_not_allowed()
                warnings: list = []
                fv = _field_validation(request)
                out = await reg.create(r.plural, await self._body(request, strict=r), ns, user=user,
                                       warnings=warnings, field_manager=_field_manager(request),
                                       field_validation=fv, owned=True)
                return json_response(out, 201, warnings)
            raise E.method_not_allowed()
        if sub == "log":
            if method != "GET":
                raise E.method_not_allowed()
            return await self.pod_log(request, ns, name, user)
        if sub in ("exec", "attach"):
            if method not in ("GET", "POST"):
                raise E.method_not_allowed()
            return await self.pod_exec(request, ns, name, user, sub)
        if sub == "portforward":
            if method not in ("GET", "POST"):
                raise E.method_not_allowed()
            return await self.pod_port_forward(request, ns, name, user)
        if sub == "binding":
            if method != "POST":
                raise E.method_not_allowed()
            return json_response(await reg.bind(ns, name, await self._body(request), user=user), 201)
        if sub == "eviction":
            if method != "POST":
                raise E.method_not_allowed()
            from skiff.controller.disruption import evict
            return json_response(await evict(reg, ns, name, await self._body(request), user), 201)
        if sub == "token" and r.plural == "serviceaccounts":
            if method != "POST":
                raise E.method_not_allowed()
            from skiff.controller.rbac import token_request
            return json_response(await token_request(reg, ns, name, await self._body(request), user), 201)
        if method == "GET":
            topts = _table_options(request)
            obj = await reg.get(r.plural, name, ns, sub, user=user)
            if topts:
                tr = r if sub != "scale" else Resource("scale", "Scale", "autoscaling", "v1", r.namespaced, "scale")
                return table_response(tr, [obj], topts, obj.get("metadata"))
            return json_response(obj)
        if method == "PUT":
            warnings = []
            fv = _field_validation(request)
            out = await reg.update(r.plural, await self._body(request, strict=r), ns, name, subresource=sub,
                                   field_manager=_field_manager(request),
                                   user=user, warnings=warnings, field_validation=fv)
            return json_response(out, 200, warnings)
        if method == "PATCH":
            ctype = request.content_type
            if ctype == "application/apply-patch+yaml":   # server-side apply: an upsert
                warnings = []
                out, created = await reg.apply(r.plural, name, await request.read(), ns,
                                               field_manager=q.get("fieldManager"), force=_bool(q.get("force")),
                                               subresource=sub, user=user, warnings=warnings,
                                               field_validation=_field_validation(request))
                return json_response(out, 201 if created else 200, warnings)
            ptype = _PATCH_TYPES.get(ctype)
            if ptype is None:
                raise E.unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
                    "application/strategic-merge-patch+json")
            warnings = []
            fv = _field_validation(request)
            out = await reg.patch(r.plural, name, await self._body(request), ns, patch_type=ptype,
                                  field_manager=_field_manager(request), force=_bool(q.get("force")),
                                  subresource=sub, user=user, warnings=warnings, field_validation=fv)
            return json_response(out, 200, warnings)
        if method == "DELETE":
            if sub:
                raise E.method_not_allowed()
            opts = await self._body(request, required=False) or {}
            if not isinstance(opts, dict):
                raise E.bad_request("DeleteOptions must be a JSON object")
            grace = opts.get("gracePeriodSeconds")
            if grace is None:
                grace = _int(q.get("gracePeriodSeconds"), "gracePeriodSeconds")
            with dry_run_scope(opts.get("dryRun")):   # kubectl sends it in DeleteOptions
                return json_response(await reg.delete(r.plural, name, ns, grace_period_seconds=grace,
                                                      preconditions=opts.get("preconditions"),
                                                      propagation_policy=_propagation(opts, q), user=user))
        raise E.method_not_allowed()

    # ---------------------------------------------------------------- openapi
    def openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        """/openapi/v3 (the index) and /openapi/v3/<api/v1|apis/G/V> (skiff/controller/openapi.py).
        A ?hash= that is not the current one redirects to the current URL, as Kubernetes does;
        If-None-Match with the ETag answers 304. /openapi/v2 is Swagger 2.0 (protobuf when asked),
        which kubectl reads to validate `kind: List` manifests on its side."""
        from skiff.controller import openapi as O
        if request.method not in ("GET", "HEAD"):
            raise E.method_not_allowed()
        if parts == ["v2"]:   # Swagger 2.0: protobuf for kubectl, else JSON
            js, pb, h = O.swagger_v2()
            proto = "protobuf" in request.headers.get("Accept", "")
            etag = f'"{h}{"-pb" if proto else ""}"'
            headers = {"Content-Type": O.V2_PROTOBUF if proto else "application/json", "ETag": etag,
                       "Vary": "Accept", "Cache-Control": "no-cache, private"}
            if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
                return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
            return web.Response(body=pb if proto else js, headers=headers)
        if not parts or parts[0] != "v3":
            raise E.path_not_found()
        key = "/".join(parts[1:])
        found = O.root() if not key else O.document(key)
        if found is None:
            raise E.path_not_found()
        body, h = found
        etag = f'"{h}"'
        want = request.query.get("hash")
        if key and want is not None and want != h:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{key}?hash={h}")
        headers = {"Content-Type": "application/json", "ETag": etag, "Vary": "Accept",
                   "Cache-Control": "public, immutable" if key and want == h else "no-cache, private"}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        return web.Response(body=body, headers=headers)

    # ---------------------------------------------------------------- watch
    async def watch(self, request: web.Request, r: Resource, ns: str | None, user: User) -> web.StreamResponse:
        q = request.query
        topts = _table_options(request)
        stream = self.registry.watch(
            r.plural, ns, resource_version=q.get("resourceVersion"), label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"), bookmarks=_bool(q.get("allowWatchBookmarks")),
            timeout_seconds=_int(q.get("timeoutSeconds"), "timeoutSeconds"), user=user, raw=not topts,
            marks=True)
        # with a Table Accept, each event's object is a one-row Table; only the first has the columns
        ctype = _table_ctype(topts) if topts else "application/json"
        resp = web.StreamResponse(status=200, headers={"Content-Type": ctype,
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            # the lines of a burst of events go out in one write (one chunk, one TLS record):
            # the stream marks (IDLE) where it would wait, or a burst grows past WATCH_BURST
            lines: list[bytes] = []
            size = 0

            async def send(tail: bytes = b"") -> None:
                nonlocal lines, size
                data, lines, size = b"".join(lines) + tail, [], 0
                if data:
                    await resp.write(data)
            try:
                first = True
                async for etype, obj in stream:
                    if etype is IDLE:
                        await send()
                        continue
                    if type(obj) is RawObject:   # the stored JSON as it is
                        line = b'{"type":"' + etype.encode() + b'","object":' + obj.encoded() + b"}\n"
                    else:
                        if topts and etype in ("ADDED", "MODIFIED", "DELETED"):
                            obj = T.table(r.plural, [obj], include=topts[1], list_meta=obj.get("metadata"),
                                          headers=first, kind=(r.api_version, r.kind), api_version=topts[0])
                            first = False
                        line = _dumps({"type": etype, "object": obj}) + b"\n"
                    lines.append(line)
                    size += len(line)
                    if size >= WATCH_BURST:
                        await send()
                await send()
            except APIError as e:
                await send(_dumps({"type": "ERROR", "object": e.status}) + b"\n")
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                raise
            except Exception as e:  # noqa: BLE001 - the headers are sent: report in the stream
                log.exception("watch of %s failed", r.plural)
                st = E.internal(f"{type(e).__name__}: {e}").status
                await send(_dumps({"type": "ERROR", "object": st}) + b"\n")
            await resp.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            await stream.aclose()
        return resp

    # ---------------------------------------------------------------- logs and exec
    async def _pod_container(self, request: web.Request, ns: str, name: str, user: User, sub: str,
                             verb: str) -> tuple[dict, str]:
        """(the pod, the container) of a pods/log or pods/exec request: the ``container`` asked
        for or the pod's only one; 400 when it names none of the pod's."""
        reg = self.registry
        pod = await reg._fetch_authz(user, verb, RESOURCES["pods"], ns, name, sub)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        container = request.query.get("container")
        if not container:
            if len(names) != 1:
                raise E.bad_request(f"a container name must be specified for pod {name}, "
                                    f"choose one of: [{' '.join(names)}]"
                                    + (f" or one of the init containers: [{' '.join(init)}]" if init else "")
                                    + (f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
                                       if ephemeral else ""))
            container = names[0]
        elif container not in names and container not in init and container not in ephemeral:
            raise E.bad_request(f"container {container} is not valid for pod {name}")
        return pod, container

    async def _agent_base(self, pod: dict) -> str:
        """The base URL of the server of the agent that runs ``pod``."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise E.bad_request(f"pod {(pod.get('metadata') or {}).get('name')} does not have a host assigned")
        node = await self.registry.get("nodes", node_name)
        st = node.get("status") or {}
        addrs = st.get("addresses") or []
        ip = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None) or \
            next((a.get("address") for a in addrs if a.get("address")), None)
        port = (((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port"))
        if not ip or not port:
            raise E.internal(f"no preferred addresses found for node {node_name}; known addresses: "
                             f"{[a.get('address') for a in addrs]}")
        host = f"[{ip}]" if ":" in ip else ip
        return f"http://{host}:{port}"

    def _agent_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    def _agent_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.apiserver_token}"} if self.apiserver_token else {}

    async def pod_log(self, request: web.Request, ns: str, name: str, user: User) -> web.StreamResponse:
        pod, container = await self._pod_container(request, ns, name, user, "log", "get")
        url = f"{await self._agent_base(pod)}/containerLogs/{ns}/{name}/{container}"
        params = {k: request.query[k] for k in _LOG_PARAMS if k in request.query}
        try:
            up = await self._agent_session().get(url, params=params, headers=self._agent_headers())
        except (aiohttp.ClientError, OSError) as e:
            raise APIError(502, "InternalError",
                           f"Get \"{url}\": error dialing backend: {e}") from None
        try:
            if up.status != 200:
                body = await up.read()
                try:
                    st = json.loads(body)
                    if isinstance(st, dict) and st.get("kind") == "Status":
                        raise APIError(st)
                except ValueError:
                    pass
                reason = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden",
                          404: "NotFound"}.get(up.status, "InternalError")
                raise APIError(up.status, reason, body.decode(errors="replace").strip() or reason)
            resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionResetError, aiohttp.ClientPayloadError):
                pass
            return resp
        finally:
            up.release()

    async def pod_exec(self, request: web.Request, ns: str, name: str, user: User,
                       sub: str = "exec") -> web.StreamResponse:
        """pods/NAME/exec and pods/NAME/attach: the client's WebSocket (a channel.k8s.io
        subprotocol) relayed, message for message, to the agent's (:mod:`skiff.agent.execserver`,
        :mod:`skiff.agent.attachserver`)."""
        from skiff.api import remotecommand as rc
        pod, container = await self._pod_container(request, ns, name, user, sub, "create")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise E.bad_request(f"Upgrade request required: skiff serves {sub} over WebSocket "
                                "(v5.channel.k8s.io, v4.channel.k8s.io), not SPDY")
        protos = [p for p in rc.offered(request.headers.get("Sec-WebSocket-Protocol")) if p in rc.PROTOCOLS]
        if not protos:
            raise E.bad_request(f"no supported WebSocket subprotocol offered (supported: {', '.join(rc.PROTOCOLS)})")
        params = [(k, v) for k, v in request.query.items() if k in ("command", "stdin", "stdout", "stderr", "tty")]
        url = f"{await self._agent_base(pod)}/{sub}/{ns}/{name}/{container}"
        try:
            up = await self._agent_session().ws_connect(url, params=params, headers=self._agent_headers(),
                                                        protocols=protos, max_msg_size=0, autoping=True)
        except (aiohttp.ClientError, OSError) as e:
            raise APIError(502, "InternalError", f"error dialing backend: {e}") from None
        try:
            down = web.WebSocketResponse(protocols=(up.protocol,) if up.protocol else (), max_msg_size=0)
            await down.prepare(request)
            await _relay(up, down)
            return down
        finally:
            await up.close()

    async def pod_port_forward(self, request: web.Request, ns: str, name: str, user: User) -> web.StreamResponse:
        """pods/NAME/portforward: kubectl's SPDY streams tunnelled through a WebSocket
        (``SPDY/3.1+portforward.k8s.io``); each forwarded connection goes to the agent
        (:mod:`skiff.controller.portforward`)."""
        from skiff.api import remotecommand as rc
        from . import portforward as pf
        pod = await self.registry._fetch_authz(user, "create", RESOURCES["pods"], ns, name, "portforward")
        if request.headers.get("Upgrade", "").lower() != "websocket" or \
                pf.WS_PROTOCOL not in rc.offered(request.headers.get("Sec-WebSocket-Protocol")):
            raise E.bad_request(f"Upgrade request required: skiff serves port-forward as SPDY streams in a "
                                f"WebSocket ({pf.WS_PROTOCOL}; kubectl 1.31 or later)")
        if (pod.get("status") or {}).get("phase") != "Running":
            raise E.bad_request(f"unable to upgrade connection: pod {name} is not running")
        base = f"{await self._agent_base(pod)}/portForward/{ns}/{name}"
        down = web.WebSocketResponse(protocols=(pf.WS_PROTOCOL,), max_msg_size=0)
        await down.prepare(request)

        async def dial(port: int):
            return await self._agent_session().ws_connect(base, params={"port": str(port)},
                                                          headers=self._agent_headers(), max_msg_size=0)
        session = pf.Session(down.send_bytes, dial)
        try:
            async for msg in down:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await session.feed(msg.data)
                if session.closed:
                    break
        except pf.spdy.SpdyError as e:
            log.warning("port-forward to %s/%s: %s", ns, name, e)
        finally:
            await session.close()
            if not down.closed:
                await down.close()
        return down

    # ---------------------------------------------------------------- tokens
    async def join_token(self, request: web.Request) -> web.Response:
        user: User = request[USER_KEY]
        if not user.is_master:
            raise E.forbidden("jointokens", None, f'User "{user.name}" cannot create resource "jointokens" in '
                              f'API group "skiff.dev" at the cluster scope', "skiff.dev")
        body = await self._body(request, required=False) or {}
        ttl = body.get("ttlSeconds") if isinstance(body, dict) else None
        if ttl is not None and (not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0):
            raise E.invalid("JoinToken", "", [{"field": "ttlSeconds", "reason": "FieldValueInvalid",
                                               "message": f"Invalid value: {json.dumps(ttl)}: must be a "
                                                          f"positive number"}], "jointokens", "skiff.dev")
        token, exp = await self.tokens.create_join_token(ttl)
        if self.ca_hash:
            from skiff.api.trust import secure_token
            token = secure_token(self.ca_hash, token)
        return json_response({"kind": "JoinToken", "apiVersion": "skiff.dev/v1", "token": token,
                              "expiration": exp}, 201)

    async def node_token(self, request: web.Request) -> web.Response:
        user: User = request[USER_KEY]
        if not (user.is_master or user.is_bootstrap):
            raise E.forbidden("nodetokens", None, f'User "{user.name}" cannot create resource "nodetokens" in '
                              f'API group "skiff.dev" at the cluster scope', "skiff.dev")
        body = await self._body(request)
        node = body.get("nodeName") if isinstance(body, dict) else None
        if not isinstance(node, str) or not node:
            raise E.invalid("NodeToken", "", [{"field": "nodeName", "reason": "FieldValueRequired",
                                               "message": "Required value"}], "nodetokens", "skiff.dev")
        why = dns1123_subdomain_error(node)
        if why:
            raise E.invalid("NodeToken", node, [{"field": "nodeName", "reason": "FieldValueInvalid",
                                                 "message": f'Invalid value: "{node}": {why}'}],
                            "nodetokens", "skiff.dev")
        token = await self.tokens.create_node_token(node)
        return json_response({"kind": "NodeToken", "apiVersion": "skiff.dev/v1", "nodeName": node,
                              "token": token}, 201)

    async def self_review(self, request: web.Request, kind: str) -> web.Response:
        """What the caller may do (``kubectl auth can-i``: SelfSubjectAccessReview, answered by
        the same authorizer every request goes through) and who it is (``kubectl auth
        whoami``: SelfSubjectReview)."""
        from skiff.controller.auth import authorize
        user: User = request[USER_KEY]
        body = await self._body(request)
        if kind == "selfsubjectreviews":
            return json_response({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                                  "metadata": {"creationTimestamp": None}, "status": {"userInfo": user.info()}},
                                 201)
        spec = (body.get("spec") or {}) if isinstance(body, dict) else {}
        if kind == "selfsubjectrulesreviews":   # kubectl auth can-i --list (skiff.controller.rbac)
            from skiff.controller.rbac import self_rules_review
            return json_response(self_rules_review(user, spec), 201)
        ra = spec.get("resourceAttributes")
        status: dict[str, Any] = {"allowed": False}
        if isinstance(ra, dict):
            verb = ra.get("verb") or ""
            plural = ra.get("resource") or ""
            r = RESOURCES.get(plural)
            if r is None or (ra.get("group") or "") != r.group:
                pass  # kubectl itself warns "the server doesn't have a resource type"
            else:
                try:
                    authorize(user, verb, plural, ra.get("namespace") or None, ra.get("name") or None,
                              ra.get("subresource") or None)
                    status = {"allowed": True, "reason": "skiff: admin" if user.is_master else ""}
                except APIError as e:
                    if user.rbac is None:   # RBAC, as Kubernetes', gives no reason for a denial
                        status["reason"] = e.status.get("message", "")
        elif isinstance(spec.get("nonResourceAttributes"), dict):
            path = spec["nonResourceAttributes"].get("path") or ""
            status["allowed"] = user.is_master or path in PUBLIC or (
                user.rbac is not None and user.rbac.allows(user.name, user.groups, spec["nonResourceAttributes"].get(
                    "verb") or "", path=path))
        return json_response({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}, 201)

    async def token_review(self, request: web.Request) -> web.Response:
        user: User = request[USER_KEY]
        if not (user.is_master or user.is_node):
            raise E.forbidden("tokenreviews", None, f'User "{user.name}" cannot create resource "tokenreviews" '
                              f'in API group "authentication.k8s.io" at the cluster scope',
                              "authentication.k8s.io")
        body = await self._body(request)
        token = ((body.get("spec") or {}) if isinstance(body, dict) else {}).get("token")
        if not isinstance(token, str) or not token:
            raise E.invalid("TokenReview", "", [{"field": "spec.token", "reason": "FieldValueRequired",
                                                 "message": "Required value"}], "tokenreviews",
                            "authentication.k8s.io")
        who = await self.tokens.authenticate(token)
        status: dict[str, Any] = {"authenticated": who is not None}
        if who is not None:
            status["user"] = who.info()
        else:
            status["error"] = "invalid bearer token"
        return json_response({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "spec": {}, "status": status}, 201)


