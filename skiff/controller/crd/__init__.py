"""apiextensions.k8s.io/v1 CustomResourceDefinitions: the CRD object (definition), the
custom resources' schema handling (schema), their serving and admission (kinds), their
Table columns (printing) and the controller that establishes and finalizes CRDs
(controller)."""
from skiff.controller.crd.kinds import CUSTOM, CUSTOM_KINDS, admit_custom, register, unregister

__all__ = ["CUSTOM", "CUSTOM_KINDS", "admit_custom", "register", "unregister"]
