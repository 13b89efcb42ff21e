"""Resource usage as the kernel counts it, for the agent's ``/stats/summary`` (the kubelet's
summary API, in the shape metrics-server reads).

Every number is read from the kernel when asked, nothing is kept between requests:

- CPU: the cgroup's cumulative usage in nanoseconds, with the time it was read. On cgroup v2
  ``cpu.stat`` ``usage_usec`` (x1000); on v1 ``cpuacct.usage``. A rate needs two readings:
  the controller (skiff.controller.metrics) takes them.
- memory working set, as cAdvisor computes it: usage minus the inactive file cache.
  v2: ``memory.current`` - ``memory.stat`` ``inactive_file``; v1: ``memory.usage_in_bytes`` -
  ``memory.stat`` ``total_inactive_file``; never below 0.
- the node: ``/proc/stat`` (every CPU's non-idle jiffies) and ``/proc/meminfo``
  (MemTotal - MemFree - Inactive(file)).

A reading that cannot be made (no such file: a controller missing, a cgroup gone) is left
out, never replaced by a guess.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from skiff.runtime.containers.cgroups.base import read_file

__all__ = ["Usage", "cgroup_usage", "node_usage", "stamp", "usage_doc"]


@dataclass
class Usage:
    """One reading: cumulative CPU (ns) and memory (bytes), either may be None (not known)."""
    time: float
    cpu_ns: int | None = None
    working_set: int | None = None
    memory_usage: int | None = None


def stamp(t: float) -> str:
    """RFC 3339 with microseconds, UTC (the kubelet writes RFC3339Nano)."""
    whole = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1e6):06d}Z"


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v.strip())
        except ValueError:
            continue
    return out


def _read(path: str) -> str | None:
    try:
        return read_file(path)
    except OSError:
        return None


def _int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def cgroup_usage(dirs: dict[str, str], version: int) -> Usage | None:
    """The usage of one cgroup. ``dirs``: for v2 ``{"": path}``; for v1 controller -> the
    cgroup's directory in that hierarchy (``cpuacct``, ``memory``; ``cpu`` is used for
    cpuacct where the two are co-mounted). None if nothing at all could be read (gone)."""
    now = time.time()
    u = Usage(now)
    if version == 2:
        d = dirs.get("")
        if d is None:
            return None
        stat = _read(d + "/cpu.stat")
        if stat is not None:
            usec = _keyed(stat).get("usage_usec")
            if usec is not None:
                u.cpu_ns = usec * 1000
        current = _int(d + "/memory.current")
        if current is not None:
            u.memory_usage = current
            mstat = _read(d + "/memory.stat")
            inactive = _keyed(mstat).get("inactive_file", 0) if mstat is not None else 0
            u.working_set = max(0, current - inactive)
    else:
        acct = dirs.get("cpuacct") or dirs.get("cpu")
        if acct is not None:
            u.cpu_ns = _int(acct + "/cpuacct.usage")
        mem = dirs.get("memory")
        if mem is not None:
            usage = _int(mem + "/memory.usage_in_bytes")
            if usage is not None:
                u.memory_usage = usage
                mstat = _read(mem + "/memory.stat")
                inactive = _keyed(mstat).get("total_inactive_file", 0) if mstat is not None else 0
                u.working_set = max(0, usage - inactive)
    if u.cpu_ns is None and u.working_set is None:
        return None
    return u


def cgroup_dirs(info: dict | None, sub: str | None = None) -> tuple[dict[str, str], int] | None:
    """(dirs, version) for :func:`cgroup_usage` from a container's recorded cgroup
    (``state.json``'s ``cgroup``: V1Cgroup/V2Cgroup.to_dict()). ``sub``: the parent's
    directory instead (the pod's cgroup, ``<parent>`` of the container) when ``"parent"``."""
    if not info:
        return None
    parent, name = info.get("parent") or "", info.get("name") or ""
    rel = parent if sub == "parent" else f"{parent}/{name}"
    if info.get("version") == 2:
        mount = info.get("mount")
        return ({"": f"{mount}/{rel}"}, 2) if mount else None
    mounts = info.get("mounts") or {}
    dirs = {c: f"{m}/{rel}" for c, m in mounts.items() if c in ("cpu", "cpuacct", "memory")}
    return (dirs, 1) if dirs else None


def node_usage(proc: str = "/proc") -> Usage | None:
    """The node's usage: every CPU's busy time (user, nice, system, irq, softirq, steal; guest
    time is already in user) from /proc/stat, and MemTotal - MemFree - Inactive(file) from
    /proc/meminfo (what the root cgroup's working set would be)."""
    u = Usage(time.time())
    stat = _read(proc + "/stat")
    if stat is not None:
        for line in stat.splitlines():
            if line.startswith("cpu "):
                f = [int(x) for x in line.split()[1:]]
                f += [0] * (8 - len(f))
                busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]
                hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
                u.cpu_ns = busy * 1_000_000_000 // hz
                break
    mi = _read(proc + "/meminfo")
    if mi is not None:
        kb: dict[str, int] = {}
        for line in mi.splitlines():
            k, _, v = line.partition(":")
            parts = v.split()
            if parts:
                try:
                    kb[k.strip()] = int(parts[0]) * 1024
                except ValueError:
                    pass
        if "MemTotal" in kb and "MemFree" in kb:
            used = kb["MemTotal"] - kb["MemFree"]
            u.memory_usage = used
            u.working_set = max(0, used - kb.get("Inactive(file)", 0))
    if u.cpu_ns is None and u.working_set is None:
        return None
    return u


def usage_doc(u: Usage | None) -> dict:
    """The ``cpu`` and ``memory`` members of a summary entry for one reading ({} for none)."""
    if u is None:
        return {}
    out: dict = {}
    t = stamp(u.time)
    if u.cpu_ns is not None:
        out["cpu"] = {"time": t, "usageCoreNanoSeconds": u.cpu_ns}
    if u.working_set is not None:
        mem = {"time": t, "workingSetBytes": u.working_set}
        if u.memory_usage is not None:
            mem["usageBytes"] = u.memory_usage
        out["memory"] = mem
    return out


def summary(node_name: str, node: Usage | None, pods: list[dict]) -> dict:
    """The summary document: ``{"node": {...}, "pods": [...]}``."""
    return {"node": {"nodeName": node_name, **usage_doc(node)}, "pods": pods}


def pod_entry(runtime, pod: dict) -> dict | None:
    """One pod's summary entry: the pod's cgroup (sandbox included, as the kubelet's pod
    cgroup is) and one entry per running container, from ``runtime.running_cgroups``."""
    md = pod.get("metadata") or {}
    uid = md.get("uid")
    if not uid:
        return None
    rows = runtime.running_cgroups(uid)
    if not rows:
        return None
    containers: list[dict] = []
    seen: set[str] = set()
    pod_dirs = None
    for name, started, cg in rows:   # newest first: the current instance of each name
        if pod_dirs is None and cg:
            pod_dirs = cgroup_dirs(cg, "parent")
        if name == "POD" or name in seen:
            continue
        seen.add(name)
        entry: dict = {"name": name, "startTime": started}
        where = cgroup_dirs(cg)
        if where is not None:
            entry.update(usage_doc(cgroup_usage(*where)))
        containers.append(entry)
    out: dict = {"podRef": {"name": md.get("name"), "namespace": md.get("namespace") or "default", "uid": uid},
                 "startTime": (pod.get("status") or {}).get("startTime") or ""}
    if pod_dirs is not None:
        out.update(usage_doc(cgroup_usage(*pod_dirs)))
    out["containers"] = containers
    return out


def agent_summary(agent, node_name: str | None = None) -> dict | None:
    """The summary of ``agent``'s node (of one of a hollow process's nodes: ``node_name``),
    None if no such node is served here. Hollow nodes (the fake runtime) report their pods
    and containers with no usage at all: they have no cgroups, and the host's /proc is not
    theirs."""
    many = getattr(agent, "agents", None)
    agents = many if isinstance(many, list) else [agent]
    for a in agents:
        if node_name not in (None, "", a.name) or a.runtime is None:
            continue
        fake = getattr(a.config, "runtime", "real") == "fake"
        pods = []
        cache = a.informer.cache if a.informer is not None else {}
        for obj in list(cache.values()):
            e = pod_entry(a.runtime, obj)
            if e is not None:
                pods.append(e)
        return summary(a.name, None if fake else node_usage(), pods)
    return None
