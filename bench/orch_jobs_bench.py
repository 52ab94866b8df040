"""Async jobs, measured in one run on this machine, per queue backend (memory, Redis).

Through the full API (in-process ASGI transport, auth off), one in-process detector that
sleeps a fixed latency: ``--jobs`` async requests are submitted one after another, then
polled until all finished. Printed per backend:

- submit: latency of ``POST /orchestrate`` answering 202 (validation, policy check,
  sealing, store, enqueue), p50/p95;
- queue-to-done: ``finished_at - created_at`` of each job (waiting included: the jobs are
  submitted faster than ``--workers`` run them), p50/p95;
- throughput: jobs finished per second, first submission to last finish;
- sync: the same request with ``processing_mode: sync``, p50, for comparison.

Redis is the test server (127.0.0.1:6379, db 15); its row is skipped when it is absent.
Usage: python bench/orch_jobs_bench.py [--jobs 500] [--workers 8] [--latency-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import yaml

from detector_orchestration.api.app import create_app
from detector_orchestration.config import OrchSettings
from detector_orchestration.runtime import build_orch_runtime
from llama_mapper.config.settings import load_settings
from llama_mapper.storage.db.migrate import upgrade
from orch_bench import SleepyDetector, percentile

TEXT = "Please write to jane.doe@example.com about the invoice before Friday noon."
REDIS_URL = "redis://127.0.0.1:6379/15"


def _seconds(start: str, end: str) -> float:
    def parse(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


async def measure(backend: str, jobs: int, workers: int, latency: float) -> dict[str, Any]:
    prefix = f"bench:orch-jobs:{uuid.uuid4().hex}:"
    jobs_settings: dict[str, Any] = {"backend": backend, "workers": workers, "key_prefix": prefix}
    settings = OrchSettings(jobs=jobs_settings, cache={"enabled": False})
    mapper = load_settings(redis={"url": REDIS_URL})
    builtins = {"d0": lambda: SleepyDetector("d0", latency)}
    runtime = build_orch_runtime(settings, mapper, builtins=builtins)
    await upgrade(runtime.shared.engine)
    bundle = {"name": "bench", "detectors": {"required": ["d0"]},
              "decision": {"redact_labels": ["PII.*"]}}  # fmt: skip
    version = await runtime.policy_store.submit("bench", yaml.safe_dump(bundle))
    await runtime.policy_store.approve("bench", "bench", version.version)
    request = {"content": TEXT, "tenant_id": "bench", "policy_bundle": "bench"}
    transport = httpx.ASGITransport(app=create_app(runtime=runtime))
    submit: list[float] = []
    sync: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://orch") as http:
        for _ in range(50):
            started = time.perf_counter()
            response = await http.post("/orchestrate", json=request)
            sync.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        ids: list[str] = []
        first = time.perf_counter()
        for _ in range(jobs):
            started = time.perf_counter()
            response = await http.post("/orchestrate", json={**request, "processing_mode": "async"})
            submit.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
        views: dict[str, dict[str, Any]] = {}
        for job_id in ids:  # FIFO: polling in submission order waits about once per job
            while True:
                view = (await http.get(f"/jobs/{job_id}")).json()
                if view["status"] in ("succeeded", "failed"):
                    views[job_id] = view
                    break
                await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - first
    await runtime.aclose()
    if backend == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    failed = sum(v["status"] != "succeeded" for v in views.values())
    done = [_seconds(v["created_at"], v["finished_at"]) * 1000 for v in views.values()]
    return {"submit": submit, "done": done, "rate": jobs / elapsed, "sync": sync,
            "failed": failed}  # fmt: skip


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        os.environ.update(
            {
                "LLAMA_MAPPER_STATE_DIR": state,
                "LLAMA_MAPPER_AUTH__ENABLED": "false",
                "LLAMA_MAPPER_RATE_LIMIT__ENABLED": "false",
                "LLAMA_MAPPER_IDEMPOTENCY__ENABLED": "false",
                "LLAMA_MAPPER_AUDIT__ENABLED": "false",
            }
        )
        logging.disable(logging.WARNING)
        print(
            f"async jobs: {args.jobs} submitted back to back, {args.workers} workers, one "
            f"detector sleeping {args.latency_ms} ms (python {sys.version.split()[0]}, "
            f"{os.cpu_count()} cpus)"
        )
        print(
            f"{'backend':<8} {'submit p50':>10} {'p95 ms':>7} {'done p50':>9} {'p95 ms':>8} "
            f"{'jobs/s':>7} {'sync p50':>9} {'failed':>6}"
        )
        for backend in ("memory", "redis"):
            if backend == "redis" and not redis_up():
                print("redis    skipped: no Redis on 127.0.0.1:6379")
                continue
            r = await measure(backend, args.jobs, args.workers, args.latency_ms / 1000)
            print(
                f"{backend:<8} {percentile(r['submit'], 0.5):>10.3f} "
                f"{percentile(r['submit'], 0.95):>7.3f} {percentile(r['done'], 0.5):>9.1f} "
                f"{percentile(r['done'], 0.95):>8.1f} {r['rate']:>7.1f} "
                f"{percentile(r['sync'], 0.5):>9.3f} {r['failed']:>6}"
            )


if __name__ == "__main__":
    asyncio.run(main())
