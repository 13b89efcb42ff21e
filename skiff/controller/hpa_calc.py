"""The HorizontalPodAutoscaler's arithmetic, as Kubernetes' pkg/controller/podautoscaler does it
(no I/O: every input is an argument, time included).

- :func:`resource_replicas`: desired = ceil(ready pods x usage ratio), the ratio being the
  pods' average utilization (usage / requests, percent) over the target, left as it is within
  the tolerance (0.1); pods are grouped first (deleted/failed ignored, pending or not-yet-ready
  as unready, pods with no metrics as missing), and when some are missing or unready the ratio
  is computed again with them at 0% (scale up) or at 100% / the target (scale down, missing
  ones), and the proposal dropped if that changes its direction (groupPods,
  GetResourceReplicas, calcPlainMetricReplicas).
- :func:`normalize` (no ``behavior``): the highest recommendation of the last 5 minutes
  (downscale stabilisation), then min/max and the scale-up limit max(2 x current, 4).
- :func:`normalize_with_behavior`: the stabilization windows of scaleUp/scaleDown, then the
  policies' rate limits over their periods (selectPolicy Max/Min/Disabled).

Quantities are milli-units (millicores, millibytes) as the controller's MilliValue is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS = 30.0
DOWNSCALE_STABILIZATION = 300.0
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0


class MetricError(Exception):
    """A metric cannot give a replica count (the message is Kubernetes')."""


@dataclass
class PodSample:
    """What the controller knows of one pod for one metric."""
    name: str
    phase: str = "Running"
    deleting: bool = False
    ready: str | None = "True"          # the Ready condition's status, None if there is none
    ready_since: float | None = None    # its lastTransitionTime
    start: float | None = None          # status.startTime
    request: int | None = None          # summed request of the resource (milli), None if a container has none
    missing_request: str = ""           # the first container without a request
    usage: int | None = None            # the metric (milli), None if there is none
    timestamp: float = 0.0              # the metric's timestamp and window
    window: float = 0.0


def group_pods(pods: list[PodSample], cpu: bool, now: float) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready, missing, ignored), as groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for p in pods:
        if p.deleting or p.phase == "Failed":
            ignored.add(p.name)
            continue
        if p.phase == "Pending":
            unready.add(p.name)
            continue
        if p.usage is None:
            missing.add(p.name)
            continue
        if cpu:
            if p.ready is None or p.start is None:
                is_unready = True
            elif p.start + CPU_INITIALIZATION_PERIOD > now:
                is_unready = p.ready == "False" or p.timestamp < (p.ready_since or 0.0) + p.window
            else:
                is_unready = p.ready == "False" and p.start + DELAY_OF_INITIAL_READINESS > (p.ready_since or 0.0)
            if is_unready:
                unready.add(p.name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, average raw usage) over the pods that have a request
    (GetResourceUtilizationRatio)."""
    total = req = n = 0
    for name, v in metrics.items():
        if name not in requests:
            continue
        total += v
        req += requests[name]
        n += 1
    if req == 0:
        raise MetricError("no metrics returned matched known pods")
    util = (total * 100) // req
    return util / target, util, total // n


def _requests(pods: list[PodSample], resource: str) -> dict[str, int]:
    out = {}
    for p in pods:
        if p.request is None:
            raise MetricError(f"missing request for {resource} in container {p.missing_request} of Pod {p.name}")
        out[p.name] = p.request
    return out


def _split(pods: list[PodSample], cpu: bool, now: float):
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, cpu, now)
    metrics = {p.name: p.usage for p in pods
               if p.usage is not None and p.name not in ignored and p.name not in unready}
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return ready, unready, missing, metrics


def resource_replicas(current: int, target_utilization: int, pods: list[PodSample], resource: str,
                      now: float, tolerance: float = TOLERANCE) -> tuple[int, int, int]:
    """(replicas, utilization %, average raw usage in milli-units) for a Utilization target."""
    ready, unready, missing, metrics = _split(pods, resource == "cpu", now)
    requests = _requests(pods, resource)
    ratio, util, raw = utilization_ratio(metrics, requests, target_utilization)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, util, raw
        return math.ceil(ratio * ready), util, raw
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                metrics[name] = requests[name] * fallback // 100
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = 0
    if up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, util, raw
    n = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
        return current, util, raw
    return n, util, raw


def average_value_replicas(current: int, target: int, pods: list[PodSample], resource: str, now: float,
                           tolerance: float = TOLERANCE) -> tuple[int, int]:
    """(replicas, average usage) for an AverageValue target (calcPlainMetricReplicas)."""
    ready, unready, missing, metrics = _split(pods, resource == "cpu", now)

    def ratio_of(m: dict[str, int]) -> tuple[float, int]:
        usage = sum(m.values()) // len(m)
        return usage / target, usage
    ratio, usage = ratio_of(metrics)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, usage
        return math.ceil(ratio * ready), usage
    if missing:
        for name in missing:
            metrics[name] = target if ratio < 1.0 else 0
    if up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio, _ = ratio_of(metrics)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, usage
    n = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
        return current, usage
    return n, usage


# ---------------------------------------------------------------- normalization

@dataclass
class History:
    """One autoscaler's memory: timestamped recommendations and (with behavior) scale events."""
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)     # (time, replicas added)
    down_events: list[tuple[float, int]] = field(default_factory=list)   # (time, replicas removed)

    def record_initial(self, current: int, now: float) -> None:
        if not self.recommendations:
            self.recommendations.append((now, current))

    def store_scale_event(self, behavior: dict | None, old: int, new: int, now: float) -> None:
        if behavior is None:
            return
        if new > old:
            longest = max((p.get("periodSeconds", 0) for p in (behavior.get("scaleUp") or {}).get("policies") or []), default=0)
            self.up_events = [e for e in self.up_events if e[0] > now - longest] + [(now, new - old)]
        elif new < old:
            longest = max((p.get("periodSeconds", 0) for p in (behavior.get("scaleDown") or {}).get("policies") or []), default=0)
            self.down_events = [e for e in self.down_events if e[0] > now - longest] + [(now, old - new)]


def _put(recs: list[tuple[float, int]], drop_before: float, rec: tuple[float, int]) -> None:
    """Replace one obsolete sample with ``rec``, or append it."""
    for i, (t, _) in enumerate(recs):
        if t < drop_before:
            recs[i] = rec
            return
    recs.append(rec)


def scale_up_limit(current: int) -> int:
    return int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))


def _within(current: int, desired: int, mn: int, mx: int) -> tuple[int, str, str]:
    """convertDesiredReplicasWithRules."""
    limit = scale_up_limit(current)
    if mx > limit:
        top, cond, why = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    else:
        top, cond, why = mx, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if desired < mn:
        return mn, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > top:
        return top, cond, why
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


@dataclass
class Normalized:
    replicas: int
    able_reason: str          # AbleToScale (True) reason and message
    able_message: str
    limited: bool             # ScalingLimited status
    limited_reason: str
    limited_message: str


_READY = ("ReadyForNewScale", "recommended size matches current size")


def normalize(h: History, current: int, desired: int, mn: int, mx: int, now: float,
              window: float = DOWNSCALE_STABILIZATION) -> Normalized:
    """normalizeDesiredReplicas (an HPA without behavior)."""
    best = desired
    cutoff = now - window
    for t, r in h.recommendations:
        if t >= cutoff and r > best:
            best = r
    _put(h.recommendations, cutoff, (now, desired))
    able = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest "
                                   "recent recommendation") if best != desired else _READY
    out, cond, why = _within(current, best, mn, mx)
    return Normalized(out, *able, out != best, cond, why)


def _changed(events: list[tuple[float, int]], period: int, now: float) -> int:
    return sum(n for t, n in events if t > now - period)


def _up_limit(current: int, h: History, rules: dict, now: float) -> int:
    sp = rules.get("selectPolicy") or "Max"
    if sp == "Disabled":
        return current
    pick, result = (min, 2**31 - 1) if sp == "Min" else (max, -(2**31))
    for p in rules.get("policies") or []:
        start = current - _changed(h.up_events, p["periodSeconds"], now) + _changed(h.down_events, p["periodSeconds"], now)
        proposed = start + p["value"] if p["type"] == "Pods" else math.ceil(start * (1 + p["value"] / 100))
        result = pick(result, proposed)
    return result


def _down_limit(current: int, h: History, rules: dict, now: float) -> int:
    sp = rules.get("selectPolicy") or "Max"
    if sp == "Disabled":
        return current
    # scaling down, the smallest change ("Min") is the highest count
    pick, result = (max, -(2**31)) if sp == "Min" else (min, 2**31 - 1)
    for p in rules.get("policies") or []:
        start = current - _changed(h.up_events, p["periodSeconds"], now) + _changed(h.down_events, p["periodSeconds"], now)
        proposed = start - p["value"] if p["type"] == "Pods" else int(start * (1 - p["value"] / 100))
        result = pick(result, proposed)
    return result


def normalize_with_behavior(h: History, behavior: dict, current: int, desired: int, mn: int, mx: int,
                            now: float) -> Normalized:
    """normalizeDesiredReplicasWithBehaviors (``behavior`` defaulted: both rules complete)."""
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    up_w, down_w = up.get("stabilizationWindowSeconds") or 0, down.get("stabilizationWindowSeconds") or 0
    if desired >= current:
        delay, better = up_w, min
        able = ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest "
                                     "recent recommendation")
    else:
        delay, better = down_w, max
        able = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest "
                                       "recent recommendation")
    rec = desired
    cutoff, obsolete = now - delay, now - max(up_w, down_w)
    for t, r in h.recommendations:
        if t > cutoff:
            rec = better(r, rec)
    _put(h.recommendations, obsolete, (now, desired))
    if rec == desired:
        able = _READY
    out, cond, why = rec, "DesiredWithinRange", "the desired count is within the acceptable range"
    if rec > current:
        limit = max(_up_limit(current, h, up, now), current)
        if mx > limit:
            top, c, w = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
        else:
            top, c, w = mx, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        if rec > top:
            out, cond, why = top, c, w
    elif rec < current:
        limit = min(_down_limit(current, h, down, now), current)
        if mn < limit:
            bottom, c, w = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            bottom, c, w = mn, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        if rec < bottom:
            out, cond, why = bottom, c, w
    return Normalized(out, *able, out != rec, cond, why)
