"""Alembic environment: runs the migrations on a connection or URL handed over in code.

``llama_mapper.storage.db.migrate`` passes an open synchronous connection (from an
``AsyncEngine`` via ``run_sync``) in ``config.attributes["connection"]``. Run as plain
``alembic -x url=...`` (a developer writing a migration), a URL is used instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.schema import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode recreates the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=<async SQLAlchemy URL>")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_from_url(_url()))
