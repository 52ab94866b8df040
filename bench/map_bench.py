"""Mapper speed, measured in one run on this machine.

Prints:
1. in-process rules mappings per second (one core): engine only, and the full service
   path that builds the MappingResponse;
2. `/map` p50/p95 latency next to a trivial FastAPI JSON endpoint served the same way
   (uvicorn, one worker, loopback, keep-alive), and their ratio;
3. `/map/batch` items per second with 100-item batches.

Targets (issue #2, the mapping path): >= 100,000 label mappings/s; /map p50 <= 1.5x
trivial; batch >= 20,000 items/s. The HTTP figures are printed with the evidence store off
(the mapping path) and on (async, SQLite), written inline on the API's event loop and by
the writer process (audit.writer=process), so the store's overhead shows in the same run.
Next to items/s, the batch run prints the server's CPU time per item (request process, and
the evidence writer process when there is one), read from /proc: on a shared machine wall
clock rates swing with the neighbours' load, CPU per item much less.
Usage: python bench/map_bench.py [--requests 2000] [--batches 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from llama_mapper.adapters import default_registry
from llama_mapper.catalog import load_catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.service import MapperService

HERE = Path(__file__).resolve().parent
OPENAI = {
    "results": [
        {
            "flagged": True,
            "categories": {"harassment": True, "violence": False},
            "category_scores": {"harassment": 0.82, "violence": 0.12, "hate": 0.01},
        }
    ]
}
PAYLOADS = [
    {"detector": "openai-moderation", "output": OPENAI, "tenant_id": "acme"},
    {
        "detector": "presidio",
        "output": [{"entity_type": "US_SSN", "start": 3, "end": 14, "score": 0.85}],
        "tenant_id": "acme",
    },
    {"detector": "llama-guard", "output": "unsafe\nS1,S10", "tenant_id": "acme"},
    {"detector": "deberta-toxicity", "output": "toxic", "tenant_id": "acme"},
]


def in_process(seconds: float = 3.0) -> None:
    catalog = load_catalog()
    engine = MappingEngine(catalog, default_registry())
    labels = [(p.detector, key) for p in catalog.packs for key in list(p.maps)[:20]]
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for detector, label in labels:
            engine.map(detector, label)
        count += len(labels)
    rate = count / (time.perf_counter() - start)
    print(f"in-process rules, engine.map(detector, label): {rate:,.0f} label mappings/s")

    settings = load_settings()
    service = MapperService(settings, catalog)
    parsed = [service.parse_payload(p) for p in PAYLOADS]
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for payload in parsed:
            service.map_payload(payload, route="bench", request_id="r")
        count += len(parsed)
    rate = count / (time.perf_counter() - start)
    print(f"in-process full service path (vendor JSON -> MappingResponse): {rate:,.0f} payloads/s")


def evidence_in_process(rounds: int = 200) -> None:
    """CPU the evidence store costs per item on the request process, in-process (no HTTP):
    the steadiest figure on a shared machine. /map/batch records 100 items per call."""
    import asyncio

    from llama_mapper.api.evidence import record_mappings
    from llama_mapper.runtime import build_runtime
    from llama_mapper.storage.db.migrate import upgrade

    async def run(writer: str) -> None:
        os.environ["LLAMA_MAPPER_STATE_DIR"] = tempfile.mkdtemp(prefix="bench-evidence-")
        settings = load_settings(audit={"writer": writer}, auth={"enabled": False})
        service = MapperService(settings, load_catalog())
        runtime = build_runtime(settings, service=service)
        await upgrade(runtime.engine)
        if runtime.writer_process is not None:
            await runtime.writer_process.start()
        parsed = [service.parse_payload(p) for p in PAYLOADS] * 25
        mapped = [
            (p.output, service.map_payload(p, route="/map/batch", request_id="r")) for p in parsed
        ]
        child = runtime.writer_process.pid if runtime.writer_process is not None else None
        child_before = cpu_seconds(child) if child else 0.0
        start = time.process_time()
        for _ in range(rounds):
            await record_mappings(runtime, mapped)
            await asyncio.sleep(0)
        assert runtime.events is not None
        await runtime.events.stop()  # everything committed
        items = rounds * len(mapped)
        used = (time.process_time() - start) / items * 1e6
        line = f"evidence on the request process ({writer} writer): {used:.1f} us/item CPU"
        if child:
            child_us = (cpu_seconds(child) - child_before) / items * 1e6
            line += f" + writer process {child_us:.1f} us/item"
        print(line)
        await runtime.aclose()

    for writer in ("inline", "process"):
        asyncio.run(run(writer))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(target: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server on port {port} did not start")


def latencies(url: str, n: int) -> list[float]:
    samples = []
    with httpx.Client(timeout=10) as client:
        for i in range(n + 100):
            payload = PAYLOADS[i % len(PAYLOADS)]
            start = time.perf_counter()
            response = client.post(url, json=payload)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            if i >= 100:  # warm-up excluded
                samples.append(elapsed * 1000)
    return samples


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def batch_rate(url: str, batches: int, clients: int = 2) -> float:
    """Items/s the server sustains; two keep-alive clients keep it busy while the other
    waits on the network, and responses are checked without a full JSON decode."""
    body = orjson.dumps({"requests": [PAYLOADS[i % len(PAYLOADS)] for i in range(100)]})
    headers = {"content-type": "application/json"}

    def run(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(n):
                response = client.post(url, content=body, headers=headers)
                assert response.status_code == 200
                assert response.content.endswith(b'"failed":0}')

    run(10)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, [batches // clients] * clients))
    return (batches // clients) * clients * 100 / (time.perf_counter() - start)


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def over_http(requests: int, batches: int, *, evidence: str) -> None:
    """The mapping path alone (bench/load.py measures auth, rate limits and idempotency);
    with ``evidence`` ("inline" or "process") the async evidence store (SQLite) records
    every mapping too."""
    env = {
        **os.environ,
        "LLAMA_MAPPER_STATE_DIR": tempfile.mkdtemp(prefix="bench-state-"),
        "LLAMA_MAPPER_AUTH__ENABLED": "false",
        "LLAMA_MAPPER_RATE_LIMIT__ENABLED": "false",
        "LLAMA_MAPPER_IDEMPOTENCY__ENABLED": "false",
        "LLAMA_MAPPER_AUDIT__ENABLED": "false" if evidence == "off" else "true",
        "LLAMA_MAPPER_AUDIT__WRITER": "process" if evidence == "process" else "inline",
    }
    label = "evidence store off" if evidence == "off" else f"evidence store on, {evidence} writer"
    mapper_port, trivial_port = free_port(), free_port()
    mapper = serve(["--factory", "llama_mapper.api.app:create_app"], mapper_port, env)
    trivial = serve(["trivial_app:app"], trivial_port, env)
    try:
        # Interleave the two measurements so background noise hits both alike.
        mapper_ms: list[float] = []
        trivial_ms: list[float] = []
        for _ in range(4):
            trivial_ms += latencies(f"http://127.0.0.1:{trivial_port}/map", requests // 4)
            mapper_ms += latencies(f"http://127.0.0.1:{mapper_port}/map", requests // 4)
        print(f"-- {label}")
        for name, samples in (("trivial FastAPI endpoint", trivial_ms), ("/map", mapper_ms)):
            print(
                f"{name:<26} p50 {pct(samples, 50):.3f} ms  p95 {pct(samples, 95):.3f} ms "
                f"({len(samples)} requests)"
            )
        print(
            f"/map p50 ratio to trivial endpoint: {pct(mapper_ms, 50) / pct(trivial_ms, 50):.2f}x "
            f"(p95 {pct(mapper_ms, 95) / pct(trivial_ms, 95):.2f}x)"
        )
        helpers = children(mapper.pid)
        before = [cpu_seconds(pid) for pid in (mapper.pid, *helpers)]
        rate = batch_rate(f"http://127.0.0.1:{mapper_port}/map/batch", batches)
        items = (batches // 2) * 2 * 100
        # The async writer may still be flushing: let it finish before reading its CPU.
        time.sleep(1.0)
        used = [cpu_seconds(pid) - b for pid, b in zip((mapper.pid, *helpers), before, strict=True)]
        cpu = f"server CPU {used[0] / items * 1e6:.1f} us/item"
        if len(used) > 1:
            cpu += f" + writer process {sum(used[1:]) / items * 1e6:.1f} us/item"
        print(f"/map/batch, 100 items per request, 2 clients: {rate:,.0f} items/s ({cpu})")
    finally:
        for process in (mapper, trivial):
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    in_process(args.seconds)
    evidence_in_process()
    for evidence in ("off", "inline", "process"):
        over_http(args.requests, args.batches, evidence=evidence)


if __name__ == "__main__":
    main()
