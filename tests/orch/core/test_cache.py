"""The tenant-scoped result cache, in memory and in the real Redis: hits skip the
detectors, critical priority bypasses it, tenants and policy versions never share
entries, failures are never cached, and keys carry only a keyed hash of the content."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from tests.orch.core.conftest import TinyPhoneDetector, bundle_yaml, fms_spec, submit_active
from tests.servicecheck import require_redis

from detector_orchestration.schemas import OrchestrateRequest

TEXT = "reach me at +14155550123 or jane@example.com"


def _req(tenant: str = "acme", **kwargs) -> OrchestrateRequest:  # type: ignore[no-untyped-def]
    return OrchestrateRequest(content=TEXT, tenant_id=tenant, policy_bundle="p", **kwargs)


@pytest.fixture(params=["memory", "redis"])
def cache_settings(request: pytest.FixtureRequest, redis_prefix: str) -> dict[str, object]:
    if request.param == "redis":
        require_redis()
        return {"enabled": True, "backend": "redis", "key_prefix": redis_prefix}
    return {"enabled": True, "backend": "memory", "key_prefix": redis_prefix}


def _mapper_settings(cache_settings: dict[str, object]) -> dict[str, object]:
    if cache_settings["backend"] == "redis":
        return {"redis": {"url": require_redis()}}
    return {}


async def test_a_repeat_is_answered_from_the_cache(
    make_runtime, detectors, cache_settings, redis_client: Redis, redis_prefix: str
) -> None:
    phone = TinyPhoneDetector()
    async with make_runtime(
        builtins={"tiny-phone": lambda: phone},
        cache=cache_settings,
        mapper=_mapper_settings(cache_settings),
    ) as runtime:
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a", "tiny-phone"]))
        await submit_active(runtime, "globex", bundle_yaml("p", ["pii-a", "tiny-phone"]))
        first = await runtime.orchestrator.orchestrate(_req())
        second = await runtime.orchestrator.orchestrate(_req())
        critical = await runtime.orchestrator.orchestrate(_req(priority="critical"))
        other_tenant = await runtime.orchestrator.orchestrate(_req("globex"))
    assert (first.cache, second.cache, critical.cache, other_tenant.cache) == (
        "miss",
        "hit",
        "bypass",
        "miss",
    )
    assert second.body["findings"] == first.body["findings"]
    assert second.body["redacted_content"] == first.body["redacted_content"]
    assert all(r["cached"] for r in second.body["detector_results"])
    # first, critical and the other tenant reached the detectors; the hit did not.
    assert detectors.calls["pii-a"] == 3
    assert phone.calls == 3
    if cache_settings["backend"] == "redis":
        keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
        assert len(keys) == 2  # one per tenant
        for key in keys:
            text = key.decode()
            assert "jane" not in text
            assert "4155550123" not in text
            assert text.startswith((f"{redis_prefix}acme:p@1:", f"{redis_prefix}globex:p@1:"))
            stored = await redis_client.get(key)
            assert b"jane@example.com" not in stored
            assert b"+14155550123" not in stored


async def test_a_new_policy_version_misses_and_failures_are_not_cached(
    make_runtime, detectors
) -> None:
    async with make_runtime(cache={"enabled": True}) as runtime:
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        await runtime.registry.add(fms_spec("broken", detectors.set("broken", "fail"), retries=0))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a"]))
        assert (await runtime.orchestrator.orchestrate(_req())).cache == "miss"
        assert (await runtime.orchestrator.orchestrate(_req())).cache == "hit"
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a"], min_score=0.4))
        assert (await runtime.orchestrator.orchestrate(_req())).cache == "miss"
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a", "broken"]))
        partial = await runtime.orchestrator.orchestrate(_req())
        again = await runtime.orchestrator.orchestrate(_req())
    assert partial.status == 206
    assert again.cache == "miss"  # the partial result was not stored
    assert detectors.calls["broken"] == 2


async def test_the_content_hash_is_keyed(make_runtime) -> None:
    async with make_runtime() as runtime:
        keys = runtime.orchestrator.cache_keys
        assert keys is not None
        key = keys.key(
            tenant_id="acme",
            bundle="p",
            policy_version="3",
            detectors=["b", "a"],
            content="secret text",
            content_type="text/plain",
        )
        same_set = keys.key(
            tenant_id="acme",
            bundle="p",
            policy_version="3",
            detectors=["a", "b"],
            content="secret text",
            content_type="text/plain",
        )
    import hashlib

    plain = hashlib.sha256(b"text/plain\0secret text").hexdigest()
    assert key == same_set  # the detector set, not its order
    assert plain not in key
    assert "secret" not in key.split(":", 3)[-1]
