"""Versioned policy bundles in the database: submit -> pending -> approve -> active.

Per (tenant, bundle) every submission gets the next version number. Approving a pending
version makes it ``active`` and the one it replaces ``superseded``; rejecting marks it
``rejected``; rolling back marks the active one ``rolled_back`` and re-activates the newest
superseded version below it. At most one version is active at a time; each transition is
one transaction, guarded by the expected current status so racing admins cannot both win.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Update, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from detector_orchestration.policy.model import PolicyBundle, PolicyError, parse_bundle
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import orch_policies
from llama_mapper.storage.db.tenancy import act_for, connect_as


class Status(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled_back"


class PolicyStoreError(Exception):
    """An impossible transition or an unknown version; the message is safe to show."""


@dataclass(frozen=True)
class PolicyVersion:
    tenant_id: str
    bundle: str
    version: int
    status: Status
    document: str
    digest: str
    created_at: datetime
    decided_at: datetime | None

    def parsed(self) -> PolicyBundle:
        return parse_bundle(self.document, f"{self.bundle}@{self.version}")

    def summary(self) -> dict[str, object]:
        return {
            "tenant_id": self.tenant_id,
            "bundle": self.bundle,
            "version": self.version,
            "status": self.status.value,
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def _row(row: object) -> PolicyVersion:
    m = row._mapping  # type: ignore[attr-defined]
    return PolicyVersion(
        m["tenant_id"],
        m["bundle"],
        int(m["version"]),
        Status(m["status"]),
        m["document"],
        m["digest"],
        m["created_at"],
        m["decided_at"],
    )


class PolicyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _write(self, tenant_id: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction acting for ``tenant_id`` (row-level security on PostgreSQL);
        on SQLite it takes the write lock up front (BEGIN IMMEDIATE), because a read that
        later upgrades to a write fails at once with "database is locked" when another
        writer (the evidence writer) is active."""
        async with self.engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
            await act_for(connection, tenant_id)
            yield connection

    async def submit(self, tenant_id: str, document: str) -> PolicyVersion:
        """Validate and store ``document`` as the next pending version of its bundle."""
        bundle = parse_bundle(document)  # PolicyError for a bad bundle: nothing stored
        digest = hashlib.sha256(document.encode()).hexdigest()
        for _ in range(5):  # two concurrent submissions race for the same version number
            try:
                async with self._write(tenant_id) as connection:
                    latest = await connection.scalar(
                        select(func.max(orch_policies.c.version)).where(
                            orch_policies.c.tenant_id == tenant_id,
                            orch_policies.c.bundle == bundle.name,
                        )
                    )
                    version = int(latest or 0) + 1
                    values = {
                        "tenant_id": tenant_id,
                        "bundle": bundle.name,
                        "version": version,
                        "status": Status.PENDING.value,
                        "document": document,
                        "digest": digest,
                        "created_at": datetime.now(UTC),
                        "decided_at": None,
                    }
                    await connection.execute(orch_policies.insert().values(**values))
                return await self.get(tenant_id, bundle.name, version)
            except IntegrityError:
                continue
        raise PolicyStoreError("too many concurrent submissions of this bundle; retry")

    async def get(self, tenant_id: str, bundle: str, version: int) -> PolicyVersion:
        async with connect_as(self.engine, tenant_id) as connection:
            row = (
                await connection.execute(
                    select(orch_policies).where(
                        orch_policies.c.tenant_id == tenant_id,
                        orch_policies.c.bundle == bundle,
                        orch_policies.c.version == version,
                    )
                )
            ).first()
        if row is None:
            raise PolicyStoreError(f"no version {version} of bundle {bundle!r} for this tenant")
        return _row(row)

    async def active(self, tenant_id: str, bundle: str) -> PolicyVersion | None:
        async with connect_as(self.engine, tenant_id) as connection:
            row = (
                await connection.execute(
                    select(orch_policies).where(
                        orch_policies.c.tenant_id == tenant_id,
                        orch_policies.c.bundle == bundle,
                        orch_policies.c.status == Status.ACTIVE.value,
                    )
                )
            ).first()
        return None if row is None else _row(row)

    async def list(self, tenant_id: str, bundle: str | None = None) -> list[PolicyVersion]:
        query = select(orch_policies).where(orch_policies.c.tenant_id == tenant_id)
        if bundle is not None:
            query = query.where(orch_policies.c.bundle == bundle)
        query = query.order_by(orch_policies.c.bundle, orch_policies.c.version)
        async with connect_as(self.engine, tenant_id) as connection:
            return [_row(row) for row in await connection.execute(query)]

    async def approve(self, tenant_id: str, bundle: str, version: int) -> PolicyVersion:
        async with self._write(tenant_id) as connection:
            await self._expect(connection, tenant_id, bundle, version, Status.PENDING)
            now = datetime.now(UTC)
            await connection.execute(
                self._set(tenant_id, bundle, Status.SUPERSEDED, now).where(
                    orch_policies.c.status == Status.ACTIVE.value
                )
            )
            await connection.execute(
                self._set(tenant_id, bundle, Status.ACTIVE, now).where(
                    orch_policies.c.version == version
                )
            )
        return await self.get(tenant_id, bundle, version)

    async def reject(self, tenant_id: str, bundle: str, version: int) -> PolicyVersion:
        async with self._write(tenant_id) as connection:
            await self._expect(connection, tenant_id, bundle, version, Status.PENDING)
            await connection.execute(
                self._set(tenant_id, bundle, Status.REJECTED, datetime.now(UTC)).where(
                    orch_policies.c.version == version
                )
            )
        return await self.get(tenant_id, bundle, version)

    async def rollback(self, tenant_id: str, bundle: str) -> PolicyVersion:
        """Re-activate the newest superseded version below the active one."""
        async with self._write(tenant_id) as connection:
            current = await self._active_in(connection, tenant_id, bundle)
            if current is None:
                raise PolicyStoreError(f"bundle {bundle!r} has no active version to roll back")
            previous = await connection.scalar(
                select(func.max(orch_policies.c.version)).where(
                    orch_policies.c.tenant_id == tenant_id,
                    orch_policies.c.bundle == bundle,
                    orch_policies.c.status == Status.SUPERSEDED.value,
                    orch_policies.c.version < current,
                )
            )
            if previous is None:
                raise PolicyStoreError(f"bundle {bundle!r} has no earlier approved version")
            now = datetime.now(UTC)
            await connection.execute(
                self._set(tenant_id, bundle, Status.ROLLED_BACK, now).where(
                    orch_policies.c.version == current
                )
            )
            await connection.execute(
                self._set(tenant_id, bundle, Status.ACTIVE, now).where(
                    orch_policies.c.version == int(previous)
                )
            )
        return await self.get(tenant_id, bundle, int(previous))

    @staticmethod
    def _set(tenant_id: str, bundle: str, status: Status, now: datetime) -> Update:
        return (
            update(orch_policies)
            .where(and_(orch_policies.c.tenant_id == tenant_id, orch_policies.c.bundle == bundle))
            .values(status=status.value, decided_at=now)
        )

    @staticmethod
    async def _active_in(connection: AsyncConnection, tenant_id: str, bundle: str) -> int | None:
        value = await connection.scalar(
            select(orch_policies.c.version).where(
                orch_policies.c.tenant_id == tenant_id,
                orch_policies.c.bundle == bundle,
                orch_policies.c.status == Status.ACTIVE.value,
            )
        )
        return None if value is None else int(value)

    @staticmethod
    async def _expect(
        connection: AsyncConnection, tenant_id: str, bundle: str, version: int, status: Status
    ) -> None:
        found = await connection.scalar(
            select(orch_policies.c.status)
            .where(
                orch_policies.c.tenant_id == tenant_id,
                orch_policies.c.bundle == bundle,
                orch_policies.c.version == version,
            )
            .with_for_update()
        )
        if found is None:
            raise PolicyStoreError(f"no version {version} of bundle {bundle!r} for this tenant")
        if found != status.value:
            raise PolicyStoreError(
                f"version {version} of {bundle!r} is {found}, not {status.value}"
            )


__all__ = ["PolicyError", "PolicyStore", "PolicyStoreError", "PolicyVersion", "Status"]
