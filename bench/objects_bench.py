"""Object store: latency of the operations anchors and exports use, local folder vs S3.

For each backend (the local folder, and SeaweedFS S3 from `scripts/services.sh start` when
it answers on 127.0.0.1:8333, in a bucket with Object Lock): N plain puts, N write-once
puts under retention (what an anchor costs), N gets, one listing of the N keys, and one
1 MB put (an export of ~1500 events). Prints p50/p95 per operation and ops/s; asserts
nothing. Operations run one at a time (the latency a single anchor run sees).

Usage: python bench/objects_bench.py [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from llama_mapper.storage.objects import (
    LocalObjectStore,
    ObjectStore,
    ObjectStoreError,
    S3Credentials,
    S3ObjectStore,
)

ENDPOINT = "http://127.0.0.1:8333"
BUCKET = "mapper-bench-locked"


async def _timed(n: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(name: str, times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    rate = 1000 * len(times) / sum(times)
    return f"  {name:<24} p50 {statistics.median(times):7.2f} ms  p95 {p95:7.2f} ms  {rate:8.0f}/s"


async def bench(store: ObjectStore, n: int) -> None:
    protection = await store.protection()
    print(f"{store.backend}: write-once by {protection.describe()}")
    body = b"x" * 1024
    print(_row("put 1 KB", await _timed(n, lambda i: store.put(f"bench/p/{i:06d}", body))))
    anchor = await _timed(
        n,
        lambda i: store.put(f"bench/a/{i:06d}.json", body[:450], write_once=True, retain=True),
    )
    print(_row("put write-once+retain", anchor))
    print(_row("get 1 KB", await _timed(n, lambda i: store.get(f"bench/p/{i:06d}"))))
    print(_row(f"list {n} keys", await _timed(3, lambda i: store.list("bench/a/"))))
    big = b"y" * (1 << 20)
    print(_row("put 1 MB", await _timed(5, lambda i: store.put(f"bench/big/{i}", big))))


def _s3() -> S3ObjectStore | None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="mapper-admin",
        aws_secret_access_key="mapper-admin-secret",  # SeaweedFS dev identity (loopback)
    )
    try:
        names = {b["Name"] for b in client.list_buckets()["Buckets"]}
        if BUCKET not in names:
            client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    except Exception as exc:  # no SeaweedFS running: bench the local folder only
        print(f"s3: skipped ({type(exc).__name__}); run scripts/services.sh start seaweedfs")
        return None
    return S3ObjectStore(
        bucket=BUCKET,
        credentials=lambda: S3Credentials("mapper-admin", "mapper-admin-secret", "bench"),
        endpoint_url=ENDPOINT,
        prefix=f"run-{uuid.uuid4().hex[:8]}",
        object_lock_days=1,
    )


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await bench(LocalObjectStore(Path(folder)), n)
    s3 = _s3()
    if s3 is not None:
        try:
            await bench(s3, n)
        except ObjectStoreError as exc:
            print(f"s3: failed: {exc}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(main(parser.parse_args().n))
