"""``mapper auth``: create, list, rotate and revoke API keys.

A full key is printed exactly once, when it is created or rotated; the database keeps only
an HMAC of its secret, so a lost key cannot be recovered, only rotated or revoked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import typer

from llama_mapper.auth.keys import ALL_SCOPES, parse_duration
from llama_mapper.auth.model import ApiKeyRecord
from llama_mapper.auth.service import AuthService
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, checked_database, error_message
from llama_mapper.config.settings import Settings
from llama_mapper.errors import MapperError

T = TypeVar("T")

app = typer.Typer(
    help="API keys: the full key is shown once, at creation or rotation.",
    no_args_is_help=True,
)

KeyIdOption = typer.Option(..., "--key-id", "-k", help="Key id (the part after lmk_).")


def _run(config: Path | None, as_json: bool, action: Callable[[AuthService], Awaitable[T]]) -> T:
    """Run ``action`` against the configured database; any failure is one line, exit 1."""
    settings = settings_or_exit(config)
    try:
        return asyncio.run(_with_service(settings, action))
    except (*DB_ERRORS, MapperError) as exc:
        message = exc.message if isinstance(exc, MapperError) else error_message(exc)
        fail(message, as_json=as_json)


async def _with_service(settings: Settings, action: Callable[[AuthService], Awaitable[T]]) -> T:
    async with checked_database(settings) as (engine, secrets):
        return await action(AuthService.from_settings(settings, ApiKeyStore(engine), secrets))


def _duration(text: str | None, option: str, as_json: bool) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", as_json=as_json)


def _print_new_key(record: ApiKeyRecord, full_key: str, as_json: bool) -> None:
    now = datetime.now(UTC)
    if as_json:
        print_json({"api_key": full_key, **record.public_dict(now)})
    else:
        typer.echo(f"key_id:  {record.key_id}")
        typer.echo(f"tenant:  {record.tenant_id}")
        typer.echo(f"scopes:  {' '.join(sorted(record.scopes))}")
        typer.echo(f"expires: {_when(record.expires_at)}")
        typer.echo(f"api_key: {full_key}")
    typer.secho(
        "Store this key now: it is shown only once and cannot be recovered.",
        err=True,
        fg=typer.colors.YELLOW,
    )


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


@app.command("create-key")
def create_key(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant the key may map for."),
    scope: list[str] = typer.Option(
        ..., "--scope", "-s", help=f"Scope to grant (repeatable): {', '.join(sorted(ALL_SCOPES))}."
    ),
    expires: str = typer.Option(None, "--expires", help="Lifetime: 90d, 12h, 30m, 3600s."),
    description: str = typer.Option(None, "--description", help="Note shown in listings."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an API key and print it (once)."""
    lifetime = _duration(expires, "--expires", as_json)
    record, full_key = _run(
        config,
        as_json,
        lambda auth: auth.create_key(tenant, scope, lifetime, description),
    )
    _print_new_key(record, full_key, as_json)


@app.command("list")
def list_keys(
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant's keys."),
    show_all: bool = typer.Option(False, "--all", help="Include revoked keys."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """List API keys with their status (active, expiring, expired, revoked); no secrets."""
    records = _run(config, as_json, lambda auth: auth.list_keys(tenant, include_revoked=show_all))
    now = datetime.now(UTC)
    if as_json:
        print_json([record.public_dict(now) for record in records])
        return
    if not records:
        typer.echo("no API keys")
        return
    typer.echo(f"{'KEY ID':<14}{'TENANT':<20}{'STATUS':<10}{'EXPIRES':<27}SCOPES")
    for record in records:
        note = f"  # {record.description}" if record.description else ""
        typer.echo(
            f"{record.key_id:<14}{record.tenant_id:<20}{record.status(now):<10}"
            f"{_when(record.expires_at):<27}{' '.join(sorted(record.scopes))}{note}"
        )


@app.command("rotate-key")
def rotate_key(
    key_id: str = KeyIdOption,
    grace: str = typer.Option("1h", "--grace", help="How long the old key keeps working."),
    expires: str = typer.Option(
        None, "--expires", help="Lifetime of the new key (default: the old key's lifetime)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Replace a key with a new one (printed once); the old one expires after --grace."""
    grace_period = _duration(grace, "--grace", as_json) or timedelta(0)
    lifetime = _duration(expires, "--expires", as_json)

    async def rotate(auth: AuthService) -> tuple[ApiKeyRecord, str, ApiKeyRecord | None]:
        new, full_key = await auth.rotate_key(key_id, grace_period, lifetime)
        return new, full_key, await auth.store.get(key_id, new.tenant_id)

    record, full_key, old = _run(config, as_json, rotate)
    _print_new_key(record, full_key, as_json)
    if old is not None and not as_json:
        typer.echo(f"old key {old.key_id} stays valid until {_when(old.expires_at)}", err=True)


@app.command("revoke")
def revoke(
    key_id: str = KeyIdOption, config: Path = ConfigOption, as_json: bool = JsonOption
) -> None:
    """Revoke a key at once (servers stop accepting it within auth.cache_seconds)."""
    record = _run(config, as_json, lambda auth: auth.revoke(key_id))
    if as_json:
        print_json(record.public_dict(datetime.now(UTC)))
    else:
        typer.echo(f"revoked API key {record.key_id} of tenant {record.tenant_id}")
