"""Admission: fill in Kubernetes' defaults, then validate.

``admit(obj, namespace_from_path=None) -> (obj, warnings)`` returns a defaulted deep copy
of ``obj`` and the validation warnings, or raises
:class:`skiff.api.validation.ValidationError`.

Defaults (as Kubernetes fills them): namespace ``default`` for namespaced kinds (or the
namespace in the request path), and for pods ``restartPolicy: Always``,
``terminationGracePeriodSeconds: 30``, ``dnsPolicy: ClusterFirst``, ``schedulerName:
default-scheduler``, ``enableServiceLinks`` is left alone; per container
``imagePullPolicy``, ``terminationMessagePath: /dev/termination-log``,
``terminationMessagePolicy: File``, ``protocol: TCP`` on ports, and probe timings.

imagePullPolicy: the issue asks for ``IfNotPresent``; that is the default here for every
image, including ``:latest`` and untagged ones (Kubernetes would choose ``Always`` for
those). Set ``LATEST_PULL_ALWAYS = True`` to get Kubernetes' behaviour.
"""
from __future__ import annotations

import copy
from typing import Any

from skiff.api.validation import (INVALID, ValidationError, Warning, _cause, kind_of, validate)

LATEST_PULL_ALWAYS = False
DEFAULT_NAMESPACE = "default"
DEFAULT_SCHEDULER = "default-scheduler"

_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def default_pull_policy(image: str | None) -> str:
    if not LATEST_PULL_ALWAYS or not image:
        return "IfNotPresent"
    ref = image.split("@", 1)
    if len(ref) == 2:  # pinned by digest
        return "IfNotPresent"
    last = ref[0].rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("imagePullPolicy", default_pull_policy(c.get("image")))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(name)
        if isinstance(probe, dict):
            for k, v in _PROBE_DEFAULTS.items():
                probe.setdefault(k, v)
            hg = probe.get("httpGet")
            if isinstance(hg, dict):
                hg.setdefault("path", "/")
                hg.setdefault("scheme", "HTTP")


def _default_pod(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            _default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict):
            v["hostPath"].setdefault("type", "")


def apply_defaults(obj: dict, namespace_from_path: str | None = None) -> dict:
    """Fill defaults in place and return ``obj``. Unknown kinds are left as they are."""
    kind = kind_of(obj)
    if kind is None:
        return obj
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if isinstance(meta, dict) and kind.namespaced and not meta.get("namespace"):
        meta["namespace"] = namespace_from_path or DEFAULT_NAMESPACE
    if kind.kind == "Pod":
        _default_pod(obj.get("spec"))
    if kind.kind == "Event":
        obj.setdefault("type", "Normal")
    return obj


def admit(obj: dict, namespace_from_path: str | None = None) -> tuple[dict, list[Warning]]:
    """Default and validate ``obj`` (not modified; a copy is returned with the warnings).

    When the request path names a namespace and the body names another, that is an error
    (as in Kubernetes)."""
    obj = copy.deepcopy(obj)
    kind = kind_of(obj)
    if kind is not None and namespace_from_path and isinstance(obj.get("metadata"), dict):
        ns = obj["metadata"].get("namespace")
        if ns and ns != namespace_from_path:
            raise ValidationError([_cause("metadata.namespace", INVALID,
                                          f'Invalid value: "{ns}": the namespace of the provided object does not '
                                          f'match the namespace sent on the request ("{namespace_from_path}")')],
                                  kind.kind, str(obj["metadata"].get("name") or ""))
    if isinstance(obj, dict):
        apply_defaults(obj, namespace_from_path)
    warnings = validate(obj)
    return obj, warnings
