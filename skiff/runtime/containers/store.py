"""Containers on disk: <root>/containers/<id>/ and the name index <root>/names/<name>.

Names are reserved with O_CREAT|O_EXCL, so that two processes can never take the
same one. Containers are found by name, full id or unique id prefix, as in docker.
"""

from __future__ import annotations

import os

from ...errors import Conflict, NotFound, SkiffError
from ..fsutil import remove_tree
from ..root import Root
from . import names
from .spec import ContainerSpec
from .state import EXITED, RUNNING, State, now_rfc3339


class Container:
    def __init__(self, store: "ContainerStore", cid: str):
        self.store, self.id = store, cid
        self.dir = os.path.join(store.root.containers, cid)
        self._spec: ContainerSpec | None = None

    @property
    def spec(self) -> ContainerSpec:
        if self._spec is None:
            try:
                self._spec = ContainerSpec.load(self.dir + "/config.json")
            except FileNotFoundError:
                raise NotFound(f"No such container: {self.id}") from None
        return self._spec

    @property
    def name(self) -> str:
        return self.spec.name

    def state(self) -> State:
        """The current state; a running container whose monitor is gone is reported exited,
        and what the monitor would have cleaned up is cleaned up now."""
        st = State.load(self.dir + "/state.json")
        if st.status == RUNNING and not st.monitor_alive:
            st = self.store.reap(self, st)
        return st


class ContainerStore:
    def __init__(self, root: Root):
        self.root = root

    # -- lookup --------------------------------------------------------------------------
    def by_id(self, cid: str) -> Container:
        return Container(self, cid)

    def get(self, ref: str) -> Container:
        ref = ref.lstrip("/")
        try:
            with open(os.path.join(self.root.names, ref)) as f:
                cid = f.read().strip()
            if os.path.isdir(os.path.join(self.root.containers, cid)):
                return Container(self, cid)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        if ref and all(c in "0123456789abcdef" for c in ref):
            if os.path.isfile(os.path.join(self.root.containers, ref, "config.json")):
                return Container(self, ref)
            matches = [c for c in self._ids() if c.startswith(ref)]
            if len(matches) == 1:
                return Container(self, matches[0])
            if len(matches) > 1:
                raise SkiffError(f'multiple containers found with provided prefix: {ref}')
        raise NotFound(f"No such container: {ref}")

    def exists(self, cid: str) -> bool:
        return os.path.isfile(os.path.join(self.root.containers, cid, "config.json"))

    def _ids(self) -> list[str]:
        try:
            return [d for d in os.listdir(self.root.containers)
                    if os.path.isfile(os.path.join(self.root.containers, d, "config.json"))]
        except FileNotFoundError:
            return []

    def list(self) -> list[Container]:
        cs = [Container(self, cid) for cid in self._ids()]
        out = []
        for c in cs:
            try:
                c.spec
            except NotFound:  # removed meanwhile
                continue
            out.append(c)
        out.sort(key=lambda c: c.spec.created, reverse=True)
        return out

    def users_of_image(self, image_id: str) -> list[str]:
        return [c.id for c in self.list() if c.spec.image_id == image_id]

    # -- create and remove ---------------------------------------------------------------
    def reserve_name(self, name: str | None, cid: str) -> str:
        self.root.ensure()
        for attempt in range(20):
            candidate = names.check(name) if name else names.generate(attempt)
            try:
                fd = os.open(os.path.join(self.root.names, candidate),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                if self._drop_stale_name(candidate):
                    continue
                if name:
                    holder = self._name_holder(candidate)
                    raise Conflict(f'Conflict. The container name "/{candidate}" is already in use '
                                   f'by container "{holder}". You have to remove (or rename) that '
                                   f'container to be able to reuse that name.') from None
                continue
            os.write(fd, cid.encode())
            os.close(fd)
            return candidate
        raise SkiffError("could not generate a unique container name")

    def _drop_stale_name(self, name: str, grace: float = 30.0) -> bool:
        """A name whose container was never written (its CLI was killed mid-create) is freed
        once it is older than ``grace`` seconds (younger ones may be a create in progress)."""
        import time
        path = os.path.join(self.root.names, name)
        holder = self._name_holder(name)
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return True
        if holder != "?" and not self.exists(holder) and age > grace:
            self.release_name(name, holder)
            return True
        return False

    def _name_holder(self, name: str) -> str:
        try:
            with open(os.path.join(self.root.names, name)) as f:
                return f.read().strip()
        except OSError:
            return "?"

    def create(self, spec: ContainerSpec, etc_files: dict[str, str]) -> Container:
        """Write the container's directory. The name must already be reserved."""
        cdir = os.path.join(self.root.containers, spec.id)
        try:
            os.mkdir(cdir, 0o710)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(os.path.join(cdir, sub), 0o755)
            for name, content in etc_files.items():
                with open(os.path.join(cdir, name), "w") as f:
                    f.write(content)
            with open(cdir + "/config.json.tmp", "w") as f:
                f.write(spec.to_json())
            os.rename(cdir + "/config.json.tmp", cdir + "/config.json")
        except BaseException:
            remove_tree(cdir)
            self.release_name(spec.name, spec.id)
            raise
        return Container(self, spec.id)

    def release_name(self, name: str, cid: str) -> None:
        path = os.path.join(self.root.names, name)
        try:
            with open(path) as f:
                if f.read().strip() != cid:
                    return
            os.unlink(path)
        except FileNotFoundError:
            pass

    def remove_files(self, c: Container) -> None:
        """Delete the container's directory and name. The container must be stopped."""
        spec = c.spec
        # rename first so a half-deleted directory is never mistaken for a container
        doomed = os.path.join(self.root.tmp, f"rm-{c.id}")
        try:
            os.rename(c.dir, doomed)
        except FileNotFoundError:
            return
        self.release_name(spec.name, c.id)
        if spec.ip:
            from .create import release_address
            release_address(self, spec)
        remove_tree(doomed)

    def reap(self, c: Container, st: State) -> State:
        """The monitor died: record the container as exited and release what it held."""
        from ..fsutil import FileLock
        with FileLock(os.path.join(c.dir, ".lock")) if os.path.isdir(c.dir) else _nolock():
            fresh = State.load(c.dir + "/state.json")
            if fresh.status != RUNNING or fresh.monitor_alive:
                return fresh
            if fresh.cgroup:
                from .cgroups import detect
                try:
                    detect().load(fresh.cgroup).destroy()
                except (OSError, SkiffError):
                    pass
            if c.spec.bridge:  # what the monitor would have undone: port rules, the veth
                from ..network import endpoint
                try:
                    endpoint.detach(c.id, self.root.path, bool(fresh.ports))
                except Exception:  # noqa: BLE001 - best effort
                    pass
            fresh.status, fresh.exit_code, fresh.cgroup = EXITED, 137, None
            fresh.error = "the container's monitor process died"
            fresh.finished_at = fresh.finished_at or now_rfc3339()
            if c.spec.autoremove:
                self.remove_files(c)
            else:
                fresh.save(c.dir + "/state.json")
                from .create import release_address
                release_address(self, c.spec)
            return fresh


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return None
