"""Registered detectors in the database (table ``orch_detectors``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from detector_orchestration.registry.model import DetectorRecord, DetectorSpec, Health
from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE
from llama_mapper.storage.db.schema import orch_detectors


class RegistryError(Exception):
    """An unknown or duplicate detector; the message is safe to show."""


def _record(row: Any) -> DetectorRecord:
    m = row._mapping
    return DetectorRecord(
        name=m["name"],
        kind=m["kind"],
        endpoint=m["endpoint"],
        timeout_ms=int(m["timeout_ms"]),
        retries=int(m["retries"]),
        content_types=m["content_types"].split(),
        auth_secret=m["auth_secret"],
        pack=m["pack"],
        version=m["version"],
        settings=orjson.loads(m["settings"]),
        health=m["health"],
        health_checked_at=m["health_checked_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class RegistryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN
        IMMEDIATE), because a read that later upgrades to a write fails at once with
        "database is locked" when another writer (the evidence writer) is active."""
        return self.engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin()

    async def add(self, spec: DetectorSpec, *, replace: bool = False) -> DetectorRecord:
        now = datetime.now(UTC)
        values = {
            "name": spec.name,
            "kind": spec.kind,
            "endpoint": spec.endpoint,
            "timeout_ms": spec.timeout_ms,
            "retries": spec.retries,
            "content_types": " ".join(spec.content_types),
            "auth_secret": spec.auth_secret,
            "pack": spec.pack,
            "version": spec.version,
            "settings": orjson.dumps(spec.settings).decode(),
            "health": "unknown",
            "health_checked_at": None,
            "updated_at": now,
        }
        async with self._write() as connection:
            exists = await connection.scalar(
                select(orch_detectors.c.name).where(orch_detectors.c.name == spec.name)
            )
            if exists is not None and not replace:
                raise RegistryError(f"detector {spec.name!r} is already registered")
            try:
                if exists is None:
                    await connection.execute(
                        orch_detectors.insert().values(created_at=now, **values)
                    )
                else:
                    await connection.execute(
                        update(orch_detectors)
                        .where(orch_detectors.c.name == spec.name)
                        .values(**values)
                    )
            except IntegrityError:
                raise RegistryError(f"detector {spec.name!r} is already registered") from None
        return await self.get(spec.name)

    async def get(self, name: str) -> DetectorRecord:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(orch_detectors).where(orch_detectors.c.name == name)
                )
            ).first()
        if row is None:
            raise RegistryError(f"no detector named {name!r} is registered")
        return _record(row)

    async def list(self) -> list[DetectorRecord]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(orch_detectors).order_by(orch_detectors.c.name))
            return [_record(row) for row in rows]

    async def remove(self, name: str) -> None:
        async with self._write() as connection:
            result = await connection.execute(
                delete(orch_detectors).where(orch_detectors.c.name == name)
            )
        if not result.rowcount:
            raise RegistryError(f"no detector named {name!r} is registered")

    async def set_health(self, name: str, health: Health) -> None:
        async with self._write() as connection:
            await connection.execute(
                update(orch_detectors)
                .where(orch_detectors.c.name == name)
                .values(health=health, health_checked_at=datetime.now(UTC))
            )
