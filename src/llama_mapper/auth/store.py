"""``api_keys`` persistence over an ``AsyncEngine``: one code path for SQLite and PostgreSQL.

Only SQLAlchemy Core expressions are used (no dialect-specific SQL), so the embedded SQLite
default and production PostgreSQL behave the same. Every query that can be narrowed to a
tenant takes an optional ``tenant_id`` and filters on it, so callers that know the tenant
can never touch another tenant's keys (and row-level security can be added underneath).
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llama_mapper.auth.model import ApiKeyRecord
from llama_mapper.storage.db.schema import api_keys
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as


class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, record: ApiKeyRecord) -> None:
        """Insert a new key; a duplicate ``key_id`` raises ``sqlalchemy.exc.IntegrityError``."""
        async with self.engine.begin() as connection:
            await act_for(connection, record.tenant_id)
            await connection.execute(insert(api_keys).values(**_values(record)))

    async def get(self, key_id: str, tenant_id: str | None = None) -> ApiKeyRecord | None:
        """The key ``key_id``; without ``tenant_id`` (authentication, before the tenant is
        known) the lookup spans tenants through the row-level-security bypass."""
        async with connect_as(self.engine, _scope(tenant_id)) as connection:
            return await _get(connection, key_id, tenant_id)

    async def list(
        self, tenant_id: str | None = None, include_revoked: bool = False
    ) -> builtins.list[ApiKeyRecord]:
        """Keys ordered by tenant, then creation time; revoked keys only when asked for."""
        query = select(api_keys).order_by(
            api_keys.c.tenant_id, api_keys.c.created_at, api_keys.c.key_id
        )
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with connect_as(self.engine, _scope(tenant_id)) as connection:
            rows = (await connection.execute(query)).all()
        return [_record(row) for row in rows]

    async def revoke(
        self, key_id: str, at: datetime, tenant_id: str | None = None
    ) -> ApiKeyRecord | None:
        """Mark the key revoked at ``at`` (an earlier revocation stands); ``None`` if unknown."""
        async with self.engine.begin() as connection:
            await act_for(connection, _scope(tenant_id))
            await connection.execute(
                update(api_keys)
                .where(_key(key_id, tenant_id), api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return await _get(connection, key_id, tenant_id)

    async def expire(
        self, key_id: str, at: datetime, tenant_id: str | None = None
    ) -> ApiKeyRecord | None:
        """Make the key expire at ``at`` unless it already expires earlier; ``None`` if unknown."""
        async with self.engine.begin() as connection:
            await act_for(connection, _scope(tenant_id))
            await _expire(connection, key_id, at, tenant_id)
            return await _get(connection, key_id, tenant_id)

    async def rotate(
        self, new: ApiKeyRecord, old_key_id: str, old_expires_at: datetime
    ) -> ApiKeyRecord | None:
        """Insert ``new`` and shorten the old key's life in one transaction.

        Either both happen or neither does, so a failed rotation never leaves the tenant
        with an old key about to expire and no replacement. Returns the updated old record.
        """
        async with self.engine.begin() as connection:
            await act_for(connection, new.tenant_id)
            await connection.execute(insert(api_keys).values(**_values(new)))
            await _expire(connection, old_key_id, old_expires_at, new.tenant_id)
            return await _get(connection, old_key_id, new.tenant_id)


def _scope(tenant_id: str | None) -> str:
    """The row-level-security scope of a call: its tenant, or all tenants when unnamed."""
    return ALL_TENANTS if tenant_id is None else tenant_id


def _key(key_id: str, tenant_id: str | None) -> ColumnElement[bool]:
    condition = api_keys.c.key_id == key_id
    if tenant_id is not None:
        condition = and_(condition, api_keys.c.tenant_id == tenant_id)
    return condition


async def _get(
    connection: AsyncConnection, key_id: str, tenant_id: str | None
) -> ApiKeyRecord | None:
    row = (await connection.execute(select(api_keys).where(_key(key_id, tenant_id)))).first()
    return _record(row) if row is not None else None


async def _expire(
    connection: AsyncConnection, key_id: str, at: datetime, tenant_id: str | None
) -> None:
    await connection.execute(
        update(api_keys)
        .where(
            _key(key_id, tenant_id),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > at),
        )
        .values(expires_at=at)
    )


def _values(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "tenant_id": record.tenant_id,
        "scopes": " ".join(sorted(record.scopes)),
        "key_hash": record.key_hash,
        "pepper_version": record.pepper_version,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "rotated_from": record.rotated_from,
        "description": record.description,
    }


def _record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        scopes=frozenset(row.scopes.split()),
        key_hash=row.key_hash,
        pepper_version=row.pepper_version,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_from=row.rotated_from,
        description=row.description,
    )
