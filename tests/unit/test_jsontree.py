"""json_copy and Sharer (hash-consing for read-only caches)."""
from __future__ import annotations

import copy
import json

from skiff.api.jsontree import Sharer, json_copy


def pod(i: int, node: str = "n1") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "uid": f"u{i}", "labels": {"app": "web"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "r1", "controller": True}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}],
                     "tolerations": [{"key": "t", "operator": "Exists", "tolerationSeconds": 300}]},
            "status": {"phase": "Running", "podIP": f"10.0.0.{i}",
                       "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}]}}


def test_json_copy_is_deep_and_equal():
    a = pod(1)
    b = json_copy(a)
    assert b == a and b is not a
    b["spec"]["containers"][0]["image"] = "x"
    assert a["spec"]["containers"][0]["image"] == "busybox"


def test_sharer_shares_equal_subtrees_and_keeps_values():
    s = Sharer()
    pods = [s.share(json.loads(json.dumps(pod(i)))) for i in range(3)]
    assert pods == [pod(i) for i in range(3)]
    assert pods[0]["spec"]["containers"] is pods[1]["spec"]["containers"] is pods[2]["spec"]["containers"]
    assert pods[0]["metadata"]["ownerReferences"] is pods[2]["metadata"]["ownerReferences"]
    assert pods[0]["status"]["conditions"] is pods[1]["status"]["conditions"]
    # keys are one string for all (json.loads made new ones per document)
    assert [k for k in pods[0]["metadata"]][0] is [k for k in pods[2]["metadata"]][0]
    # each object keeps its own top level and first-level maps
    assert pods[0]["metadata"] is not pods[1]["metadata"]
    assert pods[0]["spec"] is not pods[1]["spec"] and pods[0]["status"] is not pods[1]["status"]


def test_sharer_tells_scalars_of_equal_value_apart():
    s = Sharer()
    a = s.share({"spec": {"x": [1], "y": {"v": 1.0}, "z": {"v": 0}}})
    b = s.share({"spec": {"x": [True], "y": {"v": 1}, "z": {"v": False}}})
    assert type(b["spec"]["x"][0]) is bool and b["spec"]["x"] is not a["spec"]["x"]
    assert type(b["spec"]["y"]["v"]) is int and type(b["spec"]["z"]["v"]) is bool
    c = s.share({"spec": {"x": [{"a": 1}], "w": [{"a": 1}]}})
    assert c["spec"]["x"] is c["spec"]["w"]


def test_sharer_table_is_bounded_and_still_correct():
    s = Sharer(capacity=16)
    objs = [s.share({"spec": {"list": [{"n": i}], "same": {"k": "v"}}}) for i in range(100)]
    assert len(s._memo) <= 16
    assert [o["spec"]["list"][0]["n"] for o in objs] == list(range(100))
    assert all(o["spec"]["same"] == {"k": "v"} for o in objs)


def test_sharer_leaves_non_objects_alone():
    s = Sharer()
    assert s.share([1, 2]) == [1, 2]
    orig = {"metadata": {"name": "x"}, "spec": {"a": {"b": [1, {"c": None}]}}}
    assert s.share(copy.deepcopy(orig)) == orig
