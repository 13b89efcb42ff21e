"""Label and field selectors: parsing, matching, Kubernetes' semantics, 400 errors."""
from __future__ import annotations

import pytest

from skiff.api.errors import APIError
from skiff.controller.selectors import parse_field_selector, parse_label_selector, parse_selectors


def obj(labels=None, **kw):
    o = {"metadata": {"name": kw.pop("name", "web"), "namespace": kw.pop("namespace", "default"),
                      "labels": labels or {}}}
    o.update(kw)
    return o


@pytest.mark.parametrize("sel,labels,want", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app=web", {}, False),
    ("app!=web", {"app": "db"}, True),
    ("app!=web", {}, True),                       # != selects objects without the label
    ("app!=web", {"app": "web"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier in (a,b)", {}, False),
    ("tier notin (a,b)", {"tier": "c"}, True),
    ("tier notin (a,b)", {}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("canary", {"canary": ""}, True),
    ("canary", {}, False),
    ("!canary", {}, True),
    ("!canary", {"canary": "x"}, False),
    ("app=web,tier in (a,b),!canary", {"app": "web", "tier": "a"}, True),
    ("app=web,tier in (a,b),!canary", {"app": "web", "tier": "a", "canary": "1"}, False),
    ("example.com/app=x", {"example.com/app": "x"}, True),
    ("", {"x": "y"}, True),
])
def test_label_matching(sel, labels, want):
    assert parse_label_selector(sel).matches(obj(labels)) is want


@pytest.mark.parametrize("bad", ["app=we b", "a b c", "tier in (a", "tier in ()", "=x", "app=-x-", ",",
                                 "bad key!=1"])
def test_label_errors_are_400(bad):
    with pytest.raises(APIError) as ei:
        parse_label_selector(bad)
    assert ei.value.code == 400 and ei.value.reason == "BadRequest"
    assert ei.value.status["kind"] == "Status"


def test_field_selectors_on_pods():
    p = obj(spec={"nodeName": "n1"}, status={"phase": "Running"})
    unscheduled = obj(name="p2", spec={}, status={"phase": "Pending"})
    assert parse_field_selector("spec.nodeName=n1", "pods").matches(p)
    assert not parse_field_selector("spec.nodeName=n1", "pods").matches(unscheduled)
    # a missing field is "": the scheduler's query for unscheduled pods
    assert parse_field_selector("spec.nodeName=", "pods").matches(unscheduled)
    assert not parse_field_selector("spec.nodeName=", "pods").matches(p)
    assert parse_field_selector("spec.nodeName==n1,status.phase!=Failed", "pods").matches(p)
    assert not parse_field_selector("spec.nodeName=n1,status.phase=Pending", "pods").matches(p)
    assert parse_field_selector("metadata.name=web,metadata.namespace=default", "pods").matches(p)
    assert parse_field_selector("metadata.name!=web", "pods").matches(unscheduled)
    s = parse_field_selector("status.phase!=Failed,spec.nodeName=n1", "pods")
    assert s.exact("spec.nodeName") == "n1" and s.exact("status.phase") is None


def test_field_selectors_on_events_and_escapes():
    ev = {"metadata": {"name": "e", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1",
                             "fieldPath": "spec.containers{a,b}"}, "reason": "Started", "type": "Normal"}
    assert parse_field_selector("involvedObject.kind=Pod,involvedObject.name=web", "events").matches(ev)
    assert parse_field_selector("involvedObject.uid=u1,involvedObject.namespace=default", "events").matches(ev)
    assert parse_field_selector(r"involvedObject.fieldPath=spec.containers{a\,b}", "events").matches(ev)
    assert not parse_field_selector("involvedObject.name=db", "events").matches(ev)


@pytest.mark.parametrize("bad,resource", [("spec.foo=1", "pods"), ("spec.nodeName", "pods"),
                                          ("involvedObject.kind=Pod", "pods"), ("spec.nodeName=n1", "nodes"),
                                          (r"metadata.name=a\x", "pods")])
def test_field_errors_are_400(bad, resource):
    with pytest.raises(APIError) as ei:
        parse_field_selector(bad, resource)
    assert ei.value.code == 400 and ei.value.reason == "BadRequest"


def test_unsupported_field_message():
    with pytest.raises(APIError) as ei:
        parse_field_selector("spec.foo=1", "pods")
    assert ei.value.message == "field label not supported: spec.foo"


def test_combined():
    s = parse_selectors("pods", "app=web", "spec.nodeName=n1")
    assert s.matches(obj({"app": "web"}, spec={"nodeName": "n1"}))
    assert not s.matches(obj({"app": "web"}, spec={"nodeName": "n2"}))
    assert not s.matches(obj({"app": "db"}, spec={"nodeName": "n1"}))
    assert parse_selectors("pods", None, None).empty()
