"""RedisBackend against a real Redis: server clock, key TTLs, and no races across replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis

from llama_mapper.ratelimit import Quota, RateLimiter, RedisBackend


async def test_server_clock_and_ttl(redis_client: Redis, redis_prefix: str) -> None:
    backend = RedisBackend(redis_client, prefix=redis_prefix)
    quota = Quota(rate=60, period_seconds=60.0, burst=10)  # one unit per second
    for expected in range(9, 4, -1):
        decision = await backend.acquire("key:a", quota, 1)
        assert decision.allowed
        assert decision.remaining == expected
    # The key lives exactly until the bucket is full again (5 units, ~5 s).
    ttl_ms = await redis_client.pttl(f"{redis_prefix}key:a")
    assert 4000 < ttl_ms <= 5000
    assert await redis_client.exists(f"{redis_prefix}key:a")


async def test_stored_value_is_not_a_key_or_request(redis_client: Redis, redis_prefix: str) -> None:
    backend = RedisBackend(redis_client, prefix=redis_prefix)
    await backend.acquire("tenant:t", Quota(5, 60.0, 5), 1)
    value = await redis_client.get(f"{redis_prefix}tenant:t")
    assert value is not None
    float(value)  # only the bucket's TAT is kept


async def test_concurrent_replicas_never_overshoot(
    redis_factory: Callable[[], Redis], redis_prefix: str
) -> None:
    replicas = [RedisBackend(redis_factory(), prefix=redis_prefix) for _ in range(2)]
    quota = Quota(rate=50, period_seconds=3600.0, burst=50)
    decisions = await asyncio.gather(
        *(replicas[i % 2].acquire("key:hot", quota, 1) for i in range(200))
    )
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.retry_after_seconds is not None for d in decisions if not d.allowed)


async def test_concurrent_multi_bucket_charges_stay_consistent(
    redis_factory: Callable[[], Redis], redis_prefix: str
) -> None:
    replicas = [RedisBackend(redis_factory(), prefix=redis_prefix) for _ in range(2)]
    key_quota = Quota(rate=30, period_seconds=3600.0, burst=30)
    tenant_quota = Quota(rate=40, period_seconds=3600.0, burst=40)
    calls = []
    for i in range(100):
        key = f"key:{i % 2}"
        calls.append(
            replicas[i % 2].acquire_many([(key, key_quota), ("tenant:t", tenant_quota)], 1)
        )
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 40
    # The tenant's bucket is exactly spent; no refused request was charged anywhere.
    peek = await replicas[0].acquire("tenant:t", tenant_quota, 0)
    assert peek.remaining == 0
    key0 = await replicas[0].acquire("key:0", key_quota, 0)
    key1 = await replicas[0].acquire("key:1", key_quota, 0)
    assert (30 - key0.remaining) + (30 - key1.remaining) == 40


async def test_limiter_on_real_redis_is_not_degraded(
    redis_client: Redis, redis_prefix: str
) -> None:
    transitions: list[bool] = []
    limiter = RateLimiter(
        RedisBackend(redis_client, prefix=redis_prefix),
        failure_mode="fail_closed",
        on_degraded=transitions.append,
    )
    decision = await limiter.check([("ip:203.0.113.9", Quota(2, 60.0, 2))], 1)
    assert decision.allowed
    assert not decision.degraded
    assert not limiter.degraded()
    assert transitions == []
    assert await limiter.backend.healthy()
