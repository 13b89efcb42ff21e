"""skiffctl apply's patch computation: three-way merge with the last-applied annotation."""
import copy
import json

from skiff.cli.ctl.apply import LAST_APPLIED, compute_patch, last_applied_json, three_way_patch, with_last_applied


def manifest(**labels):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def live_of(applied: dict) -> dict:
    """What the server returns after creating ``applied``: the annotation, defaults, status."""
    o = with_last_applied(applied)
    o["metadata"].update({"uid": "u1", "resourceVersion": "5", "creationTimestamp": "2026-11-28T10:00:00Z"})
    o["spec"]["restartPolicy"] = "Always"
    o["spec"]["terminationGracePeriodSeconds"] = 30
    for c in o["spec"]["containers"]:
        c.setdefault("imagePullPolicy", "IfNotPresent")
    o["status"] = {"phase": "Pending"}
    return o


def test_annotation_format_is_kubectls():
    m = manifest()
    s = last_applied_json(m)
    assert s.endswith("\n")
    assert s.startswith('{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{},"labels":{"app":"web"},'
                        '"name":"web","namespace":"default"},"spec":')
    assert json.loads(s) == {**m, "metadata": {**m["metadata"], "annotations": {}}}
    assert "<" not in last_applied_json({"metadata": {"labels": {"a": "<b>&"}}})
    # the annotation does not contain itself
    w = with_last_applied(with_last_applied(m))
    assert LAST_APPLIED not in json.loads(w["metadata"]["annotations"][LAST_APPLIED])["metadata"]["annotations"]


def test_unchanged_despite_server_defaults():
    m = manifest()
    assert compute_patch(m, live_of(m)) == {}


def test_label_added_changed_removed():
    old = manifest(app="web", tier="frontend")
    live = live_of(old)
    new = manifest(app="web2")
    p = compute_patch(new, live)
    assert p["metadata"]["labels"] == {"app": "web2", "tier": None}
    assert json.loads(p["metadata"]["annotations"][LAST_APPLIED]) == json.loads(last_applied_json(new))
    assert "spec" not in p and "status" not in p


def test_removed_field_gets_null_only_when_it_was_applied():
    old = manifest()
    old["spec"]["nodeSelector"] = {"disk": "ssd"}
    live = live_of(old)
    new = manifest()
    p = compute_patch(new, live)
    assert p["spec"] == {"nodeSelector": None}
    # fields set by the server (restartPolicy default) are never deleted
    assert "restartPolicy" not in p["spec"]


def test_list_change_replaces_the_list():
    old = manifest()
    live = live_of(old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.36"
    p = compute_patch(new, live)
    assert p["spec"] == {"containers": new["spec"]["containers"]}


def test_list_field_removed_inside_element_is_detected():
    old = manifest()
    old["spec"]["containers"][0]["workingDir"] = "/tmp"
    live = live_of(old)
    new = manifest()
    p = compute_patch(new, live)
    assert p["spec"]["containers"] == new["spec"]["containers"]


def test_live_drift_in_list_is_repaired():
    m = manifest()
    live = live_of(m)
    live["spec"]["containers"][0]["image"] = "other"      # someone else changed it
    p = compute_patch(m, live)
    assert p["spec"]["containers"][0]["image"] == "busybox"


def test_missing_annotation_patches_it_in():
    m = manifest()
    live = live_of(m)
    del live["metadata"]["annotations"][LAST_APPLIED]
    p = compute_patch(m, live)
    assert set(p) == {"metadata"} and set(p["metadata"]) == {"annotations"}


def test_three_way_scalars_and_nested():
    assert three_way_patch({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2, "c": 3}) == {"b": None}
    assert three_way_patch({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "c": 3}) == {}
    assert three_way_patch(None, {"x": {"y": 1}}, {"x": {"y": 2, "z": 3}}) == {"x": {"y": 1}}
    assert three_way_patch({}, {"x": {"y": 1}}, {}) == {"x": {"y": 1}}
    assert three_way_patch({"l": [1, 2]}, {"l": [1, 2]}, {"l": [1, 2]}) == {}
    assert three_way_patch({"l": [1, 2]}, {"l": [1]}, {"l": [1, 2]}) == {"l": [1]}


def test_apply_keeps_what_the_server_added_to_lists_as_strategic_merge_does():
    """The admission's kube-api-access volume and its mounts are no part of the user's manifest:
    re-applying it (a label changed, or an image) must not send lists without them (a pod's
    volumes may not change: kube-apiserver refuses), as kubectl's strategic merge keeps them."""
    import copy
    tok = {"name": "kube-api-access-x2b4c", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
           "readOnly": True}
    orig = {"metadata": {"labels": {"a": "1"}}, "spec": {
        "containers": [{"name": "c", "image": "b:1", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/c"}]},
                       {"name": "d", "image": "x"}],
        "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"name": "old", "emptyDir": {}}]}}
    live = copy.deepcopy(orig)
    live["spec"]["containers"][0]["volumeMounts"].append(tok)
    live["spec"]["containers"][1]["volumeMounts"] = [tok]
    live["spec"]["volumes"].append({"name": "kube-api-access-x2b4c", "projected": {"sources": []}})
    mod = copy.deepcopy(orig)
    mod["metadata"]["labels"]["a"] = "2"
    assert three_way_patch(orig, mod, live) == {"metadata": {"labels": {"a": "2"}}}
    mod["spec"]["containers"][0]["image"] = "b:2"
    mod["spec"]["volumes"].pop()       # the user's own volume goes; the server's stays
    assert three_way_patch(orig, mod, live)["spec"] == {
        "containers": [{"name": "c", "image": "b:2", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/c"}, tok]},
                       {"name": "d", "image": "x", "volumeMounts": [tok]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "x"}},
                    {"name": "kube-api-access-x2b4c", "projected": {"sources": []}}]}
