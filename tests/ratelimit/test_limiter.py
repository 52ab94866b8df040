"""RateLimiter failure modes: an unreachable backend never raises and is reported sparingly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from llama_mapper.ratelimit import (
    Bucket,
    Decision,
    MemoryBackend,
    Quota,
    RateLimiter,
    RedisBackend,
    rate_limit_headers,
)

LOGGER = "llama_mapper.ratelimit"
BUCKETS: list[Bucket] = [
    ("key:secret-key-id", Quota(10, 60.0, 10)),
    ("tenant:acme", Quota(20, 60.0, 20)),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Switchable:
    """A memory backend that can be made to fail like an unreachable Redis."""

    name = "switchable"

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.down = False

    async def acquire(
        self, key: str, quota: Quota, cost: int, now: float | None = None
    ) -> Decision:
        return await self.acquire_many([(key, quota)], cost, now)

    async def acquire_many(
        self, buckets: Sequence[Bucket], cost: int, now: float | None = None
    ) -> Decision:
        if self.down:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1")
        return await self.inner.acquire_many(buckets, cost, now)

    async def healthy(self) -> bool:
        return not self.down


class Hanging(Switchable):
    async def acquire_many(
        self, buckets: Sequence[Bucket], cost: int, now: float | None = None
    ) -> Decision:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    yield client
    await client.aclose()


async def test_fail_open_allows_and_marks_degraded(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    transitions: list[bool] = []
    limiter = RateLimiter(
        RedisBackend(dead_redis), failure_mode="fail_open", on_degraded=transitions.append
    )
    caplog.set_level(logging.INFO, logger=LOGGER)
    decisions = [await limiter.check(BUCKETS, 1) for _ in range(5)]
    assert all(d.allowed and d.degraded for d in decisions)
    assert decisions[0].limit == 10  # the tightest configured quota
    assert decisions[0].retry_after_seconds is None
    assert limiter.degraded()
    assert transitions == [True]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "redis" in message
    assert "fail_open" in message
    # No identity and no connection details in the log line.
    assert "secret-key-id" not in message
    assert "acme" not in message
    assert "127.0.0.1" not in message
    assert not await limiter.backend.healthy()


async def test_fail_closed_denies_with_retry_after(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    transitions: list[bool] = []
    limiter = RateLimiter(
        RedisBackend(dead_redis), failure_mode="fail_closed", on_degraded=transitions.append
    )
    caplog.set_level(logging.WARNING, logger=LOGGER)
    decision = await limiter.check(BUCKETS, 3)
    assert not decision.allowed
    assert decision.degraded
    assert decision.retry_after_seconds == 1
    assert rate_limit_headers(decision)["Retry-After"] == "1"
    assert limiter.degraded()
    assert transitions == [True]
    assert len(caplog.records) == 1


async def test_warning_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    backend = Switchable()
    backend.down = True
    clock = Clock()
    limiter = RateLimiter(backend, "fail_open", log_interval_seconds=60, clock=clock)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(10):
        await limiter.check(BUCKETS, 1)
        clock.now += 5  # 45 s in all
    assert len(caplog.records) == 1
    clock.now += 20
    await limiter.check(BUCKETS, 1)
    assert len(caplog.records) == 2
    assert "9 more" in caplog.records[1].getMessage()
    # Flapping does not reset the throttle.
    backend.down = False
    await limiter.check(BUCKETS, 1)
    backend.down = True
    await limiter.check(BUCKETS, 1)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


async def test_recovery_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    backend = Switchable()
    transitions: list[bool] = []
    limiter = RateLimiter(backend, "fail_closed", on_degraded=transitions.append)
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert (await limiter.check(BUCKETS, 1)).allowed
    backend.down = True
    assert not (await limiter.check(BUCKETS, 1)).allowed
    assert not (await limiter.check(BUCKETS, 1)).allowed
    backend.down = False
    recovered = await limiter.check(BUCKETS, 1)
    assert recovered.allowed
    assert not recovered.degraded
    assert not limiter.degraded()
    assert recovered.remaining == 8  # the outage charged nothing
    await limiter.check(BUCKETS, 1)
    assert transitions == [True, False]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1
    assert "available again" in infos[0].getMessage()


async def test_slow_backend_times_out_into_failure_mode() -> None:
    limiter = RateLimiter(Hanging(), "fail_open", timeout_seconds=0.05)
    decision = await limiter.check(BUCKETS, 1)
    assert decision.allowed
    assert decision.degraded


async def test_broken_callback_does_not_break_requests(caplog: pytest.LogCaptureFixture) -> None:
    def explode(_: bool) -> None:
        raise RuntimeError("metrics down")

    backend = Switchable()
    backend.down = True
    limiter = RateLimiter(backend, "fail_closed", on_degraded=explode)
    decision = await limiter.check(BUCKETS, 1)
    assert not decision.allowed
    assert limiter.degraded()


async def test_caller_mistakes_raise() -> None:
    limiter = RateLimiter(MemoryBackend(), "fail_open")
    with pytest.raises(ValueError, match="bucket"):
        await limiter.check([], 1)
    with pytest.raises(ValueError, match="cost"):
        await limiter.check(BUCKETS, -1)
    with pytest.raises(ValueError, match="failure mode"):
        RateLimiter(MemoryBackend(), "fail_sideways")  # type: ignore[arg-type]


async def test_limiter_denies_when_any_bucket_denies() -> None:
    limiter = RateLimiter(MemoryBackend(), "fail_open")
    tight: list[Bucket] = [("key:k", Quota(10, 60.0, 10)), ("tenant:t", Quota(1, 60.0, 1))]
    assert (await limiter.check(tight, 1)).allowed
    denied = await limiter.check(tight, 1)
    assert not denied.allowed
    assert not denied.degraded
    assert denied.retry_after_seconds == pytest.approx(60.0, abs=0.5)
