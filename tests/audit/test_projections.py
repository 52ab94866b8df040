"""Read models of the evidence store on SQLite and real PostgreSQL: kept in step with every
append, rebuildable to exactly the same state, isolated per tenant, shown by the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.audit.store_support import make_event, shared_engines
from tests.db.support import BACKENDS
from typer.testing import CliRunner

from llama_mapper.audit import EventStore, MappingEvent, StoredEvent, projections
from llama_mapper.audit.events import ChainEvent, Tombstone
from llama_mapper.cli import audit_cmd
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.db.schema import (
    proj_control_evidence,
    proj_detector_quality,
    proj_label_daily,
    proj_positions,
)

runner = CliRunner()


def _event(tenant: str, n: int, ts: str, **changes: Any) -> MappingEvent:
    return dataclasses.replace(make_event(tenant, n, ts=ts), **changes)


def _unknown(tenant: str, n: int, ts: str) -> MappingEvent:
    return _event(tenant, n, ts, labels=("OTHER.Unknown",), controls=("SOC2:CC6.1",))


async def _models(engine: AsyncEngine, tenant: str) -> dict[str, Any]:
    return {
        "labels": await projections.label_counts(engine, tenant),
        "controls": await projections.control_evidence(engine, tenant),
        "detectors": await projections.detector_quality(engine, tenant),
        "position": await projections.position(engine, tenant),
    }


def test_fold_aggregates_a_batch() -> None:
    events: list[ChainEvent] = [
        _event("a", 1, "2026-01-01T23:59:59Z"),
        _event("a", 2, "2026-01-02T00:00:01Z", labels=("PII.EMAIL", "PII.EMAIL")),
        _unknown("a", 3, "2026-01-01T10:00:00Z"),
        _event("b", 1, "2026-01-01T00:00:00Z", detector="presidio"),
        Tombstone(
            event_id="a-t-4",
            tenant_id="a",
            ts="2026-01-03T00:00:00Z",
            first_seq=1,
            last_seq=1,
            count=1,
            last_hash="0" * 64,
            cutoff="2026-01-01T00:00:00Z",
            reason="retention",
        ),
    ]
    seqs = {"a": 0, "b": 0}
    stored = []
    for event in events:
        seqs[event.tenant_id] += 1
        stored.append(StoredEvent(seqs[event.tenant_id], "p", "h", event))
    deltas = projections.fold(stored)
    assert deltas.labels == {
        ("a", "2026-01-01", "HARM.VIOLENCE"): 1,
        ("a", "2026-01-01", "PII.EMAIL"): 1,
        ("a", "2026-01-02", "PII.EMAIL"): 1,  # repeated label counts once per event
        ("a", "2026-01-01", "OTHER.Unknown"): 1,
        ("b", "2026-01-01", "HARM.VIOLENCE"): 1,
        ("b", "2026-01-01", "PII.EMAIL"): 1,
    }
    assert deltas.controls == {
        ("a", "GDPR:Art.32"): (2, "2026-01-02T00:00:01Z"),
        ("a", "SOC2:CC6.1"): (3, "2026-01-02T00:00:01Z"),
        ("b", "GDPR:Art.32"): (1, "2026-01-01T00:00:00Z"),
        ("b", "SOC2:CC6.1"): (1, "2026-01-01T00:00:00Z"),
    }
    assert deltas.detectors == {("a", "llama-guard"): (3, 1), ("b", "presidio"): (1, 0)}
    assert deltas.seqs == {"a": (1, 4), "b": (1, 1)}  # the tombstone advances, not counts
    assert projections.fold([]) == projections.Deltas()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_appends_maintain_rebuild_reproduces_tenants_isolated(
    backend: str, tmp_path: Path
) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append(
            [
                _event("a", 1, "2026-01-01T10:00:00Z"),
                _event("b", 1, "2026-01-01T10:00:00Z", detector="presidio"),
                _unknown("a", 2, "2026-01-01T11:00:00Z"),
            ]
        )
        # An older event later: last_seen keeps the max, counts keep adding up.
        await store.append([_event("a", 3, "2026-01-02T09:00:00Z")])
        await store.append([_event("a", 4, "2025-12-31T09:00:00Z")])
        a = await _models(engine, "a")
        assert a["labels"] == [
            {"day": "2025-12-31", "label": "HARM.VIOLENCE", "events": 1},
            {"day": "2025-12-31", "label": "PII.EMAIL", "events": 1},
            {"day": "2026-01-01", "label": "HARM.VIOLENCE", "events": 1},
            {"day": "2026-01-01", "label": "OTHER.Unknown", "events": 1},
            {"day": "2026-01-01", "label": "PII.EMAIL", "events": 1},
            {"day": "2026-01-02", "label": "HARM.VIOLENCE", "events": 1},
            {"day": "2026-01-02", "label": "PII.EMAIL", "events": 1},
        ]
        assert a["controls"] == [
            {"control": "GDPR:Art.32", "events": 3, "last_seen_ts": "2026-01-02T09:00:00Z"},
            {"control": "SOC2:CC6.1", "events": 4, "last_seen_ts": "2026-01-02T09:00:00Z"},
        ]
        assert a["detectors"] == [
            {"detector": "llama-guard", "events": 4, "unknown_events": 1, "unknown_rate": 0.25}
        ]
        assert a["position"] == 4
        assert len(await projections.label_counts(engine, "a", since_day="2026-01-02")) == 2
        b = await _models(engine, "b")
        assert b["detectors"] == [
            {"detector": "presidio", "events": 1, "unknown_events": 0, "unknown_rate": 0.0}
        ]
        assert [row["events"] for row in b["controls"]] == [1, 1]
        assert b["position"] == 1
        assert await _models(engine, "nobody") == {
            "labels": [],
            "controls": [],
            "detectors": [],
            "position": 0,
        }

        # Rebuilding one tenant leaves the other alone; rebuilding all from nothing is exact.
        assert await projections.rebuild(engine, "b") == 1
        assert await _models(engine, "a") == a
        async with engine.begin() as connection:
            for table in (proj_label_daily, proj_control_evidence, proj_detector_quality):
                await connection.execute(delete(table))
            await connection.execute(delete(proj_positions))
        assert (await _models(engine, "a"))["labels"] == []
        assert await projections.rebuild(engine) == 5
        assert await _models(engine, "a") == a
        assert await _models(engine, "b") == b
        assert await projections.rebuild(engine, "a") == 4  # idempotent
        assert await _models(engine, "a") == a


@pytest.mark.parametrize("backend", BACKENDS)
async def test_events_from_before_the_read_models_mark_them_stale(
    backend: str, tmp_path: Path
) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append([make_event("t", 1), make_event("t", 2)])
        # As after the 0003 migration on an existing chain: rows empty, position 0.
        async with engine.begin() as connection:
            for table in (proj_label_daily, proj_control_evidence, proj_detector_quality):
                await connection.execute(delete(table))
            await connection.execute(text("UPDATE proj_positions SET seq = 0"))
        await store.append([make_event("t", 3)])
        assert await projections.position(engine, "t") == 0  # behind the head: stale
        assert await projections.rebuild(engine, "t") == 3
        assert await projections.position(engine, "t") == 3
        controls = await projections.control_evidence(engine, "t")
        assert [row["events"] for row in controls] == [3, 3]
        await store.append([make_event("t", 4)])
        assert await projections.position(engine, "t") == 4


async def _seed(db: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        store = EventStore(engine)
        await store.append([make_event("acme", n) for n in range(1, 4)])
        await store.append([_unknown("acme", 4, "2026-01-02T00:00:00Z")])
        await store.append([make_event("other", 1)])
        async with engine.begin() as connection:
            await connection.execute(delete(proj_label_daily))
    finally:
        await engine.dispose()


def test_cli_prints_models_and_rebuilds(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_seed(state_dir / SQLITE_FILE))

    result = runner.invoke(audit_cmd.app, ["rebuild-projections", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "rebuilt read models of acme: 4 events folded" in result.output
    result = runner.invoke(audit_cmd.app, ["rebuild-projections"])
    assert result.exit_code == 0, result.output
    assert "rebuilt read models of every tenant: 5 events folded" in result.output

    result = runner.invoke(audit_cmd.app, ["projections", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "read models of acme: seq 4 of 4 (current)" in result.output
    assert "2026-01-01  PII.EMAIL  3" in result.output
    assert "SOC2:CC6.1  4  2026-01-02T00:00:00Z" in result.output
    assert "llama-guard  4  1  0.250" in result.output

    result = runner.invoke(audit_cmd.app, ["projections", "--tenant", "acme", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)
    assert models["stale"] is False
    assert models["detectors"] == [
        {"detector": "llama-guard", "events": 4, "unknown_events": 1, "unknown_rate": 0.25}
    ]
    assert {"day": "2026-01-02", "label": "OTHER.Unknown", "events": 1} in models["labels"]
    other = runner.invoke(audit_cmd.app, ["projections", "-t", "other", "--json"])
    assert json.loads(other.stdout)["controls"][0]["events"] == 1


def test_projections_group_is_the_same_commands(state_dir: Path) -> None:
    from llama_mapper.cli.main import app as mapper

    state_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_seed(state_dir / SQLITE_FILE))
    result = runner.invoke(mapper, ["projections", "rebuild", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "rebuilt read models of acme: 4 events folded" in result.output
    shown = runner.invoke(mapper, ["projections", "show", "--tenant", "acme", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(
        runner.invoke(audit_cmd.app, ["projections", "--tenant", "acme", "--json"]).stdout
    )
