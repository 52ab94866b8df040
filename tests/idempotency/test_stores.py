"""Both idempotency stores: claim, replay, mismatch, races, leases and expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from llama_mapper.idempotency import (
    Begin,
    IdempotencyStore,
    IdempotencyUnavailable,
    MemoryIdempotencyStore,
    Outcome,
    RedisIdempotencyStore,
    StoredResponse,
    fingerprint,
    scope_key,
)

TTL = 3600
FP = fingerprint(b'{"detector": "x", "output": "toxic"}')
OTHER_FP = fingerprint(b'{"detector": "x", "output": "benign"}')
RESPONSE = StoredResponse(
    status=201,
    body=b'{"taxonomy": ["HARM.TOXIC"], "bin": "\xff"}',
    headers={"content-type": "application/json", "x-request-id": "r-1"},
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_prefix: str) -> IdempotencyStore:
    if request.param == "memory":
        return MemoryIdempotencyStore()
    client: Redis = request.getfixturevalue("redis_client")
    return RedisIdempotencyStore(client, prefix=redis_prefix)


@pytest.fixture
def scope() -> str:
    return scope_key("acme", "/v1/map", "key-1")


async def test_started_complete_replay(store: IdempotencyStore, scope: str) -> None:
    assert await store.begin(scope, FP, TTL) == Begin(Outcome.STARTED)
    assert await store.begin(scope, FP, TTL) == Begin(Outcome.IN_FLIGHT)
    await store.complete(scope, FP, RESPONSE, TTL)
    replay = await store.begin(scope, FP, TTL)
    assert replay.outcome is Outcome.REPLAY
    assert replay.response == RESPONSE
    assert replay.response is not None
    assert replay.response.body == RESPONSE.body
    assert replay.response.headers == RESPONSE.headers
    assert await store.healthy()


async def test_other_fingerprint_is_mismatch(store: IdempotencyStore, scope: str) -> None:
    await store.begin(scope, FP, TTL)
    assert await store.begin(scope, OTHER_FP, TTL) == Begin(Outcome.MISMATCH)
    await store.complete(scope, FP, RESPONSE, TTL)
    assert await store.begin(scope, OTHER_FP, TTL) == Begin(Outcome.MISMATCH)


async def test_scopes_are_independent(store: IdempotencyStore) -> None:
    a = scope_key("acme", "/v1/map", "k")
    b = scope_key("other", "/v1/map", "k")
    assert (await store.begin(a, FP, TTL)).outcome is Outcome.STARTED
    assert (await store.begin(b, FP, TTL)).outcome is Outcome.STARTED


async def test_abandon_releases_only_our_marker(store: IdempotencyStore, scope: str) -> None:
    await store.begin(scope, FP, TTL)
    await store.abandon(scope, OTHER_FP)  # not ours: kept
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.IN_FLIGHT
    await store.abandon(scope, FP)
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.STARTED
    await store.complete(scope, FP, RESPONSE, TTL)
    await store.abandon(scope, FP)  # a completed record is never abandoned
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.REPLAY
    await store.abandon(scope_key("t", "/r", "never-begun"), FP)


async def test_complete_does_not_overwrite_another_request(
    store: IdempotencyStore, scope: str
) -> None:
    await store.begin(scope, FP, TTL)
    await store.complete(scope, OTHER_FP, RESPONSE, TTL)  # not the owner
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.IN_FLIGHT
    await store.complete(scope, FP, RESPONSE, TTL)
    later = StoredResponse(status=500, body=b"{}", headers={})
    await store.complete(scope, FP, later, TTL)  # the first answer stands
    assert (await store.begin(scope, FP, TTL)).response == RESPONSE


async def test_concurrent_begin_memory(scope: str) -> None:
    store = MemoryIdempotencyStore()
    results = await asyncio.gather(*(store.begin(scope, FP, TTL) for _ in range(50)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.STARTED) == 1
    assert outcomes.count(Outcome.IN_FLIGHT) == 49


async def test_concurrent_begin_two_redis_replicas(
    redis_factory: Callable[[], Redis], redis_prefix: str, scope: str
) -> None:
    replicas = [RedisIdempotencyStore(redis_factory(), prefix=redis_prefix) for _ in range(2)]
    results = await asyncio.gather(*(replicas[i % 2].begin(scope, FP, TTL) for i in range(100)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.STARTED) == 1
    assert outcomes.count(Outcome.IN_FLIGHT) == 99
    await replicas[1].complete(scope, FP, RESPONSE, TTL)
    replays = await asyncio.gather(*(replicas[i % 2].begin(scope, FP, TTL) for i in range(10)))
    assert all(r == Begin(Outcome.REPLAY, RESPONSE) for r in replays)


async def test_memory_ttl_and_lease_expiry(scope: str) -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(lease_seconds=60, clock=clock)
    await store.begin(scope, FP, TTL)
    clock.now += 59
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.IN_FLIGHT
    clock.now += 2  # the lease of a crashed request ran out
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.STARTED
    await store.complete(scope, FP, RESPONSE, 10)
    clock.now += 9
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.REPLAY
    clock.now += 2
    assert (await store.begin(scope, OTHER_FP, TTL)).outcome is Outcome.STARTED
    # A lease never outlives the record's TTL.
    other = scope_key("acme", "/v1/map", "key-2")
    await store.begin(other, FP, 5)
    clock.now += 6
    assert (await store.begin(other, FP, TTL)).outcome is Outcome.STARTED


async def test_memory_late_complete_after_lease_still_stores(scope: str) -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(lease_seconds=1, clock=clock)
    await store.begin(scope, FP, TTL)
    clock.now += 5
    await store.complete(scope, FP, RESPONSE, TTL)
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.REPLAY


async def test_memory_store_is_bounded() -> None:
    store = MemoryIdempotencyStore(max_entries=5, max_bytes=1000)
    for i in range(20):
        await store.begin(f"s{i}", FP, TTL)
    assert len(store) == 5
    assert (await store.begin("s19", FP, TTL)).outcome is Outcome.IN_FLIGHT
    assert (await store.begin("s0", FP, TTL)).outcome is Outcome.STARTED  # evicted
    big = StoredResponse(status=200, body=b"x" * 600, headers={})
    await store.complete("s18", FP, big, TTL)
    await store.complete("s19", FP, big, TTL)
    assert (await store.begin("s19", FP, TTL)).outcome is Outcome.REPLAY
    assert (await store.begin("s18", FP, TTL)).outcome is Outcome.STARTED  # over max_bytes


async def test_redis_ttl_and_lease_expiry(
    redis_client: Redis, redis_prefix: str, scope: str
) -> None:
    store = RedisIdempotencyStore(redis_client, prefix=redis_prefix, lease_seconds=0.2)
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.STARTED
    lease_ms = await redis_client.pttl(redis_prefix + scope)
    assert 0 < lease_ms <= 200
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.IN_FLIGHT
    await asyncio.sleep(0.3)
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.STARTED
    await store.complete(scope, FP, RESPONSE, 1)
    ttl_ms = await redis_client.pttl(redis_prefix + scope)
    assert 500 < ttl_ms <= 1000
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.REPLAY
    await asyncio.sleep(1.1)
    assert (await store.begin(scope, FP, TTL)).outcome is Outcome.STARTED


async def test_redis_record_holds_no_request(redis_client: Redis, redis_prefix: str) -> None:
    store = RedisIdempotencyStore(redis_client, prefix=redis_prefix)
    client_key = "client-chosen key"
    scope = scope_key("acme", "/v1/map", client_key)
    await store.begin(scope, FP, TTL)
    await store.complete(scope, FP, RESPONSE, TTL)
    keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert keys == [(redis_prefix + scope).encode()]
    assert client_key.encode() not in keys[0]
    raw = await redis_client.get(keys[0])
    assert raw is not None
    assert b"toxic" not in raw  # the request body is only present as its fingerprint
    assert FP.encode() in raw


async def test_redis_unreadable_record_is_unavailable(
    redis_client: Redis, redis_prefix: str, scope: str
) -> None:
    store = RedisIdempotencyStore(redis_client, prefix=redis_prefix)
    await redis_client.set(redis_prefix + scope, b"not json")
    with pytest.raises(IdempotencyUnavailable):
        await store.begin(scope, FP, TTL)
    await store.complete(scope, FP, RESPONSE, TTL)  # refuses to overwrite what it cannot read
    assert await redis_client.get(redis_prefix + scope) == b"not json"


async def test_redis_decode_responses_client(redis_factory: Callable[[], Redis]) -> None:
    # A client built with decode_responses=True returns str; both must work.
    url = await _url_of(redis_factory())
    client = Redis.from_url(url, decode_responses=True)
    try:
        prefix = f"lmtest:idem:decoded:{id(client)}:"
        store = RedisIdempotencyStore(client, prefix=prefix)
        scope = scope_key("t", "/r", "k")
        await store.begin(scope, FP, TTL)
        await store.complete(scope, FP, RESPONSE, TTL)
        assert (await store.begin(scope, FP, TTL)).response == RESPONSE
        await client.delete(prefix + scope)
    finally:
        await client.aclose()


async def _url_of(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


@pytest.fixture
async def dead_store() -> AsyncIterator[RedisIdempotencyStore]:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    yield RedisIdempotencyStore(client)
    await client.aclose()


async def test_redis_errors_raise_unavailable(
    dead_store: RedisIdempotencyStore, scope: str
) -> None:
    with pytest.raises(IdempotencyUnavailable) as begin_error:
        await dead_store.begin(scope, FP, TTL)
    assert "127.0.0.1" not in str(begin_error.value)
    with pytest.raises(IdempotencyUnavailable):
        await dead_store.complete(scope, FP, RESPONSE, TTL)
    with pytest.raises(IdempotencyUnavailable):
        await dead_store.abandon(scope, FP)
    assert not await dead_store.healthy()


def test_stored_response_json_round_trip() -> None:
    assert StoredResponse.from_json(RESPONSE.to_json()) == RESPONSE
    with pytest.raises(ValueError, match="malformed"):
        StoredResponse.from_json(b'{"status": "200", "body": "", "headers": {}}')
