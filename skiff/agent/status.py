"""A pod's status, computed the way the kubelet computes it.

``pod_status(pod, sandbox, infos, waiting, node_ready, host_ip, old)`` returns the new
``status`` dict: phase, conditions (PodScheduled, Initialized, ContainersReady, Ready, with
lastTransitionTime kept while a condition's status stays the same), hostIP(s), podIP(s),
startTime, qosClass and one containerStatus per spec container (state, lastState, ready,
restartCount, image, imageID, containerID, started), and initContainerStatuses: while the init
containers run the pod is Pending, Initialized is False (ContainersNotInitialized) and waiting
containers say PodInitializing; a completed init container is ready; an init container that
failed under restartPolicy Never fails the pod.

``infos`` are the runtime's container instances of the pod (any order), ``waiting`` maps a
container name to the (reason, message) the agent has for it while it is not running
(ContainerCreating, CrashLoopBackOff, ErrImagePull, ...).
"""
from __future__ import annotations

from typing import Any

from skiff.api.timefmt import rfc3339

RUNTIME = "skiff"


def _ts(t: str | None) -> str | None:
    """The runtime's nanosecond timestamps, cut to seconds as the API shows them."""
    if not t:
        return None
    return t[:19] + "Z" if len(t) > 20 else t


def latest_two(infos: list, name: str) -> tuple[Any, Any]:
    """The current and the previous instance of container ``name`` (by attempt)."""
    mine = sorted((i for i in infos if i.name == name), key=lambda i: i.attempt)
    cur = mine[-1] if mine else None
    prev = mine[-2] if len(mine) > 1 else None
    return cur, prev


def _terminated(i) -> dict:
    t = {"exitCode": i.exit_code, "reason": i.reason or ("Completed" if i.exit_code == 0 else "Error"),
         "startedAt": _ts(i.started_at), "finishedAt": _ts(i.finished_at),
         "containerID": f"{RUNTIME}://{i.id}"}
    if getattr(i, "message", ""):
        t["message"] = i.message
    return t


def container_status(c: dict, cur, prev, waiting: tuple[str, str] | None,
                     probed: tuple[bool, bool] | None = None) -> dict:
    """``probed``: (started, ready) from the startup and readiness probes for a running
    instance (default: both True once running, as without probes)."""
    st: dict[str, Any] = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                          "ready": False, "restartCount": 0, "started": False,
                          "state": {}, "lastState": {}}
    if cur is not None:
        st["restartCount"] = cur.attempt
        st["imageID"] = cur.image_id or ""
        st["containerID"] = f"{RUNTIME}://{cur.id}"
    if cur is not None and cur.state == "running":
        st["state"] = {"running": {"startedAt": _ts(cur.started_at)}}
        started, ready = probed if probed is not None else (True, True)
        st["started"] = bool(started)
        st["ready"] = bool(started and ready)
        if prev is not None and prev.state == "exited":
            st["lastState"] = {"terminated": _terminated(prev)}
    elif cur is not None and cur.state == "exited" and waiting is None:
        st["state"] = {"terminated": _terminated(cur)}
        if prev is not None and prev.state == "exited":
            st["lastState"] = {"terminated": _terminated(prev)}
    else:
        reason, message = waiting or ("ContainerCreating", "")
        w = {"reason": reason}
        if message:
            w["message"] = message
        st["state"] = {"waiting": w}
        if cur is not None and cur.state == "exited":
            st["lastState"] = {"terminated": _terminated(cur)}
    return st


def init_progress(pod: dict, init_statuses: list[dict]) -> tuple[list[str], bool]:
    """(the init containers not done yet, whether one failed for good): an init container is
    done once it exited 0 (a sidecar once it has started); under restartPolicy Never a
    failed one fails the pod."""
    never = pod["spec"].get("restartPolicy", "Always") == "Never"
    specs = {c["name"]: c for c in pod["spec"].get("initContainers") or []}
    pending, failed = [], False
    for s in init_statuses:
        state, last = s["state"], s.get("lastState") or {}
        if specs.get(s["name"], {}).get("restartPolicy") == "Always":
            if not s.get("started"):
                pending.append(s["name"])
            continue
        term = state.get("terminated") or ("waiting" in state and last.get("terminated")) or None
        if term and term.get("exitCode") == 0 and "terminated" in state:
            continue
        pending.append(s["name"])
        if term and term.get("exitCode") != 0 and never:
            failed = True
    return pending, failed


def phase(pod: dict, statuses: list[dict], init_statuses: list[dict] | None = None) -> str:
    """kubelet's getPhase: Failed when an init container failed under restartPolicy Never,
    Pending while the init containers run, then from the regular containers."""
    if init_statuses:
        pending_init, failed = init_progress(pod, init_statuses)
        if failed:
            return "Failed"
        started = any("waiting" not in s["state"] or s.get("lastState") for s in statuses)
        if pending_init and not started:
            return "Pending"
    policy = pod["spec"].get("restartPolicy", "Always")
    pending = running = stopped = succeeded = 0
    for s in statuses:
        state, last = s["state"], s.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                pending += 1
        else:
            pending += 1
    n = len(statuses)
    if pending > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped == n:
        if policy == "Always":
            return "Running"  # restarting
        if policy == "OnFailure":
            return "Succeeded" if succeeded == stopped else "Running"
        return "Succeeded" if succeeded == stopped else "Failed"
    return "Pending"


def qos_class(pod: dict) -> str:
    reqs, lims, any_set = [], [], False
    for c in pod["spec"].get("containers", []) + (pod["spec"].get("initContainers") or []):
        r = (c.get("resources") or {})
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        if req or lim:
            any_set = True
        reqs.append(req)
        lims.append(lim)
    if not any_set:
        return "BestEffort"
    for req, lim in zip(reqs, lims):
        for res in ("cpu", "memory"):
            if res not in lim or (res in req and req[res] != lim[res]):
                return "Burstable"
    return "Guaranteed"


def _condition(old: dict[str, dict], ctype: str, status: str, reason: str | None = None,
               message: str | None = None) -> dict:
    prev = old.get(ctype)
    when = prev["lastTransitionTime"] if prev and prev.get("status") == status and \
        prev.get("lastTransitionTime") else rfc3339()
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


# the conditions the kubelet owns; any other (a readiness gate's) is kept as others set it
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def _readiness_gate_pending(pod: dict, conds: dict[str, dict]) -> str:
    """Why the pod's readinessGates keep it from Ready ("" when they do not), the kubelet's words."""
    for g in pod["spec"].get("readinessGates") or []:
        t = g.get("conditionType", "")
        c = conds.get(t)
        if c is None:
            return f'corresponding condition of pod readiness gate "{t}" does not exist.'
        if c.get("status") != "True":
            return f'the status of pod readiness gate "{t}" is not "True", but {c.get("status")}'
    return ""


def pod_status(pod: dict, sandbox, infos: list, waiting: dict[str, tuple[str, str]],
               node_ready: bool, host_ip: str, old: dict | None, probes=None,
               failed: tuple[str, str] | None = None) -> dict:
    """``probes``: an object with ``started(container_id)`` and ``ready(container_id)`` (the
    pod's ProbeManager), or None (no probes: running is started and ready). ``failed``: the
    (reason, message) of a pod the agent ended (activeDeadlineSeconds)."""
    old = old or {}
    containers = pod["spec"].get("containers", [])
    statuses = []
    for c in containers:
        cur, prev = latest_two(infos, c["name"])
        probed = None
        if probes is not None and cur is not None and cur.state == "running":
            probed = (probes.started(cur.id), probes.ready(cur.id))
        statuses.append(container_status(c, cur, prev, waiting.get(c["name"]), probed))
    init_statuses = []
    for c in pod["spec"].get("initContainers") or []:
        cur, prev = latest_two(infos, c["name"])
        probed = None
        if probes is not None and cur is not None and cur.state == "running":
            probed = (probes.started(cur.id), probes.ready(cur.id))
        w = waiting.get(c["name"]) or (("PodInitializing", "") if cur is None else None)
        st = container_status(c, cur, prev, w, probed)
        if "terminated" in st["state"] and st["state"]["terminated"]["exitCode"] == 0:
            st["ready"] = True       # as the kubelet reports a completed init container
        init_statuses.append(st)
    ph = "Failed" if failed is not None else phase(pod, statuses, init_statuses)
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    pending_init, _ = init_progress(pod, init_statuses)
    sidecars = [s for c, s in zip(pod["spec"].get("initContainers") or [], init_statuses)
                if c.get("restartPolicy") == "Always"]
    not_ready = [s["name"] for s in sidecars + statuses if not s["ready"]]
    if ph in ("Succeeded", "Failed"):
        cr = _condition(old_conds, "ContainersReady", "False", "PodCompleted")
        ready = _condition(old_conds, "Ready", "False", "PodCompleted")
    elif not_ready:
        msg = f"containers with unready status: [{' '.join(not_ready)}]"
        cr = _condition(old_conds, "ContainersReady", "False", "ContainersNotReady", msg)
        ready = _condition(old_conds, "Ready", "False", "ContainersNotReady", msg)
    else:
        cr = _condition(old_conds, "ContainersReady", "True")
        gate = _readiness_gate_pending(pod, old_conds)
        if not node_ready:
            ready = _condition(old_conds, "Ready", "False", "NodeNotReady", "node is not ready")
        elif gate:
            ready = _condition(old_conds, "Ready", "False", "ReadinessGatesNotReady", gate)
        else:
            ready = _condition(old_conds, "Ready", "True")
    conds = [
        _condition(old_conds, "PodReadyToStartContainers",
                   "True" if sandbox is not None and sandbox.running else "False"),
        _condition(old_conds, "Initialized", "True") if not pending_init or ph in ("Succeeded", "Running") else
        _condition(old_conds, "Initialized", "False", "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(pending_init)}]"),
        ready, cr,
        _condition(old_conds, "PodScheduled", "True"),
    ] + [c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    st: dict[str, Any] = {"phase": ph, "conditions": conds, "hostIP": host_ip,
                          "hostIPs": [{"ip": host_ip}] if host_ip else [],
                          "startTime": old.get("startTime") or rfc3339(),
                          "containerStatuses": statuses, "qosClass": qos_class(pod)}
    if init_statuses:
        st["initContainerStatuses"] = init_statuses
    ephemeral = []
    for c in pod["spec"].get("ephemeralContainers") or []:
        cur, prev = latest_two(infos, c["name"])
        es = container_status(c, cur, prev, waiting.get(c["name"]), None)
        es["ready"] = False         # as the kubelet reports them: never ready, never started by probes
        es.pop("started", None)
        ephemeral.append(es)
    if ephemeral:
        st["ephemeralContainerStatuses"] = ephemeral
    if failed is not None:
        st["reason"], st["message"] = failed
    if sandbox is not None and sandbox.ip:
        st["podIP"] = sandbox.ip
        st["podIPs"] = [{"ip": sandbox.ip}]
    return st


def same_status(a: dict | None, b: dict | None) -> bool:
    """Equal apart from nothing: a cheap test to skip a status write that changes nothing."""
    return a == b
