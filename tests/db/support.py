"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL schema or database.

Each PostgreSQL test gets its own schema (selected through ``search_path``) or database and
drops it afterwards, so tests never see each other's rows nor anything else in ``test``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from tests.servicecheck import require_postgres

from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade

BACKENDS = ["sqlite", "postgresql"]


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[tuple[str, str]]:
    """``(url, schema)`` of a new, empty schema in the test database; dropped on exit."""
    url = require_postgres()
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(url, poolclass=NullPool)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """URL of a new, empty database (for code that builds its own engine from a URL)."""
    url, name = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(name)


@contextmanager
def postgres_database_sync() -> Iterator[str]:
    """:func:`postgres_database` for sync tests that run a CLI (which owns its event loop)."""
    url, name = asyncio.run(_create_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_database(name))


def _admin() -> AsyncEngine:
    return create_engine(require_postgres(), poolclass=NullPool, isolation_level="AUTOCOMMIT")


async def _create_database() -> tuple[str, str]:
    name = f"test_{secrets.token_hex(6)}"
    admin = _admin()
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(require_postgres()).set(database=name)
    return url.render_as_string(hide_password=False), name


async def _drop_database(name: str) -> None:
    admin = _admin()
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def schema_engine(url: str, schema: str) -> AsyncEngine:
    return create_engine(url, connect_args={"server_settings": {"search_path": schema}})


@asynccontextmanager
async def empty_engine(backend: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of ``backend``, disposed (and dropped) on exit."""
    if backend == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    async with postgres_schema() as (url, schema):
        engine = schema_engine(url, schema)
        try:
            yield engine
        finally:
            await engine.dispose()


@asynccontextmanager
async def migrated_engine(backend: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with empty_engine(backend, tmp_path) as engine:
        await upgrade(engine)
        yield engine


@asynccontextmanager
async def postgres_app_role() -> AsyncIterator[tuple[str, str, str]]:
    """``(url, schema, role)``: a fresh schema and an ordinary LOGIN role that may use it.

    Row-level security never applies to superusers, and the shared server's ``postgres``
    is one, so tests of tenant isolation connect as this role (no superuser, no
    BYPASSRLS). It migrates the schema itself and so owns its tables, as a deployment that
    auto-migrates does (which is why the policies are FORCEd). Both are dropped on exit.
    """
    url = require_postgres()
    schema, role = f"test_{secrets.token_hex(6)}", f"app_{secrets.token_hex(6)}"
    admin = create_engine(url, poolclass=NullPool)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        await connection.execute(text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"'))
    try:
        yield make_url(url).set(username=role).render_as_string(False), schema, role
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await connection.execute(text(f'DROP OWNED BY "{role}"'))
            await connection.execute(text(f'DROP ROLE "{role}"'))
        await admin.dispose()
