"""Anchoring on a schedule: several workers on one database and one object store write
each new head exactly once; a tampered tenant is refused without blocking the others; the
server lifespan runs the schedule and `/ready` reports it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.audit.store_support import make_event, shared_engines
from tests.objects.support import s3_store

from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore
from llama_mapper.audit.anchor_schedule import AnchorScheduler
from llama_mapper.audit.anchors import ANCHOR_SECRET, AnchorStore
from llama_mapper.config.settings import SecretsSettings, load_settings
from llama_mapper.secrets import SecretProvider, env_var_name, provider_from_settings
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.objects import (
    LocalObjectStore,
    ObjectStore,
    S3Credentials,
    S3ObjectStore,
)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SecretProvider:
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "schedule-test-anchor-key")
    return provider_from_settings(SecretsSettings(), fallback_dir=tmp_path / "secrets")


def _stores(kind: str, tmp_path: Path, n: int) -> list[ObjectStore]:
    """``n`` store objects (one per worker) on the same folder or bucket prefix."""
    if kind == "local":
        return [LocalObjectStore(tmp_path / "objects") for _ in range(n)]
    first = s3_store(locked=True)
    prefix = first.prefix.rstrip("/")
    others = []
    for _ in range(n - 1):
        store = s3_store(locked=True)
        store.prefix = f"{prefix}/"
        others.append(store)
    return [first, *others]


async def _anchors(store: ObjectStore) -> list[str]:
    return [info.key for info in await store.list("anchors/")]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_concurrent_workers_anchor_each_head_once(
    database: str, kind: str, tmp_path: Path, secrets: SecretProvider
) -> None:
    async with shared_engines(database, tmp_path, 3) as engines:
        stores = _stores(kind, tmp_path, 3)
        workers = [
            AnchorScheduler(EventStore(engine), AnchorStore(store), secrets, 3600)
            for engine, store in zip(engines, stores, strict=True)
        ]
        events = EventStore(engines[0])
        await events.append([make_event("acme", n) for n in range(1, 6)])
        await events.append([make_event("beta", n) for n in range(1, 4)])

        written = await asyncio.gather(*(w.run_once() for w in workers))
        assert sum(written) == 2, written  # one anchor per tenant, whoever wrote it
        keys = await _anchors(stores[0])
        assert [key.split("/")[1] for key in keys] == ["acme", "beta"]
        assert keys[0].startswith("anchors/acme/000000000005-")
        assert keys[1].startswith("anchors/beta/000000000003-")

        # An unchanged head is a no-op for every worker.
        assert await asyncio.gather(*(w.run_once() for w in workers)) == [0, 0, 0]

        await events.append([make_event("acme", n) for n in (6, 7)])
        assert sum(await asyncio.gather(*(w.run_once() for w in workers))) == 1
        keys = await _anchors(stores[0])
        assert len(keys) == 3
        latest = await AnchorStore(stores[0]).latest("acme")
        assert latest is not None
        assert latest.seq == 7
        assert all(w.stats.last_error is None and not w.stats.refused for w in workers)


async def test_tampered_tenant_is_refused_and_others_still_anchored(
    tmp_path: Path, secrets: SecretProvider
) -> None:
    async with shared_engines("sqlite", tmp_path, 1) as (engine,):
        events = EventStore(engine)
        await events.append([make_event("acme", n) for n in range(1, 4)])
        await events.append([make_event("beta", n) for n in range(1, 4)])
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE audit_events SET body = replace(body, :old, :new) "
                    "WHERE tenant_id = 'acme' AND seq = 2"
                ),
                {"old": '"confidence":0.9', "new": '"confidence":0.2'},
            )
        objects = LocalObjectStore(tmp_path / "objects")
        worker = AnchorScheduler(events, AnchorStore(objects), secrets, 3600)
        assert await worker.run_once() == 1
        assert worker.stats.refused == ["acme"]
        keys = await _anchors(objects)
        assert len(keys) == 1
        assert keys[0].startswith("anchors/beta/000000000003-")


async def test_backend_outage_is_recorded_and_the_schedule_survives(
    tmp_path: Path, secrets: SecretProvider
) -> None:
    async with shared_engines("sqlite", tmp_path, 1) as (engine,):
        events = EventStore(engine)
        await events.append([make_event("acme", n) for n in range(1, 3)])
        broken = S3ObjectStore(
            bucket="mapper-any",
            credentials=lambda: S3Credentials("key", "secret", "v1"),
            endpoint_url="http://127.0.0.1:9",
            connect_timeout=0.5,
        )
        worker = AnchorScheduler(events, AnchorStore(broken), secrets, 3600)
        assert await worker.run_once() == 0
        assert worker.stats.last_error is not None
        assert "unreachable" in worker.stats.last_error


async def _seed(db: Path, tenant: str) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        await EventStore(engine).append([make_event(tenant, n) for n in range(1, 5)])
    finally:
        await engine.dispose()


async def test_server_lifespan_anchors_on_schedule(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "lifespan-anchor-key")
    state_dir.mkdir(parents=True)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    await _seed(state_dir / SQLITE_FILE, tenant)
    settings = load_settings(audit={"anchor_interval_seconds": 0.2})
    app = create_app(settings)
    runtime = app.state.runtime
    assert runtime.anchor_scheduler is not None
    folder = state_dir / "objects" / "anchors" / tenant
    async with app.router.lifespan_context(app):

        def anchors() -> list[str]:  # a dot-file is an unfinished put, as the store lists
            names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
            return [name for name in names if not name.startswith(".")]

        for _ in range(100):
            if anchors():
                break
            await asyncio.sleep(0.1)
        assert [name[:13] for name in anchors()] == ["000000000004-"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as http:
            ready = (await http.get("/ready")).json()
        line = ready["checks"]["object_store"]
        assert line.startswith("local: ok, write-once by o_excl"), line
        assert "anchoring every 0.2s" in line
    assert runtime.anchor_scheduler.stats.anchored == 1
    assert runtime.anchor_scheduler._task is None


async def test_stop_interrupts_the_wait_and_zero_turns_it_off(state_dir: Path) -> None:
    off = create_app(load_settings(audit={"anchor_interval_seconds": 0})).state.runtime
    assert off.anchor_scheduler is None
    await off.aclose()
    runtime = create_app(load_settings()).state.runtime
    scheduler = runtime.anchor_scheduler
    assert scheduler is not None
    assert scheduler.interval == 3600
    assert 0 < scheduler.first_delay <= 60
    await scheduler.start()
    await asyncio.wait_for(scheduler.stop(), timeout=5)
    assert scheduler.stats.runs == 0
    await runtime.aclose()
