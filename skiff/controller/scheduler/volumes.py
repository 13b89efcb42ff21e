"""The scheduler's VolumeBinding plugin, in small: what a pod's PersistentVolumeClaims ask of
the node it goes to. Only pods with claims pay for it (``PodInfo.claims`` is empty otherwise).

PreFilter (the whole pod; the message of an unschedulable pod, as kube-scheduler words it)::

    persistentvolumeclaim "data" not found
    persistentvolumeclaim "data" is being deleted
    pod has unbound immediate PersistentVolumeClaims     (unbound, class not WaitForFirstConsumer)

Filter (per node)::

    node(s) had volume node affinity conflict    a bound claim's volume has node affinity the node
                                                 does not match (or the claim's selected node is
                                                 another one)
    node(s) didn't find available persistent volumes to bind
                                                 an unbound WaitForFirstConsumer claim whose class
                                                 has no provisioner, and no free volume fits it there

After the choice (PreBind): every unbound WaitForFirstConsumer claim gets the annotation
``volume.kubernetes.io/selected-node: <node>``, which the PV controller binds or provisions on.
Unlike kube-scheduler, the pod is bound at once, without waiting for its claims to be bound: the
agent waits for them before it starts the pod (FailedMount events meanwhile).
"""
from __future__ import annotations

from skiff.controller.scheduler.terms import node_affinity_matches
from skiff.controller.volumes import logic as L

__all__ = ["VolumeState", "volume_state", "R_VOLUME_NODE_CONFLICT", "R_NO_VOLUME", "UNBOUND_IMMEDIATE"]

R_VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"
R_NO_VOLUME = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


class VolumeState:
    """One scheduling cycle's view of a pod's claims."""
    __slots__ = ("terms", "nodes", "static", "to_select")

    def __init__(self):
        self.terms: list[tuple] = []          # node terms of the bound claims' volumes
        self.nodes: set[str] = set()          # selected nodes of unbound claims (each must be the node)
        self.static: list[list[dict]] = []    # per unbound claim without provisioner: the volumes that fit
        self.to_select: list[str] = []        # claims (ns/name) to annotate with the chosen node

    @property
    def node_free(self) -> bool:
        """True when the claims fit on every node (bound to volumes without node affinity)."""
        return not (self.terms or self.nodes or self.static)

    def reason(self, ni) -> str | None:
        for t in self.terms:
            if not node_affinity_matches(t, ni.labels, ni.name):
                return R_VOLUME_NODE_CONFLICT
        for n in self.nodes:
            if n != ni.name:
                return R_VOLUME_NODE_CONFLICT
        for cands in self.static:
            if not any(L.pv_matches_node(pv, ni.name, ni.labels) for pv in cands):
                return R_NO_VOLUME
        return None


def volume_state(namespace: str, claims: tuple, get_claim, get_volume, get_class, list_volumes) -> \
        tuple[str | None, VolumeState | None]:
    """(the PreFilter's message when the pod cannot be scheduled anywhere, else None; the state)."""
    st = VolumeState()
    for name in claims:
        key = f"{namespace}/{name}"
        pvc = get_claim(key)
        if pvc is None:
            return f'persistentvolumeclaim "{name}" not found', None
        md = pvc.get("metadata") or {}
        if md.get("deletionTimestamp"):
            return f'persistentvolumeclaim "{name}" is being deleted', None
        vol = (pvc.get("spec") or {}).get("volumeName")
        if vol:
            pv = get_volume(vol)
            if pv is None:
                return f'persistentvolume "{vol}" not found', None
            terms = L.pv_node_terms(pv)
            if terms is not None:
                st.terms.append(terms)
            continue
        cls = L.class_of(pvc)
        sc = get_class(cls) if cls else None
        if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            return UNBOUND_IMMEDIATE, None
        selected = (md.get("annotations") or {}).get(L.ANN_SELECTED_NODE)
        if selected:
            st.nodes.add(selected)
        else:
            st.to_select.append(key)
        if (sc.get("provisioner") or NO_PROVISIONER) == NO_PROVISIONER:
            st.static.append([pv for pv in list_volumes() if _may_bind(pv, pvc)])
    return None, st


def _may_bind(pv: dict, pvc: dict) -> bool:
    """The volume could take the claim, on some node (find_best_match's checks but the node)."""
    return L.find_best_match(pvc, (pv,)) is not None
