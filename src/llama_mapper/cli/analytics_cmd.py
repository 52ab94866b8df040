"""``mapper analytics``: ship evidence events to ClickHouse and ask it ad-hoc questions.

``sync`` ships what the chain committed after each tenant's cursor (the server does the
same in the background when ``analytics.enabled``), ``status`` compares cursors with chain
heads, and ``query`` runs one read-only SELECT. With the embedded engine a command waits
for a running server's ship pass to let go of the folder (``analytics.lock_timeout_seconds``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.analytics import cursors
from llama_mapper.analytics.query import QueryFailed, run_query
from llama_mapper.analytics.shipper import ship
from llama_mapper.analytics.sql_guard import QueryRefused
from llama_mapper.analytics.target import AnalyticsUnavailable, Target, target_from_settings
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, checked_database, error_message
from llama_mapper.config.settings import Settings
from llama_mapper.runtime import secret_provider

T = TypeVar("T")

app = typer.Typer(
    help="Analytics: ship evidence events to ClickHouse, query them read-only.",
    no_args_is_help=True,
)

TenantFilter = typer.Option(None, "--tenant", "-t", help="Only this tenant (default: all).")


def _target(settings: Settings) -> Target:
    analytics = settings.analytics
    secret = analytics.password_secret
    password = None
    if secret:
        secrets = secret_provider(settings)
        password = lambda: secrets.get(secret).value  # noqa: E731 - read per session
    return target_from_settings(analytics, settings.state_dir, password=password)


def _run(
    settings: Settings, as_json: bool, action: Callable[[AsyncEngine, Target], Awaitable[T]]
) -> T:
    """Run ``action`` on the migrated database and the target; any failure is one line."""

    async def main() -> T:
        async with checked_database(settings) as (engine, _):
            return await action(engine, target)

    try:
        target = _target(settings)
        return asyncio.run(main())
    except AnalyticsUnavailable as exc:
        fail(f"analytics unavailable: {exc}", as_json=as_json)
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)


@app.command("sync")
def sync(
    tenant: str = TenantFilter,
    full: bool = typer.Option(
        False, "--full", help="Forget the cursors and ship every event again (idempotent)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Ship every committed event after each tenant's cursor to ClickHouse."""
    settings = settings_or_exit(config)
    analytics = settings.analytics

    async def run(engine: AsyncEngine, target: Target) -> dict[str, Any]:
        if full:
            await cursors.reset(engine, target.sink, tenant)
        report = await ship(
            engine,
            target,
            retention_days=analytics.retention_days,
            batch_size=analytics.batch_size,
            tenant_id=tenant,
            wait=analytics.lock_timeout_seconds,
        )
        behind = sum(p.behind for p in await cursors.positions(engine, target.sink, tenant))
        return {
            "sink": target.sink,
            "shipped": report.shipped,
            "total": report.total,
            "other": report.other,
            "skipped": report.skipped,
            "behind": behind,
        }

    result = _run(settings, as_json, run)
    if as_json:
        print_json(result)
        return
    per_tenant = ", ".join(f"{t} {n}" for t, n in sorted(result["shipped"].items())) or "none"
    typer.echo(f"shipped {result['total']} events to {result['sink']} ({per_tenant})")
    if result["other"] or result["skipped"]:
        typer.echo(
            f"{result['other']} events of unknown kind shipped as kind 'other', "
            f"{result['skipped']} without a valid time skipped",
            err=True,
        )


@app.command("status")
def status(
    tenant: str = TenantFilter, config: Path = ConfigOption, as_json: bool = JsonOption
) -> None:
    """Per tenant: chain head, shipped cursor and how many events wait."""
    settings = settings_or_exit(config)

    async def run(engine: AsyncEngine, target: Target) -> dict[str, Any]:
        rows = await cursors.positions(engine, target.sink, tenant)
        return {
            "sink": target.sink,
            "backend": target.backend,
            "tenants": [
                {
                    "tenant": p.tenant_id,
                    "head_seq": p.head_seq,
                    "cursor_seq": p.cursor_seq,
                    "behind": p.behind,
                }
                for p in rows
            ],
        }

    result = _run(settings, as_json, run)
    if as_json:
        print_json(result)
        return
    typer.echo(f"analytics sink {result['sink']} ({result['backend']})")
    if not result["tenants"]:
        typer.echo("no events in the chain yet")
    _print_table(
        ["tenant", "head_seq", "cursor_seq", "behind"],
        [tuple(row.values()) for row in result["tenants"]],
    )


@app.command("query")
def query(
    sql: str = typer.Option(..., "--sql", help="One read-only SELECT (or WITH ... SELECT)."),
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Only this tenant's rows of the events table."
    ),
    max_rows: int = typer.Option(None, "--max-rows", min=1, help="Default: query_max_rows."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Run a read-only SQL query over the shipped events (table ``events``).

    Use ``FROM events FINAL`` for exact counts: an event shipped twice after a crash is
    folded into one row at merge time, and FINAL folds it at query time.
    """
    settings = settings_or_exit(config)
    analytics = settings.analytics
    try:
        result = run_query(
            _target(settings),
            sql,
            tenant_id=tenant,
            max_rows=max_rows or analytics.query_max_rows,
            retention_days=analytics.retention_days,
            wait=analytics.lock_timeout_seconds,
        )
    except QueryRefused as exc:
        fail(f"query refused: {exc}", as_json=as_json)
    except QueryFailed as exc:
        fail(f"query failed: {exc}", as_json=as_json)
    except AnalyticsUnavailable as exc:
        fail(f"analytics unavailable: {exc}", as_json=as_json)
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)
    if as_json:
        print_json(
            {
                "columns": result.columns,
                "rows": [
                    dict(zip(result.columns, map(_jsonable, row), strict=True))
                    for row in result.rows
                ],
                "truncated": result.truncated,
            }
        )
        return
    if not result.rows:
        typer.echo("(no rows)")
        return
    _print_table(result.columns, result.rows)
    if result.truncated:
        typer.echo(f"(only the first {len(result.rows)} rows are shown)", err=True)


def _print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [[_text(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    typer.echo("  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)))
    typer.echo("  ".join("-" * width for width in widths))
    for row in cells:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _text(value: Any) -> str:
    jsonable = _jsonable(value)
    return jsonable if isinstance(jsonable, str) else str(jsonable)


def _jsonable(value: Any) -> Any:
    """ClickHouse values as JSON types: times as ISO-8601, decimals and UUIDs as text, and
    NaN (``avg`` of nothing) as null, since JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value
