"""Manifest loading for skiffctl apply -f (skiff.api.manifests)."""
import io
import json
import textwrap

import pytest

from skiff.api.manifests import Document, ManifestError, load_manifests, parse_manifests, validate_all

NGINX = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata:
      name: nginx
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
    """)


def pod_yaml(name, image="busybox", extra=""):
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
        spec:
          containers:
          - name: main
            image: {image}
            command: ["sleep", "3600"]
            resources:
              requests: {{cpu: 100m, memory: 32Mi}}
        """) + extra


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_single_file(tmp_path):
    f = write(tmp_path, "nginx.yaml", NGINX)
    (d,) = load_manifests([f])
    assert isinstance(d, Document)
    assert (d.source, d.index, d.item) == (f, 1, None)
    assert d.obj["metadata"]["name"] == "nginx" and d.warnings == []


def test_multi_document_yaml_skips_empty_documents(tmp_path):
    text = "---\n" + pod_yaml("a") + "---\n# just a comment\n---\n" + pod_yaml("b") + "...\n---\n" + pod_yaml("c")
    docs = load_manifests([write(tmp_path, "pods.yaml", text)])
    assert [d.obj["metadata"]["name"] for d in docs] == ["a", "b", "c"]
    assert [d.index for d in docs] == [1, 3, 4]


def test_one_bad_document_reports_file_index_and_path_and_returns_nothing(tmp_path):
    bad = pod_yaml("b").replace("    image: busybox\n", "")
    f = write(tmp_path, "pods.yaml", pod_yaml("a") + "---\n" + bad + "---\n" + pod_yaml("c"))
    with pytest.raises(ManifestError) as ei:
        load_manifests([f])
    assert ei.value.problems == [f"{f}: document 2: spec.containers[0].image: Required value"]
    assert str(ei.value) == f"{f}: document 2: spec.containers[0].image: Required value"


def test_relative_path_is_reported_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "pods.yaml", pod_yaml("a") + "---\n" + pod_yaml("b").replace("image: busybox", "image: busybox\n    imagePolicy: x"))
    with pytest.raises(ManifestError) as ei:
        load_manifests(["pods.yaml"])
    assert str(ei.value) == 'pods.yaml: document 2: spec.containers[0].imagePolicy: unknown field "spec.containers[0].imagePolicy"'


def test_every_problem_of_every_file_is_listed_one_per_line(tmp_path):
    f1 = write(tmp_path, "a.yaml", pod_yaml("Bad_Name"))
    f2 = write(tmp_path, "b.yaml", pod_yaml("ok") + "---\n" + pod_yaml("x", extra="  restartPolicy: Sometimes\n  bogus: 1\n"))
    with pytest.raises(ManifestError) as ei:
        load_manifests([f1, f2])
    lines = str(ei.value).splitlines()
    assert lines[0].startswith(f"{f1}: document 1: metadata.name: Invalid value: \"Bad_Name\"")
    assert f'{f2}: document 2: spec.bogus: unknown field "spec.bogus"' in lines
    assert any(line.startswith(f"{f2}: document 2: spec.restartPolicy: Unsupported value: \"Sometimes\"") for line in lines)
    assert len(lines) == 3


def test_unsupported_fields_in_manifests(tmp_path):
    f = write(tmp_path, "p.yaml", pod_yaml("a", extra="  runtimeClassName: gvisor\n") + "---\n"
              + pod_yaml("b", extra="  volumes:\n  - name: data\n    nfs: {server: s, path: /}\n"))
    with pytest.raises(ManifestError) as ei:
        load_manifests([f])
    assert str(ei.value) == (f"{f}: document 2: spec.volumes[0].nfs: spec.volumes[0].nfs "
                             "is not supported by skiff (volume types: emptyDir, hostPath, configMap, secret, downwardAPI, "
                             "projected, persistentVolumeClaim)")
    (d,) = load_manifests([write(tmp_path, "w.yaml", pod_yaml("a", extra="  runtimeClassName: gvisor\n"))])
    assert d.warnings == ["spec.runtimeClassName is accepted but not supported by skiff"]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    f = write(tmp_path, "broken.yaml", pod_yaml("a") + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(ManifestError) as ei:
        load_manifests([f])
    (line,) = ei.value.problems
    assert line.startswith(f"{f}: line ") and "YAML syntax error" in line
    assert int(line.split("line ")[1].split(",")[0]) >= 17


def test_duplicate_keys_are_an_error(tmp_path):
    f = write(tmp_path, "dup.yaml", pod_yaml("a").replace("kind: Pod\n", "kind: Pod\nkind: Pod\n"))
    with pytest.raises(ManifestError, match=r"dup.yaml: line 3.*duplicate key 'kind'"):
        load_manifests([f])


def test_directory_loading_order_and_filter(tmp_path):
    d = tmp_path / "specs"
    d.mkdir()
    write(d, "20-b.yml", pod_yaml("b"))
    write(d, "10-a.yaml", pod_yaml("a"))
    write(d, "30-c.json", json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "c"}}))
    write(d, "README.md", "not a manifest")
    write(d, "notes.txt", "nope: [")
    (d / "sub.yaml").mkdir()
    docs = load_manifests([str(d)])
    assert [x.obj["metadata"]["name"] for x in docs] == ["a", "b", "c"]
    assert [x.source for x in docs] == [str(d / "10-a.yaml"), str(d / "20-b.yml"), str(d / "30-c.json")]


def test_files_and_directories_keep_argument_order(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    write(d, "x.yaml", pod_yaml("x"))
    f = write(tmp_path, "first.yaml", pod_yaml("first"))
    assert [x.obj["metadata"]["name"] for x in load_manifests([f, str(d)])] == ["first", "x"]
    assert [x.obj["metadata"]["name"] for x in load_manifests([str(d), f])] == ["x", "first"]


def test_list_kind_is_expanded(tmp_path):
    lst = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}]}
    f = write(tmp_path, "list.json", json.dumps(lst))
    docs = load_manifests([f])
    assert [(x.index, x.item, x.obj["kind"]) for x in docs] == [(1, 0, "Namespace"), (1, 1, "Pod")]
    lst["kind"] = "PodList"
    lst["items"][1]["spec"]["containers"][0]["name"] = "Web"
    f = write(tmp_path, "podlist.yaml", pod_yaml("a") + "---\n" + json.dumps(lst))
    with pytest.raises(ManifestError) as ei:
        load_manifests([f])
    assert str(ei.value).startswith(f"{f}: document 2: items[1].spec.containers[0].name: Invalid value: \"Web\"")


def test_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(NGINX + "---\n" + pod_yaml("b")))
    docs = load_manifests(["-"])
    assert [(d.source, d.index) for d in docs] == [("<stdin>", 1), ("<stdin>", 2)]


def test_missing_paths_and_non_mapping_documents(tmp_path):
    with pytest.raises(ManifestError) as ei:
        load_manifests([str(tmp_path / "nope.yaml"), str(tmp_path)])
    assert len(ei.value.problems) == 2
    assert "no such file or directory" in ei.value.problems[0]
    f = write(tmp_path, "scalar.yaml", "just a string\n---\n" + pod_yaml("a"))
    with pytest.raises(ManifestError) as ei:
        load_manifests([f])
    assert ei.value.problems == [f"{f}: document 1: Invalid value: a manifest must be a mapping, not str"]


def test_unknown_kind_is_an_error(tmp_path):
    f = write(tmp_path, "dep.yaml", "apiVersion: apps/v1\nkind: Widget\nmetadata: {name: web}\nspec: {}\n")
    with pytest.raises(ManifestError, match=r"dep.yaml: document 1: kind: Unsupported value: no kind \"Widget\""):
        load_manifests([f])


def test_timestamps_stay_strings(tmp_path):
    f = write(tmp_path, "p.yaml", NGINX.replace("  name: nginx\n", "  name: nginx\n  creationTimestamp: 2024-01-02T03:04:05Z\n"))
    (d,) = load_manifests([f])
    assert d.obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"


def test_parse_then_validate_separately(tmp_path):
    f = write(tmp_path, "p.yaml", NGINX)
    docs = parse_manifests([f])
    assert validate_all(docs) is docs


# ---------------------------------------------------------------- checked as the server checks them
# The kubernetes/website examples below are accepted by the API server (which defaults and
# converts before it validates); the client's check must not refuse them.

HPA_RS = textwrap.dedent("""\
    apiVersion: autoscaling/v1
    kind: HorizontalPodAutoscaler
    metadata:
      name: frontend-scaler
    spec:
      scaleTargetRef:
        kind: ReplicaSet
        name: frontend
      minReplicas: 3
      maxReplicas: 10
      targetCPUUtilizationPercentage: 50
    """)

RC_NGINX = textwrap.dedent("""\
    apiVersion: v1
    kind: ReplicationController
    metadata:
      name: my-nginx
    spec:
      replicas: 5
      template:
        metadata:
          labels:
            app: nginx
        spec:
          containers:
          - name: nginx
            image: nginx:1.14.2
            ports:
            - containerPort: 80
    """)

BASICAUTH_SECRET = textwrap.dedent("""\
    apiVersion: v1
    kind: Secret
    metadata:
      name: secret-basic-auth
    type: kubernetes.io/basic-auth
    stringData:
      username: admin # required field for kubernetes.io/basic-auth
      password: t0p-Secret # required field for kubernetes.io/basic-auth
    """)


def test_autoscaling_v1_hpa_is_checked_in_the_version_the_server_stores(tmp_path):
    f = write(tmp_path, "hpa-rs.yaml", HPA_RS)
    (d,) = load_manifests([f])
    assert d.obj["apiVersion"] == "autoscaling/v1" and d.obj["spec"]["targetCPUUtilizationPercentage"] == 50
    bad = HPA_RS.replace("  maxReplicas: 10\n", "  maxReplicas: 2\n").replace("targetCPUUtilization", "targetCPU")
    with pytest.raises(ManifestError) as ei:
        load_manifests([write(tmp_path, "bad.yaml", bad)])
    assert ei.value.problems == [f'{tmp_path}/bad.yaml: document 1: strict decoding error: '
                                 'unknown field "spec.targetCPUPercentage"']
    with pytest.raises(ManifestError) as ei:
        load_manifests([write(tmp_path, "bad.yaml", HPA_RS.replace("  maxReplicas: 10\n", "  maxReplicas: 2\n"))])
    assert ei.value.problems == [f"{tmp_path}/bad.yaml: document 1: spec.maxReplicas: Invalid value: 2: "
                                 "must be greater than or equal to `minReplicas`"]


def test_replication_controller_selector_defaults_to_the_template_labels(tmp_path):
    (d,) = load_manifests([write(tmp_path, "rc.yaml", RC_NGINX)])
    assert "selector" not in d.obj["spec"]                 # sent as written: the server defaults it
    no_labels = RC_NGINX.replace("    metadata:\n      labels:\n        app: nginx\n", "")
    with pytest.raises(ManifestError) as ei:
        load_manifests([write(tmp_path, "rc.yaml", no_labels)])
    assert f"{tmp_path}/rc.yaml: document 1: spec.selector: Required value" in ei.value.problems
    other = RC_NGINX.replace("  replicas: 5\n", "  replicas: 5\n  selector:\n    app: web\n")
    with pytest.raises(ManifestError, match=r"rc.yaml: document 1: spec.template.metadata.labels: Invalid value"):
        load_manifests([write(tmp_path, "rc.yaml", other)])


def test_typed_secrets_written_with_string_data(tmp_path):
    (d,) = load_manifests([write(tmp_path, "basicauth-secret.yaml", BASICAUTH_SECRET)])
    assert d.obj["stringData"] == {"username": "admin", "password": "t0p-Secret"} and "data" not in d.obj
    typed = {"kubernetes.io/ssh-auth": {"ssh-privatekey": "KEY"},
             "kubernetes.io/tls": {"tls.crt": "CERT", "tls.key": "KEY"},
             "kubernetes.io/dockerconfigjson": {".dockerconfigjson": '{"auths": {}}'}}
    for typ, sd in typed.items():
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": typ, "stringData": sd}
        load_manifests([write(tmp_path, "s.json", json.dumps(obj))])
        half = {**obj, "stringData": dict(list(sd.items())[1:])}         # a required key left out
        with pytest.raises(ManifestError, match=r"s.json: document 1: data\[.*\]: Required value"):
            load_manifests([write(tmp_path, "s.json", json.dumps(half))])
    with pytest.raises(ManifestError, match=r"document 1: data\[username\]: Required value"):
        load_manifests([write(tmp_path, "s.yaml", BASICAUTH_SECRET.split("stringData:")[0])])


def test_server_set_metadata_and_nulls(tmp_path):
    # what `get -o yaml` prints: the server's own metadata is no reason to refuse a manifest
    # (a Job's uid would make its selector checked as generated from that uid)
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "pi", "uid": "u1", "resourceVersion": "7", "creationTimestamp": None,
                        "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "pi", "image": "perl", "resources": None}]}}}}
    (d,) = load_manifests([write(tmp_path, "job.json", json.dumps(job))])
    assert d.obj["metadata"]["uid"] == "u1"
    assert "resources" not in d.obj["spec"]["template"]["spec"]["containers"][0]   # null: unset, as before
