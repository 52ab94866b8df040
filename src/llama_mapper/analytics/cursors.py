"""Per-tenant shipping cursors in the relational database, and reads of the chain after them.

The cursor is the highest seq known to be in ClickHouse. It moves only *after* an insert
succeeded, and only forward (two shippers racing cannot move it back), so a crash between
the insert and the update ships a batch twice, which the ReplacingMergeTree absorbs, and
never skips one.

On PostgreSQL every statement acts for its tenant under row-level security
(:mod:`llama_mapper.storage.db.tenancy`); only listing positions across tenants (and
forgetting every cursor of a sink) uses the documented all-tenants bypass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.analytics.rows import ChainRow
from llama_mapper.storage.db.schema import analytics_cursors, audit_events, audit_heads
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as


@dataclass(frozen=True)
class Position:
    """How far one tenant's chain is shipped to one sink."""

    tenant_id: str
    head_seq: int
    cursor_seq: int

    @property
    def behind(self) -> int:
        return max(self.head_seq - self.cursor_seq, 0)


async def positions(engine: AsyncEngine, sink: str, tenant_id: str | None = None) -> list[Position]:
    """Chain head and cursor of every tenant with events (or just ``tenant_id``), sorted."""
    heads = select(audit_heads.c.tenant_id, audit_heads.c.seq).where(audit_heads.c.seq > 0)
    cursors = select(analytics_cursors.c.tenant_id, analytics_cursors.c.seq).where(
        analytics_cursors.c.sink == sink
    )
    if tenant_id is not None:
        heads = heads.where(audit_heads.c.tenant_id == tenant_id)
        cursors = cursors.where(analytics_cursors.c.tenant_id == tenant_id)
    async with connect_as(engine, tenant_id or ALL_TENANTS) as connection:
        head_rows = {str(t): int(s) for t, s in (await connection.execute(heads)).all()}
        cursor_rows = {str(t): int(s) for t, s in (await connection.execute(cursors)).all()}
    tenants = sorted(set(head_rows) | set(cursor_rows))
    return [Position(t, head_rows.get(t, 0), cursor_rows.get(t, 0)) for t in tenants]


async def read_after(engine: AsyncEngine, tenant_id: str, after: int, limit: int) -> list[ChainRow]:
    """Up to ``limit`` committed chain rows of ``tenant_id`` with seq > ``after``, in order.

    Rows are read as stored, not through ``EventStore``: a body this version cannot parse
    must not stop the shipper (see :mod:`llama_mapper.analytics.rows`).
    """
    columns = audit_events.c
    query = (
        select(
            columns.tenant_id,
            columns.seq,
            columns.event_id,
            columns.ts,
            columns.kind,
            columns.detector,
            columns.body,
        )
        .where(columns.tenant_id == tenant_id, columns.seq > after)
        .order_by(columns.seq)
        .limit(limit)
    )
    async with connect_as(engine, tenant_id) as connection:
        rows = (await connection.execute(query)).all()
    return [
        ChainRow(
            str(r.tenant_id),
            int(r.seq),
            str(r.event_id),
            str(r.ts),
            str(r.kind),
            str(r.detector),
            str(r.body),
        )
        for r in rows
    ]


async def advance(engine: AsyncEngine, sink: str, tenant_id: str, seq: int) -> None:
    """Move the cursor to ``seq`` unless it is already there or beyond."""
    values = {"sink": sink, "tenant_id": tenant_id, "seq": seq, "updated_at": datetime.now(UTC)}
    async with engine.begin() as connection:
        await act_for(connection, tenant_id)
        dialect = connection.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(analytics_cursors).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["sink", "tenant_id"],
            set_={
                "seq": case((analytics_cursors.c.seq < seq, seq), else_=analytics_cursors.c.seq),
                "updated_at": values["updated_at"],
            },
        )
        await connection.execute(statement)


async def reset(engine: AsyncEngine, sink: str, tenant_id: str | None = None) -> int:
    """Forget the cursors of ``sink`` (all tenants or one) so the next sync ships again."""
    statement = delete(analytics_cursors).where(analytics_cursors.c.sink == sink)
    if tenant_id is not None:
        statement = statement.where(analytics_cursors.c.tenant_id == tenant_id)
    async with engine.begin() as connection:
        await act_for(connection, tenant_id or ALL_TENANTS)
        result = await connection.execute(statement)
    return int(result.rowcount or 0)
