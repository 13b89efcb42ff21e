"""The HorizontalPodAutoscaler controller (Kubernetes' pkg/controller/podautoscaler, in small).

Every ``sync_period`` seconds (15 s, --horizontal-pod-autoscaler-sync-period) and whenever an
autoscaler's spec changes, for each autoscaler:

1. read the target's ``/scale`` subresource (any resource serving it: deployments,
   replicasets, statefulsets when registered): current replicas and the pods' selector;
2. for each metric, a proposal from the pods' usage (metrics.k8s.io PodMetrics, the very
   objects ``kubectl top`` shows, read in process from :mod:`skiff.controller.metrics_api`, or
   over HTTP when the controller runs with an HTTP client) and requests
   (:mod:`skiff.controller.hpa_calc`); the largest wins;
3. min/max replicas, stabilization and rate limits (``behavior``, or the 5 minute downscale
   stabilisation without it);
4. a new size through ``/scale`` (event SuccessfulRescale "New size: N; reason: ..."), and the
   status: currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, and the conditions
   AbleToScale, ScalingActive, ScalingLimited with Kubernetes' reasons and messages.

Nothing runs while no HorizontalPodAutoscaler exists: the controller watches only them, and
lists pods and reads metrics only for an autoscaler it syncs.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any
from urllib.parse import urlencode

from skiff.api.errors import APIError
from skiff.api.informer import Informer, key_of
from skiff.api.resources import RESOURCES, resource_for_kind
from skiff.api.timefmt import rfc3339
from skiff.api.validation_hpa import scale_down_rules, scale_up_rules
from skiff.controller import hpa_calc as C
from skiff.controller.metrics import parse_time
from skiff.controller.workqueue import QueueController, WorkQueue
from skiff.controller.workloads.shared import SharedInformers

__all__ = ["HPAController", "PLURAL"]

log = logging.getLogger("skiff.hpa")

PLURAL = "horizontalpodautoscalers"
SYNC_PERIOD = 15.0


def milli(q: Any) -> int:
    """A quantity's MilliValue (rounded up, as resource.Quantity.MilliValue)."""
    from skiff.agent.quantity import parse_quantity
    return int(math.ceil(parse_quantity(q) * 1000))


def milli_quantity(v: int) -> str:
    """NewMilliQuantity(v, DecimalSI) printed: 250m, 1, 10485760."""
    return str(v // 1000) if v % 1000 == 0 else f"{v}m"


class MetricsSource:
    """PodMetrics of a namespace and selector: in process from the registry's metrics API, or
    over HTTP (``GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods``)."""

    def __init__(self, client):
        self.client = client

    async def pod_metrics(self, namespace: str, selector: str) -> list[dict]:
        reg = getattr(self.client, "registry", None)
        if reg is not None:
            from skiff.controller.metrics_api import metrics_for
            lst = await metrics_for(reg).pod_metrics(namespace, None, selector or None)
        else:
            q = urlencode({"labelSelector": selector}) if selector else ""
            lst = await self.client.request(
                "GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods" + (f"?{q}" if q else ""))
        return (lst or {}).get("items") or []


def _condition(status: dict, typ: str, st: str, reason: str, message: str, now: str) -> None:
    conds = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == typ:
            if c.get("status") != st:
                c["lastTransitionTime"] = now
            c.update(status=st, reason=reason, message=message)
            return
    conds.append({"type": typ, "status": st, "lastTransitionTime": now, "reason": reason, "message": message})


def _ready(pod: dict) -> tuple[str | None, float | None]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status"), parse_time(c.get("lastTransitionTime"))
    return None, None


def pod_samples(pods: list[dict], metrics: list[dict], resource: str, container: str | None) -> list[C.PodSample]:
    """The pods as hpa_calc sees them: requests from their spec, usage from their PodMetrics."""
    by_name = {(m.get("metadata") or {}).get("name"): m for m in metrics}
    out = []
    for p in pods:
        md, spec, st = p.get("metadata") or {}, p.get("spec") or {}, p.get("status") or {}
        name = md.get("name")
        s = C.PodSample(name, phase=st.get("phase") or "Pending", deleting=bool(md.get("deletionTimestamp")))
        s.ready, s.ready_since = _ready(p)
        s.start = parse_time(st.get("startTime"))
        total, missing = 0, ""
        for c in spec.get("containers") or []:
            if container and c.get("name") != container:
                continue
            q = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if q is None:
                missing = missing or c.get("name")
                continue
            total += milli(q)
        s.request, s.missing_request = (None, missing) if missing else (total, "")
        m = by_name.get(name)
        if m is not None:
            used, found = 0, False
            for c in m.get("containers") or []:
                if container and c.get("name") != container:
                    continue
                q = (c.get("usage") or {}).get(resource)
                if q is not None:
                    used += milli(q)
                    found = True
            if found:
                s.usage = used
                s.timestamp = parse_time(m.get("timestamp")) or 0.0
                w = m.get("window") or "0s"
                s.window = _go_seconds(w)
        out.append(s)
    return out


def _go_seconds(d: str) -> float:
    """A Go duration string (15s, 1m0.5s, 1.002s) in seconds."""
    total, num = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    i = 0
    while i < len(d):
        ch = d[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = d[i:i + 2] if d[i:i + 2] in units else ch
        try:
            total += float(num) * units.get(unit, 0.0)
        except ValueError:
            return 0.0
        num = ""
        i += len(unit)
    return total


def _behavior(spec: dict) -> dict | None:
    """The spec's behavior with every default filled in (None without one)."""
    b = spec.get("behavior")
    if not isinstance(b, dict):
        return None
    return {"scaleUp": scale_up_rules(b.get("scaleUp")), "scaleDown": scale_down_rules(b.get("scaleDown"))}


class _MetricFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class HPAController(QueueController):
    def __init__(self, client, *, sync_period: float = SYNC_PERIOD, workers: int = 2,
                 shared: SharedInformers | None = None, metrics: MetricsSource | None = None, events=None):
        self.client = client
        self.sync_period = sync_period
        self.workers = workers
        self.shared = shared or SharedInformers()
        self.metrics = metrics or MetricsSource(client)
        self.queue = WorkQueue("horizontalpodautoscaler")
        self.hpas: Informer | None = None
        self.history: dict[str, tuple[str, C.History]] = {}
        self._events = events
        self._task: asyncio.Task | None = None

    @property
    def events(self):
        if self._events is None:
            from skiff.controller.events import EventRecorder
            self._events = EventRecorder(self.client, "horizontal-pod-autoscaler")
        return self._events

    async def start(self) -> None:
        self.hpas = await self.shared.acquire(self.client, PLURAL)
        self.hpas.add_handler(self._on_hpa)
        for obj in self.hpas.list():
            self.queue.add(key_of(obj))
        self.start_workers("hpa-workers")

    async def stop(self) -> None:
        await self.stop_workers()
        if self.hpas is not None:
            self.hpas.remove_handler(self._on_hpa)
            await self.shared.release(self.client, PLURAL)
        if self._events is not None and hasattr(self._events, "close"):
            await self._events.close()

    def _on_hpa(self, typ: str, obj: dict, old: dict | None) -> None:
        key = key_of(obj)
        if typ == "DELETED":
            self.history.pop(key, None)
            return
        if old is not None and (old.get("metadata") or {}).get("generation") == (obj.get("metadata") or {}).get("generation"):
            return          # our own status write, or metadata only: the periodic sync sees it
        self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        hpa = self.hpas.get(key) if self.hpas is not None else None
        if hpa is None:
            self.history.pop(key, None)
            return None
        try:
            await self.sync(hpa)
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                return 0.0      # a stale status write: again, at once
            raise
        return self.sync_period

    def _history(self, hpa: dict) -> C.History:
        key, uid = key_of(hpa), (hpa.get("metadata") or {}).get("uid") or ""
        cur = self.history.get(key)
        if cur is None or cur[0] != uid:
            cur = self.history[key] = (uid, C.History())
        return cur[1]

    # ------------------------------------------------------------------ one sync
    async def sync(self, hpa: dict, now: float | None = None) -> dict:
        """One reconcileAutoscaler; returns the status written."""
        now = time.time() if now is None else now
        stamp = rfc3339(now)
        md, spec = hpa["metadata"], hpa.get("spec") or {}
        ns, name = md.get("namespace") or "default", md["name"]
        old_status = hpa.get("status") or {}
        status: dict = {"conditions": [dict(c) for c in old_status.get("conditions") or []]}
        if old_status.get("lastScaleTime"):
            status["lastScaleTime"] = old_status["lastScaleTime"]
        ref = spec.get("scaleTargetRef") or {}
        h = self._history(hpa)

        scale, r = None, None
        try:
            scale, r = await self._get_scale(ns, ref)
        except APIError as e:
            msg = e.message
            self.events.record(hpa, "Warning", "FailedGetScale", msg)
            _condition(status, "AbleToScale", "False", "FailedGetScale",
                       f"the HPA controller was unable to get the target's current scale: {msg}", stamp)
            status.update(currentReplicas=int(old_status.get("currentReplicas") or 0),
                          desiredReplicas=int(old_status.get("desiredReplicas") or 0))
            if old_status.get("currentMetrics"):
                status["currentMetrics"] = old_status["currentMetrics"]
            return await self._write_status(hpa, status)
        _condition(status, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale", stamp)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        h.record_initial(current, now)
        mn, mx = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
        desired, reason, rescale = 0, "", True
        metric_statuses: list[dict] = []
        if current == 0 and mn != 0:
            rescale = False
            _condition(status, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero", stamp)
        elif current > mx:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", mx
        elif current < mn:
            reason, desired = "Current number of replicas below Spec.MinReplicas", mn
        else:
            proposal, metric_name, metric_statuses, error = await self._compute(hpa, scale, current, status, stamp, now)
            if error is not None:
                status.update(currentReplicas=current, desiredReplicas=int(old_status.get("desiredReplicas") or 0))
                if metric_statuses:
                    status["currentMetrics"] = metric_statuses
                self.events.record(hpa, "Warning", "FailedComputeMetricsReplicas", error)
                return await self._write_status(hpa, status)
            desired = proposal
            if desired > current:
                reason = f"{metric_name} above target"
            elif desired < current:
                reason = "All metrics below target"
            behavior = _behavior(spec)
            if behavior is None:
                n = C.normalize(h, current, desired, mn, mx, now)
            else:
                n = C.normalize_with_behavior(h, behavior, current, desired, mn, mx, now)
            _condition(status, "AbleToScale", "True", n.able_reason, n.able_message, stamp)
            _condition(status, "ScalingLimited", "True" if n.limited else "False", n.limited_reason,
                       n.limited_message, stamp)
            desired = n.replicas
            rescale = desired != current
        if rescale:
            try:
                await self._set_scale(r, scale, desired)
            except APIError as e:
                self.events.record(hpa, "Warning", "FailedRescale",
                                   f"New size: {desired}; reason: {reason}; error: {e.message}")
                _condition(status, "AbleToScale", "False", "FailedUpdateScale",
                           f"the HPA controller was unable to update the target scale: {e.message}", stamp)
                status.update(currentReplicas=current, desiredReplicas=current)
                if metric_statuses:
                    status["currentMetrics"] = metric_statuses
                return await self._write_status(hpa, status)
            _condition(status, "AbleToScale", "True", "SucceededRescale",
                       f"the HPA controller was able to update the target scale to {desired}", stamp)
            self.events.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            log.info("rescaled %s/%s from %d to %d: %s", ns, name, current, desired, reason,
                     extra={"fields": {"hpa": f"{ns}/{name}", "from": current, "to": desired}})
            h.store_scale_event(_behavior(spec), current, desired, now)
            status["lastScaleTime"] = stamp
        else:
            desired = current
        status.update(currentReplicas=current, desiredReplicas=desired)
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        return await self._write_status(hpa, status)

    async def _get_scale(self, ns: str, ref: dict) -> tuple[dict, Any]:
        kind, av = ref.get("kind") or "", ref.get("apiVersion") or ""
        r = resource_for_kind(av, kind) if av else None
        if r is None:
            r = next((x for x in RESOURCES.values() if x.kind == kind and (not av or av.split("/")[0] == x.group
                                                                           or av == x.api_version)), None)
        if r is None or "scale" not in r.subresources:
            group = av.rpartition("/")[0] if "/" in av else ""
            raise APIError(404, "NotFound", f'no matches for kind "{kind}" in group "{group}"')
        return await self.client.get(r.plural, ref.get("name") or "", ns, "scale"), r

    async def _set_scale(self, r, scale: dict, replicas: int) -> None:
        new = {**scale, "spec": {**(scale.get("spec") or {}), "replicas": replicas}}
        await self.client.update(r.plural, new, "scale")

    async def _compute(self, hpa: dict, scale: dict, current: int, status: dict, stamp: str, now: float):
        """computeReplicasForMetrics: (replicas, metric name, statuses, error or None)."""
        specs = (hpa.get("spec") or {}).get("metrics") or []
        ns = hpa["metadata"].get("namespace") or "default"
        statuses: list[dict] = [{"type": ""} for _ in specs]
        replicas, metric, invalid, first = 0, "", 0, None
        selector = (scale.get("status") or {}).get("selector") or ""
        if not selector:
            self.events.record(hpa, "Warning", "SelectorRequired", "selector is required")
            _condition(status, "ScalingActive", "False", "InvalidSelector",
                       "the HPA target's scale is missing a selector", stamp)
            return -1, "", [], "selector is required"
        pods: list[dict] | None = None
        pod_metrics: list[dict] | None = None
        metrics_error: str | None = None
        for i, m in enumerate(specs):
            try:
                typ = m.get("type")
                if typ not in ("Resource", "ContainerResource"):
                    what = {"Pods": ("FailedGetPodsMetric", "failed to get pods metric value"),
                            "Object": ("FailedGetObjectMetric", "failed to get object metric value"),
                            "External": ("FailedGetExternalMetric", "failed to get external metric value")}.get(
                        typ, ("InvalidMetricSourceType", "invalid metric source type"))
                    src = m.get(typ[:1].lower() + typ[1:] if typ else "") or {}
                    mname = ((src.get("metric") or {}).get("name")) or "?"
                    raise _MetricFailure(what[0], f"{what[1]}: unable to get metric {mname}: skiff serves no "
                                                  f"custom or external metrics API")
                src = m.get("resource" if typ == "Resource" else "containerResource") or {}
                res, container = src.get("name") or "", src.get("container") if typ == "ContainerResource" else None
                target = src.get("target") or {}
                if pods is None:
                    pods = ((await self.client.list("pods", ns, label_selector=selector)).get("items")) or []
                if pod_metrics is None:
                    try:
                        pod_metrics = await self.metrics.pod_metrics(ns, selector)
                    except APIError as e:
                        pod_metrics, metrics_error = [], e.message
                reason = "FailedGetResourceMetric" if typ == "Resource" else "FailedGetContainerResourceMetric"
                util = target.get("averageUtilization")
                what = f"{res} utilization" if util is not None else f"{res} usage"
                if not pod_metrics:
                    err = metrics_error or "no metrics returned from resource metrics API"
                    raise _MetricFailure(reason, f"failed to get {what}: unable to get metrics for resource {res}: {err}")
                samples = pod_samples(pods, pod_metrics, res, container)
                if not any(s.usage is not None for s in samples) and pods:
                    raise _MetricFailure(reason, f"failed to get {what}: unable to get metrics for resource {res}: "
                                                 "no metrics returned from resource metrics API")
                cname = "container resource" if container else "resource"
                try:
                    if util is not None:
                        n, u, raw = C.resource_replicas(current, int(util), samples, res, now)
                        current_value = {"averageUtilization": u, "averageValue": milli_quantity(raw)}
                        label = f"{res} {cname} utilization (percentage of request)"
                    else:
                        n, raw = C.average_value_replicas(current, milli(target.get("averageValue") or 0) or 1,
                                                          samples, res, now)
                        current_value = {"averageValue": milli_quantity(raw)}
                        label = f"{res} {cname}"
                except C.MetricError as e:
                    raise _MetricFailure(reason, f"failed to get {what}: {e}") from None
                body = {"name": res, "current": current_value}
                if container:
                    body["container"] = container
                statuses[i] = {"type": typ, "resource" if typ == "Resource" else "containerResource": body}
                if replicas == 0 or n > replicas:
                    replicas, metric = n, label
            except _MetricFailure as f:
                self.events.record(hpa, "Warning", f.reason, str(f))
                if invalid == 0:
                    first = (f.reason, str(f))
                invalid += 1
        if specs and (invalid >= len(specs) or (invalid > 0 and replicas < current)):
            _condition(status, "ScalingActive", "False", first[0],
                       f"the HPA was unable to compute the replica count: {first[1]}", stamp)
            return -1, "", statuses, f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first[1]}"
        _condition(status, "ScalingActive", "True", "ValidMetricFound",
                   f"the HPA was able to successfully calculate a replica count from {metric}", stamp)
        return replicas, metric, statuses, None

    async def _write_status(self, hpa: dict, status: dict) -> dict:
        gen = (hpa.get("metadata") or {}).get("generation")
        if gen is not None:
            status["observedGeneration"] = gen
        if not status.get("conditions"):
            status.pop("conditions", None)
        if status == (hpa.get("status") or {}):
            return status
        new = {**hpa, "metadata": dict(hpa["metadata"]), "status": status}   # the informer's object stays as it is
        await self.client.update(PLURAL, new, "status")
        return status
