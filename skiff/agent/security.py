"""A pod container's securityContext as runtime options, as the kubelet makes the CRI config.

``apply_security_context``: ``capabilities.add/drop`` (Kubernetes names, no CAP_ prefix) become
--cap-add/--cap-drop, ``readOnlyRootFilesystem`` --read-only, the pod's ``fsGroup`` and
``supplementalGroups`` extra groups (--group-add; fsGroup first, as the kubelet adds it).
``privileged`` --privileged (every capability, the host's devices, nothing masked; capabilities
add/drop then change nothing, as with containerd's CRI). ``seccompProfile`` RuntimeDefault is
docker's default seccomp profile (skiff.runtime.containers.seccomp), and none is Unconfined, as
in Kubernetes. ``allowPrivilegeEscalation: false``
needs nothing: no_new_privs is always set, except for a privileged container (and the API
refuses the two together, as Kubernetes).

``verify_run_as_non_root``: the kubelet's check before a container with ``runAsNonRoot`` is
created; a ConfigError (the container waits in CreateContainerConfigError) when the user it
would run as is root, or cannot be shown not to be.

``forbidden_sysctl``: the pod's ``securityContext.sysctls`` must all be in the kubelet's safe
set; they are set in the sandbox's network and IPC namespaces (--sysctl), which its containers
share.
"""

from __future__ import annotations

from typing import Callable

from .env import ConfigError


def apply_security_context(opts, pod_spec: dict, c: dict) -> None:
    """Set ``opts`` (CreateOptions) from the pod's and container ``c``'s securityContext."""
    pod_sc = pod_spec.get("securityContext") or {}
    sc = c.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    opts.cap_add = [str(n) for n in caps.get("add") or []]
    opts.cap_drop = [str(n) for n in caps.get("drop") or []]
    opts.read_only = sc.get("readOnlyRootFilesystem") is True
    opts.privileged = sc.get("privileged") is True
    # seccompProfile (the container's over the pod's): RuntimeDefault is docker's profile;
    # Localhost too (warned at admission: skiff loads no profile files); none or Unconfined: no
    # filter, as the kubelet without --seccomp-default
    profile = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    opts.seccomp = "default" if profile in ("RuntimeDefault", "Localhost") else "unconfined"
    groups = [pod_sc["fsGroup"]] if pod_sc.get("fsGroup") is not None else []
    opts.group_add = [str(g) for g in groups + list(pod_sc.get("supplementalGroups") or [])]


def verify_run_as_non_root(pod: dict, c: dict, image_user: Callable[[], str]) -> None:
    """With runAsNonRoot (the container's over the pod's): a runAsUser must not be 0; without
    one, the image's user (``image_user()``, its config's User) must be a non-zero uid."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = c.get("securityContext") or {}
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        return
    md = pod.get("metadata") or {}
    where = (f'(pod: "{md.get("name")}_{md.get("namespace") or "default"}({md.get("uid")})", '
             f'container: {c.get("name")})')
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid is not None:
        if uid == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    user = image_user().partition(":")[0]   # the runtime reports a uid, or else a name
    if not user or (user.isdigit() and int(user) == 0):
        raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if not user.isdigit():
        raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({user}), "
                          f"cannot verify user is non-root {where}")


# The sysctls the kubelet allows by default (safe: namespaced, and unable to hurt other pods)
SAFE_SYSCTLS = ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
                "net.ipv4.tcp_wmem")


def forbidden_sysctl(spec: dict) -> str:
    """The kubelet's message for a pod whose sysctls are not all safe ("" when they are): such a
    pod is refused by the node (SysctlForbidden), as on a kubelet without --allowed-unsafe-sysctls."""
    for s in (spec.get("securityContext") or {}).get("sysctls") or []:
        name = str(s.get("name", "")).replace("/", ".")
        if name not in SAFE_SYSCTLS:
            return f'forbidden sysctl: "{name}" not allowlisted'
        # a namespaced sysctl cannot be set in a namespace the pod shares with the host
        ns = "ipc" if name.startswith("kernel.") else "net"
        if spec.get("hostIPC" if ns == "ipc" else "hostNetwork") is True:
            return f'forbidden sysctl: "{name}" not allowed with host {ns} enabled'
    return ""
