"""The ServiceAccount admission of a pod create, which needs the store (Kubernetes' ServiceAccount
admission plugin, without tokens):

- ``spec.serviceAccountName`` defaults to ``default`` (and the deprecated ``serviceAccount``
  repeats it);
- a pod naming a ServiceAccount that does not exist is refused with 403 Forbidden, worded as
  Kubernetes: ``pods "web" is forbidden: error looking up service account ns/sa: serviceaccount
  "sa" not found``;
- a pod without imagePullSecrets gets its ServiceAccount's.

The ``default`` ServiceAccount is the one exception: when it does not exist (yet), the pod is
accepted as it is. The serviceaccounts controller makes it as soon as a namespace exists, but a
pod may come first (a client creating a namespace and then a pod in it, or a control plane run
without that controller, as many tests do); Kubernetes' admission waits up to ~1 s for it and
then refuses, which only makes such clients retry. A missing ``default`` has nothing to give a pod
(no pull secrets, no token in skiff), so accepting is what waiting would have reached, without
the wait or the spurious refusal.

Skipped as in Kubernetes: mirror pods (``kubernetes.io/config.mirror``). Not done: tokens (skiff
issues none) and the ``kubernetes.io/enforce-mountable-secrets`` check of secret volumes.
"""
from __future__ import annotations

from skiff.api import errors as E
from skiff.controller.storage import StoreError, key_for

__all__ = ["DEFAULT_SERVICE_ACCOUNT", "admit_pod_service_account"]

DEFAULT_SERVICE_ACCOUNT = "default"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


async def admit_pod_service_account(storage, pod: dict, namespace: str, shown_name: str) -> None:
    """Default, check and apply the ServiceAccount of ``pod`` (admitted, about to be created in
    ``namespace``) in place. ``shown_name``: the name a refusal names (the generateName of a pod
    whose name is generated, as Kubernetes, whose admission runs before the name is made)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    if MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return
    name = spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    try:
        sa = await storage.get(key_for("serviceaccounts", namespace, name))
    except StoreError as e:
        if e.code != 404:
            raise E.internal(f"error looking up service account {namespace}/{name}: {e.message}") from None
        if name == DEFAULT_SERVICE_ACCOUNT:
            return
        raise E.forbidden("pods", shown_name, f"error looking up service account {namespace}/{name}: "
                                              f'serviceaccount "{name}" not found') from None
    pulls = [{"name": s["name"]} for s in sa.get("imagePullSecrets") or []
             if isinstance(s, dict) and s.get("name")]
    if pulls and not spec.get("imagePullSecrets"):
        spec["imagePullSecrets"] = pulls
