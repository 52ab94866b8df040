"""``mapper db``: apply and inspect the schema migrations of the mapper's database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.config.settings import Settings
from llama_mapper.runtime import secret_provider
from llama_mapper.secrets import SecretError, SecretProvider
from llama_mapper.storage.db.engine import database_url, safe_url
from llama_mapper.storage.db.migrate import current_revision, head_revision, open_database, upgrade

app = typer.Typer(
    help="Database schema: apply migrations, show the current revision.",
    no_args_is_help=True,
)

#: Failures reported as one line (exit 1) instead of a traceback.
DB_ERRORS = (SQLAlchemyError, SecretError, OSError, ValueError)


def error_message(exc: BaseException) -> str:
    """One line for the terminal: no SQL statement, no parameters, no secret values.

    SQLAlchemy's own message appends the statement and its bound parameters, so only the
    driver's first line is shown.
    """
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip().splitlines()
        return f"database error: {detail[0] if detail else type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {type(exc).__name__}"
    return str(exc)


def _url(settings: Settings) -> str:
    secrets = secret_provider(settings) if settings.database.password_secret else None
    return database_url(settings, secrets)


@asynccontextmanager
async def checked_database(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, SecretProvider]]:
    """An engine on a database at the newest revision (migrated when auto_migrate is on,
    refused otherwise), with the secret provider that opened it; disposed on exit."""
    secrets = secret_provider(settings)
    engine = await open_database(settings, secrets)
    try:
        if not settings.database.auto_migrate:
            head = head_revision()
            if await current_revision(engine) != head:
                raise ValueError(
                    f"the database is not at revision {head} and database.auto_migrate is off: "
                    "run `mapper db upgrade` first"
                )
        yield engine, secrets
    finally:
        await engine.dispose()


def migrate_or_exit(settings: Settings) -> None:
    """Bring the database to the newest revision, or stop with one clear line."""
    try:
        asyncio.run(upgrade(_url(settings)))
    except DB_ERRORS as exc:
        fail(error_message(exc))


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Option("head", "--revision", help="Target revision."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Apply the packaged migrations up to REVISION (default: the newest)."""
    settings = settings_or_exit(config)
    try:
        url = _url(settings)
        asyncio.run(upgrade(url, revision))
        now = asyncio.run(current_revision(url))
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)
    _report(url, now, as_json, verb="upgraded")


@app.command("current")
def current_command(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Show the database's revision and whether it is the newest this version knows."""
    settings = settings_or_exit(config)
    try:
        url = _url(settings)
        now = asyncio.run(current_revision(url))
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)
    _report(url, now, as_json, verb="is")


def _report(url: str, now: str | None, as_json: bool, verb: str) -> None:
    head = head_revision()
    data: dict[str, Any] = {
        "database": safe_url(url),
        "current": now,
        "head": head,
        "up_to_date": now == head,
    }
    if as_json:
        print_json(data)
        return
    state = "up to date" if now == head else f"head is {head}; run `mapper db upgrade`"
    typer.echo(f"database {data['database']} {verb} at revision {now or 'none'} ({state})")
