"""Every answered mapping leaves one hash-chained MappingEvent, and nothing raw."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore
from llama_mapper.catalog import Catalog
from llama_mapper.cli.main import app as cli
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

SECRET_OUTPUT = [{"entity_type": "EMAIL_ADDRESS", "start": 0, "end": 17, "score": 0.9}]


@pytest.mark.parametrize("durability", ["async", "sync"])
async def test_mappings_become_a_verifiable_chain(
    state_dir: Path, catalog: Catalog, durability: str
) -> None:
    settings = load_settings(audit={"durability": durability})
    runtime = build_runtime(settings, service=MapperService(settings, catalog))
    await upgrade(runtime.engine)
    app = create_app(runtime=runtime)
    store = EventStore(runtime.engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        one = {"detector": "presidio", "output": SECRET_OUTPUT, "tenant_id": "acme"}
        assert (await c.post("/map", json=one)).status_code == 200
        if durability == "sync":  # answered only after the commit
            assert await store.count("acme") == 1
        batch = [one, {"detector": "llama-guard", "output": "unsafe\nS1", "tenant_id": "acme"},
                 {"detector": "presidio"}]  # fmt: skip
        assert (await c.post("/map/batch", json={"requests": batch})).json()["failed"] == 1
        bad = await c.post("/map", json={"detector": "presidio", "output": "", "tenant_id": "acme"})
        assert bad.status_code == 422  # refused requests leave no event
    assert runtime.events is not None
    await runtime.events.stop()
    assert await store.count("acme") == 3
    result = await store.verify("acme")
    assert result.ok, result.reason
    events = [stored.event async for stored in store.iter_events("acme")]
    assert [e.route for e in events] == ["/map", "/map/batch", "/map/batch"]
    assert events[0].labels == ("PII.Contact.Email",)
    assert events[0].controls
    assert set(events[0].controls) <= set(catalog.frameworks.controls)
    assert events[0].output_fingerprint == events[1].output_fingerprint  # same raw output
    assert events[0].output_fingerprint != events[2].output_fingerprint
    await runtime.aclose()
    verified = await asyncio.to_thread(
        CliRunner().invoke, cli, ["audit", "verify", "--tenant", "acme"]
    )
    assert verified.exit_code == 0, verified.output
    # The database holds labels and a keyed fingerprint, never the output itself.
    raw = b"".join(p.read_bytes() for p in state_dir.glob("mapper.db*"))
    assert b"EMAIL_ADDRESS" not in raw
    assert b"unsafe" not in raw
    rows = sqlite3.connect(state_dir / "mapper.db").execute("SELECT body FROM audit_events")
    assert all("EMAIL_ADDRESS" not in body for (body,) in rows)
