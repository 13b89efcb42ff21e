"""The API server in process for unit tests: a real SQLite store and watch cache, the registry,
an admin token, and aiohttp's test client over a real socket (plain http)."""
from __future__ import annotations

from contextlib import asynccontextmanager

from aiohttp.test_utils import RawTestServer, TestClient

from skiff.controller.apiserver import APIServer
from skiff.controller.auth import TokenManager
from skiff.controller.registry import Registry
from skiff.controller.storage import SqliteStore, WatchCache


@asynccontextmanager
async def api_test_client(tmp_path, **registry_options):
    """-> (client, registry, admin token); everything is closed on the way out."""
    store = SqliteStore(str(tmp_path / "state.db"))
    cache = WatchCache(store)
    client = None
    try:
        await cache.start()
        reg = Registry(cache, **registry_options)
        await reg.ensure_namespaces()
        token = await TokenManager(cache).create_admin_token()
        api = APIServer(reg, TokenManager(cache))
        client = TestClient(RawTestServer(api.handle, request_factory=api.request_factory))
        await client.start_server()
        yield client, reg, token
    finally:
        if client is not None:
            await client.close()
            await api.close()
        await cache.close()
        await store.close()
