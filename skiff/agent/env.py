"""A container's environment, command and args as the kubelet makes them.

``env`` entries: ``value`` (with ``$(VAR)`` references to earlier entries expanded, ``$$``
for a literal ``$``) or ``valueFrom.fieldRef.fieldPath`` (metadata.name, .namespace, .uid,
.labels['k'], .annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP,
status.hostIP). ``command`` and ``args`` are expanded against the final environment.
"""
from __future__ import annotations

import re

from skiff.errors import SkiffError

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_MAP_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def expand(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _REF.sub(sub, text)


def field_value(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip, "status.hostIP": host_ip,
        "status.podIPs": pod_ip, "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    m = _MAP_FIELD.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise SkiffError(f"unsupported fieldRef fieldPath: {path}")


def container_env(pod: dict, c: dict, pod_ip: str, host_ip: str) -> list[str]:
    """The ``K=V`` strings for container ``c`` (image defaults are merged by the runtime)."""
    env: dict[str, str] = {}
    for e in c.get("env") or []:
        name = e["name"]
        if "valueFrom" in e:
            ref = (e["valueFrom"] or {}).get("fieldRef")
            if ref is None:
                raise SkiffError(f"env {name}: only valueFrom.fieldRef is supported")
            env[name] = field_value(pod, ref["fieldPath"], pod_ip, host_ip)
        else:
            env[name] = expand(str(e.get("value", "")), env)
    return [f"{k}={v}" for k, v in env.items()]


def expand_argv(words: list[str] | None, env_list: list[str]) -> list[str] | None:
    if words is None:
        return None
    env = dict(e.split("=", 1) for e in env_list)
    return [expand(str(w), env) for w in words]
