"""The ServiceAccount admission of a pod create, which needs the store (Kubernetes' ServiceAccount
admission plugin, without tokens):

- ``spec.serviceAccountName`` defaults to ``default`` (and the deprecated ``serviceAccount``
  repeats it);
- a pod naming a ServiceAccount that does not exist is refused with 403 Forbidden, worded as
  Kubernetes: ``pods "web" is forbidden: error looking up service account ns/sa: serviceaccount
  "sa" not found``;
- a pod without imagePullSecrets gets its ServiceAccount's;
- unless ``automountServiceAccountToken`` is false (the pod's, else its account's), every
  container and init container gets the API credentials at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` (``token``, ``ca.crt``, ``namespace``): a
  projected ``kube-api-access-XXXXX`` volume whose token the agent requests bound to the pod
  (``serviceaccounts/NAME/token``). A container that already mounts something there is left alone.

The ``default`` ServiceAccount is the one exception: when it does not exist (yet), the pod is
accepted as it is. The serviceaccounts controller makes it as soon as a namespace exists, but a
pod may come first (a client creating a namespace and then a pod in it, or a control plane run
without that controller, as many tests do); Kubernetes' admission waits up to ~1 s for it and
then refuses, which only makes such clients retry. A missing ``default`` has nothing to give a pod
(no pull secrets, no account to make a token for), so accepting is what waiting would have reached, without
the wait or the spurious refusal.

Skipped as in Kubernetes: mirror pods (``kubernetes.io/config.mirror``). Not done: the
``kubernetes.io/enforce-mountable-secrets`` check of secret volumes.
"""
from __future__ import annotations

import hashlib

from skiff.api import errors as E
from skiff.controller.storage import StoreError, key_for

__all__ = ["DEFAULT_SERVICE_ACCOUNT", "TOKEN_MOUNT_PATH", "admit_pod_service_account", "mount_token"]

DEFAULT_SERVICE_ACCOUNT = "default"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607         # Kubernetes' (an hour and 7 s: tells its tokens apart in audits)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"     # utilrand.String's alphabet


def token_volume(name: str) -> dict:
    """The projected volume of a pod's API credentials, as Kubernetes' admission makes it."""
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


def should_automount(sa: dict | None, spec: dict) -> bool:
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return spec["automountServiceAccountToken"]
    if sa is not None and isinstance(sa.get("automountServiceAccountToken"), bool):
        return sa["automountServiceAccountToken"]
    return True


def mount_token(spec: dict, seed: str = "") -> None:
    """Mount the API credentials into every container and init container of ``spec`` that has
    nothing at TOKEN_MOUNT_PATH (mountServiceAccountToken): one ``kube-api-access-*`` volume,
    reused when the pod already has one.

    The volume's five-character suffix is derived from ``seed`` (the namespace and account),
    where Kubernetes draws it at random: the name only has to differ from the pod's other
    volumes, and a stable one keeps the pods of one template equal below their top level, so
    the informers' hash-consing (skiff.api.jsontree.Sharer) still holds their containers once
    (random names cost ~1 KB a pod in every cache)."""
    vols = spec.get("volumes")
    if vols is not None and not isinstance(vols, list):
        return
    vol_name = next((v.get("name") for v in vols or () if isinstance(v, dict)
                     and str(v.get("name") or "").startswith(TOKEN_VOLUME_PREFIX)), None)
    have = vol_name is not None
    if not have:
        # (no volume of the pod can have it: one named kube-api-access-* is the one used)
        digest = hashlib.sha256(seed.encode()).digest()
        vol_name = TOKEN_VOLUME_PREFIX + "".join(_NAME_CHARS[b % len(_NAME_CHARS)] for b in digest[:5])
    needed = False
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or ():
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts")
            if mounts is not None and not isinstance(mounts, list):
                continue
            if any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts or ()):
                continue
            c["volumeMounts"] = list(mounts or ()) + [
                {"name": vol_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needed = True
    if needed and not have:
        spec["volumes"] = list(vols or ()) + [token_volume(vol_name)]


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
    if should_automount(sa, spec):
        mount_token(spec, f"{namespace}/{name}")
