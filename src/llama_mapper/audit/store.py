"""Append-only, hash-chained event storage over an ``AsyncEngine`` (SQLite and PostgreSQL).

Every tenant has its own chain (seq 1, 2, ... with no gaps), so one tenant's evidence can be
exported and verified without revealing another's, and every query filters by tenant.

Appends from many processes must never fork a chain (two events claiming the same seq or
the same ``prev_hash``). The writer therefore serialises per tenant before reading the head:
on SQLite the whole transaction takes the database write lock at ``BEGIN IMMEDIATE``; on
PostgreSQL it locks the tenant's ``audit_heads`` row with ``SELECT ... FOR UPDATE`` (after
creating the row if needed), so only appenders of the same tenant wait for each other.

Retention (:mod:`llama_mapper.audit.retention`) deletes a tenant's *oldest* events and
appends a tombstone; the chain then starts right after it (``audit_heads.tombstone_seq``
says where to look, see :meth:`EventStore.chain_verifier`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llama_mapper.audit import projections
from llama_mapper.audit.chain import (
    GENESIS_HASH,
    ChainVerifier,
    StoredEvent,
    VerifyResult,
    body_hash,
    canonical_bytes,
)
from llama_mapper.audit.events import MappingEvent, Tombstone, event_from_dict
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import audit_deks, audit_events, audit_heads
from llama_mapper.storage.db.tenancy import act_for, connect_as


class CorruptEventError(ValueError):
    """A stored row whose body is not a valid event: the chain is broken at ``seq``."""

    def __init__(self, tenant_id: str, seq: int, reason: str) -> None:
        super().__init__(f"event seq {seq} of tenant {tenant_id} is corrupt: {reason}")
        self.tenant_id = tenant_id
        self.seq = seq
        self.reason = reason


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, events: Sequence[MappingEvent]) -> list[StoredEvent]:
        """Chain and store ``events`` (any mix of tenants) in one transaction.

        Events of one tenant get consecutive seqs in the order given. All or nothing: a
        duplicate ``event_id`` raises ``sqlalchemy.exc.IntegrityError`` and stores none.
        Returns the stored events in the order given.
        """
        if not events:
            return []
        by_tenant: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_tenant.setdefault(event.tenant_id, []).append(index)
        stored: list[StoredEvent | None] = [None] * len(events)
        # Serialized once (hashed and stored), and before the head is locked: the body
        # does not depend on the chain, so only hashing waits for the tenant's lock.
        bodies = [canonical_bytes(event) for event in events]
        writer = self.engine.execution_options(**{SQLITE_IMMEDIATE: True})
        async with writer.begin() as connection:
            # Sorted, so two appenders touching the same tenants lock them in the same
            # order and cannot deadlock. Each tenant's rows are written while the
            # transaction acts for that tenant, so row-level security checks every row.
            for tenant_id in sorted(by_tenant):
                await act_for(connection, tenant_id)
                seq, prev = await _lock_head(connection, tenant_id)
                rows: list[dict[str, Any]] = []
                chained: list[StoredEvent] = []
                for index in by_tenant[tenant_id]:
                    event = events[index]
                    seq += 1
                    body = bodies[index]
                    digest = body_hash(prev, body)
                    item = StoredEvent(seq, prev, digest, event)
                    stored[index] = item
                    chained.append(item)
                    rows.append(_row(seq, prev, digest, event, body))
                    prev = digest
                await connection.execute(
                    update(audit_heads)
                    .where(audit_heads.c.tenant_id == tenant_id)
                    .values(seq=seq, hash=prev)
                )
                await connection.execute(audit_events.insert(), rows)
                keys = [
                    _key_row(events[index])
                    for index in by_tenant[tenant_id]
                    if events[index].metadata_key is not None
                ]
                if keys:  # wrapped DEKs of kept metadata, outside the hashed body
                    await connection.execute(audit_deks.insert(), keys)
                # Same transaction as the chain, so the read models can never disagree.
                await projections.apply(connection, projections.fold(chained))
        return [item for item in stored if item is not None]

    async def head(self, tenant_id: str) -> tuple[int, str] | None:
        """``(seq, hash)`` of the tenant's newest event; ``None`` before its first event."""
        async with connect_as(self.engine, tenant_id) as connection:
            return await _head(connection, tenant_id)

    async def count(self, tenant_id: str) -> int:
        async with connect_as(self.engine, tenant_id) as connection:
            query = select(func.count()).where(audit_events.c.tenant_id == tenant_id)
            return int((await connection.execute(query)).scalar_one())

    async def iter_events(
        self,
        tenant_id: str,
        *,
        since: str | None = None,
        until: str | None = None,
        batch: int = 1000,
    ) -> AsyncIterator[StoredEvent]:
        """The tenant's events in seq order, optionally limited to a time window.

        The window is turned into a *seq range*: from the first event with ``ts >= since``
        to the last with ``ts < until`` (string comparison of ISO UTC), everything in
        between included. Producers' clocks can disagree slightly, so filtering each row on
        ``ts`` could leave holes that look like deleted events; a seq range always verifies.
        Events appended after the call starts are not returned. Reads in batches of
        ``batch`` rows, each on a fresh connection, so a slow consumer holds no transaction.
        Raises :class:`CorruptEventError` for a row whose body is not a valid event.
        """
        async with connect_as(self.engine, tenant_id) as connection:
            bounds = await _seq_range(connection, tenant_id, since, until)
        if bounds is not None:
            async for stored in self._iter_seqs(tenant_id, *bounds, batch=batch):
                yield stored

    async def verify(self, tenant_id: str, *, since: str | None = None) -> VerifyResult:
        """Recompute the tenant's chain from the database.

        Without ``since`` the whole chain is checked from :data:`GENESIS_HASH` and must end
        exactly at the ``audit_heads`` row, so deleting the newest events is caught too.
        With ``since`` the check starts at the first event with ``ts >= since`` and trusts
        its ``prev_hash`` (see :func:`~llama_mapper.audit.chain.verify_chain`).
        """
        newest: int | None = None
        async with connect_as(self.engine, tenant_id) as connection:
            head = await _head(connection, tenant_id)
            first = 1
            if since is not None:
                bounds = await _seq_range(connection, tenant_id, since, None)
                if bounds is None:
                    return VerifyResult(True, 0, None, "no events in range")
                first = bounds[0]
            if head is None:
                # Read before the head, or a concurrent first append would look like tampering.
                newest = await _max_seq(connection, tenant_id)
        if head is None:
            if newest is None:
                return VerifyResult(True, 0, None, "no events")
            return VerifyResult(False, 0, first, "events exist but the chain head is missing")
        verifier: ChainVerifier | None = None
        try:
            if since is None:
                verifier = await self.chain_verifier(tenant_id)
            # Only up to the head read above: later events are concurrent appends.
            async for stored in self._iter_seqs(tenant_id, first, head[0]):
                if verifier is None:
                    verifier = ChainVerifier(stored.prev_hash)
                if not verifier.feed(stored):
                    return verifier.result()
        except CorruptEventError as exc:
            checked = verifier.checked + 1 if verifier is not None else 1
            return VerifyResult(False, checked, exc.seq, f"unreadable event: {exc.reason}")
        if verifier is None:
            return VerifyResult(True, 0, None, "no events in range")
        result = verifier.result()
        last = verifier.last
        if last is None or last.seq != head[0]:
            missing = last.seq + 1 if last is not None else first
            return VerifyResult(
                False, result.checked, missing, f"chain ends before the head (seq {head[0]})"
            )
        if last.hash != head[1]:
            return VerifyResult(
                False, result.checked, last.seq, "hash does not match the chain head"
            )
        return result

    async def chain_verifier(self, tenant_id: str) -> ChainVerifier:
        """A verifier for the tenant's whole surviving chain.

        From seq 1, or, once retention has run, from right after the newest tombstone
        (found through ``audit_heads.tombstone_seq``). Neither that column nor the row is
        trusted: the verifier re-checks the tombstone when its row is fed, and a column
        naming anything else falls back to seq 1, which a cut chain fails. Raises
        :class:`CorruptEventError` when the named row is unreadable.
        """
        async with connect_as(self.engine, tenant_id) as connection:
            tombstone = await boundary_tombstone(connection, tenant_id)
        return ChainVerifier() if tombstone is None else ChainVerifier.after_deletion(tombstone)

    async def stored_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        """The tenant's event ``event_id`` (``None`` if it has none by that id)."""
        query = select(audit_events).where(
            audit_events.c.tenant_id == tenant_id, audit_events.c.event_id == event_id
        )
        async with connect_as(self.engine, tenant_id) as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _stored(row)

    async def _iter_seqs(
        self, tenant_id: str, first: int, last: int, *, batch: int = 1000
    ) -> AsyncIterator[StoredEvent]:
        after = first - 1
        while after < last:
            query = (
                select(audit_events)
                .where(
                    audit_events.c.tenant_id == tenant_id,
                    audit_events.c.seq > after,
                    audit_events.c.seq <= last,
                )
                .order_by(audit_events.c.seq)
                .limit(batch)
            )
            async with connect_as(self.engine, tenant_id) as connection:
                rows = (await connection.execute(query)).all()
            if not rows:
                return
            for row in rows:
                yield _stored(row)
            after = rows[-1].seq


async def _lock_head(connection: AsyncConnection, tenant_id: str) -> tuple[int, str]:
    """Create the tenant's head row if needed and lock it; ``(seq, hash)`` of the chain end."""
    values = {"tenant_id": tenant_id, "seq": 0, "hash": GENESIS_HASH}
    dialect = connection.dialect.name
    if dialect == "postgresql":
        await connection.execute(pg_insert(audit_heads).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        await connection.execute(sqlite_insert(audit_heads).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two supported backends are configured
        raise ValueError(f"the evidence store does not support {dialect}")
    row = (
        await connection.execute(
            select(audit_heads.c.seq, audit_heads.c.hash)
            .where(audit_heads.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).one()
    return int(row.seq), str(row.hash)


async def boundary_tombstone(connection: AsyncConnection, tenant_id: str) -> StoredEvent | None:
    """The tombstone ``audit_heads.tombstone_seq`` names, if that row is one."""
    seq = (
        await connection.execute(
            select(audit_heads.c.tombstone_seq).where(audit_heads.c.tenant_id == tenant_id)
        )
    ).scalar()
    if seq is None:
        return None
    row = (
        await connection.execute(
            select(audit_events).where(
                audit_events.c.tenant_id == tenant_id, audit_events.c.seq == seq
            )
        )
    ).first()
    if row is None:
        return None
    stored = _stored(row)
    return stored if isinstance(stored.event, Tombstone) else None


async def _head(connection: AsyncConnection, tenant_id: str) -> tuple[int, str] | None:
    row = (
        await connection.execute(
            select(audit_heads.c.seq, audit_heads.c.hash).where(
                audit_heads.c.tenant_id == tenant_id
            )
        )
    ).first()
    if row is None or row.seq == 0:
        return None
    return int(row.seq), str(row.hash)


async def _max_seq(connection: AsyncConnection, tenant_id: str) -> int | None:
    query = select(func.max(audit_events.c.seq)).where(audit_events.c.tenant_id == tenant_id)
    value = (await connection.execute(query)).scalar()
    return None if value is None else int(value)


async def _seq_range(
    connection: AsyncConnection, tenant_id: str, since: str | None, until: str | None
) -> tuple[int, int] | None:
    """First and last seq of the window (see :meth:`EventStore.iter_events`), or ``None``."""
    tenant = audit_events.c.tenant_id == tenant_id
    first_query = select(func.min(audit_events.c.seq)).where(tenant)
    if since is not None:
        first_query = first_query.where(audit_events.c.ts >= since)
    last_query = select(func.max(audit_events.c.seq)).where(tenant)
    if until is not None:
        last_query = last_query.where(audit_events.c.ts < until)
    first = (await connection.execute(first_query)).scalar()
    last = (await connection.execute(last_query)).scalar()
    if first is None or last is None or first > last:
        return None
    return int(first), int(last)


def _key_row(event: MappingEvent) -> dict[str, Any]:
    kek_id, wrapped = event.metadata_key or ("", "")
    return {
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "kek_id": kek_id,
        "wrapped_dek": wrapped,
    }


def _row(seq: int, prev: str, digest: str, event: MappingEvent, body: bytes) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "seq": seq,
        "event_id": event.event_id,
        "ts": event.ts,
        "kind": event.kind,
        "detector": event.detector,
        "prev_hash": prev,
        "hash": digest,
        "body": body.decode(),
    }


def _stored(row: Row[Any]) -> StoredEvent:
    try:
        event = event_from_dict(orjson.loads(row.body))
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise CorruptEventError(row.tenant_id, row.seq, str(exc)) from None
    if event.tenant_id != row.tenant_id:
        # A row moved between tenants would otherwise verify inside the wrong chain.
        raise CorruptEventError(row.tenant_id, row.seq, "body belongs to another tenant")
    return StoredEvent(int(row.seq), str(row.prev_hash), str(row.hash), event)


#: For the modules that extend the store in the same transactions (retention, holds).
lock_head = _lock_head
stored_from_row = _stored
