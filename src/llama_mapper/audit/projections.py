"""Read models (CQRS projections) of the evidence store.

Dashboards and auditors ask aggregate questions (events per label and day, evidence per
framework control, how often a detector ends in ``OTHER.Unknown``) that would otherwise
mean re-reading and parsing every event body. The answers are kept in small tables instead,
updated by :meth:`~llama_mapper.audit.store.EventStore.append` *inside the append's own
transaction*, so they can never disagree with the chain; :func:`rebuild` recomputes them
from the chain whenever that is in doubt (after the migration that adds them, after a
restore, or when the rules below change). The chain remains the only evidence.

``proj_positions`` records the last seq folded in without a gap. An append only advances
it when its first event directly follows it, so a tenant whose events predate the read
models (or whose rows were deleted by hand) shows up as *stale* (position behind the chain
head) instead of silently reporting partial counts.

Only ``mapping`` events are counted: other kinds (tombstones) do not describe a mapping
decision, but they still advance the position.

Retention *subtracts* what it deletes (:func:`subtract`, in the deletion's transaction):
the read models describe the evidence that exists, so a report never counts events an
auditor can no longer be shown, and :func:`rebuild` after retention gives exactly the same
rows as the incremental path. (Keeping the old counts would need them in the chain, e.g.
in the tombstone, for a rebuild to reproduce them.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, func, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llama_mapper.audit.chain import StoredEvent
from llama_mapper.audit.events import MappingEvent
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import (
    audit_events,
    audit_heads,
    proj_control_evidence,
    proj_detector_quality,
    proj_label_daily,
    proj_positions,
)
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as

#: The label the mapper falls back to when it cannot map a detector output.
UNKNOWN_LABEL = "OTHER.Unknown"
_TABLES = (proj_label_daily, proj_control_evidence, proj_detector_quality, proj_positions)


@dataclass
class Deltas:
    """Per-key increments of one batch of events (see :func:`fold`)."""

    #: ``(tenant, day, label) -> events``
    labels: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: ``(tenant, control) -> (events, newest ts)``
    controls: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    #: ``(tenant, detector) -> (events, unknown_events)``
    detectors: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    #: ``tenant -> (first seq, last seq)`` of the batch, to advance the position gap-free.
    seqs: dict[str, tuple[int, int]] = field(default_factory=dict)


def fold(events: Sequence[StoredEvent]) -> Deltas:
    """Aggregate ``events`` into increments; pure, so the same rules serve append and rebuild.

    A label repeated within one event counts once (one count per label per event).
    """
    deltas = Deltas()
    days: dict[str, str] = {}
    for stored in events:
        event = stored.event
        tenant = event.tenant_id
        first, last = deltas.seqs.get(tenant, (stored.seq, stored.seq))
        deltas.seqs[tenant] = (min(first, stored.seq), max(last, stored.seq))
        if not isinstance(event, MappingEvent):
            continue  # tombstones describe no mapping decision
        day = days.get(event.ts)
        if day is None:  # a batch's events usually share one ts: parse it once
            day = days[event.ts] = datetime.fromisoformat(event.ts).date().isoformat()
        labels = set(event.labels)
        for label in labels:
            key = (tenant, day, label)
            deltas.labels[key] = deltas.labels.get(key, 0) + 1
        for control in event.controls:
            count, seen = deltas.controls.get((tenant, control), (0, event.ts))
            deltas.controls[(tenant, control)] = (count + 1, max(seen, event.ts))
        count, unknown = deltas.detectors.get((tenant, event.detector), (0, 0))
        deltas.detectors[(tenant, event.detector)] = (
            count + 1,
            unknown + (UNKNOWN_LABEL in labels),
        )
    return deltas


async def apply(connection: AsyncConnection, deltas: Deltas) -> None:
    """Add ``deltas`` to the read models with upserts, in the caller's transaction."""
    insert = _insert_for(connection)
    if deltas.labels:
        rows = [
            {"tenant_id": t, "day": d, "label": label, "events": n}
            for (t, d, label), n in deltas.labels.items()
        ]
        await _add(connection, insert, proj_label_daily, rows, ["tenant_id", "day", "label"])
    if deltas.controls:
        rows = [
            {"tenant_id": t, "control": c, "events": n, "last_seen_ts": ts}
            for (t, c), (n, ts) in deltas.controls.items()
        ]
        await _add(connection, insert, proj_control_evidence, rows, ["tenant_id", "control"])
    if deltas.detectors:
        rows = [
            {"tenant_id": t, "detector": d, "events": n, "unknown_events": u}
            for (t, d), (n, u) in deltas.detectors.items()
        ]
        await _add(connection, insert, proj_detector_quality, rows, ["tenant_id", "detector"])
    for tenant, (first, last) in sorted(deltas.seqs.items()):
        # Advance only when this batch directly follows what was folded before; otherwise
        # the position stays behind the head and marks the tenant as needing a rebuild.
        statement = insert(proj_positions).values(tenant_id=tenant, seq=last if first == 1 else 0)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={
                "seq": case((proj_positions.c.seq == first - 1, last), else_=proj_positions.c.seq)
            },
        )
        await connection.execute(statement)


async def subtract(connection: AsyncConnection, tenant: str, deltas: Deltas) -> None:
    """Take the deleted events' ``deltas`` (see :func:`fold`) out of the read models.

    Rows that reach zero are removed, as a rebuild would never create them. A control's
    ``last_seen_ts`` that came from a deleted event is recomputed from the surviving
    events at or before it: those can only be events stamped before the cutoff that a
    younger event kept from deletion, found through the ``(tenant_id, ts)`` index.
    Runs in the caller's (the deletion's) transaction, after the rows are deleted.
    """
    label_rows = [
        {"b_tenant": t, "b_day": d, "b_label": label, "b_n": n}
        for (t, d, label), n in deltas.labels.items()
    ]
    if label_rows:
        table = proj_label_daily
        await connection.execute(
            update(table)
            .where(
                table.c.tenant_id == bindparam("b_tenant"),
                table.c.day == bindparam("b_day"),
                table.c.label == bindparam("b_label"),
            )
            .values(events=table.c.events - bindparam("b_n")),
            label_rows,
        )
    detector_rows = [
        {"b_tenant": t, "b_detector": d, "b_n": n, "b_u": u}
        for (t, d), (n, u) in deltas.detectors.items()
    ]
    if detector_rows:
        table = proj_detector_quality
        await connection.execute(
            update(table)
            .where(
                table.c.tenant_id == bindparam("b_tenant"),
                table.c.detector == bindparam("b_detector"),
            )
            .values(
                events=table.c.events - bindparam("b_n"),
                unknown_events=table.c.unknown_events - bindparam("b_u"),
            ),
            detector_rows,
        )
    control_rows = [
        {"b_tenant": t, "b_control": c, "b_n": n} for (t, c), (n, _) in deltas.controls.items()
    ]
    if control_rows:
        table = proj_control_evidence
        await connection.execute(
            update(table)
            .where(
                table.c.tenant_id == bindparam("b_tenant"),
                table.c.control == bindparam("b_control"),
            )
            .values(events=table.c.events - bindparam("b_n")),
            control_rows,
        )
    for table in (proj_label_daily, proj_detector_quality, proj_control_evidence):
        await connection.execute(
            delete(table).where(table.c.tenant_id == tenant, table.c.events <= 0)
        )
    if deltas.controls:
        await _refresh_last_seen(connection, tenant, deltas)


async def _refresh_last_seen(connection: AsyncConnection, tenant: str, deltas: Deltas) -> None:
    from llama_mapper.audit.store import stored_from_row  # the store imports this module

    newest_deleted = max(seen for _, seen in deltas.controls.values())
    table = proj_control_evidence
    rows = (
        await connection.execute(
            select(table.c.control, table.c.last_seen_ts).where(
                table.c.tenant_id == tenant, table.c.last_seen_ts <= newest_deleted
            )
        )
    ).all()
    stale = {
        str(row.control)
        for row in rows
        if (tenant, row.control) in deltas.controls
        and deltas.controls[(tenant, row.control)][1] >= row.last_seen_ts
    }
    if not stale:
        return
    survivors = (
        await connection.execute(
            select(audit_events).where(
                audit_events.c.tenant_id == tenant, audit_events.c.ts <= newest_deleted
            )
        )
    ).all()
    newest: dict[str, str] = {}
    for row in survivors:
        event = stored_from_row(row).event
        if isinstance(event, MappingEvent):
            for control in stale.intersection(event.controls):
                newest[control] = max(newest.get(control, event.ts), event.ts)
    for control, seen in newest.items():
        await connection.execute(
            update(table)
            .where(table.c.tenant_id == tenant, table.c.control == control)
            .values(last_seen_ts=seen)
        )


async def rebuild(engine: AsyncEngine, tenant_id: str | None = None) -> int:
    """Recompute the read models of ``tenant_id`` (or every tenant) from the chain.

    Each tenant is rebuilt in one transaction that holds its chain head locked (the
    database write lock on SQLite, the ``audit_heads`` row on PostgreSQL), so no append can
    slip in between deleting the rows and folding the events: the result is exact. Returns
    the number of events folded.
    """
    from llama_mapper.audit.store import EventStore  # the store imports this module

    store = EventStore(engine)
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        async with connect_as(engine, ALL_TENANTS) as connection:
            query = union(*(select(table.c.tenant_id) for table in (audit_heads, *_TABLES)))
            tenants = sorted(str(t) for t in (await connection.execute(query)).scalars())
    writer = engine.execution_options(**{SQLITE_IMMEDIATE: True})
    folded = 0
    for tenant in tenants:
        async with writer.begin() as connection:
            await act_for(connection, tenant)
            await connection.execute(
                select(audit_heads.c.seq).where(audit_heads.c.tenant_id == tenant).with_for_update()
            )
            for table in _TABLES:
                await connection.execute(delete(table).where(table.c.tenant_id == tenant))
            start = (
                await connection.execute(
                    select(func.min(audit_events.c.seq)).where(audit_events.c.tenant_id == tenant)
                )
            ).scalar()
            if start is not None and start > 1:
                # Retention deleted everything before ``start``: fold on from there.
                await connection.execute(
                    proj_positions.insert().values(tenant_id=tenant, seq=int(start) - 1)
                )
            chunk: list[StoredEvent] = []
            # Other connections read only committed events, all up to the head we hold.
            async for stored in store.iter_events(tenant):
                chunk.append(stored)
                if len(chunk) >= 1000:
                    await apply(connection, fold(chunk))
                    folded += len(chunk)
                    chunk = []
            if chunk:
                await apply(connection, fold(chunk))
                folded += len(chunk)
    return folded


async def position(engine: AsyncEngine, tenant: str) -> int:
    """Last seq folded into the tenant's read models without a gap (0 if none)."""
    query = select(proj_positions.c.seq).where(proj_positions.c.tenant_id == tenant)
    async with connect_as(engine, tenant) as connection:
        value = (await connection.execute(query)).scalar()
    return 0 if value is None else int(value)


async def label_counts(
    engine: AsyncEngine, tenant: str, since_day: str | None = None
) -> list[dict[str, Any]]:
    """``[{"day", "label", "events"}]`` by day then label, from ``since_day`` on."""
    query = (
        select(proj_label_daily.c.day, proj_label_daily.c.label, proj_label_daily.c.events)
        .where(proj_label_daily.c.tenant_id == tenant)
        .order_by(proj_label_daily.c.day, proj_label_daily.c.label)
    )
    if since_day is not None:
        query = query.where(proj_label_daily.c.day >= since_day)
    return await _dicts(engine, tenant, query)


async def control_evidence(engine: AsyncEngine, tenant: str) -> list[dict[str, Any]]:
    """``[{"control", "events", "last_seen_ts"}]`` by control."""
    table = proj_control_evidence
    query = (
        select(table.c.control, table.c.events, table.c.last_seen_ts)
        .where(table.c.tenant_id == tenant)
        .order_by(table.c.control)
    )
    return await _dicts(engine, tenant, query)


async def detector_quality(engine: AsyncEngine, tenant: str) -> list[dict[str, Any]]:
    """``[{"detector", "events", "unknown_events", "unknown_rate"}]`` by detector."""
    table = proj_detector_quality
    query = (
        select(table.c.detector, table.c.events, table.c.unknown_events)
        .where(table.c.tenant_id == tenant)
        .order_by(table.c.detector)
    )
    rows = await _dicts(engine, tenant, query)
    for row in rows:
        row["unknown_rate"] = row["unknown_events"] / row["events"] if row["events"] else 0.0
    return rows


def _insert_for(connection: AsyncConnection) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return pg_insert
    if dialect == "sqlite":
        return sqlite_insert
    raise ValueError(f"the read models do not support {dialect}")  # pragma: no cover


async def _add(
    connection: AsyncConnection,
    insert: Any,
    table: Table,
    rows: Iterable[dict[str, Any]],
    keys: list[str],
) -> None:
    """Upsert ``rows``: counters add up, ``last_seen_ts`` keeps the newer value."""
    statement = insert(table)
    excluded = statement.excluded
    updates: dict[str, Any] = {}
    for column in table.c:
        if column.name in keys:
            continue
        if column.name == "last_seen_ts":
            updates[column.name] = case(
                (excluded.last_seen_ts > column, excluded.last_seen_ts), else_=column
            )
        else:
            updates[column.name] = column + excluded[column.name]
    statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    await connection.execute(statement, list(rows))


async def _dicts(engine: AsyncEngine, tenant: str, query: Any) -> list[dict[str, Any]]:
    async with connect_as(engine, tenant) as connection:
        result = await connection.execute(query)
        return [
            {key: int(value) if isinstance(value, int) else value for key, value in row.items()}
            for row in result.mappings()
        ]
