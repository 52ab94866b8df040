"""Shipping the committed chain into the real ClickHouse engine (chDB), from SQLite and
PostgreSQL evidence stores: DDL, counts, idempotence, restarts, outages, odd rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select
from tests.analytics.support import KEEP_DAYS, closed_port_url, count, embedded_target
from tests.analytics.support import select as ch
from tests.audit.store_support import make_event, shared_engines
from tests.db.support import BACKENDS, migrated_engine

from llama_mapper.analytics import AnalyticsUnavailable, Target, cursors, ship
from llama_mapper.analytics.target import target_from_settings
from llama_mapper.audit import EventStore
from llama_mapper.audit.retention import run_retention
from llama_mapper.config.settings import AnalyticsSettings
from llama_mapper.retention import RetentionPolicy
from llama_mapper.storage.db.schema import analytics_cursors, audit_events, audit_heads

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


async def _ship(engine: object, target: Target, **kwargs: object) -> dict[str, int]:
    options = {"retention_days": KEEP_DAYS, "batch_size": 7, **kwargs}
    report = await ship(engine, target, **options)  # type: ignore[arg-type]
    return report.shipped


async def test_ddl_and_counts(backend: str, tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        store = EventStore(engine)
        await store.append([make_event("acme", n) for n in range(1, 21)])
        await store.append([make_event("beta", n, score=0.75) for n in range(1, 6)])
        assert await _ship(engine, target) == {"acme": 20, "beta": 5}
        engine_full = ch(
            target,
            "SELECT engine, engine_full FROM system.tables "
            "WHERE database = 'mapper' AND name = 'events'",
        )
        engine_name, definition = engine_full[0]
        assert engine_name == "ReplacingMergeTree"
        assert "PARTITION BY toYYYYMM(ts)" in definition
        assert "ORDER BY (tenant_id, ts, seq, event_id)" in definition
        assert f"TTL toDateTime(ts) + toIntervalDay({KEEP_DAYS})" in definition
        assert count(target, "acme") == 20
        assert count(target, "beta") == 5
        rows = ch(
            target,
            "SELECT label, count(), round(avg(score), 3) FROM mapper.events FINAL "
            "ARRAY JOIN labels AS label, scores AS score WHERE tenant_id = 'beta' "
            "GROUP BY label ORDER BY label",
        )
        assert rows == [("HARM.VIOLENCE", 5, 0.25), ("PII.EMAIL", 5, 0.75)]
        first = ch(
            target,
            "SELECT seq, kind, controls, taxonomy_version, model_version, "
            "versions, length(output_fingerprint) FROM mapper.events "
            "WHERE tenant_id = 'acme' ORDER BY seq LIMIT 1",
        )
        assert first == [
            (
                1,
                "mapping",
                ["GDPR:Art.32", "SOC2:CC6.1"],
                "2026.1",
                "",
                {"taxonomy": "2026.1", "frameworks": "2026.1"},
                64,
            )
        ]
        status = {
            p.tenant_id: (p.head_seq, p.cursor_seq)
            for p in await cursors.positions(engine, target.sink)
        }
        assert status == {"acme": (20, 20), "beta": (5, 5)}


async def test_resync_is_idempotent_and_cursor_survives_restart(
    backend: str, tmp_path: Path
) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        store = EventStore(engine)
        await store.append([make_event("acme", n) for n in range(1, 11)])
        assert await _ship(engine, target) == {"acme": 10}
        assert await _ship(engine, target) == {}  # nothing new: nothing inserted again
        # A crash between insert and cursor update: the cursor is behind, events ship twice.
        await cursors.reset(engine, target.sink)
        assert await _ship(engine, target) == {"acme": 10}
        assert count(target, "acme", final=False) == 20  # two copies until parts merge...
        assert count(target, "acme") == 10  # ...and FINAL counts each event once
        ch(target, "OPTIMIZE TABLE mapper.events FINAL")
        assert count(target, "acme", final=False) == 10


async def test_cursor_survives_a_restart(tmp_path: Path, backend: str) -> None:
    target = embedded_target(tmp_path)
    async with shared_engines(backend, tmp_path, 2) as (first, second):
        store = EventStore(first)
        await store.append([make_event("acme", n) for n in range(1, 6)])
        assert await _ship(first, target) == {"acme": 5}
        await first.dispose()  # the first process is gone; only the database remembers
        async with second.connect() as connection:
            rows = (await connection.execute(select(analytics_cursors))).all()
        assert [(r.sink, r.tenant_id, r.seq) for r in rows] == [(target.sink, "acme", 5)]
        await EventStore(second).append([make_event("acme", n) for n in range(6, 9)])
        restarted = embedded_target(tmp_path)  # a new process builds its target again
        assert await _ship(second, restarted) == {"acme": 3}
        assert count(target, "acme", final=False) == 8  # nothing shipped twice


async def test_clickhouse_down_keeps_events_in_the_chain(backend: str, tmp_path: Path) -> None:
    down = target_from_settings(AnalyticsSettings(url=closed_port_url()), tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        await EventStore(engine).append([make_event("acme", n) for n in range(1, 4)])
        with pytest.raises(AnalyticsUnavailable, match=r"ClickHouse at http://127\.0\.0\.1"):
            await _ship(engine, down)
        [position] = await cursors.positions(engine, down.sink)
        assert (position.head_seq, position.cursor_seq) == (3, 0)  # nothing moved
        # Once a ClickHouse is reachable (here: the embedded one), everything arrives.
        target = embedded_target(tmp_path)
        assert await _ship(engine, target) == {"acme": 3}


async def test_unknown_kinds_and_unreadable_bodies_ship_bare(backend: str, tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        store = EventStore(engine)
        await store.append([make_event("acme", n) for n in range(1, 3)])
        odd = [
            (3, "tombstone", '{"kind": "tombstone", "covers": [1, 2]}'),
            (4, "retention-marker", '{"secret": "never shipped"}'),
            (5, "mapping", "{not json"),
        ]
        async with engine.begin() as connection:
            for seq, kind, body in odd:
                await connection.execute(
                    insert(audit_events).values(
                        tenant_id="acme",
                        seq=seq,
                        event_id=f"odd-{seq}",
                        ts=f"2026-01-02T00:00:0{seq}Z",
                        kind=kind,
                        detector="retention",
                        prev_hash="0" * 64,
                        hash="1" * 64,
                        body=body,
                    )
                )
            await connection.execute(
                insert(audit_events).values(
                    tenant_id="acme",
                    seq=6,
                    event_id="odd-6",
                    ts="not a time",
                    kind="mapping",
                    detector="x",
                    prev_hash="0" * 64,
                    hash="2" * 64,
                    body="{}",
                )
            )
            await connection.execute(
                audit_heads.update().where(audit_heads.c.tenant_id == "acme").values(seq=6)
            )
        report = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=100)
        assert (report.total, report.other, report.skipped) == (5, 2, 1)
        kinds = ch(target, "SELECT seq, kind, labels FROM mapper.events ORDER BY seq")
        assert kinds == [
            (1, "mapping", ["HARM.VIOLENCE", "PII.EMAIL"]),
            (2, "mapping", ["HARM.VIOLENCE", "PII.EMAIL"]),
            (3, "tombstone", []),
            (4, "other", []),
            (5, "other", []),
        ]
        dump = str(ch(target, "SELECT * FROM mapper.events"))
        assert "never shipped" not in dump
        assert "covers" not in dump
        [position] = await cursors.positions(engine, target.sink)
        assert position.behind == 0  # the cursor moved past every odd row


async def test_retention_change_updates_the_ttl(backend: str, tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        store = EventStore(engine)
        await store.append([make_event("acme", 1)])
        await _ship(engine, target)
        await store.append([make_event("acme", 2)])
        await _ship(engine, target, retention_days=30)
        [(definition,)] = ch(
            target,
            "SELECT engine_full FROM system.tables WHERE database = 'mapper' AND name = 'events'",
        )
        assert "toIntervalDay(30)" in definition


async def test_concurrent_passes_ship_each_event_once_per_cursor(
    backend: str, tmp_path: Path
) -> None:
    """Two passes at once (the CLI and the server): the second waits for the engine's
    folder, then finds nothing behind; the cursor never moves back."""
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        await EventStore(engine).append([make_event("acme", n) for n in range(1, 31)])
        reports = await asyncio.gather(
            ship(engine, target, retention_days=KEEP_DAYS, batch_size=5, wait=30),
            ship(engine, target, retention_days=KEEP_DAYS, batch_size=5, wait=30),
        )
        assert sum(r.total for r in reports) >= 30
        assert count(target, "acme") == 30
        [position] = await cursors.positions(engine, target.sink)
        assert position.cursor_seq == 30


async def test_a_pass_can_stop_early_and_the_next_continues(backend: str, tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        await EventStore(engine).append([make_event("acme", n) for n in range(1, 24)])
        first = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=5, max_events=10)
        assert (first.total, first.more) == (10, True)
        rest = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=5)
        assert (rest.total, rest.more) == (13, False)
        assert count(target, "acme", final=False) == 23


async def test_rows_removed_from_the_chain_leave_no_one_waiting(
    backend: str, tmp_path: Path
) -> None:
    """Retention deletes old rows: the shipper skips the holes, and a head whose last rows
    are gone does not count as behind forever."""
    target = embedded_target(tmp_path)
    async with migrated_engine(backend, tmp_path) as engine:
        await EventStore(engine).append([make_event("acme", n) for n in range(1, 11)])
        async with engine.begin() as connection:
            removed = audit_events.c.seq.in_([3, 4, 5, 9, 10])
            await connection.execute(delete(audit_events).where(removed))
        report = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=2)
        assert report.shipped == {"acme": 5}
        assert ch(
            target, "SELECT groupArray(seq) FROM (SELECT seq FROM mapper.events ORDER BY seq)"
        ) == [([1, 2, 6, 7, 8],)]
        [position] = await cursors.positions(engine, target.sink)
        assert (position.head_seq, position.cursor_seq, position.behind) == (10, 10, 0)


async def test_retention_deletions_reach_clickhouse(backend: str, tmp_path: Path) -> None:
    """A real retention run deletes old events and leaves a tombstone; shipping the
    tombstone deletes the same seq range from ClickHouse, per tenant."""
    target = embedded_target(tmp_path)
    now = datetime.now(UTC)

    def days_ago(days: int, second: int) -> str:
        return (now - timedelta(days=days, seconds=-second)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async with migrated_engine(backend, tmp_path) as engine:
        store = EventStore(engine)
        old = [make_event("acme", n, ts=days_ago(200, n)) for n in range(1, 6)]
        recent = [make_event("acme", n, ts=days_ago(1, n)) for n in range(6, 9)]
        await store.append([*old, *recent])
        await store.append([make_event("beta", n, ts=days_ago(200, n)) for n in (1, 2)])
        assert (await _ship(engine, target)) == {"acme": 8, "beta": 2}
        policy = RetentionPolicy(default_days=400, tenant_days={"acme": 180})
        [acme_outcome] = await run_retention(engine, policy, tenants=["acme"], now=now)
        assert acme_outcome.deleted == 5
        report = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=100)
        assert (report.shipped, report.deleted_ranges, report.delete_errors) == ({"acme": 1}, 1, 0)
        rows = ch(target, "SELECT tenant_id, seq, kind FROM mapper.events FINAL ORDER BY 1, 2")
        assert rows == [
            ("acme", 6, "mapping"),
            ("acme", 7, "mapping"),
            ("acme", 8, "mapping"),
            ("acme", 9, "tombstone"),
            ("beta", 1, "mapping"),  # another tenant's old rows are not touched
            ("beta", 2, "mapping"),
        ]
        assert (await store.verify("acme")).ok
