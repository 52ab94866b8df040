"""How many evidence events per second the write path sustains, SQLite and PostgreSQL.

Events go through the real EventWriter (batched write-behind) into the real EventStore;
the figure is end to end: submitted, chained, committed. The /map p50 overhead of the
store (on versus off) is printed by bench/map_bench.py in one run.
On PostgreSQL it also prints the rate as an ordinary role (row-level security applies;
the superuser ``postgres`` bypasses it), and the per-tenant chain lock at work: several
writers (think: API replicas) appending to ONE tenant queue on its head row, while the same
writers on separate tenants run in parallel.
Usage: python bench/store_bench.py [--events 20000] [--batch 500] [--writers 4]
Needs PostgreSQL on 127.0.0.1:5432 (database test) for the PostgreSQL lines; skipped otherwise.
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
from sqlalchemy.engine import make_url

from llama_mapper.audit import EventStore, MappingEvent
from llama_mapper.audit.writer import EventWriter
from llama_mapper.audit.writer_process import ProcessStore, draft
from llama_mapper.config.settings import Settings
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
    url: str,
    events: int,
    batch: int,
    tenants: int,
    schema: str | None = None,
    *,
    writers: int = 1,
    shared_tenant: bool = False,
) -> float:
    """Events/s of ``writers`` concurrent writers (one engine each, like API replicas);
    with ``shared_tenant`` all of them append to one tenant's chain."""
    connect = {"server_settings": {"search_path": schema}} if schema else {}
    engines = [create_engine(url, connect_args=connect) for _ in range(writers)]
    await upgrade(engines[0])
    prefix = uuid.uuid4().hex[:8]
    per_writer = events // writers

    def tenant(w: int, i: int) -> str:
        return f"{prefix}-0" if shared_tenant else f"{prefix}-{w}-{i % tenants}"

    async def run(w: int) -> int:
        writer = EventWriter(EventStore(engines[w]), batch_size=batch, max_queue=batch * 4)
        for i in range(per_writer):
            await writer.submit(event(i, tenant(w, i)))
        await writer.stop(timeout=120)
        return writer.stats().written

    start = time.perf_counter()
    written = await asyncio.gather(*(run(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    assert sum(written) == per_writer * writers, written
    ok = await EventStore(engines[0]).verify(tenant(0, 0))
    assert ok.ok, ok.reason
    for engine in engines:
        await engine.dispose()
    return per_writer * writers / elapsed


def response(e: MappingEvent) -> dict[str, object]:
    """The MappingResponse fields the writer process builds its event from."""
    return {
        "taxonomy": list(e.labels),
        "scores": dict(e.scores),
        "confidence": e.confidence,
        "frameworks": {e.labels[0]: list(e.controls)},
        "version_info": dict(e.versions),
        "provenance": {
            "tenant_id": e.tenant_id,
            "request_id": e.request_id,
            "ts": e.ts,
            "route": e.route,
            "detector": e.detector,
            "detector_version": e.detector_version,
            "method": dict(e.methods),
        },
    }


async def measure_process(url: str, events: int, batch: int, tenants: int) -> float:
    """Events/s through audit.writer=process: drafts queued here, chained by the child."""
    await upgrade(url)
    sink = ProcessStore(Settings(database={"url": url}))
    await sink.start()
    writer = EventWriter(sink, batch_size=batch, max_queue=batch * 4)
    prefix = uuid.uuid4().hex[:8]
    drafts = [
        draft(response(event(i, f"{prefix}-{i % tenants}")), (secrets.token_hex(32), "bench"))
        for i in range(events)
    ]
    start = time.perf_counter()
    for item in drafts:
        await writer.submit(item)
    await writer.stop(timeout=120)
    elapsed = time.perf_counter() - start
    await sink.close()
    assert writer.stats().written == events, writer.stats()
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
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lm-store-bench-"))
    rate = await measure(f"sqlite+aiosqlite:///{folder / 'bench.db'}", args.events, args.batch,
                         args.tenants)  # fmt: skip
    print(f"SQLite (WAL, synchronous=NORMAL): {rate:,.0f} events/s "
          f"({args.events} events, batches of {args.batch}, {args.tenants} tenants)")  # fmt: skip
    rate = await measure_process(f"sqlite+aiosqlite:///{folder / 'process.db'}", args.events,
                                 args.batch, args.tenants)  # fmt: skip
    print(f"SQLite through the writer process (audit.writer=process): {rate:,.0f} events/s")
    schema = await postgres_url()
    if schema is None:
        print("PostgreSQL: not reachable on 127.0.0.1:5432, skipped")
        return
    role = f"bench_{secrets.token_hex(4)}"
    try:
        rate = await measure(POSTGRES, args.events, args.batch, args.tenants, schema)
        print(f"PostgreSQL 15 (loopback, superuser: no RLS): {rate:,.0f} events/s")
        await admin(
            f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS',
            f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
        )
        as_role = make_url(POSTGRES).set(username=role).render_as_string(False)
        rate = await measure(as_role, args.events, args.batch, args.tenants, schema)
        print(f"PostgreSQL 15 (ordinary role, row-level security on): {rate:,.0f} events/s")
        for shared in (True, False):
            rate = await measure(POSTGRES, args.events, args.batch, args.tenants, schema,
                                 writers=args.writers, shared_tenant=shared)  # fmt: skip
            what = "ONE tenant (its head row lock serialises them)" if shared else "own tenants"
            print(f"PostgreSQL 15, {args.writers} concurrent writers on {what}: "
                  f"{rate:,.0f} events/s")  # fmt: skip
    finally:
        await admin(f'DROP SCHEMA "{schema}" CASCADE', f'DROP ROLE IF EXISTS "{role}"')


async def admin(*statements: str) -> None:
    engine = create_engine(POSTGRES)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
