"""Applying the retention policy to the evidence store: delete, leave a tombstone.

For each tenant, in one transaction that holds the chain head locked (the same lock an
append takes, so several API workers and a cron ``mapper retention run`` can all run this
at once and each deletion happens exactly once):

1. skip the tenant if it is on legal hold (:mod:`llama_mapper.audit.holds`);
2. pick the run of oldest seqs past the cutoff (:func:`llama_mapper.retention.decide`);
3. fold those events into read-model deltas and note the last one's hash;
4. delete them and their wrapped data keys;
5. append a :class:`~llama_mapper.audit.events.Tombstone` at the head naming the range,
   the count, that hash, the cutoff and the reason, and point ``audit_heads`` at it;
6. subtract the deltas from the read models.

Large backlogs are deleted ``batch`` events per transaction, each with its own tombstone,
so no transaction grows without bound and appends wait at most one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llama_mapper.audit import projections
from llama_mapper.audit.chain import StoredEvent, body_hash, canonical_bytes
from llama_mapper.audit.events import Tombstone
from llama_mapper.audit.holds import is_held
from llama_mapper.audit.store import lock_head, stored_from_row
from llama_mapper.retention import Decision, RetentionPolicy, cutoff_for, decide, format_ts
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import audit_deks, audit_events, audit_heads
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as

logger = logging.getLogger("llama_mapper.audit")

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class TenantOutcome:
    """What a run did (or, dry, would do) for one tenant."""

    tenant_id: str
    cutoff: str
    held: bool
    deleted: int
    first_seq: int | None
    last_seq: int | None
    tombstones: tuple[int, ...] = ()
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant_id,
            "cutoff": self.cutoff,
            "held": self.held,
            "deleted": self.deleted,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "tombstone_seqs": list(self.tombstones),
            "dry_run": self.dry_run,
        }


async def tenants_with_events(engine: AsyncEngine) -> list[str]:
    """Every tenant with a chain, the default scope of a run."""
    query = select(audit_heads.c.tenant_id).where(audit_heads.c.seq > 0)
    # Finding the tenants spans them all: the row-level-security bypass. Each tenant's
    # decision and deletion then runs acting for that tenant only.
    async with connect_as(engine, ALL_TENANTS) as connection:
        return sorted(str(t) for t in (await connection.execute(query)).scalars())


async def run_retention(
    engine: AsyncEngine,
    policy: RetentionPolicy,
    *,
    tenants: Sequence[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = DEFAULT_BATCH,
) -> list[TenantOutcome]:
    """Apply ``policy`` to ``tenants`` (default: every tenant with events)."""
    moment = now or datetime.now(UTC)
    chosen = list(tenants) if tenants is not None else await tenants_with_events(engine)
    outcomes = []
    for tenant in chosen:
        cutoff = cutoff_for(policy, tenant, moment)
        if dry_run:
            async with connect_as(engine, tenant) as connection:
                decision = await _decide(connection, tenant, cutoff)
            outcomes.append(_outcome(decision, (), dry_run=True))
        else:
            outcomes.append(
                await _expire(engine, tenant, cutoff, policy.reason_for(tenant), moment, batch)
            )
    return outcomes


def _outcome(decision: Decision, tombstones: tuple[int, ...], *, dry_run: bool) -> TenantOutcome:
    return TenantOutcome(
        tenant_id=decision.tenant_id,
        cutoff=decision.cutoff,
        held=decision.held,
        deleted=decision.count,
        first_seq=decision.first_seq,
        last_seq=decision.last_seq,
        tombstones=tombstones,
        dry_run=dry_run,
    )


async def _decide(
    connection: AsyncConnection, tenant: str, cutoff: str, limit: int | None = None
) -> Decision:
    """The seqs to delete now, at most ``limit`` of them.

    Walks the primary key from the oldest surviving seq and stops at the first event that
    is not past the cutoff, so the cost follows what is deleted, not the chain's length.
    """
    tenant_rows = audit_events.c.tenant_id == tenant
    first, head = (
        await connection.execute(
            select(func.min(audit_events.c.seq), func.max(audit_events.c.seq)).where(tenant_rows)
        )
    ).one()
    young = None
    if first is not None:
        query = (
            select(audit_events.c.seq)
            .where(tenant_rows, audit_events.c.seq >= first, audit_events.c.ts >= cutoff)
            .order_by(audit_events.c.seq)
            .limit(1)
        )
        if limit is not None:
            query = query.where(audit_events.c.seq < first + limit)
        young = (await connection.execute(query)).scalar()
    decision = decide(
        tenant,
        cutoff,
        held=await is_held(connection, tenant),
        first_seq=first,
        head_seq=head,
        first_young_seq=young,
    )
    if limit is not None and decision.first_seq is not None and decision.count > limit:
        return Decision(
            tenant, cutoff, decision.held, decision.first_seq, decision.first_seq + limit - 1
        )
    return decision


async def _expire(
    engine: AsyncEngine, tenant: str, cutoff: str, reason: str, now: datetime, batch: int
) -> TenantOutcome:
    writer = engine.execution_options(**{SQLITE_IMMEDIATE: True})
    tombstones: list[int] = []
    first_deleted: int | None = None
    last_deleted: int | None = None
    count = 0
    held = False
    while True:
        async with writer.begin() as connection:
            # Deletion and tombstone are one tenant's rows: row-level security checks them.
            await act_for(connection, tenant)
            head_seq, head_hash = await lock_head(connection, tenant)
            decision = await _decide(connection, tenant, cutoff, limit=batch)
            held = decision.held
            if decision.first_seq is None or decision.last_seq is None:
                break
            tombstone_seq = await _delete_range(
                connection, decision, head_seq, head_hash, reason, now
            )
        tombstones.append(tombstone_seq)
        # Summed per batch, not taken from the seq range: a concurrent run may delete the
        # batches in between, and those are its deletions, not this run's.
        count += decision.count
        first_deleted = decision.first_seq if first_deleted is None else first_deleted
        last_deleted = decision.last_seq
    if count:
        logger.info("retention deleted %d events of a tenant in %d batches", count, len(tombstones))
    return TenantOutcome(
        tenant, cutoff, held, count, first_deleted, last_deleted, tuple(tombstones)
    )


async def _delete_range(
    connection: AsyncConnection,
    decision: Decision,
    head_seq: int,
    head_hash: str,
    reason: str,
    now: datetime,
) -> int:
    """Steps 3-6 of the module docstring for one batch; returns the tombstone's seq."""
    if decision.first_seq is None or decision.last_seq is None:
        raise ValueError("nothing to delete")
    tenant = decision.tenant_id
    in_range = (
        audit_events.c.tenant_id == tenant,
        audit_events.c.seq >= decision.first_seq,
        audit_events.c.seq <= decision.last_seq,
    )
    rows = (
        await connection.execute(select(audit_events).where(*in_range).order_by(audit_events.c.seq))
    ).all()
    if len(rows) != decision.count or rows[-1].seq != decision.last_seq:
        raise RuntimeError("the events to delete are not consecutive; verify the chain first")
    deleted = [stored_from_row(row) for row in rows]
    position = await _position(connection, tenant)
    await connection.execute(
        delete(audit_deks).where(
            audit_deks.c.tenant_id == tenant,
            audit_deks.c.event_id.in_(select(audit_events.c.event_id).where(*in_range)),
        )
    )
    await connection.execute(delete(audit_events).where(*in_range))
    tombstone = Tombstone(
        event_id=uuid.uuid4().hex,
        tenant_id=tenant,
        ts=format_ts(now),
        first_seq=decision.first_seq,
        last_seq=decision.last_seq,
        count=decision.count,
        last_hash=deleted[-1].hash,
        cutoff=decision.cutoff,
        reason=reason,
    )
    seq = head_seq + 1
    body = canonical_bytes(tombstone)
    digest = body_hash(head_hash, body)
    await connection.execute(
        audit_events.insert().values(
            tenant_id=tenant,
            seq=seq,
            event_id=tombstone.event_id,
            ts=tombstone.ts,
            kind=tombstone.kind,
            detector="",
            prev_hash=head_hash,
            hash=digest,
            body=body.decode(),
        )
    )
    await connection.execute(
        update(audit_heads)
        .where(audit_heads.c.tenant_id == tenant)
        .values(seq=seq, hash=digest, tombstone_seq=seq)
    )
    if position == head_seq:
        # Current read models: take the deleted events out. Stale ones stay stale (a
        # rebuild recomputes them from what survives).
        await projections.subtract(connection, tenant, projections.fold(deleted))
    stored = StoredEvent(seq, head_hash, digest, tombstone)
    await projections.apply(connection, projections.fold([stored]))
    return seq


async def _position(connection: AsyncConnection, tenant: str) -> int:
    from llama_mapper.storage.db.schema import proj_positions

    value = (
        await connection.execute(
            select(proj_positions.c.seq).where(proj_positions.c.tenant_id == tenant)
        )
    ).scalar()
    return 0 if value is None else int(value)


class RetentionTask:
    """Runs retention every ``interval`` seconds in the server (0 disables it).

    Safe with several workers: every run locks each tenant's head before deciding, so
    concurrent runs serialise per tenant and the later ones find nothing left to delete.
    The first run waits one interval, so a restart loop does not hammer the database.
    Failures are logged by type only (driver messages may echo parameters) and retried
    at the next interval.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        policy: RetentionPolicy,
        interval: float,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("the retention interval must be positive")
        self._engine = engine
        self._policy = policy
        self._interval = interval
        self._clock = clock or (lambda: datetime.now(UTC))
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.deleted = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="llama-mapper-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> list[TenantOutcome]:
        outcomes = await run_retention(self._engine, self._policy, now=self._clock())
        self.runs += 1
        self.deleted += sum(outcome.deleted for outcome in outcomes)
        return outcomes

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except Exception as exc:
                logger.warning("retention run failed (%s); retrying later", type(exc).__name__)
