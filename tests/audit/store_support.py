"""Events and databases for the evidence-store tests."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from tests.db.support import postgres_schema, schema_engine

from llama_mapper.audit import MappingEvent
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade


def make_event(tenant: str, n: int, *, ts: str | None = None, score: float = 0.5) -> MappingEvent:
    return MappingEvent(
        event_id=f"{tenant}-ev-{n}",
        tenant_id=tenant,
        request_id=f"req-{n}",
        ts=ts or f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        route="/map",
        detector="llama-guard",
        detector_version="3.1",
        labels=("HARM.VIOLENCE", "PII.EMAIL"),
        scores={"PII.EMAIL": score, "HARM.VIOLENCE": 0.25},
        confidence=0.9,
        methods={"PII.EMAIL": "direct", "HARM.VIOLENCE": "fuzzy"},
        versions={"taxonomy": "2026.1", "frameworks": "2026.1", "model": None},
        controls=("GDPR:Art.32", "SOC2:CC6.1"),
        output_fingerprint=hashlib.sha256(f"out-{n}".encode()).hexdigest(),
        fingerprint_version="k1",
    )


@contextlib.asynccontextmanager
async def shared_engines(backend: str, tmp_path: Path, n: int) -> AsyncIterator[list[AsyncEngine]]:
    """``n`` engines (think: processes) on one freshly migrated database of ``backend``."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
            engines = [create_engine(url) for _ in range(n)]
        else:
            url, schema = await stack.enter_async_context(postgres_schema())
            engines = [schema_engine(url, schema) for _ in range(n)]
        for engine in engines:
            stack.push_async_callback(engine.dispose)
        await upgrade(engines[0])
        yield engines
