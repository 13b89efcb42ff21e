"""Bind mounts: docker's `-v /host:/ctr[:ro]` and `--mount type=bind,source=..,target=..[,readonly]`.

A mount is a plain dict stored in the container's spec::

    {"type": "bind", "source": "/host/dir", "destination": "/ctr/dir", "readonly": False,
     "mode": "ro"}              # mode: the -v options as given ("" for --mount), for inspect

The mounts are made by the container's init (rootfs.bind_mounts), inside its own mount
namespace, after the /etc files: nothing appears in the host's mount table.
"""

from __future__ import annotations

import os

from ...errors import InvalidArgument

_V_OPTIONS = {"ro", "rw", "z", "Z", "rprivate", "private", "rslave", "slave", "rshared", "shared"}


def parse_volume(spec: str, create_missing: bool = True) -> dict:
    """One `-v SRC:DST[:OPTS]`. A missing host directory is created, as docker does."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    source, dest = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    for o in opts:
        if o not in _V_OPTIONS:
            raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mode: {o}")
    if not source.startswith("/"):
        if source.startswith("."):  # the docker CLI (23+) resolves ./x against the cwd
            source = os.path.abspath(source)
        else:
            raise InvalidArgument(f"invalid volume specification: '{spec}': named volumes are not "
                                  f"supported by skiff, use an absolute host path")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for "
                              f"type \"bind\": invalid mount path: '{dest}' mount path must be absolute")
    if dest == "/" or os.path.normpath(dest) == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for "
                              f"type \"bind\": invalid specification: destination can't be '/'")
    source = os.path.normpath(source)
    if create_missing and not os.path.exists(source):
        try:
            os.makedirs(source, 0o755)
        except OSError as e:
            raise InvalidArgument(f"error while creating mount source path '{source}': "
                                  f"mkdir {source}: {e.strerror}") from None
    mode = ",".join(opts)
    return {"type": "bind", "source": source, "destination": os.path.normpath(dest),
            "readonly": "ro" in opts, "mode": mode, "bind": f"{parts[0]}:{parts[1]}" + (
                f":{parts[2]}" if len(parts) == 3 and parts[2] else "")}


def parse_mount(spec: str) -> dict:
    """One `--mount type=bind,source=/x,target=/y[,readonly]` (only bind mounts)."""
    fields: dict[str, str] = {}
    readonly = False
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            if eq and value.lower() not in ("1", "true", "0", "false"):
                raise InvalidArgument(f'invalid argument "{spec}" for "--mount" flag: '
                                      f'invalid value for readonly: {value}')
            readonly = not eq or value.lower() in ("1", "true")
            continue
        if not eq:
            raise InvalidArgument(f'invalid argument "{spec}" for "--mount" flag: invalid field '
                                  f"'{item}' must be a key=value pair")
        if key in ("src", "source"):
            key = "source"
        elif key in ("dst", "destination", "target"):
            key = "target"
        elif key not in ("type", "bind-propagation", "consistency"):
            raise InvalidArgument(f'invalid argument "{spec}" for "--mount" flag: unexpected key '
                                  f"'{key}' in '{item}'")
        fields[key] = value
    kind = fields.get("type", "volume")
    if kind != "bind":
        raise InvalidArgument(f'invalid argument "{spec}" for "--mount" flag: mount type "{kind}" '
                              f'is not supported by skiff (only "bind")')
    source, target = fields.get("source", ""), fields.get("target", "")
    if not target:
        raise InvalidArgument('invalid mount config: field Target must not be empty')
    if not source:
        raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
    if not source.startswith("/"):
        raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: '
                              f"'{source}' mount path must be absolute")
    if not target.startswith("/"):
        raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: '
                              f"'{target}' mount path must be absolute")
    if os.path.normpath(target) == "/":
        raise InvalidArgument('invalid mount config for type "bind": invalid specification: '
                              "destination can't be '/'")
    source = os.path.normpath(source)
    if not os.path.exists(source):
        raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not '
                              f'exist: {source}')
    return {"type": "bind", "source": source, "destination": os.path.normpath(target),
            "readonly": readonly, "mode": ""}


def check_mounts(mounts: list[dict]) -> list[dict]:
    """Normalise and validate mounts given to the library (CreateOptions.mounts): absolute
    paths, an existing source, no destination twice. Returns them in mount order (parents
    before what is mounted inside them)."""
    out, seen = [], set()
    for m in mounts:
        source, dest = m.get("source") or "", m.get("destination") or m.get("target") or ""
        if m.get("type", "bind") != "bind":
            raise InvalidArgument(f"mount type {m.get('type')!r} is not supported (only bind)")
        if not source.startswith("/") or not dest.startswith("/"):
            raise InvalidArgument(f'invalid mount config for type "bind": mount paths must be '
                                  f"absolute: {source or '(empty)'} -> {dest or '(empty)'}")
        dest = os.path.normpath(dest)
        if dest == "/":
            raise InvalidArgument('invalid mount config for type "bind": invalid specification: '
                                  "destination can't be '/'")
        if not os.path.exists(source):
            raise InvalidArgument(f'invalid mount config for type "bind": bind source path does '
                                  f'not exist: {source}')
        if dest in seen:
            raise InvalidArgument(f"Duplicate mount point: {dest}")
        seen.add(dest)
        item = {"type": "bind", "source": os.path.normpath(source), "destination": dest,
                "readonly": bool(m.get("readonly")), "mode": m.get("mode", "")}
        if m.get("bind"):
            item["bind"] = m["bind"]
        out.append(item)
    out.sort(key=lambda m: m["destination"].count("/"))  # stable: /a before /a/b
    return out


def inspect_mounts(mounts: list[dict]) -> list[dict]:
    """docker inspect's "Mounts"."""
    return [{"Type": "bind", "Source": m["source"], "Destination": m["destination"],
             "Mode": m.get("mode", ""), "RW": not m.get("readonly"), "Propagation": "rprivate"}
            for m in mounts]


def host_config(mounts: list[dict]) -> dict:
    """docker inspect's HostConfig.Binds (the -v strings) and HostConfig.Mounts (--mount)."""
    b = [m["bind"] for m in mounts if m.get("bind")]
    ms = [{"Type": "bind", "Source": m["source"], "Target": m["destination"],
           **({"ReadOnly": True} if m.get("readonly") else {})}
          for m in mounts if not m.get("bind")]
    return {"Binds": b or None, **({"Mounts": ms} if ms else {})}
