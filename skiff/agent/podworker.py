"""One worker per pod uid: the pod's updates are processed in order, one sync at a time.

A sync is level-based: it reads what the runtime has for the pod, takes the steps
towards the pod's spec (sandbox, then each container in turn), and writes the status.
It is safe to repeat; anything that must happen later (a back-off expiring, a
container exiting) wakes the worker again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from skiff.errors import SkiffError

from . import status as pstatus
from .hooks import POST_START_TIMEOUT, run_hook, stop_container
from .env import (ConfigError, container_env, env_refs, expand_argv, fetch_refs, field_path, is_sidecar,
                  request_token)
from .security import forbidden_sysctl
from .volumefiles import (has_downward_files, holds_secrets, is_file_volume, object_refs, token_key, token_sources,
                          volume_files, volume_refs)
from .claims import CLAIM_RETRY, claim_volumes, read_only_mounts, resolve_claims, runtime_pod
from .probes import ProbeManager

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("skiff.agent")


def _epoch(ts: str | None) -> float:
    if not ts:
        return time.time()
    from skiff.runtime.containers.state import parse_rfc3339
    try:
        return parse_rfc3339(ts)
    except (ValueError, TypeError):
        return time.time()


def pod_ref(pod: dict) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', 'default')}/{m['name']}"


class PodWorker:
    def __init__(self, agent: "Agent", uid: str):
        self.agent = agent
        self.uid = uid
        self.pod: dict | None = None
        self.gone = False                 # the pod object was deleted from the API
        self.waiting: dict[str, tuple[str, str]] = {}
        self.last_status: dict | None = None
        self.announced: dict[str, Any] = {}   # container -> the exit whose back-off was announced
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._watched: dict[str, int] = {}  # container id -> pidfd being watched
        self.done = False
        self.sb_ip = ""
        self.failed: tuple[str, str] | None = None   # (reason, message) once the agent failed the pod
        self._objects: dict = {}           # (resource, name) -> the ConfigMap/Secret last read
        self._written: dict[str, list | None] = {}   # file volume -> the files written
        self._config_due = 0.0             # monotonic time of the next read of the volumes' objects
        self.claims: dict[str, dict] | None = None    # claim volume -> its host directory, once resolved
        self.probes = ProbeManager(self)
        self.task = asyncio.create_task(self._run(), name=f"pod-{uid[:8]}")

    # -- inputs --
    def update(self, pod: dict | None) -> None:
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def wake_after(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._timer is not None and self._timer_at <= at and not self._timer.cancelled() \
                and self._timer_at > loop.time():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._wake.set)

    async def stop(self) -> None:
        """Stop working on the pod (the agent is shutting down); the containers stay."""
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        self.probes.stop()
        self._unwatch_all()

    # -- the loop --
    async def _run(self) -> None:
        while not self.done:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.done = await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one pod's failure never stops the agent
                log.exception("sync of pod %s failed: %s", self.uid, e)
                self.wake_after(1.0)
        self.probes.stop()
        self._unwatch_all()
        self.agent.worker_done(self.uid)

    # -- exit notifications through pidfds (no polling) --
    def _watch(self, cid: str, pid: int) -> None:
        if cid in self._watched or not pid:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            self.wake_after(0.05)
            return
        self._watched[cid] = fd
        loop = asyncio.get_running_loop()

        def exited() -> None:
            self._unwatch(cid)
            self.wake_after(0.02)  # the monitor records the exit a moment after it
        loop.add_reader(fd, exited)

    def _unwatch(self, cid: str) -> None:
        fd = self._watched.pop(cid, None)
        if fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(fd)
            except RuntimeError:
                pass
            os.close(fd)

    def _unwatch_all(self) -> None:
        for cid in list(self._watched):
            self._unwatch(cid)

    # -- the sync --
    async def sync(self) -> bool:
        """One step towards the pod's spec. True when the worker is finished."""
        pod = self.pod
        if pod is None:
            return True
        if self.gone or pod["metadata"].get("deletionTimestamp"):
            self.probes.stop()
            await self.terminate()
            return True
        a = self.agent
        rt = a.runtime
        spec = pod["spec"]
        infos = rt.containers(self.uid)
        if self.failed is None and (why := forbidden_sysctl(spec)):
            self.failed = ("SysctlForbidden", f"Pod was rejected: {why}")
            a.events.record(pod, "Warning", "SysctlForbidden", why)
        if self.failed is None and self._past_deadline(pod):
            self.failed = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
            a.events.record(pod, "Warning", "DeadlineExceeded", self.failed[1])
        if self.failed is not None or self._finished(spec, infos):
            sidecars = [i for i in infos if i.state == "running"]
            if sidecars:   # the regular containers are done: so are the sidecars
                await self.kill_containers(sidecars, float(spec.get("terminationGracePeriodSeconds", 30) or 0))
                infos = rt.containers(self.uid)
            self.probes.sync(pod, infos)
            await self.write_status(rt.sandbox(self.uid), infos)
            return False
        if self.claims is None and spec.get("volumes") and claim_volumes(spec) \
                and not await self.mount_claims(pod) and not infos:
            await self.write_status(rt.sandbox(self.uid), infos)
            return False
        sb = rt.sandbox(self.uid)
        if sb is None or not sb.running:
            if sb is not None:
                log.info("pod %s: sandbox is gone, making a new one", pod_ref(pod))
                await self.kill_containers(infos, 0)
                rt.remove_pod(self.uid)
            try:
                sb = await rt.run_sandbox_async(pod)
            except SkiffError as e:
                a.events.record(pod, "Warning", "FailedCreatePodSandBox",
                                f"Failed to create pod sandbox: {e}")
                for c in spec["containers"]:
                    self.waiting[c["name"]] = ("ContainerCreating", "")
                await self.write_status(None, infos)
                self.wake_after(a.config.sandbox_retry)
                return False
            infos = rt.containers(self.uid)
        if await self.sync_init_containers(pod, sb, infos):
            for c in spec["containers"]:
                await self.sync_container(pod, sb, c, infos)
            for c in spec.get("ephemeralContainers") or []:     # kubectl debug's: started once
                await self.sync_container(pod, sb, c, rt.containers(self.uid))
        else:
            for c in spec["containers"]:
                self.waiting[c["name"]] = ("PodInitializing", "")
        infos = rt.containers(self.uid)
        for i in infos:
            if i.state == "running":
                if i.pid and not os.path.exists(f"/proc/{i.pid}"):
                    self.wake_after(0.05)
                else:
                    self._watch(i.id, i.pid)
        self.sb_ip = sb.ip
        if self._written:
            self.refresh_downward_volumes(pod)
            await self.renew_tokens(pod)
            await self.refresh_object_volumes(pod)
        self.probes.sync(pod, infos)
        await self.write_status(sb, infos)
        return False

    async def mount_claims(self, pod: dict) -> bool:
        """Resolve the pod's PersistentVolumeClaims to directories of this host (skiff.agent.claims);
        False (a FailedMount event, the containers ContainerCreating, a retry) while one is not ready."""
        try:
            self.claims = await resolve_claims(self.agent, pod)
            return True
        except (ConfigError, OSError) as e:
            for c in pod["spec"]["containers"]:
                self.waiting[c["name"]] = ("ContainerCreating", "")
            self.agent.events.record(pod, "Warning", "FailedMount", str(e))
            log.info("pod %s: %s", pod_ref(pod), e)
            self.wake_after(CLAIM_RETRY)
            return False

    async def sync_init_containers(self, pod: dict, sb, infos: list) -> bool:
        """Run the init containers in order, each to success before the next starts (a
        sidecar, restartPolicy Always, only has to be running); True when the regular
        containers may run. Once one of those has started, the sidecars are only kept
        running, as the kubelet does."""
        inits = pod["spec"].get("initContainers")
        if not inits:
            return True
        regular = {c["name"] for c in pod["spec"]["containers"]}
        initialized = any(i.name in regular for i in infos)
        for c in inits:
            name = c["name"]
            if is_sidecar(c):
                await self.sync_container(pod, sb, c, infos)
                cur, _ = pstatus.latest_two(self.agent.runtime.containers(self.uid), name)
                if not initialized and (cur is None or cur.state != "running"):
                    return False
                continue
            if initialized:
                continue
            cur, _ = pstatus.latest_two(infos, name)
            if cur is not None and cur.state == "exited" and cur.exit_code == 0:
                self.waiting.pop(name, None)
                continue
            await self.sync_container(pod, sb, c, infos)
            return False
        return True

    def _past_deadline(self, pod: dict) -> bool:
        """activeDeadlineSeconds has run out since the pod started here (the kubelet then kills
        its containers and fails it); otherwise wake when it will."""
        limit = pod["spec"].get("activeDeadlineSeconds")
        started = _epoch(((self.last_status or pod.get("status")) or {}).get("startTime"))
        if not isinstance(limit, int) or isinstance(limit, bool):
            return False
        left = started + limit - time.time()
        if left > 0:
            self.wake_after(left)
        return left <= 0

    def _finished(self, spec: dict, infos: list) -> bool:
        """Nothing will run again: every container exited for good under the policy (or, with
        restartPolicy Never, an init container failed)."""
        policy = spec.get("restartPolicy", "Always")
        if policy == "Always":
            return False
        if policy == "Never":
            for c in spec.get("initContainers") or []:
                cur, _ = pstatus.latest_two(infos, c["name"])
                if not is_sidecar(c) and cur is not None and cur.state == "exited" and cur.exit_code != 0:
                    return True
        for c in spec["containers"]:
            cur, _ = pstatus.latest_two(infos, c["name"])
            if cur is None or cur.state != "exited":
                return False
            if policy == "OnFailure" and cur.exit_code != 0:
                return False
        return True

    async def sync_container(self, pod: dict, sb, c: dict, infos: list) -> None:
        a = self.agent
        name = c["name"]
        cur, _prev = pstatus.latest_two(infos, name)
        policy = pod["spec"].get("restartPolicy", "Always")
        attempt = 0
        if cur is not None and cur.state == "running":
            self.waiting.pop(name, None)
            return
        fp = field_path(pod, name)
        if cur is not None and cur.state == "exited":
            if fp.startswith("spec.ephemeralContainers"):
                restart = False         # an ephemeral container is never restarted
            elif is_sidecar(c):
                restart = True
            elif fp.startswith("spec.initContainers"):
                restart = cur.exit_code != 0 and policy != "Never"
            else:
                restart = policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0)
            if not restart:
                self.waiting.pop(name, None)
                return
            key = (self.uid, name)
            left = a.backoff.wait_left(key, _epoch(cur.started_at), _epoch(cur.finished_at), time.time())
            if left > 0:
                delay = a.backoff._delay.get(key, 0)
                m = pod["metadata"]
                self.waiting[name] = ("CrashLoopBackOff",
                                      f"back-off {_fmt(delay)} restarting failed container={name} "
                                      f"pod={m['name']}_{m.get('namespace', 'default')}({self.uid})")
                if self.announced.get(name) != cur.id:
                    self.announced[name] = cur.id
                    a.events.record(pod, "Warning", "BackOff", f"Back-off restarting failed container "
                                    f"{name} in pod {m['name']}_{m.get('namespace', 'default')}({self.uid})",
                                    field_path=fp)
                self.wake_after(left)
                return
            a.backoff.restarted(key)
            attempt = cur.attempt + 1
        elif cur is not None:  # created but never started: start it over
            a.runtime.remove_container(cur.id)
            attempt = cur.attempt
        try:
            await a.images.ensure(pod, c, lambda: self.pull_auths(pod))
        except SkiffError as e:
            self.waiting[name] = (getattr(e, "reason", "ErrImagePull"), str(e))
            self.wake_after(a.config.image_retry)
            return
        try:
            await self.prepare_config(pod, c)
            env = container_env(pod, c, sb.ip, a.host_ip, self._objects, services=await a.known_services())
        except (ConfigError, SkiffError, OSError) as e:
            if not isinstance(e, ConfigError):
                e = ConfigError(str(e))
            if e.reason == "FailedMount":
                self.waiting[name] = ("ContainerCreating", "")
                a.events.record(pod, "Warning", "FailedMount", str(e))
            else:
                self.waiting[name] = (e.reason, str(e))
                a.events.record(pod, "Warning", "Failed", f"Error: {e}", field_path=fp)
            log.warning("pod %s: container %s: %s", pod_ref(pod), name, e,
                        extra={"fields": {"pod": pod_ref(pod), "container": name, "reason": e.reason}})
            self.wake_after(CONFIG_RETRY)
            return
        try:
            cc = dict(c)
            cc["command"] = expand_argv(c.get("command"), env)
            cc["args"] = expand_argv(c.get("args"), env)
            if self.claims:     # claim volumes are mounted as the host directories they resolved to
                cc = read_only_mounts(cc, self.claims)
                info = await a.runtime.start_container_async(runtime_pod(pod, self.claims), sb, cc, attempt, env)
            else:
                info = await a.runtime.start_container_async(pod, sb, cc, attempt, env)
        except SkiffError as e:
            reason = getattr(e, "reason", "") or (  # a ConfigError: CreateContainerConfigError
                "CreateContainerError" if "exec" not in str(e) else "RunContainerError")
            self.waiting[name] = (reason, str(e))
            a.events.record(pod, "Warning", "Failed", f"Error: {e}", field_path=fp)
            log.warning("pod %s: container %s failed to start: %s", pod_ref(pod), name, e,
                        extra={"fields": {"pod": pod_ref(pod), "container": name, "reason": reason}})
            # a failed start counts as a crash for the back-off
            a.backoff.restarted((self.uid, name))
            self.wake_after(a.backoff._delay.get((self.uid, name), 1.0))
            return
        self.waiting.pop(name, None)
        a.events.record(pod, "Normal", "Created", f"Created container {name}", field_path=fp)
        a.events.record(pod, "Normal", "Started", f"Started container {name}", field_path=fp)
        log.info("pod %s: started container %s (attempt %d)", pod_ref(pod), name, attempt,
                 extra={"fields": {"pod": pod_ref(pod), "container": name, "restartCount": attempt,
                                   "containerID": info.id}})
        self._watch(info.id, info.pid)
        post = (c.get("lifecycle") or {}).get("postStart")
        if post:
            msg = await run_hook(a.runtime, pod, c, info.id, post, POST_START_TIMEOUT, sb.ip)
            if msg:
                a.events.record(pod, "Warning", "FailedPostStartHook", msg, field_path=fp)
                a.events.record(pod, "Normal", "Killing", "FailedPostStartHook", field_path=fp)
                log.warning("pod %s: container %s: %s", pod_ref(pod), name, msg)
                grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30) or 0)
                await stop_container(a, pod, info, grace, sb.ip)   # its preStop too, as the kubelet
        # keep the current and the previous instance (for logs --previous), drop older ones
        for old in infos:
            if old.name == name and old.attempt < attempt - 1 and old.state != "running":
                try:
                    a.runtime.remove_container(old.id)
                except SkiffError:
                    pass

    async def pull_auths(self, pod: dict) -> dict:
        """The registry credentials of the pod's imagePullSecrets; a missing one is an event
        (FailedToRetrieveImagePullSecret) and the pull is tried without it, as the kubelet does."""
        from .images import docker_auths
        names = [s.get("name") for s in pod["spec"].get("imagePullSecrets") or [] if s.get("name")]
        if not names:
            return {}
        objs = await fetch_refs(self.agent.client, pod["metadata"].get("namespace") or "default",
                                {("secrets", n) for n in names})
        auths, missing = {}, []
        for n in names:
            if objs.get(("secrets", n)) is None:
                missing.append(n)
            else:
                auths.update(docker_auths(objs[("secrets", n)]))
        if missing:
            self.agent.events.record(pod, "Warning", "FailedToRetrieveImagePullSecret",
                                     f"Unable to retrieve some image pull secrets ({', '.join(missing)}); "
                                     f"attempting to pull the image may not succeed.")
        return auths

    async def prepare_config(self, pod: dict, c: dict) -> None:
        """Get the ConfigMaps and Secrets container ``c`` uses (env and volumes) and write the
        file volumes it mounts (configMap, secret, downwardAPI, projected); ConfigError when a
        required object or key is missing."""
        spec = pod["spec"]
        refs = env_refs(c) | volume_refs(spec, c)
        if refs:   # read now (max_age 0), as the kubelet reads a new pod's objects
            ns = pod["metadata"].get("namespace") or "default"
            self._objects.update(await fetch_refs(self.agent.client, ns, refs,
                                                  cache=getattr(self.agent, "objects", None)))
            self._config_due = time.monotonic() + self.agent.config.sync_frequency
        for vname, src in token_sources(spec, c):
            if token_key(src) not in self._objects:
                self._objects[token_key(src)] = await request_token(self.agent.client, pod, vname, src)
        mounted = {vm.get("name") for vm in c.get("volumeMounts") or []}
        for vol in spec.get("volumes") or []:
            if vol.get("name") in mounted and is_file_volume(vol):
                self._write_volume(pod, vol, c)

    def _write_volume(self, pod: dict, vol: dict, c: dict) -> None:
        files = volume_files(vol, self._objects, pod)
        writer = getattr(self.agent.runtime, "write_config_volume", None)
        if writer is not None:
            secret = holds_secrets(vol)
            owner = _owner(pod["spec"], c) if secret else None
            writer(self.uid, vol["name"], files, secret=secret, owner=owner)
        self._written[vol["name"]] = files

    def _rewrite_volume(self, pod: dict, vol: dict) -> None:
        """Write a file volume again, as the first container that mounts it sees it."""
        spec = pod["spec"]
        c = next(c for c in spec["containers"] + (spec.get("initContainers") or [])
                 if any(vm.get("name") == vol.get("name") for vm in c.get("volumeMounts") or []))
        self._write_volume(pod, vol, c)

    def refresh_downward_volumes(self, pod: dict) -> None:
        """Rewrite the written downwardAPI files whose pod fields changed (a label or an
        annotation), as the kubelet does; the containers see the new files in place."""
        self._refresh_volumes(pod, [v for v in pod["spec"].get("volumes") or [] if has_downward_files(v)])

    async def refresh_object_volumes(self, pod: dict) -> None:
        """Once a sync period (``sync_frequency``), read the ConfigMaps and Secrets of the
        written volumes again, through the agent's cache (one GET per object and node a
        period), and rewrite the volumes whose files changed: a running container sees the
        new files, swapped in at once (``..data``), as with the kubelet. Environment variables
        keep the values their container started with. An object that can no longer be read,
        or lost a key, leaves the files as they were (a FailedMount event). Immutable ones are
        not read again."""
        now = time.monotonic()
        if now < self._config_due:
            return
        period = self.agent.config.sync_frequency
        self._config_due = now + period
        vols = [v for v in pod["spec"].get("volumes") or [] if v.get("name") in self._written and object_refs(v)]
        # an immutable object cannot change: it is not read again (nor watched by the kubelet)
        refs = {r for v in vols for r in object_refs(v) if not (self._objects.get(r) or {}).get("immutable")}
        if not refs:
            return
        try:
            self._objects.update(await fetch_refs(self.agent.client, pod["metadata"].get("namespace") or "default",
                                                  refs, cache=getattr(self.agent, "objects", None), max_age=period))
        except Exception as e:  # noqa: BLE001 - the API unreachable too: the files stay, tried next period
            log.warning("pod %s: reading its volumes' objects again: %s", pod_ref(pod), e)
            return
        self._refresh_volumes(pod, vols, event=True)

    def _refresh_volumes(self, pod: dict, vols: list[dict], event: bool = False) -> None:
        for vol in vols:
            name = vol.get("name")
            if name not in self._written:
                continue
            try:
                files = volume_files(vol, self._objects, pod)
            except ConfigError as e:
                log.warning("pod %s: volume %s: %s", pod_ref(pod), name, e)
                if event:
                    self.agent.events.record(pod, "Warning", e.reason, str(e))
                continue
            if files != self._written[name]:
                self._rewrite_volume(pod, vol)

    async def renew_tokens(self, pod: dict) -> None:
        """Request a new token for each written projected token whose renewal time came (80% of
        its life) and rewrite its volume in place, as the kubelet's token manager; a refusal is
        logged and tried again at the next sync."""
        now = time.monotonic()
        for vname, src in token_sources(pod["spec"]):
            held = self._objects.get(token_key(src))
            if vname not in self._written or held is None or held["renew_at"] > now:
                continue
            try:
                self._objects[token_key(src)] = await request_token(self.agent.client, pod, vname, src)
            except ConfigError as e:
                log.warning("pod %s: %s", pod_ref(pod), e)
                continue
            self._rewrite_volume(pod, next(v for v in pod["spec"].get("volumes") or [] if v.get("name") == vname))

    def pod_ip(self) -> str:
        return self.sb_ip or (self.last_status or {}).get("podIP", "")

    async def write_status(self, sb, infos: list) -> None:
        a = self.agent
        pod = self.pod
        assert pod is not None
        # the API's copy is the truth: someone else (the node lifecycle controller) may have
        # changed it; a write that would change nothing there is skipped
        cur = pod.get("status") or {}
        st = pstatus.pod_status(pod, sb, infos, self.waiting, a.node_ready, a.host_ip,
                                cur or self.last_status, self.probes, self.failed)
        from skiff.controller.patch import merge_patch
        if merge_patch(cur, st) == cur:
            self.last_status = st
            return
        try:
            await a.client.patch("pods", pod["metadata"]["name"], {"status": st},
                                 pod["metadata"].get("namespace"), subresource="status")
        except Exception as e:  # noqa: BLE001 - the API may be away: try again later
            from skiff.api.errors import APIError
            if isinstance(e, APIError) and e.code == 404:
                return
            log.warning("pod %s: status update failed: %s", pod_ref(pod), e)
            self.wake_after(1.0)
            return
        if (self.last_status or {}).get("phase") != st["phase"]:
            log.info("pod %s is %s", pod_ref(pod), st["phase"],
                     extra={"fields": {"pod": pod_ref(pod), "phase": st["phase"],
                                       "podIP": st.get("podIP", "")}})
        self.last_status = st

    # -- stopping --
    async def kill_containers(self, infos: list, grace: float) -> None:
        """Stop every running container at once, each as :func:`hooks.stop_container` does:
        its preStop hook, the stop signal (the image's), SIGKILL after ``grace``."""
        running = [i for i in infos if i.state == "running"]
        for i in running:
            if self.pod is not None:
                self.agent.events.record(self.pod, "Normal", "Killing", f"Stopping container {i.name}",
                                         field_path=field_path(self.pod, i.name))
        await asyncio.gather(*(stop_container(self.agent, self.pod, i, grace, self.pod_ip()) for i in running))

    async def terminate(self) -> None:
        a = self.agent
        pod = self.pod
        assert pod is not None
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        if self.gone:
            grace = 0 if grace is None else grace
        await self.kill_containers(a.runtime.containers(self.uid), float(grace))
        self._unwatch_all()
        a.runtime.remove_pod(self.uid)
        a.backoff.forget(self.uid)
        a.images.forget(self.uid)
        log.info("pod %s: stopped and removed", pod_ref(pod),
                 extra={"fields": {"pod": pod_ref(pod), "uid": self.uid}})
        if not self.gone:
            from skiff.api.errors import APIError
            try:
                await a.client.delete("pods", meta["name"], meta.get("namespace"), grace_period_seconds=0,
                                      preconditions={"uid": self.uid})
            except APIError as e:
                if e.code not in (404, 409):
                    raise


CONFIG_RETRY = 2.0   # seconds before a container whose ConfigMap/Secret is missing is tried again


def _owner(spec: dict, c: dict) -> tuple[int, int] | None:
    """Who owns a secret volume's files: the container's runAsUser (group: fsGroup, else
    runAsGroup, else 0); None (root) without a runAsUser."""
    psc, csc = spec.get("securityContext") or {}, c.get("securityContext") or {}
    user = csc.get("runAsUser", psc.get("runAsUser"))
    if not isinstance(user, int) or isinstance(user, bool):
        return None
    group = psc.get("fsGroup", csc.get("runAsGroup", psc.get("runAsGroup"))) or 0
    return (user, int(group))


def _fmt(seconds: float) -> str:
    s = int(seconds)
    if s >= 60 and s % 60 == 0:
        return f"{s // 60}m0s"
    if s >= 60:
        return f"{s // 60}m{s % 60}s"
    return f"{s}s"
