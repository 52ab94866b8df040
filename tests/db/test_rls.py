"""PostgreSQL row-level security: one tenant's transaction cannot see or touch another's rows.

Everything here runs as an ordinary role that owns the tables (superusers bypass RLS), on
the real server: the app's own paths must keep working under the policies, and raw SQL
that forgets (or forges) its tenant filter must be stopped by the database itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.audit.store_support import make_event
from tests.db.support import postgres_app_role, schema_engine

from llama_mapper.analytics import cursors
from llama_mapper.audit import EventStore, projections
from llama_mapper.audit.anchors import list_tenants
from llama_mapper.auth.model import ApiKeyRecord
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.storage.db.migrate import alembic_config, upgrade
from llama_mapper.storage.db.schema import TENANT_TABLES, metadata
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for


def _key(key_id: str, tenant: str) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=key_id,
        tenant_id=tenant,
        scopes=frozenset({"map"}),
        key_hash="0" * 64,
        pepper_version="p1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
async def app_engine() -> AsyncIterator[AsyncEngine]:
    """A schema migrated by, and an engine connected as, an ordinary role; with rows of
    tenants ``a`` and ``b`` in every tenant-scoped table, written by the app's own paths."""
    async with postgres_app_role() as (url, schema, _role):
        engine = schema_engine(url, schema)
        try:
            await upgrade(engine)
            store = EventStore(engine)
            await store.append([make_event("a", 1), make_event("b", 1), make_event("a", 2)])
            await store.append([make_event("b", 2)])
            keys = ApiKeyStore(engine)
            await keys.create(_key("ka", "a"))
            await keys.create(_key("kb", "b"))
            for tenant in ("a", "b"):  # the analytics shipper's cursors
                await cursors.advance(engine, "chdb:test", tenant, 1)
            yield engine
        finally:
            await engine.dispose()


async def test_the_role_is_really_bound_by_rls(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert (row.rolsuper, row.rolbypassrls) == (False, False)
        flags = (
            await connection.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                    "pg_get_userbyid(c.relowner) = current_user AS owned "
                    "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
                    "AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
                )
            )
        ).all()
    assert {f.relname for f in flags} == {t.name for t in TENANT_TABLES}
    assert all(f.relrowsecurity and f.relforcerowsecurity and f.owned for f in flags)


def test_every_table_with_a_tenant_id_is_listed_as_tenant_scoped() -> None:
    with_tenant = {t.name for t in metadata.tables.values() if "tenant_id" in t.c}
    assert with_tenant == {t.name for t in TENANT_TABLES}


async def test_app_paths_work_under_rls(app_engine: AsyncEngine) -> None:
    store = EventStore(app_engine)
    for tenant in ("a", "b"):
        result = await store.verify(tenant)
        assert (result.ok, result.checked) == (True, 2)
        assert [s.event.tenant_id for s in [e async for e in store.iter_events(tenant)]] == [
            tenant,
            tenant,
        ]
        assert await store.count(tenant) == 2
        assert await projections.position(app_engine, tenant) == 2
    assert await list_tenants(store) == ["a", "b"]  # the all-tenants bypass
    assert await projections.rebuild(app_engine) == 4
    labels = await projections.label_counts(app_engine, "a")
    assert {row["events"] for row in labels} == {2}
    keys = ApiKeyStore(app_engine)
    found = await keys.get("kb")  # authentication: tenant not yet known
    assert found is not None
    assert found.tenant_id == "b"
    assert await keys.get("kb", tenant_id="a") is None
    assert [k.key_id for k in await keys.list("a")] == ["ka"]
    assert [k.key_id for k in await keys.list()] == ["ka", "kb"]


@pytest.mark.parametrize("table", [t.name for t in TENANT_TABLES])
async def test_raw_sql_sees_only_the_tenant_it_acts_for(
    app_engine: AsyncEngine, table: str
) -> None:
    async with app_engine.connect() as connection:
        # No tenant named at all: fail closed, not open.
        assert (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0
        await connection.rollback()
        await act_for(connection, "a")
        # Even asking for b's rows by name returns none.
        tenants = (await connection.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))).all()
        assert [t[0] for t in tenants] == ["a"]
        query = text(f"SELECT count(*) FROM {table} WHERE tenant_id = 'b'")
        assert (await connection.execute(query)).scalar() == 0
        # b's rows cannot be changed or deleted either.
        updated = await connection.execute(
            text(f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = 'b'")
        )
        assert updated.rowcount == 0
        deleted = await connection.execute(text(f"DELETE FROM {table} WHERE tenant_id = 'b'"))
        assert deleted.rowcount == 0
        await connection.rollback()
        await act_for(connection, ALL_TENANTS)
        every = (await connection.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))).all()
        assert sorted(t[0] for t in every) == ["a", "b"]  # nothing was deleted


async def test_a_tenant_cannot_write_rows_for_another(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as connection:
        await act_for(connection, "a")
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ('b2', 0, 'x')")
            )
        await connection.rollback()
        await act_for(connection, "a")
        with pytest.raises(DBAPIError, match="row-level security"):
            # Moving one's own row into another tenant is refused too (WITH CHECK).
            await connection.execute(text("UPDATE audit_events SET tenant_id = 'b' WHERE seq = 1"))
        await connection.rollback()


async def test_the_tenant_setting_does_not_outlive_its_transaction(
    app_engine: AsyncEngine,
) -> None:
    async with app_engine.connect() as connection:
        await act_for(connection, ALL_TENANTS)
        assert (await connection.execute(text("SELECT count(*) FROM audit_heads"))).scalar() == 2
        await connection.commit()
        # A pooled connection reused by the next request starts with no tenant again.
        assert (await connection.execute(text("SELECT count(*) FROM audit_heads"))).scalar() == 0


async def test_the_migration_downgrades_and_upgrades_again(app_engine: AsyncEngine) -> None:
    def rls_flags(connection: Connection) -> set[bool]:
        rows = connection.execute(
            text(
                "SELECT relrowsecurity FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = current_schema()::regnamespace AND relname <> 'alembic_version'"
            )
        )
        return {bool(flag) for (flag,) in rows}

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")

    async with app_engine.begin() as connection:
        await connection.run_sync(downgrade)
        assert await connection.run_sync(rls_flags) == {False}
    await upgrade(app_engine)
    async with app_engine.connect() as connection:
        assert await connection.run_sync(rls_flags) == {True}
