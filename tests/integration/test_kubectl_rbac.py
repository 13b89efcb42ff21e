"""RBAC with the real kubectl 1.32 against a live controller (no agent needed): a chart-like
manifest (ServiceAccount, Role, RoleBinding) applied; `kubectl create token`; with that token an
allowed `get pods` works while `get secrets` and another namespace are refused with
kube-apiserver's message; `auth can-i` answers; escalation is refused; deleting the
ServiceAccount invalidates its token; get columns; the bootstrap roles and their aggregation."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

from tests.e2e.cluster import free_port, wait_for
from tests.integration.kubectl import KUBECTL, Kubectl

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def cluster():
    workdir = tempfile.mkdtemp(prefix="skiff-rbac-")
    data = os.path.join(workdir, "controller")
    port = free_port()
    log = open(os.path.join(workdir, "controller.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "controller", "--data-dir", data,
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    log.close()
    try:
        kubeconfig = os.path.join(data, "kubeconfig")
        k = Kubectl(kubeconfig, workdir)

        def ready():
            assert proc.poll() is None, open(os.path.join(workdir, "controller.log")).read()[-3000:]
            return os.path.exists(kubeconfig) and k("get", "--raw", "/healthz").returncode == 0
        wait_for(ready, 30, what="the controller")
        yield k, workdir
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _as(k: Kubectl, workdir: str, token: str) -> dict:
    """kubectl's environment for a kubeconfig with the admin's server and CA but ``token``."""
    with open(k.kubeconfig) as f:
        cfg = yaml.safe_load(f)
    for u in cfg["users"]:
        u["user"] = {"token": token}
    path = os.path.join(workdir, f"kc-{uuid.uuid4().hex[:8]}")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return {"KUBECONFIG": path}


def test_serviceaccount_token_role_binding_can_i_and_escalation(cluster):
    k, workdir = cluster
    ns, other = "rb-" + uuid.uuid4().hex[:6], "rb-" + uuid.uuid4().hex[:6]
    k.ok("create", "namespace", ns)
    k.ok("create", "namespace", other)
    manifest = f"""\
apiVersion: v1
kind: ServiceAccount
metadata: {{name: reader, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-reader, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: read-pods, namespace: {ns}}}
subjects:
- kind: ServiceAccount
  name: reader
roleRef:
  kind: Role
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
"""
    out = k.ok("apply", "-f", "-", input=manifest)
    assert "role.rbac.authorization.k8s.io/pod-reader created" in out
    assert "rolebinding.rbac.authorization.k8s.io/read-pods created" in out
    # defaulting: the ServiceAccount subject's apiGroup is "" (and stays out of the JSON)
    rb = k.json("get", "rolebinding", "read-pods", "-n", ns)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "reader"}] or \
        rb["subjects"] == [{"kind": "ServiceAccount", "name": "reader", "apiGroup": ""}]
    lines = k.ok("get", "rolebindings", "-n", ns, "-o", "wide").splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert lines[1].split()[:2] == ["read-pods", "Role/pod-reader"] and lines[1].split()[-1] == "/reader"
    assert k.ok("get", "roles", "-n", ns).splitlines()[0].split() == ["NAME", "CREATED", "AT"]

    token = k.ok("create", "token", "reader", "-n", ns, "--duration", "15m").strip()
    env = _as(k, workdir, token)
    who = "system:serviceaccount:%s:reader" % ns
    assert k.ok("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", env=env) == who
    assert k("get", "pods", "-n", ns, env=env).returncode == 0
    err = k.fails("get", "secrets", "-n", ns, env=env)
    assert f'Error from server (Forbidden): secrets is forbidden: User "{who}" cannot list resource "secrets" ' \
           f'in API group "" in the namespace "{ns}"' in err, err
    err = k.fails("get", "pods", "-n", other, env=env)
    assert f'pods is forbidden: User "{who}" cannot list resource "pods" in API group "" in the namespace ' \
           f'"{other}"' in err, err
    assert k("auth", "can-i", "list", "pods", "-n", ns, env=env).stdout.strip() == "yes"
    assert k("auth", "can-i", "delete", "pods", "-n", ns, env=env).stdout.strip() == "no"
    assert k("auth", "can-i", "get", "secrets", "-n", ns, env=env).stdout.strip() == "no"
    listed = k.ok("auth", "can-i", "--list", "-n", ns, env=env)
    assert "pods" in listed and "[get list watch]" in listed

    # escalation: a Role with rules the account does not hold is refused; one within them is not
    err = k.fails("create", "role", "grab", "-n", ns, "--verb=get", "--resource=secrets", env=env)
    assert f'is attempting to grant RBAC permissions not currently held' in err and "secrets" in err, err
    assert k.ok("create", "role", "fine", "-n", ns, "--verb=get", "--resource=pods", env=env).strip() == \
        "role.rbac.authorization.k8s.io/fine created"
    err = k.fails("create", "rolebinding", "grab", "-n", ns, "--clusterrole=admin",
                  f"--serviceaccount={ns}:reader", env=env)
    assert "is attempting to grant RBAC permissions not currently held" in err, err

    # roleRef cannot change
    err = k.fails("patch", "rolebinding", "read-pods", "-n", ns, "--type=merge",
                  "-p", '{"roleRef":{"name":"fine"}}')
    assert "roleRef: Invalid value" in err and "cannot change roleRef" in err, err

    # deleting the ServiceAccount invalidates its token
    k.ok("delete", "serviceaccount", "reader", "-n", ns)
    err = k.fails("get", "pods", "-n", ns, env=env)
    assert "Unauthorized" in err or "must be logged in" in err, err
    k("delete", "namespace", ns, other, "--wait=false")


def test_bootstrap_roles_aggregation_and_create_commands(cluster):
    k, _ = cluster
    out = k.ok("api-resources", "--api-group=rbac.authorization.k8s.io", "--no-headers")
    assert [line.split() for line in out.splitlines()] == [
        ["clusterrolebindings", "rbac.authorization.k8s.io/v1", "false", "ClusterRoleBinding"],
        ["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"],
        ["rolebindings", "rbac.authorization.k8s.io/v1", "true", "RoleBinding"],
        ["roles", "rbac.authorization.k8s.io/v1", "true", "Role"]]
    # skiffctl applies a chart's RBAC objects too
    tag0 = uuid.uuid4().hex[:6]
    path = os.path.join(k.workdir, f"chart-{tag0}.yaml")
    with open(path, "w") as f:
        f.write(f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: chart-{tag0}}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: chart-{tag0}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: chart-{tag0}}}
subjects: [{{kind: ServiceAccount, name: default, namespace: default}}]
""")
    p = subprocess.run([sys.executable, "-m", "skiff.cli.ctl.main", "--kubeconfig", k.kubeconfig, "apply", "-f", path],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert k("get", "clusterrolebinding", f"chart-{tag0}").returncode == 0
    k("delete", "clusterrolebinding,clusterrole", f"chart-{tag0}")
    for name in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"):
        assert k("get", "clusterrole", name).returncode == 0, name
    crb = k.json("get", "clusterrolebinding", "cluster-admin")
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    wait_for(lambda: any("pods" in (r.get("resources") or []) for r in
                         k.json("get", "clusterrole", "view").get("rules") or []), 20, what="view aggregated")
    tag = uuid.uuid4().hex[:6]
    out = k.ok("create", "clusterrole", f"widgets-{tag}", "--verb=get,list", "--resource=configmaps")
    assert out.strip() == f"clusterrole.rbac.authorization.k8s.io/widgets-{tag} created"
    k.ok("label", "clusterrole", f"widgets-{tag}", "rbac.authorization.k8s.io/aggregate-to-view=true")
    k.ok("create", "clusterrole", f"agg-{tag}", "--aggregation-rule=team=x")
    k.ok("label", "clusterrole", f"widgets-{tag}", "team=x")
    wait_for(lambda: (k.json("get", "clusterrole", f"agg-{tag}").get("rules") or []) ==
             [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}], 20, what="aggregation")
    out = k.ok("create", "clusterrolebinding", f"b-{tag}", f"--clusterrole=widgets-{tag}", "--user=alice",
               "--group=devs", "--serviceaccount=default:bob")
    assert out.strip() == f"clusterrolebinding.rbac.authorization.k8s.io/b-{tag} created"
    row = [line for line in k.ok("get", "clusterrolebindings", "-o", "wide").splitlines()
           if line.startswith(f"b-{tag} ")][0].split()
    assert row[1] == f"ClusterRole/widgets-{tag}" and row[3:] == ["alice", "devs", "default/bob"]
    out = k.ok("create", "serviceaccount", f"sa-{tag}")
    assert out.strip() == f"serviceaccount/sa-{tag} created"
    err = k.fails("create", "clusterrolebinding", f"bad-{tag}", "--clusterrole=view", f"--serviceaccount=x")
    assert err
    d = k.ok("describe", "clusterrolebinding", f"b-{tag}")
    assert "Role:" in d and f"widgets-{tag}" in d and "alice" in d
    k("delete", "clusterrole", f"widgets-{tag}", f"agg-{tag}")
    k("delete", "clusterrolebinding", f"b-{tag}")
    k("delete", "serviceaccount", f"sa-{tag}")
