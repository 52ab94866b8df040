"""RedisBatcher against the real Redis: shared round trips, independent results."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from tests.servicecheck import require_redis

from llama_mapper.storage.redis_batch import RedisBatcher


@pytest.fixture
async def redis() -> Redis:
    client = Redis.from_url(require_redis())
    yield client
    await client.aclose()


async def test_concurrent_commands_share_a_pipeline_and_keep_their_results(redis: Redis) -> None:
    batcher = RedisBatcher(redis)
    key = f"lm:test:batch:{uuid.uuid4().hex}"
    try:
        before = (await redis.info("stats"))["total_commands_processed"]
        results = await asyncio.gather(*(batcher.execute("INCR", key) for _ in range(50)))
        after = (await redis.info("stats"))["total_commands_processed"]
        assert sorted(results) == list(range(1, 51))
        assert after - before >= 50  # every command ran (INFO itself adds one)
        assert batcher._flushes == set()
    finally:
        await redis.delete(key)


async def test_one_failing_command_does_not_fail_its_neighbours(redis: Redis) -> None:
    batcher = RedisBatcher(redis)
    text_key, counter = f"lm:test:t:{uuid.uuid4().hex}", f"lm:test:c:{uuid.uuid4().hex}"
    await redis.set(text_key, "not a number")
    try:
        results = await asyncio.gather(
            batcher.execute("INCR", counter),
            batcher.execute("INCR", text_key),
            batcher.execute("INCR", counter),
            return_exceptions=True,
        )
        assert results[0] == 1
        assert results[2] == 2
        assert isinstance(results[1], ResponseError)
    finally:
        await redis.delete(text_key, counter)


async def test_scripts_are_loaded_again_after_a_flush(redis: Redis) -> None:
    batcher = RedisBatcher(redis)
    sha = batcher.script("return ARGV[1] .. KEYS[1]  -- " + uuid.uuid4().hex)
    assert await batcher.evalsha(sha, ["k"], ["v"]) == b"vk"
    await redis.script_flush()
    assert await asyncio.gather(*(batcher.evalsha(sha, ["k"], [str(i)]) for i in range(3))) == [
        b"0k",
        b"1k",
        b"2k",
    ]


async def test_an_unreachable_server_fails_every_caller() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    batcher = RedisBatcher(client)
    results = await asyncio.gather(
        *(batcher.execute("PING") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RedisConnectionError | OSError) for r in results)
    await client.aclose()
