"""What the model registry adds to start-up: register, cold fetch, warm (cached) check.

Prints the median of ``--runs`` runs each, on the local store (a folder) and, with
``--s3 URL``, on an S3 endpoint (the SeaweedFS of scripts/services.sh, plain bucket):
1. ``register`` of a copy of the shipped adapter (1.5 MB, 8 files), fresh version each run;
2. a cold fetch: resolve the stage, download and verify every file into an empty cache;
3. a warm start: resolve the stage and re-check the cached copy's SHA-256s (what every
   server start pays when the version is already on the host).

Usage: python bench/registry_bench.py [--runs 5] [--s3 http://127.0.0.1:8333]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path

from llama_mapper.model.artifact import CARD, DEFAULT_MODEL_DIR, read_json, write_json
from llama_mapper.model.registry import ModelRegistry
from llama_mapper.model.registry_cache import ModelCache
from llama_mapper.storage.objects import LocalObjectStore, ObjectStore, S3Credentials, S3ObjectStore

BUCKET = "mapper-test-plain"


def copy_model(root: Path, version: str) -> Path:
    folder = root / version
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    card = read_json(folder / CARD)
    card["version"] = version
    write_json(folder / CARD, card)
    return folder


async def timed(work: Awaitable[object]) -> float:
    start = time.perf_counter()
    await work
    return (time.perf_counter() - start) * 1000


async def start(registry: ModelRegistry, cache: ModelCache) -> None:
    """What a server start does: resolve the stage, fetch (or re-check) the version."""
    current = await registry.current("bench")
    assert current is not None
    await cache.fetch(registry, current)


async def bench(store: ObjectStore, root: Path, runs: int) -> dict[str, float]:
    registry = ModelRegistry(store)
    figures: dict[str, list[float]] = {"register": [], "cold fetch": [], "warm start": []}
    for n in range(runs):
        version = f"bench-{n}-{uuid.uuid4().hex[:6]}"
        folder = copy_model(root / "models", version)
        figures["register"].append(await timed(registry.register(folder)))
        await registry.promote(version, "bench")
        cache = ModelCache(root / f"cache-{n}")
        figures["cold fetch"].append(await timed(start(registry, cache)))
        figures["warm start"].append(await timed(start(registry, cache)))
    return {name: statistics.median(values) for name, values in figures.items()}


def s3_store(endpoint: str) -> S3ObjectStore:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="mapper-admin",
        aws_secret_access_key="mapper-admin-secret",
    )
    # The tests' plain bucket, under a fresh prefix: each new bucket takes volumes.
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    return S3ObjectStore(
        bucket=BUCKET,
        credentials=lambda: S3Credentials("mapper-admin", "mapper-admin-secret", "bench"),
        endpoint_url=endpoint,
        prefix=f"bench-{uuid.uuid4().hex[:8]}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--s3", default=None, help="S3 endpoint, e.g. http://127.0.0.1:8333")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        stores: dict[str, ObjectStore] = {"local": LocalObjectStore(root / "objects")}
        if args.s3:
            stores["s3"] = s3_store(args.s3)
        for name, store in stores.items():
            figures = asyncio.run(bench(store, root / name, args.runs))
            shown = ", ".join(f"{k} {v:.1f} ms" for k, v in figures.items())
            print(f"{name:<5} (median of {args.runs}): {shown}")


if __name__ == "__main__":
    main()
