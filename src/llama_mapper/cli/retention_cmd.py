"""``mapper retention``: delete evidence past its retention, and manage legal holds.

``run`` applies ``retention.default_days`` / ``retention.tenant_days``: each tenant's
oldest events past the cutoff are deleted and a tombstone is appended to its chain, so
``mapper audit verify`` stays green (see docs/retention.md). A tenant on legal hold loses
nothing; holds are kept in the database with who set or released them, when and why.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.audit.holds import Hold, list_holds, release_hold, set_hold
from llama_mapper.audit.retention import TenantOutcome, run_retention
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, checked_database, error_message
from llama_mapper.retention import RetentionPolicy

T = TypeVar("T")

app = typer.Typer(
    help="Retention: delete evidence past its retention (tombstones keep chains verifiable), "
    "legal holds.",
    no_args_is_help=True,
)
hold_app = typer.Typer(help="Legal holds: a held tenant loses nothing to retention.")
app.add_typer(hold_app, name="hold")

TenantOption = typer.Option(..., "--tenant", "-t", help="Tenant id.")
ReasonOption = typer.Option(..., "--reason", help="Why (recorded with the hold).")
WhoOption = typer.Option(None, "--by", help="Who (default: the OS user).")


def _engine_run(
    config: Path | None, as_json: bool, action: Callable[[AsyncEngine], Awaitable[T]]
) -> T:
    settings = settings_or_exit(config)

    async def go() -> T:
        async with checked_database(settings) as (engine, _):
            return await action(engine)

    try:
        return asyncio.run(go())
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)


def _who(value: str | None) -> str:
    if value:
        return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command("run")
def run(
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Only this tenant (default: every tenant with events)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; delete nothing."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete events past each tenant's retention; a tombstone records every deletion."""
    settings = settings_or_exit(config)
    policy = RetentionPolicy(settings.retention.default_days, settings.retention.tenant_days)

    async def apply(engine: AsyncEngine) -> list[TenantOutcome]:
        tenants = [tenant] if tenant is not None else None
        return await run_retention(engine, policy, tenants=tenants, dry_run=dry_run)

    outcomes = _engine_run(config, as_json, apply)
    if as_json:
        print_json({"dry_run": dry_run, "tenants": [o.to_dict() for o in outcomes]})
        return
    if not outcomes:
        typer.echo("no tenant has events")
    verb = "would delete" if dry_run else "deleted"
    for outcome in outcomes:
        if outcome.held:
            typer.echo(f"{outcome.tenant_id}: on legal hold, nothing deleted")
        elif not outcome.deleted:
            typer.echo(f"{outcome.tenant_id}: nothing older than {outcome.cutoff}")
        else:
            typer.echo(
                f"{outcome.tenant_id}: {verb} {outcome.deleted} events "
                f"(seq {outcome.first_seq}-{outcome.last_seq}, older than {outcome.cutoff})"
            )


@hold_app.command("set")
def hold_set(
    tenant: str = TenantOption,
    reason: str = ReasonOption,
    by: str = WhoOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Put TENANT on legal hold: retention deletes nothing of it until released."""

    async def apply(engine: AsyncEngine) -> Hold:
        return await set_hold(engine, tenant, reason, _who(by))

    hold = _engine_run(config, as_json, apply)
    if as_json:
        print_json(hold.to_dict())
        return
    typer.echo(f"{tenant} is on legal hold (set by {hold.set_by} at {hold.set_at.isoformat()})")


@hold_app.command("release")
def hold_release(
    tenant: str = TenantOption,
    reason: str = ReasonOption,
    by: str = WhoOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Release TENANT's legal hold; retention applies again from the next run."""

    async def apply(engine: AsyncEngine) -> int:
        return await release_hold(engine, tenant, reason, _who(by))

    released = _engine_run(config, as_json, apply)
    if as_json:
        print_json({"tenant": tenant, "released": released})
        return
    typer.echo(f"released the legal hold of {tenant}")


@hold_app.command("list")
def hold_list(
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
    active: bool = typer.Option(False, "--active", help="Only holds still in force."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Holds, newest first, released ones included (who, when, why)."""

    async def read(engine: AsyncEngine) -> list[Hold]:
        return await list_holds(engine, tenant, active_only=active)

    holds = _engine_run(config, as_json, read)
    if as_json:
        print_json([hold.to_dict() for hold in holds])
        return
    if not holds:
        typer.echo("no legal holds")
    for hold in holds:
        state = (
            "ACTIVE"
            if hold.active
            else f"released by {hold.released_by} at {hold.released_at}: {hold.release_reason}"
        )
        typer.echo(
            f"{hold.tenant_id}  set by {hold.set_by} at {hold.set_at.isoformat()}: "
            f"{hold.reason}  [{state}]"
        )
