"""How many evidence events per second the write path sustains, SQLite and PostgreSQL.

Events go through the real EventWriter (batched write-behind) into the real EventStore;
the figure is end to end: submitted, chained, committed. The /map p50 overhead of the
store (on versus off) is printed by bench/map_bench.py in one run.
Usage: python bench/store_bench.py [--events 20000] [--batch 500]
Needs PostgreSQL on 127.0.0.1:5432 (database test) for the second line; skipped otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from llama_mapper.audit import EventStore, MappingEvent
from llama_mapper.audit.writer import EventWriter
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def event(i: int, tenant: str) -> MappingEvent:
    return MappingEvent(
        event_id=uuid.uuid4().hex,
        tenant_id=tenant,
        request_id=f"bench-{i}",
        ts="2026-11-27T12:00:00.000Z",
        route="/map",
        detector="openai-moderation",
        detector_version="openai-moderation@2026.11.0",
        labels=("HARM.SPEECH.Harassment",),
        scores={"HARM.SPEECH.Harassment": 0.82},
        confidence=1.0,
        methods={"HARM.SPEECH.Harassment": "exact"},
        versions={"taxonomy": "2026.11", "frameworks": "2026.11", "model": "rules-only"},
        controls=("ISO27001:A.5.10", "NIST_AI_RMF:MANAGE 4.1"),
        output_fingerprint=secrets.token_hex(32),
        fingerprint_version="bench",
    )


async def measure(
    url: str, events: int, batch: int, tenants: int, schema: str | None = None
) -> float:
    connect = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_engine(url, connect_args=connect)
    await upgrade(engine)
    writer = EventWriter(EventStore(engine), batch_size=batch, max_queue=batch * 4)
    prefix = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    for i in range(events):
        await writer.submit(event(i, f"{prefix}-{i % tenants}"))
    await writer.stop(timeout=120)
    elapsed = time.perf_counter() - start
    assert writer.stats().written == events, writer.stats()
    ok = await EventStore(engine).verify(f"{prefix}-0")
    assert ok.ok, ok.reason
    await engine.dispose()
    return events / elapsed


async def postgres_url() -> str | None:
    engine = create_engine(POSTGRES)
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception:
        return None
    finally:
        await engine.dispose()
    return schema


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lm-store-bench-"))
    rate = await measure(f"sqlite+aiosqlite:///{folder / 'bench.db'}", args.events, args.batch,
                         args.tenants)  # fmt: skip
    print(f"SQLite (WAL, synchronous=NORMAL): {rate:,.0f} events/s "
          f"({args.events} events, batches of {args.batch}, {args.tenants} tenants)")  # fmt: skip
    schema = await postgres_url()
    if schema is None:
        print("PostgreSQL: not reachable on 127.0.0.1:5432, skipped")
        return
    try:
        rate = await measure(POSTGRES, args.events, args.batch, args.tenants, schema)
        print(f"PostgreSQL 15 (loopback): {rate:,.0f} events/s")
    finally:
        engine = create_engine(POSTGRES)
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
