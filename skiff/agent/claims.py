"""PersistentVolumeClaims on the node (the kubelet's volume manager for skiff's two volume
sources, and the node half of skiff's local-path provisioner).

Mounting: a pod's ``persistentVolumeClaim`` volumes are resolved before its sandbox is made:
claim -> Bound -> its PersistentVolume -> a directory of this host (``hostPath.path`` or
``local.path``). Until every claim is bound the pod waits in ContainerCreating with FailedMount
events (the kubelet's words: ``Unable to attach or mount volumes: unmounted volumes=[data],
unattached volumes=[data]: error processing PVC default/data: PVC is not bound``). The resolved
volume is then bind-mounted like a hostPath volume (readOnly of the claim source honoured,
subPath as for every volume).

Local-path volumes: the agent keeps them under ``<root>/storage`` (published on its Node as the
``skiff.dev/local-path-dir`` annotation, where the controller's provisioner reads it) as
``pvc-<claim uid>_<namespace>_<claim>``, made (mode 0777, as k3s's) at the first mount. When such
a volume of this node is deleted (reclaim policy Delete), the agent removes its directory and
then the volume's ``skiff.dev/local-path-cleanup`` finalizer. Nothing outside the storage
directory is ever removed: the path must be a direct child of it named ``pvc-...``, not a
symlink, with no mount below it.
"""
from __future__ import annotations

import asyncio
import logging
import os

from skiff.api.errors import APIError
from skiff.controller.volumes import logic as L

from .env import ConfigError

__all__ = ["storage_dir", "claim_volumes", "resolve_claims", "LocalPathReclaimer", "publish_storage_dir",
           "CLAIM_RETRY"]

log = logging.getLogger("skiff.agent")

CLAIM_RETRY = 2.0       # seconds between two looks at a pod's unbound claims


def storage_dir(root: str) -> str:
    return os.path.join(os.path.abspath(root), "storage")


def claim_volumes(spec: dict) -> list[dict]:
    return [v for v in spec.get("volumes") or () if isinstance(v.get("persistentVolumeClaim"), dict)]


def _inside(base: str, path: str) -> bool:
    """``path`` is a direct child of ``base`` named pvc-..., both resolved, and no symlink."""
    base = os.path.realpath(base)
    if os.path.islink(path):
        return False
    real = os.path.realpath(path)
    return os.path.dirname(real) == base and os.path.basename(real).startswith("pvc-") and \
        os.path.normpath(path) == real


def _is_local_path(pv: dict, node: str) -> bool:
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    return ann.get(L.ANN_PROVISIONED_BY) == L.LOCAL_PATH_PROVISIONER and ann.get(L.ANN_LOCAL_PATH_NODE) == node


def _volume_path(pv: dict) -> tuple[str, str]:
    """(path, hostPath type) of a volume skiff can mount; ConfigError for the others."""
    spec = pv.get("spec") or {}
    if isinstance(spec.get("hostPath"), dict):
        return spec["hostPath"].get("path") or "", spec["hostPath"].get("type") or ""
    if isinstance(spec.get("local"), dict):
        return spec["local"].get("path") or "", "Directory"
    raise ConfigError(f'persistentvolume "{(pv.get("metadata") or {}).get("name")}": its source is not supported '
                      f'by skiff (hostPath, local)', "FailedMount")


async def resolve_claims(agent, pod: dict) -> dict[str, dict]:
    """{volume name: the hostPath volume source to mount} for the pod's claim volumes, or
    ConfigError (reason FailedMount) while one is not ready."""
    md = pod.get("metadata") or {}
    ns = md.get("namespace") or "default"
    vols = claim_volumes(pod.get("spec") or {})
    names = " ".join(v.get("name", "") for v in vols)
    out: dict[str, dict] = {}

    def fail(why: str) -> ConfigError:
        return ConfigError(f"Unable to attach or mount volumes: unmounted volumes=[{names}], "
                           f"unattached volumes=[{names}]: {why}", "FailedMount")

    for v in vols:
        claim = v["persistentVolumeClaim"].get("claimName") or ""
        try:
            pvc = await agent.client.get("persistentvolumeclaims", claim, ns)
        except APIError as e:
            raise fail(f"error processing PVC {ns}/{claim}: failed to fetch PVC from API server: {e.message}") \
                from None
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            raise fail(f"error processing PVC {ns}/{claim}: can't start pod because PVC {ns}/{claim} is being "
                       f"deleted")
        vol_name = (pvc.get("spec") or {}).get("volumeName")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not vol_name:
            raise fail(f"error processing PVC {ns}/{claim}: PVC is not bound")
        try:
            pv = await agent.client.get("persistentvolumes", vol_name)
        except APIError as e:
            raise fail(f"error processing PVC {ns}/{claim}: failed to fetch PV {vol_name} from API server: "
                       f"{e.message}") from None
        if not L.pv_matches_node(pv, agent.name, None if not getattr(agent, "node_labels", None)
                                 else agent.node_labels):
            raise fail(f'persistentvolume "{vol_name}" has node affinity that does not match node "{agent.name}"')
        path, typ = _volume_path(pv)
        if _is_local_path(pv, agent.name):
            base = storage_dir(agent.config.root)
            if not os.path.isabs(path) or os.path.dirname(os.path.normpath(path)) != os.path.realpath(base):
                raise fail(f'persistentvolume "{vol_name}": its path {path} is not in this node\'s storage '
                           f'directory {base}')
            if not os.path.isdir(path):
                os.makedirs(base, 0o755, exist_ok=True)
                os.mkdir(path, 0o777)
                os.chmod(path, 0o777)     # any runAsUser may write, as k3s's local-path makes it
            typ = "Directory"
        elif typ == "Directory" and not os.path.isdir(path):
            raise fail(f'persistentvolume "{vol_name}": path {path} does not exist on node "{agent.name}"')
        out[v.get("name", "")] = {"path": path, "type": typ,
                                  "readOnly": bool(v["persistentVolumeClaim"].get("readOnly"))}
    return out


def runtime_pod(pod: dict, resolved: dict[str, dict]) -> dict:
    """The pod as the runtime mounts it: each claim volume a hostPath volume of its directory."""
    spec = pod["spec"]
    vols = []
    for v in spec.get("volumes") or ():
        r = resolved.get(v.get("name")) if "persistentVolumeClaim" in v else None
        vols.append({"name": v["name"], "hostPath": {"path": r["path"], "type": r["type"]}} if r else v)
    return {**pod, "spec": {**spec, "volumes": vols}}


def read_only_mounts(c: dict, resolved: dict[str, dict]) -> dict:
    """The container with its mounts of read-only claims made read-only."""
    ro = {n for n, r in resolved.items() if r.get("readOnly")}
    if not ro or not any(m.get("name") in ro for m in c.get("volumeMounts") or ()):
        return c
    return {**c, "volumeMounts": [dict(m, readOnly=True) if m.get("name") in ro else m
                                  for m in c.get("volumeMounts") or ()]}


async def publish_storage_dir(agent) -> None:
    """Tell the provisioner where this node's local-path volumes go (a Node annotation)."""
    base = storage_dir(agent.config.root)
    os.makedirs(base, 0o755, exist_ok=True)
    await agent.client.patch("nodes", agent.name, {"metadata": {"annotations": {L.LOCAL_PATH_DIR_ANNOTATION: base}}})


class LocalPathReclaimer:
    """Watches PersistentVolumes; removes the data of this node's deleted local-path volumes."""

    def __init__(self, agent):
        self.agent = agent
        self.base = storage_dir(agent.config.root)
        self.informer = None
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        from skiff.api.informer import Informer
        self.informer = Informer(self.agent.client, "persistentvolumes", name="agent-local-path")
        self.informer.add_handler(self._on_volume)
        await self.informer.start()

    async def stop(self) -> None:
        if self.informer is not None:
            await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_volume(self, typ: str, pv: dict, old: dict | None) -> None:
        md = pv.get("metadata") or {}
        if typ == "DELETED" or not md.get("deletionTimestamp") or L.LOCAL_PATH_FINALIZER not in (
                md.get("finalizers") or ()) or not _is_local_path(pv, self.agent.name):
            return
        name = md.get("name")
        if name in self._busy:
            return
        self._busy.add(name)
        t = asyncio.create_task(self._reclaim(name))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _reclaim(self, name: str) -> None:
        try:
            for attempt in range(30):
                pv = self.informer.get(name) if self.informer is not None else None
                if pv is None or L.LOCAL_PATH_FINALIZER not in ((pv.get("metadata") or {}).get("finalizers") or ()):
                    return
                try:
                    if await asyncio.get_running_loop().run_in_executor(None, self.remove_data, pv):
                        await self._drop_finalizer(pv)
                        return
                except APIError as e:
                    if e.code == 404:
                        return
                    log.warning("local-path volume %s: %s", name, e.message)
                except OSError as e:
                    log.warning("local-path volume %s: cannot remove its data: %s", name, e)
                await asyncio.sleep(min(0.5 * 2 ** attempt, 30))
        finally:
            self._busy.discard(name)

    def remove_data(self, pv: dict) -> bool:
        """Remove the volume's directory; True when it is gone (or was never made). Refuses
        (False, a log line) anything that is not a pvc-... directory right under the storage
        directory, or that has a mount below it."""
        from skiff.runtime.fsutil import mounts_under, remove_tree
        path, _ = _volume_path(pv)
        name = (pv.get("metadata") or {}).get("name")
        if not path or not os.path.isabs(path) or ".." in path.split("/"):
            log.warning("local-path volume %s: path %r is not a clean absolute path: data left alone", name, path)
            return False
        if not os.path.lexists(path):
            return True
        if not _inside(self.base, path):
            log.warning("local-path volume %s: %s is not a volume directory of %s: data left alone",
                        name, path, self.base)
            return False
        if mounts_under(path):
            log.warning("local-path volume %s: %s is still mounted: data kept for now", name, path)
            return False
        remove_tree(path)
        log.info("removed the data of local-path volume %s", name, extra={"fields": {"volume": name, "path": path}})
        return not os.path.lexists(path)

    async def _drop_finalizer(self, pv: dict) -> None:
        md = pv["metadata"]
        fins = [f for f in md.get("finalizers") or () if f != L.LOCAL_PATH_FINALIZER]
        await self.agent.client.update("persistentvolumes", {**pv, "metadata": {**md, "finalizers": fins}})
