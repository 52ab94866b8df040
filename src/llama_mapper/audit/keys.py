"""Wrapped data keys of kept metadata: reading them back, and re-wrapping under a new KEK.

Why the DEK lives in ``audit_deks`` and not in the event body: the chain hash covers the
body, which holds the *ciphertexts* (and nonces) of the kept fields. Those never change.
The wrapped DEK does change whenever the KEK rotates; keeping it out of the body means a
re-wrap updates one row per event and leaves every chain hash, export and anchor valid.
Deleting an event's DEK row (retention does) makes its kept metadata unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.audit.events import MappingEvent
from llama_mapper.audit.store import EventStore
from llama_mapper.crypto import DecryptionError, KeyWrapper, open_fields
from llama_mapper.storage.db.schema import audit_deks
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as


class MetadataNotFound(ValueError):
    """No such event, or it keeps no metadata; one line for the CLI."""


@dataclass(frozen=True)
class RewrapResult:
    tenant_id: str
    rewrapped: int
    already_current: int


async def reveal_metadata(
    store: EventStore, wrapper: KeyWrapper, tenant_id: str, event_id: str
) -> dict[str, Any]:
    """The kept metadata of one event, decrypted. Only for explicit operator commands.

    Fails closed: a missing or unwrappable DEK, or a ciphertext that does not open under
    it, raises :class:`~llama_mapper.crypto.DecryptionError`; nothing partial is returned.
    """
    stored = await store.stored_event(tenant_id, event_id)
    if stored is None or not isinstance(stored.event, MappingEvent):
        raise MetadataNotFound(f"tenant {tenant_id} has no mapping event {event_id[:64]!r}")
    event = stored.event
    if not event.metadata:
        raise MetadataNotFound(f"event {event_id[:64]!r} keeps no metadata")
    query = select(audit_deks.c.kek_id, audit_deks.c.wrapped_dek).where(
        audit_deks.c.tenant_id == tenant_id, audit_deks.c.event_id == event_id
    )
    async with connect_as(store.engine, tenant_id) as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        raise DecryptionError("the event's data key is gone (deleted or never stored)")
    dek = wrapper.unwrap(row.kek_id, row.wrapped_dek, tenant_id)
    return open_fields(dek, tenant_id, event_id, event.metadata)


async def rewrap(engine: AsyncEngine, wrapper: KeyWrapper, tenant_id: str) -> RewrapResult:
    """Re-wrap every DEK of ``tenant_id`` under the newest KEK; ciphertexts stay as they are.

    One per-tenant DEK serves many events, so each distinct wrapped value is re-wrapped
    once and all its rows are updated by one statement; counts are of events. An update
    applies only to rows that still hold the value read, so a concurrent re-wrap is never
    overwritten with an older one. Safe to interrupt and re-run.
    """
    query = (
        select(audit_deks.c.kek_id, audit_deks.c.wrapped_dek, func.count())
        .where(audit_deks.c.tenant_id == tenant_id)
        .group_by(audit_deks.c.kek_id, audit_deks.c.wrapped_dek)
    )
    async with connect_as(engine, tenant_id) as connection:
        keys = [(str(k), str(w), int(n)) for k, w, n in (await connection.execute(query)).all()]
    rewrapped = current = 0
    for kek_id, wrapped, events in keys:
        new = wrapper.rewrap(kek_id, wrapped, tenant_id)
        if new is None:
            current += events
            continue
        async with engine.begin() as connection:
            await act_for(connection, tenant_id)
            result = await connection.execute(
                update(audit_deks)
                .where(
                    audit_deks.c.tenant_id == tenant_id,
                    audit_deks.c.kek_id == kek_id,
                    audit_deks.c.wrapped_dek == wrapped,
                )
                .values(kek_id=new[0], wrapped_dek=new[1])
            )
        rewrapped += int(result.rowcount or 0)
    return RewrapResult(tenant_id, rewrapped, current)


async def tenants_with_keys(engine: AsyncEngine) -> list[str]:
    """Every tenant with a wrapped data key, for ``mapper audit rewrap`` of all tenants."""
    query = select(audit_deks.c.tenant_id).distinct().order_by(audit_deks.c.tenant_id)
    # Listing tenants spans them all: the row-level-security bypass (no key is read here;
    # each tenant is then re-wrapped acting for itself only).
    async with connect_as(engine, ALL_TENANTS) as connection:
        return [str(t) for t in (await connection.execute(query)).scalars()]
