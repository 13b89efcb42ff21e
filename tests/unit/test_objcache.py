"""The agent's ConfigMap/Secret cache (skiff.agent.objcache): fresh reads for new pods, one
shared GET per period for the volumes' refresh."""
from __future__ import annotations

import asyncio

import pytest

from skiff.agent.objcache import ObjectCache
from skiff.api.errors import APIError


class Client:
    def __init__(self, objects: dict, delay: float = 0.0):
        self.objects = objects
        self.delay = delay
        self.gets: list[tuple[str, str, str]] = []

    async def get(self, resource, name, namespace):
        self.gets.append((resource, namespace, name))
        await asyncio.sleep(self.delay)
        if name == "forbidden":
            raise APIError(403, "Forbidden", "no")
        obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise APIError(404, "NotFound", f'{resource} "{name}" not found')
        return obj


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.mark.asyncio
async def test_fresh_reads_always_go_to_the_server_and_refreshes_share_one_per_period():
    client = Client({("configmaps", "ns", "cfg"): {"data": {"a": "1"}}})
    clock = Clock()
    cache = ObjectCache(client, clock=clock)
    assert await cache.get("configmaps", "ns", "cfg") == {"data": {"a": "1"}}
    assert await cache.get("configmaps", "ns", "cfg") == {"data": {"a": "1"}}
    assert len(client.gets) == 2                       # max_age 0: a new pod reads it now
    client.objects[("configmaps", "ns", "cfg")] = {"data": {"a": "2"}}
    clock.t += 30
    # within the period: the read of 30 s ago serves every pod of the node
    for _ in range(5):
        assert await cache.get("configmaps", "ns", "cfg", max_age=60) == {"data": {"a": "1"}}
    assert len(client.gets) == 2
    clock.t += 31
    assert await cache.get("configmaps", "ns", "cfg", max_age=60) == {"data": {"a": "2"}}
    assert len(client.gets) == 3
    # a missing object is remembered as missing; another namespace is another object
    assert await cache.get("configmaps", "other", "cfg", max_age=60) is None
    assert await cache.get("configmaps", "other", "cfg", max_age=60) is None
    assert len(client.gets) == 4


@pytest.mark.asyncio
async def test_concurrent_stale_readers_wait_for_one_get_and_errors_are_not_kept():
    client = Client({("secrets", "ns", "s"): {"data": {}}}, delay=0.05)
    cache = ObjectCache(client)
    got = await asyncio.gather(*(cache.get("secrets", "ns", "s", max_age=60) for _ in range(20)))
    assert got == [{"data": {}}] * 20 and len(client.gets) == 1
    for _ in range(2):
        with pytest.raises(APIError) as e:
            await cache.get("secrets", "ns", "forbidden", max_age=60)
        assert e.value.code == 403
    assert len(client.gets) == 3                       # a refusal is asked again, not cached


@pytest.mark.asyncio
async def test_a_cancelled_reader_leaves_the_read_to_the_others():
    client = Client({("configmaps", "ns", "c"): {"data": {"k": "v"}}}, delay=0.1)
    cache = ObjectCache(client)
    first = asyncio.ensure_future(cache.get("configmaps", "ns", "c", max_age=60))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(cache.get("configmaps", "ns", "c", max_age=60))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == {"data": {"k": "v"}}
    assert len(client.gets) == 1


@pytest.mark.asyncio
async def test_old_entries_are_dropped():
    client = Client({("configmaps", "ns", f"c{i}"): {"i": i} for i in range(3)})
    clock = Clock()
    cache = ObjectCache(client, keep=600, clock=clock)
    for i in range(3):
        await cache.get("configmaps", "ns", f"c{i}", max_age=60)
    clock.t += 700
    await cache.get("configmaps", "ns", "c0", max_age=60)
    assert list(cache._entries) == [("configmaps", "ns", "c0")]
