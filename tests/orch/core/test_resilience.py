"""Slow, failing, flapping and wrong-shape detectors on loopback: deadline, timeouts,
retries, the circuit breaker, the bulkhead, partial coverage (206) and total failure (502)."""

from __future__ import annotations

import asyncio
import time

from tests.orch.core.conftest import api, bundle_yaml, fms_spec, submit_active
from tests.orch.core.servers import DetectorServer

from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.resilience.breaker import BreakerState

TEXT = "write to jane@example.com"


async def _register(
    runtime, detectors: DetectorServer, modes: dict[str, tuple[str, float]], **spec
):  # type: ignore[no-untyped-def]
    for name, (mode, delay) in modes.items():
        await runtime.registry.add(fms_spec(name, detectors.set(name, mode, delay), **spec))
    runtime.catalog.invalidate()


def _req(bundle: str = "p", **kwargs) -> OrchestrateRequest:  # type: ignore[no-untyped-def]
    return OrchestrateRequest(content=TEXT, tenant_id="acme", policy_bundle=bundle, **kwargs)


async def test_a_failing_required_detector_gives_206_partial_coverage(
    make_runtime, detectors: DetectorServer
) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0), "broken": ("fail", 0)})
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "broken"]))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate", json={"content": TEXT, "tenant_id": "acme", "policy_bundle": "p"}
            )
    assert response.status_code == 206
    body = response.json()
    assert body["coverage"]["achieved"] == 0.5
    assert body["coverage"]["missing"] == ["broken"]
    assert body["warnings"][0]["code"] == "PARTIAL_COVERAGE"
    assert "broken" in body["warnings"][0]["message"]
    broken = next(r for r in body["detector_results"] if r["detector"] == "broken")
    assert broken["status"] == "error"
    assert broken["error"] == "detector answered HTTP 500"
    assert broken["attempts"] == 2  # one retry (retries=1 by default), 500 is retryable
    assert detectors.calls["broken"] == 2
    assert body["decision"] == "redact"  # the good detector's email still counts


async def test_all_failing_answers_502(make_runtime, detectors: DetectorServer) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"down1": ("fail", 0), "down2": ("garbage", 0)})
        await submit_active(runtime, "acme", bundle_yaml("p", ["down1", "down2"]))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate", json={"content": TEXT, "tenant_id": "acme", "policy_bundle": "p"}
            )
    assert response.status_code == 502
    body = response.json()
    assert body["error_code"] == "ALL_DETECTORS_UNAVAILABLE"
    assert body["retryable"] is True
    assert "down1 (error)" in body["message"]
    assert "down2 (error)" in body["message"]
    assert detectors.calls["down2"] == 1  # invalid JSON is not retried


async def test_wrong_shape_is_a_non_retryable_error(make_runtime, detectors) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0), "odd": ("wrong", 0)})
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "odd"]))
        outcome = await runtime.orchestrator.orchestrate(_req())
    odd = next(r for r in outcome.runs if r.name == "odd")
    assert odd.status.value == "error"
    assert odd.attempts == 1
    assert "not one list of detections" in (odd.error or "")
    assert outcome.status == 206


async def test_a_slow_detector_times_out_within_its_timeout_and_is_retried(
    make_runtime, detectors
) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0)})
        await _register(runtime, detectors, {"slow": ("slow", 1.0)}, timeout_ms=150)
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "slow"]))
        started = time.perf_counter()
        outcome = await runtime.orchestrator.orchestrate(_req())
        elapsed = time.perf_counter() - started
    slow = next(r for r in outcome.runs if r.name == "slow")
    assert slow.status.value == "timeout"
    assert slow.attempts == 2
    assert elapsed < 0.9  # two 150 ms attempts plus backoff, never the detector's 1 s
    assert outcome.body["coverage"]["missing"] == ["slow"]


async def test_the_global_deadline_caps_every_detector(make_runtime, detectors) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0)})
        await _register(runtime, detectors, {"slow": ("slow", 2.0)}, timeout_ms=5000, retries=3)
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "slow"], deadline_ms=300))
        started = time.perf_counter()
        outcome = await runtime.orchestrator.orchestrate(_req())
        elapsed = time.perf_counter() - started
    slow = next(r for r in outcome.runs if r.name == "slow")
    assert slow.status.value == "timeout"
    assert slow.attempts == 1  # the deadline left no room for a retry
    assert 0.25 < elapsed < 1.0


async def test_a_flapping_detector_succeeds_on_its_retry(make_runtime, detectors) -> None:
    async with make_runtime() as runtime:
        await _register(runtime, detectors, {"flappy": ("flap", 0)})
        await submit_active(runtime, "acme", bundle_yaml("p", ["flappy"]))
        outcome = await runtime.orchestrator.orchestrate(_req())
    run = outcome.runs[0]
    assert run.status.value == "ok"
    assert run.attempts == 2
    assert outcome.status == 200
    assert outcome.body["decision"] == "redact"


async def test_the_breaker_opens_on_failures_and_timeouts_then_probes_once(
    make_runtime, detectors
) -> None:
    async with make_runtime(
        executor={"breaker_failures": 3, "breaker_reset_seconds": 0.3, "default_retries": 0},
        cache={"enabled": False},
    ) as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0)})
        await _register(runtime, detectors, {"sick": ("fail", 0)}, retries=0, timeout_ms=100)
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "sick"]))
        breaker = runtime.executor.breaker("sick")
        await runtime.orchestrator.orchestrate(_req())  # failure 1 (HTTP 500)
        detectors.set("sick", "slow", 0.5)
        await runtime.orchestrator.orchestrate(_req())  # failure 2 (timeout)
        await runtime.orchestrator.orchestrate(_req())  # failure 3 (timeout): opens
        assert breaker.state is BreakerState.OPEN
        calls = detectors.calls["sick"]
        refused = await runtime.orchestrator.orchestrate(_req())
        sick = next(r for r in refused.runs if r.name == "sick")
        assert sick.status.value == "circuit_open"
        assert detectors.calls["sick"] == calls  # not called while open
        assert refused.body["coverage"]["missing"] == ["sick"]  # counted before filtering
        await asyncio.sleep(0.35)
        assert breaker.state is BreakerState.HALF_OPEN
        detectors.set("sick", "ok")
        # Two concurrent requests in half-open: exactly one probe goes out.
        first, second = await asyncio.gather(
            runtime.orchestrator.orchestrate(_req()), runtime.orchestrator.orchestrate(_req())
        )
        statuses = sorted(
            next(r for r in o.runs if r.name == "sick").status.value for o in (first, second)
        )
        assert statuses == ["circuit_open", "ok"]
        assert detectors.calls["sick"] == calls + 1
        assert breaker.state is BreakerState.CLOSED


async def test_a_failed_probe_reopens_the_circuit(make_runtime, detectors) -> None:
    async with make_runtime(
        executor={"breaker_failures": 1, "breaker_reset_seconds": 0.2}, cache={"enabled": False}
    ) as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0)})
        await _register(runtime, detectors, {"sick": ("fail", 0)}, retries=0)
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "sick"]))
        await runtime.orchestrator.orchestrate(_req())
        breaker = runtime.executor.breaker("sick")
        assert breaker.state is BreakerState.OPEN
        await asyncio.sleep(0.25)
        probe = await runtime.orchestrator.orchestrate(_req())
        assert next(r for r in probe.runs if r.name == "sick").status.value == "error"
        assert breaker.state is BreakerState.OPEN


async def test_the_bulkhead_caps_concurrent_calls_per_detector(make_runtime, detectors) -> None:
    async with make_runtime(executor={"bulkhead": 2}, cache={"enabled": False}) as runtime:
        await _register(runtime, detectors, {"narrow": ("slow", 0.2)}, timeout_ms=2000)
        await submit_active(runtime, "acme", bundle_yaml("p", ["narrow"], deadline_ms=5000))
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(runtime.orchestrator.orchestrate(_req()) for _ in range(4))
        )
        elapsed = time.perf_counter() - started
    assert all(o.runs[0].status.value == "ok" for o in outcomes)
    # 4 calls through 2 slots of 0.2 s each take two rounds.
    assert elapsed >= 0.38


async def test_a_full_bulkhead_is_not_the_detectors_failure(make_runtime, detectors) -> None:
    async with make_runtime(
        executor={"bulkhead": 1, "breaker_failures": 1}, cache={"enabled": False}
    ) as runtime:
        await _register(runtime, detectors, {"good": ("ok", 0)})
        await _register(runtime, detectors, {"one": ("slow", 0.4)}, timeout_ms=1000, retries=0)
        await submit_active(runtime, "acme", bundle_yaml("p", ["good", "one"]))
        await submit_active(runtime, "acme", bundle_yaml("q", ["good", "one"], deadline_ms=150))

        async def later() -> object:
            await asyncio.sleep(0.05)
            return await runtime.orchestrator.orchestrate(_req("q"))

        first, second = await asyncio.gather(runtime.orchestrator.orchestrate(_req()), later())
        one = next(r for r in second.runs if r.name == "one")  # type: ignore[attr-defined]
        breaker = runtime.executor.breaker("one")
        assert next(r for r in first.runs if r.name == "one").status.value == "ok"
        assert (one.status.value, one.error) == ("timeout", "no free slot (bulkhead full)")
        assert detectors.calls["one"] == 1
        # breaker_failures=1: one counted failure would have opened it.
        assert breaker.state is BreakerState.CLOSED
