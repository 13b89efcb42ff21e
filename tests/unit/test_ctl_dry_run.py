"""skiffctl apply, create and delete with --dry-run=none|client|server, and apply/create of an
autoscaling/v1 HorizontalPodAutoscaler (sent to the version it is written in), over a fake client."""
from __future__ import annotations

import pytest

from skiff.cli.ctl import apply, create, delete, discovery
from skiff.cli.ctl.client import APIError, CtlError
from skiff.cli.ctl.flags import defaults, parse
from tests.unit.test_manifests import HPA_RS     # kubernetes/website controllers/hpa-rs.yaml

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: c
    image: nginx
"""


class Client:
    """Objects by path; records every request but the GETs as (method, path, params, body)."""

    def __init__(self, objs=None):
        self.objs = dict(objs or {})
        self.requests = []

    def request(self, method, path, params=None, body=None, content_type="application/json", **kw):
        if method == "GET":
            if path not in self.objs:
                raise APIError(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})
            return self.objs[path]
        self.requests.append((method, path, dict(params or {}), body))
        return body if method == "POST" else {}


class Ctx:
    namespace = "default"
    explicit_namespace = False

    def __init__(self, client):
        self._client = client

    def client(self):
        return self._client


@pytest.fixture(autouse=True)
def no_discovery(monkeypatch):
    monkeypatch.setattr(discovery, "CONTEXT", None)


def opts(mod, *argv):
    values, args = parse(list(argv), mod.FLAGS, defaults(mod.FLAGS), cmd=mod.__name__.rsplit(".", 1)[1])
    return values, args


def run(mod, client, *argv):
    values, args = opts(mod, *argv)
    return mod.run(Ctx(client), args, values)


PODS = "/api/v1/namespaces/default/pods"


def test_dry_run_needs_a_known_value():
    for mod in (apply, create, delete):
        with pytest.raises(CtlError, match=r"--dry-run flag without a value was specified"):
            run(mod, Client(), "--dry-run", "-f", "x.yaml")
        with pytest.raises(CtlError, match=r'Invalid dry-run value \(true\). Must be "none", "server", or "client"'):
            run(mod, Client(), "--dry-run=true", "-f", "x.yaml")


def test_apply_dry_run_server_sends_dry_run_all(tmp_path, capsys):
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    c = Client()
    assert run(apply, c, "--dry-run=server", "-f", str(f)) == 0
    assert capsys.readouterr().out == "pod/web created (server dry run)\n"
    ((method, path, params, body),) = c.requests
    assert (method, path, params) == ("POST", PODS, {"fieldManager": "kubectl-client-side-apply", "dryRun": "All"})
    # an object that is there: patched with dryRun=All
    live = {**body, "metadata": {**body["metadata"], "uid": "u"}}
    c = Client({PODS + "/web": live})
    f.write_text(POD.replace("image: nginx", "image: nginx:2"))
    with pytest.raises(CtlError, match="without a value"):       # as pflag: "server" is no value of it
        run(apply, c, "--dry-run", "server", "-f", str(f))
    assert run(apply, c, "--dry-run=server", "-f", str(f)) == 0
    assert capsys.readouterr().out == "pod/web configured (server dry run)\n"
    assert [(m, p, q["dryRun"]) for m, p, q, _ in c.requests] == [("PATCH", PODS + "/web", "All")]


def test_apply_dry_run_client_sends_nothing(tmp_path, capsys):
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    c = Client()
    assert run(apply, c, "--dry-run=client", "-f", str(f)) == 0
    assert capsys.readouterr().out == "pod/web created (dry run)\n" and c.requests == []
    assert run(apply, c, "--dry-run=none", "-f", str(f)) == 0
    assert capsys.readouterr().out == "pod/web created\n"
    ((_, _, params, body),) = c.requests
    assert "dryRun" not in params
    c = Client({PODS + "/web": body})
    assert run(apply, c, "--dry-run=client", "-f", str(f)) == 0
    assert capsys.readouterr().out == "pod/web unchanged (dry run)\n" and c.requests == []


def test_apply_autoscaling_v1_goes_to_the_v1_api(tmp_path, capsys):
    # kubernetes/website controllers/hpa-rs.yaml
    f = tmp_path / "hpa-rs.yaml"
    f.write_text(HPA_RS)
    c = Client()
    assert run(apply, c, "-f", str(f)) == 0
    assert capsys.readouterr().out == "horizontalpodautoscaler.autoscaling/frontend-scaler created\n"
    ((method, path, _, body),) = c.requests
    assert (method, path) == ("POST", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers")
    assert body["apiVersion"] == "autoscaling/v1" and body["spec"]["targetCPUUtilizationPercentage"] == 50
    c = Client({"/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/frontend-scaler": body})
    f.write_text(HPA_RS.replace("maxReplicas: 10", "maxReplicas: 12"))
    assert run(apply, c, "-f", str(f)) == 0
    assert capsys.readouterr().out == "horizontalpodautoscaler.autoscaling/frontend-scaler configured\n"
    ((method, path, _, patch),) = c.requests
    assert method == "PATCH" and path.startswith("/apis/autoscaling/v1/") and patch["spec"] == {"maxReplicas": 12}
    f.write_text(HPA_RS.replace("maxReplicas: 10", "maxReplicas: 2"))     # checked (as v2), not left to the server
    c = Client()
    assert run(apply, c, "-f", str(f)) == 1 and c.requests == []
    assert capsys.readouterr().err == (f"error: {f}: document 1: spec.maxReplicas: Invalid value: 2: "
                                       "must be greater than or equal to `minReplicas`\n")


def test_create_from_files(tmp_path, capsys):
    f = tmp_path / "all.yaml"
    f.write_text(POD + "---\n" + HPA_RS)
    c = Client()
    assert run(create, c, "-f", str(f), "--dry-run=server") == 0
    assert capsys.readouterr().out == ("pod/web created (server dry run)\n"
                                       "horizontalpodautoscaler.autoscaling/frontend-scaler created (server dry run)\n")
    assert [(m, p, q) for m, p, q, _ in c.requests] == [
        ("POST", PODS, {"fieldManager": "kubectl-create", "dryRun": "All"}),
        ("POST", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
         {"fieldManager": "kubectl-create", "dryRun": "All"})]
    assert "annotations" not in c.requests[0][3]["metadata"]        # create: no last-applied annotation
    c = Client()
    assert run(create, c, "-f", str(f), "--dry-run=client") == 0 and c.requests == []
    assert capsys.readouterr().out.splitlines()[0] == "pod/web created (dry run)"
    f.write_text(POD + "---\n" + POD.replace("image: nginx\n", ""))     # all or nothing
    assert run(create, c, "-f", str(f)) == 1 and c.requests == []
    assert capsys.readouterr().err == f"error: {f}: document 2: spec.containers[0].image: Required value\n"


def test_create_namespace_dry_run(capsys):
    c = Client()
    assert run(create, c, "namespace", "team-a", "--dry-run=client") == 0 and c.requests == []
    assert capsys.readouterr().out == "namespace/team-a created (dry run)\n"
    assert run(create, c, "namespace", "team-a", "--dry-run=server") == 0
    assert capsys.readouterr().out == "namespace/team-a created (server dry run)\n"
    assert c.requests[0][:3] == ("POST", "/api/v1/namespaces", {"fieldManager": "kubectl-create", "dryRun": "All"})


def test_delete_dry_run(tmp_path, capsys):
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    c = Client()
    assert run(delete, c, "-f", str(f), "--dry-run=server") == 0      # and no waiting for it to be gone
    assert capsys.readouterr().out == 'pod "web" deleted (server dry run)\n'
    ((method, path, params, body),) = c.requests
    assert (method, path, params, body["dryRun"]) == ("DELETE", PODS + "/web", {"dryRun": "All"}, ["All"])
    c = Client()
    assert run(delete, c, "pod", "web", "--dry-run=client") == 0 and c.requests == []
    assert capsys.readouterr().out == 'pod "web" deleted (dry run)\n'
