"""audit.writer = "process": evidence chained and committed by a child process, with the
same chain, read models, sync semantics and failure reporting as the inline writer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.db.support import BACKENDS, postgres_database

from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore, projections
from llama_mapper.audit.writer_process import ProcessStore, WriterProcessError, draft
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.runtime import build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade

ONE = {"detector": "llama-guard", "output": "unsafe\nS1", "tenant_id": "acme"}


def _response(tenant: str, n: int, ts: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "taxonomy": ["HARM.VIOLENCE"],
        "scores": {"HARM.VIOLENCE": 0.9},
        "confidence": 0.9,
        "frameworks": {"HARM.VIOLENCE": ["SOC2:CC6.1"]},
        "version_info": {"taxonomy": "t", "frameworks": "f", "model": None},
        "provenance": {
            "tenant_id": tenant,
            "request_id": f"r{n}",
            "ts": ts,
            "route": "/map",
            "detector": "llama-guard",
            "detector_version": "3",
            "method": {"HARM.VIOLENCE": "direct"},
        },
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("durability", ["async", "sync"])
async def test_the_api_records_through_the_writer_process(
    state_dir: Path, catalog: Catalog, backend: str, durability: str
) -> None:
    database: dict[str, str] = {}
    pg = postgres_database() if backend == "postgresql" else contextlib.nullcontext("")
    async with pg as url:
        if url:
            database["url"] = url
        settings = load_settings(
            audit={"writer": "process", "durability": durability}, database=database
        )
        runtime = build_runtime(settings, service=MapperService(settings, catalog))
        await upgrade(runtime.engine)
        app = create_app(runtime=runtime)
        store = EventStore(runtime.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            assert (await client.post("/map", json=ONE)).status_code == 200
            if durability == "sync":  # answered only after the child committed it
                assert await store.count("acme") == 1
            batch = {"requests": [ONE] * 50}
            assert (await client.post("/map/batch", json=batch)).json()["failed"] == 0
        process = runtime.writer_process
        assert process is not None
        assert runtime.events is not None
        await runtime.events.stop()
        assert await store.count("acme") == 51
        result = await store.verify("acme")
        assert result.ok, result.reason
        assert await projections.position(runtime.engine, "acme") == 51
        await runtime.aclose()
        assert process.pid is None  # closed: the child exits with its pipe


async def test_a_dead_child_is_restarted_and_errors_come_back_by_type(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    await upgrade(url)
    sink = ProcessStore(Settings(database={"url": url}))
    try:
        await sink.append([draft(_response("a", 1), ("ab" * 32, "k1"))])
        child = sink.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        await asyncio.sleep(0.5)
        await sink.append([draft(_response("a", 2), ("cd" * 32, "k1"))])  # restarted
        assert sink.pid not in (None, child)
        with pytest.raises(WriterProcessError, match="ValueError"):
            # Not UTC: the child refuses the whole batch and says only the error's type.
            await sink.append(
                [draft(_response("a", 3, ts="2026-01-01T00:00:00+02:00"), ("ef" * 32, "k1"))]
            )
    finally:
        await sink.close()
    engine = create_engine(url)
    try:
        store = EventStore(engine)
        assert await store.count("a") == 2
        assert (await store.verify("a")).ok
    finally:
        await engine.dispose()
