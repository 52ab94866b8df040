"""What the production features cost: load against `mapper serve --workers 2` with Redis.

Runs the same traffic twice — auth + Redis rate limiter + Redis idempotency on, then all
three off — each as (1) an open loop at a fixed offered rate (latency) and (2) a closed loop
of concurrent connections (capacity), and prints rps, p50/p95/p99, 5xx and errors, and the
ratios. Target (issue #3): the features cost at most 25% of throughput; zero 5xx.

It also prints the server's CPU-seconds per 1000 requests in each part (user + system time
of the uvicorn master and workers, from /proc, before and after) and their ratio. On a
machine shared with other work that figure is steadier than closed-loop capacity, which
moves with whatever else runs. redis-server's CPU is printed too (it is shared, so it may
include other clients' work).

Usage: python bench/load.py [--seconds 60] [--rate 300] [--connections 32]
Needs Redis on 127.0.0.1:6379 (uses database 14, flushed by this script).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from loadgen import (
    Stats,
    closed_loop,
    cpu_seconds,
    create_key,
    free_port,
    open_loop,
    process_tree,
    start_mapper,
    stop,
)

REDIS_URL = "redis://127.0.0.1:6379/14"
OUTPUT = {
    "results": [
        {
            "flagged": True,
            "categories": {"harassment": True, "violence": False},
            "category_scores": {"harassment": 0.82, "violence": 0.12, "hate": 0.01},
        }
    ]
}


def sender(base: str, key: str | None) -> object:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"detector": "openai-moderation", "output": OUTPUT, "tenant_id": "bench"}

    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        extra = {"idempotency-key": uuid.uuid4().hex} if i % 4 == 0 else {}
        return await client.post(f"{base}/map", json=body, headers={**headers, **extra})

    return send


def redis_server_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"redis-server") and b":6379" in cmdline:
                pids.append(int(entry))
    return pids


class Part:
    """One measured part of a phase: what the clients saw and what the servers burned."""

    def __init__(self, stats: Stats, server_cpu: float, redis_cpu: float) -> None:
        self.stats = stats
        self.server_cpu = server_cpu
        self.redis_cpu = redis_cpu

    @property
    def answered(self) -> int:
        return sum(self.stats.statuses.values())

    def cpu_per_1000(self) -> float:
        return 1000 * self.server_cpu / max(self.answered, 1)

    def redis_per_1000(self) -> float:
        return 1000 * self.redis_cpu / max(self.answered, 1)


def measured(pids: list[int], run: Callable[[], Stats]) -> Part:
    redis_pids = redis_server_pids()
    server, redis_before = cpu_seconds(pids), cpu_seconds(redis_pids)
    stats = run()
    return Part(stats, cpu_seconds(pids) - server, cpu_seconds(redis_pids) - redis_before)


def run_phase(
    name: str, env: dict[str, str], features: bool, args: argparse.Namespace
) -> tuple[Part, Part]:
    port = free_port()
    server = start_mapper(
        port, env, workers=2, log=Path(env["LLAMA_MAPPER_STATE_DIR"]) / f"{name}.log"
    )
    try:
        key = create_key(env, "bench") if features else None
        send = sender(f"http://127.0.0.1:{port}", key)
        asyncio.run(open_loop(send, args.rate, 3))  # warm-up
        pids = process_tree(server.pid)  # the uvicorn master and its workers
        fixed = measured(pids, lambda: asyncio.run(open_loop(send, args.rate, args.seconds)))
        capacity = measured(
            pids, lambda: asyncio.run(closed_loop(send, args.connections, args.seconds))
        )
        return fixed, capacity
    finally:
        stop(server)


def cpu_line(name: str, part: Part) -> str:
    return (
        f"{name:<34} server {part.cpu_per_1000():6.3f} CPU-s per 1000 requests "
        f"({part.server_cpu:6.1f} s for {part.answered} answers); "
        f"redis-server {part.redis_per_1000():.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=300, help="offered requests/s (open loop)")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    state = tempfile.mkdtemp(prefix="lm-load-")
    base_env = {**os.environ, "LLAMA_MAPPER_STATE_DIR": state}
    base_env.pop("LLAMA_MAPPER_CONFIG", None)
    on = {
        **base_env,
        "LLAMA_MAPPER_REDIS__URL": REDIS_URL,
        "LLAMA_MAPPER_RATE_LIMIT__BACKEND": "redis",
        "LLAMA_MAPPER_RATE_LIMIT__PER_KEY__RATE": "10000000",
        "LLAMA_MAPPER_RATE_LIMIT__PER_TENANT__RATE": "10000000",
        "LLAMA_MAPPER_IDEMPOTENCY__BACKEND": "redis",
    }
    off = {
        **base_env,
        "LLAMA_MAPPER_AUTH__ENABLED": "false",
        "LLAMA_MAPPER_RATE_LIMIT__ENABLED": "false",
        "LLAMA_MAPPER_IDEMPOTENCY__ENABLED": "false",
    }
    print(
        f"mapper serve --workers 2 on {os.cpu_count()} cores; {args.seconds:.0f} s per phase; "
        f"open loop {args.rate:.0f} req/s, closed loop {args.connections} connections"
    )
    fixed_on, cap_on = run_phase("features-on", on, True, args)
    fixed_off, cap_off = run_phase("features-off", off, False, args)
    print(fixed_on.stats.line("features on,  fixed rate"))
    print(fixed_off.stats.line("features off, fixed rate"))
    print(cap_on.stats.line("features on,  capacity"))
    print(cap_off.stats.line("features off, capacity"))
    rps_on = cap_on.answered / cap_on.stats.seconds
    rps_off = cap_off.answered / cap_off.stats.seconds
    print(
        f"capacity with features / without: {rps_on / rps_off:.2f} "
        f"(cost {100 * (1 - rps_on / rps_off):.1f}% of throughput; target <= 25%)"
    )
    print(
        f"fixed-rate p50 with / without: {fixed_on.stats.pct(50) / fixed_off.stats.pct(50):.2f}x, "
        f"p99 {fixed_on.stats.pct(99) / fixed_off.stats.pct(99):.2f}x"
    )
    for label, part in (
        ("features on,  fixed rate", fixed_on),
        ("features off, fixed rate", fixed_off),
        ("features on,  capacity", cap_on),
        ("features off, capacity", cap_off),
    ):
        print(cpu_line(label, part))
    for label, with_, without in (
        ("fixed rate", fixed_on, fixed_off),
        ("capacity", cap_on, cap_off),
    ):
        ratio = without.cpu_per_1000() / with_.cpu_per_1000()
        print(
            f"server CPU per request, without / with features ({label}): {ratio:.2f} "
            f"(throughput the features leave at equal CPU; cost {100 * (1 - ratio):.1f}%)"
        )
    total_5xx = sum(p.stats.fivexx for p in (fixed_on, fixed_off, cap_on, cap_off))
    print(f"5xx responses in all phases: {total_5xx}")


if __name__ == "__main__":
    main()
