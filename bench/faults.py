"""Faults under load: Redis stopped and restarted, a replica killed, hostile clients.

Two `mapper serve` replicas share one Redis (a private redis-server with an append-only
file, so a restart keeps idempotency records) and one key database. While a good client
maps for tenant-a across both replicas (failing over on connection errors, a fifth of its
requests with an Idempotency-Key), a hostile client sends malformed and oversized bodies,
wrong keys and spoofed tenants. Timeline: Redis stops at 6 s and returns at 12 s; replica 2
is SIGKILLed at 18 s. Afterwards every recorded idempotent answer is replayed.

Prints what each client saw. Expected: no 5xx, nothing served for the wrong tenant, no
lost idempotent replay once Redis is back.
Usage: python bench/faults.py [--seconds 26] [--rate 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from loadgen import create_key, free_port, start_mapper, stop

BODY = {"detector": "presidio", "output": "US_SSN|EMAIL_ADDRESS", "tenant_id": "tenant-a"}
SPOOFED_BODY = {**BODY, "tenant_id": "tenant-b"}
LEGACY_BODY = {"detector": "presidio", "output": "US_SSN"}  # no tenant: the header decides


class Redis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.folder), "--appendonly", "yes",
             "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(50):
            ping = ["redis-cli", "-p", str(self.port), "ping"]
            if subprocess.run(ping, capture_output=True, text=True, check=False).stdout == "PONG\n":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        shutdown = ["redis-cli", "-p", str(self.port), "shutdown"]
        subprocess.run(shutdown, capture_output=True, check=False)
        if self.process is not None:
            self.process.wait(timeout=10)


class GoodClient:
    def __init__(self, bases: list[str], key: str) -> None:
        self.bases = bases
        self.headers = {"authorization": f"Bearer {key}"}
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self.failovers = 0
        self.wrong_tenant = 0
        self.unrecorded = 0
        self.recorded: dict[str, bytes] = {}

    async def one(self, client: httpx.AsyncClient, i: int) -> None:
        idem = uuid.uuid4().hex if i % 5 == 0 else None
        headers = {**self.headers, **({"idempotency-key": idem} if idem else {})}
        for attempt, base in enumerate(self.bases[i % 2 :] + self.bases[: i % 2]):
            try:
                response = await client.post(f"{base}/map", json=BODY, headers=headers)
            except httpx.TransportError:
                self.connection_errors += 1
                continue
            if attempt:
                self.failovers += 1
            self.statuses[response.status_code] += 1
            if response.status_code == 200:
                if response.json()["provenance"]["tenant_id"] != "tenant-a":
                    self.wrong_tenant += 1
                if idem and response.headers.get("idempotency-status") == "unrecorded":
                    self.unrecorded += 1
                elif idem:
                    self.recorded[idem] = response.content
            return


class HostileClient:
    def __init__(self, bases: list[str], key_a: str) -> None:
        self.bases = bases
        self.key_a = key_a
        self.by_kind: dict[str, Counter[int]] = {}
        self.served_wrong_tenant = 0
        self.connection_errors = 0

    async def one(self, client: httpx.AsyncClient, i: int) -> None:
        base = self.bases[i % len(self.bases)]
        bearer_a = {"authorization": f"Bearer {self.key_a}", "content-type": "application/json"}
        kinds = {
            "malformed": (b"{not json", bearer_a),
            "oversized": (b'{"x": "' + b"a" * 100_000 + b'"}', bearer_a),
            "wrong key": (json.dumps(BODY).encode(), {"authorization": "Bearer lmk_nope_nope",
                                                       "content-type": "application/json"}),
            "no key": (json.dumps(BODY).encode(), {"content-type": "application/json"}),
            "spoofed body tenant": (json.dumps(SPOOFED_BODY).encode(), bearer_a),
            "spoofed X-Tenant-ID": (json.dumps(LEGACY_BODY).encode(),
                                    {**bearer_a, "x-tenant-id": "tenant-b"}),
        }  # fmt: skip
        kind = list(kinds)[i % len(kinds)]
        content, headers = kinds[kind]
        try:
            response = await client.post(f"{base}/map", content=content, headers=headers)
        except httpx.TransportError:
            self.connection_errors += 1
            return
        self.by_kind.setdefault(kind, Counter())[response.status_code] += 1
        if kind.startswith("spoofed") and response.status_code == 200:
            self.served_wrong_tenant += 1


async def drive(client_obj: GoodClient | HostileClient, rate: float, seconds: float) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        tasks = []
        start = time.perf_counter()
        i = 0
        while (now := time.perf_counter() - start) < seconds:
            while i < int(now * rate):
                tasks.append(asyncio.create_task(client_obj.one(client, i)))
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)


async def timeline(redis: Redis, replica2: subprocess.Popen[bytes], events: list[str]) -> None:
    start = time.perf_counter()

    async def at(t: float) -> None:
        await asyncio.sleep(max(0.0, t - (time.perf_counter() - start)))

    await at(6)
    await asyncio.to_thread(redis.stop)
    events.append(f"{time.perf_counter() - start:5.1f} s  Redis stopped")
    await at(12)
    await asyncio.to_thread(redis.start)
    events.append(f"{time.perf_counter() - start:5.1f} s  Redis started again (AOF kept)")
    await at(18)
    os.killpg(replica2.pid, signal.SIGKILL)
    events.append(f"{time.perf_counter() - start:5.1f} s  replica 2 killed (SIGKILL)")


async def replay(base: str, key: str, recorded: dict[str, bytes]) -> tuple[int, int]:
    lost = 0
    async with httpx.AsyncClient(timeout=5) as client:
        for idem, first in recorded.items():
            response = await client.post(
                f"{base}/map", json=BODY,
                headers={"authorization": f"Bearer {key}", "idempotency-key": idem},
            )  # fmt: skip
            if response.headers.get("idempotent-replayed") != "true" or response.content != first:
                lost += 1
    return len(recorded), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=26)
    parser.add_argument("--rate", type=float, default=40, help="requests/s per client")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lm-faults-"))
    redis = Redis(work)
    redis.start()
    env = {
        **os.environ,
        "LLAMA_MAPPER_STATE_DIR": str(work / "state"),
        "LLAMA_MAPPER_REDIS__URL": f"redis://127.0.0.1:{redis.port}/0",
        "LLAMA_MAPPER_RATE_LIMIT__BACKEND": "redis",
        "LLAMA_MAPPER_IDEMPOTENCY__BACKEND": "redis",
        "LLAMA_MAPPER_RATE_LIMIT__PER_KEY__RATE": "1000000",
        "LLAMA_MAPPER_RATE_LIMIT__PER_TENANT__RATE": "1000000",
    }
    env.pop("LLAMA_MAPPER_CONFIG", None)
    key_a = create_key(env, "tenant-a")
    create_key(env, "tenant-b")
    ports = [free_port(), free_port()]
    replicas = [start_mapper(p, env, workers=1, log=work / f"replica{n}.log") for n, p in
                enumerate(ports, 1)]  # fmt: skip
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    good, hostile = GoodClient(bases, key_a), HostileClient(bases, key_a)
    events: list[str] = []

    async def scenario() -> None:
        await asyncio.gather(
            drive(good, args.rate, args.seconds),
            drive(hostile, args.rate, args.seconds),
            timeline(redis, replicas[1], events),
        )

    try:
        asyncio.run(scenario())
        replayed, lost = asyncio.run(replay(bases[0], key_a, good.recorded))
    finally:
        for process in replicas:
            stop(process, signal.SIGKILL)
        redis.stop()
    print("timeline:")
    for event in events:
        print("  " + event)
    fivexx = sum(n for s, n in good.statuses.items() if s >= 500)
    print(f"good client (tenant-a, both replicas): statuses {dict(sorted(good.statuses.items()))}, "
          f"5xx {fivexx}, connection errors {good.connection_errors}, failovers {good.failovers}, "
          f"answers for another tenant {good.wrong_tenant}, idempotent answers not recorded "
          f"while Redis was down {good.unrecorded}")  # fmt: skip
    hostile_5xx = 0
    print("hostile client:")
    for kind, counts in hostile.by_kind.items():
        hostile_5xx += sum(n for s, n in counts.items() if s >= 500)
        print(f"  {kind:<22} {dict(sorted(counts.items()))}")
    print(
        f"  5xx {hostile_5xx}, spoofed requests served {hostile.served_wrong_tenant}, "
        f"connection errors {hostile.connection_errors}"
    )
    print(f"idempotent replays after Redis came back: {replayed} checked, {lost} lost")


if __name__ == "__main__":
    main()
