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

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.audit.events import MappingEvent
from llama_mapper.audit.store import EventStore
from llama_mapper.crypto import DecryptionError, KeyWrapper, open_fields
from llama_mapper.storage.db.schema import audit_deks


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
    async with store.engine.connect() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        raise DecryptionError("the event's data key is gone (deleted or never stored)")
    dek = wrapper.unwrap(row.kek_id, row.wrapped_dek, tenant_id)
    return open_fields(dek, tenant_id, event_id, event.metadata)


async def rewrap(
    engine: AsyncEngine, wrapper: KeyWrapper, tenant_id: str, *, batch: int = 500
) -> RewrapResult:
    """Re-wrap every DEK of ``tenant_id`` under the newest KEK; ciphertexts stay as they are.

    Rows sharing a wrapped DEK (one per-tenant key serves many events) are re-wrapped once.
    Each row is updated only if it still holds the value read, so a concurrent re-wrap
    cannot be overwritten with an older one. Safe to interrupt and re-run.
    """
    rewrapped = current = 0
    after = ""
    while True:
        query = (
            select(audit_deks.c.event_id, audit_deks.c.kek_id, audit_deks.c.wrapped_dek)
            .where(audit_deks.c.tenant_id == tenant_id, audit_deks.c.event_id > after)
            .order_by(audit_deks.c.event_id)
            .limit(batch)
        )
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        if not rows:
            return RewrapResult(tenant_id, rewrapped, current)
        done: dict[tuple[str, str], tuple[str, str] | None] = {}
        updates = []
        for row in rows:
            key = (str(row.kek_id), str(row.wrapped_dek))
            if key not in done:
                done[key] = wrapper.rewrap(key[0], key[1], tenant_id)
            new = done[key]
            if new is None:
                current += 1
            else:
                updates.append((row.event_id, key, new))
        if updates:
            async with engine.begin() as connection:
                for event_id, (old_id, old_wrapped), (new_id, new_wrapped) in updates:
                    result = await connection.execute(
                        update(audit_deks)
                        .where(
                            audit_deks.c.tenant_id == tenant_id,
                            audit_deks.c.event_id == event_id,
                            audit_deks.c.kek_id == old_id,
                            audit_deks.c.wrapped_dek == old_wrapped,
                        )
                        .values(kek_id=new_id, wrapped_dek=new_wrapped)
                    )
                    rewrapped += int(result.rowcount or 0)
        after = str(rows[-1].event_id)


async def tenants_with_keys(engine: AsyncEngine) -> list[str]:
    query = select(audit_deks.c.tenant_id).distinct().order_by(audit_deks.c.tenant_id)
    async with engine.connect() as connection:
        return [str(t) for t in (await connection.execute(query)).scalars()]
