"""How many evidence events per second the shipper moves from the chain into ClickHouse.

Seeds a SQLite evidence store with N events (over a few tenants, not timed), then times
``ship`` end to end into the embedded engine (chDB): read after the cursor, convert,
insert, advance the cursor. Twice: a cold pass (first in the process) and a warm one (N
more events). Also times one aggregate query over the result.
Usage: python bench/analytics_bench.py [--events 50000] [--batch 5000] [--tenants 4]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from pathlib import Path

from llama_mapper.analytics import run_query, ship
from llama_mapper.analytics.target import target_from_settings
from llama_mapper.audit import EventStore, MappingEvent
from llama_mapper.config.settings import AnalyticsSettings
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade


def event(i: int, tenant: str) -> MappingEvent:
    labels = ("HARM.SPEECH.Harassment", "PII.Contact.Email")[: 1 + i % 2]
    return MappingEvent(
        event_id=uuid.uuid4().hex,
        tenant_id=tenant,
        request_id=f"bench-{i}",
        ts=f"2026-11-{1 + i % 28:02d}T12:00:00.000Z",
        route="/map",
        detector="openai-moderation",
        detector_version="openai-moderation@2026.11.0",
        labels=labels,
        scores={label: 0.5 + (i % 50) / 100 for label in labels},
        confidence=1.0,
        methods={label: "exact" for label in labels},
        versions={"taxonomy": "2026.11", "frameworks": "2026.11", "model": "rules-only"},
        controls=("ISO27001:A.5.10", "NIST_AI_RMF:MANAGE 4.1"),
        output_fingerprint=secrets.token_hex(32),
        fingerprint_version="bench",
    )


async def main(events: int, batch: int, tenants: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = create_engine(f"sqlite+aiosqlite:///{root / 'bench.db'}")
        await upgrade(engine)
        store = EventStore(engine)
        target = target_from_settings(AnalyticsSettings(), root)
        for round_name in ("cold", "warm"):
            # cold: the first pass of a process (opens the engine, creates the table, loads
            # the driver's lazy imports); warm: the same again, as every later pass.
            for start in range(0, events, 2000):
                chunk = range(start, min(start + 2000, events))
                await store.append([event(i, f"tenant-{i % tenants}") for i in chunk])
            began = time.perf_counter()
            report = await ship(engine, target, retention_days=400, batch_size=batch)
            seconds = time.perf_counter() - began
            print(
                f"{round_name}: shipped {report.total} events ({tenants} tenants, batch {batch}) "
                f"into chDB in {seconds:.2f} s: {report.total / seconds:,.0f} events/s"
            )
        began = time.perf_counter()
        result = await asyncio.to_thread(
            run_query,
            target,
            "SELECT tenant_id, toDate(ts) AS day, label, count() FROM events FINAL "
            "ARRAY JOIN labels AS label GROUP BY tenant_id, day, label",
        )
        print(
            f"per tenant/day/label counts over {2 * report.total} events: {len(result.rows)} rows "
            f"in {time.perf_counter() - began:.3f} s (incl. opening the engine)"
        )
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch, args.tenants))
