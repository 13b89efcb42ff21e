"""The files of a pod's file volumes, as the kubelet writes them: ``configMap``, ``secret``,
``downwardAPI`` and ``projected`` (configMap, secret and downwardAPI sources).

- configMap / secret: every key (or the ``items``, key -> path), each file with ``defaultMode``
  (0644) or the item's ``mode``; a missing object or key fails the mount unless ``optional``.
- downwardAPI: each item's ``fieldRef`` (metadata.name, .namespace, .uid, .labels, .annotations,
  or one label / annotation as ``metadata.labels['k']``) or ``resourceFieldRef`` (a container's
  limit or request, with ``divisor``). A whole map is written as the kubelet does: one
  ``key="value"`` line per key, sorted, the value quoted as Go's ``%q``, no final newline.
- projected: the files of all its sources in one directory (a later source's path wins), with
  the volume's ``defaultMode``. A ``serviceAccountToken`` source's file is a token the agent
  requested for the pod (``token_key`` names it among the objects; see the pod worker).

The ConfigMaps and Secrets come in as a dict ((resource, name) -> object, None when missing);
``volume_refs`` lists the ones a pod's volumes need. A failure raises ConfigError with reason
FailedMount and the kubelet's message.
"""
from __future__ import annotations

from .env import KIND_WORD, ConfigError, container_spec, field_value, object_data, resource_value

FILE_VOLUME_TYPES = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def is_file_volume(vol: dict) -> bool:
    """A volume whose files the agent writes (rather than a directory it mounts as is)."""
    return any(vol.get(t) is not None for t in FILE_VOLUME_TYPES)


def holds_secrets(vol: dict) -> bool:
    """Its directory is kept as a secret volume's (0700, owned by the container's user)."""
    if vol.get("secret") is not None:
        return True
    return any(s.get("secret") is not None for s in (vol.get("projected") or {}).get("sources") or [])


def has_downward_files(vol: dict) -> bool:
    """Some of its files come from the pod's own fields (rewritten when labels change)."""
    if vol.get("downwardAPI") is not None:
        return True
    return any(s.get("downwardAPI") is not None for s in (vol.get("projected") or {}).get("sources") or [])


def token_key(src: dict) -> tuple[str, str]:
    """How a projected serviceAccountToken source's token is kept among a pod's objects: one per
    audience and lifetime."""
    return "serviceaccounttoken", f"{src.get('audience') or ''}|{src.get('expirationSeconds') or 3600}"


def token_sources(spec: dict, c: dict | None = None) -> list[tuple[str, dict]]:
    """(volume name, source) of the serviceAccountToken sources of the projected volumes (those
    ``c`` mounts, if given)."""
    mounted = None if c is None else {vm.get("name") for vm in c.get("volumeMounts") or []}
    return [(v.get("name", ""), s["serviceAccountToken"]) for v in spec.get("volumes") or []
            if (mounted is None or v.get("name") in mounted) and v.get("projected") is not None
            for s in v["projected"].get("sources") or [] if s.get("serviceAccountToken") is not None]


def _sources(vol: dict) -> list[tuple[str, dict]]:
    """(type, source) pairs: one for a plain volume, one per source of a projected one."""
    if vol.get("projected") is not None:
        out = []
        for s in vol["projected"].get("sources") or []:
            for t in ("configMap", "secret", "downwardAPI", "serviceAccountToken"):
                if s.get(t) is not None:
                    out.append((t, s[t]))
        return out
    return [(t, vol[t]) for t in ("configMap", "secret", "downwardAPI") if vol.get(t) is not None]


def _object_ref(kind: str, src: dict, projected: bool) -> tuple[str, str]:
    if kind == "configMap":
        return "configmaps", src.get("name", "")
    return "secrets", src.get("name" if projected else "secretName", "")


def object_refs(vol: dict) -> set[tuple[str, str]]:
    """The (resource, name) of the ConfigMaps and Secrets one volume holds, projected sources
    included."""
    projected = vol.get("projected") is not None
    return {_object_ref(kind, src, projected) for kind, src in _sources(vol)
            if kind not in ("downwardAPI", "serviceAccountToken")}


def volume_refs(spec: dict, c: dict | None = None) -> set[tuple[str, str]]:
    """The (resource, name) of the ConfigMaps and Secrets the pod's volumes hold (only the
    volumes ``c`` mounts, if given)."""
    mounted = None if c is None else {vm.get("name") for vm in c.get("volumeMounts") or []}
    out: set[tuple[str, str]] = set()
    for v in spec.get("volumes") or []:
        if mounted is None or v.get("name") in mounted:
            out |= object_refs(v)
    return out


def go_quote(s: str) -> str:
    """``s`` quoted as Go's strconv.Quote (%q): printable characters kept, others escaped."""
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def format_map(m: dict | None) -> str:
    """A labels/annotations map as a downwardAPI file: ``k="v"`` lines, sorted, no final newline."""
    return "\n".join(f"{k}={go_quote(str(v))}" for k, v in sorted((m or {}).items()))


def downward_value(pod: dict, item: dict, allocatable: dict | None = None) -> bytes:
    """The content of one downwardAPI item."""
    if item.get("fieldRef") is not None:
        path = item["fieldRef"].get("fieldPath", "")
        meta = pod.get("metadata") or {}
        if path in ("metadata.labels", "metadata.annotations"):
            return format_map(meta.get(path.split(".")[1])).encode()
        return field_value(pod, path, "", "").encode()
    ref = item.get("resourceFieldRef") or {}
    c = container_spec(pod, ref.get("containerName") or "")
    if c is None:
        raise ConfigError(f"container {ref.get('containerName')!r} not found", reason="FailedMount")
    return resource_value(pod, c, ref, allocatable).encode()


def _object_files(vname: str, kind: str, src: dict, objects: dict, projected: bool,
                  mode: int) -> list[tuple[str, bytes, int]] | None:
    resource, name = _object_ref(kind, src, projected)
    obj = objects.get((resource, name))
    if obj is None:
        if src.get("optional"):
            return None
        raise ConfigError(f'MountVolume.SetUp failed for volume "{vname}" : {KIND_WORD[resource]} '
                          f'"{name}" not found', reason="FailedMount")
    data = object_data(resource, obj)
    items = src.get("items")
    if not items:
        return [(k, v, mode) for k, v in sorted(data.items())]
    out = []
    for it in items:
        key, path = it.get("key", ""), it.get("path", "")
        if key not in data:
            if src.get("optional"):
                continue
            what = KIND_WORD[resource]
            raise ConfigError(f'MountVolume.SetUp failed for volume "{vname}" : {what} references '
                              f'non-existent {"config" if what == "configmap" else "secret"} key: {key}',
                              reason="FailedMount")
        m = it.get("mode")
        out.append((path, data[key], mode if m is None else int(m)))
    return out


def volume_files(vol: dict, objects: dict[tuple[str, str], dict | None], pod: dict | None = None,
                 allocatable: dict | None = None) -> list[tuple[str, bytes, int]] | None:
    """The files (relative path, content, mode) of a file volume. None when its only object is
    missing and optional (an empty directory). ``pod`` is needed for downwardAPI items."""
    vname = vol.get("name", "")
    projected = vol.get("projected") is not None
    top = (vol.get("projected") if projected else next(
        (vol[t] for t in FILE_VOLUME_TYPES if vol.get(t) is not None), None)) or {}
    mode = top.get("defaultMode")
    mode = DEFAULT_MODE if mode is None else int(mode)
    files: dict[str, tuple[bytes, int]] = {}
    missing = False
    for kind, src in _sources(vol):
        if kind == "downwardAPI":
            for it in src.get("items") or []:
                m = it.get("mode")
                try:
                    files[it.get("path", "")] = (downward_value(pod or {}, it, allocatable),
                                                 mode if m is None else int(m))
                except Exception as e:  # noqa: BLE001 - ConfigError, or a field the API let through
                    raise ConfigError(f'MountVolume.SetUp failed for volume "{vname}" : {e}',
                                      reason="FailedMount") from None
            continue
        if kind == "serviceAccountToken":
            tok = objects.get(token_key(src))
            if tok is None:
                raise ConfigError(f'MountVolume.SetUp failed for volume "{vname}" : failed to fetch token: '
                                  f'no token for the pod', reason="FailedMount")
            files[src.get("path", "")] = (tok["token"].encode(), mode)
            continue
        got = _object_files(vname, kind, src, objects, projected, mode)
        if got is None:
            missing = True
            continue
        for path, data, m in got:
            files[path] = (data, m)
    for path in files:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f'volume "{vname}": invalid path {path!r}', reason="FailedMount")
    if missing and not files and not projected:
        return None
    return [(p, d, m) for p, (d, m) in files.items()]
