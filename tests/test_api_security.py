"""The production features through the real HTTP API: keys, tenants, limits, idempotency.

Backends are real: SQLite (and the Redis at 127.0.0.1:6379 where marked) — no fakes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.servicecheck import require_redis

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.idempotency import fingerprint, scope_key
from llama_mapper.runtime import Runtime, build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

PAYLOAD = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}


@pytest.fixture
def secure_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LLAMA_MAPPER_AUTH__ENABLED", "LLAMA_MAPPER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


Factory = Callable[..., Any]


@pytest.fixture
def make_app(secure_env: Path, catalog: Catalog) -> Factory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
        settings = load_settings(**overrides)
        runtime = build_runtime(settings, service=MapperService(settings, catalog))
        await upgrade(runtime.engine)
        app = create_app(runtime=runtime)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as client:
            yield client, runtime
        await runtime.aclose()

    return factory


async def new_key(
    runtime: Runtime, tenant: str = "acme", scopes: str = "map:write"
) -> dict[str, str]:
    assert runtime.auth is not None
    _, key = await runtime.auth.create_key(tenant, scopes.split(), None)
    return {"authorization": f"Bearer {key}"}


async def test_keys_are_required_and_bound_to_their_tenant(make_app: Factory) -> None:
    async with make_app() as (client, runtime):
        missing = await client.post("/map", json=PAYLOAD)
        assert missing.status_code == 401
        assert missing.json()["error_code"] == "INVALID_API_KEY"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.post("/map", json=PAYLOAD, headers={"authorization": "Bearer lmk_x_y"})
        assert wrong.status_code == 401
        headers = await new_key(runtime)
        ok = await client.post("/map", json=PAYLOAD, headers=headers)
        assert ok.status_code == 200
        assert ok.json()["provenance"]["tenant_id"] == "acme"
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(ok.headers)
        other_body = await client.post(
            "/map", json={**PAYLOAD, "tenant_id": "globex"}, headers=headers
        )
        assert other_body.status_code == 403
        assert other_body.json()["error_code"] == "TENANT_MISMATCH"
        spoofed = await client.post(
            "/map", json=PAYLOAD, headers={**headers, "x-tenant-id": "globex"}
        )
        assert spoofed.status_code == 403
        legacy = await client.post("/map", json={"detector": "presidio", "output": "US_SSN"},
                                   headers=headers)  # fmt: skip
        assert legacy.json()["provenance"]["tenant_id"] == "acme"  # the key decides
        read_only = await new_key(runtime, scopes="map:read")
        scope = await client.post("/map", json=PAYLOAD, headers=read_only)
        assert (scope.status_code, scope.json()["error_code"]) == (403, "INSUFFICIENT_SCOPE")


async def test_batch_items_for_other_tenants_fail_alone(make_app: Factory) -> None:
    async with make_app() as (client, runtime):
        headers = await new_key(runtime)
        items = [
            PAYLOAD,
            {**PAYLOAD, "tenant_id": "globex"},
            {"detector": "presidio", "output": "x"},
        ]
        response = await client.post("/map/batch", json={"requests": items}, headers=headers)
        results = response.json()["results"]
        assert results[0]["provenance"]["tenant_id"] == "acme"
        assert results[1]["error"]["error_code"] == "TENANT_MISMATCH"
        assert results[2]["provenance"]["tenant_id"] == "acme"


async def test_rate_limit_per_key_and_batch_cost(make_app: Factory) -> None:
    limits = {"per_key": {"rate": 10, "period_seconds": 60}}
    async with make_app(rate_limit=limits) as (client, runtime):
        headers = await new_key(runtime)
        batch = {"requests": [PAYLOAD] * 8}
        assert (await client.post("/map/batch", json=batch, headers=headers)).status_code == 200
        assert (await client.post("/map", json=PAYLOAD, headers=headers)).status_code == 200
        third = await client.post("/map/batch", json={"requests": [PAYLOAD] * 5}, headers=headers)
        assert third.status_code == 429
        assert third.json()["error_code"] == "RATE_LIMITED"
        assert int(third.headers["retry-after"]) >= 1
        assert third.headers["ratelimit-remaining"] == "1"
        too_big = await client.post(
            "/map/batch", json={"requests": [PAYLOAD] * 11}, headers=headers
        )
        assert (too_big.status_code, too_big.json()["error_code"]) == (422, "BATCH_TOO_LARGE")
        other = await new_key(runtime)  # another key of the same tenant has its own bucket
        assert (await client.post("/map", json=PAYLOAD, headers=other)).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'mapper_ratelimit_decisions_total{outcome="limited"} 2.0' in metrics


async def test_invalid_keys_share_the_ip_bucket(make_app: Factory) -> None:
    async with make_app(rate_limit={"per_ip": {"rate": 2}}) as (client, _):
        statuses = []
        for n in range(4):
            bad = {"authorization": f"Bearer lmk_{n:012d}_{'A' * 43}"}  # a new "key" each time
            statuses.append((await client.post("/map", json=PAYLOAD, headers=bad)).status_code)
        assert statuses == [401, 401, 429, 429]


async def test_idempotent_replay_mismatch_and_in_flight(make_app: Factory) -> None:
    async with make_app() as (client, runtime):
        headers = {**(await new_key(runtime)), "idempotency-key": "order-42"}
        first = await client.post("/map", json=PAYLOAD, headers=headers)
        again = await client.post("/map", json=PAYLOAD, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content  # same request id and timestamp: the same answer
        assert "idempotent-replayed" not in first.headers
        changed = await client.post("/map", json={**PAYLOAD, "output": "US_ITIN"}, headers=headers)
        assert (changed.status_code, changed.json()["error_code"]) == (
            422,
            "IDEMPOTENCY_KEY_REUSED",
        )
        # Another request holding the key: begin it the way a concurrent request would.
        assert runtime.idempotency is not None
        body = b'{"detector":"presidio","output":"US_SSN","tenant_id":"acme"}'
        await runtime.idempotency.begin(scope_key("acme", "/map", "busy"), fingerprint(body), 60)
        busy = await client.post("/map", content=body, headers={
            **headers, "idempotency-key": "busy", "content-type": "application/json"})  # fmt: skip
        assert (busy.status_code, busy.json()["error_code"]) == (409, "IDEMPOTENCY_IN_PROGRESS")
        # Keys are scoped per tenant: globex's "order-42" is a different record.
        globex = {**(await new_key(runtime, "globex")), "idempotency-key": "order-42"}
        fresh = await client.post("/map", json={**PAYLOAD, "tenant_id": "globex"}, headers=globex)
        assert "idempotent-replayed" not in fresh.headers


async def test_two_replicas_share_redis_limits_and_replays(make_app: Factory) -> None:
    url = require_redis()
    shared = {
        "redis": {"url": url},
        "rate_limit": {"backend": "redis", "per_key": {"rate": 3}},
        "idempotency": {"backend": "redis"},
    }
    async with make_app(**shared) as (one, runtime), make_app(**shared) as (two, _):
        headers = await new_key(runtime)
        idem = {**headers, "idempotency-key": uuid.uuid4().hex}
        first = await one.post("/map", json=PAYLOAD, headers=idem)
        replay = await two.post("/map", json=PAYLOAD, headers=idem)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        statuses = [(await c.post("/map", json=PAYLOAD, headers=headers)).status_code
                    for c in (one, two, one, two)]  # fmt: skip
        assert statuses.count(429) >= 2  # 3 per key in all, across both replicas
        # The same key sent to both replicas at once: one original answer, the others are
        # either told it is in flight (409) or get the very same answer replayed.
        concurrent_key = {**(await new_key(runtime)), "idempotency-key": uuid.uuid4().hex}
        results = await asyncio.gather(
            *(c.post("/map", json=PAYLOAD, headers=concurrent_key) for c in (one, two, one))
        )
        originals = [
            r for r in results if r.status_code == 200 and "idempotent-replayed" not in r.headers
        ]
        assert len(originals) == 1
        for other in results:
            if other is not originals[0]:
                assert other.status_code == 409 or other.content == originals[0].content


@pytest.mark.parametrize(
    ("mode", "status", "ready"), [("fail_open", 200, 200), ("fail_closed", 429, 503)]
)
async def test_redis_down_follows_the_failure_mode(
    make_app: Factory, mode: str, status: int, ready: int
) -> None:
    down = {
        "redis": {"url": "redis://127.0.0.1:1/0"},
        "rate_limit": {"backend": "redis", "failure_mode": mode},
        "idempotency": {"backend": "redis", "failure_mode": mode},
    }
    async with make_app(**down) as (client, runtime):
        headers = await new_key(runtime)
        response = await client.post("/map", json=PAYLOAD, headers=headers)
        assert response.status_code == status
        readiness = await client.get("/ready")
        assert readiness.status_code == ready
        assert "degraded" in readiness.json()["checks"]["rate_limit"]
        if mode == "fail_open":
            idem = await client.post(
                "/map", json=PAYLOAD, headers={**headers, "idempotency-key": "k"}
            )
            assert idem.status_code == 200
            assert idem.headers["idempotency-status"] == "unrecorded"
        assert 'mapper_backend_up{backend="redis"} 0.0' in (await client.get("/metrics")).text


async def test_ready_reports_every_backend(make_app: Factory) -> None:
    async with make_app() as (client, _):
        body = (await client.get("/ready")).json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["auth"] == "enabled"
        assert body["checks"]["secrets"].startswith("env: ok")


async def test_forwarded_for_is_honoured_only_from_trusted_proxies(make_app: Factory) -> None:
    limits = {"per_ip": {"rate": 1}, "trusted_proxies": ["203.0.113.0/24"]}
    async with make_app(rate_limit=limits) as (client, _):
        # The peer (203.0.113.7) is a trusted proxy: each forwarded client has its own bucket.
        for client_address in ("198.51.100.1", "198.51.100.2"):
            headers = {"x-forwarded-for": f"{client_address}, 203.0.113.9"}
            first = await client.post("/map", json=PAYLOAD, headers=headers)
            second = await client.post("/map", json=PAYLOAD, headers=headers)
            assert (first.status_code, second.status_code) == (401, 429)
    async with make_app(rate_limit={"per_ip": {"rate": 1}}) as (client, _):
        # Untrusted peer: a forged header cannot buy a fresh bucket.
        statuses = [
            (
                await client.post("/map", json=PAYLOAD, headers={"x-forwarded-for": f"10.0.0.{n}"})
            ).status_code
            for n in range(3)
        ]
        assert statuses == [401, 429, 429]
