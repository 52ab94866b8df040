"""Tell PostgreSQL's row-level security which tenant a transaction acts for.

Migration ``0005_rls`` enables and forces RLS on every tenant-scoped table with one
policy: a row is visible (and may be written) only when its ``tenant_id`` equals the
transaction's ``app.tenant_id`` setting, or when that setting is :data:`ALL_TENANTS`.
A transaction that sets nothing sees no rows and can write none, so a query that forgets
its ``WHERE tenant_id = ...`` fails closed instead of leaking another tenant's evidence.

The setting is transaction-local (``set_config(..., true)``), so a pooled connection
never carries one request's tenant into the next. :data:`ALL_TENANTS` is the explicit
bypass for the few maintenance paths that must span tenants (API-key lookup by key id
before the tenant is known, listing tenants to anchor or rebuild, migrations); it is not a
valid tenant id (tenant ids start with a letter or digit), so no tenant can claim it.
SQLite has no RLS: there every call here is a no-op and the queries' own tenant filters
are the isolation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: The ``app.tenant_id`` value that lets a transaction see every tenant's rows.
ALL_TENANTS = "*"
#: The PostgreSQL setting the policies of migration ``0005_rls`` read.
TENANT_SETTING = "app.tenant_id"

_CONDITION = (
    f"tenant_id = current_setting('{TENANT_SETTING}', true) "
    f"OR current_setting('{TENANT_SETTING}', true) = '{ALL_TENANTS}'"
)


def enable_rls_statements(table: str) -> list[str]:
    """The PostgreSQL DDL a migration runs to put ``table`` under the tenant policy.

    Forced, so it binds the table owner too (the mapper usually owns what it migrates).
    """
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({_CONDITION}) WITH CHECK ({_CONDITION})",
    ]


def disable_rls_statements(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")


async def act_for(connection: AsyncConnection, tenant: str) -> None:
    """Make the rest of ``connection``'s current transaction act for ``tenant`` only.

    May be called again inside the same transaction to switch tenants (the evidence
    writer does, once per tenant of a batch); statements already run keep their checks.
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(_SET_TENANT, {"tenant": tenant})


async def act_for_all(connection: AsyncConnection) -> None:
    """The documented bypass: the rest of the transaction may read and write every tenant."""
    await act_for(connection, ALL_TENANTS)


@asynccontextmanager
async def connect_as(engine: AsyncEngine, tenant: str) -> AsyncIterator[AsyncConnection]:
    """A connection whose (implicit) transaction acts for ``tenant`` (or :data:`ALL_TENANTS`)."""
    async with engine.connect() as connection:
        await act_for(connection, tenant)
        yield connection
