"""Redis clients for tests, each test under its own key prefix (a ``redis_prefix`` fixture
that the test package defines), so suites can share one Redis database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from tests.servicecheck import require_redis


async def _purge(client: Redis, prefix: str) -> None:
    # Only this test's keys: the database may be shared with other suites.
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_factory(redis_prefix: str) -> AsyncIterator[Callable[[], Redis]]:
    """Makes independent clients (separate pools, like separate replicas) on the test DB."""
    url = require_redis()
    clients: list[Redis] = []

    def make() -> Redis:
        client = Redis.from_url(url)
        clients.append(client)
        return client

    yield make
    if clients:
        await _purge(clients[0], redis_prefix)
    for client in clients:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_factory: Callable[[], Redis]) -> Redis:
    return redis_factory()
