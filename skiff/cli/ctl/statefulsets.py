"""StatefulSet helpers for rollout: kubectl's StatefulSetStatusViewer (`rollout status`). Its
history viewer and rollbacker are the DaemonSet's (both read the ControllerRevisions the owner
controls and patch a revision's data back): see :mod:`.daemonsets`."""
from __future__ import annotations

from .client import CtlError
from .workloads import meta


def _int(v) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def status_message(sts: dict) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer.Status: (message, done)."""
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        raise CtlError("error: rollout status is only available for RollingUpdate strategy type")
    observed = _int(st.get("observedGeneration"))
    if observed == 0 or _int(meta(sts).get("generation")) > observed:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = spec.get("replicas")
    ready, updated = _int(st.get("readyReplicas")), _int(st.get("updatedReplicas"))
    if replicas is not None and ready < _int(replicas):
        return f"Waiting for {_int(replicas) - ready} pods to be ready...", False
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, dict):
        if replicas is not None and ru.get("partition") is not None:
            want = _int(replicas) - _int(ru["partition"])
            if updated < want:
                return (f"Waiting for partitioned roll out to finish: {updated} out of {want} new pods have been "
                        "updated...", False)
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if st.get("updateRevision") != st.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {updated} pods at revision "
                f"{st.get('updateRevision')}...", False)
    return (f"statefulset rolling update complete {_int(st.get('currentReplicas'))} pods at revision "
            f"{st.get('currentRevision')}...", True)
