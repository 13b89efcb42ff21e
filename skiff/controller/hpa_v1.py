"""autoscaling/v1 HorizontalPodAutoscalers, served by conversion to and from the stored
autoscaling/v2 objects (what ``kubectl autoscale`` creates, and what older clients read).

v1 -> v2: ``targetCPUUtilizationPercentage`` becomes one Resource metric (cpu, Utilization); with
none, v2's default (80%) applies. On update, what v1 cannot express (other metrics, behavior) is
kept from the stored object, so a v1 client does not wipe it out.
v2 -> v1: the first cpu Utilization metric is ``targetCPUUtilizationPercentage``, the current cpu
utilization ``status.currentCPUUtilizationPercentage``; as Kubernetes does, the v2-only parts
ride along in annotations (``autoscaling.alpha.kubernetes.io/conditions``, ``.../metrics``,
``.../current-metrics``, ``.../behavior``).

Verbs: get, list (Table too), create, update, patch (merge, strategic, JSON), delete. Watch
through v1 is not served (v2 is the preferred version kubectl uses).
"""
from __future__ import annotations

import json
from typing import Any

from skiff.api import errors as E
from skiff.api.resources import RESOURCES

PLURAL = "horizontalpodautoscalers"
V1, V2 = "autoscaling/v1", "autoscaling/v2"
_ANN = "autoscaling.alpha.kubernetes.io/"
_SPEC_FIELDS = ("scaleTargetRef", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage")
_STATUS_FIELDS = ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas",
                  "currentCPUUtilizationPercentage")


def _cpu_index(metrics: list) -> int | None:
    for i, m in enumerate(metrics or []):
        if isinstance(m, dict) and m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu" \
                and ((m["resource"].get("target") or {}).get("type") == "Utilization"):
            return i
    return None


def to_v1(obj: dict) -> dict:
    md = dict(obj.get("metadata") or {})
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    metrics = spec.get("metrics") or []
    i = _cpu_index(metrics)
    out_spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    if i is not None:
        out_spec["targetCPUUtilizationPercentage"] = metrics[i]["resource"]["target"].get("averageUtilization")
    ann = dict(md.get("annotations") or {})
    others = [m for j, m in enumerate(metrics) if j != i]
    if others:
        ann[_ANN + "metrics"] = json.dumps(others, separators=(",", ":"))
    if spec.get("behavior"):
        ann[_ANN + "behavior"] = json.dumps(spec["behavior"], separators=(",", ":"))
    if status.get("conditions"):
        ann[_ANN + "conditions"] = json.dumps(status["conditions"], separators=(",", ":"))
    cur = status.get("currentMetrics") or []
    out_status = {k: status[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                  if k in status}
    out_status.setdefault("currentReplicas", 0)
    out_status.setdefault("desiredReplicas", 0)
    cpu_cur = [m for m in cur if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
               and ((m["resource"].get("current") or {}).get("averageUtilization") is not None)]
    if cpu_cur:
        out_status["currentCPUUtilizationPercentage"] = cpu_cur[0]["resource"]["current"]["averageUtilization"]
    rest = [m for m in cur if m not in cpu_cur and m.get("type")]
    if rest:
        ann[_ANN + "current-metrics"] = json.dumps(rest, separators=(",", ":"))
    if ann:
        md["annotations"] = ann
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": V1, "metadata": md, "spec": out_spec,
            "status": out_status}


def to_v2(obj: Any, stored: dict | None = None) -> dict:
    """A v1 body as the v2 object to write (``stored``: the current v2 object, on update)."""
    if not isinstance(obj, dict):
        raise E.bad_request("the body must be a JSON object")
    av, kind = obj.get("apiVersion"), obj.get("kind")
    if (av and av != V1) or (kind and kind != "HorizontalPodAutoscaler"):
        raise E.bad_request(f"the API version in the data ({av}) does not match the expected API version ({V1})"
                            if av != V1 else f'{kind} in version "v1" cannot be handled as a HorizontalPodAutoscaler')
    for top in obj:
        if top not in ("apiVersion", "kind", "metadata", "spec", "status"):
            raise E.bad_request(f'strict decoding error: unknown field "{top}"')
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    for k in spec:
        if k not in _SPEC_FIELDS:
            raise E.bad_request(f'strict decoding error: unknown field "spec.{k}"')
    md = dict(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    # the v2-only parts: from the stored object, else from the annotations v1 readers were given
    prev = (stored or {}).get("spec") or {}
    metrics = [m for j, m in enumerate(prev.get("metrics") or []) if j != _cpu_index(prev.get("metrics") or [])]
    if not stored and ann.get(_ANN + "metrics"):
        try:
            metrics = json.loads(ann[_ANN + "metrics"])
        except ValueError:
            metrics = []
    behavior = prev.get("behavior")
    if not stored and ann.get(_ANN + "behavior"):
        try:
            behavior = json.loads(ann[_ANN + "behavior"])
        except ValueError:
            behavior = None
    for k in ("metrics", "behavior", "conditions", "current-metrics"):
        ann.pop(_ANN + k, None)
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    out_spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    cpu = spec.get("targetCPUUtilizationPercentage")
    new_metrics = ([{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": cpu}}}] if cpu is not None else []) + list(metrics or [])
    if new_metrics:
        out_spec["metrics"] = new_metrics
    if behavior:
        out_spec["behavior"] = behavior
    out = {"apiVersion": V2, "kind": "HorizontalPodAutoscaler", "metadata": md, "spec": out_spec}
    if stored and stored.get("status") is not None:
        out["status"] = stored["status"]
    return out


def resource_list() -> dict:
    r = RESOURCES[PLURAL]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": V1, "resources": [
        {"name": PLURAL, "singularName": r.singular, "namespaced": True, "kind": r.kind, "verbs": list(r.verbs),
         "shortNames": list(r.short_names), "categories": list(r.categories)},
        {"name": f"{PLURAL}/status", "singularName": "", "namespaced": True, "kind": r.kind,
         "verbs": ["get", "patch", "update"]}]}


def add_v1_to_groups(groups: list[dict]) -> None:
    """/apis: autoscaling serves v2 (preferred) and v1."""
    for g in groups:
        if g.get("name") == "autoscaling" and not any(v.get("version") == "v1" for v in g["versions"]):
            g["versions"].append({"groupVersion": V1, "version": "v1"})


def add_v1_to_aggregated(items: list[dict]) -> None:
    r = RESOURCES[PLURAL]
    for it in items:
        if (it.get("metadata") or {}).get("name") != "autoscaling":
            continue
        if any(v.get("version") == "v1" for v in it["versions"]):
            return
        it["versions"].append({"version": "v1", "freshness": "Current", "resources": [{
            "resource": PLURAL, "responseKind": {"group": "autoscaling", "version": "v1", "kind": r.kind},
            "scope": "Namespaced", "singularResource": r.singular, "verbs": list(r.verbs),
            "shortNames": list(r.short_names), "categories": list(r.categories),
            "subresources": [{"subresource": "status", "responseKind": {"group": "autoscaling", "version": "v1",
                                                                           "kind": r.kind},
                              "verbs": ["get", "patch", "update"]}]}]})


async def handle(server, request, rest: list[str], user) -> Any:
    """/apis/autoscaling/v1/<rest...>: a web.Response (through the server's helpers)."""
    from skiff.controller import apiserver as A
    from skiff.controller.dryrun import dry_run_scope
    if not rest:
        if request.method != "GET":
            raise E.method_not_allowed()
        return A.json_response(resource_list())
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    if rest[0] != PLURAL or len(rest) > 3:
        raise E.path_not_found()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub not in (None, "status") or (name and ns is None):
        raise E.path_not_found()
    reg, q, method = server.registry, request.query, request.method
    r = RESOURCES[PLURAL]
    if name is None:
        if method == "GET":
            if A._bool(q.get("watch")):
                raise E.bad_request("watching autoscaling/v1 horizontalpodautoscalers is not supported by skiff: "
                                    "watch autoscaling/v2 (the preferred version)")
            lst = await reg.list(PLURAL, ns, label_selector=q.get("labelSelector"),
                                 field_selector=q.get("fieldSelector"), limit=A._int(q.get("limit"), "limit"),
                                 continue_=q.get("continue"), user=user)
            topts = A._table_options(request)
            if topts:
                return A.table_response(r, lst.get("items") or [], topts, lst.get("metadata"))
            return A.json_response({"kind": "HorizontalPodAutoscalerList", "apiVersion": V1,
                                    "metadata": lst.get("metadata") or {},
                                    "items": [to_v1(o) for o in lst.get("items") or []]})
        if method == "POST":
            if ns is None:
                raise E.method_not_allowed()
            warnings: list = []
            out = await reg.create(PLURAL, to_v2(await server._body(request)), ns, user=user, warnings=warnings,
                                   field_manager=A._field_manager(request), field_validation=A._field_validation(request),
                                   owned=True)
            return A.json_response(to_v1(out), 201, warnings)
        if method == "DELETE":
            opts = await server._body(request, required=False) or {}
            with dry_run_scope(opts.get("dryRun") if isinstance(opts, dict) else None):    # kubectl's way
                return A.json_response(await reg.delete_collection(
                    PLURAL, ns, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
                    user=user))
        raise E.method_not_allowed()
    if method == "GET":
        obj = await reg.get(PLURAL, name, ns, sub, user=user)
        topts = A._table_options(request)
        if topts:
            return A.table_response(r, [obj], topts, obj.get("metadata"))
        return A.json_response(to_v1(obj))
    if method == "DELETE":
        if sub:
            raise E.method_not_allowed()
        opts = await server._body(request, required=False) or {}
        if not isinstance(opts, dict):
            raise E.bad_request("DeleteOptions must be a JSON object")
        with dry_run_scope(opts.get("dryRun")):     # kubectl --dry-run=server sends it in DeleteOptions
            return A.json_response(await reg.delete(PLURAL, name, ns, preconditions=opts.get("preconditions"),
                                                    user=user))
    if method in ("PUT", "PATCH"):
        cur = await reg.get(PLURAL, name, ns, user=user)
        if method == "PUT":
            body = await server._body(request)
        else:
            from skiff.controller.registry_kinds import patched
            ptype = A._PATCH_TYPES.get(request.content_type)
            if ptype is None:
                raise E.unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, "
                    "application/strategic-merge-patch+json")
            try:
                patch = json.loads(await request.read())
            except ValueError as e:
                raise E.bad_request(f"error decoding patch: {e}") from None
            body = patched(to_v1(cur), patch, ptype)
        if sub == "status":
            st = body.get("status") if isinstance(body, dict) else None
            new = {**cur, "status": {**(cur.get("status") or {}),
                                     **{k: v for k, v in (st or {}).items() if k in _STATUS_FIELDS and
                                        k != "currentCPUUtilizationPercentage"}}}
            if isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion"):
                new["metadata"] = {**cur["metadata"], "resourceVersion": body["metadata"]["resourceVersion"]}
        else:
            new = to_v2(body, cur)
            new["metadata"].setdefault("name", name)
            new["metadata"].setdefault("namespace", ns)
        warnings = []
        out = await reg.update(PLURAL, new, ns, name, subresource=sub, user=user, warnings=warnings,
                               field_manager=A._field_manager(request), field_validation=A._field_validation(request))
        return A.json_response(to_v1(out), 200, warnings)
    raise E.method_not_allowed()
