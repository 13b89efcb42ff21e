"""A container's environment, command and args as the kubelet makes them.

``env`` entries: ``value`` (with ``$(VAR)`` references to earlier entries expanded, ``$$``
for a literal ``$``) or ``valueFrom.fieldRef.fieldPath`` (metadata.name, .namespace, .uid,
.labels['k'], .annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP,
status.hostIP), ``valueFrom.resourceFieldRef`` (limits/requests of cpu, memory,
ephemeral-storage, with ``divisor``; a missing limit is the node's allocatable, as the kubelet
has it), ``valueFrom.configMapKeyRef`` / ``valueFrom.secretKeyRef`` (``optional``);
``envFrom`` (``configMapRef`` / ``secretRef``, ``prefix``, ``optional``) comes first and
``env`` overrides it. ``command`` and ``args`` are expanded against the final environment.

ConfigMaps and Secrets are passed in as dicts (name -> object, or None when it does not
exist); ``fetch_refs`` gets them through the agent's client. A missing object or key that
is not optional raises ConfigError, whose message is the kubelet's and whose ``reason`` is
the container's waiting reason (CreateContainerConfigError).

The files of configMap, secret, downwardAPI and projected volumes are made in ``volumefiles``.
"""
from __future__ import annotations

import base64
import math
import re

from skiff.errors import SkiffError


class ConfigError(SkiffError):
    """A container's configuration cannot be made (a missing ConfigMap, Secret or key)."""

    def __init__(self, message: str, reason: str = "CreateContainerConfigError"):
        super().__init__(message)
        self.reason = reason


KIND_WORD = {"configmaps": "configmap", "secrets": "secret"}
KIND_NAME = {"configmaps": "ConfigMap", "secrets": "Secret"}

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


def container_spec(pod: dict, name: str) -> dict | None:
    """The pod's container (or init container) of that name."""
    spec = pod.get("spec") or {}
    return next((c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                 if c.get("name") == name), None)


def field_path(pod: dict, name: str) -> str:
    """The fieldPath an event about container ``name`` names (``spec.initContainers{x}`` for an
    init container)."""
    spec = pod.get("spec") or {}
    group = "containers"
    for g in ("initContainers", "ephemeralContainers"):
        if any(c.get("name") == name for c in spec.get(g) or []):
            group = g
    return f"spec.{group}{{{name}}}"


def is_sidecar(c: dict) -> bool:
    """An init container that keeps running beside the others (restartPolicy Always)."""
    return c.get("restartPolicy") == "Always"


def resource_value(pod: dict, c: dict, ref: dict, allocatable: dict | None = None) -> str:
    """A resourceFieldRef's value, as the kubelet computes it: the container's limit (the
    node's allocatable when it has none) or request (0 when it has none), divided by
    ``divisor`` (default 1) and rounded up; cpu in cores (or millicores with divisor 1m)."""
    from .quantity import parse_quantity
    cname = ref.get("containerName") or c.get("name")
    target = container_spec(pod, cname)
    if target is None:
        raise ConfigError(f"container {cname} not found")
    resource = str(ref.get("resource", ""))
    kind, _, rname = resource.partition(".")
    res = target.get("resources") or {}
    if kind == "limits" and rname in ("cpu", "memory", "ephemeral-storage"):
        q = (res.get("limits") or {}).get(rname)
        if q is None:
            if allocatable is None:
                from .node import capacity
                allocatable = capacity()
            q = allocatable.get(rname, 0)
    elif kind == "requests" and rname in ("cpu", "memory", "ephemeral-storage"):
        q = (res.get("requests") or {}).get(rname, (res.get("limits") or {}).get(rname, 0))
    else:
        raise ConfigError(f"unsupported container resource: {resource!r}")
    try:
        divisor = parse_quantity(ref.get("divisor") or "1")
        value = parse_quantity(q)
    except SkiffError as e:
        raise ConfigError(f"resourceFieldRef {resource}: {e}") from None
    if divisor == 0:
        divisor = 1
    return str(math.ceil(value / divisor))


def object_data(resource: str, obj: dict) -> dict[str, bytes]:
    """A ConfigMap's data and binaryData, or a Secret's data (base64-decoded), as bytes."""
    out: dict[str, bytes] = {}
    if resource == "secrets":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v or "")
        for k, v in (obj.get("stringData") or {}).items():  # not stored by the API; for tests
            out[k] = str(v).encode()
    else:
        for k, v in (obj.get("data") or {}).items():
            out[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v or "")
    return out


def _not_found(resource: str, name: str) -> ConfigError:
    return ConfigError(f'{KIND_WORD[resource]} "{name}" not found')


def env_refs(c: dict) -> set[tuple[str, str]]:
    """The (resource, name) of every ConfigMap and Secret container ``c``'s env names."""
    out = set()
    for e in c.get("envFrom") or []:
        if e.get("configMapRef"):
            out.add(("configmaps", e["configMapRef"].get("name", "")))
        if e.get("secretRef"):
            out.add(("secrets", e["secretRef"].get("name", "")))
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if vf.get("configMapKeyRef"):
            out.add(("configmaps", vf["configMapKeyRef"].get("name", "")))
        if vf.get("secretKeyRef"):
            out.add(("secrets", vf["secretKeyRef"].get("name", "")))
    return out


async def fetch_refs(client, namespace: str, refs: set[tuple[str, str]], cache=None,
                     max_age: float = 0.0) -> dict[tuple[str, str], dict | None]:
    """Get each referenced object through the agent's client, or through its ObjectCache
    (skiff.agent.objcache) when given, as read at most ``max_age`` seconds ago; None for a
    missing one."""
    from skiff.api.errors import APIError
    out: dict[tuple[str, str], dict | None] = {}
    for resource, name in refs:
        try:
            if cache is not None:
                out[(resource, name)] = await cache.get(resource, namespace, name, max_age)
            else:
                out[(resource, name)] = await client.get(resource, name, namespace)
        except APIError as e:
            if e.code == 404:
                out[(resource, name)] = None
            elif e.code == 403:
                raise ConfigError(f'{KIND_WORD[resource]} "{name}" is forbidden: {e}') from None
            else:
                raise ConfigError(f'cannot get {KIND_WORD[resource]} "{name}": {e}') from None
    return out


# the kubelet's token manager renews a token once 80% of its life is gone, or after a day
TOKEN_RENEW_SHARE = 0.8
TOKEN_RENEW_MAX = 86400.0


async def request_token(client, pod: dict, vname: str, src: dict) -> dict:
    """A token for a projected serviceAccountToken source of ``pod`` (volume ``vname``): the
    pod's ServiceAccount's, for the source's audience and lifetime, bound to the pod (it dies
    with it). -> {"token", "renew_at" (monotonic)}; ConfigError (FailedMount) when refused."""
    import time
    from skiff.api.errors import APIError
    md, spec = pod["metadata"], pod["spec"]
    exp = int(src.get("expirationSeconds") or 3600)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [src["audience"]] if src.get("audience") else [], "expirationSeconds": exp,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]}}}
    sa = spec.get("serviceAccountName") or "default"
    try:
        tr = await client.create("serviceaccounts", body, md.get("namespace") or "default",
                                 subresource="token", name=sa)
    except APIError as e:
        raise ConfigError(f'MountVolume.SetUp failed for volume "{vname}" : failed to fetch token: {e}',
                          reason="FailedMount") from None
    return {"token": tr["status"]["token"],
            "renew_at": time.monotonic() + min(TOKEN_RENEW_SHARE * exp, TOKEN_RENEW_MAX)}


def _lookup(objects: dict | None, resource: str, name: str) -> dict | None:
    return (objects or {}).get((resource, name))


def service_env(services: list[dict], namespace: str, links: bool = True) -> dict[str, str]:
    """The variables the kubelet gives a pod for each Service of its namespace that has a
    cluster IP (``enableServiceLinks``, ``links``): ``WEB_SERVICE_HOST``/``WEB_SERVICE_PORT``
    (the first port), ``WEB_SERVICE_PORT_<NAME>`` per named port, and the docker-link ones
    (``WEB_PORT=tcp://IP:PORT``, ``WEB_PORT_80_TCP[_PROTO|_PORT|_ADDR]``). The API server's
    ``kubernetes`` Service of ``default`` is given to every pod, links or not (in-cluster clients
    read KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT)."""
    out: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: (s.get("metadata") or {}).get("name", "")):
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port")]
        svc_ns = md.get("namespace", "default")
        master = svc_ns == "default" and md.get("name") == "kubernetes"
        if not (master or (links and svc_ns == namespace)) or ip in ("", "None") or not ports:
            continue
        name = md.get("name", "").upper().replace("-", "_")
        out[f"{name}_SERVICE_HOST"] = ip
        out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        out[f"{name}_PORT"] = f"{(first.get('protocol') or 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol") or "TCP"
            pre = f"{name}_PORT_{p['port']}_{proto.upper()}"
            out[pre] = f"{proto.lower()}://{ip}:{p['port']}"
            out[pre + "_PROTO"] = proto.lower()
            out[pre + "_PORT"] = str(p["port"])
            out[pre + "_ADDR"] = ip
    return out


def container_env(pod: dict, c: dict, pod_ip: str, host_ip: str,
                  objects: dict[tuple[str, str], dict | None] | None = None,
                  allocatable: dict | None = None, services: list[dict] | None = None) -> list[str]:
    """The ``K=V`` strings for container ``c`` (image defaults are merged by the runtime).
    ``objects``: (resource, name) -> the ConfigMap/Secret (None: it does not exist);
    ``allocatable``: the node's (for a resourceFieldRef to a limit not set; default: read);
    ``services``: the Services the node knows: unless ``enableServiceLinks`` is false, those of
    the pod's namespace become variables (:func:`service_env`) that ``$(VAR)`` in ``env`` may
    name and that the container's own variables override, as the kubelet does."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    svc_env = service_env(services, ns, links) if services else {}
    env: dict[str, str] = {}
    for e in c.get("envFrom") or []:
        prefix = e.get("prefix") or ""
        for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = e.get(key)
            if not ref:
                continue
            name = ref.get("name", "")
            obj = _lookup(objects, resource, name)
            if obj is None:
                if ref.get("optional"):
                    continue
                raise _not_found(resource, name)
            for k, v in object_data(resource, obj).items():
                if resource == "configmaps" and k in (obj.get("binaryData") or {}):
                    continue   # the kubelet takes env from data only
                full = prefix + k
                if not full or "=" in full:
                    continue   # the kubelet skips invalid names (an event says so)
                env[full] = v.decode(errors="replace")
    for e in c.get("env") or []:
        name = e["name"]
        if "valueFrom" in e:
            vf = e["valueFrom"] or {}
            if vf.get("fieldRef") is not None:
                env[name] = field_value(pod, vf["fieldRef"]["fieldPath"], pod_ip, host_ip)
                continue
            if vf.get("resourceFieldRef") is not None:
                env[name] = resource_value(pod, c, vf["resourceFieldRef"], allocatable)
                continue
            for key, resource in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                ref = vf.get(key)
                if ref is None:
                    continue
                oname, okey = ref.get("name", ""), ref.get("key", "")
                obj = _lookup(objects, resource, oname)
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise _not_found(resource, oname)
                data = object_data(resource, obj)
                if okey not in data:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"couldn't find key {okey} in {KIND_NAME[resource]} {ns}/{oname}")
                env[name] = data[okey].decode(errors="replace")
                break
            else:
                raise SkiffError(f"env {name}: unsupported valueFrom (fieldRef, resourceFieldRef, "
                                 f"configMapKeyRef and secretKeyRef are supported)")
        else:
            env[name] = expand(str(e.get("value", "")), {**svc_env, **env} if svc_env else env)
    for k, v in svc_env.items():
        env.setdefault(k, v)
    return [f"{k}={v}" for k, v in env.items()]


def expand_argv(words: list[str] | None, env_list: list[str]) -> list[str] | None:
    if words is None:
        return None
    env = dict(e.split("=", 1) for e in env_list)
    return [expand(str(w), env) for w in words]
