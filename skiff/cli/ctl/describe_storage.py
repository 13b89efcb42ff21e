"""``describe pvc|pv|sc``: kubectl's layouts of PersistentVolumeClaims (with the pods that use
them), PersistentVolumes (their source and node affinity) and StorageClasses."""
from __future__ import annotations

from skiff.api.errors import APIError
from skiff.api.tables_storage import access_modes

from . import printers as P
from .describe import W, annotations, events_section, kv_map

__all__ = ["describe_pvc", "describe_pv", "describe_sc", "pods_using"]


def _finalizers(w: W, md: dict) -> None:
    w.w(0, f"Finalizers:\t[{' '.join(md.get('finalizers') or [])}]")


def _status(obj: dict) -> str:
    if P.meta(obj).get("deletionTimestamp"):
        return f"Terminating (lasts {P.since(P.meta(obj)['deletionTimestamp'])})"
    return (obj.get("status") or {}).get("phase") or ""


def pods_using(client, pvc: dict) -> list[str] | None:
    md = P.meta(pvc)
    try:
        pods = client.list("pods", md.get("namespace")).get("items") or []
    except APIError:
        return None
    out = []
    for p in pods:
        for v in (p.get("spec") or {}).get("volumes") or ():
            if (v.get("persistentVolumeClaim") or {}).get("claimName") == md.get("name"):
                out.append(P.meta(p).get("name", ""))
                break
    return out


def describe_pvc(pvc: dict, events, used_by: list[str] | None) -> str:
    md, spec, st = P.meta(pvc), pvc.get("spec") or {}, pvc.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"StorageClass:\t{spec.get('storageClassName') or ''}")
    w.w(0, f"Status:\t{_status(pvc)}")
    w.w(0, f"Volume:\t{spec.get('volumeName') or ''}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    _finalizers(w, md)
    bound = bool(spec.get("volumeName"))
    w.w(0, f"Capacity:\t{(st.get('capacity') or {}).get('storage', '') if bound else ''}")
    w.w(0, f"Access Modes:\t{access_modes(st.get('accessModes')) if bound else ''}")
    w.w(0, f"VolumeMode:\t{spec.get('volumeMode') or 'Filesystem'}")
    if used_by is not None:
        w.w(0, f"Used By:\t{used_by[0] if used_by else '<none>'}")
        for name in used_by[1:]:
            w.w(0, f"\t{name}")
    events_section(w, events)
    return w.render()


def _node_affinity(w: W, spec: dict) -> None:
    req = ((spec.get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms")
    if not req:
        w.w(0, "Node Affinity:\t<none>")
        return
    w.w(0, "Node Affinity:\t")
    w.w(1, "Required Terms:\t")
    for i, term in enumerate(req):
        reqs = [f"{e.get('key')} {e.get('operator', '').lower()} [{', '.join(e.get('values') or [])}]"
                if e.get("values") else f"{e.get('key')} {e.get('operator', '').lower()}"
                for e in (term.get("matchExpressions") or []) + (term.get("matchFields") or [])]
        w.w(2, f"Term {i}:\t{', '.join(reqs) if reqs else '<none>'}")


def describe_pv(pv: dict, events) -> str:
    md, spec, st = P.meta(pv), pv.get("spec") or {}, pv.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    _finalizers(w, md)
    w.w(0, f"StorageClass:\t{spec.get('storageClassName') or ''}")
    w.w(0, f"Status:\t{_status(pv)}")
    ref = spec.get("claimRef") or {}
    w.w(0, f"Claim:\t{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "Claim:\t")
    w.w(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy') or ''}")
    w.w(0, f"Access Modes:\t{access_modes(spec.get('accessModes'))}")
    w.w(0, f"VolumeMode:\t{spec.get('volumeMode') or 'Filesystem'}")
    w.w(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage', '')}")
    _node_affinity(w, spec)
    w.w(0, f"Message:\t{st.get('message') or ''}")
    w.w(0, "Source:")
    if isinstance(spec.get("hostPath"), dict):
        hp = spec["hostPath"]
        w.w(1, "Type:\tHostPath (bare host directory volume)")
        w.w(1, f"Path:\t{hp.get('path', '')}")
        w.w(1, f"HostPathType:\t{hp.get('type') or ''}")
    elif isinstance(spec.get("local"), dict):
        w.w(1, "Type:\tLocalVolume (a persistent volume backed by local storage on a node)")
        w.w(1, f"Path:\t{spec['local'].get('path', '')}")
    events_section(w, events)
    return w.render()


def describe_sc(sc: dict, events) -> str:
    md = P.meta(sc)
    ann = md.get("annotations") or {}
    default = "true" in (ann.get("storageclass.kubernetes.io/is-default-class"),
                         ann.get("storageclass.beta.kubernetes.io/is-default-class"))
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"IsDefaultClass:\t{'Yes' if default else 'No'}")
    annotations(w, ann)
    w.w(0, f"Provisioner:\t{sc.get('provisioner') or ''}")
    params = sc.get("parameters") or {}
    w.w(0, "Parameters:\t" + (",".join(f"{k}={v}" for k, v in sorted(params.items())) or "<none>"))
    ave = sc.get("allowVolumeExpansion")
    w.w(0, f"AllowVolumeExpansion:\t{'<unset>' if ave is None else str(ave)}")
    w.w(0, "MountOptions:\t" + (", ".join(sc.get("mountOptions") or []) or "<none>"))
    w.w(0, f"ReclaimPolicy:\t{sc.get('reclaimPolicy') or ''}")
    w.w(0, f"VolumeBindingMode:\t{sc.get('volumeBindingMode') or ''}")
    events_section(w, events)
    return w.render()
