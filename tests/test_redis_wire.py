"""The batcher's own pipelined Redis connection: parsing, deadlines, reconnects, AUTH.

Against the real Redis (shared, only our own keys and our own connection are touched), a
private ``redis-server`` with a password (started here), and a TCP server that accepts and
never answers (a stalled Redis, which no real server can be made into without stalling it
for every other client).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tests.servicecheck import require_redis

from llama_mapper.storage.redis_batch import RedisBatcher
from llama_mapper.storage.redis_wire import _Incomplete, pack, parse_reply, wire_settings


def test_pack_matches_the_resp_encoding() -> None:
    assert pack(("SET", b"k\r\n", 12, 0.5)) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$3\r\n0.5\r\n"
    )
    assert pack(("GET", "é")) == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"
    with pytest.raises(Exception, match="bool"):
        pack(("SET", "k", True))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"+OK\r\n", b"OK"),
        (b":-42\r\n", -42),
        (b"$-1\r\n", None),
        (b"$0\r\n\r\n", b""),
        (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
        (b"*3\r\n$1\r\n1\r\n:2\r\n*1\r\n$-1\r\n", [b"1", 2, [None]]),
        (b"*-1\r\n", None),
    ],
)
def test_parse_reply_in_any_chunking(raw: bytes, expected: object) -> None:
    assert parse_reply(raw, 0) == (expected, len(raw))
    for cut in range(len(raw)):  # every prefix is incomplete, never misread
        with pytest.raises(_Incomplete):
            parse_reply(raw[:cut], 0)


def test_errors_become_the_client_librarys_classes() -> None:
    error, _ = parse_reply(b"-NOSCRIPT No matching script.\r\n", 0)
    assert isinstance(error, NoScriptError)
    error, _ = parse_reply(b"-ERR value is not an integer\r\n", 0)
    assert type(error) is ResponseError


def test_settings_that_need_the_library_keep_it() -> None:
    assert wire_settings(Redis.from_url("redis://127.0.0.1:6379/3")) is not None
    assert wire_settings(Redis.from_url("rediss://127.0.0.1:6379/3")) is None
    assert wire_settings(Redis.from_url("redis://127.0.0.1:6379/3", decode_responses=True)) is None
    unix = wire_settings(Redis.from_url("unix:///tmp/redis.sock?db=2"))
    assert unix is not None
    assert (unix.path, unix.db) == ("/tmp/redis.sock", 2)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(require_redis())
    yield client
    await client.aclose()


async def test_uses_the_configured_database(redis: Redis) -> None:
    batcher = RedisBatcher(redis)
    key = f"lm:test:wire:{uuid.uuid4().hex}"
    try:
        assert await batcher.execute("SET", key, "v") == b"OK"
        assert await redis.get(key) == b"v"  # same database as the client's own pool
        assert batcher._wire is not None  # the lean connection served it
    finally:
        await redis.delete(key)
        await batcher.aclose()


async def test_a_deadline_fails_only_its_command_and_replies_stay_in_order(
    redis: Redis,
) -> None:
    batcher = RedisBatcher(redis)
    key = f"lm:test:wire:{uuid.uuid4().hex}"
    try:
        started = time.monotonic()
        # BLPOP holds our connection for 1 s; the caller gives up after 0.2 s.
        with pytest.raises(RedisTimeoutError):
            await batcher.execute("BLPOP", key, 1, timeout=0.2)
        assert time.monotonic() - started < 0.8
        # The BLPOP reply (nil) must be skipped, not handed to the next command.
        assert await batcher.execute("SET", key, "after") == b"OK"
        assert await batcher.execute("GET", key) == b"after"
    finally:
        await redis.delete(key)
        await batcher.aclose()


async def test_reconnects_after_the_server_drops_the_connection(redis: Redis) -> None:
    batcher = RedisBatcher(redis)
    connection_id = await batcher.execute("CLIENT", "ID")
    await redis.execute_command("CLIENT", "KILL", "ID", connection_id)  # ours only
    await asyncio.sleep(0.05)
    assert await batcher.execute("PING") == b"PONG"
    assert await batcher.execute("CLIENT", "ID") != connection_id
    await batcher.aclose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts and never answers: a Redis that stalled."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield int(listener.getsockname()[1])
    listener.close()


async def test_a_stalled_server_times_out_every_waiting_command(silent_server: int) -> None:
    client = Redis.from_url(
        f"redis://127.0.0.1:{silent_server}/0", socket_timeout=0.3, socket_connect_timeout=0.3
    )
    batcher = RedisBatcher(client)
    started = time.monotonic()
    results = await asyncio.gather(
        *(batcher.execute("PING") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RedisTimeoutError) for r in results), results
    assert time.monotonic() - started < 1.5
    await batcher.aclose()
    await client.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: object) -> Iterator[int]:
    """A redis-server of our own with a password, so AUTH and restarts can be tested."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [binary, "--port", str(port), *options, "--requirepass", "s3cret"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


async def test_authenticates_and_selects_the_database(private_redis: int) -> None:
    client = Redis.from_url(f"redis://:s3cret@127.0.0.1:{private_redis}/2")
    batcher = RedisBatcher(client)
    assert await batcher.execute("SET", "k", "v") == b"OK"
    assert await client.get("k") == b"v"
    await batcher.aclose()
    await client.aclose()

    wrong = Redis.from_url(f"redis://:nope@127.0.0.1:{private_redis}/2")
    refused = RedisBatcher(wrong)
    with pytest.raises(RedisConnectionError):
        await refused.execute("GET", "k")
    await refused.aclose()
    await wrong.aclose()
