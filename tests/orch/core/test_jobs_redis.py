"""Async jobs on the real Redis: Streams with a consumer group, priorities, a crashed
worker's job reclaimed by another replica, job state with TTLs, and an outage."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, fms_spec, submit_active
from tests.orch.core.jobs_support import WEBHOOK_SECRET, wait_for_job, wait_until, webhook_receiver
from tests.servicecheck import require_redis

from detector_orchestration.jobs.redis_queue import RedisJobQueue

TEXT = "Mail jane.doe@example.com or call +14155550123 today."


def redis_jobs(prefix: str, **extra: object) -> dict[str, object]:
    return {"backend": "redis", "key_prefix": prefix, "consumer_group": "g", **extra}


async def test_a_job_runs_through_redis_and_leaves_only_its_result(
    make_runtime, redis_client: Redis, redis_prefix: str
) -> None:
    url = require_redis()
    async with make_runtime(
        builtins={"tiny-phone": TinyPhoneDetector},
        jobs=redis_jobs(redis_prefix, result_ttl_seconds=120),
        mapper={"redis": {"url": url}},
    ) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        async with api(runtime) as http:
            accepted = await http.post(
                "/orchestrate",
                json={
                    "content": TEXT,
                    "tenant_id": "acme",
                    "policy_bundle": "p",
                    "processing_mode": "async",
                },
            )
            job_id = accepted.json()["job_id"]
            done = await wait_for_job(http, job_id, {"succeeded"})
            await asyncio.sleep(0.1)  # the ack follows the final state
            key = f"{redis_prefix}job:{job_id}"
            fields = await redis_client.hkeys(key)
            ttl = await redis_client.ttl(key)
            lengths = [await redis_client.xlen(f"{redis_prefix}q:{p}") for p in
                       ("critical", "high", "normal", "low")]  # fmt: skip
            pending = await redis_client.xpending(f"{redis_prefix}q:normal", "g")
    assert accepted.status_code == 202
    assert done["result"]["redacted_content"] == (
        "Mail jane.doe@example.com or call [REDACTED:PII.Contact.Phone] today."
    )
    assert sorted(fields) == [b"doc", b"status"]  # the sealed payload is gone
    assert 0 < ttl <= 120
    assert lengths == [0, 0, 0, 0]  # acked and deleted
    assert pending["pending"] == 0


async def test_streams_are_read_in_priority_order(redis_factory, redis_prefix: str) -> None:
    require_redis()
    queue = RedisJobQueue(redis_factory(), prefix=redis_prefix, group="g", consumer="c1",
                          block_ms=50)  # fmt: skip
    for job_id, priority in [("a", "low"), ("b", "normal"), ("c", "critical"), ("d", "high"),
                             ("e", "critical"), ("f", "low")]:  # fmt: skip
        await queue.put(job_id, priority)
    assert await queue.depth() == {"critical": 2, "high": 1, "normal": 1, "low": 2}
    taken = [await queue.get() for _ in range(6)]
    assert [j.job_id for j in taken] == ["c", "e", "d", "b", "a", "f"]
    for job in taken:
        await queue.ack(job)
    assert await queue.depth() == {"critical": 0, "high": 0, "normal": 0, "low": 0}


async def test_a_crashed_workers_job_is_reclaimed_by_another(
    make_runtime, detectors, redis_factory, redis_prefix: str
) -> None:
    """Replica A takes the job and dies mid-run (its workers are torn down without an
    ack); replica B, whose reclaim threshold has passed, takes it over and finishes it."""
    url = require_redis()
    slow = detectors.set("slow", delay=1.5)
    common = {"mapper": {"redis": {"url": url}}, "executor": {"deadline_ms": 20_000}}
    async with make_runtime(
        jobs=redis_jobs(redis_prefix, consumer_name="replica-a", claim_idle_ms=600), **common
    ) as replica_a:
        await replica_a.registry.add(fms_spec("slow", slow, timeout_ms=10_000, retries=0))
        replica_a.catalog.invalidate()
        await submit_active(replica_a, "acme", bundle_yaml("p", ["slow"]))
        async with api(replica_a) as http:
            job_id = (
                await http.post(
                    "/orchestrate",
                    json={
                        "content": TEXT,
                        "tenant_id": "acme",
                        "policy_bundle": "p",
                        "processing_mode": "async",
                    },
                )
            ).json()["job_id"]
            await wait_for_job(http, job_id, {"running"})
        assert replica_a.jobs is not None
        await replica_a.jobs.stop()  # the crash: in-flight work abandoned, nothing acked
    inspect = redis_factory()
    pending = await inspect.xpending_range(f"{redis_prefix}q:normal", "g", "-", "+", 10)
    assert [p["consumer"] for p in pending] == [b"replica-a"]
    async with make_runtime(
        jobs=redis_jobs(redis_prefix, consumer_name="replica-b", claim_idle_ms=600), **common
    ) as replica_b:
        assert replica_b.jobs is not None
        await replica_b.jobs.start()
        async with api(replica_b) as http:
            done = await wait_for_job(http, job_id, {"succeeded", "failed"}, timeout=20)
            await asyncio.sleep(0.1)
            metrics = (await http.get("/metrics")).text
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2  # one crashed run, one that finished
    assert done["result"]["redacted_content"] == (
        "Mail [REDACTED:PII.Contact.Email] or call +14155550123 today."
    )
    assert 'orch_jobs_total{event="reclaimed"} 1.0' in metrics
    assert await inspect.xlen(f"{redis_prefix}q:normal") == 0


async def test_a_job_crashing_every_worker_fails_after_max_attempts(
    make_runtime, detectors, redis_factory, redis_prefix: str
) -> None:
    url = require_redis()
    slow = detectors.set("slower", delay=1.0)
    common = {"mapper": {"redis": {"url": url}}, "executor": {"deadline_ms": 20_000}}
    settings = redis_jobs(redis_prefix, claim_idle_ms=300, max_attempts=1)
    async with make_runtime(jobs=settings, **common) as replica:
        await replica.registry.add(fms_spec("slower", slow, timeout_ms=10_000, retries=0))
        replica.catalog.invalidate()
        await submit_active(replica, "acme", bundle_yaml("p", ["slower"]))
        async with api(replica) as http:
            job_id = (
                await http.post(
                    "/orchestrate",
                    json={
                        "content": TEXT,
                        "tenant_id": "acme",
                        "policy_bundle": "p",
                        "processing_mode": "async",
                    },
                )
            ).json()["job_id"]
            await wait_for_job(http, job_id, {"running"})
            assert replica.jobs is not None
            await replica.jobs.stop()
            await replica.jobs.start()  # "restarted": reclaims its own stale delivery
            done = await wait_for_job(http, job_id, {"failed", "succeeded"}, timeout=20)
    assert done["status"] == "failed"
    assert done["error"]["error_code"] == "JOB_ATTEMPTS_EXHAUSTED"
    assert done["attempts"] == 1


async def test_a_redis_outage_is_a_retryable_503(make_runtime) -> None:
    async with make_runtime(
        builtins={"tiny-phone": TinyPhoneDetector},
        jobs={"backend": "redis"},
        mapper={"redis": {"url": "redis://127.0.0.1:1/0"}},
    ) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        async with api(runtime) as http:
            submitted = await http.post(
                "/orchestrate",
                json={
                    "content": TEXT,
                    "tenant_id": "acme",
                    "policy_bundle": "p",
                    "processing_mode": "async",
                },
            )
            read = await http.get("/jobs/job_" + "a" * 32)
    assert submitted.status_code == 503, submitted.text
    assert submitted.json()["error_code"] == "BACKEND_UNAVAILABLE"
    assert submitted.json()["retryable"] is True
    assert "4155550123" not in submitted.text
    assert read.status_code == 503


async def test_a_webhook_cut_off_by_a_crash_is_sent_by_the_next_worker(
    make_runtime, redis_prefix: str, monkeypatch
) -> None:
    """Replica A finishes the job and dies while the receiver has not answered; replica B
    reclaims the delivery, sees a finished job whose webhook is pending, and sends it
    (the job itself is not run again)."""
    url = require_redis()
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_ORCH_WEBHOOK_SECRET", WEBHOOK_SECRET)
    phone = TinyPhoneDetector()
    common = {"mapper": {"redis": {"url": url}}, "builtins": {"tiny-phone": lambda: phone}}
    with webhook_receiver(hang_first=3.0) as receiver:
        async with make_runtime(
            jobs=redis_jobs(redis_prefix, consumer_name="a", claim_idle_ms=600), **common
        ) as replica_a:
            await submit_active(replica_a, "acme", bundle_yaml("p", ["tiny-phone"]))
            async with api(replica_a) as http:
                job_id = (
                    await http.post(
                        "/orchestrate",
                        json={
                            "content": "call +14155550123",
                            "tenant_id": "acme",
                            "policy_bundle": "p",
                            "processing_mode": "async",
                            "callback_url": receiver.url,
                        },
                    )
                ).json()["job_id"]
                await wait_until(lambda: len(receiver.received) == 1)  # hanging
                assert replica_a.jobs is not None
                await replica_a.jobs.stop()
        async with make_runtime(
            jobs=redis_jobs(redis_prefix, consumer_name="b", claim_idle_ms=600), **common
        ) as replica_b:
            assert replica_b.jobs is not None
            await replica_b.jobs.start()
            async with api(replica_b) as http:
                await wait_until(lambda: len(receiver.received) == 2, timeout=20)
                for _ in range(100):
                    view = (await http.get(f"/jobs/{job_id}")).json()
                    if view["webhook"]["state"] == "delivered":
                        break
                    await asyncio.sleep(0.05)
    assert view["webhook"]["state"] == "delivered"
    assert [d["status_code"] for d in view["webhook"]["deliveries"]] == [200]
    assert view["attempts"] == 1
    assert phone.calls == 1  # the job ran once; only its webhook was resumed
    assert all(r["valid"] for r in receiver.received)
