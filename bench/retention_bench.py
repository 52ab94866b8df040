"""Retention and kept-metadata costs, on SQLite and PostgreSQL: figures, not assertions.

* retention: events deleted per second by ``run_retention`` (delete, tombstones, read-model
  subtraction), then the full verify of what is left;
* sealing: microseconds per event to seal two kept fields (per-tenant DEK reused, env KEK);
* rewrap: data keys re-wrapped per second after a KEK rotation.

Usage: python bench/retention_bench.py [--events 20000]
Needs PostgreSQL on 127.0.0.1:5432 (database test) for the PostgreSQL lines.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.audit import EventStore, MappingEvent
from llama_mapper.audit.keys import rewrap
from llama_mapper.audit.retention import run_retention
from llama_mapper.config.settings import SecretsSettings
from llama_mapper.crypto import MetadataSealer, key_wrapper
from llama_mapper.retention import RetentionPolicy
from llama_mapper.secrets import EnvSecretProvider, env_var_name
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade
from store_bench import POSTGRES, event, postgres_url

KEK = "audit_metadata_kek"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def measure(engine: AsyncEngine, events: int, label: str) -> None:
    await upgrade(engine)
    store = EventStore(engine)
    tenant = "bench-" + uuid.uuid4().hex[:8]
    environ = {env_var_name(KEK): "bench-kek-one"}
    wrapper = key_wrapper(EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ), KEK)
    sealer = MetadataSealer(wrapper)
    batch: list[MappingEvent] = []
    sealing = 0.0
    for i in range(events):
        base = dataclasses.replace(event(i, tenant), ts="2025-01-01T00:00:00.000Z")
        start = time.perf_counter()
        sealed = sealer.seal(tenant, base.event_id, {"ticket": f"T-{i}", "queue": "q1"},
                             ["ticket", "queue"])  # fmt: skip
        sealing += time.perf_counter() - start
        assert sealed is not None
        batch.append(dataclasses.replace(base, metadata=sealed[0], metadata_key=sealed[1]))
        if len(batch) == 1000:
            await store.append(batch)
            batch = []
    if batch:
        await store.append(batch)
    # Keep the newest tenth: they are young.
    young = [dataclasses.replace(event(i, tenant), ts="2026-11-30T00:00:00.000Z")
             for i in range(events // 10)]  # fmt: skip
    await store.append(young)
    environ[env_var_name(KEK)] = "bench-kek-two"
    environ[env_var_name(KEK) + "_PREVIOUS"] = "bench-kek-one"
    start = time.perf_counter()
    result = await rewrap(engine, wrapper, tenant)
    rewrap_s = time.perf_counter() - start
    start = time.perf_counter()
    (outcome,) = await run_retention(engine, RetentionPolicy(), tenants=[tenant], now=NOW)
    retention_s = time.perf_counter() - start
    start = time.perf_counter()
    verified = await store.verify(tenant)
    verify_s = time.perf_counter() - start
    assert verified.ok, verified.reason
    assert outcome.deleted == events
    print(
        f"{label}: seal {sealing / events * 1e6:.1f} us/event; "
        f"rewrap {result.rewrapped / rewrap_s:,.0f} keys/s; "
        f"retention {outcome.deleted / retention_s:,.0f} events/s deleted "
        f"({outcome.deleted} in {len(outcome.tombstones)} batches); "
        f"verify of the {verified.checked} left {verify_s * 1000:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lm-retention-bench-"))
    sqlite = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await measure(sqlite, args.events, "SQLite")
    await sqlite.dispose()
    schema = await postgres_url()
    if schema is None:
        print("PostgreSQL: not reachable on 127.0.0.1:5432, skipped")
        return
    engine = create_engine(POSTGRES, connect_args={"server_settings": {"search_path": schema}})
    try:
        await measure(engine, args.events, "PostgreSQL")
    finally:
        await engine.dispose()
        admin = create_engine(POSTGRES)
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
