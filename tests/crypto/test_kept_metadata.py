"""Kept metadata in the evidence store (SQLite and real PostgreSQL) and through the API:
encrypted at rest, decrypted only on request, re-wrapped without touching the chain."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.audit.store_support import make_event, shared_engines
from tests.db.support import BACKENDS
from typer.testing import CliRunner

from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore
from llama_mapper.audit.keys import MetadataNotFound, reveal_metadata, rewrap
from llama_mapper.audit.retention import run_retention
from llama_mapper.catalog import Catalog
from llama_mapper.cli.main import app as cli
from llama_mapper.config.settings import SecretsSettings, load_settings
from llama_mapper.crypto import DecryptionError, MetadataSealer, key_wrapper
from llama_mapper.privacy.guard import RawContentError
from llama_mapper.retention import RetentionPolicy
from llama_mapper.runtime import build_runtime
from llama_mapper.secrets import EnvSecretProvider, env_var_name
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.db.schema import audit_deks, audit_events

KEK = "audit_metadata_kek"
TICKET = "TCK-8812-PLAINTEXT-MARKER"
OWNER = "owner-zq7-marker"
runner = CliRunner()


def _wrapper(environ: dict[str, str]) -> Any:
    return key_wrapper(EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ), KEK)


async def _append_kept(store: EventStore, sealer: MetadataSealer, n: int) -> list[str]:
    ids = []
    events = []
    for i in range(n):
        event = make_event("acme", i, ts=f"2026-11-0{1 + i % 9}T00:00:00Z")
        sealed = sealer.seal(
            "acme", event.event_id, {"ticket": f"{TICKET}-{i}", "owner": OWNER}, ["ticket"]
        )
        assert sealed is not None
        events.append(dataclasses.replace(event, metadata=sealed[0], metadata_key=sealed[1]))
        ids.append(event.event_id)
    await store.append(events)
    return ids


async def _chain_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    query = select(audit_events.c.seq, audit_events.c.hash, audit_events.c.body).order_by(
        audit_events.c.seq
    )
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]


async def _all_text(engine: AsyncEngine) -> str:
    """Every row of every table, as text (what someone with the database sees)."""
    from llama_mapper.storage.db.schema import metadata

    parts = []
    async with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            parts.extend(repr(tuple(row)) for row in rows)
    return "\n".join(parts)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_round_trip_rewrap_rotation_and_privacy(backend: str, tmp_path: Path) -> None:
    environ = {env_var_name(KEK): "kek-one"}
    wrapper = _wrapper(environ)
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        ids = await _append_kept(store, MetadataSealer(wrapper), 3)
        assert await reveal_metadata(store, wrapper, "acme", ids[1]) == {"ticket": f"{TICKET}-1"}
        # Privacy: neither the kept value nor the dropped one is stored in clear.
        dump = await _all_text(engine)
        assert TICKET not in dump
        assert OWNER not in dump
        assert '"ticket"' in dump  # the field name is, with its ciphertext
        if backend == "sqlite":
            raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
            assert TICKET.encode() not in raw
            assert OWNER.encode() not in raw
        # Rotate the KEK: old events still open under the previous version.
        environ[env_var_name(KEK)] = "kek-two"
        environ[env_var_name(KEK) + "_PREVIOUS"] = "kek-one"
        assert await reveal_metadata(store, wrapper, "acme", ids[0]) == {"ticket": f"{TICKET}-0"}
        before = await _chain_rows(engine)
        result = await rewrap(engine, wrapper, "acme")
        assert (result.rewrapped, result.already_current) == (3, 0)
        assert await _chain_rows(engine) == before  # ciphertexts and hashes untouched
        assert (await store.verify("acme")).ok
        async with engine.connect() as connection:
            kek_ids = set((await connection.execute(select(audit_deks.c.kek_id))).scalars())
        assert len(kek_ids) == 1
        assert kek_ids != {"local:" + "x"}
        again = await rewrap(engine, wrapper, "acme")
        assert (again.rewrapped, again.already_current) == (0, 3)
        # The old KEK retired: re-wrapped keys still open.
        del environ[env_var_name(KEK) + "_PREVIOUS"]
        assert await reveal_metadata(store, wrapper, "acme", ids[2]) == {"ticket": f"{TICKET}-2"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_wrong_key_fails_closed_and_retention_shreds_keys(
    backend: str, tmp_path: Path
) -> None:
    wrapper = _wrapper({env_var_name(KEK): "kek-one"})
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        ids = await _append_kept(store, MetadataSealer(wrapper), 2)
        stranger = _wrapper({env_var_name(KEK): "someone-elses-kek"})
        with pytest.raises(DecryptionError) as caught:
            await reveal_metadata(store, stranger, "acme", ids[0])
        assert TICKET not in str(caught.value)
        # A DEK row moved to another event does not open that event's fields.
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE audit_deks SET event_id = 'x' WHERE event_id = :a"), {"a": ids[1]}
            )
            await connection.execute(
                text("UPDATE audit_deks SET event_id = :b WHERE event_id = :a"),
                {"a": ids[0], "b": ids[1]},
            )
        with pytest.raises(DecryptionError):
            await reveal_metadata(store, wrapper, "acme", ids[0])  # its key is gone
        with pytest.raises(MetadataNotFound):
            await reveal_metadata(store, wrapper, "acme", "no-such-event")
        # Retention deletes the events' wrapped keys with them.
        await run_retention(engine, RetentionPolicy(), now=datetime(2029, 1, 1, tzinfo=UTC))
        async with engine.connect() as connection:
            remaining = (await connection.execute(select(audit_deks.c.event_id))).scalars().all()
        assert remaining == ["x"]  # only the row this test orphaned by hand


def test_sealer_keeps_only_chosen_fields_and_refuses_content() -> None:
    sealer = MetadataSealer(_wrapper({env_var_name(KEK): "kek-one"}))
    assert sealer.seal("acme", "e1", {"owner": OWNER}, ["ticket"]) is None
    assert sealer.seal("acme", "e1", None, ["ticket"]) is None
    sealed = sealer.seal("acme", "e1", {"ticket": "T-1", "owner": OWNER}, ["ticket"])
    assert sealed is not None
    assert set(sealed[0]["fields"]) == {"ticket"}
    # The per-tenant DEK is reused (one wrap per period), tenants get their own.
    again = sealer.seal("acme", "e2", {"ticket": "T-2"}, ["ticket"])
    other = sealer.seal("other", "e3", {"ticket": "T-3"}, ["ticket"])
    assert again is not None
    assert other is not None
    assert again[1] == sealed[1]
    assert other[1] != sealed[1]
    prose = "please look at the following email that the customer sent us " * 3
    with pytest.raises(RawContentError):
        sealer.seal("acme", "e4", {"ticket": prose}, ["ticket"])


def _write_overlay(config_dir: Path, tenant: str, body: dict[str, Any]) -> None:
    (config_dir / "tenants").mkdir(parents=True, exist_ok=True)
    (config_dir / "tenants" / f"{tenant}.yaml").write_text(json.dumps(body))


@pytest.mark.parametrize("writer", ["inline", "process"])
async def test_api_keeps_only_the_tenants_chosen_fields_encrypted(
    state_dir: Path, catalog: Catalog, tmp_path: Path, writer: str
) -> None:
    """With the writer process too: fields are sealed in the request process for an event
    id chosen there, and the child stores them under that id."""
    config_dir = tmp_path / "config"
    _write_overlay(config_dir, "acme", {"audit": {"keep_metadata": ["ticket"]}})
    loose = {"guard": {"enabled": False}, "audit": {"keep_metadata": ["ticket"]}}
    _write_overlay(config_dir, "loose", loose)
    settings = load_settings(config_dir=config_dir, audit={"durability": "sync", "writer": writer})
    service = MapperService(settings, catalog, overlay_root=config_dir)
    runtime = build_runtime(settings, service=service)
    await upgrade(runtime.engine)
    app = create_app(runtime=runtime)
    output = [{"entity_type": "EMAIL_ADDRESS", "start": 0, "end": 5, "score": 0.9}]
    meta = {"ticket": TICKET, "owner": OWNER}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        one = {"detector": "presidio", "output": output, "tenant_id": "acme", "metadata": meta}
        assert (await c.post("/map", json=one)).status_code == 200
        batch = {"requests": [one, {**one, "tenant_id": "plain"}]}
        assert (await c.post("/map/batch", json=batch)).json()["failed"] == 0
        # A tenant without a guard still cannot keep text shaped like content.
        prose = {**one, "tenant_id": "loose", "metadata": {"ticket": "the customer wrote " * 9}}
        refused = await c.post("/map", json=prose)
        assert refused.status_code == 400  # as the guard answers for tenants that keep it
        assert refused.json()["error_code"] == "RAW_CONTENT_REJECTED"
        assert "the customer wrote" not in refused.text
    await runtime.aclose()
    store = EventStore(build_runtime(settings).engine)
    acme = [s.event async for s in store.iter_events("acme")]
    plain = [s.event async for s in store.iter_events("plain")]
    assert len(acme) == 2
    assert all(e.metadata for e in acme)  # type: ignore[union-attr]
    assert all(not e.metadata for e in plain)  # type: ignore[union-attr]
    assert await store.count("loose") == 0
    await store.engine.dispose()
    raw = b"".join(p.read_bytes() for p in state_dir.glob("mapper.db*"))
    assert TICKET.encode() not in raw
    assert OWNER.encode() not in raw
    # Only the explicit command decrypts.
    shown = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["audit", "show-metadata", "--tenant", "acme", "--event-id", acme[0].event_id],
        env={"LLAMA_MAPPER_CONFIG_DIR": str(config_dir)},
    )
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["metadata"] == {"ticket": TICKET}
    wrong = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["audit", "show-metadata", "--tenant", "plain", "--event-id", plain[0].event_id],
    )
    assert wrong.exit_code == 1
    assert "keeps no metadata" in wrong.output
    rewrapped = await asyncio.to_thread(runner.invoke, cli, ["audit", "rewrap", "--json"])
    assert rewrapped.exit_code == 0, rewrapped.output
    assert orjson.loads(rewrapped.stdout) == [
        {"tenant": "acme", "rewrapped": 0, "already_current": 2}
    ]
