"""PostgreSQL row-level security: one tenant's transaction cannot see or touch another's rows.

Everything here runs as an ordinary role that owns the tables (superusers bypass RLS), on
the real server: the app's own paths must keep working under the policies, and raw SQL
that forgets (or forges) its tenant filter must be stopped by the database itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.audit.store_support import make_event
from tests.db.support import postgres_app_role, schema_engine
from tests.orch.core.conftest import bundle_yaml

from detector_orchestration.policy.store import PolicyStore
from llama_mapper.analytics import cursors
from llama_mapper.audit import EventStore, MappingEvent, projections
from llama_mapper.audit.anchors import list_tenants
from llama_mapper.audit.events import Tombstone
from llama_mapper.audit.holds import HoldError, list_holds, release_hold, set_hold
from llama_mapper.audit.keys import MetadataNotFound, reveal_metadata, rewrap, tenants_with_keys
from llama_mapper.audit.retention import run_retention
from llama_mapper.auth.model import ApiKeyRecord
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.config.settings import SecretsSettings
from llama_mapper.crypto import KeyWrapper, MetadataSealer, key_wrapper
from llama_mapper.retention import RetentionPolicy
from llama_mapper.secrets import EnvSecretProvider, env_var_name
from llama_mapper.storage.db.migrate import alembic_config, upgrade
from llama_mapper.storage.db.schema import TENANT_TABLES, audit_deks, metadata
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for, connect_as

KEK = "audit_metadata_kek"


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
def kek_environ() -> dict[str, str]:
    """The environment the KEK is read from; tests change it to rotate the KEK."""
    return {env_var_name(KEK): "kek-one"}


@pytest.fixture
def wrapper(kek_environ: dict[str, str]) -> KeyWrapper:
    secrets = EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=kek_environ)
    return key_wrapper(secrets, KEK)


def _kept(sealer: MetadataSealer, tenant: str, n: int) -> MappingEvent:
    """Event ``n`` of ``tenant`` keeping one (encrypted) metadata field, as /map stores it."""
    event = make_event(tenant, n)
    sealed = sealer.seal(tenant, event.event_id, {"ticket": f"T-{tenant}-{n}"}, ["ticket"])
    assert sealed is not None
    return dataclasses.replace(event, metadata=sealed[0], metadata_key=sealed[1])


@pytest.fixture
async def app_engine(wrapper: KeyWrapper) -> AsyncIterator[AsyncEngine]:
    """A schema migrated by, and an engine connected as, an ordinary role; with rows of
    tenants ``a`` and ``b`` in every tenant-scoped table, written by the app's own paths.

    Every event keeps sealed metadata (so ``audit_deks`` has rows of both tenants) and
    both tenants are on legal hold (``retention_holds``) and have a policy bundle."""
    async with postgres_app_role() as (url, schema, _role):
        engine = schema_engine(url, schema)
        try:
            await upgrade(engine)
            store = EventStore(engine)
            sealer = MetadataSealer(wrapper)
            kept = [_kept(sealer, "a", 1), _kept(sealer, "b", 1), _kept(sealer, "a", 2)]
            await store.append(kept)
            await store.append([_kept(sealer, "b", 2)])
            keys = ApiKeyStore(engine)
            await keys.create(_key("ka", "a"))
            await keys.create(_key("kb", "b"))
            for tenant in ("a", "b"):  # the analytics shipper's cursors
                await cursors.advance(engine, "chdb:test", tenant, 1)
            policies = PolicyStore(engine)
            for tenant in ("a", "b"):
                await set_hold(engine, tenant, "litigation", "legal-team")
                await policies.submit(tenant, bundle_yaml("p", ["presidio"]))
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
    tenant_scoped = {t.name for t in TENANT_TABLES}
    assert {f.relname for f in flags if f.relrowsecurity} == tenant_scoped
    assert all(f.relforcerowsecurity and f.owned for f in flags if f.relname in tenant_scoped)
    # The only tables left unpoliced are the global ones (no tenant column at all).
    global_tables = {t.name for t in metadata.tables.values() if "tenant_id" not in t.c}
    assert {f.relname for f in flags if not f.relrowsecurity} == global_tables


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


async def _deks_of_every_tenant(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with connect_as(engine, ALL_TENANTS) as connection:
        query = select(audit_deks.c.tenant_id, audit_deks.c.event_id).order_by(
            audit_deks.c.tenant_id, audit_deks.c.event_id
        )
        return [(str(t), str(e)) for t, e in (await connection.execute(query)).all()]


async def test_holds_retention_and_kept_metadata_work_under_rls(
    app_engine: AsyncEngine, wrapper: KeyWrapper, kek_environ: dict[str, str]
) -> None:
    store = EventStore(app_engine)
    # Holds: listed per tenant and across tenants, and a second hold is refused (so the
    # check inside set_hold really sees the first one).
    holds = await list_holds(app_engine)
    assert sorted((h.tenant_id, h.set_by, h.active) for h in holds) == [
        ("a", "legal-team", True),
        ("b", "legal-team", True),
    ]
    assert [h.tenant_id for h in await list_holds(app_engine, "a")] == ["a"]
    with pytest.raises(HoldError, match="already on legal hold"):
        await set_hold(app_engine, "a", "again", "legal-team")
    # Kept metadata opens, for the tenant asked for only.
    assert await reveal_metadata(store, wrapper, "a", "a-ev-1") == {"ticket": "T-a-1"}
    with pytest.raises(MetadataNotFound):
        await reveal_metadata(store, wrapper, "b", "a-ev-1")
    # Rotate the KEK and re-wrap every tenant's keys; they open after the old KEK retires.
    kek_environ[env_var_name(KEK)] = "kek-two"
    kek_environ[env_var_name(KEK) + "_PREVIOUS"] = "kek-one"
    assert await tenants_with_keys(app_engine) == ["a", "b"]
    results = [await rewrap(app_engine, wrapper, t) for t in await tenants_with_keys(app_engine)]
    assert [(r.tenant_id, r.rewrapped, r.already_current) for r in results] == [
        ("a", 2, 0),
        ("b", 2, 0),
    ]
    again = await rewrap(app_engine, wrapper, "a")
    assert (again.rewrapped, again.already_current) == (0, 2)
    del kek_environ[env_var_name(KEK) + "_PREVIOUS"]
    assert await reveal_metadata(store, wrapper, "b", "b-ev-2") == {"ticket": "T-b-2"}
    # Retention: both tenants held, nothing goes.
    later = datetime(2029, 1, 1, tzinfo=UTC)
    held = await run_retention(app_engine, RetentionPolicy(), now=later)
    assert [(o.tenant_id, o.held, o.deleted) for o in held] == [("a", True, 0), ("b", True, 0)]
    assert await release_hold(app_engine, "a", "case closed", "legal-team") == 1
    active = await list_holds(app_engine, active_only=True)
    assert [h.tenant_id for h in active] == ["b"]
    released = await list_holds(app_engine, "a")
    assert [(h.released_by, h.release_reason) for h in released] == [("legal-team", "case closed")]
    dry = await run_retention(app_engine, RetentionPolicy(), now=later, dry_run=True)
    assert [(o.tenant_id, o.held, o.deleted) for o in dry] == [("a", False, 2), ("b", True, 0)]
    # Released: a's events and their data keys go, a tombstone stays; b is untouched.
    outcomes = await run_retention(app_engine, RetentionPolicy(), now=later)
    assert [(o.tenant_id, o.held, o.deleted, o.first_seq, o.last_seq) for o in outcomes] == [
        ("a", False, 2, 1, 2),
        ("b", True, 0, None, None),
    ]
    assert outcomes[0].tombstones == (3,)
    survivors = [s async for s in store.iter_events("a")]
    assert [(s.seq, type(s.event)) for s in survivors] == [(3, Tombstone)]
    assert (await store.verify("a")).ok
    assert (await store.verify("b")).ok
    assert await store.count("b") == 2
    assert await _deks_of_every_tenant(app_engine) == [("b", "b-ev-1"), ("b", "b-ev-2")]
    with pytest.raises(MetadataNotFound):
        await reveal_metadata(store, wrapper, "a", "a-ev-1")  # deleted with its event
    assert await projections.position(app_engine, "a") == 3


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
    def rls_flags(connection: Connection) -> dict[str, bool]:
        rows = connection.execute(
            text(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = current_schema()::regnamespace AND relname <> 'alembic_version'"
            )
        )
        return {str(name): bool(flag) for name, flag in rows}

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")

    async with app_engine.begin() as connection:
        await connection.run_sync(downgrade)
        assert set((await connection.run_sync(rls_flags)).values()) == {False}
    await upgrade(app_engine)
    async with app_engine.connect() as connection:
        flags = await connection.run_sync(rls_flags)
    # Every tenant table policed again; only global tables (no tenant column) are not.
    assert flags == {t.name: "tenant_id" in t.c for t in metadata.tables.values()}
