"""CPU per request of the production features, in one process, without HTTP.

Drives the real ASGI app (features on: auth + Redis limiter + Redis idempotency; off: all
three disabled) with N concurrent requests at a time straight through its ASGI interface,
against the real Redis, and prints process CPU (user+sys) per 1000 requests for each, their
ratio, and optionally a cProfile of the features-on run. No sockets to the app, no client
in the measured process beyond a few dict builds, so the figure is the server's own work.

The app's own logs go to stderr: send them to /dev/null.
Both apps live in one event loop and are driven in alternating slices, so both see the
same machine load: the median of the slice-pair ratios is steady even on a busy host.
Usage: python bench/guard_profile.py [--requests 500] [--rounds 20] [--profile on]
Needs Redis on 127.0.0.1:6379 (uses database 14, flushed by this script).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
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


def build_app(state: str, features: bool, args: argparse.Namespace) -> Any:
    from llama_mapper.api.app import create_app
    from llama_mapper.config.settings import load_settings

    _set_env(feature_env(state, features), args, features)
    return create_app(load_settings())


async def alternate(
    apps: dict[str, Any], keys: dict[str, str | None], args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, Counter[int]]]:
    """Run both apps in this loop, in alternating slices, so both see the same machine."""
    cpu: dict[str, list[float]] = {phase: [] for phase in apps}
    statuses: dict[str, Counter[int]] = {phase: Counter() for phase in apps}
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for phase, app in apps.items():
            await drive(app, keys[phase], 300, args.concurrency)  # warm-up
        profiler = cProfile.Profile(time.process_time) if args.profile != "none" else None
        for _ in range(args.rounds):
            for phase, app in apps.items():
                profiling = profiler is not None and args.profile in (phase, "both")
                started = time.process_time()
                if profiling:
                    profiler.enable()  # type: ignore[union-attr]
                statuses[phase] += await drive(app, keys[phase], args.requests, args.concurrency)
                if profiling:
                    profiler.disable()  # type: ignore[union-attr]
                cpu[phase].append((time.process_time() - started) / args.requests)
    if profiler is not None:
        if args.dump:
            profiler.dump_stats(args.dump)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(args.sort).print_stats(args.top)
    return cpu, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500, help="requests per slice")
    parser.add_argument("--rounds", type=int, default=20, help="alternating on/off slices")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", choices=["on", "off", "both", "none"], default="none")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--dump", help="also write the profile to this file")
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
    phases = [p for p in ("on", "off") if args.phase in (p, "both")]
    keys: dict[str, str | None] = {"on": None, "off": None}
    if "on" in phases:
        _set_env(feature_env(state, True), args, True)
        keys["on"] = _create_key()
    apps = {phase: build_app(state, phase == "on", args) for phase in phases}
    cpu, statuses = asyncio.run(alternate(apps, keys, args))
    for phase in phases:
        codes = " ".join(f"{s}:{n}" for s, n in sorted(statuses[phase].items()))
        print(
            f"features {phase:<3}: median {1000 * statistics.median(cpu[phase]):.3f}, "
            f"best {1000 * min(cpu[phase]):.3f} CPU-s per 1000 requests  [{codes}]"
        )
    if len(phases) == 2:
        ratios = [off / on for on, off in zip(cpu["on"], cpu["off"], strict=True)]
        on, off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        print(
            f"{args.rounds} alternating slices of {args.requests}: features add "
            f"{(on - off) * 1e6:.0f} us/request (median on {on * 1e6:.0f}, off {off * 1e6:.0f}); "
            f"CPU per request off / on: median of slice pairs {statistics.median(ratios):.2f} "
            f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.2f}-"
            f"{statistics.quantiles(ratios, n=4)[2]:.2f})"
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
