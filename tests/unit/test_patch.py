"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902)."""
from __future__ import annotations

import copy

import pytest

from skiff.controller.patch import PatchError, json_patch, merge_patch


# RFC 7386 appendix A
@pytest.mark.parametrize("target,patch,want", [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386(target, patch, want):
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == want
    assert target == before  # not modified


def test_merge_patch_labels():
    pod = {"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}
    out = merge_patch(pod, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert out == {"metadata": {"name": "web", "labels": {"b": "2", "c": "3"}}, "spec": {"x": 1}}
    assert pod["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_json_patch_ops():
    doc = {"foo": "bar", "arr": [1, 2, 3], "m": {"a/b": 1, "c~d": 2}}
    out = json_patch(doc, [
        {"op": "add", "path": "/baz", "value": "qux"},
        {"op": "add", "path": "/arr/1", "value": 9},
        {"op": "add", "path": "/arr/-", "value": 10},
        {"op": "remove", "path": "/arr/0"},
        {"op": "replace", "path": "/foo", "value": {"x": 1}},
        {"op": "test", "path": "/m/a~1b", "value": 1},
        {"op": "test", "path": "/m/c~0d", "value": 2},
        {"op": "move", "from": "/m/a~1b", "path": "/moved"},
        {"op": "copy", "from": "/foo", "path": "/copied"},
    ])
    assert out == {"foo": {"x": 1}, "arr": [9, 2, 3, 10], "m": {"c~d": 2}, "baz": "qux", "moved": 1,
                   "copied": {"x": 1}}
    assert doc == {"foo": "bar", "arr": [1, 2, 3], "m": {"a/b": 1, "c~d": 2}}  # copy by default
    out["copied"]["x"] = 2
    assert out["foo"] == {"x": 1}  # copy makes an independent value


def test_json_patch_is_atomic_and_test_fails():
    doc = {"a": 1, "b": [1]}
    with pytest.raises(PatchError) as ei:
        json_patch(doc, [{"op": "replace", "path": "/a", "value": 2},
                         {"op": "test", "path": "/a", "value": 1}])
    assert not ei.value.malformed
    assert doc == {"a": 1, "b": [1]}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/a", "value": True}])  # 1 is not true


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/nope"}],
    [{"op": "replace", "path": "/nope", "value": 1}],
    [{"op": "add", "path": "/x/y", "value": 1}],
    [{"op": "add", "path": "/b/5", "value": 1}],
    [{"op": "remove", "path": "/b/01"}],
    [{"op": "move", "from": "/b", "path": "/b/0"}],
    [{"op": "copy", "from": "/nope", "path": "/x"}],
])
def test_json_patch_apply_errors(ops):
    with pytest.raises(PatchError) as ei:
        json_patch({"a": 1, "b": [1]}, ops)
    assert not ei.value.malformed


@pytest.mark.parametrize("ops", [{"op": "add"}, [{"op": "frob", "path": "/a"}], [{"op": "add", "path": "/a"}],
                                 [{"op": "move", "path": "/a"}], [{"path": "/a"}], [{"op": "add", "path": "a", "value": 1}]])
def test_json_patch_malformed(ops):
    with pytest.raises(PatchError) as ei:
        json_patch({"a": 1}, ops)
    assert ei.value.malformed


def test_json_patch_in_place_and_root():
    doc = {"a": 1}
    out = json_patch(doc, [{"op": "add", "path": "/b", "value": 2}], copy=False)
    assert out is doc and doc == {"a": 1, "b": 2}
    assert json_patch(doc, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_strategic_merge_patch_lists_by_key():
    from skiff.controller.patch import strategic_merge_patch
    pod = {"metadata": {"name": "web", "finalizers": ["a"]},
           "spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]},
                                   {"name": "b", "image": "y"}],
                    "tolerations": [{"key": "k"}]},
           "status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "PodScheduled", "status": "True"}]}}
    before = copy.deepcopy(pod)
    out = strategic_merge_patch(pod, {
        "metadata": {"finalizers": ["b"]},
        "spec": {"containers": [{"name": "b", "image": "y2"}, {"name": "c", "image": "z"}],
                 "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
                 "tolerations": [{"key": "j"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]
    assert out["spec"]["containers"][2] == {"name": "b", "image": "y2"}
    assert out["spec"]["containers"][1]["ports"] == [{"containerPort": 80}]
    assert out["spec"]["tolerations"] == [{"key": "j"}]  # no merge key: replaced
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "PodScheduled", "status": "True"}]
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert pod == before
    out = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]},
                                      "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["b"] and out["metadata"]["finalizers"] == []
    out = strategic_merge_patch(pod, {"status": {"$patch": "replace", "phase": "Running"}})
    assert out["status"] == {"phase": "Running"}
    with pytest.raises(PatchError):
        strategic_merge_patch(pod, {"spec": {"containers": [{"image": "nameless"}]}})
