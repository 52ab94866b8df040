"""What the production features cost: load against `mapper serve --workers 2` with Redis.

Runs the same traffic twice — auth + Redis rate limiter + Redis idempotency on, then all
three off — each as (1) an open loop at a fixed offered rate (latency) and (2) a closed loop
of concurrent connections (capacity), and prints rps, p50/p95/p99, 5xx and errors, and the
ratios. Target (issue #3): the features cost at most 25% of throughput; zero 5xx.

Usage: python bench/load.py [--seconds 60] [--rate 300] [--connections 32]
Needs Redis on 127.0.0.1:6379 (uses database 14, flushed by this script).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import httpx

from loadgen import Stats, closed_loop, create_key, free_port, open_loop, start_mapper, stop

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


def run_phase(
    name: str, env: dict[str, str], features: bool, args: argparse.Namespace
) -> tuple[Stats, Stats]:
    port = free_port()
    server = start_mapper(
        port, env, workers=2, log=Path(env["LLAMA_MAPPER_STATE_DIR"]) / f"{name}.log"
    )
    try:
        key = create_key(env, "bench") if features else None
        send = sender(f"http://127.0.0.1:{port}", key)
        asyncio.run(open_loop(send, args.rate, 3))  # warm-up
        fixed = asyncio.run(open_loop(send, args.rate, args.seconds))
        capacity = asyncio.run(closed_loop(send, args.connections, args.seconds))
        return fixed, capacity
    finally:
        stop(server)


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
    print(fixed_on.line("features on,  fixed rate"))
    print(fixed_off.line("features off, fixed rate"))
    print(cap_on.line("features on,  capacity"))
    print(cap_off.line("features off, capacity"))
    rps_on = sum(cap_on.statuses.values()) / cap_on.seconds
    rps_off = sum(cap_off.statuses.values()) / cap_off.seconds
    print(
        f"capacity with features / without: {rps_on / rps_off:.2f} "
        f"(cost {100 * (1 - rps_on / rps_off):.1f}% of throughput; target <= 25%)"
    )
    print(
        f"fixed-rate p50 with / without: {fixed_on.pct(50) / fixed_off.pct(50):.2f}x, "
        f"p99 {fixed_on.pct(99) / fixed_off.pct(99):.2f}x"
    )
    total_5xx = sum(s.fivexx for s in (fixed_on, fixed_off, cap_on, cap_off))
    print(f"5xx responses in all phases: {total_5xx}")


if __name__ == "__main__":
    main()
