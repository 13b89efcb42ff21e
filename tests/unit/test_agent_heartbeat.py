"""The agent's heartbeats (its Lease, and its node status when the node is not Ready) go through
its heartbeat client when it has one, as the kubelet's do: a queue of pod requests on the main
client must not let the node's lease lapse."""
from __future__ import annotations

import asyncio

import pytest

from skiff.agent.agent import Agent, AgentConfig
from skiff.api.errors import APIError

pytestmark = pytest.mark.asyncio


class Recorder:
    """A client that records its calls; the Node it returns is Ready or not."""

    def __init__(self, ready: str = "True"):
        self.calls: list[tuple] = []
        self.ready = ready
        self.leases: set[str] = set()

    async def create(self, resource, body, namespace=None):
        self.calls.append(("create", resource))
        name = body["metadata"]["name"]
        if resource == "leases" and name in self.leases:
            raise APIError(409, "AlreadyExists", "exists")
        self.leases.add(name)
        return body

    async def get(self, resource, name, namespace=None, subresource=None):
        self.calls.append(("get", resource))
        if resource == "nodes":
            return {"metadata": {"name": name}, "spec": {},
                    "status": {"conditions": [{"type": "Ready", "status": self.ready}]}}
        return {"metadata": {"name": name}}

    async def patch(self, resource, name, patch, namespace=None, subresource=None, **kw):
        self.calls.append(("patch", resource + (f"/{subresource}" if subresource else "")))
        return {"metadata": {"name": name}, **patch}

    async def close(self):
        self.calls.append(("close", ""))


class _LogServer:
    port = 10250


async def _beat(agent: Agent, client: Recorder) -> None:
    task = asyncio.create_task(agent._lease_loop())
    try:
        for _ in range(200):
            if ("patch", "leases") in client.calls and ("get", "nodes") in client.calls:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _agent(**kw) -> Agent:
    a = Agent(AgentConfig(server="https://127.0.0.1:6443", node_name="n1", node_ip="127.0.0.1",
                          lease_duration=1, runtime="fake"), **kw)
    a.log_server = _LogServer()
    return a


async def test_lease_and_node_status_use_the_heartbeat_client():
    main, hb = Recorder(), Recorder(ready="False")
    agent = _agent(client=main, heartbeat_client=hb)
    await _beat(agent, hb)
    assert ("create", "leases") in hb.calls and ("patch", "leases") in hb.calls
    assert ("get", "nodes") in hb.calls
    assert ("patch", "nodes/status") in hb.calls      # not Ready: the agent says Ready again
    assert main.calls == []
    await agent.stop()
    assert ("close", "") in main.calls and ("close", "") in hb.calls


async def test_without_a_heartbeat_client_the_main_client_beats():
    main = Recorder()
    agent = _agent(client=main)
    await _beat(agent, main)
    assert ("patch", "leases") in main.calls
    assert ("patch", "nodes/status") not in main.calls    # Ready already: no status write
