"""Registry semantics added with the workload kinds (issue 6), mixed into
:class:`skiff.controller.registry.Registry`:

- the autoscaling/v1 ``Scale`` subresource of deployments and replicasets (GET/PUT/PATCH);
  writing it sets the parent's ``spec.replicas`` (admitted like any update, so the
  generation is bumped);
- DeleteOptions.propagationPolicy: the ``orphan`` / ``foregroundDeletion`` finalizers
  (the garbage collector does the rest and removes them);
- namespace deletion: Terminating (deletionTimestamp, status.phase, spec.finalizers
  ["kubernetes"]), the ``namespaces/NAME/finalize`` subresource, and the removal of the
  namespace once spec.finalizers is empty;
- the node authorizer's relationship check for configmaps and secrets;
- a DaemonSet's template generation (:func:`set_template_generation`).
"""
from __future__ import annotations

import json
from typing import Any

from skiff.api import errors as E
from skiff.api.errors import APIError
from skiff.api.jsoncodec import loads
from skiff.api.resources import Resource
from skiff.api.validation import format_label_selector
from skiff.controller.auth import User, pod_references
from skiff.controller.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from skiff.controller.storage import StoreError, key_for, prefix_for
from skiff.controller.workloads.daemonlogic import TEMPLATE_GENERATION_ANNOTATION

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
NAMESPACE_FINALIZER = "kubernetes"
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
_RETRIES = 8


def check_propagation_policy(policy: Any, orphan_dependents: Any = None) -> str | None:
    """The effective propagationPolicy of a DeleteOptions (None: not given), or 422."""
    if policy in (None, ""):
        if orphan_dependents is True:
            return "Orphan"
        if orphan_dependents is False:
            return "Background"
        return None
    if orphan_dependents is not None:
        raise E.invalid("DeleteOptions", "", [{
            "field": "propagationPolicy", "reason": "FieldValueInvalid",
            "message": f'Invalid value: "{policy}": orphanDependents and deletionPropagation cannot be both set'}],
            "deleteoptions", "meta.k8s.io")
    if policy not in PROPAGATION_POLICIES:
        raise E.invalid("DeleteOptions", "", [{
            "field": "propagationPolicy", "reason": "FieldValueNotSupported",
            "message": f"Unsupported value: {json.dumps(policy)}: supported values: "
                       + ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)}], "deleteoptions", "meta.k8s.io")
    return policy


def gc_finalizers(existing: list | None, policy: str | None) -> list:
    """The finalizers after a delete with ``policy`` (Kubernetes' deletionFinalizersForGarbageCollection):
    Orphan adds "orphan" (and drops "foregroundDeletion"), Foreground the reverse, Background
    drops both; no policy leaves them alone."""
    fins = list(existing or [])
    if policy is None:
        return fins
    add = {"Orphan": ORPHAN_FINALIZER, "Foreground": FOREGROUND_FINALIZER}.get(policy)
    fins = [f for f in fins if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER) or f == add]
    if add and add not in fins:
        fins.append(add)
    return fins


def set_template_generation(cur: dict | None, new: dict) -> None:
    """A DaemonSet's template generation, which apps/v1 keeps in the
    ``deprecated.daemonset.template.generation`` annotation (Kubernetes' spec.templateGeneration,
    set by its registry strategy): on create the one given (an integer >= 1) or 1; on update the
    stored one, plus 1 when the template changes (clients cannot set it). The controller labels
    its pods with it (``pod-template-generation``)."""
    md = new["metadata"]
    ann = dict(md.get("annotations") or {})
    if cur is None:
        given = ann.get(TEMPLATE_GENERATION_ANNOTATION)
        gen = int(given) if isinstance(given, str) and given.isdigit() and int(given) >= 1 else 1
    else:
        try:
            gen = int(((cur.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION))
        except (TypeError, ValueError):
            gen = 0
        if (new.get("spec") or {}).get("template") != (cur.get("spec") or {}).get("template"):
            gen += 1
        gen = max(gen, 1)
    ann[TEMPLATE_GENERATION_ANNOTATION] = str(gen)
    md["annotations"] = ann


def patched(doc: dict, patch: Any, patch_type: str) -> dict:
    """``doc`` with ``patch`` applied (json | strategic | merge); a malformed patch is a 400,
    one that cannot apply a 422, as Kubernetes answers."""
    try:
        if patch_type == "json":
            out = json_patch(doc, patch, copy=True)
        elif patch_type == "strategic":
            out = strategic_merge_patch(doc, patch)
        else:
            out = merge_patch(doc, patch)
    except PatchError as e:
        if e.malformed:
            raise E.bad_request(e.message) from None
        raise E.unprocessable(e.message) from None
    if not isinstance(out, dict):
        raise E.unprocessable("the patched object is not a JSON object")
    return out


def scale_of(r: Resource, obj: dict) -> dict:
    """The autoscaling/v1 Scale of a deployment, replicaset, statefulset or replicationcontroller."""
    if r.group not in _BUILTIN_SCALE_GROUPS:     # a custom resource: its CRD's paths (skiff.controller.crd)
        from skiff.controller.crd.kinds import custom_scale_of
        return custom_scale_of(r, obj)
    md = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    sel = spec.get("selector")
    if r.plural == "replicationcontrollers":     # a plain map of labels
        sel = {"matchLabels": sel} if isinstance(sel, dict) else None
    smd = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": smd,
            "spec": {"replicas": int(spec.get("replicas") or 0)},
            "status": {"replicas": int(status.get("replicas") or 0),
                       "selector": format_label_selector(sel)}}


_BUILTIN_SCALE_GROUPS = frozenset({"", "apps"})    # the built-in kinds with /scale


class RegistryKindsMixin:
    # ------------------------------------------------------------------ scale
    async def _get_scale(self, r: Resource, name: str, namespace: str | None, user: User) -> dict:
        ns = self._ns(r, namespace)
        cur = await self._fetch_authz(user, "get", r, ns, name, "scale")
        return scale_of(r, cur)

    async def _write_scale(self, r: Resource, name: str | None, namespace: str | None, user: User,
                           warnings: list | None, *, body: Any = None, patch: Any = None,
                           patch_type: str | None = None, field_manager: str | None = None) -> dict:
        """PUT (``body``) or PATCH (``patch``) of .../NAME/scale."""
        if patch is not None:
            if isinstance(patch, (bytes, str)):
                try:
                    patch = json.loads(patch)
                except ValueError as e:
                    raise E.bad_request(f"error decoding patch: {e}") from None
            if patch_type == "json" and not isinstance(patch, list):
                raise E.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            if patch_type != "json" and not isinstance(patch, dict):
                raise E.bad_request("the patch must be a JSON object")
        elif not isinstance(body, dict):
            raise E.bad_request('Scale in version "v1" cannot be handled as a Scale: the body must be a JSON object')
        if body is not None:
            bmd = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            if name and bmd.get("name") and bmd["name"] != name:
                raise E.bad_request(f"the name of the object ({bmd['name']}) does not match the name on the "
                                    f"URL ({name})")
            name = name or bmd.get("name")
            namespace = namespace or bmd.get("namespace")
        if not name:
            raise E.bad_request("name is required")
        ns = self._ns(r, namespace)
        key = key_for(r.plural, ns, name)
        for _ in range(_RETRIES):
            cur = await self._fetch_authz(user, "update" if patch is None else "patch", r, ns, name, "scale")
            cur_scale = scale_of(r, cur)
            if patch is not None:
                scale = patched(cur_scale, patch, patch_type)
            else:
                scale = body
            av, kind = scale.get("apiVersion"), scale.get("kind")
            if (av is not None and av != "autoscaling/v1") or (kind is not None and kind != "Scale"):
                raise E.bad_request(f"the API version in the data ({av}) does not match the expected API version "
                                    f"(autoscaling/v1)" if av != "autoscaling/v1" else
                                    f"{kind} in version \"v1\" cannot be handled as a Scale")
            smd = scale.get("metadata") if isinstance(scale.get("metadata"), dict) else {}
            want_rv = smd.get("resourceVersion")
            if want_rv and str(want_rv) != cur["metadata"].get("resourceVersion"):
                raise E.conflict(r.plural, name, group=r.group)
            replicas = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale.get("spec"), dict) \
                else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                why = "must be greater than or equal to 0" if isinstance(replicas, int) \
                    and not isinstance(replicas, bool) else "must be an integer"
                raise E.invalid("Scale", name, [{"field": "spec.replicas", "reason": "FieldValueInvalid",
                                                 "message": f"Invalid value: {json.dumps(replicas)}: {why}"}],
                                "scale", "autoscaling")
            if r.group not in _BUILTIN_SCALE_GROUPS:     # a custom resource (skiff.controller.crd)
                from skiff.controller.crd.kinds import with_custom_replicas
                if replicas == cur_scale["spec"]["replicas"]:
                    return cur_scale
                incoming = with_custom_replicas(r, cur, replicas)
            elif replicas == int((cur.get("spec") or {}).get("replicas") or 0) and \
                    "replicas" in (cur.get("spec") or {}):
                return cur_scale
            else:
                incoming = {**cur, "spec": {**(cur.get("spec") or {}), "replicas": replicas}}
            new = self._prepare(r, cur, incoming, ns, name, None, warnings)
            new = self._track(r, cur, incoming, new, "scale", field_manager)
            try:
                out = await self._write(r, key, cur, new)
            except StoreError as e:
                if e.reason == "Conflict" and not want_rv:
                    continue
                raise self._store_error(e, r, name) from None
            return scale_of(r, out)
        raise E.conflict(r.plural, name, group=r.group)

    # ------------------------------------------------------------------ namespaces
    async def _delete_namespace(self, key: str, cur: dict) -> dict:
        """First DELETE: Terminating. Later ones: removed once nothing finalizes it."""
        md, spec = dict(cur["metadata"]), dict(cur.get("spec") or {})
        if not md.get("deletionTimestamp"):
            from skiff.controller.registry import now_rfc3339
            md["deletionTimestamp"] = now_rfc3339()
            fins = list(spec.get("finalizers") or [])
            if NAMESPACE_FINALIZER not in fins:
                fins.append(NAMESPACE_FINALIZER)
            spec["finalizers"] = fins
            status = {**(cur.get("status") or {}), "phase": "Terminating"}
            new = {**cur, "metadata": md, "spec": spec, "status": status}
            return await self.storage.update(key, new, md.get("resourceVersion"))
        if not spec.get("finalizers") and not md.get("finalizers"):
            return await self.storage.delete(key, md.get("resourceVersion"))
        return cur

    @staticmethod
    def _prepare_finalize(r: Resource, cur: dict, incoming: dict, name: str) -> dict:
        """PUT namespaces/NAME/finalize: only spec.finalizers changes."""
        spec = incoming.get("spec") if isinstance(incoming.get("spec"), dict) else {}
        fins = spec.get("finalizers") or []
        if not isinstance(fins, list) or not all(isinstance(f, str) and f for f in fins):
            raise E.invalid(r.kind, name, [{"field": "spec.finalizers", "reason": "FieldValueInvalid",
                                            "message": f"Invalid value: {json.dumps(fins)[:60]}: must be a list "
                                                       f"of finalizer names"}], r.plural, r.group)
        cspec = dict(cur.get("spec") or {})
        if list(cspec.get("finalizers") or []) == fins:
            return cur
        if fins:
            cspec["finalizers"] = fins
        else:
            cspec.pop("finalizers", None)
        new = {**cur, "spec": cspec}
        if not cspec:
            new.pop("spec")
        return new

    async def _check_namespace_active(self, ns_obj: dict, r: Resource, name: str | None) -> None:
        md = ns_obj.get("metadata") or {}
        if md.get("deletionTimestamp") or (ns_obj.get("status") or {}).get("phase") == "Terminating":
            ns = md.get("name")
            raise E.forbidden(r.plural, name, f"unable to create new content in namespace {ns} because it is "
                                              f"being terminated", r.group)

    # ------------------------------------------------------------------ node authorizer
    async def _node_references(self, user: User, plural: str, ns: str | None, name: str) -> bool:
        """Whether a pod bound to ``user``'s node references configmap/secret ``name``."""
        if not user.is_node or not ns or not name:
            return False
        kind = {"configmaps": "configmap", "persistentvolumeclaims": "persistentvolumeclaim"}.get(plural, "secret")
        raw = getattr(self.storage, "node_pods_raw", None)  # the watch cache's index: the node's pods only,
        try:                                                  # decoded only when their text names the object
            if raw is not None:
                mark = f'"{name}"'    # a DNS name: written as it is in the JSON text
                bmark = mark.encode()
                pods = (loads(t) for t in await raw(prefix_for("pods", ns), user.node)
                        if (mark in t if isinstance(t, str) else bmark in t))
            else:
                pods = (p for _, p in (await self.storage.list_keyed(prefix_for("pods", ns)))[0])
        except StoreError:
            return False
        return any((pod.get("spec") or {}).get("nodeName") == user.node and (kind, name) in pod_references(pod)
                   for pod in pods)


__all__ = ["RegistryKindsMixin", "gc_finalizers", "check_propagation_policy", "scale_of", "set_template_generation",
           "APIError", "ORPHAN_FINALIZER", "FOREGROUND_FINALIZER", "NAMESPACE_FINALIZER"]
