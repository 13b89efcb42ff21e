"""The rules of batch/v1 Jobs beyond their schema (Kubernetes' ValidateJob and
ValidateJobUpdate), called by :func:`skiff.api.validation.validate` and
:func:`skiff.api.validation.validate_update`:

- parallelism, completions, activeDeadlineSeconds, backoffLimit, ttlSecondsAfterFinished >= 0;
- completionMode NonIndexed or Indexed (then completions is required, parallelism at most
  100 000), podReplacementPolicy
  TerminatingOrFailed or Failed, managedBy a domain-prefixed path;
- backoffLimitPerIndex and successPolicy only for Indexed Jobs; maxFailedIndexes only with
  backoffLimitPerIndex and at most completions; successPolicy rules (at most 20) with
  succeededIndexes (ordered intervals below completions) and/or succeededCount;
- podFailurePolicy (validatePodFailurePolicy): restartPolicy Never, podReplacementPolicy Failed, at
  most 20 rules, each with an action (FailJob, Ignore, Count; FailIndex needs
  backoffLimitPerIndex) and one of onExitCodes (a template container's name, In/NotIn, 1 to 255
  ordered, unique values, no 0 with In) and onPodConditions (a type, status True/False/Unknown);
- the template: restartPolicy Never or OnFailure, valid labels, and every pod rule (under
  ``spec.template.spec``, warnings too);
- the selector matches the template's labels; with manualSelector it is required, otherwise it
  and the template's labels must be the generated ones (ValidateGeneratedSelector: checked once
  the object has a uid, i.e. on the server after admission, not in skiffctl's local check);
- on update: selector, completions, completionMode, podFailurePolicy, backoffLimitPerIndex,
  successPolicy and managedBy are immutable, and so is the template, except the scheduling
  directives (labels, annotations, nodeSelector, tolerations, node affinity, schedulingGates) of a
  suspended Job that has never started.
"""
from __future__ import annotations

from typing import Any

from skiff.api.indexes import parse_intervals
from skiff.api.jsontree import json_copy
from skiff.api.validation import (INVALID, LABEL_VALUE, NOT_SUPPORTED, POD_RULES, REQUIRED, Warning,
                                  _cause, _check_pod, _invalid, _LABEL_VALUE_WHY, _label_selector, _prefixed,
                                  _qualified_name_error, _short, _unsupported, dns1123_subdomain_error,
                                  go_label_selector, json_path, selector_matches_template)

__all__ = ["check_job", "check_job_update", "CONTROLLER_UID_LABEL", "JOB_NAME_LABEL",
           "LEGACY_CONTROLLER_UID_LABEL", "LEGACY_JOB_NAME_LABEL", "DEFAULT_MANAGER"]

# the labels the API server puts on a Job's pod template (and selects by) unless manualSelector
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
DEFAULT_MANAGER = "kubernetes.io/job-controller"

_COUNTS = ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished")
_RESTART_POLICIES = '"OnFailure", "Never"'
_REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
MAX_INDEXED_PARALLELISM = 100_000
_IMMUTABLE = ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "successPolicy", "managedBy")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_job(obj: dict) -> tuple[list[dict], list[Warning]]:
    """The causes and warnings of a Job's own rules."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [], []
    causes: list[dict] = []
    warnings: list[Warning] = []
    for f in _COUNTS:
        v = spec.get(f)
        if _int(v) and v < 0:
            causes.append(_invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    mode = spec.get("completionMode")
    if mode == "Indexed":
        if spec.get("completions") is None:
            causes.append(_cause("spec.completions", REQUIRED, "Required value: when completion mode is Indexed"))
        par = spec.get("parallelism")
        if _int(par) and par > MAX_INDEXED_PARALLELISM:
            causes.append(_invalid("spec.parallelism", par, f"must be less than or equal to "
                                   f"{MAX_INDEXED_PARALLELISM} when completion mode is Indexed"))
    elif mode is not None and mode != "NonIndexed":
        causes.append(_cause("spec.completionMode", NOT_SUPPORTED,
                             f'Unsupported value: {_short(mode)}: supported values: "NonIndexed", "Indexed"'))
    policy = spec.get("podReplacementPolicy")
    if policy is not None and policy not in _REPLACEMENT_POLICIES:
        causes.append(_cause("spec.podReplacementPolicy", NOT_SUPPORTED,
                             f"Unsupported value: {_short(policy)}: supported values: "
                             + ", ".join(f'"{p}"' for p in _REPLACEMENT_POLICIES)))
    causes += _check_managed_by(spec.get("managedBy"))
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
    tlabels = tmeta.get("labels") if isinstance(tmeta.get("labels"), dict) else None
    more, warns = _check_template(tmpl, tlabels)
    causes += more
    warnings += warns
    causes += _check_selector(obj, spec, tlabels)
    if isinstance(spec.get("podFailurePolicy"), dict):
        causes += _check_pod_failure_policy(spec, tmpl)
    causes += _check_per_index(spec)
    if isinstance(spec.get("successPolicy"), dict):
        causes += _check_success_policy(spec)
    return causes, warnings


def _check_per_index(spec: dict) -> list[dict]:
    causes: list[dict] = []
    per, most = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    indexed, completions = spec.get("completionMode") == "Indexed", spec.get("completions")
    for f, v in (("backoffLimitPerIndex", per), ("maxFailedIndexes", most)):
        if _int(v) and v < 0:
            causes.append(_invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    if per is not None and not indexed:
        causes.append(_invalid("spec.backoffLimitPerIndex", per, "requires indexed completion mode"))
    if most is not None:
        if per is None:
            causes.append(_cause("spec.backoffLimitPerIndex", REQUIRED,
                                 "Required value: when maxFailedIndexes is specified"))
        if _int(most) and _int(completions) and most > completions:
            causes.append(_invalid("spec.maxFailedIndexes", most, "must be less than or equal to completions"))
        if _int(most) and most > MAX_INDEXED_PARALLELISM:
            causes.append(_invalid("spec.maxFailedIndexes", most,
                                   f"must be less than or equal to {MAX_INDEXED_PARALLELISM}"))
    if per is not None and _int(completions) and completions > MAX_INDEXED_PARALLELISM:
        causes.append(_invalid("spec.completions", completions, f"must be less than or equal to "
                               f"{MAX_INDEXED_PARALLELISM} when backoffLimitPerIndex is specified"))
    return causes


def _check_success_policy(spec: dict) -> list[dict]:
    causes: list[dict] = []
    if spec.get("completionMode") != "Indexed":
        return [_invalid("spec.completionMode", spec.get("completionMode") or "NonIndexed",
                         "requires indexed completion mode")]
    rules = spec["successPolicy"].get("rules")
    if not isinstance(rules, list) or not rules:
        return [_cause("spec.successPolicy.rules", REQUIRED, "Required value: at least one rules must be specified "
                                                             "when the successPolicy is specified")]
    if len(rules) > _MAX_RULES:
        return [_cause("spec.successPolicy.rules", "FieldValueTooMany",
                       f"Too many: {len(rules)}: must have at most {_MAX_RULES} items")]
    completions = spec.get("completions") if _int(spec.get("completions")) else 0
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        path = f"spec.successPolicy.rules[{i}]"
        ixs, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if ixs is None and count is None:
            causes.append(_cause(path, REQUIRED, "Required value: at least one of succeededCount or "
                                                 "succeededIndexes must be specified"))
            continue
        total = None
        if isinstance(ixs, str):
            try:
                intervals = parse_intervals(ixs, completions)
                total = sum(b - a + 1 for a, b in intervals)
            except ValueError as e:
                causes.append(_invalid(f"{path}.succeededIndexes", ixs, f"error parsing succeededIndexes: {e}"))
        if _int(count):
            if count < 0:
                causes.append(_invalid(f"{path}.succeededCount", count, "must be greater than or equal to 0"))
            elif count > completions:
                causes.append(_invalid(f"{path}.succeededCount", count,
                                       f"must be less than or equal to {completions} (the number of completions)"))
            elif total is not None and count > total:
                causes.append(_invalid(f"{path}.succeededCount", count, f"must be less than or equal to {total} "
                                                                        "(the number of indexes in the specified "
                                                                        "succeededIndexes field)"))
    return causes


_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
_MAX_RULES, _MAX_CODES = 20, 255


def _check_pod_failure_policy(spec: dict, tmpl: dict) -> list[dict]:
    causes: list[dict] = []
    pspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    rp = pspec.get("restartPolicy")
    if rp not in (None, "Never"):
        causes.append(_invalid("spec.template.spec.restartPolicy", rp,
                               'only "Never" is supported when podFailurePolicy is specified'))
    repl = spec.get("podReplacementPolicy")
    if repl not in (None, "Failed"):
        causes.append(_cause("spec.podReplacementPolicy", NOT_SUPPORTED,
                             f'Unsupported value: {_short(repl)}: supported values: "Failed"'))
    rules = spec["podFailurePolicy"].get("rules")
    if not isinstance(rules, list):
        return causes
    if len(rules) > _MAX_RULES:
        causes.append(_cause("spec.podFailurePolicy.rules", "FieldValueTooMany",
                             f"Too many: {len(rules)}: must have at most {_MAX_RULES} items"))
        return causes
    names = {c.get("name") for g in ("initContainers", "containers") for c in pspec.get(g) or ()
             if isinstance(c, dict)}
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            causes += _check_rule(f"spec.podFailurePolicy.rules[{i}]", rule, names,
                                  spec.get("backoffLimitPerIndex") is not None)
    return causes


def _check_rule(path: str, rule: dict, names: set, per_index: bool) -> list[dict]:
    causes: list[dict] = []
    action = rule.get("action")
    if action is None:
        causes.append(_cause(f"{path}.action", REQUIRED, "Required value"))
    elif action not in _ACTIONS:
        causes.append(_cause(f"{path}.action", NOT_SUPPORTED, f"Unsupported value: {_short(action)}: supported "
                             "values: " + ", ".join(f'"{a}"' for a in _ACTIONS)))
    elif action == "FailIndex" and not per_index:
        causes.append(_invalid(f"{path}.action", action, "valid only when backoffLimitPerIndex is set"))
    codes, conds = rule.get("onExitCodes"), rule.get("onPodConditions")
    if codes is not None and conds is not None:
        causes.append(_cause(path, INVALID, "Invalid value: specifying both OnExitCodes and OnPodConditions "
                                            "is not supported"))
    elif codes is None and conds is None:
        causes.append(_cause(path, INVALID, "Invalid value: specifying one of OnExitCodes and OnPodConditions "
                                            "is required"))
    if isinstance(codes, dict):
        causes += _check_exit_codes(f"{path}.onExitCodes", codes, names)
    for j, c in enumerate(conds if isinstance(conds, list) else ()):
        if not isinstance(c, dict):
            continue
        cp = f"{path}.onPodConditions[{j}]"
        if not c.get("type"):
            causes.append(_cause(f"{cp}.type", REQUIRED, "Required value"))
        elif why := _qualified_name_error(c["type"]):
            causes.append(_invalid(f"{cp}.type", c["type"], why))
        st = c.get("status")
        if st not in (None, "True", "False", "Unknown"):
            causes.append(_cause(f"{cp}.status", NOT_SUPPORTED, f'Unsupported value: {_short(st)}: supported '
                                                                f'values: "True", "False", "Unknown"'))
    return causes


def _check_exit_codes(path: str, codes: dict, names: set) -> list[dict]:
    causes: list[dict] = []
    name = codes.get("containerName")
    if name is not None and name not in names:
        causes.append(_invalid(f"{path}.containerName", name,
                               "must be one of the container or initContainer names in the pod template"))
    op = codes.get("operator")
    if op is None:
        causes.append(_cause(f"{path}.operator", REQUIRED, "Required value"))
    elif op not in ("In", "NotIn"):
        causes.append(_cause(f"{path}.operator", NOT_SUPPORTED,
                             f'Unsupported value: {_short(op)}: supported values: "In", "NotIn"'))
    values = codes.get("values")
    if not isinstance(values, list) or not values:
        causes.append(_cause(f"{path}.values", REQUIRED, "Required value: at least one value is required"))
        return causes
    if len(values) > _MAX_CODES:
        causes.append(_cause(f"{path}.values", "FieldValueTooMany",
                             f"Too many: {len(values)}: must have at most {_MAX_CODES} items"))
        return causes
    seen: set = set()
    prev = None
    for k, v in enumerate(values):
        vp = f"{path}.values[{k}]"
        if not _int(v):
            continue
        if v in seen:
            causes.append(_cause(vp, "FieldValueDuplicate", f"Duplicate value: {v}"))
        elif prev is not None and v < prev:
            causes.append(_invalid(vp, v, "must be ordered"))
        if op == "In" and v == 0:
            causes.append(_invalid(vp, 0, "must not be 0 for the In operator"))
        seen.add(v)
        prev = v
    return causes


def _check_managed_by(v: Any) -> list[dict]:
    if not isinstance(v, str):
        return []
    if len(v) > 63:
        return [_cause("spec.managedBy", "FieldValueTooLong", "Too long: may not be more than 63 bytes")]
    host, _, path = v.partition("/")
    if not host or not path:
        return [_invalid("spec.managedBy", v, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    if why := dns1123_subdomain_error(host):
        return [_invalid("spec.managedBy", host, why)]
    return []


def _check_template(tmpl: dict, tlabels: dict | None) -> tuple[list[dict], list[Warning]]:
    """The template's labels, its pod rules and its restartPolicy."""
    causes: list[dict] = []
    warnings: list[Warning] = []
    for k, v in (tlabels or {}).items():
        f = json_path(["spec", "template", "metadata", "labels", k])
        if isinstance(k, str) and (why := _qualified_name_error(k)):
            causes.append(_invalid(f, k, why))
        if isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v)):
            causes.append(_invalid(f, v, _LABEL_VALUE_WHY))
    pspec = tmpl.get("spec")
    if not isinstance(pspec, dict):
        return causes, warnings
    fake = {"spec": pspec}
    try:
        causes += _prefixed(_check_pod(fake), "spec", "spec.template.spec")
    except (AttributeError, TypeError):
        pass        # a shape the schema reports
    more, warns = _unsupported(fake, POD_RULES)
    causes += _prefixed(more, "spec", "spec.template.spec")
    for w in warns:
        nf = "spec.template.spec" + w.field[len("spec"):]
        warnings.append(Warning(nf, str(w).replace(w.field, nf, 1)))
    rp = pspec.get("restartPolicy")
    if rp in (None, "", "Always"):
        # the pod defaults make it Always: Kubernetes says Required, not Unsupported
        causes.append(_cause("spec.template.spec.restartPolicy", REQUIRED,
                             f"Required value: valid values: {_RESTART_POLICIES}"))
    elif rp not in ("OnFailure", "Never"):
        causes.append(_cause("spec.template.spec.restartPolicy", NOT_SUPPORTED,
                             f"Unsupported value: {_short(rp)}: supported values: {_RESTART_POLICIES}"))
    return causes, warnings


def _check_selector(obj: dict, spec: dict, tlabels: dict | None) -> list[dict]:
    causes: list[dict] = []
    sel = spec.get("selector")
    manual = spec.get("manualSelector") is True
    if sel is None:
        if manual:
            causes.append(_cause("spec.selector", REQUIRED, "Required value"))
        return causes
    _label_selector(sel, "spec.selector", causes)
    if not isinstance(sel, dict) or causes:
        return causes
    causes += selector_matches_template(sel, tlabels)
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    uid, name = md.get("uid"), md.get("name")
    if manual or not uid:
        return causes
    # ValidateGeneratedSelector: the generated labels are there and the selector is the generated one
    for key, want in ((LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name),
                      (CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)):
        f = json_path(["spec", "template", "metadata", "labels", key])
        have = (tlabels or {}).get(key)
        if have is None:
            causes.append(_cause(f, REQUIRED, f"Required value: must be '{want}'"))
        elif have != want:
            causes.append(_invalid(f, have, f"must be '{want}'"))
    if sel != {"matchLabels": {CONTROLLER_UID_LABEL: uid}}:
        causes.append(_cause("spec.selector", INVALID, f"Invalid value: {go_label_selector(sel)}: "
                                                       f"`selector` not auto-generated"))
    return causes


def check_job_update(cur: dict, new: dict) -> list[dict]:
    """The causes of an update of Job ``cur`` to ``new`` (both admitted)."""
    old_spec = cur.get("spec") if isinstance(cur.get("spec"), dict) else {}
    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    causes = []
    if spec.get("selector") != old_spec.get("selector"):
        causes.append(_cause("spec.selector", INVALID, f"Invalid value: {go_label_selector(spec.get('selector'))}: "
                                                       f"field is immutable"))
    if spec.get("completions") != old_spec.get("completions"):
        causes.append(_invalid("spec.completions", spec.get("completions"), "field is immutable"))
    for f in _IMMUTABLE:
        if spec.get(f) != old_spec.get(f):
            causes.append(_invalid(f"spec.{f}", spec.get(f), "field is immutable"))
    tmpl, old = spec.get("template"), old_spec.get("template")
    if old_spec.get("suspend") is True and not (cur.get("status") or {}).get("startTime"):
        tmpl, old = _without_scheduling(tmpl), _without_scheduling(old)
    if tmpl != old:
        causes.append(_invalid("spec.template", spec.get("template"), "field is immutable"))
    return causes


def _without_scheduling(tmpl: Any) -> Any:
    """A template without what a suspended Job that never started may change."""
    if not isinstance(tmpl, dict):
        return tmpl
    t = json_copy(tmpl)
    if isinstance(t.get("metadata"), dict):
        t["metadata"].pop("labels", None)
        t["metadata"].pop("annotations", None)
    spec = t.get("spec")
    if isinstance(spec, dict):
        for f in ("nodeSelector", "tolerations", "schedulingGates"):
            spec.pop(f, None)
        aff = spec.get("affinity")
        if isinstance(aff, dict):
            aff.pop("nodeAffinity", None)
            if not aff:
                del spec["affinity"]
    return t
