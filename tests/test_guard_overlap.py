"""The Idempotency-Key claim that runs beside the rate-limit check (Redis behind both).

The claim is made in the same round trip as the limiter's script; these tests pin down that
the outcome is still decided in the documented order: a refused request leaves the key
free, and a replay or conflict is only reported for a request the limiter allowed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.servicecheck import require_redis

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.idempotency import scope_key
from llama_mapper.runtime import Runtime, build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

PAYLOAD = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}
IDEMPOTENCY_PREFIX = "lm:idem:"  # RedisIdempotencyStore's default, as the runtime builds it


@pytest.fixture
def secure_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LLAMA_MAPPER_AUTH__ENABLED", "LLAMA_MAPPER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


@asynccontextmanager
async def redis_app(
    catalog: Catalog, per_key_rate: int
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, dict[str, str]]]:
    settings = load_settings(
        redis={"url": require_redis()},
        rate_limit={"backend": "redis", "per_key": {"rate": per_key_rate}},
        idempotency={"backend": "redis"},
    )
    runtime = build_runtime(settings, service=MapperService(settings, catalog))
    await upgrade(runtime.engine)
    assert runtime.auth is not None
    _, key = await runtime.auth.create_key("acme", ["map:write"], None)
    transport = httpx.ASGITransport(app=create_app(runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as client:
        yield client, runtime, {"authorization": f"Bearer {key}"}
    await runtime.aclose()


async def _record_exists(idempotency_key: str) -> bool:
    client = Redis.from_url(require_redis())
    try:
        name = IDEMPOTENCY_PREFIX + scope_key("acme", "/map", idempotency_key)
        return bool(await client.exists(name))
    finally:
        await client.aclose()


async def test_a_rate_limited_request_leaves_its_key_free(
    secure_env: Path, catalog: Catalog
) -> None:
    async with redis_app(catalog, per_key_rate=1) as (client, _, auth):
        assert (await client.post("/map", json=PAYLOAD, headers=auth)).status_code == 200
        idem = {**auth, "idempotency-key": uuid.uuid4().hex}
        limited = await client.post("/map", json=PAYLOAD, headers=idem)
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        assert "idempotent-replayed" not in limited.headers
        assert not await _record_exists(idem["idempotency-key"])


async def test_allowed_requests_claim_complete_and_replay(
    secure_env: Path, catalog: Catalog
) -> None:
    async with redis_app(catalog, per_key_rate=100) as (client, _, auth):
        idem = {**auth, "idempotency-key": uuid.uuid4().hex}
        first = await client.post("/map", json=PAYLOAD, headers=idem)
        assert first.status_code == 200
        assert await _record_exists(idem["idempotency-key"])
        replay = await client.post("/map", json=PAYLOAD, headers=idem)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        assert "ratelimit-remaining" in replay.headers  # the replay was charged too
        other: dict[str, Any] = {**PAYLOAD, "output": "EMAIL_ADDRESS"}
        mismatch = await client.post("/map", json=other, headers=idem)
        assert (mismatch.status_code, mismatch.json()["error_code"]) == (
            422,
            "IDEMPOTENCY_KEY_REUSED",
        )


async def test_an_invalid_key_is_refused_after_the_limit_as_before(
    secure_env: Path, catalog: Catalog
) -> None:
    async with redis_app(catalog, per_key_rate=100) as (client, _, auth):
        too_long = {**auth, "idempotency-key": "k" * 256}
        bad = await client.post("/map", json=PAYLOAD, headers=too_long)
        assert (bad.status_code, bad.json()["error_code"]) == (422, "INVALID_REQUEST")
        assert "ratelimit-limit" in bad.headers  # charged first, then refused, as before
