"""What a container is made of: the record written to <root>/containers/<id>/config.json."""

from __future__ import annotations

import os
from .. import fastjson as json
from ..record import Record

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ContainerSpec(Record):
    id: str
    name: str
    image: str                      # the reference as the user gave it
    image_id: str
    created: str
    path: str = ""                  # argv[0] as configured (docker's .Path)
    args: list[str] = []
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = []
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    stdin: bool = False             # -i: keep stdin open
    autoremove: bool = False
    network: str = "none"
    memory: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cgroup_parent: str = "skiff"
    log_max_size: int | None = None
    log_max_files: int = 1
    ulimits: dict[str, list[int]] = {}
    sysctls: dict[str, str] = {}
    labels: dict[str, str] = {}
    stop_signal: str = "SIGTERM"
    stop_timeout: int | None = None
    layer_dirs: list[str] = []
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []
    # networking (bridge mode): the network and this container's place on it
    network_id: str = ""
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""               # the gateway's address
    gateway_cidr: str = ""          # the bridge's address, with the prefix length
    ip: str = ""                    # this container's address, CIDR
    mtu: int = 0
    ports: list[dict] = []          # requested -p bindings (host_port 0: pick one at start)
    netns_container: str = ""       # container:NAME: the id whose network namespace it joins
    mounts: list[dict] = []         # bind mounts, in mount order (see volumes.py)
    ipc: str = ""                   # "" (own namespace), "host", or "container:<id>"
    uts: str = ""                   # "" (own namespace), "host", or "container:<id>"
    pid: str = ""                   # "" (own namespace), "host", or "container:<id>"
    cap_add: list[str] = []         # --cap-add/--cap-drop, normalized (CAP_NET_ADMIN, ALL)
    cap_drop: list[str] = []
    read_only: bool = False         # --read-only: the root file system is mounted read-only
    group_add: list[str] = []       # --group-add: gids or group names (the container's /etc/group)
    privileged: bool = False        # --privileged: every capability and host device, /sys and /proc writable
    seccomp: str = ""               # "default": docker's profile (skiff.runtime.containers.seccomp); "": none

    @property
    def argv(self) -> list[str]:
        return [self.path, *self.args]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str) -> "ContainerSpec":
        with open(path, "rb") as f:
            return cls.from_dict(json.loads(f.read()))


def merge_env(image_env: list[str], user_env: list[str], hostname: str, tty: bool) -> list[str]:
    """docker's order: PATH default, HOSTNAME, TERM (with -t), the image's, then the user's."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if tty:
        env["TERM"] = "xterm"
    for item in list(image_env) + list(user_env):
        k, sep, v = item.partition("=")
        if not sep:  # `-e NAME` passes the caller's value, or drops it, as docker does
            if k in os.environ:
                env[k] = os.environ[k]
            continue
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]
