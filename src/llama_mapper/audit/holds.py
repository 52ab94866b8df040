"""Legal holds: while a tenant is held, retention deletes nothing of its evidence.

Holds live in the database (``retention_holds``), not in configuration, because every
worker and every ``mapper retention run`` must see the same answer, and because who set or
released a hold, when and why, is itself something an auditor asks about. Setting a hold
locks the tenant's chain head like an append does, so it cannot slip in between a
retention run's check and its deletion: a run either sees the hold or finishes first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llama_mapper.audit.store import lock_head
from llama_mapper.config.overlays import TENANT_ID
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import retention_holds
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as

_MAX_TEXT = 500


class HoldError(ValueError):
    """A hold could not be set or released; one line for the CLI."""


@dataclass(frozen=True)
class Hold:
    hold_id: str
    tenant_id: str
    reason: str
    set_by: str
    set_at: datetime
    released_by: str | None
    release_reason: str | None
    released_at: datetime | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_dict(self) -> dict[str, object]:
        return {
            "hold_id": self.hold_id,
            "tenant_id": self.tenant_id,
            "reason": self.reason,
            "set_by": self.set_by,
            "set_at": self.set_at.isoformat(),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "active": self.active,
        }


def _check_text(name: str, value: str) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > _MAX_TEXT:
        raise HoldError(f"{name} must be 1 to {_MAX_TEXT} characters")
    return value


def _check_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
        raise HoldError(f"invalid tenant id {str(tenant_id)[:70]!r}")
    return tenant_id


async def is_held(connection: AsyncConnection, tenant_id: str) -> bool:
    """Whether the tenant has an active hold (read in the caller's transaction).

    Under row-level security a transaction acting for nobody sees no holds, and "not
    held" would then let retention delete held evidence; so this makes the rest of the
    caller's transaction act for ``tenant_id`` (its callers go on with that tenant anyway).
    """
    await act_for(connection, tenant_id)
    query = (
        select(retention_holds.c.hold_id)
        .where(retention_holds.c.tenant_id == tenant_id, retention_holds.c.released_at.is_(None))
        .limit(1)
    )
    return (await connection.execute(query)).first() is not None


async def set_hold(
    engine: AsyncEngine, tenant_id: str, reason: str, set_by: str, now: datetime | None = None
) -> Hold:
    """Place a hold on ``tenant_id``; :class:`HoldError` if one is already active."""
    hold = Hold(
        hold_id=uuid.uuid4().hex,
        tenant_id=_check_tenant(tenant_id),
        reason=_check_text("reason", reason),
        set_by=_check_text("who", set_by),
        set_at=now or datetime.now(UTC),
        released_by=None,
        release_reason=None,
        released_at=None,
    )
    writer = engine.execution_options(**{SQLITE_IMMEDIATE: True})
    async with writer.begin() as connection:
        await act_for(connection, hold.tenant_id)
        await lock_head(connection, tenant_id)  # serialises with retention runs
        if await is_held(connection, tenant_id):
            raise HoldError(f"tenant {tenant_id} is already on legal hold")
        await connection.execute(
            retention_holds.insert().values(
                hold_id=hold.hold_id,
                tenant_id=hold.tenant_id,
                reason=hold.reason,
                set_by=hold.set_by,
                set_at=hold.set_at,
            )
        )
    return hold


async def release_hold(
    engine: AsyncEngine,
    tenant_id: str,
    reason: str,
    released_by: str,
    now: datetime | None = None,
) -> int:
    """Release the tenant's active holds; returns how many. :class:`HoldError` if none."""
    reason = _check_text("reason", reason)
    released_by = _check_text("who", released_by)
    writer = engine.execution_options(**{SQLITE_IMMEDIATE: True})
    async with writer.begin() as connection:
        await act_for(connection, tenant_id)
        result = await connection.execute(
            update(retention_holds)
            .where(
                retention_holds.c.tenant_id == tenant_id,
                retention_holds.c.released_at.is_(None),
            )
            .values(
                released_by=released_by,
                release_reason=reason,
                released_at=now or datetime.now(UTC),
            )
        )
        if not result.rowcount:
            raise HoldError(f"tenant {tenant_id} has no active legal hold")
        return int(result.rowcount)


async def list_holds(
    engine: AsyncEngine, tenant_id: str | None = None, *, active_only: bool = False
) -> list[Hold]:
    """Holds (newest first), of one tenant or all; released ones too unless ``active_only``."""
    query = select(retention_holds).order_by(
        retention_holds.c.set_at.desc(), retention_holds.c.hold_id
    )
    if tenant_id is not None:
        query = query.where(retention_holds.c.tenant_id == tenant_id)
    if active_only:
        query = query.where(retention_holds.c.released_at.is_(None))
    # Without a tenant the listing spans tenants (``mapper retention holds``): the bypass.
    scope = ALL_TENANTS if tenant_id is None else tenant_id
    async with connect_as(engine, scope) as connection:
        rows = (await connection.execute(query)).all()
    return [
        Hold(
            hold_id=row.hold_id,
            tenant_id=row.tenant_id,
            reason=row.reason,
            set_by=row.set_by,
            set_at=row.set_at,
            released_by=row.released_by,
            release_reason=row.release_reason,
            released_at=row.released_at,
        )
        for row in rows
    ]
