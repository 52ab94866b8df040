"""A job's content never sits in Redis in clear, nor reaches logs or metrics.

The Redis keys and values under the jobs prefix are read back while a job waits in the
queue (the sealed request is there) and after it finished (the sealed redacted text is),
and searched for canaries, including one no detector finds, which the redacted text keeps
and which the tenant's own read of the job must still show.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, fms_spec, submit_active
from tests.orch.core.jobs_support import wait_for_job, wait_until, webhook_receiver
from tests.orch.core.test_privacy import RawRecords
from tests.servicecheck import require_redis

KEPT = "zebra-umbrella-CANARY"  # found by no detector: survives redaction
CANARIES = ["jane.canary@example.com", "+14155550199", KEPT]
CONTENT = f"mail {CANARIES[0]} or call {CANARIES[1]} about the {KEPT}"


async def _dump(redis: Redis, prefix: str) -> str:
    out: list[str] = []
    async for key in redis.scan_iter(match=f"{prefix}*"):
        kind = (await redis.type(key)).decode()
        value: Any
        if kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = await redis.get(key) if kind == "string" else kind
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


async def test_job_content_never_sits_in_redis_or_logs(
    make_runtime, detectors, redis_client: Redis, redis_prefix: str, monkeypatch
) -> None:
    url = require_redis()
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_ORCH_WEBHOOK_SECRET", "whsec-privacy")
    raw = RawRecords()
    root = logging.getLogger()
    root.addHandler(raw)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        async with make_runtime(
            builtins={"tiny-phone": TinyPhoneDetector},
            jobs={
                "backend": "redis",
                "key_prefix": redis_prefix,
                "workers": 1,
                "claim_idle_ms": 5000,
            },
            cache={"backend": "redis", "key_prefix": f"{redis_prefix}cache:"},
            mapper={"redis": {"url": url}},
            executor={"deadline_ms": 20_000},
        ) as runtime:
            slow = detectors.set("slow", delay=1.0)
            await runtime.registry.add(fms_spec("slow", slow, timeout_ms=10_000, retries=0))
            await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
            await runtime.registry.add(fms_spec("down", detectors.set("down", "fail"), retries=0))
            runtime.catalog.invalidate()
            await submit_active(runtime, "acme", bundle_yaml("slow", ["slow"]))
            await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a", "tiny-phone"]))
            await submit_active(runtime, "acme", bundle_yaml("dead", ["down"]))
            base = {"content": CONTENT, "tenant_id": "acme", "processing_mode": "async"}
            with webhook_receiver("whsec-privacy") as receiver:
                async with api(runtime) as http:
                    blocker = await http.post(
                        "/orchestrate", json={**base, "policy_bundle": "slow"}
                    )
                    await wait_for_job(http, blocker.json()["job_id"], {"running"})
                    queued = [
                        (
                            await http.post(
                                "/orchestrate",
                                json={
                                    **base,
                                    "policy_bundle": bundle,
                                    "callback_url": receiver.url,
                                },
                            )
                        ).json()["job_id"]
                        for bundle in ("p", "dead")
                    ]
                    while_queued = await _dump(redis_client, redis_prefix)
                    views = [await wait_for_job(http, j, {"succeeded", "failed"}) for j in queued]
                    await wait_until(lambda: len(receiver.received) == 2)
                    after = await _dump(redis_client, redis_prefix)
                    metrics = (await http.get("/metrics")).text
    finally:
        root.removeHandler(raw)
        root.setLevel(previous)
    done, failed = views
    # The sinks were really exercised: the sealed payload and sealed result were there.
    assert "payload" in while_queued
    assert "sealed_redacted" in after
    assert f"{redis_prefix}q:normal" in while_queued
    assert any("job finished" in t for t in raw.texts)
    assert done["result"]["redacted_content"] == (
        f"mail [REDACTED:PII.Contact.Email] or call [REDACTED:PII.Contact.Phone] about the {KEPT}"
    )
    assert failed["error"]["error_code"] == "ALL_DETECTORS_UNAVAILABLE"
    sinks = {
        "redis while queued": while_queued,
        "redis after": after,
        "logs": "\n".join(raw.texts),
        "metrics": metrics,
        "failed job": repr(failed),
    }
    for name, text in sinks.items():
        for canary in CANARIES:
            assert canary not in text, f"{canary!r} leaked into {name}"
