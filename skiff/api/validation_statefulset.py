"""The rules and defaults of apps/v1 StatefulSets beyond their schema (Kubernetes'
ValidateStatefulSet, ValidateStatefulSetUpdate and SetDefaults_StatefulSet, 1.32), called by
:func:`skiff.api.validation.validate`, :func:`skiff.api.validation.validate_update` and the
admission defaults:

- The workload rules every apps/v1 kind shares (a non-empty selector that matches the template's
  labels, restartPolicy Always, no activeDeadlineSeconds, replicas and minReadySeconds >= 0) with
  a StatefulSet's wording; the template's pod rules are checked with the claim templates' volumes
  added (a container mounts a claim template by its name, as the pods will have it).
- podManagementPolicy OrderedReady or Parallel; updateStrategy RollingUpdate (partition >= 0;
  maxUnavailable, alpha in Kubernetes, accepted with a warning and not used) or OnDelete (no
  rollingUpdate); persistentVolumeClaimRetentionPolicy's whenDeleted and whenScaled Retain or
  Delete; ordinals.start >= 0.
- serviceName, when given, must be a DNS-1123 label: it becomes every pod's spec.subdomain (Kubernetes
  checks it only when the pods are created; skiff says so at once).
- Updates may change only replicas, ordinals, template, updateStrategy,
  persistentVolumeClaimRetentionPolicy, minReadySeconds and revisionHistoryLimit (Kubernetes'
  Forbidden message, which does not name the last).

Defaults: replicas 1, podManagementPolicy OrderedReady, updateStrategy RollingUpdate with
partition 0, revisionHistoryLimit 10, persistentVolumeClaimRetentionPolicy Retain/Retain; each
claim template apiVersion v1, kind PersistentVolumeClaim, spec.volumeMode Filesystem and
status.phase Pending (as Kubernetes' defaulters fill the embedded claims).
"""
from __future__ import annotations

import copy
from typing import Any

from skiff.api.validation import (FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, Warning, _cause, _check_workload,
                                  _invalid, _short, dns1123_label_error)

__all__ = ["check_statefulset", "check_statefulset_update", "default_statefulset"]

_DEADLINE = "spec.template.spec.activeDeadlineSeconds"
_POLICIES = ("OrderedReady", "Parallel")
_RETENTION = ("Delete", "Retain")
_UPDATABLE = ("replicas", "ordinals", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit",
              "persistentVolumeClaimRetentionPolicy")
UPDATE_FORBIDDEN = ("Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                    "are forbidden")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _claim_names(spec: dict) -> list[str]:
    out = []
    for t in spec.get("volumeClaimTemplates") or () if isinstance(spec.get("volumeClaimTemplates"), list) else ():
        name = ((t or {}).get("metadata") or {}).get("name") if isinstance(t, dict) else None
        if isinstance(name, str) and name:
            out.append(name)
    return out


def _with_claim_volumes(obj: dict) -> dict:
    """``obj`` with a persistentVolumeClaim volume per claim template in its template (as the pods
    get them), so that mounts of a claim template by name are found."""
    spec = obj["spec"]
    names = _claim_names(spec)
    tmpl = spec.get("template")
    if not names or not isinstance(tmpl, dict) or not isinstance(tmpl.get("spec"), dict):
        return obj
    out = {**obj, "spec": {**spec, "template": {**tmpl, "spec": dict(tmpl["spec"])}}}
    pspec = out["spec"]["template"]["spec"]
    vols = pspec.get("volumes") if isinstance(pspec.get("volumes"), list) else []
    have = {v.get("name") for v in vols if isinstance(v, dict)}
    pspec["volumes"] = list(vols) + [{"name": n, "persistentVolumeClaim": {"claimName": n}}
                                     for n in names if n not in have]
    return out


def check_statefulset(obj: dict) -> tuple[list[dict], list[Warning]]:
    """The causes and warnings of a StatefulSet's own rules."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [], []
    causes, warnings = _check_workload(_with_claim_volumes(obj), "StatefulSet")
    causes = [_cause(_DEADLINE, FORBIDDEN, "Forbidden: activeDeadlineSeconds in StatefulSet is not Supported")
              if c["field"] == _DEADLINE and c["reason"] == FORBIDDEN else c for c in causes]
    pmp = spec.get("podManagementPolicy")
    if pmp == "":
        causes.append(_cause("spec.podManagementPolicy", REQUIRED, "Required value"))
    elif isinstance(pmp, str) and pmp not in _POLICIES:
        causes.append(_invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy")
    if isinstance(strategy, dict):
        typ, ru = strategy.get("type"), strategy.get("rollingUpdate")
        if typ in (None, ""):
            causes.append(_cause("spec.updateStrategy", REQUIRED, "Required value"))
        elif typ == "OnDelete":
            if ru is not None:
                causes.append(_invalid("spec.updateStrategy.rollingUpdate", ru,
                                       "only allowed for updateStrategy 'RollingUpdate'"))
        elif typ == "RollingUpdate":
            if isinstance(ru, dict):
                more, warns = _check_rolling_update(ru)
                causes += more
                warnings += warns
        else:
            causes.append(_cause("spec.updateStrategy", INVALID,
                                 f"Invalid value: {_go_strategy(strategy)}: must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(policy, dict):
        for k in ("whenDeleted", "whenScaled"):
            v = policy.get(k)
            if v not in _RETENTION:
                causes.append(_cause(f"spec.persistentVolumeClaimRetentionPolicy.{k}", NOT_SUPPORTED,
                                     f"Unsupported value: {_short(v if v is not None else '')}: supported values: "
                                     + ", ".join(f'"{p}"' for p in _RETENTION)))
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict) and _int(ordinals.get("start")) and ordinals["start"] < 0:
        causes.append(_invalid("spec.ordinals.start", ordinals["start"], "must be greater than or equal to 0"))
    sel = spec.get("selector")
    if sel is None:
        causes.append(_cause("spec.selector", REQUIRED, "Required value"))
    svc = spec.get("serviceName")
    if isinstance(svc, str) and svc and (why := dns1123_label_error(svc)):
        causes.append(_invalid("spec.serviceName", svc, why))
    for i, t in enumerate(spec.get("volumeClaimTemplates") or () if isinstance(spec.get("volumeClaimTemplates"),
                                                                                list) else ()):
        name = ((t or {}).get("metadata") or {}).get("name") if isinstance(t, dict) else None
        if not name:
            causes.append(_cause(f"spec.volumeClaimTemplates[{i}].metadata.name", REQUIRED,
                                 "Required value: name or generateName is required"))
    return causes, warnings


def _go_strategy(strategy: dict) -> str:
    return "apps.StatefulSetUpdateStrategy{Type:" + _short(strategy.get("type")) + ", RollingUpdate:" + \
        ("nil" if strategy.get("rollingUpdate") is None else _short(strategy.get("rollingUpdate"))) + "}"


def _check_rolling_update(ru: dict) -> tuple[list[dict], list[Warning]]:
    causes: list[dict] = []
    warnings: list[Warning] = []
    f = "spec.updateStrategy.rollingUpdate"
    p = ru.get("partition")
    if _int(p) and p < 0:
        causes.append(_invalid(f"{f}.partition", p, "must be greater than or equal to 0"))
    mu = ru.get("maxUnavailable")
    if mu is not None:
        from skiff.api.validation import _int_or_percent
        n = _int_or_percent(mu, f"{f}.maxUnavailable", causes, True)
        if n == 0:
            causes.append(_invalid(f"{f}.maxUnavailable", mu, "must not be zero"))
        warnings.append(Warning(f"{f}.maxUnavailable",
                                f"{f}.maxUnavailable is accepted, but not supported by skiff (Kubernetes' alpha "
                                f"MaxUnavailableStatefulSet): pods are updated one at a time"))
    return causes, warnings


def check_statefulset_update(cur: dict, new: dict) -> list[dict]:
    """The causes of an update of StatefulSet ``cur`` to ``new`` (both admitted)."""
    old_spec = copy.copy(cur.get("spec") or {})
    new_spec = copy.copy(new.get("spec") or {})
    for k in _UPDATABLE:
        old_spec.pop(k, None)
        new_spec.pop(k, None)
    if old_spec == new_spec:
        return []
    return [_cause("spec", FORBIDDEN, UPDATE_FORBIDDEN)]


def default_statefulset(spec: Any) -> None:
    """SetDefaults_StatefulSet, and the pod and claim defaults of its templates."""
    if not isinstance(spec, dict):
        return
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strat = spec.get("updateStrategy")
    if strat is None:
        strat = spec["updateStrategy"] = {}
    if isinstance(strat, dict):
        if not strat.get("type"):
            strat["type"] = "RollingUpdate"
            if strat.get("rollingUpdate") is None:
                strat["rollingUpdate"] = {}
        ru = strat.get("rollingUpdate")
        if strat["type"] == "RollingUpdate" and isinstance(ru, dict):
            ru.setdefault("partition", 0)
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if policy is None:
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    if isinstance(policy, dict):
        for k in ("whenDeleted", "whenScaled"):
            if not policy.get(k):
                policy[k] = "Retain"
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        from skiff.controller.admission import _default_pod
        _default_pod(tmpl.get("spec"))
    for t in spec.get("volumeClaimTemplates") or () if isinstance(spec.get("volumeClaimTemplates"), list) else ():
        if not isinstance(t, dict):
            continue
        t.setdefault("apiVersion", "v1")
        t.setdefault("kind", "PersistentVolumeClaim")
        cs = t.get("spec")
        if cs is None:
            cs = t["spec"] = {}
        if isinstance(cs, dict) and not cs.get("volumeMode"):
            cs["volumeMode"] = "Filesystem"
        st = t.get("status")
        if st is None:
            st = t["status"] = {}
        if isinstance(st, dict) and not st.get("phase"):
            st["phase"] = "Pending"
