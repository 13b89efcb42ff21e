"""EventRecorder: Events written through a real HTTP client, repeats counted, never raising."""
from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
import pytest_asyncio

from skiff.api.client import HTTPClient
from skiff.api.errors import APIError
from skiff.api.validation import validate
from skiff.controller.events import EventRecorder
from tests.unit.k8s_wire_double import WireDouble


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "resourceVersion": "42"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n1", "resourceVersion": "7"}}


@pytest_asyncio.fixture
async def server():
    d = await WireDouble().start()
    yield d
    await d.stop()


@pytest_asyncio.fixture
async def client(server):
    c = HTTPClient(server.url, timeout=5)
    yield c
    await c.close()


def events(server):
    return [o for (p, _, _), o in server.objects.items() if p == "events"]


@pytest.mark.asyncio
async def test_record_writes_a_valid_event(server, client):
    rec = EventRecorder(client, "scheduler", host="h1")
    rec.record(POD, "Normal", "Scheduled", "Successfully assigned prod/web to n1")
    assert events(server) == []             # non-blocking: written by the background task
    await rec.flush(5)
    [ev] = events(server)
    assert re.fullmatch(r"web\.[0-9a-f]{16}", ev["metadata"]["name"])
    assert ev["metadata"]["namespace"] == "prod"
    assert ev["involvedObject"] == {"kind": "Pod", "namespace": "prod", "name": "web", "uid": "u-1",
                                    "apiVersion": "v1", "resourceVersion": "42"}
    assert ev["source"] == {"component": "scheduler", "host": "h1"}
    assert (ev["type"], ev["reason"], ev["message"], ev["count"]) == \
        ("Normal", "Scheduled", "Successfully assigned prod/web to n1", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev["firstTimestamp"])
    assert ev["firstTimestamp"] == ev["lastTimestamp"]
    assert server.requests[-1]["path"] == "/api/v1/namespaces/prod/events"
    body = json.loads(server.requests[-1]["body"])
    body["metadata"].pop("uid", None)
    validate(body)                          # passes skiff's strict schema
    await rec.close()


@pytest.mark.asyncio
async def test_repeat_patches_count(server, client):
    rec = EventRecorder(client, "agent")
    for _ in range(3):
        rec.record(POD, "Warning", "BackOff", "Back-off restarting failed container")
    await rec.flush(5)
    [ev] = events(server)
    assert ev["count"] == 3
    patches = [r for r in server.requests if r["method"] == "PATCH"]
    assert len(patches) == 2
    assert patches[-1]["content_type"] == "application/merge-patch+json"
    assert set(json.loads(patches[-1]["body"])) == {"count", "lastTimestamp"}
    assert patches[-1]["path"] == f"/api/v1/namespaces/prod/events/{ev['metadata']['name']}"
    # a different message, reason or type is a new Event
    rec.record(POD, "Warning", "BackOff", "another message")
    rec.record(POD, "Normal", "BackOff", "Back-off restarting failed container")
    await rec.flush(5)
    assert len(events(server)) == 3
    await rec.close()


@pytest.mark.asyncio
async def test_repeat_after_window_creates_new_event(server, client):
    rec = EventRecorder(client, "agent", repeat_window=0.0)
    rec.record(POD, "Normal", "Pulled", "pulled")
    rec.record(POD, "Normal", "Pulled", "pulled")
    await rec.flush(5)
    assert len(events(server)) == 2
    await rec.close()


@pytest.mark.asyncio
async def test_repeat_of_deleted_event_creates_new(server, client):
    rec = EventRecorder(client, "agent")
    rec.record(POD, "Normal", "Started", "started")
    await rec.flush(5)
    [ev] = events(server)
    server.remove("events", ev["metadata"]["name"], "prod")
    rec.record(POD, "Normal", "Started", "started")
    await rec.flush(5)
    [ev2] = events(server)
    assert ev2["metadata"]["name"] != ev["metadata"]["name"] and ev2["count"] == 1
    await rec.close()


@pytest.mark.asyncio
async def test_cluster_scoped_object_goes_to_default(server, client):
    rec = EventRecorder(client, "nodelifecycle")
    rec.record(NODE, "Normal", "NodeReady", "Node n1 status is now: NodeReady")
    await rec.flush(5)
    [ev] = events(server)
    assert ev["metadata"]["namespace"] == "default"
    assert "namespace" not in ev["involvedObject"]
    assert ev["involvedObject"]["kind"] == "Node" and ev["involvedObject"]["name"] == "n1"
    assert ev["source"] == {"component": "nodelifecycle"}
    await rec.close()


class FailingClient:
    def __init__(self):
        self.calls = 0

    async def create(self, *a, **kw):
        self.calls += 1
        raise APIError({"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"})

    async def patch(self, *a, **kw):
        raise ConnectionError("down")


@pytest.mark.asyncio
async def test_never_raises_into_the_caller(caplog):
    fc = FailingClient()
    rec = EventRecorder(fc, "agent")
    rec.record(POD, "Normal", "X", "y")
    rec.record({"weird": True}, "Normal", "X", "y")       # malformed object: still no exception
    await rec.flush(5)
    assert fc.calls == 2 and rec.failed == 2
    await rec.close()


def test_record_outside_event_loop_does_not_raise():
    rec = EventRecorder(FailingClient(), "cli")
    rec.record(POD, "Normal", "X", "y")
    assert rec.dropped == 1


@pytest.mark.asyncio
async def test_log_line_per_record(server, client, caplog):
    caplog.set_level(logging.INFO, logger="skiff.events")
    rec = EventRecorder(client, "scheduler")
    rec.record(POD, "Warning", "FailedScheduling", "0/3 nodes are available")
    recs = [r for r in caplog.records if r.name == "skiff.events"]
    assert len(recs) == 1
    r = recs[0]
    assert r.levelno == logging.WARNING and r.getMessage() == "0/3 nodes are available"
    assert r.fields == {"kind": "Pod", "namespace": "prod", "name": "web", "type": "Warning",
                        "reason": "FailedScheduling", "source": "scheduler"}
    await rec.close()


@pytest.mark.asyncio
async def test_queue_full_drops(server, client):
    rec = EventRecorder(client, "x", queue_size=2)
    for i in range(5):
        rec.record(POD, "Normal", "R", f"m{i}")
    assert rec.dropped == 3
    await rec.flush(5)
    assert len(events(server)) == 2
    await rec.close()
