"""Retention on SQLite and real PostgreSQL: only past-cutoff events of non-held tenants go,
a tombstone keeps the chain verifiable, and any other cut, edit or reordering still fails."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.audit.store_support import make_event, shared_engines
from tests.db.support import BACKENDS

from llama_mapper.audit import EventStore, MappingEvent, projections
from llama_mapper.audit.anchors import (
    AnchorStore,
    anchor_tenants,
    check_against_chain,
    sign_anchor,
)
from llama_mapper.audit.chain import verify_whole_chain
from llama_mapper.audit.events import Tombstone
from llama_mapper.audit.holds import HoldError, list_holds, release_hold, set_hold
from llama_mapper.audit.retention import RetentionTask, run_retention
from llama_mapper.cli.audit_cmd import export_line
from llama_mapper.retention import RetentionPolicy
from llama_mapper.secrets import Secret
from llama_mapper.storage.db.schema import audit_events, audit_heads
from llama_mapper.storage.objects import LocalObjectStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD = "2025-01-0{}T00:00:00Z"  # far past 400 days before NOW
YOUNG = "2026-11-0{}T00:00:00Z"
POLICY = RetentionPolicy()


def _event(tenant: str, n: int, ts: str, **changes: Any) -> MappingEvent:
    return dataclasses.replace(make_event(tenant, n, ts=ts), **changes)


async def _fill(store: EventStore, tenant: str, old: int, young: int) -> None:
    events = [_event(tenant, n, OLD.format(1 + n % 9)) for n in range(old)]
    events += [_event(tenant, old + n, YOUNG.format(1 + n % 9)) for n in range(young)]
    await store.append(events)


async def _seqs(store: EventStore, tenant: str) -> list[int]:
    return [stored.seq async for stored in store.iter_events(tenant)]


async def _models(engine: AsyncEngine, tenant: str) -> dict[str, Any]:
    return {
        "labels": await projections.label_counts(engine, tenant),
        "controls": await projections.control_evidence(engine, tenant),
        "detectors": await projections.detector_quality(engine, tenant),
        "position": await projections.position(engine, tenant),
    }


@pytest.mark.parametrize("backend", BACKENDS)
async def test_deletes_only_past_cutoff_events_of_tenants_not_held(
    backend: str, tmp_path: Path
) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=6, young=4)
        await _fill(store, "held", old=5, young=1)
        await _fill(store, "long", old=3, young=1)
        await set_hold(engine, "held", "litigation 2026-17", "legal@example")
        policy = RetentionPolicy(tenant_days={"long": 10_000})
        outcomes = {o.tenant_id: o for o in await run_retention(engine, policy, now=NOW)}

        assert (outcomes["acme"].deleted, outcomes["acme"].first_seq) == (6, 1)
        assert outcomes["acme"].last_seq == 6
        assert outcomes["held"].held
        assert outcomes["held"].deleted == 0
        assert outcomes["long"].deleted == 0  # its own, longer retention
        # acme: the 4 young events survive, plus the tombstone at the head.
        assert await _seqs(store, "acme") == [7, 8, 9, 10, 11]
        assert await _seqs(store, "held") == list(range(1, 7))
        assert await _seqs(store, "long") == list(range(1, 5))
        stored = [s async for s in store.iter_events("acme")]
        assert all(isinstance(s.event, MappingEvent) for s in stored[:-1])
        assert all(s.event.ts >= outcomes["acme"].cutoff for s in stored)
        tombstone = stored[-1].event
        assert isinstance(tombstone, Tombstone)
        assert (tombstone.first_seq, tombstone.last_seq, tombstone.count) == (1, 6, 6)
        assert tombstone.last_hash == stored[0].prev_hash
        assert tombstone.cutoff == outcomes["acme"].cutoff
        assert tombstone.reason == "retention: 400 days (default policy)"
        for tenant in ("acme", "held", "long"):
            result = await store.verify(tenant)
            assert result.ok, (tenant, result.reason)
        assert (await store.verify("acme")).checked == 5
        ranged = await store.verify("acme", since=YOUNG.format(3))  # a range with the tombstone
        assert ranged.ok, ranged.reason
        # A second run finds nothing more: no second tombstone.
        again = await run_retention(engine, policy, tenants=["acme"], now=NOW)
        assert again[0].deleted == 0
        assert await _seqs(store, "acme") == [7, 8, 9, 10, 11]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_dry_run_deletes_nothing(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=3, young=2)
        head = await store.head("acme")
        (outcome,) = await run_retention(engine, POLICY, dry_run=True, now=NOW)
        assert (outcome.deleted, outcome.first_seq, outcome.last_seq) == (3, 1, 3)
        assert outcome.dry_run
        assert outcome.tombstones == ()
        assert await store.count("acme") == 5
        assert await store.head("acme") == head


async def test_a_young_event_shields_older_ones_behind_it(tmp_path: Path) -> None:
    """Only a run of consecutive seqs can go: an early clock waits for the next run."""
    async with shared_engines("sqlite", tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append(
            [
                _event("acme", 1, OLD.format(1)),
                _event("acme", 2, YOUNG.format(1)),
                _event("acme", 3, OLD.format(2)),  # old, but behind a young event
                _event("acme", 4, YOUNG.format(2)),
            ]
        )
        (outcome,) = await run_retention(engine, POLICY, now=NOW)
        assert (outcome.first_seq, outcome.last_seq) == (1, 1)
        assert await _seqs(store, "acme") == [2, 3, 4, 5]
        assert (await store.verify("acme")).ok


@pytest.mark.parametrize("backend", BACKENDS)
async def test_repeated_runs_batches_and_offline_verification(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=7, young=0)
        # Small batches: three transactions, three tombstones, one after the other.
        (first,) = await run_retention(engine, POLICY, now=NOW, batch=3)
        assert first.deleted == 7
        assert first.tombstones == (8, 9, 10)
        assert (await store.verify("acme")).ok
        # More events, then a later run that deletes everything incl. the old tombstones.
        await store.append([_event("acme", 100 + n, "2026-11-20T00:00:00Z") for n in range(3)])
        later = datetime(2029, 1, 1, tzinfo=UTC)
        (second,) = await run_retention(engine, POLICY, now=later)
        assert (second.first_seq, second.last_seq) == (8, 13)
        survivors = [s async for s in store.iter_events("acme")]
        assert [s.seq for s in survivors] == [14]  # only the newest tombstone
        assert (await store.verify("acme")).ok
        # The export verifies offline with the pure procedure, from the tombstone on.
        lines = [orjson.loads(export_line(s)) for s in survivors]
        assert lines[0]["event"]["kind"] == "tombstone"
        assert verify_whole_chain(survivors).ok
        # New appends continue the chain after the tombstone.
        await store.append([_event("acme", 200, "2028-12-31T00:00:00Z")])
        assert (await store.verify("acme")).ok


async def _tamper_cases(engine: AsyncEngine, store: EventStore) -> dict[str, Any]:
    """Fresh chains, each retention-cut and then tampered with in one way."""
    return {}


TAMPERING = [
    "delete the first survivor",
    "delete the tombstone",
    "edit the tombstone's last_hash",
    "edit the tombstone's range",
    "forget the boundary column",
    "point the boundary at a mapping event",
    "reorder around the boundary",
    "forge a second tombstone",
    "rewrite the first survivor's prev_hash",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", TAMPERING)
async def test_tampering_around_a_tombstone_is_detected(
    backend: str, case: str, tmp_path: Path
) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=4, young=3)
        await run_retention(engine, POLICY, now=NOW)  # deletes 1-4, tombstone at 8
        assert (await store.verify("acme")).ok
        await _tamper(engine, case)
        result = await store.verify("acme")
        assert not result.ok, case
        assert result.first_broken_seq is not None


async def _tamper(engine: AsyncEngine, case: str) -> None:
    tenant = audit_events.c.tenant_id == "acme"
    async with engine.begin() as connection:

        async def body(seq: int) -> dict[str, Any]:
            row = (
                await connection.execute(
                    select(audit_events.c.body).where(tenant, audit_events.c.seq == seq)
                )
            ).scalar_one()
            return dict(orjson.loads(row))

        async def set_body(seq: int, data: dict[str, Any]) -> None:
            await connection.execute(
                update(audit_events)
                .where(tenant, audit_events.c.seq == seq)
                .values(body=orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
            )

        if case == "delete the first survivor":
            await connection.execute(delete(audit_events).where(tenant, audit_events.c.seq == 5))
        elif case == "delete the tombstone":
            await connection.execute(delete(audit_events).where(tenant, audit_events.c.seq == 8))
        elif case == "edit the tombstone's last_hash":
            await set_body(8, {**await body(8), "last_hash": "ab" * 32})
        elif case == "edit the tombstone's range":
            await set_body(8, {**await body(8), "last_seq": 5, "count": 5})
        elif case == "forget the boundary column":
            await connection.execute(
                update(audit_heads)
                .where(audit_heads.c.tenant_id == "acme")
                .values(tombstone_seq=None)
            )
        elif case == "point the boundary at a mapping event":
            await connection.execute(
                update(audit_heads).where(audit_heads.c.tenant_id == "acme").values(tombstone_seq=6)
            )
        elif case == "reorder around the boundary":
            # Swap the bodies and hashes of seq 5 and 6.
            rows = {
                row.seq: row
                for row in (
                    await connection.execute(
                        select(audit_events).where(tenant, audit_events.c.seq.in_([5, 6]))
                    )
                ).all()
            }
            for seq, other in ((5, 6), (6, 5)):
                await connection.execute(
                    update(audit_events)
                    .where(tenant, audit_events.c.seq == seq)
                    .values(
                        event_id=f"swap-{seq}",
                        body=rows[other].body,
                        hash=rows[other].hash,
                        prev_hash=rows[other].prev_hash,
                    )
                )
        elif case == "forge a second tombstone":
            # A tombstone claiming 1..5 appended correctly at the head, without deleting 5.
            from llama_mapper.audit.chain import body_hash, canonical_bytes

            head = (
                await connection.execute(
                    select(audit_heads).where(audit_heads.c.tenant_id == "acme")
                )
            ).one()
            first = dict(await body(5))
            prev5 = (
                await connection.execute(
                    select(audit_events.c.hash).where(tenant, audit_events.c.seq == 5)
                )
            ).scalar_one()
            forged = Tombstone(
                event_id="forged",
                tenant_id="acme",
                ts=first["ts"],
                first_seq=1,
                last_seq=5,
                count=5,
                last_hash=prev5,
                cutoff="2026-01-01T00:00:00Z",
                reason="retention",
            )
            digest = body_hash(head.hash, canonical_bytes(forged))
            await connection.execute(
                audit_events.insert().values(
                    tenant_id="acme",
                    seq=head.seq + 1,
                    event_id="forged",
                    ts=forged.ts,
                    kind="tombstone",
                    detector="",
                    prev_hash=head.hash,
                    hash=digest,
                    body=canonical_bytes(forged).decode(),
                )
            )
            await connection.execute(
                update(audit_heads)
                .where(audit_heads.c.tenant_id == "acme")
                .values(seq=head.seq + 1, hash=digest, tombstone_seq=head.seq + 1)
            )
        elif case == "rewrite the first survivor's prev_hash":
            await connection.execute(
                update(audit_events)
                .where(tenant, audit_events.c.seq == 5)
                .values(prev_hash="cd" * 32)
            )
        else:  # pragma: no cover
            raise AssertionError(case)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_rebuild_equals_incremental_after_retention(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append(
            [
                _event("acme", 1, "2025-01-01T00:00:00Z"),
                _event("acme", 2, "2025-01-03T00:00:00Z", controls=("ISO:A.1",)),
                _event("acme", 3, "2025-01-02T00:00:00Z", labels=("OTHER.Unknown",)),
                _event("acme", 4, "2026-11-01T00:00:00Z"),
                # Old, kept behind seq 4: its control's last_seen must be recomputed.
                _event("acme", 5, "2025-01-02T12:00:00Z", controls=("ISO:A.1",)),
                _event("acme", 6, "2026-11-02T00:00:00Z", detector="presidio"),
            ]
        )
        await store.append([_event("other", 1, "2025-01-01T00:00:00Z")])
        other_before = await _models(engine, "other")
        await run_retention(engine, POLICY, tenants=["acme"], now=NOW)
        incremental = await _models(engine, "acme")
        assert incremental["position"] == 7  # the tombstone advanced it
        controls = {row["control"]: row for row in incremental["controls"]}
        assert controls["ISO:A.1"]["events"] == 1
        assert controls["ISO:A.1"]["last_seen_ts"] == "2025-01-02T12:00:00Z"
        assert {row["day"] for row in incremental["labels"]} == {
            "2026-11-01",
            "2026-11-02",
            "2025-01-02",
        }
        await projections.rebuild(engine, "acme")
        assert await _models(engine, "acme") == incremental
        assert await _models(engine, "other") == other_before
        # And after a second retention that removes everything but the tombstone.
        await run_retention(engine, POLICY, tenants=["acme"], now=datetime(2029, 1, 1, tzinfo=UTC))
        emptied = await _models(engine, "acme")
        assert emptied["labels"] == emptied["controls"] == emptied["detectors"] == []
        await projections.rebuild(engine, "acme")
        assert await _models(engine, "acme") == emptied


async def test_anchors_still_verify_after_retention(tmp_path: Path) -> None:
    async with shared_engines("sqlite", tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=4, young=3)
        secret = Secret(name="audit_anchor_key", value="anchor-key", version="v1")
        at4 = (await anext(s async for s in store.iter_events("acme") if s.seq == 4)).hash
        at6 = (await anext(s async for s in store.iter_events("acme") if s.seq == 6)).hash
        deleted_anchor = sign_anchor("acme", 2, "ab" * 32, secret)  # hash unknown later
        boundary_anchor = sign_anchor("acme", 4, at4, secret)
        surviving_anchor = sign_anchor("acme", 6, at6, secret)
        await run_retention(engine, POLICY, now=NOW)
        for anchor in (deleted_anchor, boundary_anchor, surviving_anchor):
            ok, reason = await check_against_chain(anchor, store)
            assert ok, reason
        # The one hash a tombstone keeps is still compared.
        wrong = sign_anchor("acme", 4, "cd" * 32, secret)
        assert not (await check_against_chain(wrong, store))[0]
        # Anchoring the new head (with the tombstone) works and verifies.
        anchors = AnchorStore(LocalObjectStore(tmp_path / "objects"))
        await anchors.write(surviving_anchor)

        class _Secrets:
            backend = "env"

            def get(self, name: str, version: str | None = None) -> Secret:
                return secret

        written = await anchor_tenants(store, anchors, _Secrets(), ["acme"])  # type: ignore[arg-type]
        assert written
        assert written[0].seq == 8
        assert (await check_against_chain(written[0], store))[0]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_holds_are_recorded_and_released(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=2, young=1)
        await set_hold(engine, "acme", "subpoena 42", "alice")
        with pytest.raises(HoldError, match="already"):
            await set_hold(engine, "acme", "again", "bob")
        (outcome,) = await run_retention(engine, POLICY, now=NOW)
        assert outcome.held
        assert await store.count("acme") == 3
        assert await release_hold(engine, "acme", "case closed", "carol") == 1
        with pytest.raises(HoldError, match="no active"):
            await release_hold(engine, "acme", "again", "carol")
        (hold,) = await list_holds(engine, "acme")
        assert (hold.reason, hold.set_by, hold.released_by, hold.release_reason) == (
            "subpoena 42",
            "alice",
            "carol",
            "case closed",
        )
        assert not hold.active
        assert hold.released_at is not None
        (outcome,) = await run_retention(engine, POLICY, now=NOW)
        assert outcome.deleted == 2


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_runs_from_several_workers_delete_once(
    backend: str, tmp_path: Path
) -> None:
    async with shared_engines(backend, tmp_path, 3) as engines:
        store = EventStore(engines[0])
        await _fill(store, "acme", old=20, young=2)
        results = await asyncio.gather(
            *(run_retention(engine, POLICY, now=NOW, batch=7) for engine in engines),
            # An API worker appending at the same time.
            store.append([_event("acme", 900, YOUNG.format(5))]),
        )
        deleted = sum(o.deleted for outcomes in results[:3] for o in outcomes)  # type: ignore[union-attr]
        assert deleted == 20
        assert (await store.verify("acme")).ok
        kinds = [type(s.event).__name__ async for s in store.iter_events("acme")]
        assert kinds.count("MappingEvent") == 3
        assert kinds.count("Tombstone") == 3  # 20 events in batches of 7


async def test_background_task_runs_on_its_interval(tmp_path: Path) -> None:
    async with shared_engines("sqlite", tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await _fill(store, "acme", old=3, young=1)
        task = RetentionTask(engine, POLICY, 0.05, clock=lambda: NOW)
        task.start()
        try:
            for _ in range(200):
                if task.runs:
                    break
                await asyncio.sleep(0.02)
        finally:
            await task.stop()
        assert task.runs >= 1
        assert task.deleted == 3
        assert await _seqs(store, "acme") == [4, 5]
        assert (await store.verify("acme")).ok
        with pytest.raises(ValueError, match="positive"):
            RetentionTask(engine, POLICY, 0)


async def test_background_task_in_the_server(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retention.interval_seconds starts it with the app and stops it with the app."""
    from llama_mapper.config.settings import load_settings
    from llama_mapper.runtime import build_runtime

    off = build_runtime(load_settings())
    assert off.retention is None
    await off.aclose()
    runtime = build_runtime(load_settings(retention={"interval_seconds": 3600}))
    assert runtime.retention is not None
    runtime.retention.start()
    await runtime.aclose()  # stops the task without waiting an interval
    assert runtime.retention._task is None


del _tamper_cases, text
