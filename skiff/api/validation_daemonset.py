"""The rules of apps/v1 DaemonSets and ControllerRevisions beyond their schemas (Kubernetes'
ValidateDaemonSet, ValidateDaemonSetUpdate, ValidateControllerRevision and
ValidateControllerRevisionUpdate), called by :func:`skiff.api.validation.validate` and
:func:`skiff.api.validation.validate_update`:

- DaemonSet: the workload rules every apps/v1 kind shares (a non-empty selector that matches the
  template's labels, valid template labels, every pod rule under ``spec.template.spec``,
  restartPolicy Always, no activeDeadlineSeconds, minReadySeconds and revisionHistoryLimit >= 0);
  a RollingUpdate strategy's maxUnavailable and maxSurge are integers >= 0 or percentages <=
  100%, exactly one of them not zero (one not given counts as its default, 1 and 0, so that
  skiffctl's check before defaulting agrees with the server's). On update the selector is
  immutable.
- ControllerRevision: ``data`` is required and immutable, ``revision`` >= 0.
"""
from __future__ import annotations

from skiff.api.validation import (FORBIDDEN, INVALID, REQUIRED, Warning, _cause, _check_workload, _int_or_percent,
                                  _invalid, go_label_selector)

__all__ = ["check_daemonset", "check_daemonset_update", "check_controller_revision",
           "check_controller_revision_update"]

_RU = "spec.updateStrategy.rollingUpdate"
_DEADLINE = "spec.template.spec.activeDeadlineSeconds"


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_daemonset(obj: dict) -> tuple[list[dict], list[Warning]]:
    """The causes and warnings of a DaemonSet's own rules."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [], []
    causes, warnings = _check_workload(obj, "DaemonSet")
    # the shared rules word this one as ReplicaSet's (Forbidden); a DaemonSet's is Invalid
    causes = [_invalid(_DEADLINE, (spec.get("template") or {}).get("spec", {}).get("activeDeadlineSeconds"),
                       "activeDeadlineSeconds in DaemonSet is not Supported")
              if c["field"] == _DEADLINE and c["reason"] == FORBIDDEN else c for c in causes]
    strategy = spec.get("updateStrategy")
    if isinstance(strategy, dict) and strategy.get("type", "RollingUpdate") == "RollingUpdate" \
            and isinstance(strategy.get("rollingUpdate"), dict):
        causes += _check_rolling_update(strategy["rollingUpdate"])
    return causes, warnings


def _check_rolling_update(ru: dict) -> list[dict]:
    causes: list[dict] = []
    unavailable = _int_or_percent(ru.get("maxUnavailable", 1), f"{_RU}.maxUnavailable", causes, True)
    surge = _int_or_percent(ru.get("maxSurge", 0), f"{_RU}.maxSurge", causes, True)
    if unavailable and surge:
        causes.append(_invalid(f"{_RU}.maxSurge", ru.get("maxSurge"), "may not be set when maxUnavailable is non-zero"))
    elif not unavailable and not surge:
        causes.append(_cause(f"{_RU}.maxUnavailable", REQUIRED, "Required value: cannot be 0 when maxSurge is 0"))
    return causes


def check_daemonset_update(cur: dict, new: dict) -> list[dict]:
    """The causes of an update of DaemonSet ``cur`` to ``new`` (both admitted)."""
    old_sel = (cur.get("spec") or {}).get("selector")
    sel = (new.get("spec") or {}).get("selector")
    if sel == old_sel:
        return []
    return [_cause("spec.selector", INVALID, f"Invalid value: {go_label_selector(sel)}: field is immutable")]


def check_controller_revision(obj: dict) -> list[dict]:
    causes = []
    if obj.get("data") is None:
        causes.append(_cause("data", REQUIRED, "Required value: data is mandatory"))
    rev = obj.get("revision")
    if _int(rev) and rev < 0:
        causes.append(_invalid("revision", rev, "must be greater than or equal to 0"))
    return causes


def check_controller_revision_update(cur: dict, new: dict) -> list[dict]:
    if new.get("data") == cur.get("data"):
        return []
    return [_invalid("data", new.get("data"), "field is immutable")]
