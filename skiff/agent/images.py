"""Images for the pod workers: present, or pulled as the container's imagePullPolicy says.

Pulls run as a `skiff pull` child process, so that the agent stays single-threaded (a
thread would make every later container start spawn its monitor instead of forking it);
concurrent pulls of one image share one attempt. A failed pull is remembered for a short while so that a crashing pod
does not hammer the registry (ImagePullBackOff).
"""
from __future__ import annotations

import asyncio
import logging
import time

from skiff.errors import NotFound, SkiffError

from .env import field_path

log = logging.getLogger("skiff.agent")


class ImageError(SkiffError):
    """Why a container's image is not there; ``reason`` is the container's waiting reason
    (ErrImagePull, ImagePullBackOff, ErrImageNeverPull, as the kubelet says)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class ImageManager:
    def __init__(self, images, events, insecure: bool = False, failure_backoff: float = 10.0):
        self.images = images          # skiff.runtime.images.store.ImageStore (its root is pulled into)
        self.events = events
        self.insecure = insecure
        self.failure_backoff = failure_backoff
        self._pulls: dict[str, asyncio.Future] = {}
        # (pod uid, image) -> (until when, why): the back-off is the pod's, as the kubelet's
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}

    def present(self, ref: str) -> bool:
        try:
            self.images.resolve(ref)
            return True
        except (NotFound, SkiffError):
            return False

    async def ensure(self, pod: dict, c: dict, auths=None) -> None:
        """The container's image present, pulled if its policy says so. ``auths``: an async
        callable giving the registry credentials of the pod's imagePullSecrets (docker's
        ``auths`` map), asked only when a pull is needed."""
        ref = c["image"]
        policy = c.get("imagePullPolicy", "IfNotPresent")
        fp = field_path(pod, c["name"])
        if policy != "Always" and self.present(ref):
            self.events.record(pod, "Normal", "Pulled",
                               f'Container image "{ref}" already present on machine', field_path=fp)
            return
        if policy == "Never":
            msg = f'Container image "{ref}" is not present with pull policy of Never'
            self.events.record(pod, "Warning", "ErrImageNeverPull", msg, field_path=fp)
            raise ImageError("ErrImageNeverPull", msg)
        key = ((pod.get("metadata") or {}).get("uid", ""), ref)
        failed = self._failed.get(key)
        if failed and time.monotonic() < failed[0]:
            msg = f'Back-off pulling image "{ref}": {failed[1]}'
            self.events.record(pod, "Normal", "BackOff", msg, field_path=fp)
            raise ImageError("ImagePullBackOff", msg)
        self.events.record(pod, "Normal", "Pulling", f'Pulling image "{ref}"', field_path=fp)
        t0 = time.monotonic()
        try:
            await self._pull(ref, await auths() if auths is not None else None)
        except SkiffError as e:
            self._failed[key] = (time.monotonic() + self.failure_backoff, str(e))
            self.events.record(pod, "Warning", "Failed", f'Failed to pull image "{ref}": {e}', field_path=fp)
            raise ImageError("ErrImagePull", f'Failed to pull image "{ref}": {e}') from None
        self._failed.pop(key, None)
        self.events.record(pod, "Normal", "Pulled",
                           f'Successfully pulled image "{ref}" in {time.monotonic() - t0:.3f}s', field_path=fp)

    def forget(self, pod_uid: str) -> None:
        """Drop a gone pod's pull back-offs."""
        for key in [k for k in self._failed if k[0] == pod_uid]:
            del self._failed[key]

    async def _pull(self, ref: str, auths: dict | None = None) -> None:
        fut = self._pulls.get(ref)
        if fut is None:
            fut = asyncio.ensure_future(self._pull_child(ref, auths))
            self._pulls[ref] = fut
            fut.add_done_callback(lambda _f: self._pulls.pop(ref, None))
        await asyncio.shield(fut)

    async def _pull_child(self, ref: str, auths: dict | None = None) -> None:
        import os
        import sys
        argv = [sys.executable, "-m", "skiff", "--root", self.images.root.path, "pull", ref]
        if self.insecure:
            argv.insert(-1, "--insecure")
        env, conf = None, None
        if auths:   # the pod's credentials, for this pull only: a config dir of the agent's own
            conf = credentials_dir(self.images.root.path, auths)
            env = dict(os.environ, SKIFF_CONFIG=conf)
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, env=env)
            _out, err = await proc.communicate()
        finally:
            if conf is not None:
                from skiff.runtime.fsutil import remove_tree
                remove_tree(conf)
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"]
            raise SkiffError(lines[-1].removeprefix("Error: "))
        log.info("pulled image %s", ref, extra={"fields": {"image": ref}})


def docker_auths(secret: dict) -> dict:
    """The ``auths`` of an image pull Secret (kubernetes.io/dockerconfigjson, or the older
    kubernetes.io/dockercfg whose JSON is the map itself); {} when it holds neither."""
    import base64
    import json
    data = secret.get("data") or {}
    for key, wrapped in ((".dockerconfigjson", True), (".dockercfg", False)):
        if data.get(key):
            try:
                cfg = json.loads(base64.b64decode(data[key]))
            except ValueError:
                return {}
            auths = cfg.get("auths") if wrapped else cfg
            return auths if isinstance(auths, dict) else {}
    return {}


def credentials_dir(root: str, auths: dict) -> str:
    """A private directory under the agent's root holding a config.json with ``auths`` (keys as
    skiff's credential store reads them), for one pull; the caller removes it."""
    import json
    import os
    import tempfile
    from skiff.runtime.images.auth import registry_key
    base = os.path.join(root, "tmp")
    os.makedirs(base, 0o700, exist_ok=True)
    d = tempfile.mkdtemp(prefix="pull-auth-", dir=base)
    fd = os.open(os.path.join(d, "config.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": {registry_key(k): v for k, v in auths.items()}}, f)
    return d


def use_pidfd_child_watcher() -> None:
    """Wait for child processes through pidfds (Python 3.11's default watcher starts a
    thread per child)."""
    import sys
    if sys.version_info >= (3, 12):
        return  # pidfds are the default there
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        w = asyncio.PidfdChildWatcher()
        w.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(w)
