"""``metrics.k8s.io/v1beta1`` as metrics-server serves it: NodeMetrics (cluster) and PodMetrics
(namespaced), get and list, ``labelSelector`` / ``fieldSelector`` applied to the Nodes and Pods
themselves. Usage comes from :class:`skiff.controller.metrics.MetricsScraper`.

One :class:`MetricsAPI` per registry (:func:`metrics_for`): the API server answers HTTP with it
and the HPA controller, in the same process, reads the same PodMetrics objects from it.
"""
from __future__ import annotations

import time
from typing import Any

from skiff.api import errors as E
from skiff.api.timefmt import go_duration, rfc3339

from .metrics import MetricsScraper, Usage

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

RESOURCES = (("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True))


def api_group() -> dict:
    """The group as /apis lists it."""
    v = {"groupVersion": API_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [v], "preferredVersion": v}


def resource_list() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
            "resources": [{"name": plural, "singularName": "", "namespaced": ns, "kind": kind,
                           "verbs": ["get", "list"]} for plural, kind, ns in RESOURCES]}


def aggregated_item() -> dict:
    """The group's entry in the aggregated discovery document (apidiscovery.k8s.io)."""
    return {"metadata": {"name": GROUP, "creationTimestamp": None},
            "versions": [{"version": VERSION, "freshness": "Current", "resources": [
                {"resource": plural, "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                 "scope": "Namespaced" if ns else "Cluster", "singularResource": kind.lower(),
                 "verbs": ["get", "list"]} for plural, kind, ns in RESOURCES]}]}


# ---------------------------------------------------------------- formatting

def cpu_quantity(nanocores: int) -> str:
    return f"{max(0, int(nanocores))}n"


def memory_quantity(b: int) -> str:
    b = max(0, int(b))
    return f"{b // 1024}Ki" if b % 1024 == 0 else str(b)


def _usage(u: Usage) -> dict:
    return {"cpu": cpu_quantity(u.cpu), "memory": memory_quantity(u.memory)}


def _stamp(t: float) -> str:
    return rfc3339(t)


def node_metrics(node: dict, u: Usage) -> dict:
    md = node.get("metadata") or {}
    meta: dict[str, Any] = {"name": md.get("name"), "creationTimestamp": rfc3339(time.time())}
    if md.get("labels"):
        meta["labels"] = dict(md["labels"])
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": meta,
            "timestamp": _stamp(u.timestamp), "window": go_duration(u.window), "usage": _usage(u)}


def pod_metrics(pod: dict, containers: dict[str, Usage]) -> dict:
    md = pod.get("metadata") or {}
    meta: dict[str, Any] = {"name": md.get("name"), "namespace": md.get("namespace") or "default",
                            "creationTimestamp": rfc3339(time.time())}
    if md.get("labels"):
        meta["labels"] = dict(md["labels"])
    first = next(iter(containers.values()))
    # the pod's containers in its spec's order
    order = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    names = [n for n in order if n in containers] + [n for n in containers if n not in order]
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": meta,
            "timestamp": _stamp(first.timestamp), "window": go_duration(first.window),
            "containers": [{"name": n, "usage": _usage(containers[n])} for n in names]}


def _list(kind: str, items: list) -> dict:
    return {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {}, "items": items}


# ---------------------------------------------------------------- the API

class MetricsAPI:
    def __init__(self, registry, scraper: MetricsScraper):
        self.registry, self.scraper = registry, scraper

    async def node_metrics(self, name: str | None = None, label_selector: str | None = None,
                           field_selector: str | None = None) -> dict:
        reg = self.registry
        if name is not None:
            try:
                node = await reg.get("nodes", name)
            except E.APIError as e:
                if e.code == 404:
                    raise E.not_found("nodemetrics", name, GROUP) from None
                raise
            usage, _ = await self.scraper.current()
            if name not in usage:
                raise E.not_found("nodemetrics", name, GROUP)
            return node_metrics(node, usage[name])
        nodes = (await reg.list("nodes", label_selector=label_selector, field_selector=field_selector)).get("items") or []
        usage, _ = await self.scraper.current()
        return _list("NodeMetrics", [node_metrics(n, usage[n["metadata"]["name"]]) for n in nodes
                                     if n["metadata"]["name"] in usage])

    async def pod_metrics(self, namespace: str | None, name: str | None = None,
                          label_selector: str | None = None, field_selector: str | None = None) -> dict:
        reg = self.registry
        if name is not None:
            try:
                pod = await reg.get("pods", name, namespace)
            except E.APIError as e:
                if e.code == 404:
                    raise E.not_found("podmetrics", f"{namespace}/{name}", GROUP) from None
                raise
            _, usage = await self.scraper.current()
            got = usage.get((namespace, name))
            if not got:
                raise E.not_found("podmetrics", f"{namespace}/{name}", GROUP)
            return pod_metrics(pod, got)
        pods = (await reg.list("pods", namespace, label_selector=label_selector,
                               field_selector=field_selector)).get("items") or []
        live = [p for p in pods if (p.get("spec") or {}).get("nodeName")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        if not live:
            return _list("PodMetrics", [])
        _, usage = await self.scraper.current()
        items = []
        for p in live:
            md = p["metadata"]
            got = usage.get((md.get("namespace") or "default", md["name"]))
            if got:
                items.append(pod_metrics(p, got))
        return _list("PodMetrics", items)

    async def handle(self, request, version: str, rest: list[str], user) -> Any:
        """/apis/metrics.k8s.io/<version>/<rest...> -> a JSON-able document (a web.Response for a
        Table), or APIError."""
        if version != VERSION:
            raise E.path_not_found()
        if request.method != "GET":
            raise E.method_not_allowed()
        if not rest:
            return resource_list()
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if rest[0] not in ("nodes", "pods") or len(rest) > 2 or (rest[0] == "nodes" and ns is not None):
            raise E.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        if name is not None and rest[0] == "pods" and ns is None:
            raise E.path_not_found()
        verb = "get" if name else "list"
        if not user.is_master:
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            raise E.forbidden(rest[0], name, f'User "{user.name}" cannot {verb} resource "{rest[0]}" '
                                             f'in API group "{GROUP}" {scope}', GROUP)
        q = request.query
        if rest[0] == "nodes":
            doc = await self.node_metrics(name, q.get("labelSelector"), q.get("fieldSelector"))
        else:
            doc = await self.pod_metrics(ns, name, q.get("labelSelector"), q.get("fieldSelector"))
        from skiff.api import tables as T
        tv = T.table_version(request.headers.get("Accept"))
        if tv is None:
            return doc
        from aiohttp import web
        items = doc["items"] if "items" in doc else [doc]
        body = metrics_table(items, f"meta.k8s.io/{tv}")
        import json
        return web.Response(body=json.dumps(body, separators=(",", ":")).encode(),
                            headers={"Content-Type": T.TABLE_CONTENT_TYPE.replace("v=v1", f"v={tv}")})


def metrics_table(items: list[dict], api_version: str) -> dict:
    """NAME CPU MEMORY WINDOW, as metrics-server prints its objects (a pod's usage summed over
    its containers)."""
    from skiff.agent.quantity import parse_quantity
    from skiff.api import tables as T
    rows = []
    for m in items:
        usages = [m["usage"]] if "usage" in m else [c["usage"] for c in m.get("containers") or []]
        cpu = sum(int(parse_quantity(u["cpu"]) * 10**9) for u in usages)
        mem = sum(int(parse_quantity(u["memory"])) for u in usages)
        rows.append({"cells": [m["metadata"]["name"], cpu_quantity(cpu), memory_quantity(mem), m["window"]],
                     "object": T.partial_metadata(m, api_version)})
    cols = [T.NAME_COLUMN, T._col("CPU", "CPU usage"), T._col("Memory", "Memory usage"),
            T._col("Window", "Interval the usage was measured over")]
    return {"kind": "Table", "apiVersion": api_version, "metadata": {}, "columnDefinitions": cols, "rows": rows}


def metrics_for(registry, *, session=None, headers=None, **scraper_options) -> MetricsAPI:
    """The registry's MetricsAPI, made at the first call (by the API server, which gives the
    agents' session and credentials; later callers such as the HPA controller get the same)."""
    api = getattr(registry, "_skiff_metrics_api", None)
    if api is None:
        if session is None or headers is None:
            raise E.APIError(503, "ServiceUnavailable", "the metrics API is not available (no API server "
                                                        "to reach the agents)")

        async def list_nodes() -> list[dict]:
            return (await registry.list("nodes")).get("items") or []
        api = MetricsAPI(registry, MetricsScraper(list_nodes, session, headers, **scraper_options))
        registry._skiff_metrics_api = api
    return api


async def close_metrics(registry) -> None:
    api = getattr(registry, "_skiff_metrics_api", None)
    if api is not None:
        registry._skiff_metrics_api = None
        await api.scraper.close()
