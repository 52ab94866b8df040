"""Apply the packaged Alembic migrations, configured in code.

No ``alembic.ini`` is needed: the script location is the ``migrations`` folder inside this
package, so an installed wheel migrates its own database. The engine (or URL) is handed to
Alembic's ``env.py`` through ``Config.attributes``, which lets the async engine the app
already uses run the migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.storage.db.engine import SQLITE_IMMEDIATE, create_engine, database_url
from llama_mapper.storage.db.tenancy import act_for_all

if TYPE_CHECKING:
    from llama_mapper.config.settings import Settings
    from llama_mapper.secrets import SecretProvider

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Arbitrary constant: serialises concurrent upgrades (several workers auto-migrating at
#: start-up) on PostgreSQL; the lock ends with the migration transaction.
_PG_MIGRATION_LOCK = 0x6C6D_6D69_6772


def alembic_config() -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision the installed package knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine_or_url: AsyncEngine | str | URL, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one transaction: all of it or none of it.

    A URL gets a throwaway engine that is disposed afterwards; an engine is left open.
    """
    engine, owned = _engine(engine_or_url)
    try:
        # Concurrent upgrades (several workers auto-migrating) queue on a lock: SQLite's
        # write lock taken at BEGIN, or a PostgreSQL advisory lock.
        async with engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            # Data migrations span tenants: the documented row-level-security bypass.
            await act_for_all(connection)
            await connection.run_sync(_run_upgrade, revision)
    finally:
        if owned:
            await engine.dispose()


async def current_revision(engine_or_url: AsyncEngine | str | URL) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    engine, owned = _engine(engine_or_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        if owned:
            await engine.dispose()


async def open_database(
    settings: Settings, secrets: SecretProvider | None, *, migrate: bool | None = None
) -> AsyncEngine:
    """The engine ``settings`` describe, migrated to head when ``database.auto_migrate``.

    ``migrate`` overrides the setting. The caller owns the engine and must dispose it.
    """
    engine = create_engine(database_url(settings, secrets))
    if settings.database.auto_migrate if migrate is None else migrate:
        try:
            await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
    return engine


def _engine(engine_or_url: AsyncEngine | str | URL) -> tuple[AsyncEngine, bool]:
    if isinstance(engine_or_url, AsyncEngine):
        return engine_or_url, False
    return create_engine(engine_or_url), True


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
