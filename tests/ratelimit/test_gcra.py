"""GCRA behaviour with an injected clock, identical on the memory and Redis backends."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from llama_mapper.config.settings import Limit
from llama_mapper.ratelimit import (
    Decision,
    MemoryBackend,
    Quota,
    RateLimitBackend,
    RedisBackend,
    rate_limit_headers,
)

# Epoch-scale times too: Redis server time is ~1.7e9 s, where float noise is real.
BASES = [0.0, 1_700_000_000.123456]
Q = Quota(rate=10, period_seconds=10.0, burst=5)  # one unit per second, five at once


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, redis_prefix: str) -> RateLimitBackend:
    if request.param == "memory":
        return MemoryBackend()
    client: Redis = request.getfixturevalue("redis_client")
    return RedisBackend(client, prefix=redis_prefix)


def test_quota_from_limit_defaults_burst_to_rate() -> None:
    assert Quota.from_limit(Limit(rate=600)) == Quota(600, 60.0, 600)
    assert Quota.from_limit(Limit(rate=5, period_seconds=1, burst=20)) == Quota(5, 1.0, 20)


def test_policy_header_value() -> None:
    assert Quota(600, 60.0, 600).policy == "600;w=60"
    assert Quota(5, 1.0, 20).policy == "5;w=1;burst=20"


@pytest.mark.parametrize(
    ("rate", "period", "burst"), [(0, 1.0, 1), (1, 0.0, 1), (1, -1.0, 1), (1, 1.0, 0)]
)
def test_quota_rejects_nonsense(rate: int, period: float, burst: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Quota(rate, period, burst)


@pytest.mark.parametrize("base", BASES)
async def test_burst_then_limited(backend: RateLimitBackend, base: float) -> None:
    remaining = []
    for _ in range(5):
        decision = await backend.acquire("k", Q, 1, now=base)
        assert decision.allowed
        remaining.append(decision.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    denied = await backend.acquire("k", Q, 1, now=base)
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.limit == 5
    assert denied.retry_after_seconds == pytest.approx(1.0, abs=1e-4)
    assert denied.reset_seconds == pytest.approx(5.0, abs=1e-4)
    assert denied.policy == "10;w=10;burst=5"
    assert not denied.degraded


@pytest.mark.parametrize("base", BASES)
async def test_refill_over_time(backend: RateLimitBackend, base: float) -> None:
    for _ in range(5):
        assert (await backend.acquire("k", Q, 1, now=base)).allowed
    # Half a unit later nothing is back yet.
    half = await backend.acquire("k", Q, 1, now=base + 0.5)
    assert not half.allowed
    assert half.retry_after_seconds == pytest.approx(0.5, abs=1e-4)
    # Two seconds later, two units are back.
    assert (await backend.acquire("k", Q, 1, now=base + 2.0)).allowed
    second = await backend.acquire("k", Q, 1, now=base + 2.0)
    assert second.allowed
    assert second.remaining == 0
    assert not (await backend.acquire("k", Q, 1, now=base + 2.0)).allowed
    # Long idle: full again, never more than the burst.
    full = await backend.acquire("k", Q, 1, now=base + 1000.0)
    assert full.allowed
    assert full.remaining == 4
    assert full.reset_seconds == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("base", BASES)
async def test_cost_greater_than_one(backend: RateLimitBackend, base: float) -> None:
    first = await backend.acquire("k", Q, 3, now=base)
    assert first.allowed
    assert first.remaining == 2
    assert first.reset_seconds == pytest.approx(3.0, abs=1e-4)
    second = await backend.acquire("k", Q, 3, now=base)
    assert not second.allowed
    assert second.remaining == 2  # a denial charges nothing
    assert second.retry_after_seconds == pytest.approx(1.0, abs=1e-4)
    assert (await backend.acquire("k", Q, 2, now=base)).allowed
    assert (await backend.acquire("k", Q, 3, now=base + 3.0)).allowed


async def test_cost_above_burst_never_passes(backend: RateLimitBackend) -> None:
    decision = await backend.acquire("k", Q, 6, now=100.0)
    assert not decision.allowed
    assert decision.retry_after_seconds is None
    assert decision.remaining == 5
    assert "Retry-After" not in rate_limit_headers(decision)
    assert (await backend.acquire("k", Q, 5, now=100.0)).allowed


async def test_cost_zero_peeks(backend: RateLimitBackend) -> None:
    await backend.acquire("k", Q, 2, now=50.0)
    peek = await backend.acquire("k", Q, 0, now=50.0)
    assert peek.allowed
    assert peek.remaining == 3
    assert (await backend.acquire("k", Q, 0, now=50.0)).remaining == 3


async def test_keys_are_independent(backend: RateLimitBackend) -> None:
    for _ in range(5):
        await backend.acquire("a", Q, 1, now=10.0)
    assert not (await backend.acquire("a", Q, 1, now=10.0)).allowed
    assert (await backend.acquire("b", Q, 1, now=10.0)).allowed


@pytest.mark.parametrize("base", BASES)
async def test_acquire_many_is_all_or_none(backend: RateLimitBackend, base: float) -> None:
    wide = Quota(rate=10, period_seconds=10.0, burst=5)
    narrow = Quota(rate=1, period_seconds=10.0, burst=1)
    first = await backend.acquire_many([("key:a", wide), ("tenant:t", narrow)], 1, now=base)
    assert first.allowed
    assert first.remaining == 0  # the tightest bucket is reported
    assert first.limit == 1
    for _ in range(3):
        denied = await backend.acquire_many([("key:a", wide), ("tenant:t", narrow)], 1, now=base)
        assert not denied.allowed
        assert denied.limit == 1  # the bucket that refused
        assert denied.retry_after_seconds == pytest.approx(10.0, abs=1e-4)
    # The refused requests left the key's bucket alone: only the first one was charged.
    alone = await backend.acquire("key:a", wide, 0, now=base)
    assert alone.remaining == 4


async def test_acquire_many_reports_longest_wait(backend: RateLimitBackend) -> None:
    slow = Quota(rate=1, period_seconds=60.0, burst=1)
    fast = Quota(rate=1, period_seconds=5.0, burst=1)
    await backend.acquire_many([("s", slow), ("f", fast)], 1, now=0.0)
    denied = await backend.acquire_many([("s", slow), ("f", fast)], 1, now=1.0)
    assert not denied.allowed
    assert denied.retry_after_seconds == pytest.approx(59.0, abs=1e-4)
    assert denied.policy == "1;w=60"


async def test_backend_rejects_bad_arguments(backend: RateLimitBackend) -> None:
    with pytest.raises(ValueError, match="bucket"):
        await backend.acquire_many([], 1)
    with pytest.raises(ValueError, match="cost"):
        await backend.acquire("k", Q, -1)


async def test_backends_report_healthy(backend: RateLimitBackend) -> None:
    assert await backend.healthy()


async def test_memory_backend_is_bounded() -> None:
    backend = MemoryBackend(max_keys=3)
    slow = Quota(rate=1, period_seconds=3600.0, burst=10)
    for index in range(20):
        await backend.acquire(f"k{index}", slow, 1, now=0.0)
    assert len(backend) == 3
    # Refilled buckets are dropped as traffic moves on.
    quick = Quota(rate=10, period_seconds=1.0, burst=10)
    small = MemoryBackend(max_keys=100)
    for index in range(10):
        await small.acquire(f"k{index}", quick, 1, now=float(index))
    assert len(small) <= 2


def test_headers_allowed() -> None:
    decision = Decision(
        allowed=True,
        limit=600,
        remaining=599,
        reset_seconds=0.1000000001,
        retry_after_seconds=None,
        policy="600;w=60",
    )
    assert rate_limit_headers(decision) == {
        "RateLimit-Limit": "600",
        "RateLimit-Remaining": "599",
        "RateLimit-Reset": "1",
        "RateLimit-Policy": "600;w=60",
    }


def test_headers_denied_round_up() -> None:
    decision = Decision(
        allowed=False,
        limit=5,
        remaining=0,
        reset_seconds=5.0000000001,
        retry_after_seconds=1.2,
        policy="10;w=10;burst=5",
    )
    headers = rate_limit_headers(decision)
    assert headers["RateLimit-Reset"] == "5"
    assert headers["Retry-After"] == "2"
    tiny = Decision(False, 5, 0, 0.0, 0.0001, "5;w=1")
    assert rate_limit_headers(tiny)["Retry-After"] == "1"
