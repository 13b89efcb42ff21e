"""The registry: the API's semantics over the store, shared by the HTTP server and the
in-process LocalClient.

Every method takes the calling ``user`` (default: admin), authorizes (node restriction),
and returns plain dicts or raises :class:`skiff.api.errors.APIError` carrying the Kubernetes
Status. Writes go through admission (defaults + schema, once per write), keep uid and
creationTimestamp, bump ``metadata.generation`` when the spec changes, split the status
subresource (a write on the object ignores status for kinds with a /status subresource; a
write on /status changes only status), and use the store's compare-and-swap.

Services get their cluster IPs and node ports from :mod:`skiff.controller.serviceips`, in the
same transaction as the store write (taken on create and update, freed on delete; nothing kept
by a dry run or a failed write); an update that leaves them out keeps them.

Pods are deleted gracefully (deletionTimestamp + deletionGracePeriodSeconds) when bound to a
node; the agent confirms with grace 0. Objects with finalizers are kept, marked for deletion,
until their finalizers are removed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from typing import Any, AsyncIterator

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.api.jsontree import json_copy
from skiff.api.resources import RESOURCES, Resource, namespace_for
from skiff.api.timefmt import rfc3339
from skiff.api.validation import (ValidationError, check_scheduling_gates_update, dns1123_subdomain_error,
                                  ephemeral_containers_update, validate_update)
from skiff.controller.admission import SERVER_SET_METADATA, admit
from skiff.controller.rbac import confirm_no_escalation
from skiff.controller.crd.kinds import (HOOKED as CRD_HOOKED, create_hook as crd_create_hook, refuse_strategic,
                                       status_hook as crd_status_hook, update_hook as crd_update_hook)
from skiff.controller.admission_limits import admit_pod_limit_ranges
from skiff.controller.admission_priority import (SYSTEM_PRIORITY_CLASSES, admit_pod_priority,
                                                 admit_priority_class, check_priority_class_delete)
from skiff.controller.admission_serviceaccount import admit_pod_service_account
from skiff.controller.quota import QuotaAdmission
from skiff.controller.auth import ADMIN, User, authorize
from skiff.controller.dryrun import DRY_RUN, DryRunStorage
from skiff.controller import managedfields as MF
from skiff.controller.registry_kinds import (RegistryKindsMixin, check_propagation_policy, gc_finalizers,
                                             patched, set_template_generation)
from skiff.controller.selectors import Selector, parse_selectors
from skiff.controller.serviceips import DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR, ServiceAllocator, fill_update
from skiff.controller.storage import StoreError, key_for, prefix_for
from skiff.controller.storage.base import IDLE, TICK, encode_continue

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_RETRIES = 8
EPHEMERAL = "ephemeralcontainers"     # the pods subresource kubectl debug adds containers through


def now_rfc3339(offset: float = 0.0) -> str:
    return rfc3339(time.time() + offset if offset else None)


def _qos(spec: dict) -> str:
    cs = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]
    any_set = False
    guaranteed = bool(cs)
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _keep_service_account(cur: dict, new: dict) -> None:
    """A pod update that names no ServiceAccount keeps the one the pod runs as (the create
    defaulted it; Kubernetes would refuse the update as a change of the immutable field)."""
    spec, cspec = new.get("spec"), cur.get("spec") or {}
    if isinstance(spec, dict) and not spec.get("serviceAccountName") and not spec.get("serviceAccount") \
            and cspec.get("serviceAccountName"):
        new["spec"] = {**spec, "serviceAccountName": cspec["serviceAccountName"]}


def _strip_rv(obj: dict) -> dict:
    md = dict(obj.get("metadata") or {})
    md.pop("resourceVersion", None)
    return {**obj, "metadata": md}


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(config: dict) -> str | None:
    """The applied configuration as kubectl writes its annotation (compact JSON, sorted keys,
    without the annotation itself, a trailing newline); None past Kubernetes' 256 KiB limit."""
    md = dict(config.get("metadata") or {})
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if "annotations" in md:
        md["annotations"] = ann
    text = json.dumps({**config, "metadata": md}, sort_keys=True, separators=(",", ":")) + "\n"
    return text if len(text) <= 256 * 1024 else None


class Registry(RegistryKindsMixin):
    def __init__(self, storage, *, bookmark_interval: float = 10.0, pod_eviction_timeout: int = 300,
                 service_cidr: str = DEFAULT_SERVICE_CIDR, node_port_range: str = DEFAULT_NODE_PORT_RANGE):
        self._storage = storage
        self._dry_storage = DryRunStorage(storage)
        self.bookmark_interval = bookmark_interval
        # tolerationSeconds of the default not-ready/unreachable tolerations every pod gets
        self.pod_eviction_timeout = pod_eviction_timeout
        # the services' cluster IPs and node ports (rebuilt from the store before the first use)
        self.service_ips = ServiceAllocator(service_cidr, node_port_range)
        self.quota = QuotaAdmission()

    def _service_txn(self, r: Resource):
        """The allocation transaction of a write of ``r`` (services only; else a no-op context)."""
        if r.plural != "services":
            return contextlib.nullcontext()
        return self.service_ips.transaction(self._storage, dry_run=DRY_RUN.get())

    @property
    def storage(self):
        """The store; during a dry-run request a view that never persists (skiff.controller.dryrun)."""
        return self._dry_storage if DRY_RUN.get() else self._storage

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def resource(plural: str) -> Resource:
        r = RESOURCES.get(plural)
        if r is None:
            raise E.path_not_found()
        return r

    _ns = staticmethod(namespace_for)

    @staticmethod
    def _store_error(e: StoreError, r: Resource, name: str) -> APIError:
        if e.reason == "NotFound":
            return E.not_found(r.plural, name, r.group)
        if e.reason == "AlreadyExists":
            return E.already_exists(r.plural, name, r.group)
        if e.reason == "Conflict":
            return E.conflict(r.plural, name, group=r.group)
        if e.reason == "Expired":
            return E.gone(e.message)
        if e.reason == "BadRequest":
            return E.bad_request(e.message)
        return E.internal(e.message)

    async def _fetch(self, r: Resource, ns: str | None, name: str) -> dict:
        try:
            return await self.storage.get(key_for(r.plural, ns, name))
        except StoreError as e:
            raise self._store_error(e, r, name) from None

    async def _fetch_authz(self, user: User, verb: str, r: Resource, ns: str | None, name: str,
                           sub: str | None) -> dict:
        """Fetch the object and authorize; a node asking for a pod it cannot see gets 403, not 404."""
        if user.is_master:
            return await self._fetch(r, ns, name)
        if r.plural in ("configmaps", "secrets", "persistentvolumeclaims"):
            authorize(user, verb, r.plural, ns, name, sub,
                      referenced=verb == "get" and await self._node_references(user, r.plural, ns, name))
            return await self._fetch(r, ns, name)
        if r.plural == "persistentvolumes" and user.is_node:
            from skiff.controller.volumes.nodeauth import volume_referenced
            try:
                cur = await self._fetch(r, ns, name)
            except APIError as e:
                if e.code == 404:
                    authorize(user, verb, r.plural, ns, name, sub)
                raise
            authorize(user, verb, r.plural, ns, name, sub, obj=cur,
                      referenced=verb == "get" and await volume_referenced(self, user, cur))
            return cur
        if r.plural != "pods":
            authorize(user, verb, r.plural, ns, name, sub)
            return await self._fetch(r, ns, name)
        try:
            cur = await self._fetch(r, ns, name)
        except APIError as e:
            if e.code == 404:
                authorize(user, verb, r.plural, ns, name, sub, obj=None)
            raise
        authorize(user, verb, r.plural, ns, name, sub, obj=cur)
        return cur

    @staticmethod
    def _check_kind(r: Resource, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise E.bad_request(f"{r.kind} in version \"{r.version}\" cannot be handled as a {r.kind}: "
                                f"the body must be a JSON object")
        obj = dict(obj)
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av is None and kind in (None, r.kind):
            obj["apiVersion"], obj["kind"] = r.api_version, r.kind
        elif kind is None and av == r.api_version:
            obj["kind"] = r.kind
        elif av != r.api_version or kind != r.kind:
            raise E.bad_request(f"the API version in the data ({av}) does not match the expected API version "
                                f"({r.api_version})" if av != r.api_version else
                                f"{kind} in version \"{r.version}\" cannot be handled as a {r.kind}: "
                                f"the kind in the data ({kind}) does not match the expected kind ({r.kind})")
        return obj

    # ------------------------------------------------------------------ read
    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None, *, user: User = ADMIN) -> dict:
        r = self.resource(resource)
        if subresource == "scale" and "scale" in r.subresources:
            return await self._get_scale(r, name, namespace, user)
        if subresource and subresource != "status" and not (subresource == EPHEMERAL and r.plural == "pods"):
            raise E.path_not_found()
        ns = self._ns(r, namespace)
        return await self._fetch_authz(user, "get", r, ns, name, subresource)

    def _authz_collection(self, user: User, verb: str, r: Resource, ns: str | None, sel: Selector) -> None:
        if not user.is_master:
            authorize(user, verb, r.plural, ns, None, None,
                      field_node=sel.fields.exact("spec.nodeName") if r.plural == "pods" else None)

    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   user: User = ADMIN) -> dict:
        r = self.resource(resource)
        ns = namespace if r.namespaced else None
        sel = parse_selectors(r.plural, label_selector, field_selector)
        self._authz_collection(user, "list", r, ns, sel)
        if limit is not None:
            try:
                limit = int(limit)
            except (TypeError, ValueError):
                raise E.bad_request(f"invalid limit: {limit!r}") from None
            if limit <= 0:
                limit = None
        prefix = prefix_for(r.plural, ns)
        st = self.storage
        try:
            node = sel.fields.exact("spec.nodeName") if r.plural == "pods" else None
            if sel.empty():
                page, list_rv, nxt = await st.list_keyed(prefix, limit, continue_ or None)
                items = [o for _, o in page]
            elif node is not None and not continue_ and hasattr(st, "peek_node"):
                # an agent's list: only the pods of its node, from the watch cache's index
                peek, list_rv = await st.peek_node(prefix, node)
                hits, nxt = [(k, o) for k, o in peek if sel.matches(o)], None
                if limit and len(hits) > limit:
                    hits = hits[:limit]
                    nxt = encode_continue(prefix, hits[-1][0], list_rv)
                items = [o for _, o in hits]
            else:
                items, token, nxt = [], continue_ or None, None
                chunk = max(limit or 500, 100)
                list_rv = None
                while True:
                    page, rv, more = await st.list_keyed(prefix, chunk, token)
                    if list_rv is None:
                        list_rv = rv
                    for i, (key, obj) in enumerate(page):
                        if sel.matches(obj):
                            items.append(obj)
                            if limit and len(items) == limit:
                                if i + 1 < len(page) or more:
                                    nxt = encode_continue(prefix, key, list_rv)
                                break
                    else:
                        if more:
                            token = more
                            continue
                    break
        except StoreError as e:
            raise self._store_error(e, r, "") from None
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if nxt:
            meta["continue"] = nxt
        return {"kind": f"{r.kind}List", "apiVersion": r.api_version, "metadata": meta, "items": items}

    def watch(self, resource: str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, bookmarks: bool = False,
              timeout_seconds: float | None = None, user: User = ADMIN,
              raw: bool = False, marks: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Validates and authorizes now (raising APIError), then returns the event stream.
        The stream raises APIError 410 when ``resource_version`` is too old. ``raw``: the
        caller takes :class:`~skiff.controller.storage.base.RawObject` events too (the stored
        JSON, streamed as it is), which the cache hands out where no selector needs the
        decoded object. ``marks``: the stream also yields ``(IDLE, None)`` whenever it is
        about to wait for more: a reader may gather the events before it and send them at
        once (after every event where the store cannot tell)."""
        r = self.resource(resource)
        ns = namespace if r.namespaced else None
        sel = parse_selectors(r.plural, label_selector, field_selector)
        self._authz_collection(user, "watch", r, ns, sel)
        rv: int | None = None
        if resource_version not in (None, "", "0"):
            try:
                rv = int(resource_version)
                if rv < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise E.bad_request(f'resourceVersion: Invalid value: "{resource_version}": must be a '
                                    f'non-negative integer') from None
        if timeout_seconds is not None:
            timeout_seconds = float(timeout_seconds)
            if timeout_seconds <= 0:
                timeout_seconds = None
        return self._watch(r, prefix_for(r.plural, ns), rv, sel, bookmarks, timeout_seconds, raw, marks)

    async def _watch(self, r: Resource, prefix: str, rv: int | None, sel: Selector, bookmarks: bool,
                     timeout: float | None, raw: bool = False, marks: bool = False) -> AsyncIterator[tuple[str, Any]]:
        st = self.storage
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        interval = self.bookmark_interval if bookmarks and self.bookmark_interval > 0 else None
        filtered = not sel.empty()
        matched: dict[str, bool] = {}
        unknown_upto = 0
        backlog_seen: set[str] = set()
        # a spec.nodeName=X watch (an agent's) reads and follows only the index of node X
        node = sel.fields.exact("spec.nodeName") if r.plural == "pods" else None
        indexed = node is not None and hasattr(st, "peek_node")
        # the index alone decides a selector that is just spec.nodeName=X: no decoding needed
        by_index = indexed and sel.labels.empty() and len(sel.fields.requirements) == 1
        raw = raw and getattr(st, "raw_watch", False) is True and (not filtered or by_index)
        kw: dict = {"raw": True} if raw else {}
        # an indexed watch sees only its node's events: its bookmarks take the cache's
        # revision from the cache (as Kubernetes' do), or a client that reconnects after a
        # quiet spell would resume from before the pods ring and have to relist
        progress: dict = {}
        if indexed:
            kw["progress"] = progress
        cache_marks = getattr(st, "marks_for", None) is not None and st.marks_for(prefix)
        if cache_marks:
            kw["marks"] = marks
            if interval is not None or deadline is not None:
                def next_tick() -> float:   # the next bookmark, or the deadline if sooner
                    left = None if deadline is None else deadline - loop.time()
                    return interval if left is None else left if interval is None else min(interval, left)
                kw["ticks"] = next_tick
        try:
            if indexed:
                peek, list_rv = await st.peek_node(prefix, node)
                if rv is None:
                    for key, obj in peek:
                        if sel.matches(obj):
                            matched[key] = True
                            yield "ADDED", obj
                    from_rev = list_rv
                else:
                    from_rev, unknown_upto = rv, list_rv
                    matched = {key: sel.matches(obj) for key, obj in peek}
                it = st.watch_keyed(prefix, from_rev, node=node, **kw)
            elif rv is None:
                items, list_rv, _ = await st.list_keyed(prefix)
                for key, obj in items:
                    m = not filtered or sel.matches(obj)
                    if filtered:
                        matched[key] = m
                    if m:
                        yield "ADDED", obj
                from_rev = list_rv
            else:
                from_rev = rv
                if filtered:
                    # which objects the client has (as of now); changes between rv and now
                    # are replayed, and for those the first event decides conservatively
                    items, unknown_upto, _ = await st.list_keyed(prefix)
                    for key, obj in items:
                        matched[key] = sel.matches(obj)
            if not indexed:
                it = st.watch_keyed(prefix, from_rev, **kw)
        except StoreError as e:
            raise self._store_error(e, r, "") from None
        # a watch lives long: let go of the initial list (every pod of an agent's node)
        peek = items = obj = None  # noqa: F841
        last_rv = from_rev

        def step(etype: str, key: str, obj, rev: int):
            """The event (type, object) this watch sends for a store event, or None."""
            nonlocal last_rv
            last_rv = rev
            if not filtered:
                return etype, obj
            m = obj.node == node if raw else sel.matches(obj)
            if rev <= unknown_upto and key not in backlog_seen:
                backlog_seen.add(key)
                prev = None if etype != "ADDED" else False
            else:
                prev = matched.get(key, False)
            if etype == "DELETED":
                matched.pop(key, None)
                return ("DELETED", obj) if m or prev else None
            matched[key] = m
            if etype == "ADDED":
                return ("ADDED", obj) if m else None
            if m:
                return ("ADDED" if prev is False else "MODIFIED"), obj
            if prev is not False:  # True, or unknown: tell the client it is gone
                return "DELETED", obj
            return None

        def bookmark():
            nonlocal last_rv
            now = progress["rev"]() if "rev" in progress else None
            if now is not None and now > last_rv:
                last_rv = now
            return "BOOKMARK", {"kind": r.kind, "apiVersion": r.api_version,
                                "metadata": {"resourceVersion": str(last_rv)}}

        try:
            if cache_marks:
                # the cache's own marks: IDLE when its queue runs dry, TICK for bookmarks and
                # the timeout (a timer into the same queue: no task per event)
                next_bookmark = loop.time() + interval if interval else None
                async for etype, key, obj, rev in it:
                    if etype is IDLE:
                        yield IDLE, None
                        continue
                    if etype is TICK:
                        now = loop.time()
                        if deadline is not None and now >= deadline:
                            return
                        if next_bookmark is not None and now >= next_bookmark - 0.001:
                            next_bookmark = now + interval
                            yield bookmark()
                        continue
                    ev = step(etype, key, obj, rev)
                    if ev is not None:
                        yield ev
                return
            pending: asyncio.Future | None = None
            try:
                while True:
                    if interval is None and deadline is None:
                        try:
                            etype, key, obj, rev = await it.__anext__()
                        except StopAsyncIteration:
                            return
                    else:
                        if pending is None:
                            pending = asyncio.ensure_future(it.__anext__())
                        wait = interval
                        if deadline is not None:
                            left = deadline - loop.time()
                            if left <= 0:
                                return
                            wait = left if wait is None else min(wait, left)
                        done, _ = await asyncio.wait((pending,), timeout=wait)
                        if not done:
                            if deadline is not None and loop.time() >= deadline:
                                return
                            yield bookmark()
                            if marks:
                                yield IDLE, None
                            continue
                        fut, pending = pending, None
                        try:
                            etype, key, obj, rev = fut.result()
                        except StopAsyncIteration:
                            return
                    ev = step(etype, key, obj, rev)
                    if ev is not None:
                        yield ev
                        if marks:       # no marks from the store: every event is a burst of one
                            yield IDLE, None
            finally:
                if pending is not None:
                    pending.cancel()
                    try:
                        await pending
                    except BaseException:  # noqa: BLE001 - cancelled / ended
                        pass
        except StoreError as e:
            raise self._store_error(e, r, "") from None
        finally:
            try:
                await it.aclose()
            except (RuntimeError, StoreError):
                pass

    # ------------------------------------------------------------------ create
    async def create(self, resource: str, obj: dict, namespace: str | None = None, *,
                     subresource: str | None = None, name: str | None = None,
                     user: User = ADMIN, warnings: list | None = None,
                     field_manager: str | None = None, _managed: list | None = None,
                     field_validation: str | None = None, owned: bool = False) -> dict:
        """``owned``: ``obj`` is handed over (a decoded request body) and may be written into;
        otherwise it is the caller's, and only its top level is replaced."""
        r = self.resource(resource)
        if subresource == "binding" and r.plural == "pods":
            return await self.bind(namespace or "default", name, obj, user=user)
        if subresource == "eviction" and r.plural == "pods":
            from skiff.controller.disruption import evict
            if not isinstance(obj, dict) or obj.get("kind") not in (None, "Eviction"):
                raise E.bad_request("the body of a pods/eviction request must be an Eviction")
            return await evict(self, namespace or "default", name or "", obj, user)
        if subresource == "token" and r.plural == "serviceaccounts":
            from skiff.controller.rbac import token_request
            return await token_request(self, namespace or "default", name or "", obj, user)
        if subresource:
            raise E.method_not_allowed()
        if r.plural in CRD_HOOKED:
            crd_create_hook(r)      # not while its CRD is being deleted
        obj = self._check_kind(r, obj)
        md = obj.get("metadata")
        if md is not None and not isinstance(md, dict):
            raise E.bad_request(f"{r.kind} in version \"{r.version}\" cannot be handled as a {r.kind}: "
                                f"metadata must be an object")
        md = dict(md or {})
        obj["metadata"] = md
        if not r.namespaced:
            md.pop("namespace", None)
        ns = self._ns(r, namespace, obj)
        if not user.is_master:
            authorize(user, "create", r.plural, ns, md.get("name"), None)
        for k in SERVER_SET_METADATA:
            md.pop(k, None)
        # identity before admission, as Kubernetes' BeforeCreate: a Job's defaults (its selector
        # and labels) are made of its uid and name
        md["uid"] = str(uuid.uuid4())
        md["generation"] = 1
        gen = md.get("generateName") if not md.get("name") else None
        if gen:
            md["name"] = self._generated_name(r, gen)
        try:
            new, warns = admit(obj, namespace if r.namespaced else None,
                               toleration_seconds=self.pod_eviction_timeout, field_validation=field_validation,
                               owned=owned)
        except ValidationError as e:
            raise APIError(e.to_status()) from None
        if warnings is not None:
            warnings.extend(warns)
        if r.group == "rbac.authorization.k8s.io" and not user.is_master:
            confirm_no_escalation(user, r.plural, new)     # skiff.controller.rbac
        nmd = new["metadata"]
        if _managed is not None or field_manager:   # managedFields (kept off the in-process path)
            mf = _managed if _managed is not None else MF.track_update(
                None, None, new, field_manager, r.api_version, None, MF.scope_of("status" in r.subresources, None))
            if mf:
                nmd["managedFields"] = mf
        if r.plural == "pods":
            if (new.get("spec") or {}).get("ephemeralContainers"):
                raise E.invalid("Pod", nmd.get("name") or gen or "", [{
                    "field": "spec.ephemeralContainers", "reason": "FieldValueForbidden",
                    "message": "Forbidden: cannot be set on create"}], "pods")
            new["status"] = {"phase": "Pending", "qosClass": _qos(new.get("spec") or {})}
            if (new.get("spec") or {}).get("schedulingGates"):     # applySchedulingGatedCondition
                new["status"]["conditions"] = [{
                    "type": "PodScheduled", "status": "False", "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(), "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates"}]
        elif r.plural == "namespaces":
            new["status"] = {"phase": "Active"}
        elif r.plural == "jobs":
            new.pop("status", None)     # the job controller's alone (Kubernetes' PrepareForCreate)
        elif r.plural == "cronjobs":
            new.pop("status", None)     # the cronjob controller's alone (PrepareForCreate)
        elif r.plural == "daemonsets":
            new.pop("status", None)     # the daemon set controller's alone (PrepareForCreate)
            set_template_generation(None, new)
        elif r.plural == "statefulsets":
            new.pop("status", None)     # the statefulset controller's alone (PrepareForCreate)
        elif r.plural == "services":
            new["status"] = {"loadBalancer": {}}    # the service strategy's PrepareForCreate
        if r.namespaced:
            await self._require_namespace(ns, r, nmd.get("name") or None)
        if r.plural == "pods":
            await admit_pod_priority(self.storage, new, gen or nmd.get("name") or "")
            await admit_pod_service_account(self.storage, new, ns, gen or nmd.get("name") or "")
            try:
                await admit_pod_limit_ranges(self.storage, new, ns, gen or nmd.get("name") or "")
            except ValidationError as e:
                raise APIError(e.to_status()) from None
        elif r.plural in ("persistentvolumeclaims", "persistentvolumes"):
            from skiff.controller.admission_storage import admit_storage_create
            await admit_storage_create(self.storage, r.plural, new)
        elif r.plural == "priorityclasses":
            await admit_priority_class(self.storage, new, True)
        elif r.plural == "ingresses":
            from skiff.controller.admission_ingress import admit_ingress_create
            await admit_ingress_create(self.storage, new)
        async with self.quota.guard(self.storage, r.plural, new, ns, gen or nmd.get("name") or ""), \
                self._service_txn(r) as txn:
            if txn is not None:
                txn.allocate_create(new)
            for attempt in range(5 if gen else 1):
                if attempt:     # the generated name is taken: another one (admission saw the first)
                    nmd["name"] = self._generated_name(r, gen)
                try:
                    return await self.storage.create(key_for(r.plural, ns, nmd["name"]), new)
                except StoreError as e:
                    if e.reason == "AlreadyExists" and gen and attempt < 4:
                        continue
                    raise self._store_error(e, r, nmd["name"]) from None
        raise E.internal("could not generate a unique name")  # pragma: no cover

    @staticmethod
    def _generated_name(r: Resource, gen: str) -> str:
        """``generateName`` and five random characters, or 422 when that is no valid name."""
        name = gen + "".join(random.choice(_GEN_CHARS) for _ in range(5))
        why = dns1123_subdomain_error(name)
        if why:
            raise E.invalid(r.kind, name, [{"field": "metadata.generateName", "reason": "FieldValueInvalid",
                                            "message": f'Invalid value: "{gen}": {why}'}], r.plural, r.group)
        return name

    async def _require_namespace(self, ns: str, r: Resource | None = None, name: str | None = None) -> None:
        try:
            ns_obj = await self.storage.get(key_for("namespaces", None, ns))
        except StoreError:
            raise E.not_found("namespaces", ns) from None
        if r is not None:
            await self._check_namespace_active(ns_obj, r, name)

    # ------------------------------------------------------------------ update / patch
    def _prepare(self, r: Resource, cur: dict, incoming: dict, ns: str | None, name: str,
                 sub: str | None, warnings: list | None, field_validation: str | None = None) -> dict:
        """The object to store for an update of ``cur`` with ``incoming`` (admitted), or
        ``cur`` itself when nothing changes."""
        cmd = cur.get("metadata") or {}
        if sub == "finalize":
            return self._prepare_finalize(r, cur, incoming, name)
        if sub == "status":
            # only status changes, and the schema leaves status free-form: the rest of the
            # object was admitted when it was written, so it is not validated again
            st = incoming.get("status")
            if r.plural in CRD_HOOKED:
                st = crd_status_hook(r, name, st)   # a custom resource's status, against its schema
            if st is not None and not isinstance(st, dict):
                raise E.invalid(r.kind, name, [{"field": "status", "reason": "FieldValueInvalid",
                                                "message": f"Invalid value: {json.dumps(st)[:60]}: must be "
                                                           f"of type object"}], r.plural, r.group)
            if r.plural == "ingresses" and st:     # ValidateIngressStatusUpdate
                from skiff.api.validation_ingress import check_ingress_status
                if (causes := check_ingress_status({"status": st})):
                    raise E.invalid(r.kind, name, causes, r.plural, r.group)
            if st == cur.get("status"):
                return cur
            new = dict(cur)
            if st is not None:
                new["status"] = st
            else:
                new.pop("status", None)
            return new
        elif sub == EPHEMERAL:
            # the ephemeralcontainers strategy: only spec.ephemeralContainers is taken from the request
            spec = incoming.get("spec") if isinstance(incoming.get("spec"), dict) else {}
            new = json_copy(cur)
            new["spec"]["ephemeralContainers"] = spec.get("ephemeralContainers") or []
            if not new["spec"]["ephemeralContainers"]:
                new["spec"].pop("ephemeralContainers")
            if isinstance(incoming.get("metadata"), dict) and "resourceVersion" in incoming["metadata"]:
                new["metadata"]["resourceVersion"] = incoming["metadata"]["resourceVersion"]
        else:
            new = dict(incoming)
            if "status" in r.subresources:
                if "status" in cur:
                    new["status"] = cur["status"]
                else:
                    new.pop("status", None)
        md = new.get("metadata")
        if md is not None and not isinstance(md, dict):
            raise E.bad_request("metadata must be an object")
        md = dict(md or {})
        new["metadata"] = md
        md["name"] = name
        if r.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in cmd:
                md[k] = cmd[k]
            else:
                md.pop(k, None)
        md.pop("resourceVersion", None)
        if r.plural == "services":
            new = json_copy(new)
            fill_update(cur, new)     # keep the allocated values the client left out
        elif r.plural == "pods":
            _keep_service_account(cur, new)
        try:
            new, warns = admit(new, ns, toleration_seconds=self.pod_eviction_timeout,
                               field_validation=field_validation)
            validate_update(cur, new)
        except ValidationError as e:
            raise APIError(e.to_status()) from None
        if warnings is not None:
            warnings.extend(warns)
        spec_changed = new.get("spec") != cur.get("spec") if r.plural not in CRD_HOOKED \
            else crd_update_hook(r, cur, new, sub)   # CRDs and custom resources (skiff.controller.crd)
        if spec_changed and r.plural == "pods" and sub == EPHEMERAL:
            causes = ephemeral_containers_update(cur, new)
            if causes:
                raise E.invalid("Pod", name, causes, "pods")
        elif spec_changed and r.plural == "pods" and sub != "status":
            self._check_pod_update(cur, new)
        if spec_changed and "generation" in new["metadata"]:
            new["metadata"]["generation"] = int(new["metadata"]["generation"]) + 1
        if r.plural == "daemonsets":
            set_template_generation(cur, new)
        if new == _strip_rv(cur):
            return cur
        return new

    @staticmethod
    def _check_pod_update(cur: dict, new: dict) -> None:
        def masked(spec: dict) -> dict:
            s = json_copy(spec or {})
            for group in ("containers", "initContainers"):
                for c in s.get(group) or []:
                    if isinstance(c, dict):
                        c["image"] = None
            s.pop("activeDeadlineSeconds", None)
            s.pop("tolerations", None)
            s.pop("schedulingGates", None)      # may be removed (checked above)
            # the deprecated alias is not compared on its own: a pod stored before skiff
            # mirrored it has only the name
            s["serviceAccount"] = s.get("serviceAccountName") or s.get("serviceAccount") or None
            return s
        name = new["metadata"].get("name", "")
        gates = check_scheduling_gates_update(cur, new)
        if gates:
            raise E.invalid("Pod", name, gates, "pods")
        if masked(cur.get("spec")) != masked(new.get("spec")):
            raise E.invalid("Pod", name, [{
                "field": "spec", "reason": "FieldValueForbidden",
                "message": "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                           "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                           "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                           "(allow it to be set to 1 if it was previously negative)"}], "pods")

    @staticmethod
    def _track(r: Resource, cur: dict, incoming: dict, new: dict, sub: str | None,
               manager: str | None) -> dict:
        """``new`` with its managedFields after a non-apply write by ``manager``. Objects that
        never had managedFields are tracked only when a manager is named (the HTTP API always
        names one; in-process controllers do not), which keeps the cost off their hot path.
        An incoming ``managedFields: [{}]`` strips them, ``[]`` (or none) keeps the stored ones."""
        cmf = (cur.get("metadata") or {}).get("managedFields")
        imd = incoming.get("metadata") if isinstance(incoming.get("metadata"), dict) else {}
        # subresource writes (status, scale) never replace managedFields: only the object's own writes may
        imf = imd.get("managedFields") if sub is None else None
        if isinstance(imf, list) and imf and all(e == {} for e in imf):
            base = None
            manager = None
        else:
            base = imf if isinstance(imf, list) and imf and imf != cmf else cmf
        if not base and not manager:
            if new is cur or "managedFields" not in new.get("metadata", {}):
                return new
            md = dict(new["metadata"])
            md.pop("managedFields", None)
            md.pop("resourceVersion", None)
            new = {**new, "metadata": md}
            return cur if new == _strip_rv(cur) else new
        mf = MF.track_update(base, cur, new, manager or "skiff-controller", r.api_version, sub,
                             MF.scope_of("status" in r.subresources, sub))
        md = dict(new.get("metadata") or {})
        md.pop("resourceVersion", None)
        if mf:
            md["managedFields"] = mf
        else:
            md.pop("managedFields", None)
        out = {**new, "metadata": md}
        return cur if out == _strip_rv(cur) else out

    async def _write(self, r: Resource, key: str, cur: dict, new: dict) -> dict:
        if new is cur:
            return cur
        if r.plural == "persistentvolumeclaims" and new.get("spec") != cur.get("spec"):
            from skiff.controller.admission_storage import admit_claim_resize
            await admit_claim_resize(self.storage, cur, new)
        if r.plural == "priorityclasses" and new.get("globalDefault") and not cur.get("globalDefault"):
            await admit_priority_class(self.storage, new, False)
        if r.plural != "services":
            return (await self._store_write(r, key, cur, new))[0]
        async with self._service_txn(r) as txn:
            if new.get("spec") != cur.get("spec"):
                new = {**new, "spec": json_copy(new.get("spec"))}
                txn.allocate_update(cur, new)
            out, deleted = await self._store_write(r, key, cur, new)
            if deleted:
                txn.release_service(out)
        return out

    async def _store_write(self, r: Resource, key: str, cur: dict, new: dict) -> tuple[dict, bool]:
        """Update ``key``; an object marked for deletion that no finalizer holds any more is
        removed. -> (the stored or removed object, whether it was removed)."""
        out = await self.storage.update(key, new, (cur.get("metadata") or {}).get("resourceVersion"))
        md = out.get("metadata") or {}
        if md.get("deletionTimestamp") and not md.get("finalizers") and \
                (r.plural != "pods" or md.get("deletionGracePeriodSeconds") == 0) and \
                (r.plural != "namespaces" or not (out.get("spec") or {}).get("finalizers")):
            try:
                return await self.storage.delete(key, md.get("resourceVersion")), True
            except StoreError:
                pass
        return out, False

    @staticmethod
    def _check_names(r: Resource, obj: dict, name: str | None, namespace: str | None) -> tuple[str, str | None]:
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        oname = md.get("name")
        if name and oname and oname != name:
            raise E.bad_request(f"the name of the object ({oname}) does not match the name on the URL ({name})")
        name = name or oname
        if not name:
            raise E.bad_request("name is required")
        ns = None
        if r.namespaced:
            ons = md.get("namespace")
            if namespace and ons and ons != namespace:
                raise E.bad_request("the namespace of the provided object does not match the namespace "
                                    "sent on the request")
            ns = namespace or ons or "default"
        return name, ns

    async def update(self, resource: str, obj: dict, namespace: str | None = None,
                     name: str | None = None, *, subresource: str | None = None,
                     user: User = ADMIN, warnings: list | None = None,
                     field_manager: str | None = None, field_validation: str | None = None) -> dict:
        r = self.resource(resource)
        if subresource == "scale" and "scale" in r.subresources:
            return await self._write_scale(r, name, namespace, user, warnings, body=obj,
                                           field_manager=field_manager)
        if subresource not in (None, "status", "finalize", EPHEMERAL) \
                or (subresource and subresource not in r.subresources):
            raise E.method_not_allowed()
        obj = self._check_kind(r, obj)
        name, ns = self._check_names(r, obj, name, namespace)
        want_rv = (obj.get("metadata") or {}).get("resourceVersion")
        key = key_for(r.plural, ns, name)
        for _ in range(_RETRIES):
            cur = await self._fetch_authz(user, "update", r, ns, name, subresource)
            if want_rv and str(want_rv) != cur["metadata"].get("resourceVersion"):
                raise E.conflict(r.plural, name, group=r.group)
            new = self._prepare(r, cur, obj, ns, name, subresource, warnings, field_validation)
            if r.group == "rbac.authorization.k8s.io" and not user.is_master and new is not cur:
                confirm_no_escalation(user, r.plural, new)     # skiff.controller.rbac
            new = self._track(r, cur, obj, new, subresource, field_manager)
            try:
                return await self._write(r, key, cur, new)
            except StoreError as e:
                if e.reason == "Conflict" and not want_rv:
                    continue
                raise self._store_error(e, r, name) from None
        raise E.conflict(r.plural, name, group=r.group)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    user: User = ADMIN, warnings: list | None = None,
                    field_manager: str | None = None, force: bool = False,
                    field_validation: str | None = None) -> dict:
        """``patch_type`` "apply" is a server-side apply (see :meth:`apply`: an upsert)."""
        if patch_type == "apply":
            return (await self.apply(resource, name, patch, namespace, field_manager=field_manager, force=force,
                                     subresource=subresource, user=user, warnings=warnings,
                                     field_validation=field_validation))[0]
        r = self.resource(resource)
        if subresource not in (None, "status", "scale", EPHEMERAL) \
                or (subresource and subresource not in r.subresources):
            raise E.method_not_allowed()
        if patch_type == "strategic" and r.plural in CRD_HOOKED:
            refuse_strategic(r)     # custom resources take no strategic merge patch
        if patch_type not in ("merge", "json", "strategic"):
            raise E.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml, application/strategic-merge-patch+json")
        if force:
            raise E.invalid("PatchOptions.meta.k8s.io", "", [{"field": "force", "reason": "FieldValueForbidden",
                            "message": "Forbidden: may not be specified for non-apply patch"}],
                            "PatchOptions", "meta.k8s.io")
        if subresource == "scale":
            return await self._write_scale(r, name, namespace, user, warnings, patch=patch, patch_type=patch_type,
                                           field_manager=field_manager)
        if isinstance(patch, (bytes, str)):
            try:
                patch = json.loads(patch)
            except ValueError as e:
                raise E.bad_request(f"error decoding patch: {e}") from None
        if patch_type == "json":
            if not isinstance(patch, list):
                raise E.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        elif not isinstance(patch, dict):
            raise E.bad_request("the patch must be a JSON object")
        ns = self._ns(r, namespace)
        key = key_for(r.plural, ns, name)
        for _ in range(_RETRIES):
            cur = await self._fetch_authz(user, "patch", r, ns, name, subresource)
            cur_rv = cur["metadata"].get("resourceVersion")
            obj = patched(cur, patch, patch_type)
            pmd = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            want_rv = pmd.get("resourceVersion")
            precondition = want_rv is not None and want_rv != cur_rv
            if precondition:
                raise E.conflict(r.plural, name, group=r.group)
            obj = self._check_kind(r, obj)
            self._check_names(r, obj, name, ns)
            new = self._prepare(r, cur, obj, ns, name, subresource, warnings, field_validation)
            if r.group == "rbac.authorization.k8s.io" and not user.is_master and new is not cur:
                confirm_no_escalation(user, r.plural, new)     # skiff.controller.rbac
            new = self._track(r, cur, obj, new, subresource, field_manager)
            try:
                return await self._write(r, key, cur, new)
            except StoreError as e:
                if e.reason == "Conflict":
                    continue
                raise self._store_error(e, r, name) from None
        raise E.conflict(r.plural, name, group=r.group)

    async def apply(self, resource: str, name: str, config: Any, namespace: str | None = None, *,
                    field_manager: str | None, force: bool = False, subresource: str | None = None,
                    user: User = ADMIN, warnings: list | None = None,
                    field_validation: str | None = None) -> tuple[dict, bool]:
        """Server-side apply of ``config`` (a dict, or JSON/YAML text) by ``field_manager``:
        creates the object when it does not exist. Returns (object, created). Conflicts with
        other managers raise 409 Conflict (causes FieldManagerConflict) unless ``force``."""
        r = self.resource(resource)
        if subresource not in (None, "status") or (subresource and subresource not in r.subresources):
            raise E.method_not_allowed()
        if not field_manager:
            raise E.invalid("PatchOptions.meta.k8s.io", "", [{"field": "fieldManager", "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch"}], "PatchOptions", "meta.k8s.io")
        if isinstance(config, (bytes, str)):
            import yaml
            try:
                config = yaml.load(config, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except yaml.YAMLError as e:
                raise E.bad_request(f"error decoding YAML: {e}") from None
        if not isinstance(config, dict):
            raise E.bad_request("error decoding YAML: the apply configuration must be an object")
        av, kind = config.get("apiVersion"), config.get("kind")
        if av != r.api_version:
            raise E.bad_request(f"Incorrect version specified in apply patch. Specified patch version: "
                                f"{av or ''}, expected: {r.api_version}")
        if kind != r.kind:
            raise E.bad_request(f"Incorrect kind specified in apply patch. Specified patch kind: "
                                f"{kind or ''}, expected: {r.kind}")
        cmd = config.get("metadata")
        if cmd is not None and not isinstance(cmd, dict):
            raise E.bad_request("metadata must be an object")
        ns = self._ns(r, namespace)
        name, _ = self._check_names(r, config, name, ns)
        want_rv = (cmd or {}).get("resourceVersion")
        scope = MF.scope_of("status" in r.subresources, subresource)
        key = key_for(r.plural, ns, name)
        for _ in range(_RETRIES):
            try:
                cur = await self._fetch_authz(user, "patch", r, ns, name, subresource)
            except APIError as e:
                if e.code != 404 or subresource:
                    raise
                cur = None
            if cur is not None and want_rv and str(want_rv) != cur["metadata"].get("resourceVersion"):
                raise E.conflict(r.plural, name, group=r.group)
            try:
                merged, mf = MF.apply(cur, config, (cur or {}).get("metadata", {}).get("managedFields"),
                                      field_manager, r.api_version, subresource, scope, force)
            except MF.ApplyError as e:
                raise E.bad_request(str(e)) from None
            except MF.Conflicts as e:
                raise APIError(409, "Conflict", str(e), causes=e.causes()) from None
            md = dict(merged.get("metadata") or {})
            md["name"] = name
            if r.namespaced:
                md["namespace"] = ns
            if field_manager == "kubectl" and LAST_APPLIED in (md.get("annotations") or {}):
                # as Kubernetes' lastAppliedUpdater: kubectl's server-side apply keeps the
                # client-side annotation in step with what was applied, so a later client-side
                # apply diffs against the right configuration
                text = _last_applied(config)
                if text is not None:
                    md["annotations"] = {**md["annotations"], LAST_APPLIED: text}
            merged["metadata"] = md
            if cur is None:
                try:
                    return await self.create(resource, merged, ns, user=user, warnings=warnings,
                                             _managed=mf, field_validation=field_validation), True
                except APIError as e:
                    if e.code == 409 and e.reason == "AlreadyExists":
                        continue
                    raise
            new = self._prepare(r, cur, merged, ns, name, subresource, warnings, field_validation)
            if r.group == "rbac.authorization.k8s.io" and not user.is_master and new is not cur:
                confirm_no_escalation(user, r.plural, new)     # skiff.controller.rbac
            nmd = dict(new.get("metadata") or {})
            nmd.pop("resourceVersion", None)
            if mf:
                nmd["managedFields"] = mf
            else:
                nmd.pop("managedFields", None)
            new = {**new, "metadata": nmd}
            if new == _strip_rv(cur):
                new = cur
            try:
                return await self._write(r, key, cur, new), False
            except StoreError as e:
                if e.reason == "Conflict" and not want_rv:
                    continue
                raise self._store_error(e, r, name) from None
        raise E.conflict(r.plural, name, group=r.group)

    # ------------------------------------------------------------------ delete
    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None, preconditions: dict | None = None,
                     propagation_policy: str | None = None, user: User = ADMIN) -> dict:
        r = self.resource(resource)
        ns = self._ns(r, namespace)
        propagation_policy = check_propagation_policy(propagation_policy)
        key = key_for(r.plural, ns, name)
        if grace_period_seconds is not None:
            try:
                grace_period_seconds = int(grace_period_seconds)
            except (TypeError, ValueError):
                raise E.bad_request(f"invalid gracePeriodSeconds: {grace_period_seconds!r}") from None
        for _ in range(_RETRIES):
            cur = await self._fetch_authz(user, "delete", r, ns, name, None)
            md = cur["metadata"]
            if preconditions:
                uid, prv = preconditions.get("uid"), preconditions.get("resourceVersion")
                if uid and uid != md.get("uid"):
                    raise E.conflict(r.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                                     f"UID in object meta: {md.get('uid')}", r.group)
                if prv and str(prv) != md.get("resourceVersion"):
                    raise E.conflict(r.plural, name, f"Precondition failed: ResourceVersion in precondition: "
                                     f"{prv}, ResourceVersion in object meta: {md.get('resourceVersion')}",
                                     r.group)
            if r.plural == "namespaces":
                await self._check_namespace_deletable(name)
            elif r.plural == "priorityclasses":
                check_priority_class_delete(name)
            fins = gc_finalizers(md.get("finalizers"), propagation_policy)
            try:
                if r.plural == "namespaces":
                    out = await self._delete_namespace(key, cur)
                elif r.plural == "pods":
                    out = await self._delete_pod(key, cur, grace_period_seconds, fins)
                elif fins:
                    out = await self._mark_deleted(key, cur, 0, fins)
                elif r.plural == "services":
                    async with self._service_txn(r) as txn:
                        out = await self.storage.delete(key, md.get("resourceVersion"))
                        txn.release_service(out)
                else:
                    out = await self.storage.delete(key, md.get("resourceVersion"))
                return out
            except StoreError as e:
                if e.reason == "Conflict":
                    continue
                raise self._store_error(e, r, name) from None
        raise E.conflict(r.plural, name, group=r.group)

    async def delete_collection(self, resource: str, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                                user: User = ADMIN) -> dict:
        """DELETE on a collection: every selected object is deleted as by :meth:`delete`; returns the
        List of what was deleted (or marked for deletion)."""
        r = self.resource(resource)
        ns = namespace if r.namespaced else None
        lst = await self.list(resource, ns, label_selector=label_selector, field_selector=field_selector,
                              user=user)
        out = []
        for obj in lst["items"]:
            md = obj["metadata"]
            if r.plural == "priorityclasses" and md["name"] in SYSTEM_PRIORITY_CLASSES:
                continue        # kept (a single DELETE of one is refused)
            try:
                out.append(await self.delete(resource, md["name"], md.get("namespace"),
                                             grace_period_seconds=grace_period_seconds,
                                             propagation_policy=propagation_policy, user=user))
            except APIError as e:
                if e.code != 404:
                    raise
        return {**lst, "items": out}

    async def _mark_deleted(self, key: str, cur: dict, grace: int, finalizers: list | None = None) -> dict:
        md = dict(cur["metadata"])
        fins_changed = finalizers is not None and list(finalizers) != list(md.get("finalizers") or [])
        marked = md.get("deletionTimestamp") and md.get("deletionGracePeriodSeconds", 0) <= grace
        if marked and not fins_changed:
            return cur
        if not marked:
            md["deletionTimestamp"] = now_rfc3339(grace)
            md["deletionGracePeriodSeconds"] = grace
            if md.get("generation"):
                md["generation"] = int(md["generation"]) + 1
        if fins_changed:
            if finalizers:
                md["finalizers"] = list(finalizers)
            else:
                md.pop("finalizers", None)
        new = {**cur, "metadata": md}
        return await self.storage.update(key, new, cur["metadata"].get("resourceVersion"))

    async def _delete_pod(self, key: str, cur: dict, grace: int | None, finalizers: list | None = None) -> dict:
        spec, md = cur.get("spec") or {}, cur["metadata"]
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
            grace = 30 if grace is None else int(grace)
        if grace < 0:
            grace = 1
        phase = (cur.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            grace = 0
        if finalizers is None:
            finalizers = md.get("finalizers")
        if grace > 0 or finalizers:
            return await self._mark_deleted(key, cur, grace, finalizers)
        return await self.storage.delete(key, md.get("resourceVersion"))

    async def _check_namespace_deletable(self, name: str) -> None:
        if name in DEFAULT_NAMESPACES:
            raise E.forbidden("namespaces", name, "this namespace may not be deleted")
        # otherwise the namespace goes Terminating (see _delete_namespace); the namespace
        # controller empties it and removes the "kubernetes" finalizer

    # ------------------------------------------------------------------ binding
    async def bind(self, namespace: str, name: str | None, binding: Any, *, user: User = ADMIN) -> dict:
        if not isinstance(binding, dict):
            raise E.bad_request("Binding in version \"v1\" cannot be handled as a Binding: the body must be "
                                "a JSON object")
        bname = (binding.get("metadata") or {}).get("name")
        if name and bname and bname != name:
            raise E.bad_request(f"the name of the object ({bname}) does not match the name on the URL ({name})")
        name = name or bname
        if not name:
            raise E.bad_request("name is required")
        if not user.is_master:
            authorize(user, "create", "pods", namespace, name, "binding")
        target = binding.get("target") if isinstance(binding.get("target"), dict) else {}
        node = target.get("name")
        if not node:
            raise E.invalid("Binding", name, [{"field": "target.name", "reason": "FieldValueRequired",
                                               "message": "Required value"}], "bindings")
        if target.get("kind") not in (None, "", "Node"):
            raise E.invalid("Binding", name, [{"field": "target.kind", "reason": "FieldValueNotSupported",
                                               "message": f'Unsupported value: "{target.get("kind")}": '
                                                          f'supported values: "Node"'}], "bindings")
        r = RESOURCES["pods"]
        now = now_rfc3339()

        def assign(cur: dict) -> dict:
            # on the store's thread, in its transaction (Storage.update_with): only reads ``cur``
            spec = cur.get("spec") or {}
            if cur["metadata"].get("deletionTimestamp"):
                raise E.conflict("pods/binding", name, f"pod {name} is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise E.conflict("pods/binding", name,
                                 f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            status = dict(cur.get("status") or {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
            status["conditions"] = conds
            return {**cur, "spec": {**spec, "nodeName": node}, "status": status}
        # the pod is read, changed and written in the store's group commit: nothing is decoded
        # here, and nothing of it is held while the binding waits for its commit (the scheduler
        # keeps up to 2048 waiting)
        try:
            await self.storage.update_with(key_for("pods", namespace, name), assign)
        except StoreError as e:
            raise self._store_error(e, r, name) from None
        return E.success_status(201)

    # ------------------------------------------------------------------ setup
    async def ensure_namespaces(self, names=DEFAULT_NAMESPACES) -> None:
        for n in names:
            try:
                await self.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}})
            except APIError as e:
                if e.code != 409:
                    raise
