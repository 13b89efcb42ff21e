"""Container lifecycle hooks and the graceful stop of one container, as the kubelet does them.

``lifecycle.postStart`` runs right after the container starts; the pod worker waits for it
(the container is reported Running only afterwards). When it fails, a FailedPostStartHook
event is recorded and the container is stopped; the restart policy takes it from there.

``lifecycle.preStop`` runs before the stop signal, whenever the agent stops a running
container (pod deletion, a failed liveness probe, a new sandbox), within the grace period:
the signal follows when the hook is done or the grace period is spent, and then the
container has what is left of the grace period, at least 2 s, before SIGKILL. A failing
hook records FailedPreStopHook and the stop goes on.

Handlers: ``exec`` (in the container; on a runtime without exec, the fake one, nothing runs),
``httpGet`` (``host`` default the pod's IP, ``port`` by number or name, ``path``, ``scheme``,
``httpHeaders``) and ``sleep.seconds``. ``tcpSocket`` is accepted and does nothing, as in
Kubernetes, where it is deprecated for hooks.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from .env import container_spec, field_path
from .probes import FAILURE, exec_probe, http_probe, resolve_port, wait_pidfd

log = logging.getLogger("skiff.agent")

MIN_GRACE_AFTER_HOOK = 2.0      # the kubelet's minimumGracePeriodInSeconds
POST_START_TIMEOUT = 300.0      # a postStart hook that never ends holds the pod worker this long


def _pod_word(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f'{m.get("name", "")}_{m.get("namespace", "default")}({m.get("uid", "")})'


async def run_hook(runtime, pod: dict, c: dict, cid: str, handler: dict, timeout: float,
                   pod_ip: str) -> str | None:
    """Run one hook handler of container ``c`` (instance ``cid``); None when it succeeded,
    else the kubelet's message for the event."""
    where = f'for Container "{c.get("name")}" in Pod "{_pod_word(pod)}"'
    if handler.get("exec") is not None:
        argv = [str(a) for a in (handler["exec"].get("command") or [])]
        start = getattr(runtime, "exec_start", None)
        if start is None or not argv:
            return None if start is None else f"Exec lifecycle hook ({argv}) {where} failed - error: no command"
        result, out = await exec_probe(lambda stdio: start(cid, argv, stdio), argv, timeout)
        if result == FAILURE:
            return f"Exec lifecycle hook ({argv}) {where} failed - error: command '{' '.join(argv)}' " \
                   f"failed, message: {out.strip()!r}"
        return None
    if handler.get("httpGet") is not None:
        h = handler["httpGet"]
        path = h.get("path") or "/"
        host = h.get("host") or pod_ip
        try:
            port = resolve_port(h.get("port"), c)
        except ValueError as e:
            return f"HTTP lifecycle hook ({path}) {where} failed - error: {e}"
        if not host:
            return f"HTTP lifecycle hook ({path}) {where} failed - error: the pod has no IP"
        result, msg = await http_probe(host, port, path, h.get("scheme") or "HTTP", h.get("httpHeaders"), timeout)
        return f"HTTP lifecycle hook ({path}) {where} failed - error: {msg}" if result == FAILURE else None
    if handler.get("sleep") is not None:
        seconds = handler["sleep"].get("seconds") or 0
        await asyncio.sleep(max(0.0, min(float(seconds), timeout)))
        return None
    return None    # tcpSocket, or nothing: as the kubelet, no action


async def stop_container(agent, pod: dict | None, info, grace: float, pod_ip: str = "") -> None:
    """Stop one running container instance gracefully: its preStop hook (within ``grace``),
    the stop signal, then SIGKILL when the rest of the grace period has passed."""
    rt = agent.runtime
    pidfd = None
    try:
        pidfd = os.pidfd_open(info.pid) if info.pid else None
    except OSError:
        pidfd = None
    try:
        deadline = time.monotonic() + grace
        c = container_spec(pod, info.name) if pod is not None else None
        pre = ((c or {}).get("lifecycle") or {}).get("preStop")
        if pre and grace > 0:
            try:
                msg = await asyncio.wait_for(run_hook(rt, pod, c, info.id, pre, grace, pod_ip), grace)
            except asyncio.TimeoutError:
                msg = None   # the grace period is spent: on with the stop
            if msg:
                agent.events.record(pod, "Warning", "FailedPreStopHook", msg,
                                    field_path=field_path(pod, info.name))
                log.warning("pod %s: %s", _pod_word(pod), msg)
            deadline = max(deadline, time.monotonic() + MIN_GRACE_AFTER_HOOK)
        rt.signal_container(info.id, None if grace > 0 else "KILL")
        left = deadline - time.monotonic()
        if await _exited(rt, info, pidfd, left if grace > 0 else 10):
            return
        rt.signal_container(info.id, "KILL")
        if not await _exited(rt, info, pidfd, 10):
            log.warning("container %s did not die after SIGKILL", info.id)
    finally:
        if pidfd is not None:
            os.close(pidfd)


async def _exited(rt, info, pidfd: int | None, timeout: float) -> bool:
    """Whether the container exited within ``timeout`` (and the runtime has seen it)."""
    if pidfd is not None:
        if not await wait_pidfd(pidfd, max(0.0, timeout)):
            return False
        timeout = 2.0     # the monitor records the exit a moment after it
    end = time.monotonic() + timeout
    while rt.is_running(info.id):
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(0.05)
    return True
