"""`inspect`: a container as docker shows it, with docker's field names."""

from __future__ import annotations

from .state import State
from .store import Container

_STATUS = {"created": "created", "running": "running", "exited": "exited"}


def inspect_container(c: Container, st: State | None = None) -> dict:
    s = c.spec
    st = st or c.state()
    running = st.running
    return {
        "Id": c.id,
        "Created": s.created,
        "Path": s.path,
        "Args": s.args,
        "State": {
            "Status": "running" if running else _STATUS.get(st.status, st.status),
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": st.oom_killed,
            "Dead": False,
            "Pid": st.pid if running else 0,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": st.finished_at or "0001-01-01T00:00:00Z",
        },
        "Image": s.image_id,
        "ResolvConfPath": f"{c.dir}/resolv.conf",
        "HostnamePath": f"{c.dir}/hostname",
        "HostsPath": f"{c.dir}/hosts",
        "LogPath": f"{c.dir}/log",
        "Name": "/" + s.name,
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": s.network,
            "IpcMode": s.ipc or "private",
            "UTSMode": s.uts,
            "PidMode": s.pid,
            **_host_mounts(s),
            "AutoRemove": s.autoremove,
            "Memory": s.memory or 0,
            "NanoCpus": int((s.cpus or 0) * 1e9),
            "CpuShares": s.cpu_shares or 0,
            "PidsLimit": s.pids_limit,
            "CgroupParent": s.cgroup_parent,
            "LogConfig": {"Type": "json-file", "Config": _log_config(s)},
            "Ulimits": [{"Name": n, "Soft": v[0], "Hard": v[1]} for n, v in s.ulimits.items()],
            "ExtraHosts": s.extra_hosts or None,
            "Dns": s.dns,
            "DnsSearch": s.dns_search,
            "DnsOptions": s.dns_options,
            "CapAdd": s.cap_add or None,
            "CapDrop": s.cap_drop or None,
            "GroupAdd": s.group_add or None,
            "Privileged": s.privileged,
            # docker's: what --security-opt said (the default profile is not listed)
            "SecurityOpt": ["seccomp=unconfined"] if not s.seccomp and not s.privileged else None,
            "ReadonlyRootfs": s.read_only,
            "MaskedPaths": list(_masked()),
            "ReadonlyPaths": list(_readonly()),
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(reversed(s.layer_dirs)),
            "UpperDir": f"{c.dir}/upper", "WorkDir": f"{c.dir}/work", "MergedDir": f"{c.dir}/rootfs"}},
        "Config": {
            "Hostname": s.hostname,
            "Domainname": s.domainname,
            "User": s.user,
            "AttachStdin": s.stdin,
            "Tty": s.tty,
            "OpenStdin": s.stdin,
            "Env": s.env,
            "Cmd": s.cmd,
            "Image": s.image,
            "WorkingDir": s.workdir,
            "Entrypoint": s.entrypoint,
            "Labels": s.labels,
            "StopSignal": s.stop_signal,
            **({"StopTimeout": s.stop_timeout} if s.stop_timeout is not None else {}),
        },
        "Mounts": _mounts(s),
        "NetworkSettings": network_settings(s, st, running),
    }


def _mounts(s) -> list:
    if not s.mounts:
        return []
    from .volumes import inspect_mounts
    return inspect_mounts(s.mounts)


def _host_mounts(s) -> dict:
    if not s.mounts:
        return {"Binds": None}
    from .volumes import host_config
    return host_config(s.mounts)


def _log_config(s) -> dict:
    cfg = {}
    if s.log_max_size:
        cfg["max-size"] = str(s.log_max_size)
        cfg["max-file"] = str(s.log_max_files)
    return cfg


def _masked():
    from .rootfs import MASKED_PATHS
    return MASKED_PATHS


def _readonly():
    from .rootfs import READONLY_PATHS
    return READONLY_PATHS


def network_settings(s, st, running: bool) -> dict:
    """docker's NetworkSettings: the address while running, and the published ports."""
    ip, _, plen = (s.ip or "").partition("/")
    ip = ip if running else ""
    ports: dict = {}
    for p in s.ports:
        ports.setdefault(f"{p['container_port']}/{p['proto']}", [])
    if running:
        for p in st.ports:
            ports[f"{p['container_port']}/{p['proto']}"].append(
                {"HostIp": p["host_ip"] or "0.0.0.0", "HostPort": str(p["host_port"])})
    out = {"IPAddress": ip, "IPPrefixLen": int(plen) if ip and plen else 0,
           "Gateway": s.gateway if ip else "", "Ports": ports, "Networks": {}}
    if s.network and not s.network.startswith("container:"):
        out["Networks"][s.network] = {"NetworkID": s.network_id, "IPAddress": ip,
                                      "IPPrefixLen": out["IPPrefixLen"], "Gateway": out["Gateway"]}
    return out
