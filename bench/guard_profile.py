"""CPU per request of the production features, in one process, without HTTP.

Drives the real ASGI app (features on: auth + Redis limiter + Redis idempotency; off: all
three disabled) with N concurrent requests at a time straight through its ASGI interface,
against the real Redis, and prints process CPU (user+sys) per 1000 requests for each, their
ratio, and optionally a cProfile of the features-on run. No sockets to the app, no client
in the measured process beyond a few dict builds, so the figure is the server's own work.

The app's own logs go to stderr: send them to /dev/null.
Usage: python bench/guard_profile.py [--requests 4000] [--concurrency 32] [--profile on]
Needs Redis on 127.0.0.1:6379 (uses database 14, flushed by this script).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

REDIS_URL = "redis://127.0.0.1:6379/14"
BODY = orjson.dumps(
    {
        "detector": "openai-moderation",
        "output": {
            "results": [
                {
                    "flagged": True,
                    "categories": {"harassment": True, "violence": False},
                    "category_scores": {"harassment": 0.82, "violence": 0.12, "hate": 0.01},
                }
            ]
        },
        "tenant_id": "bench",
    }
)
MAPPER = str(Path(sys.executable).with_name("mapper"))


def feature_env(state: str, features: bool) -> dict[str, str]:
    base = {"LLAMA_MAPPER_STATE_DIR": state}
    if features:
        return {
            **base,
            "LLAMA_MAPPER_REDIS__URL": REDIS_URL,
            "LLAMA_MAPPER_RATE_LIMIT__BACKEND": "redis",
            "LLAMA_MAPPER_RATE_LIMIT__PER_KEY__RATE": "10000000",
            "LLAMA_MAPPER_RATE_LIMIT__PER_TENANT__RATE": "10000000",
            "LLAMA_MAPPER_IDEMPOTENCY__BACKEND": "redis",
        }
    return {
        **base,
        "LLAMA_MAPPER_AUTH__ENABLED": "false",
        "LLAMA_MAPPER_RATE_LIMIT__ENABLED": "false",
        "LLAMA_MAPPER_IDEMPOTENCY__ENABLED": "false",
    }


def scope_for(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/map",
        "raw_path": b"/map",
        "query_string": b"",
        "headers": headers,
    }


async def one(app: Any, key: str | None, i: int, statuses: Counter[int]) -> None:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    if i % 4 == 0:
        headers.append((b"idempotency-key", uuid.uuid4().hex.encode()))
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    await app(scope_for(headers), receive, send)


async def drive(app: Any, key: str | None, requests: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            await one(app, key, i, statuses)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def measure(
    features: bool, key: str | None, args: argparse.Namespace, profile: bool
) -> tuple[float, float, Counter[int]]:
    from llama_mapper.api.app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        await drive(app, key, 300, args.concurrency)  # warm-up: caches, connections
        profiler = cProfile.Profile(time.process_time) if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        statuses = await drive(app, key, args.requests, args.concurrency)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler:
        if args.dump:
            profiler.dump_stats(f"{args.dump}.{'on' if features else 'off'}")
        stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats(args.sort)
        stats.print_stats(args.top)
    return cpu, wall, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", choices=["on", "off", "both", "none"], default="none")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--dump", help="also write the profile to DUMP.on / DUMP.off")
    parser.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds")
    parser.add_argument("--phase", choices=["on", "off", "both"], default="both")
    parser.add_argument(
        "--no-audit", action="store_true", help="evidence store off in both phases (profiling)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra LLAMA_MAPPER_* setting for the features-on phase (to isolate one feature)",
    )
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    state = tempfile.mkdtemp(prefix="lm-prof-")
    os.environ.pop("LLAMA_MAPPER_CONFIG", None)
    key: str | None = None
    per_request: dict[str, list[float]] = {"on": [], "off": []}
    phases = [p for p in ("on", "off") if args.phase in (p, "both")]
    for _ in range(args.rounds):  # alternated, so both phases see the same machine load
        for phase in phases:
            features = phase == "on"
            _set_env(feature_env(state, features), args, features)
            if features and key is None:
                key = _create_key()
            cpu, wall, statuses = asyncio.run(
                measure(features, key if features else None, args, args.profile in (phase, "both"))
            )
            per_request[phase].append(cpu / args.requests)
            codes = " ".join(f"{s}:{n}" for s, n in sorted(statuses.items()))
            print(
                f"features {phase:<3}: {1000 * cpu / args.requests:6.3f} CPU-s per 1000 requests; "
                f"wall {args.requests / wall:5.0f} req/s  [{codes}]"
            )
    if len(phases) == 2:
        on, off = min(per_request["on"]), min(per_request["off"])
        print(
            f"best of {args.rounds}: on {on * 1e6:.0f} us/request, off {off * 1e6:.0f} us/request; "
            f"features add {(on - off) * 1e6:.0f} us; CPU per request off / on: {off / on:.2f}"
        )


def _set_env(env: dict[str, str], args: argparse.Namespace, features: bool) -> None:
    for name in [n for n in os.environ if n.startswith("LLAMA_MAPPER_")]:
        del os.environ[name]
    os.environ.update(env)
    if features:
        os.environ.update(item.split("=", 1) for item in args.set)
    if args.no_audit:
        os.environ["LLAMA_MAPPER_AUDIT__ENABLED"] = "false"


def _create_key() -> str:
    command = [MAPPER, "auth", "create-key", "--tenant", "bench", "--scope", "map:write"]
    out = subprocess.run(
        [*command, "--json"], env={**os.environ}, check=True, capture_output=True, text=True
    ).stdout
    return str(orjson.loads(out)["api_key"])


if __name__ == "__main__":
    main()
