"""skiffctl's workload commands on canned objects: the deployment/replicaset/configmap/secret
tables, describe deployment|replicaset, rollout status messages, history, undo's patch,
restart's patch, --cascade, scale and `get all` through a fake client."""
import json
import time

import pytest

from skiff.cli.ctl import printers as P
from skiff.cli.ctl import workloads as WL
from skiff.cli.ctl.client import CtlError
from skiff.cli.ctl.describe import describe_deployment, describe_replicaset
from skiff.cli.ctl.delete import propagation_policy
from skiff.cli.ctl.flags import Flag, parse


def ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))


TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"},
                                    {"name": "side", "image": "busybox"}],
                     "restartPolicy": "Always"}}


def deploy(gen=2, observed=2, replicas=3, updated=3, total=3, ready=3, available=3, conds=None, rev="2", **kw):
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": gen,
                      "creationTimestamp": ts(300), "labels": {"app": "web"},
                      "annotations": {WL.REVISION: rev}},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                  "template": json.loads(json.dumps(TEMPLATE)),
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                  "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
         "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                    "readyReplicas": ready, "availableReplicas": available,
                    "unavailableReplicas": max(0, replicas - available), "conditions": conds or []}}
    d.update(kw)
    return d


def rs(name, rev, image="nginx:1.25", replicas=3, current=3, ready=3, cause=None, owner="d-uid", age=200):
    t = json.loads(json.dumps(TEMPLATE))
    t["spec"]["containers"][0]["image"] = image
    t["metadata"]["labels"]["pod-template-hash"] = name.rsplit("-", 1)[-1]
    ann = {WL.REVISION: str(rev)}
    if cause:
        ann[WL.CHANGE_CAUSE] = cause
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": name + "-uid", "creationTimestamp": ts(age),
                         "labels": dict(t["metadata"]["labels"]), "annotations": ann,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": owner, "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": "web", "pod-template-hash": name.rsplit("-", 1)[-1]}},
                     "template": t},
            "status": {"replicas": current, "readyReplicas": ready, "availableReplicas": ready}}


# ------------------------------------------------------------------ tables

def test_deployment_table():
    d = deploy(ready=2, updated=3, available=1)
    assert P.headers_for("deployments") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert P.row_for("deployments", d) == ["web", "2/3", "3", "1", "5m"]
    assert P.headers_for("deployments", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert P.row_for("deployments", d, wide=True)[5:] == ["web,side", "nginx:1.25,busybox", "app=web"]
    fresh = {"metadata": {"name": "new"}, "spec": {"replicas": 2}}
    assert P.deployment_row(fresh) == ["new", "0/2", "0", "0", "<unknown>"]


def test_replicaset_table():
    r = rs("web-5d4f7b", 1, replicas=3, current=2, ready=1)
    assert P.headers_for("replicasets") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert P.row_for("replicasets", r)[:4] == ["web-5d4f7b", "3", "2", "1"]
    assert P.row_for("replicasets", r, wide=True)[5:] == ["web,side", "nginx:1.25,busybox",
                                                          "app=web,pod-template-hash=5d4f7b"]


def test_configmap_secret_tables():
    cm = {"metadata": {"name": "cfg", "creationTimestamp": ts(10)}, "data": {"a": "1", "b": "2"},
          "binaryData": {"c": "AA=="}}
    assert P.headers_for("configmaps") == ["NAME", "DATA", "AGE"]
    assert P.row_for("configmaps", cm)[:2] == ["cfg", "3"]
    s = {"metadata": {"name": "tok"}, "type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}}
    assert P.headers_for("secrets") == ["NAME", "TYPE", "DATA", "AGE"]
    assert P.row_for("secrets", s)[:3] == ["tok", "kubernetes.io/basic-auth", "1"]
    assert P.row_for("secrets", {"metadata": {"name": "e"}})[:3] == ["e", "Opaque", "0"]


def test_selector_string():
    sel = {"matchLabels": {"tier": "x", "app": "web"},
           "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                {"key": "zz", "operator": "DoesNotExist"},
                                {"key": "b", "operator": "Exists"},
                                {"key": "c", "operator": "NotIn", "values": ["q"]}]}
    assert P.selector_string(sel) == "app=web,b,c notin (q),env in (dev,prod),tier=x,!zz"
    assert P.selector_string({}) == ""


def test_kind_names():
    from skiff.api.resources import lookup
    assert P.kind_name(lookup("deploy"), name="web") == "deployment.apps/web"
    assert P.kind_name(lookup("rs"), name="web-5d4f7b") == "replicaset.apps/web-5d4f7b"
    assert P.kind_name(lookup("cm"), name="x") == "configmap/x"


def test_get_all_and_comma_kinds():
    from skiff.cli.ctl.common import targets
    assert [r.plural for r, _ in targets(["all"])] == ["pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets",
                                                     "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs"]
    assert [r.plural for r, _ in targets(["deploy,rs,pods"])] == ["deployments", "replicasets", "pods"]
    with pytest.raises(CtlError):
        targets(["widgets"])


# ------------------------------------------------------------------ rollout status

@pytest.mark.parametrize("d,msg,done", [
    (deploy(gen=3, observed=2), "Waiting for deployment spec update to be observed...", False),
    (deploy(updated=1, replicas=2, total=2),
     'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...', False),
    (deploy(updated=3, total=4),
     'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...', False),
    (deploy(updated=3, total=3, available=1),
     'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...', False),
    (deploy(), 'deployment "web" successfully rolled out', True),
    (deploy(replicas=0, updated=0, total=0, available=0, ready=0), 'deployment "web" successfully rolled out', True),
])
def test_rollout_status_messages(d, msg, done):
    assert WL.status_message(d) == (msg, done)


def test_rollout_status_errors():
    d = deploy(updated=1, conds=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    with pytest.raises(CtlError, match='error: deployment "web" exceeded its progress deadline'):
        WL.status_message(d)
    # generation not observed yet: the old deadline condition is not looked at
    d["metadata"]["generation"] = 5
    assert WL.status_message(d)[0] == "Waiting for deployment spec update to be observed..."
    with pytest.raises(CtlError, match=r"desired revision \(3\) is different from the running revision \(2\)"):
        WL.status_message(deploy(), want_revision=3)
    assert WL.status_message(deploy(), want_revision=2)[1] is True


# ------------------------------------------------------------------ history and undo

def rses():
    return [rs("web-aaa", 1, image="nginx:1.24", replicas=0, current=0, cause="first", age=300),
            rs("web-bbb", 3, image="nginx:1.26", replicas=0, current=0, age=200),
            rs("web-ccc", 4, image="nginx:1.25", age=100),
            rs("other-ddd", 2, owner="someone-else")]


def test_history_table_and_new_old():
    d = deploy(rev="4")
    mine = [r for r in rses() if WL.controlled_by(r, d)]
    assert [P.meta(r)["name"] for r in mine] == ["web-aaa", "web-bbb", "web-ccc"]
    hist = WL.history(mine)
    assert sorted(hist) == [1, 3, 4]
    assert WL.history_table(hist) == "REVISION  CHANGE-CAUSE\n1         first\n3         <none>\n4         <none>\n"
    new, old = WL.split_new_old(d, mine)
    assert P.meta(new)["name"] == "web-ccc" and [P.meta(r)["name"] for r in old] == ["web-aaa", "web-bbb"]


def test_rollback_target_and_patch():
    d = deploy(rev="4")
    d["metadata"]["annotations"]["keep.me/x"] = "d"
    mine = [r for r in rses() if WL.controlled_by(r, d)]
    assert P.meta(WL.rollback_target(d, mine, 0))["name"] == "web-bbb"      # the previous revision
    assert P.meta(WL.rollback_target(d, mine, 1))["name"] == "web-aaa"
    with pytest.raises(CtlError, match="unable to find specified revision 7 in history"):
        WL.rollback_target(d, mine, 7)
    with pytest.raises(CtlError, match='no rollout history found for deployment "web"'):
        WL.rollback_target(d, mine[2:], 0)
    patch = WL.rollback_patch(d, mine[0])
    assert patch[0]["op"] == "replace" and patch[0]["path"] == "/spec/template"
    assert patch[0]["value"]["metadata"]["labels"] == {"app": "web"}          # no pod-template-hash
    assert patch[0]["value"]["spec"]["containers"][0]["image"] == "nginx:1.24"
    # the RS's annotations, but the Deployment's revision; others of the Deployment are dropped
    assert patch[1] == {"op": "replace", "path": "/metadata/annotations",
                        "value": {WL.REVISION: "4", WL.CHANGE_CAUSE: "first"}}
    assert WL.equal_ignore_hash(mine[2]["spec"]["template"], d["spec"]["template"])
    assert not WL.equal_ignore_hash(mine[0]["spec"]["template"], d["spec"]["template"])


def test_restart_patch():
    from skiff.cli.ctl.rollout import restart_patch
    p = restart_patch(0)
    stamp = p["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert P.parse_time(stamp) == 0


# ------------------------------------------------------------------ describe

def test_describe_deployment_layout():
    d = deploy(conds=[{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}])
    mine = [r for r in rses() if WL.controlled_by(r, d)]
    new, old = WL.split_new_old(d, mine)
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    ev = [{"type": "Normal", "reason": "ScalingReplicaSet", "firstTimestamp": ts(30), "lastTimestamp": ts(30),
           "count": 1, "source": {"component": "deployment-controller"},
           "message": "Scaled up replica set web-ccc to 3"}]
    out = describe_deployment(d, ev, new, old)
    lines = out.splitlines()
    assert lines[0] == "Name:                   web"
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable" in lines
    assert "StrategyType:           RollingUpdate" in lines
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in lines
    assert "Selector:               app=web" in lines
    assert "Annotations:            deployment.kubernetes.io/revision: 2" in lines
    i = lines.index("Pod Template:")
    assert lines[i + 1] == "  Labels:  app=web"
    assert lines[i + 2] == "  Containers:"
    assert lines[i + 3] == "   web:"
    assert lines[i + 4].split() == ["Image:", "nginx:1.25"] and lines[i + 4].startswith("    Image:")
    assert "    Port:" in out and "80/TCP" in out
    assert any(line.startswith("  Volumes:") and line.endswith("<none>") for line in lines)
    c = lines.index("Conditions:")
    assert lines[c + 1].split() == ["Type", "Status", "Reason"]
    assert lines[c + 3].split() == ["Available", "True", "MinimumReplicasAvailable"]
    assert "OldReplicaSets:  web-aaa (0/0 replicas created), web-bbb (0/0 replicas created)" in lines
    assert "NewReplicaSet:   web-ccc (3/3 replicas created)" in lines
    e = lines.index("Events:")
    assert lines[e + 3].split()[:2] == ["Normal", "ScalingReplicaSet"] and "deployment-controller" in lines[e + 3]


def test_describe_recreate_and_replicaset():
    d = deploy()
    d["spec"]["strategy"] = {"type": "Recreate"}
    out = describe_deployment(d, None, None, [], show_rses=True)
    assert "RollingUpdateStrategy" not in out and "StrategyType:" in out and "Recreate" in out
    r = rs("web-ccc", 4, replicas=3, current=2)
    pods = [{"status": {"phase": "Running"}}, {"status": {"phase": "Pending"}}]
    out = describe_replicaset(r, [], pods)
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "web-ccc"]
    assert any(line.split() == ["Controlled", "By:", "Deployment/web"] for line in lines)
    assert any(line.split() == ["Replicas:", "2", "current", "/", "3", "desired"] for line in lines)
    assert any(line.split()[:2] == ["Pods", "Status:"] and line.split()[2:] ==
               ["1", "Running", "/", "1", "Waiting", "/", "0", "Succeeded", "/", "0", "Failed"] for line in lines)
    assert "Events:" in out and "<none>" in lines[-1]


# ------------------------------------------------------------------ flags

def test_cascade_flag():
    flags = [Flag("--cascade", "cascade", "optstr", default="background", noopt="background")]
    assert parse(["deploy", "web"], flags)[0]["cascade"] == "background"
    assert parse(["--cascade", "deploy", "web"], flags) == ({"cascade": "background"}, ["deploy", "web"])
    assert parse(["--cascade=orphan", "deploy"], flags)[0]["cascade"] == "orphan"
    assert propagation_policy("orphan") == "Orphan"
    assert propagation_policy("false") == "Orphan"
    assert propagation_policy("true") == "Background"
    assert propagation_policy("foreground") == "Foreground"
    with pytest.raises(CtlError, match="invalid cascade value"):
        propagation_policy("sideways")


# ------------------------------------------------------------------ commands over a fake client

class FakeClient:
    def __init__(self, objs):
        self.objs = objs          # (plural, name) -> obj
        self.requests = []

    def get(self, plural, name, namespace=None, subresource=None):
        from skiff.cli.ctl.client import APIError
        if (plural, name) not in self.objs:
            raise APIError(404, {"kind": "Status", "reason": "NotFound",
                                 "message": f'{plural} "{name}" not found'})
        return self.objs[(plural, name)]

    def list(self, plural, namespace=None, label_selector=None, field_selector=None, limit=500):
        return {"metadata": {"resourceVersion": "9"},
                "items": [o for (p, _), o in self.objs.items() if p == plural]}

    def request(self, method, path, params=None, body=None, content_type="application/json", **kw):
        self.requests.append((method, path, body, content_type))
        return {}

    def close(self):
        pass


class Ctx:
    def __init__(self, client):
        self._c = client
        self.namespace = "default"

    def client(self):
        return self._c


def test_scale_command(capsys):
    from skiff.cli.ctl import scale
    c = FakeClient({("deployments", "web"): deploy()})
    assert scale.run(Ctx(c), ["deploy/web"], {"replicas": 5, "current_replicas": -1, "resource_version": None}) == 0
    assert capsys.readouterr().out == "deployment.apps/web scaled\n"
    assert c.requests == [("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                           {"spec": {"replicas": 5}}, "application/merge-patch+json")]
    with pytest.raises(CtlError, match='required flag'):
        scale.run(Ctx(c), ["deploy/web"], {"replicas": None, "current_replicas": -1, "resource_version": None})
    with pytest.raises(CtlError, match="no scaler"):
        scale.run(Ctx(c), ["pod/x"], {"replicas": 1, "current_replicas": -1, "resource_version": None})


def _rollout(c, *args, **opts):
    from skiff.cli.ctl import rollout
    o = {"watch": True, "timeout": None, "revision": 0, "to_revision": 0}
    o.update(opts)
    return rollout.run(Ctx(c), list(args), o)


def test_rollout_commands(capsys):
    objs = {("deployments", "web"): deploy(rev="4")}
    for r in rses():
        objs[("replicasets", P.meta(r)["name"])] = r
    c = FakeClient(objs)
    assert _rollout(c, "history", "deploy/web") == 0
    assert capsys.readouterr().out == ("deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         first\n"
                                       "3         <none>\n4         <none>\n\n")
    assert _rollout(c, "history", "deployment", "web", revision=1) == 0
    out = capsys.readouterr().out
    assert out.startswith("deployment.apps/web with revision #1\nPod Template:\n  Labels:\tapp=web\n")
    assert "kubernetes.io/change-cause: first" in out and "nginx:1.24" in out
    with pytest.raises(CtlError, match="unable to find the specified revision"):
        _rollout(c, "history", "deploy/web", revision=9)
    assert _rollout(c, "undo", "deploy/web") == 0
    assert capsys.readouterr().out == "deployment.apps/web rolled back\n"
    m, path, body, ctype = c.requests[-1]
    assert (m, path, ctype) == ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                                "application/json-patch+json")
    assert body[0]["value"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert _rollout(c, "undo", "deploy/web", to_revision=4) == 0
    assert capsys.readouterr().out == ("deployment.apps/web skipped rollback "
                                       "(current template already matches revision 4)\n")
    assert _rollout(c, "restart", "deploy/web") == 0
    assert capsys.readouterr().out == "deployment.apps/web restarted\n"
    m, path, body, ctype = c.requests[-1]
    assert ctype == "application/strategic-merge-patch+json"
    assert "kubectl.kubernetes.io/restartedAt" in body["spec"]["template"]["metadata"]["annotations"]
    # status on a finished deployment: one line, exit 0
    assert _rollout(c, "status", "deploy/web") == 0
    assert capsys.readouterr().out == 'deployment "web" successfully rolled out\n'
    # --watch=false on an unfinished one: one verdict, exit 0
    c.objs[("deployments", "web")] = deploy(available=1)
    assert _rollout(c, "status", "deploy/web", watch=False) == 0
    assert "1 of 3 updated replicas are available" in capsys.readouterr().out
    with pytest.raises(CtlError, match="no status viewer"):
        _rollout(c, "status", "rs/web-ccc")
