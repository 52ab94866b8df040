"""Async jobs on the in-process backend (the embedded default), through the real API,
with real loopback detector servers and a real webhook receiver."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, fms_spec, submit_active
from tests.orch.core.jobs_support import (
    WEBHOOK_SECRET,
    stable,
    wait_for_job,
    wait_until,
    webhook_receiver,
)

from detector_orchestration.jobs import verify_signature
from detector_orchestration.jobs.queue import MemoryJobQueue
from detector_orchestration.jobs.webhook import signature_header

TEXT = "Mail jane.doe@example.com or call +14155550123 today."


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_ORCH_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return WEBHOOK_SECRET


async def test_an_async_request_answers_202_and_its_job_the_sync_answer(
    make_runtime, detectors
) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        await runtime.registry.add(fms_spec("down", detectors.set("down", "fail"), retries=0))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a", "tiny-phone"]))
        await submit_active(runtime, "acme", bundle_yaml("partial", ["pii-a", "down"]))
        request = {"content": TEXT, "tenant_id": "acme", "policy_bundle": "p"}
        async with api(runtime) as http:
            sync = await http.post("/orchestrate", json=request)
            accepted = await http.post("/orchestrate", json={**request, "processing_mode": "async"})
            job_id = accepted.json()["job_id"]
            done = await wait_for_job(http, job_id, {"succeeded", "failed"})
            partial = await http.post(
                "/orchestrate",
                json={**request, "policy_bundle": "partial", "processing_mode": "async"},
            )
            partial_done = await wait_for_job(http, partial.json()["job_id"], {"succeeded"})
            metrics = (await http.get("/metrics")).text
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {
        "job_id": job_id,
        "status": "queued",
        "links": {"self": f"/jobs/{job_id}"},
    }
    assert accepted.headers["location"] == f"/jobs/{job_id}"
    assert done["status"] == "succeeded"
    assert done["result_status"] == 200
    assert done["attempts"] == 1
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert stable(done["result"]) == stable(sync.json())
    assert done["result"]["redacted_content"] is not None
    assert done["result"]["request_id"] == job_id
    assert done["webhook"] == {"state": "none", "deliveries": []}
    assert partial_done["result_status"] == 206
    assert partial_done["result"]["warnings"][0]["code"] == "PARTIAL_COVERAGE"
    assert 'orch_jobs_total{event="succeeded"} 2.0' in metrics
    assert "orch_jobs_queue_depth" in metrics


async def test_priorities_order_the_in_process_queue() -> None:
    queue = MemoryJobQueue()
    for job_id, priority in [("a", "low"), ("b", "normal"), ("c", "critical"), ("d", "high"),
                             ("e", "critical"), ("f", "low")]:  # fmt: skip
        await queue.put(job_id, priority)
    assert (await queue.depth())["critical"] == 2
    order = [(await queue.get()).job_id for _ in range(6)]
    assert order == ["c", "e", "d", "b", "a", "f"]


async def test_cancel_queued_and_running_jobs(make_runtime, detectors) -> None:
    async with make_runtime(jobs={"workers": 1}, executor={"deadline_ms": 20_000}) as runtime:
        url = detectors.set("slow", delay=1.0)
        await runtime.registry.add(fms_spec("slow", url, timeout_ms=10_000, retries=0))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["slow"]))
        request = {"content": TEXT, "tenant_id": "acme", "policy_bundle": "p",
                   "processing_mode": "async"}  # fmt: skip
        async with api(runtime) as http:
            running = (await http.post("/orchestrate", json=request)).json()["job_id"]
            queued = (await http.post("/orchestrate", json=request)).json()["job_id"]
            await wait_for_job(http, running, {"running"})
            assert (await http.get(f"/jobs/{queued}")).json()["status"] == "queued"
            cancel_queued = await http.delete(f"/jobs/{queued}")
            again = await http.delete(f"/jobs/{queued}")
            cancel_running = await http.delete(f"/jobs/{running}")
            await wait_until(lambda: detectors.calls["slow"] >= 1)
            await asyncio.sleep(1.3)  # the running job's detector answers meanwhile
            after = (await http.get(f"/jobs/{running}")).json()
            later = (await http.get(f"/jobs/{queued}")).json()
    assert cancel_queued.status_code == 200, cancel_queued.text
    assert cancel_queued.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["error_code"] == "JOB_ALREADY_FINISHED"
    assert cancel_running.json()["status"] == "cancelled"
    assert after["status"] == "cancelled"
    assert after["result"] is None
    assert later["status"] == "cancelled"
    assert later["attempts"] == 0
    assert detectors.calls["slow"] == 1


async def test_bad_job_requests_get_documented_errors(make_runtime) -> None:
    async with make_runtime(
        builtins={"tiny-phone": TinyPhoneDetector},
        jobs={"webhook_allowed_hosts": ["hooks.example.com", "*.acme.test"]},
    ) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        base = {"content": TEXT, "tenant_id": "acme", "policy_bundle": "p",
                "processing_mode": "async"}  # fmt: skip
        async with api(runtime) as http:
            answers = {
                "unknown job": await http.get("/jobs/job_" + "0" * 32),
                "malformed id": await http.get("/jobs/../etc"),
                "odd id": await http.get("/jobs/%F0%9F%98%80"),
                "cancel unknown": await http.delete("/jobs/job_" + "1" * 32),
                "ftp callback": await http.post(
                    "/orchestrate", json={**base, "callback_url": "ftp://hooks.example.com/x"}
                ),
                "no host": await http.post(
                    "/orchestrate", json={**base, "callback_url": "http://"}
                ),
                "credentials": await http.post(
                    "/orchestrate",
                    json={**base, "callback_url": "https://u:pw@hooks.example.com/x"},
                ),
                "bad port": await http.post(
                    "/orchestrate",
                    json={**base, "callback_url": "https://hooks.example.com:99999/"},
                ),
                "sync callback": await http.post(
                    "/orchestrate",
                    json={
                        **base,
                        "processing_mode": "sync",
                        "callback_url": "https://hooks.example.com/x",
                    },
                ),
                "host not allowed": await http.post(
                    "/orchestrate", json={**base, "callback_url": "https://evil.example.org/x"}
                ),
                "unknown policy": await http.post(
                    "/orchestrate", json={**base, "policy_bundle": "nope"}
                ),
            }
            allowed = await http.post(
                "/orchestrate", json={**base, "callback_url": "https://a.acme.test/x"}
            )
            other_method = await http.put("/jobs/job_" + "0" * 32)
    expected = {
        "unknown job": (404, "JOB_NOT_FOUND"),
        "malformed id": (404, None),
        "odd id": (404, "JOB_NOT_FOUND"),
        "cancel unknown": (404, "JOB_NOT_FOUND"),
        "ftp callback": (422, "INVALID_REQUEST"),
        "no host": (422, "INVALID_REQUEST"),
        "credentials": (422, "INVALID_REQUEST"),
        "bad port": (422, "INVALID_REQUEST"),
        "sync callback": (422, "INVALID_REQUEST"),
        "host not allowed": (422, "CALLBACK_NOT_ALLOWED"),
        "unknown policy": (422, "POLICY_NOT_FOUND"),
    }
    for name, (status, code) in expected.items():
        response = answers[name]
        assert response.status_code == status, (name, response.text)
        if code is not None:
            body = response.json()
            assert set(body) == {"error_code", "message", "request_id", "retryable"}, name
            assert body["error_code"] == code, name
            assert "pw@" not in body["message"]
            assert "evil" not in body["message"]
    assert "callback_url" in answers["ftp callback"].json()["message"]
    assert allowed.status_code == 202
    assert other_method.status_code == 405
    assert other_method.headers["allow"] == "GET, DELETE"


async def test_a_signed_webhook_is_retried_until_delivered(
    make_runtime, webhook_secret, monkeypatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_ORCH_WEBHOOK_SECRET_GLOBEX", "whsec-globex-own")
    async with make_runtime(
        builtins={"tiny-phone": TinyPhoneDetector},
        jobs={"webhook_backoff_base_ms": 20, "webhook_backoff_max_ms": 100},
    ) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        await submit_active(runtime, "globex", bundle_yaml("p", ["tiny-phone"]))
        with (
            webhook_receiver(fail_first=2) as flaky,
            webhook_receiver("whsec-globex-own") as own,
            webhook_receiver(fail_status=400, fail_first=99) as refusing,
        ):
            async with api(runtime) as http:
                base = {"content": "call +14155550123", "policy_bundle": "p",
                        "processing_mode": "async"}  # fmt: skip
                first = await http.post(
                    "/orchestrate", json={**base, "tenant_id": "acme", "callback_url": flaky.url}
                )
                second = await http.post(
                    "/orchestrate", json={**base, "tenant_id": "globex", "callback_url": own.url}
                )
                third = await http.post(
                    "/orchestrate",
                    json={**base, "tenant_id": "acme", "callback_url": refusing.url},
                )
                jobs = [r.json()["job_id"] for r in (first, second, third)]
                await wait_until(lambda: len(flaky.received) == 3 and len(own.received) == 1)
                await wait_until(lambda: len(refusing.received) == 1)
                views = []
                for job_id in jobs:
                    for _ in range(100):
                        view = (await http.get(f"/jobs/{job_id}")).json()
                        if view["webhook"]["state"] in ("delivered", "failed"):
                            break
                        await asyncio.sleep(0.05)
                    views.append(view)
    flaky_view, own_view, refused_view = views
    assert [d["status_code"] for d in flaky_view["webhook"]["deliveries"]] == [503, 503, 200]
    assert flaky_view["webhook"]["state"] == "delivered"
    assert all(r["valid"] for r in flaky.received)  # every attempt correctly signed
    delivered = flaky.received[-1]
    body = orjson.loads(delivered["body"])
    assert body["job_id"] == jobs[0]
    assert body["status"] == "succeeded"
    assert body["result"]["redacted_content"] == "call [REDACTED:PII.Contact.Phone]"
    assert body["result_status"] == 200
    assert delivered["headers"]["x-orch-job-id"] == jobs[0]
    assert delivered["headers"]["x-orch-delivery-attempt"] == "3"
    # The per-tenant secret signs globex's webhook; the global one would not verify.
    assert own.verified
    assert own_view["webhook"]["state"] == "delivered"
    header = own.received[0]["headers"]["x-orch-signature"]
    assert not verify_signature(WEBHOOK_SECRET, header, own.received[0]["body"])
    # A 4xx other than 408/425/429 is final: one attempt only.
    assert refused_view["webhook"]["state"] == "failed"
    assert [d["status_code"] for d in refused_view["webhook"]["deliveries"]] == [400]


def test_the_signature_helper_checks_secret_body_and_age() -> None:
    body = b'{"job_id": "job_x"}'
    header = signature_header(["s3cret"], body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("s3cret", header, body, now=1_700_000_100)
    assert not verify_signature("other", header, body, now=1_700_000_100)
    assert not verify_signature("s3cret", header, body + b" ", now=1_700_000_100)
    assert not verify_signature("s3cret", header, body, now=1_700_000_000 + 301)  # replayed
    assert not verify_signature("s3cret", "garbage", body)
    assert not verify_signature("s3cret", "t=abc,v1=zz", body)
    rotated = signature_header(["new", "s3cret"], body, 1_700_000_000)
    assert verify_signature("s3cret", rotated, body, now=1_700_000_000)


async def test_a_batch_can_queue_some_items(make_runtime) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        items = [
            {"content": "call +14155550123", "tenant_id": "acme", "policy_bundle": "p"},
            {
                "content": "call +14155550123",
                "tenant_id": "acme",
                "policy_bundle": "p",
                "processing_mode": "async",
                "priority": "high",
            },
            {
                "content": "x",
                "tenant_id": "acme",
                "policy_bundle": "nope",
                "processing_mode": "async",
            },
        ]
        async with api(runtime) as http:
            response = await http.post("/orchestrate/batch", json={"requests": items})
            body = response.json()
            job = await wait_for_job(http, body["results"][1]["job_id"], {"succeeded"})
    assert response.status_code == 200, response.text
    assert (body["succeeded"], body["queued"], body["failed"]) == (1, 1, 1)
    assert body["results"][0]["decision"] == "redact"
    assert body["results"][1]["status"] == "queued"
    assert body["results"][2]["error"]["error_code"] == "POLICY_NOT_FOUND"
    assert job["priority"] == "high"
    assert job["result"]["redacted_content"] == body["results"][0]["redacted_content"]


async def test_an_idempotent_submission_replays_the_same_job(make_runtime) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        request = {"content": "hello", "tenant_id": "acme", "policy_bundle": "p",
                   "processing_mode": "async"}  # fmt: skip
        async with api(runtime) as http:
            first = await http.post("/orchestrate", json=request, headers={"Idempotency-Key": "k"})
            second = await http.post("/orchestrate", json=request, headers={"Idempotency-Key": "k"})
    assert first.status_code == second.status_code == 202
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json()["job_id"] == first.json()["job_id"]
    assert second.headers["location"] == first.headers["location"]


async def test_jobs_can_be_disabled(make_runtime) -> None:
    async with make_runtime(jobs={"enabled": False}) as runtime, api(runtime) as http:
        submitted = await http.post(
            "/orchestrate",
            json={"content": "x", "tenant_id": "acme", "processing_mode": "async"},
        )
        read = await http.get("/jobs/job_" + "0" * 32)
    assert submitted.status_code == read.status_code == 501
    assert submitted.json()["error_code"] == "JOBS_DISABLED"


async def test_a_sealed_payload_opens_only_for_its_tenant_and_job(orch_env) -> None:
    from detector_orchestration.jobs.sealing import PayloadSealer
    from llama_mapper.config.settings import load_settings
    from llama_mapper.crypto import DecryptionError, LocalKeyWrapper
    from llama_mapper.secrets import provider_from_settings

    secrets = provider_from_settings(load_settings().secrets, orch_env / "secrets")
    sealer = PayloadSealer(LocalKeyWrapper(secrets, "orch_jobs_kek"))
    sealed = await sealer.seal("acme", "job_1", "request", {"content": TEXT})
    assert TEXT not in sealed
    assert await sealer.open("acme", "job_1", "request", sealed) == {"content": TEXT}
    for tenant, job_id in [("globex", "job_1"), ("acme", "job_2")]:
        with pytest.raises(DecryptionError):
            await sealer.open(tenant, job_id, "request", sealed)
    with pytest.raises(DecryptionError):
        await sealer.open("acme", "job_1", "request", sealed.replace('"ct":"', '"ct":"AA'))
