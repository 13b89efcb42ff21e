"""A CRD's other served versions (conversion strategy None, as Kubernetes: only apiVersion
changes between versions).

The resource is served by the generic machinery in one version (:mod:`kinds`: the storage
version when served); every other served version is answered here, for the same stored
objects: bodies coming in get the served version's apiVersion, objects going out get the
requested one (get, list, watch, create, update, patch, apply, delete; /status and /scale).
Discovery lists these versions too (:func:`add_to_groups`, :func:`add_to_aggregated`).
Objects are validated against the schema of the version the resource is served in.
"""
from __future__ import annotations

import json
from typing import Any

from skiff.api import errors as E
from skiff.controller.crd import kinds as K

# (group, version) -> {plural: CustomKind} for the versions served here
ALT: dict[tuple[str, str], dict[str, Any]] = {}


def rebuild() -> None:
    ALT.clear()
    for ck in K.CUSTOM.values():
        for v in ck.other_versions:
            ALT.setdefault((ck.resource.group, v), {})[ck.resource.plural] = ck


def _resources(ck, version: str) -> list[dict]:
    from skiff.controller.apiserver import legacy_entries
    return legacy_entries(ck.resource, ck.resource.group, version)


def add_to_groups(groups: list[dict]) -> None:
    """/apis: each group with custom resources lists their other served versions too."""
    for (g, v) in sorted(ALT):
        for grp in groups:
            if grp.get("name") == g and not any(x.get("version") == v for x in grp["versions"]):
                grp["versions"].append({"groupVersion": f"{g}/{v}", "version": v})


def add_to_aggregated(items: list[dict]) -> None:
    for (g, v), cks in sorted(ALT.items()):
        it = next((i for i in items if (i.get("metadata") or {}).get("name") == g), None)
        if it is None or any(x.get("version") == v for x in it["versions"]):
            continue
        from skiff.controller.apiserver import aggregated_entry
        res = [aggregated_entry(ck.resource, g, v) for ck in cks.values()]
        it["versions"].append({"version": v, "freshness": "Current", "resources": res})


def _out(obj: Any, av: str, stored_av: str) -> Any:
    if isinstance(obj, dict) and obj.get("apiVersion") == stored_av:
        return {**obj, "apiVersion": av}
    return obj


def _in(body: Any, av: str, stored_av: str) -> Any:
    if isinstance(body, dict):
        if body.get("apiVersion") not in (None, av):
            raise E.bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match the "
                                f"expected API version ({av})")
        return {**body, "apiVersion": stored_av}
    return body


async def handle(server, request, group: str, version: str, rest: list[str], user) -> Any:
    """/apis/<group>/<version>/<rest...> for a version served here: a web.Response."""
    from skiff.controller import apiserver as A
    cks = ALT.get((group, version)) or {}
    method = request.method
    if not rest:
        if method != "GET":
            raise E.method_not_allowed()
        return A.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
                                "resources": [d for ck in cks.values() for d in _resources(ck, version)]})
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in cks and cks[rest[2]].resource.namespaced:
        ns, rest = rest[1], rest[2:]
    ck = cks.get(rest[0])
    if ck is None or len(rest) > 3:
        raise E.path_not_found()
    r = ck.resource
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if (name and r.namespaced and ns is None) or (sub and sub not in r.subresources):
        raise E.path_not_found()
    av, sav = f"{group}/{version}", r.api_version
    reg, q = server.registry, request.query
    if name is None:
        if method == "GET":
            if A._bool(q.get("watch")):
                return await _watch(server, request, r, ns, user, av)
            lst = await reg.list(r.plural, ns, label_selector=q.get("labelSelector"),
                                 field_selector=q.get("fieldSelector"), limit=A._int(q.get("limit"), "limit"),
                                 continue_=q.get("continue"), user=user)
            topts = A._table_options(request)
            if topts:
                return A.table_response(r, lst.get("items") or [], topts, lst.get("metadata"))
            return A.json_response({**lst, "apiVersion": av, "items": [_out(o, av, sav) for o in lst["items"]]})
        if method == "POST":
            if r.namespaced and ns is None:
                raise E.method_not_allowed()
            warnings: list = []
            out = await reg.create(r.plural, _in(await server._body(request, strict=r), av, sav), ns, user=user,
                                   warnings=warnings, field_manager=A._field_manager(request),
                                   field_validation=A._field_validation(request), owned=True)
            return A.json_response(_out(out, av, sav), 201, warnings)
        if method == "DELETE":
            opts = await server._body(request, required=False) or {}
            return A.json_response(await reg.delete_collection(
                r.plural, ns, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
                propagation_policy=A._propagation(opts, q), user=user))
        raise E.method_not_allowed()
    if method == "GET":
        obj = await reg.get(r.plural, name, ns, sub, user=user)
        topts = A._table_options(request)
        if topts and sub != "scale":
            return A.table_response(r, [obj], topts, obj.get("metadata"))
        return A.json_response(_out(obj, av, sav))
    warnings = []
    if method == "PUT":
        out = await reg.update(r.plural, _in(await server._body(request, strict=r), av, sav) if sub != "scale"
                               else await server._body(request), ns, name, subresource=sub,
                               field_manager=A._field_manager(request), user=user, warnings=warnings,
                               field_validation=A._field_validation(request))
        return A.json_response(_out(out, av, sav), 200, warnings)
    if method == "PATCH":
        ctype = request.content_type
        if ctype == "application/apply-patch+yaml":
            import yaml
            try:
                cfg = yaml.safe_load(await request.read())
            except yaml.YAMLError as e:
                raise E.bad_request(f"error decoding YAML: {e}") from None
            out, created = await reg.apply(r.plural, name, json.dumps(_in(cfg, av, sav)), ns,
                                           field_manager=q.get("fieldManager"), force=A._bool(q.get("force")),
                                           subresource=sub, user=user, warnings=warnings,
                                           field_validation=A._field_validation(request))
            return A.json_response(_out(out, av, sav), 201 if created else 200, warnings)
        ptype = A._PATCH_TYPES.get(ctype)
        if ptype is None or ptype == "strategic":
            K.refuse_strategic(r)
            raise E.unsupported_media_type("the body of the request was in an unknown format")
        out = await reg.patch(r.plural, name, await server._body(request), ns, patch_type=ptype,
                              field_manager=A._field_manager(request), force=A._bool(q.get("force")),
                              subresource=sub, user=user, warnings=warnings,
                              field_validation=A._field_validation(request))
        return A.json_response(_out(out, av, sav), 200, warnings)
    if method == "DELETE" and not sub:
        opts = await server._body(request, required=False) or {}
        if not isinstance(opts, dict):
            raise E.bad_request("DeleteOptions must be a JSON object")
        grace = opts.get("gracePeriodSeconds")
        out = await reg.delete(r.plural, name, ns, grace_period_seconds=grace, preconditions=opts.get("preconditions"),
                               propagation_policy=A._propagation(opts, q), user=user)
        return A.json_response(_out(out, av, sav))
    raise E.method_not_allowed()


async def _watch(server, request, r, ns, user, av: str):
    """A watch whose objects carry the requested apiVersion."""
    import aiohttp
    from aiohttp import web
    from skiff.api.errors import APIError
    from skiff.controller import apiserver as A
    q = request.query
    stream = server.registry.watch(
        r.plural, ns, resource_version=q.get("resourceVersion"), label_selector=q.get("labelSelector"),
        field_selector=q.get("fieldSelector"), bookmarks=A._bool(q.get("allowWatchBookmarks")),
        timeout_seconds=A._int(q.get("timeoutSeconds"), "timeoutSeconds"), user=user)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        try:
            async for etype, obj in stream:
                obj = {**obj, "apiVersion": av} if isinstance(obj, dict) and obj.get("apiVersion") else obj
                await resp.write(A._dumps({"type": etype, "object": obj}) + b"\n")
        except APIError as e:
            await resp.write(A._dumps({"type": "ERROR", "object": e.status}) + b"\n")
        await resp.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
    finally:
        await stream.aclose()
    return resp
