"""Orchestration overhead, measured in one run on this machine.

overhead = end-to-end latency - the slowest detector's latency (of that same request),
with 1, 5 and 20 detectors, at p50/p95. Detectors are in-process fakes that sleep a fixed
latency and answer in the regex-pii pack's native shape with one span each, so what is
left is orch itself: planning, the executor (breaker, bulkhead, deadline), the in-process
mapper (one mapping per detector plus its span labels), conflicts, the decision and the
redaction. Two paths are measured:

- service: ``Orchestrator.orchestrate`` called directly;
- api: ``POST /orchestrate`` through the full FastAPI app (edge middleware, metrics,
  validation, the request guard) over an in-process ASGI transport, auth off.

The result cache is bypassed (priority critical) so every request runs its detectors;
the evidence store is off (``LLAMA_MAPPER_AUDIT__ENABLED=false``), as it is measured by
bench/store_bench.py. Target (issue #5): overhead p95 < 5 ms with 5 detectors.

Then the built-in detectors' throughput on 1 KB and 10 KB texts (the table of
bench/orch_detectors_bench.py, which has more options; ``--no-builtins`` skips it).
Usage: python bench/orch_bench.py [--requests 300] [--latency-ms 5] [--builtin-seconds 1]
       [--no-model] [--no-builtins]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from detector_orchestration.api.app import create_app
from detector_orchestration.config import OrchSettings
from detector_orchestration.detectors.base import DetectorOutput, Span
from detector_orchestration.runtime import build_orch_runtime
from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.config.settings import load_settings
from llama_mapper.storage.db.migrate import upgrade
from orch_detectors_bench import built_ins, throughput_table

TEXT = "Please write to jane.doe@example.com about the invoice before Friday noon."
EMAIL = (16, 36)


class SleepyDetector:
    """Sleeps ``latency`` seconds, then reports the email span as regex-pii would."""

    pack = "regex-pii"
    version = "bench@1"
    content_types = frozenset({"text/plain"})

    def __init__(self, name: str, latency: float) -> None:
        self.name = name
        self.latency = latency

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        await asyncio.sleep(self.latency)
        start, end = EMAIL
        output = [{"label": "email", "start": start, "end": end, "score": 0.97}]
        return DetectorOutput(output, (Span(start, end, "email", 0.97),))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(n: int, requests: int, latency: float) -> dict[str, list[float]]:
    names = [f"d{i:02d}" for i in range(n)]
    builtins = {name: (lambda name=name: SleepyDetector(name, latency)) for name in names}
    settings = OrchSettings(executor={"deadline_ms": 5000, "default_timeout_ms": 2000})
    runtime = build_orch_runtime(settings, load_settings(), builtins=builtins)
    await upgrade(runtime.shared.engine)
    bundle = {
        "name": "bench",
        "detectors": {"required": names},
        "decision": {"redact_labels": ["PII.*"], "block_labels": ["SECRET.*"]},
    }
    version = await runtime.policy_store.submit("bench", yaml.safe_dump(bundle))
    await runtime.policy_store.approve("bench", "bench", version.version)
    request = OrchestrateRequest(
        content=TEXT, tenant_id="bench", policy_bundle="bench", priority="critical"
    )
    out: dict[str, list[float]] = {"service": [], "api": []}
    for _ in range(20):  # warm-up: policy cache, mapper state, code paths
        await runtime.orchestrator.orchestrate(request)
    for _ in range(requests):
        started = time.perf_counter()
        outcome = await runtime.orchestrator.orchestrate(request)
        total = (time.perf_counter() - started) * 1000
        assert outcome.body["decision"] == "redact", outcome.body
        out["service"].append(total - max(run.latency_ms for run in outcome.runs))
    app = create_app(runtime=runtime)
    body = request.model_dump_json().encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orch") as http:
        headers = {"content-type": "application/json"}
        for _ in range(20):
            await http.post("/orchestrate", content=body, headers=headers)
        for _ in range(requests):
            started = time.perf_counter()
            response = await http.post("/orchestrate", content=body, headers=headers)
            total = (time.perf_counter() - started) * 1000
            answer: dict[str, Any] = response.json()
            assert response.status_code == 200, response.text
            slowest = max(r["latency_ms"] for r in answer["detector_results"])
            out["api"].append(total - slowest)
    await runtime.aclose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--builtin-seconds", type=float, default=1.0, help="per detector and size")
    parser.add_argument(
        "--no-model", action="store_true", help="built-ins without their models only"
    )
    parser.add_argument("--no-builtins", action="store_true", help="overhead only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        os.environ.update(
            {
                "LLAMA_MAPPER_STATE_DIR": str(Path(state)),
                "LLAMA_MAPPER_AUTH__ENABLED": "false",
                "LLAMA_MAPPER_RATE_LIMIT__ENABLED": "false",
                "LLAMA_MAPPER_IDEMPOTENCY__ENABLED": "false",
                "LLAMA_MAPPER_AUDIT__ENABLED": "false",
            }
        )
        import logging

        logging.disable(logging.WARNING)  # "AUTHENTICATION DISABLED" and friends
        print(
            f"orch overhead = end-to-end - slowest detector; {args.requests} sequential "
            f"requests per row, detectors sleep {args.latency_ms} ms (python "
            f"{sys.version.split()[0]}, {os.cpu_count()} cpus)"
        )
        print(f"{'detectors':>9}  {'path':<8} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
        for n in (1, 5, 20):
            figures = await measure(n, args.requests, args.latency_ms / 1000)
            for path, values in figures.items():
                print(
                    f"{n:>9}  {path:<8} {percentile(values, 0.5):>8.3f} "
                    f"{percentile(values, 0.95):>8.3f} {statistics.fmean(values):>8.3f}"
                )
        print("target: overhead p95 < 5 ms with 5 detectors")
        if not args.no_builtins:
            print("\nbuilt-in detector throughput (sequential, one event loop)")
            detectors = built_ins(no_model=args.no_model)
            await throughput_table(detectors, args.builtin_seconds, min_runs=3)


if __name__ == "__main__":
    asyncio.run(main())
