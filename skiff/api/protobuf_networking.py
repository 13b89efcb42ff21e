"""The protobuf descriptions of networking.k8s.io/v1 Ingress and IngressClass (the bodies of
``kubectl create ingress`` and ``kubectl create ingressclass``-like clients), field numbers as
k8s.io/api/networking/v1/generated.proto has them. Strict: a field skiff does not read that
carries a value is refused, never dropped. Registered by :mod:`skiff.api.protobuf`."""
from __future__ import annotations

from skiff.api.protobuf import OBJECT_META

TYPED_LOCAL_REF = {1: ("apiGroup", "str"), 2: ("kind", "str"), 3: ("name", "str")}
SERVICE_BACKEND = {1: ("name", "str"), 2: ("port", "msg", {1: ("name", "str"), 2: ("number", "int")})}
BACKEND = {4: ("service", "msg", SERVICE_BACKEND), 3: ("resource", "msg", TYPED_LOCAL_REF)}
HTTP_PATH = {1: ("path", "str"), 3: ("pathType", "str"), 2: ("backend", "msg", BACKEND)}
RULE = {1: ("host", "str"), 2: ("", "inline", {1: ("http", "msg", {1: ("paths", "rep_msg", HTTP_PATH)})})}
INGRESS_SPEC = {4: ("ingressClassName", "str"), 1: ("defaultBackend", "msg", BACKEND),
                2: ("tls", "rep_msg", {1: ("hosts", "rep_str"), 2: ("secretName", "str")}),
                3: ("rules", "rep_msg", RULE)}
INGRESS = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", INGRESS_SPEC), 3: ("status", "skip")}
INGRESS_CLASS = {1: ("metadata", "msg", OBJECT_META),
                 2: ("spec", "msg", {1: ("controller", "str"),
                                     2: ("parameters", "msg", {1: ("apiGroup", "str"), 2: ("kind", "str"),
                                                               3: ("name", "str"), 4: ("scope", "str"),
                                                               5: ("namespace", "str")})})}
KINDS = {("networking.k8s.io/v1", "Ingress"): INGRESS, ("networking.k8s.io/v1", "IngressClass"): INGRESS_CLASS}
