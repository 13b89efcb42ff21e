"""skiffctl's printers: kubectl's AGE, pod STATUS/READY/RESTARTS, node STATUS, table layout
and error wording."""
import time

import pytest

from skiff.cli.ctl import printers as P
from skiff.cli.ctl.client import format_error, _warning_text
from skiff.cli.ctl.flags import Flag, parse, parse_duration, UsageError


def ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))


@pytest.mark.parametrize("secs,want", [
    (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (192, "3m12s"), (600, "10m"), (179 * 60, "179m"),
    (3 * 3600, "3h"), (5 * 3600, "5h"), (5 * 3600 + 60 * 7, "5h7m"), (9 * 3600, "9h"), (47 * 3600, "47h"),
    (48 * 3600, "2d"), (50 * 3600, "2d2h"), (10 * 86400, "10d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
    (-1, "0s"), (-5, "<invalid>"),
])
def test_human_duration(secs, want):
    assert P.human_duration(secs) == want


def test_since_and_parse_time():
    assert P.since(None) == "<unknown>"
    assert P.since(ts(45)) in ("45s", "46s")
    assert P.parse_time("2026-11-28T10:00:00Z") == P.parse_time("2026-11-28T11:00:00+01:00")
    assert P.parse_time("2026-11-28T10:00:00.500Z") - P.parse_time("2026-11-28T10:00:00Z") == pytest.approx(0.5)


def pod(**kw):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ts(30)},
         "spec": {"containers": [{"name": "a", "image": "busybox"}]},
         "status": {"phase": "Pending"}}
    for k, v in kw.items():
        p[k].update(v)
    return p


def test_pod_pending_unscheduled():
    assert P.pod_status(pod()) == ("0/1", "Pending", "0")
    row = P.pod_row(pod(), wide=True)
    assert row[:4] == ["web", "0/1", "Pending", "0"]
    assert row[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_pod_running_ready():
    p = pod(spec={"nodeName": "n1"}, status={"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [
        {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ts(20)}}}]})
    assert P.pod_status(p) == ("1/1", "Running", "0")
    assert P.pod_row(p, wide=True)[5:7] == ["10.244.0.5", "n1"]


def test_pod_container_creating_and_crashloop():
    p = pod(status={"phase": "Pending", "containerStatuses": [
        {"name": "a", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    assert P.pod_status(p)[1] == "ContainerCreating"
    p = pod(status={"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(12)}}}]})
    ready, status, restarts = P.pod_status(p)
    assert (ready, status) == ("0/1", "CrashLoopBackOff")
    assert restarts in ("3 (12s ago)", "3 (13s ago)")


def test_pod_terminated_reasons():
    p = pod(status={"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
    assert P.pod_status(p)[1] == "Completed"
    p = pod(status={"phase": "Failed", "containerStatuses": [
        {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]})
    assert P.pod_status(p)[1] == "ExitCode:2"
    p = pod(status={"phase": "Failed", "containerStatuses": [
        {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]})
    assert P.pod_status(p)[1] == "Signal:9"


def test_pod_completed_but_one_running_is_running_or_notready():
    cs = [{"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
          {"name": "b", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
    p = pod(spec={"containers": [{"name": "a"}, {"name": "b"}]}, status={"phase": "Running", "containerStatuses": cs})
    assert P.pod_status(p) == ("1/2", "NotReady", "0")
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert P.pod_status(p)[1] == "Running"


def test_pod_terminating():
    p = pod(metadata={"deletionTimestamp": ts(-30)}, status={"phase": "Running"})
    assert P.pod_status(p)[1] == "Terminating"
    p = pod(metadata={"deletionTimestamp": ts(-30)}, status={"phase": "Succeeded"})
    assert P.pod_status(p)[1] == "Succeeded"


def test_pod_init_containers():
    p = pod(spec={"initContainers": [{"name": "i1"}, {"name": "i2"}]}, status={
        "phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "restartCount": 0, "state": {"running": {}}}]})
    assert P.pod_status(p)[1] == "Init:1/2"


def node(ready="True", **spec):
    return {"metadata": {"name": "n1", "creationTimestamp": ts(3 * 86400),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}] if ready else [],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-skiff", "osImage": "Debian"}}}


def test_node_rows():
    assert P.node_row(node()) == ["n1", "Ready", "control-plane", "3d", "v1.32.0-skiff"]
    assert P.node_status(node("False")) == "NotReady"
    assert P.node_status(node("Unknown")) == "NotReady"
    assert P.node_status(node(None)) == "Unknown"
    assert P.node_status(node(unschedulable=True)) == "Ready,SchedulingDisabled"
    wide = P.node_row(node(), wide=True)
    assert wide[5:] == ["10.0.0.2", "<none>", "Debian", "<unknown>", "<unknown>"]


def test_event_lease_namespace_rows():
    ev = {"metadata": {"name": "web.1", "namespace": "default"}, "type": "Warning", "reason": "FailedScheduling",
          "message": " no nodes \n", "involvedObject": {"kind": "Pod", "name": "web"},
          "firstTimestamp": ts(300), "lastTimestamp": ts(10), "count": 3}
    assert P.event_row(ev) == [P.since(ts(10)), "Warning", "FailedScheduling", "pod/web", "no nodes"]
    from skiff.cli.ctl.events import interval
    assert interval(ev) in ("10s (x3 over 5m)", "11s (x3 over 5m)")
    assert P.lease_row({"metadata": {"name": "n1", "creationTimestamp": ts(5)},
                        "spec": {"holderIdentity": "n1"}})[:2] == ["n1", "n1"]
    assert P.namespace_row({"metadata": {"name": "default", "creationTimestamp": ts(5)},
                            "status": {"phase": "Active"}})[:2] == ["default", "Active"]


def test_table_layout_like_kubectl():
    rows = [P.headers_for("pods"), ["web", "1/1", "Running", "0", "5s"],
            ["a-much-longer-name", "0/1", "CrashLoopBackOff", "3 (12s ago)", "2m"]]
    out = P.tabwrite(rows)
    assert out.splitlines() == [
        "NAME                 READY   STATUS             RESTARTS      AGE",
        "web                  1/1     Running            0             5s",
        "a-much-longer-name   0/1     CrashLoopBackOff   3 (12s ago)   2m",
    ]
    # tabwriter's minimum width of 6 for narrow columns
    assert P.tabwrite([["A", "B"], ["x", "y"]]).splitlines() == ["A     B", "x     y"]
    h = P.headers_for("pods", wide=True, all_namespaces=True, show_labels=True)
    assert h[0] == "NAMESPACE" and h[-1] == "LABELS" and "NOMINATED NODE" in h


def test_row_with_namespace_and_labels():
    p = pod(metadata={"labels": {"b": "2", "a": "1"}})
    row = P.row_for("pods", p, all_namespaces=True, show_labels=True)
    assert row[0] == "default" and row[1] == "web" and row[-1] == "a=1,b=2"


def test_kind_name():
    from skiff.api.resources import RESOURCES
    assert P.kind_name(RESOURCES["pods"], {"metadata": {"name": "web"}}) == "pod/web"
    assert P.kind_name(RESOURCES["leases"], name="n1") == "lease.coordination.k8s.io/n1"


def status(reason, message, code, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def test_error_wording():
    assert format_error(404, status("NotFound", 'pods "x" not found', 404)) == \
        'Error from server (NotFound): pods "x" not found'
    assert format_error(409, status("AlreadyExists", 'pods "x" already exists', 409), "creating", "f.yaml") == \
        'Error from server (AlreadyExists): error when creating "f.yaml": pods "x" already exists'
    one = status("Invalid", "whatever", 422, {"name": "x", "kind": "Pod", "causes": [
        {"field": "spec.containers[0].image", "reason": "FieldValueRequired", "message": "Required value"}]})
    assert format_error(422, one) == 'The Pod "x" is invalid: spec.containers[0].image: Required value'
    # the server may send the plural as details.kind
    one["details"]["kind"] = "pods"
    assert format_error(422, one) == 'The Pod "x" is invalid: spec.containers[0].image: Required value'
    two = status("Invalid", "m", 422, {"name": "x", "kind": "Pod", "causes": [
        {"field": "a", "message": "Required value"}, {"field": "b", "message": "Invalid value"}]})
    assert format_error(422, two) == 'The Pod "x" is invalid: \n* a: Required value\n* b: Invalid value'
    none = status("Invalid", "m", 422, {"name": "x", "kind": "Pod"})
    assert format_error(422, none) == 'The Pod "x" is invalid'
    assert format_error(422, {"kind": "Status", "status": "Failure", "message": "custom problem", "code": 422}) \
        == "Error from server: custom problem"
    assert format_error(403, status("Forbidden", "no", 403)) == "Error from server (Forbidden): no"
    assert format_error(404, {"message": "404 page not found"}) == \
        "Error from server (NotFound): the server could not find the requested resource"


def test_warning_header():
    assert _warning_text('299 - "spec.foo: not implemented"') == "spec.foo: not implemented"
    assert _warning_text("plain") == "plain"


def test_flags():
    flags = [Flag("-o --output", "output", "str"), Flag("-w --watch", "watch"), Flag("-A", "all"),
             Flag("--wait", "wait", default=True), Flag("-f", "files", "list"), Flag("-v", "v", "optint", 0)]
    opts, args = parse(["pods", "-owide", "-wA", "web", "--wait=false", "-f", "a", "-f=b", "-v", "7"], flags)
    assert args == ["pods", "web"]
    assert opts == {"output": "wide", "watch": True, "all": True, "wait": False, "files": ["a", "b"], "v": 7}
    opts, _ = parse(["--output=json", "-v"], flags)
    assert opts["output"] == "json" and opts["v"] == 6
    with pytest.raises(UsageError):
        parse(["--nope"], flags)
    assert parse_duration("1h30m") == 5400 and parse_duration("10s") == 10 and parse_duration("24h") == 86400
