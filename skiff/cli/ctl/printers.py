"""How kubectl prints objects: table columns per kind, AGE, the pod STATUS column,
Go's tabwriter layout, and -o yaml|json|name."""
from __future__ import annotations

import calendar
import json
import time

NONE = "<none>"


# ------------------------------------------------------------------ time

def parse_time(ts: str | None) -> float | None:
    """RFC 3339 ("2026-11-28T10:00:00Z", with optional fraction or offset) -> epoch seconds."""
    if not ts or not isinstance(ts, str):
        return None
    try:
        s = ts.strip()
        frac = 0.0
        off = 0
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1]
        elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
            sign = 1 if s[-6] == "+" else -1
            off = sign * (int(s[-5:-3]) * 3600 + int(s[-2:]) * 60)
            s = s[:-6]
        if "." in s:
            s, f = s.split(".", 1)
            frac = float("0." + f) if f else 0.0
        t = time.strptime(s, "%Y-%m-%dT%H:%M:%S")
        return calendar.timegm(t) + frac - off
    except (ValueError, IndexError):
        return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(ts: str | None, now: float | None = None) -> str:
    """kubectl's translateTimestampSince: "<unknown>" for a missing timestamp."""
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration((time.time() if now is None else now) - t)


# ------------------------------------------------------------------ tabwriter

def tabwrite(rows: list[list[str]], padding: int = 3, minwidth: int = 6) -> str:
    """Go's text/tabwriter as kubectl uses it: every cell but a line's last is padded to its
    column block's width (max cell + padding, at least minwidth). Blocks are runs of
    consecutive lines that have a cell in that column."""
    n = len(rows)
    widths: list[dict[int, int]] = [dict() for _ in range(n)]

    def fmt(line0: int, line1: int, col: int) -> None:
        i = line0
        while i < line1:
            if len(rows[i]) - 1 > col:
                j = i
                w = minwidth
                while j < line1 and len(rows[j]) - 1 > col:
                    w = max(w, len(rows[j][col]) + padding)
                    j += 1
                for k in range(i, j):
                    widths[k][col] = w
                fmt(i, j, col + 1)
                i = j
            else:
                i += 1

    fmt(0, n, 0)
    out = []
    for r, row in enumerate(rows):
        cells = [c.ljust(widths[r][ci]) if ci in widths[r] else c for ci, c in enumerate(row)]
        out.append("".join(cells))
    return "\n".join(out) + ("\n" if out else "")


# ------------------------------------------------------------------ helpers

def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def labels_str(obj: dict) -> str:
    lb = meta(obj).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(lb.items())) or NONE


def kind_name(res, obj: dict | None = None, name: str | None = None) -> str:
    """kubectl's "pod/web" (lease.coordination.k8s.io/x for grouped kinds)."""
    prefix = res.singular + (f".{res.group}" if res.group else "")
    return f"{prefix}/{name if name is not None else meta(obj).get('name', '')}"


# ------------------------------------------------------------------ pods

def pod_status(pod: dict) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) exactly as kubectl's printPod computes them."""
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart = None
    phase = st.get("phase") or ""
    reason = st.get("reason") or phase
    for c in st.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def term_date(cs):
        t = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        return parse_time(t)

    init_specs = spec.get("initContainers") or []
    initializing = False
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        d = term_date(cs)
        if d is not None and (last_restart is None or d > last_restart):
            last_restart = d
        state = cs.get("state") or {}
        term = state.get("terminated")
        wait = state.get("waiting")
        if term is not None and (term.get("exitCode") or 0) == 0:
            continue
        if term is not None:
            if not term.get("reason"):
                reason = (f"Init:Signal:{term['signal']}" if term.get("signal")
                          else f"Init:ExitCode:{term.get('exitCode', 0)}")
            else:
                reason = "Init:" + term["reason"]
        elif wait is not None and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in st.get("conditions") or [])
    if not initializing or initialized:
        restarts = 0
        last_restart = None
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            d = term_date(cs)
            if d is not None and (last_restart is None or d > last_restart):
                last_restart = d
            state = cs.get("state") or {}
            wait = state.get("waiting")
            term = state.get("terminated")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            has_ready_cond = any(c.get("type") == "Ready" and c.get("status") == "True"
                                 for c in st.get("conditions") or [])
            reason = "Running" if has_ready_cond else "NotReady"
    if meta(pod).get("deletionTimestamp") and st.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta(pod).get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    rs = str(restarts)
    if restarts and last_restart is not None:
        rs = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    return f"{ready}/{total}", reason, rs


def pod_ip(pod: dict) -> str:
    st = pod.get("status") or {}
    ips = st.get("podIPs") or []
    ip = (ips[0] or {}).get("ip") if ips else st.get("podIP")
    return ip or NONE


def pod_row(pod: dict, wide: bool = False) -> list[str]:
    ready, status, restarts = pod_status(pod)
    row = [meta(pod).get("name", ""), ready, status, restarts, since(meta(pod).get("creationTimestamp"))]
    if wide:
        spec = pod.get("spec") or {}
        st = pod.get("status") or {}
        gates = spec.get("readinessGates") or []
        if gates:
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
            gates_s = f"{ok}/{len(gates)}"
        else:
            gates_s = NONE
        row += [pod_ip(pod), spec.get("nodeName") or NONE, st.get("nominatedNodeName") or NONE, gates_s]
    return row


# ------------------------------------------------------------------ nodes

def node_status(node: dict) -> str:
    status = []
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            status.append("Ready" if c.get("status") == "True" else "NotReady")
            break
    if not status:
        status.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(node: dict) -> str:
    roles = set()
    for k, v in (meta(node).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            r = k[len("node-role.kubernetes.io/"):]
            if r:
                roles.add(r)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def node_address(node: dict, kind: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return a.get("address") or NONE
    return NONE


def node_row(node: dict, wide: bool = False) -> list[str]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    row = [meta(node).get("name", ""), node_status(node), node_roles(node),
           since(meta(node).get("creationTimestamp")), info.get("kubeletVersion", "")]
    if wide:
        row += [node_address(node, "InternalIP"), node_address(node, "ExternalIP"),
                info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
                info.get("containerRuntimeVersion") or "<unknown>"]
    return row


# ------------------------------------------------------------------ others

def namespace_row(ns: dict, wide: bool = False) -> list[str]:
    return [meta(ns).get("name", ""), (ns.get("status") or {}).get("phase") or "Active",
            since(meta(ns).get("creationTimestamp"))]


def event_times(ev: dict) -> tuple[str, str, int]:
    """(last seen, first seen, count) as kubectl's printEvent."""
    first = ev.get("firstTimestamp") or ev.get("eventTime") or meta(ev).get("creationTimestamp")
    last = ev.get("lastTimestamp") or first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series:
        last = series.get("lastObservedTime") or last
        count = int(series.get("count") or count)
    elif count == 0:
        count = 1
    return since(last), since(first), count


def event_source(ev: dict) -> str:
    src = ev.get("source") or {}
    comp = src.get("component") or ev.get("reportingComponent") or ev.get("reportingController") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    if not comp:
        return "<unknown>"
    return f"{comp}, {host}" if host else comp


def event_row(ev: dict, wide: bool = False) -> list[str]:
    last, first, count = event_times(ev)
    io = ev.get("involvedObject") or {}
    target = f"{(io.get('kind') or '').lower()}/{io['name']}" if io.get("name") else (io.get("kind") or "").lower()
    msg = (ev.get("message") or "").strip()
    if wide:
        return [last, ev.get("type", ""), ev.get("reason", ""), target, io.get("fieldPath") or "",
                event_source(ev), msg, first, str(count), meta(ev).get("name", "")]
    return [last, ev.get("type", ""), ev.get("reason", ""), target, msg]


def event_sort_key(ev: dict) -> float:
    for k in ("lastTimestamp", "eventTime", "firstTimestamp"):
        t = parse_time(ev.get(k))
        if t is not None:
            return t
    if ev.get("series"):
        t = parse_time(ev["series"].get("lastObservedTime"))
        if t is not None:
            return t
    return parse_time(meta(ev).get("creationTimestamp")) or 0.0


def lease_row(lease: dict, wide: bool = False) -> list[str]:
    return [meta(lease).get("name", ""), (lease.get("spec") or {}).get("holderIdentity") or "",
            since(meta(lease).get("creationTimestamp"))]


def generic_row(obj: dict, wide: bool = False) -> list[str]:
    return [meta(obj).get("name", ""), since(meta(obj).get("creationTimestamp"))]


# ------------------------------------------------------------------ workloads

def selector_string(sel: dict | None) -> str:
    """metav1.LabelSelectorAsSelector(sel).String(): requirements sorted by key,
    "app=web", "tier in (a,b)", "tier notin (a)", "key", "!key"."""
    if sel is None:
        return NONE
    reqs = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        if op == "In":
            reqs.append((k, f"{k} in ({','.join(vals)})"))
        elif op == "NotIn":
            reqs.append((k, f"{k} notin ({','.join(vals)})"))
        elif op == "Exists":
            reqs.append((k, k))
        elif op == "DoesNotExist":
            reqs.append((k, f"!{k}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def _containers_cells(obj: dict) -> list[str]:
    cs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


def _int(v) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def deployment_row(d: dict, wide: bool = False) -> list[str]:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    row = [meta(d).get("name", ""), f"{_int(st.get('readyReplicas'))}/{desired}",
           str(_int(st.get("updatedReplicas"))), str(_int(st.get("availableReplicas"))),
           since(meta(d).get("creationTimestamp"))]
    if wide:
        row += _containers_cells(d) + [selector_string(spec.get("selector"))]
    return row


def replicaset_row(rs: dict, wide: bool = False) -> list[str]:
    spec, st = rs.get("spec") or {}, rs.get("status") or {}
    row = [meta(rs).get("name", ""), str(_int(spec.get("replicas", 1))), str(_int(st.get("replicas"))),
           str(_int(st.get("readyReplicas"))), since(meta(rs).get("creationTimestamp"))]
    if wide:
        row += _containers_cells(rs) + [selector_string(spec.get("selector"))]
    return row


def configmap_row(cm: dict, wide: bool = False) -> list[str]:
    n = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [meta(cm).get("name", ""), str(n), since(meta(cm).get("creationTimestamp"))]


def secret_row(s: dict, wide: bool = False) -> list[str]:
    n = len(s.get("data") or {}) + len(s.get("stringData") or {})
    return [meta(s).get("name", ""), s.get("type") or "Opaque", str(n), since(meta(s).get("creationTimestamp"))]


# plural -> (headers, wide headers, row function)
TABLES = {
    "pods": (["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
             ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"], pod_row),
    "nodes": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
              ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"], node_row),
    "namespaces": (["NAME", "STATUS", "AGE"], [], namespace_row),
    "events": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], [], event_row),
    "leases": (["NAME", "HOLDER", "AGE"], [], lease_row),
    "deployments": (["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                    ["CONTAINERS", "IMAGES", "SELECTOR"], deployment_row),
    "replicasets": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
                    ["CONTAINERS", "IMAGES", "SELECTOR"], replicaset_row),
    "configmaps": (["NAME", "DATA", "AGE"], [], configmap_row),
    "secrets": (["NAME", "TYPE", "DATA", "AGE"], [], secret_row),
}

EVENT_WIDE = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN",
              "COUNT", "NAME"]


def headers_for(plural: str, wide: bool = False, all_namespaces: bool = False,
                show_labels: bool = False) -> list[str]:
    if plural == "events" and wide:
        h = list(EVENT_WIDE)
    else:
        base, extra, _ = TABLES.get(plural, (["NAME", "AGE"], [], generic_row))
        h = base + (extra if wide else [])
    if all_namespaces:
        h = ["NAMESPACE"] + h
    if show_labels:
        h.append("LABELS")
    return h


def row_for(plural: str, obj: dict, wide: bool = False, all_namespaces: bool = False,
            show_labels: bool = False, name_prefix: str = "") -> list[str]:
    fn = TABLES.get(plural, (None, None, generic_row))[2]
    row = fn(obj, wide)
    if name_prefix and plural != "events":
        row[0] = name_prefix + row[0]
    if all_namespaces:
        row = [meta(obj).get("namespace", "")] + row
    if show_labels:
        row.append(labels_str(obj))
    return row


# ------------------------------------------------------------------ -o json|yaml

def to_json(obj) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def to_yaml(obj) -> str:
    import yaml
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(obj, Dumper=dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
