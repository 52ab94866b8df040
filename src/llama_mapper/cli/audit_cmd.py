"""``mapper audit``: verify a tenant's evidence chain and export it for auditors.

The export is JSON Lines, one ``{"seq", "prev_hash", "hash", "event"}`` object per event,
which is everything needed to re-run the chain check offline without this package (see
``docs/audit-verification.md``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TypeVar

import orjson
import typer

from llama_mapper.audit import EventStore, StoredEvent, VerifyResult
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, error_message
from llama_mapper.config.settings import Settings
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.db.migrate import current_revision, head_revision, open_database

T = TypeVar("T")

app = typer.Typer(
    help="Evidence store: verify a tenant's hash chain, export it for offline audit.",
    no_args_is_help=True,
)

TenantOption = typer.Option(..., "--tenant", "-t", help="Tenant whose chain to use.")


def _run(config: Path | None, as_json: bool, action: Callable[[EventStore], Awaitable[T]]) -> T:
    """Run ``action`` against the configured database; any failure is one line, exit 1."""
    settings = settings_or_exit(config)
    try:
        return asyncio.run(_with_store(settings, action))
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)


async def _with_store(settings: Settings, action: Callable[[EventStore], Awaitable[T]]) -> T:
    secrets = secret_provider(settings) if settings.database.password_secret else None
    engine = await open_database(settings, secrets)
    try:
        if not settings.database.auto_migrate:
            head = head_revision()
            if await current_revision(engine) != head:
                raise ValueError(
                    f"the database is not at revision {head} and database.auto_migrate is off: "
                    "run `mapper db upgrade` first"
                )
        return await action(EventStore(engine))
    finally:
        await engine.dispose()


@app.command("verify")
def verify(
    tenant: str = TenantOption,
    since: str = typer.Option(
        None,
        "--since",
        help="Check from the first event at or after this ISO-8601 UTC time (default: all).",
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Recompute TENANT's hash chain; exit 1 naming the first broken seq."""

    async def check(store: EventStore) -> tuple[VerifyResult, tuple[int, str] | None]:
        return await store.verify(tenant, since=since), await store.head(tenant)

    result, head = _run(config, as_json, check)
    if as_json:
        print_json(
            {
                "tenant": tenant,
                "ok": result.ok,
                "checked": result.checked,
                "first_broken_seq": result.first_broken_seq,
                "reason": result.reason,
                "head_seq": head[0] if head else None,
                "head_hash": head[1] if head else None,
            }
        )
        if not result.ok:
            raise typer.Exit(1)
        return
    if not result.ok:
        fail(
            f"chain of {tenant} is broken at seq {result.first_broken_seq}: {result.reason} "
            f"({result.checked} events checked)"
        )
    head_text = head[1][:16] if head else "none"
    typer.echo(f"chain of {tenant} verified: {result.checked} events, head {head_text}")


@app.command("export")
def export(
    tenant: str = TenantOption,
    start: str = typer.Option(
        None, "--from", help="From the first event at or after this ISO-8601 UTC time."
    ),
    end: str = typer.Option(
        None, "--to", help="Up to the last event before this ISO-8601 UTC time."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", dir_okay=False, help="JSON Lines file (default: stdout)."
    ),
    config: Path = ConfigOption,
) -> None:
    """Write TENANT's events as JSON Lines for offline verification.

    A time window becomes a run of consecutive seqs (see ``EventStore.iter_events``), so
    the file always verifies as one piece of the chain.
    """

    async def write(store: EventStore) -> int:
        if output is None:
            return await _write(store, tenant, start, end, sys.stdout.buffer)
        with output.open("wb") as stream:
            return await _write(store, tenant, start, end, stream)

    # A corrupt row is a ValueError, so it ends the export with one line like a DB error.
    count = _run(config, False, write)
    if output is not None:
        typer.echo(f"exported {count} events of {tenant} to {output}", err=True)


async def _write(
    store: EventStore, tenant: str, start: str | None, end: str | None, stream: IO[bytes]
) -> int:
    count = 0
    async for stored in store.iter_events(tenant, since=start, until=end):
        stream.write(export_line(stored))
        count += 1
    stream.flush()
    return count


def export_line(stored: StoredEvent) -> bytes:
    """One JSON Lines record; ``event`` is exactly the object that was hashed."""
    return orjson.dumps(
        {
            "seq": stored.seq,
            "prev_hash": stored.prev_hash,
            "hash": stored.hash,
            "event": stored.event.to_dict(),
        },
        option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
    )
