"""Show details of a specific resource or group of resources, with its events.

Usage:
  skiffctl describe KIND [NAME...] | KIND/NAME [-l SELECTOR]
"""
from __future__ import annotations

import sys
import time

from .client import APIError, CtlError
from .common import ns_for, targets
from .flags import Flag
from . import printers as P

FLAGS = [
    Flag("-l --selector", "selector", "str", help="Label selector"),
    Flag("-A --all-namespaces", "all_namespaces", help="Describe across all namespaces"),
    Flag("--show-events", "show_events", default=True, help="Include events (default true)"),
]


class W:
    """kubectl's describe writer: tab-separated cells at indentation levels, laid out by a
    tabwriter with padding 2."""

    def __init__(self):
        self.lines: list[str] = []

    def w(self, level: int, text: str) -> None:
        self.lines.append("  " * level + text)

    def render(self) -> str:
        text = "\n".join(self.lines)
        return P.tabwrite([line.split("\t") for line in text.split("\n")], padding=2, minwidth=0)


def fmt_time(ts: str | None) -> str:
    t = P.parse_time(ts)
    if t is None:
        return "<unset>"
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def kv_map(w: W, title: str, m: dict | None, level: int = 0) -> None:
    m = m or {}
    if not m:
        w.w(level, f"{title}:\t<none>")
        return
    for i, (k, v) in enumerate(sorted(m.items())):
        w.w(level, (f"{title}:" if i == 0 else "") + f"\t{k}={v}")


def annotations(w: W, m: dict | None) -> None:
    m = dict(m or {})
    m.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not m:
        w.w(0, "Annotations:\t<none>")
        return
    for i, (k, v) in enumerate(sorted(m.items())):
        w.w(0, ("Annotations:" if i == 0 else "") + f"\t{k}: {v}")


def events_section(w: W, events: list[dict] | None) -> None:
    if events is None:
        return
    if not events:
        w.w(0, "Events:\t<none>")
        return
    w.w(0, "Events:")
    w.w(1, "Type\tReason\tAge\tFrom\tMessage")
    w.w(1, "----\t------\t----\t----\t-------")
    for e in sorted(events, key=P.event_sort_key):
        first = e.get("firstTimestamp") or e.get("eventTime") or P.meta(e).get("creationTimestamp")
        if int(e.get("count") or 0) > 1:
            age = f"{P.since(e.get('lastTimestamp'))} (x{e['count']} over {P.since(first)})"
        else:
            age = P.since(first)
        w.w(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{age}\t{P.event_source(e)}\t"
               f"{(e.get('message') or '').strip()}")


def fetch_events(client, obj: dict, kind: str) -> list[dict]:
    md = P.meta(obj)
    parts = [f"involvedObject.name={md.get('name')}"]
    ns = md.get("namespace") or ("default" if kind in ("Node", "Namespace") else None)
    if md.get("namespace"):
        parts.append(f"involvedObject.namespace={md['namespace']}")
    if md.get("uid"):
        parts.append(f"involvedObject.uid={md['uid']}")
    try:
        if kind in ("Node", "Namespace"):
            # events about cluster-scoped objects may live in any namespace ("default" by convention)
            lst = client.list("events", None, field_selector=",".join(parts))
        else:
            lst = client.list("events", ns, field_selector=",".join(parts))
    except APIError:
        return []
    return [e for e in lst.get("items") or [] if (e.get("involvedObject") or {}).get("kind") in (kind, None, "")]


# ------------------------------------------------------------------ pods

def _state(w: W, title: str, st: dict | None, level: int) -> None:
    st = st or {}
    if st.get("running") is not None:
        w.w(level, f"{title}:\tRunning")
        w.w(level + 1, f"Started:\t{fmt_time(st['running'].get('startedAt'))}")
    elif st.get("waiting") is not None:
        w.w(level, f"{title}:\tWaiting")
        w.w(level + 1, f"Reason:\t{st['waiting'].get('reason', '')}")
        if st["waiting"].get("message"):
            w.w(level + 1, f"Message:\t{st['waiting']['message']}")
    elif st.get("terminated") is not None:
        t = st["terminated"]
        w.w(level, f"{title}:\tTerminated")
        w.w(level + 1, f"Reason:\t{t.get('reason', '')}")
        if t.get("message"):
            w.w(level + 1, f"Message:\t{t['message']}")
        w.w(level + 1, f"Exit Code:\t{t.get('exitCode', 0)}")
        if t.get("signal"):
            w.w(level + 1, f"Signal:\t{t['signal']}")
        w.w(level + 1, f"Started:\t{fmt_time(t.get('startedAt'))}")
        w.w(level + 1, f"Finished:\t{fmt_time(t.get('finishedAt'))}")
    else:
        w.w(level, f"{title}:\tWaiting")


def describe_pod(pod: dict, events) -> str:
    md, spec, st = P.meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"Priority:\t{spec.get('priority', 0)}")
    if spec.get("priorityClassName"):
        w.w(0, f"Priority Class Name:\t{spec['priorityClassName']}")
    w.w(0, f"Service Account:\t{spec.get('serviceAccountName') or 'default'}")
    node = spec.get("nodeName")
    w.w(0, f"Node:\t{node + ('/' + st['hostIP'] if st.get('hostIP') else '') if node else '<none>'}")
    if st.get("startTime"):
        w.w(0, f"Start Time:\t{fmt_time(st.get('startTime'))}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    if md.get("deletionTimestamp"):
        w.w(0, f"Status:\tTerminating (lasts {P.since(md['deletionTimestamp']).lstrip('-')})")
        w.w(0, f"Termination Grace Period:\t{md.get('deletionGracePeriodSeconds', 0)}s")
    else:
        w.w(0, f"Status:\t{st.get('phase', '')}")
    if st.get("reason"):
        w.w(0, f"Reason:\t{st['reason']}")
    if st.get("message"):
        w.w(0, f"Message:\t{st['message']}")
    w.w(0, f"IP:\t{st.get('podIP') or ''}")
    ips = [i.get("ip") for i in st.get("podIPs") or [] if i.get("ip")] or ([st["podIP"]] if st.get("podIP") else [])
    if ips:
        w.w(0, "IPs:")
        for ip in ips:
            w.w(1, f"IP:\t{ip}")
    else:
        w.w(0, "IPs:\t<none>")
    if _controller(pod):
        w.w(0, f"Controlled By:\t{_controller(pod)}")
    for title, group, key in (("Init Containers", "initContainers", "initContainerStatuses"),
                              ("Containers", "containers", "containerStatuses")):
        if group == "initContainers" and not spec.get(group):
            continue
        statuses = {c.get("name"): c for c in st.get(key) or []}
        w.w(0, f"{title}:")
        for c in spec.get(group) or []:
            cs = statuses.get(c.get("name")) or {}
            w.w(1, f"{c.get('name')}:")
            if cs.get("containerID"):
                w.w(2, f"Container ID:\t{cs['containerID']}")
            w.w(2, f"Image:\t{c.get('image', '')}")
            if cs.get("imageID"):
                w.w(2, f"Image ID:\t{cs['imageID']}")
            _ports_and_argv(w, c)
            _state(w, "State", cs.get("state"), 2)
            if (cs.get("lastState") or {}):
                _state(w, "Last State", cs.get("lastState"), 2)
            w.w(2, f"Ready:\t{'True' if cs.get('ready') else 'False'}")
            w.w(2, f"Restart Count:\t{cs.get('restartCount', 0)}")
            _resources_and_probes(w, c)
            _env_and_mounts(w, c)
    conds = st.get("conditions") or []
    if conds:
        w.w(0, "Conditions:")
        w.w(1, "Type\tStatus")
        for c in conds:
            w.w(1, f"{c.get('type')}\t{c.get('status')} ")
    _volumes(w, spec.get("volumes") or [], "")
    w.w(0, f"QoS Class:\t{st.get('qosClass') or _qos(spec)}")
    ns_sel = spec.get("nodeSelector") or {}
    w.w(0, "Node-Selectors:\t" + (",".join(f"{k}={v}" for k, v in sorted(ns_sel.items())) or "<none>"))
    tol = spec.get("tolerations") or []
    w.w(0, "Tolerations:\t" + (", ".join(f"{t.get('key', '')}:{t.get('effect', '')}" for t in tol) or "<none>"))
    events_section(w, events)
    return w.render()


def _qos(spec: dict) -> str:
    cs = spec.get("containers") or []
    reqs = [((c.get("resources") or {}).get("requests") or {}) for c in cs]
    lims = [((c.get("resources") or {}).get("limits") or {}) for c in cs]
    if not any(reqs) and not any(lims):
        return "BestEffort"
    if all(l.get("cpu") and l.get("memory") and (not r or r == l) for r, l in zip(reqs, lims)):
        return "Guaranteed"
    return "Burstable"


# ------------------------------------------------------------------ nodes

def describe_node(node: dict, events, pods: list[dict] | None, lease: dict | None) -> str:
    md, spec, st = P.meta(node), node.get("spec") or {}, node.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Roles:\t{P.node_roles(node)}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.get('creationTimestamp'))}")
    taints = spec.get("taints") or []
    if taints:
        for i, t in enumerate(taints):
            v = f"={t['value']}" if t.get("value") else ""
            w.w(0, ("Taints:" if i == 0 else "") + f"\t{t.get('key')}{v}:{t.get('effect')}")
    else:
        w.w(0, "Taints:\t<none>")
    w.w(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    if lease is not None:
        ls = lease.get("spec") or {}
        w.w(0, "Lease:")
        w.w(1, f"HolderIdentity:\t{ls.get('holderIdentity') or '<unset>'}")
        w.w(1, f"AcquireTime:\t{fmt_time(ls.get('acquireTime'))}")
        w.w(1, f"RenewTime:\t{fmt_time(ls.get('renewTime'))}")
    conds = st.get("conditions") or []
    w.w(0, "Conditions:")
    if conds:
        w.w(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
        w.w(1, "----\t------\t-----------------\t------------------\t------\t-------")
        for c in conds:
            w.w(1, f"{c.get('type')}\t{c.get('status')}\t{fmt_time(c.get('lastHeartbeatTime'))}\t"
                   f"{fmt_time(c.get('lastTransitionTime'))}\t{c.get('reason', '')}\t{c.get('message', '')}")
    addrs = st.get("addresses") or []
    w.w(0, "Addresses:")
    for a in addrs:
        w.w(1, f"{a.get('type')}:\t{a.get('address')}")
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        if st.get(key):
            w.w(0, f"{title}:")
            for k, v in sorted(st[key].items()):
                w.w(1, f"{k}:\t{v}")
    info = st.get("nodeInfo") or {}
    if info:
        w.w(0, "System Info:")
        for title, key in (("Machine ID", "machineID"), ("System UUID", "systemUUID"), ("Boot ID", "bootID"),
                           ("Kernel Version", "kernelVersion"), ("OS Image", "osImage"),
                           ("Operating System", "operatingSystem"), ("Architecture", "architecture"),
                           ("Container Runtime Version", "containerRuntimeVersion"),
                           ("Kubelet Version", "kubeletVersion")):
            w.w(1, f"{title}:\t{info.get(key, '')}")
    w.w(0, f"PodCIDR:\t{spec.get('podCIDR') or ''}")
    w.w(0, f"PodCIDRs:\t{','.join(spec.get('podCIDRs') or ([spec['podCIDR']] if spec.get('podCIDR') else []))}")
    if pods is not None:
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        w.w(0, f"Non-terminated Pods:\t({len(live)} in total)")
        if live:
            w.w(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge")
            w.w(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---")
            for p in live:
                cs = (p.get("spec") or {}).get("containers") or []

                def tot(kind, res):
                    vals = [((c.get("resources") or {}).get(kind) or {}).get(res) for c in cs]
                    vals = [v for v in vals if v]
                    return "+".join(str(v) for v in vals) if vals else "0"
                pm = P.meta(p)
                w.w(1, f"{pm.get('namespace')}\t{pm.get('name')}\t{tot('requests', 'cpu')}\t{tot('limits', 'cpu')}\t"
                       f"{tot('requests', 'memory')}\t{tot('limits', 'memory')}\t{P.since(pm.get('creationTimestamp'))}")
    events_section(w, events)
    return w.render()


# ------------------------------------------------------------------ deployments and replicasets

def _multiline(w: W, title: str, items: list[str]) -> None:
    if not items:
        w.w(0, f"{title}:\t<none>")
        return
    for i, it in enumerate(items):
        w.w(0, (f"{title}:" if i == 0 else "") + f"\t{it}")


def _toleration(t: dict) -> str:
    s = t.get("key") or ""
    if t.get("value"):
        s += f"={t['value']}"
    if t.get("effect"):
        s += f":{t['effect']}"
    if t.get("operator") == "Exists" and not t.get("value"):
        s += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
    if t.get("tolerationSeconds") is not None:
        s += f" for {t['tolerationSeconds']}s"
    return s


def _ports(ports, key) -> str:
    return ",".join(f"{p.get(key, 0)}/{p.get('protocol') or 'TCP'}" for p in ports or [])


def _containers(w: W, label: str, containers: list[dict], space: str = "  ") -> None:
    w.w(0, f"{space}{label}:" + ("" if containers else " <none>"))
    for c in containers:
        w.w(1, f" {c.get('name')}:")
        w.w(2, f"Image:\t{c.get('image', '')}")
        _ports_and_argv(w, c)
        _resources_and_probes(w, c)
        _env_and_mounts(w, c)


def _resources_and_probes(w: W, c: dict) -> None:
    res = c.get("resources") or {}
    for which in ("limits", "requests"):
        if res.get(which):
            w.w(2, f"{which.capitalize()}:")
            for k, v in sorted(res[which].items()):
                w.w(3, f"{k}:\t{v}")
    for kind, title in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                        ("startupProbe", "Startup")):
        if c.get(kind):
            w.w(2, f"{title}:\t{_probe(c[kind])}")


def _ports_and_argv(w: W, c: dict) -> None:
    """A container's Port(s), Host Port(s), Command and Args, as kubectl shows them."""
    ports = c.get("ports") or []
    ps = _ports(ports, "containerPort")
    w.w(2, ("Ports:" if "," in ps else "Port:") + f"\t{ps or '<none>'}")
    hs = _ports(ports, "hostPort")
    w.w(2, ("Host Ports:" if "," in hs else "Host Port:") + f"\t{hs or '<none>'}")
    for key, title in (("command", "Command:"), ("args", "Args:")):
        if c.get(key):
            w.w(2, title)
            for a in c[key]:
                w.w(3, a)


def _env_and_mounts(w: W, c: dict) -> None:
    """A container's Environment Variables from, Environment and Mounts, as kubectl shows them."""
    env_from = c.get("envFrom") or []
    if env_from:
        w.w(2, "Environment Variables from:")
        for e in env_from:
            if e.get("configMapRef"):
                ref, what = e["configMapRef"], "ConfigMap"
            else:
                ref, what = e.get("secretRef") or {}, "Secret"
            opt = "true" if ref.get("optional") else "false"
            if e.get("prefix"):
                w.w(3, f"{ref.get('name', '')}\t{what} with prefix '{e['prefix']}'\tOptional: {opt}")
            else:
                w.w(3, f"{ref.get('name', '')}\t{what}\tOptional: {opt}")
    env = c.get("env") or []
    if env:
        w.w(2, "Environment:")
        for e in env:
            if "valueFrom" not in e:
                w.w(3, f"{e.get('name')}:\t{e.get('value', '')}")
                continue
            vf = e.get("valueFrom") or {}
            if vf.get("fieldRef"):
                r = vf["fieldRef"]
                w.w(3, f"{e.get('name')}:\t ({r.get('apiVersion', 'v1')}:{r.get('fieldPath', '')})")
            elif vf.get("configMapKeyRef"):
                r = vf["configMapKeyRef"]
                w.w(3, f"{e.get('name')}:\t<set to the key '{r.get('key')}' of config map "
                       f"'{r.get('name')}'>\tOptional: {'true' if r.get('optional') else 'false'}")
            elif vf.get("secretKeyRef"):
                r = vf["secretKeyRef"]
                w.w(3, f"{e.get('name')}:\t<set to the key '{r.get('key')}' in secret "
                       f"'{r.get('name')}'>\tOptional: {'true' if r.get('optional') else 'false'}")
            else:
                w.w(3, f"{e.get('name')}:\t")
    else:
        w.w(2, "Environment:\t<none>")
    mounts = c.get("volumeMounts") or []
    if mounts:
        w.w(2, "Mounts:")
        for m in mounts:
            w.w(3, f"{m.get('mountPath')} from {m.get('name')} ({'ro' if m.get('readOnly') else 'rw'})")
    else:
        w.w(2, "Mounts:\t<none>")


def _probe(p: dict) -> str:
    if p.get("exec") is not None:
        h = "exec " + "[" + " ".join((p["exec"] or {}).get("command") or []) + "]"
    elif p.get("httpGet") is not None:
        g = p["httpGet"] or {}
        h = f"http-get {(g.get('scheme') or 'HTTP').lower()}://{g.get('host', '')}:{g.get('port', '')}{g.get('path', '')}"
    elif p.get("tcpSocket") is not None:
        h = f"tcp-socket {(p['tcpSocket'] or {}).get('host', '')}:{(p['tcpSocket'] or {}).get('port', '')}"
    else:
        h = "unknown"
    return (f"{h} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
            f"period={p.get('periodSeconds', 10)}s #success={p.get('successThreshold', 1)} "
            f"#failure={p.get('failureThreshold', 3)}")


def _volumes(w: W, vols: list[dict], space: str = "  ") -> None:
    if not vols:
        w.w(0, f"{space}Volumes:\t<none>")
        return
    w.w(0, f"{space}Volumes:")
    for v in vols:
        w.w(1, f"{' ' if space else ''}{v.get('name')}:")   # as kubectl: indented in templates
        if "emptyDir" in v:
            w.w(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
            w.w(2, f"Medium:\t{(v.get('emptyDir') or {}).get('medium', '')}")
            w.w(2, f"SizeLimit:\t{(v.get('emptyDir') or {}).get('sizeLimit') or '<unset>'}")
        elif "hostPath" in v:
            hp = v.get("hostPath") or {}
            w.w(2, "Type:\tHostPath (bare host directory volume)")
            w.w(2, f"Path:\t{hp.get('path', '')}")
            w.w(2, f"HostPathType:\t{hp.get('type', '')}")
        elif "persistentVolumeClaim" in v:
            pvc = v.get("persistentVolumeClaim") or {}
            w.w(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)")
            w.w(2, f"ClaimName:\t{pvc.get('claimName', '')}")
            w.w(2, f"ReadOnly:\t{'true' if pvc.get('readOnly') else 'false'}")
        elif "configMap" in v:
            cm = v.get("configMap") or {}
            w.w(2, "Type:\tConfigMap (a volume populated by a ConfigMap)")
            w.w(2, f"Name:\t{cm.get('name', '')}")
            w.w(2, f"Optional:\t{'true' if cm.get('optional') else 'false'}")
        elif "secret" in v:
            se = v.get("secret") or {}
            w.w(2, "Type:\tSecret (a volume populated by a Secret)")
            w.w(2, f"SecretName:\t{se.get('secretName', '')}")
            w.w(2, f"Optional:\t{'true' if se.get('optional') else 'false'}")
        elif "downwardAPI" in v:
            w.w(2, "Type:\tDownwardAPI (a volume populated by information about the pod)")
            w.w(2, "Items:")
            for it in (v.get("downwardAPI") or {}).get("items") or []:
                ref = it.get("fieldRef") or {}
                w.w(3, f"{ref.get('fieldPath') or (it.get('resourceFieldRef') or {}).get('resource', '')} -> "
                       f"{it.get('path', '')}")
        elif "projected" in v:
            w.w(2, "Type:\tProjected (a volume that contains injected data from multiple sources)")
            for src in (v.get("projected") or {}).get("sources") or []:
                for kind, word in (("secret", "Secret"), ("configMap", "ConfigMap")):
                    if src.get(kind) is not None:
                        opt = src[kind].get("optional")
                        w.w(2, f"{word}Name:\t{src[kind].get('name', '')}")
                        w.w(2, f"{word}Optional:\t{'<nil>' if opt is None else str(bool(opt)).lower()}")
                if src.get("downwardAPI") is not None:
                    w.w(2, "DownwardAPI:\ttrue")
                if src.get("serviceAccountToken") is not None:
                    w.w(2, f"TokenExpirationSeconds:\t{src['serviceAccountToken'].get('expirationSeconds', 3600)}")


def pod_template(w: W, t: dict | None) -> None:
    """kubectl's DescribePodTemplate."""
    w.w(0, "Pod Template:")
    if t is None:
        w.w(1, "<unset>")
        return
    md, spec = t.get("metadata") or {}, t.get("spec") or {}
    kv_map(w, "  Labels", md.get("labels"))
    ann = {k: v for k, v in (md.get("annotations") or {}).items()
           if k != "kubectl.kubernetes.io/last-applied-configuration"}
    if md.get("annotations"):
        if ann:
            for i, (k, v) in enumerate(sorted(ann.items())):
                w.w(0, ("  Annotations:" if i == 0 else "") + f"\t{k}: {v}")
        else:
            w.w(0, "  Annotations:\t<none>")
    if spec.get("serviceAccountName"):
        w.w(1, f"Service Account:\t{spec['serviceAccountName']}")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"])
    _containers(w, "Containers", spec.get("containers") or [])
    _volumes(w, spec.get("volumes") or [])
    if spec.get("priorityClassName"):
        w.w(1, f"Priority Class Name:\t{spec['priorityClassName']}")
    kv_map(w, "  Node-Selectors", spec.get("nodeSelector"))
    _multiline(w, "  Tolerations", [_toleration(t) for t in spec.get("tolerations") or []])


def _conditions(w: W, conds: list[dict] | None) -> None:
    if conds:
        w.w(0, "Conditions:")
        w.w(1, "Type\tStatus\tReason")
        w.w(1, "----\t------\t------")
        for c in conds:
            w.w(1, f"{c.get('type')} \t{c.get('status')}\t{c.get('reason', '')}")


def _rs_list(rses: list[dict]) -> str:
    s = ", ".join(f"{P.meta(rs).get('name')} ({int((rs.get('status') or {}).get('replicas') or 0)}/"
                  f"{int((rs.get('spec') or {}).get('replicas', 1) or 0)} replicas created)" for rs in rses)
    return s or "<none>"


def describe_deployment(d: dict, events, new_rs: dict | None = None, old_rses: list[dict] | None = None,
                        show_rses: bool = True) -> str:
    md, spec, st = P.meta(d), d.get("spec") or {}, d.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.get('creationTimestamp'))}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"Selector:\t{P.selector_string(spec.get('selector'))}")
    w.w(0, f"Replicas:\t{int(spec.get('replicas', 1) or 0)} desired | {int(st.get('updatedReplicas') or 0)} updated"
           f" | {int(st.get('replicas') or 0)} total | {int(st.get('availableReplicas') or 0)} available"
           f" | {int(st.get('unavailableReplicas') or 0)} unavailable")
    strategy = spec.get("strategy") or {}
    w.w(0, f"StrategyType:\t{strategy.get('type', '')}")
    w.w(0, f"MinReadySeconds:\t{int(spec.get('minReadySeconds') or 0)}")
    ru = strategy.get("rollingUpdate")
    if ru is not None:
        w.w(0, f"RollingUpdateStrategy:\t{ru.get('maxUnavailable', '25%')} max unavailable, "
               f"{ru.get('maxSurge', '25%')} max surge")
    pod_template(w, spec.get("template"))
    _conditions(w, st.get("conditions"))
    if show_rses and (old_rses or new_rs is not None):
        w.w(0, f"OldReplicaSets:\t{_rs_list(old_rses or [])}")
        w.w(0, f"NewReplicaSet:\t{_rs_list([new_rs] if new_rs is not None else [])}")
    events_section(w, events)
    return w.render()


def _controller(obj: dict) -> str:
    for r in P.meta(obj).get("ownerReferences") or []:
        if r.get("controller"):
            return f"{r.get('kind')}/{r.get('name')}"
    return ""


def _controlled_pods(client, owner: dict) -> list[dict] | None:
    """The pods ``owner``'s selector matches and it controls (None when they cannot be listed)."""
    from .workloads import controlled_by, selector_query
    try:
        sel = selector_query((owner.get("spec") or {}).get("selector"))
        return [p for p in client.list("pods", P.meta(owner).get("namespace"), sel).get("items") or []
                if controlled_by(p, owner)]
    except APIError:
        return None


def owner_header(w: W, obj: dict) -> None:
    """Name, Namespace, Selector, Labels, Annotations and Controlled By, as kubectl starts the
    description of a pod owner (ReplicaSet, Job)."""
    md, spec = P.meta(obj), obj.get("spec") or {}
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, f"Selector:\t{P.selector_string(spec.get('selector'))}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    ctl = _controller(obj)
    if ctl:
        w.w(0, f"Controlled By:\t{ctl}")


def pods_status(w: W, pods: list[dict] | None) -> None:
    """kubectl's "Pods Status" line of the pods an owner controls (None: not listed)."""
    if pods is None:
        w.w(0, "Pods Status:\terror in fetching pods")
        return
    phases = [(p.get("status") or {}).get("phase") for p in pods]
    w.w(0, f"Pods Status:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
           f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")


def describe_replicaset(rs: dict, events, pods: list[dict] | None) -> str:
    spec, st = rs.get("spec") or {}, rs.get("status") or {}
    w = W()
    owner_header(w, rs)
    w.w(0, f"Replicas:\t{int(st.get('replicas') or 0)} current / {int(spec.get('replicas', 1) or 0)} desired")
    pods_status(w, pods)
    pod_template(w, spec.get("template"))
    _conditions(w, st.get("conditions"))
    events_section(w, events)
    return w.render()


# ------------------------------------------------------------------ namespaces and others

def describe_namespace(ns: dict, events) -> str:
    md = P.meta(ns)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"Status:\t{(ns.get('status') or {}).get('phase') or 'Active'}")
    w.w(0, "")
    w.w(0, "No resource quota.")
    w.w(0, "")
    w.w(0, "No LimitRange resource.")
    return w.render()


def describe_generic(obj: dict, events) -> str:
    md = P.meta(obj)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    if md.get("namespace"):
        w.w(0, f"Namespace:\t{md['namespace']}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"API Version:\t{obj.get('apiVersion', '')}")
    w.w(0, f"Kind:\t{obj.get('kind', '')}")
    from .describe_custom import write_content     # every other field, as kubectl's generic describer
    write_content(w, 0, obj)
    if events is not None:
        events_section(w, events)
    return w.render()


def run(ctx, args: list[str], opts: dict) -> int:
    if not args:
        raise CtlError("error: You must specify the type of resource to describe. "
                       "Use \"skiffctl api-resources\" for a complete list of supported resources.")
    client = ctx.client()
    rc = 0
    first = True
    for res, names in targets(args):
        ns = ns_for(res, ctx, opts["all_namespaces"] and not names)
        objs = []
        if names:
            for n in names:
                try:
                    objs.append(client.get(res.plural, n, ns))
                except APIError as e:
                    print(str(e), file=sys.stderr)
                    rc = 1
        else:
            objs = client.list(res.plural, ns, opts["selector"]).get("items") or []
            if not objs:
                print(f"No resources found in {ctx.namespace} namespace." if res.namespaced
                      else "No resources found", file=sys.stderr)
        for obj in objs:
            events = fetch_events(client, obj, res.kind) if opts["show_events"] and res.plural != "events" else None
            if res.plural == "pods":
                text = describe_pod(obj, events)
            elif res.plural == "nodes":
                name = P.meta(obj).get("name")
                try:
                    pods = client.list("pods", None, field_selector=f"spec.nodeName={name}").get("items") or []
                except APIError:
                    pods = None
                try:
                    lease = client.get("leases", name, "kube-node-lease")
                except APIError:
                    lease = None
                text = describe_node(obj, events, pods, lease)
            elif res.plural == "namespaces":
                text = describe_namespace(obj, events)
            elif res.plural == "deployments":
                from .workloads import replicasets_of, split_new_old
                try:
                    new_rs, old_rses = split_new_old(obj, replicasets_of(client, obj))
                    show = True
                except APIError:
                    new_rs, old_rses, show = None, [], False
                text = describe_deployment(obj, events, new_rs, old_rses, show)
            elif res.plural == "jobs":
                from .describe_job import describe_job
                text = describe_job(obj, events)
            elif res.plural == "cronjobs":
                from .describe_cronjob import describe_cronjob
                text = describe_cronjob(obj, events)
            elif res.plural == "daemonsets":
                from .describe_daemonset import describe_daemonset
                text = describe_daemonset(obj, events, _controlled_pods(client, obj))
            elif res.plural == "statefulsets":
                from .describe_statefulset import describe_statefulset
                text = describe_statefulset(obj, events, _controlled_pods(client, obj))
            elif res.plural == "replicasets":
                text = describe_replicaset(obj, events, _controlled_pods(client, obj))
            elif res.plural == "replicationcontrollers":
                # the same description over its map selector, as a LabelSelector's matchLabels
                sel = (obj.get("spec") or {}).get("selector")
                view = {**obj, "spec": {**(obj.get("spec") or {}), "selector": {"matchLabels": sel} if sel else None}}
                text = describe_replicaset(view, events, _controlled_pods(client, view))
            elif res.plural == "serviceaccounts":
                from .describe_serviceaccount import account_secrets, describe_serviceaccount
                text = describe_serviceaccount(obj, events, account_secrets(client, obj))
            elif res.plural == "horizontalpodautoscalers":
                from .describe_hpa import describe_hpa
                text = describe_hpa(obj, events)
            elif res.plural in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
                from . import describe_storage as DV
                if res.plural == "persistentvolumeclaims":
                    text = DV.describe_pvc(obj, events, DV.pods_using(client, obj))
                elif res.plural == "persistentvolumes":
                    text = DV.describe_pv(obj, events)
                else:
                    text = DV.describe_sc(obj, events)
            elif res.plural == "networkpolicies":
                from .describe_netpol import describe_networkpolicy
                text = describe_networkpolicy(obj, events)
            elif res.plural in ("resourcequotas", "limitranges"):
                from .describe_limits import describe_limitrange, describe_quota
                text = (describe_quota if res.plural == "resourcequotas" else describe_limitrange)(obj)
            elif res.plural in ("services", "endpoints", "endpointslices"):
                from . import describe_service as DS
                if res.plural == "services":
                    md = P.meta(obj)
                    try:
                        slices = client.list("endpointslices", md.get("namespace"),
                                             f"{DS.SERVICE_NAME_LABEL}={md.get('name')}").get("items") or []
                    except APIError:
                        slices = []
                    text = DS.describe_service(obj, events, slices)
                elif res.plural == "endpoints":
                    text = DS.describe_endpoints(obj, events)
                else:
                    text = DS.describe_endpointslice(obj, events)
            else:
                text = describe_generic(obj, events)
            if not first:
                sys.stdout.write("\n\n")
            first = False
            sys.stdout.write(text)
    return rc
