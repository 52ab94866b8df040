"""EventStore on SQLite and real PostgreSQL: chaining, ranges, concurrency, tamper detection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests.audit.store_support import make_event, shared_engines
from tests.db.support import BACKENDS

from llama_mapper.audit import GENESIS_HASH, EventStore, StoredEvent, verify_chain

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


async def _all(store: EventStore, tenant: str, **kwargs: str) -> list[StoredEvent]:
    return [stored async for stored in store.iter_events(tenant, **kwargs)]


async def test_two_tenants_get_independent_chains(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        assert await store.head("a") is None
        batch = [make_event("a", 1), make_event("b", 1), make_event("a", 2), make_event("b", 2)]
        stored = await store.append(batch)
        assert [s.event for s in stored] == batch
        assert [(s.event.tenant_id, s.seq) for s in stored] == [
            ("a", 1),
            ("b", 1),
            ("a", 2),
            ("b", 2),
        ]
        assert stored[0].prev_hash == stored[1].prev_hash == GENESIS_HASH
        assert stored[2].prev_hash == stored[0].hash

        await store.append([make_event("a", 3)])
        a = await _all(store, "a")
        assert [s.seq for s in a] == [1, 2, 3]
        assert await store.head("a") == (3, a[-1].hash)
        assert await store.count("a") == 3
        assert await store.count("b") == 2
        assert await store.count("nobody") == 0
        assert verify_chain(a).ok
        assert verify_chain(await _all(store, "b")).ok
        assert (await store.verify("a")).ok


async def test_iter_events_since_until_and_batches(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append([make_event("t", n) for n in range(1, 11)])
        window = await _all(store, "t", since="2026-01-01T00:00:03Z", until="2026-01-01T00:00:07Z")
        assert [s.seq for s in window] == [3, 4, 5, 6]
        assert verify_chain(window, expected_prev=window[0].prev_hash).ok
        assert [s.seq for s in await _all(store, "t", since="2026-01-01T00:00:09Z")] == [9, 10]
        assert await _all(store, "t", since="2027-01-01") == []
        paged = [s.seq async for s in store.iter_events("t", batch=3)]
        assert paged == list(range(1, 11))
        since = await store.verify("t", since="2026-01-01T00:00:05Z")
        assert since.ok
        assert since.checked == 6


async def test_duplicate_event_id_stores_nothing(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append([make_event("t", 1)])
        with pytest.raises(IntegrityError):
            await store.append([make_event("t", 2), make_event("t", 1)])
        assert await store.count("t") == 1
        assert (await store.head("t"))[0] == 1  # type: ignore[index]


async def test_concurrent_appenders_never_fork_the_chain(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 2) as engines:
        stores = [EventStore(engine) for engine in engines]
        appends = [
            store.append(
                [make_event("t", p * 1000 + i * 10 + k) for k in range(2)]
                + [make_event("u", p * 1000 + i)]
            )
            for p, store in enumerate(stores)
            for i in range(20)
        ]
        await asyncio.gather(*appends)
        chain = await _all(stores[0], "t")
        assert [s.seq for s in chain] == list(range(1, 81))
        assert verify_chain(chain).ok
        assert (await stores[1].verify("t")).ok
        assert (await stores[1].verify("u")).checked == 40


async def test_tampered_body_is_found(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append([make_event("t", n) for n in range(1, 6)])
        await store.append([make_event("other", 1)])
        async with engine.begin() as connection:
            body = (
                await connection.execute(
                    text("SELECT body FROM audit_events WHERE tenant_id = 't' AND seq = 3")
                )
            ).scalar_one()
            data = orjson.loads(body)
            data["scores"]["PII.EMAIL"] = 0.01
            await connection.execute(
                text("UPDATE audit_events SET body = :body WHERE tenant_id = 't' AND seq = 3"),
                {"body": orjson.dumps(data).decode()},
            )
        result = await store.verify("t")
        assert (result.ok, result.first_broken_seq) == (False, 3)
        assert (await store.verify("other")).ok


async def test_deleted_and_truncated_events_are_found(backend: str, tmp_path: Path) -> None:
    async with shared_engines(backend, tmp_path, 1) as (engine,):
        store = EventStore(engine)
        await store.append([make_event("t", n) for n in range(1, 6)])
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM audit_events WHERE tenant_id = 't' AND seq = 5")
            )
        result = await store.verify("t")
        assert (result.ok, result.first_broken_seq) == (False, 5)
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM audit_events WHERE tenant_id = 't' AND seq = 2")
            )
        result = await store.verify("t")
        assert (result.ok, result.first_broken_seq) == (False, 2)
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE audit_events SET body = 'not json' WHERE seq = 1")
            )
        result = await store.verify("t")
        assert (result.ok, result.first_broken_seq) == (False, 1)
