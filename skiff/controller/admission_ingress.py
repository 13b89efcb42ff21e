"""Admission of Ingresses on create, as kube-apiserver does it:

- the DefaultIngressClass plugin: an Ingress created with neither ``spec.ingressClassName``
  nor the old ``kubernetes.io/ingress.class`` annotation gets the name of the IngressClass
  annotated ``ingressclass.kubernetes.io/is-default-class: "true"`` (of several, the most
  recently created one);
- ValidateIngressCreate: the class field and the annotation may not be set together;
- the ingress strategy's PrepareForCreate: the status is the ingress controller's alone.
"""
from __future__ import annotations

from skiff.api import errors as E
from skiff.api.validation_ingress import CLASS_ANNOTATION, check_ingress_create, is_default_class
from skiff.controller.storage import prefix_for

__all__ = ["admit_ingress_create", "default_ingress_class"]


async def default_ingress_class(storage) -> dict | None:
    items, _, _ = await storage.list(prefix_for("ingressclasses", None))
    defaults = [ic for ic in items if is_default_class(ic)]
    if not defaults:
        return None
    return max(defaults, key=lambda ic: (ic["metadata"].get("creationTimestamp") or "",
                                          ic["metadata"].get("name") or ""))


async def admit_ingress_create(storage, ing: dict) -> None:
    md = ing.get("metadata") or {}
    causes = check_ingress_create(ing)
    if causes:
        raise E.invalid("Ingress", md.get("name") or md.get("generateName") or "", causes, "ingresses",
                        "networking.k8s.io")
    ing.pop("status", None)
    spec = ing.get("spec")
    if not isinstance(spec, dict) or spec.get("ingressClassName") is not None:
        return
    if (md.get("annotations") or {}).get(CLASS_ANNOTATION):
        return
    dflt = await default_ingress_class(storage)
    if dflt is not None:
        spec["ingressClassName"] = dflt["metadata"]["name"]
