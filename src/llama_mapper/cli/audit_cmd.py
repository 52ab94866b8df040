"""``mapper audit``: verify a tenant's evidence chain and export it for auditors.

The export is JSON Lines, one ``{"seq", "prev_hash", "hash", "event"}`` object per event,
which is everything needed to re-run the chain check offline without this package (see
``docs/audit-verification.md``). ``anchor`` signs the current heads into write-once files
outside the database, and ``verify`` checks the latest one, so cutting off the newest
events together with the head row is caught too.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.audit import EventStore, StoredEvent, VerifyResult, projections
from llama_mapper.audit.anchors import (
    Anchor,
    AnchorError,
    AnchorStore,
    anchor_tenants,
    check_against_chain,
    check_tenant_id,
    list_tenants,
)
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, checked_database, error_message
from llama_mapper.config.settings import Settings
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.db.replica import read_router

T = TypeVar("T")

app = typer.Typer(
    help="Evidence store: verify a tenant's hash chain, export it for offline audit.",
    no_args_is_help=True,
)

TenantOption = typer.Option(..., "--tenant", "-t", help="Tenant whose chain to use.")


def _run(config: Path | None, as_json: bool, action: Callable[[EventStore], Awaitable[T]]) -> T:
    """Run ``action`` against the configured database; any failure is one line, exit 1."""
    return _run_with(settings_or_exit(config), as_json, action)


def _run_with(settings: Settings, as_json: bool, action: Callable[[EventStore], Awaitable[T]]) -> T:
    """:func:`_run` for commands that also need the settings (state_dir, secrets)."""
    try:
        return asyncio.run(_with_store(settings, action))
    except DB_ERRORS as exc:
        fail(error_message(exc), as_json=as_json)


async def _with_store(settings: Settings, action: Callable[[EventStore], Awaitable[T]]) -> T:
    async with checked_database(settings) as (engine, _):
        return await action(EventStore(engine))


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
    """Recompute TENANT's hash chain and check its latest anchor; exit 1 if either fails.

    The chain alone cannot show that the newest events were cut off together with the
    head row; the latest anchor (``mapper audit anchor``) can, for the events it covers.
    """
    settings = settings_or_exit(config)
    anchors = AnchorStore.for_state_dir(settings.state_dir)

    async def check(
        store: EventStore,
    ) -> tuple[VerifyResult, tuple[int, str] | None, Anchor | None, tuple[bool, str]]:
        result = await store.verify(tenant, since=since)
        head = await store.head(tenant)
        # An invalid tenant id cannot name an anchor folder, so it simply has no anchor.
        anchor = anchors.latest(tenant) if _is_folder_safe(tenant) else None
        anchored = (True, "no anchor yet")
        if anchor is not None:
            anchored = await check_against_chain(anchor, store)
        return result, head, anchor, anchored

    result, head, anchor, (anchor_ok, anchor_reason) = _run_with(settings, as_json, check)
    anchor_text = (
        "no anchor yet"
        if anchor is None
        else f"seq {anchor.seq} verified"
        if anchor_ok
        else f"seq {anchor.seq} FAILED: {anchor_reason}"
    )
    if as_json:
        print_json(
            {
                "tenant": tenant,
                "ok": result.ok and anchor_ok,
                "checked": result.checked,
                "first_broken_seq": result.first_broken_seq,
                "reason": result.reason,
                "head_seq": head[0] if head else None,
                "head_hash": head[1] if head else None,
                "anchor": _anchor_json(anchor, anchor_ok, anchor_reason),
                "anchor_status": anchor_text,
            }
        )
        if not (result.ok and anchor_ok):
            raise typer.Exit(1)
        return
    if not result.ok:
        fail(
            f"chain of {tenant} is broken at seq {result.first_broken_seq}: {result.reason} "
            f"({result.checked} events checked)"
        )
    if anchor is not None and not anchor_ok:
        fail(
            f"chain of {tenant} does not match its anchor at seq {anchor.seq} "
            f"(anchored {anchor.anchored_at}): {anchor_reason}"
        )
    head_text = head[1][:16] if head else "none"
    typer.echo(f"chain of {tenant} verified: {result.checked} events, head {head_text}")
    typer.echo(f"anchor: {anchor_text}")


def _is_folder_safe(tenant: str) -> bool:
    try:
        check_tenant_id(tenant)
    except AnchorError:
        return False
    return True


def _anchor_json(anchor: Anchor | None, ok: bool, reason: str) -> dict[str, object] | None:
    """The anchor as verify reports it: key version and public key let an auditor compare
    the signer with a key published out of band."""
    if anchor is None:
        return None
    return {
        "seq": anchor.seq,
        "head_hash": anchor.head_hash,
        "anchored_at": anchor.anchored_at,
        "key_version": anchor.key_version,
        "public_key": anchor.public_key,
        "ok": ok,
        "reason": reason,
    }


@app.command("anchor")
def anchor(
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Tenant to anchor (default: every tenant with events)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Sign each tenant's current chain head into a write-once file under state_dir/anchors.

    Run it periodically (cron): every event up to an anchored head is then protected
    against deletion even together with the head row. A tenant whose chain does not verify
    is refused, so an anchor never blesses tampered evidence.
    """
    settings = settings_or_exit(config)
    anchors = AnchorStore.for_state_dir(settings.state_dir)
    secrets = secret_provider(settings)

    async def write(store: EventStore) -> list[Anchor]:
        tenants = [tenant] if tenant is not None else await list_tenants(store)
        return await anchor_tenants(store, anchors, secrets, tenants)

    written = _run_with(settings, as_json, write)
    if as_json:
        print_json({"anchored": [item.to_dict() for item in written]})
        return
    if not written:
        typer.echo("nothing to anchor: every head is already anchored")
    for item in written:
        typer.echo(
            f"anchored {item.tenant_id} at seq {item.seq}, head {item.head_hash[:16]} "
            f"(key {item.key_version}, public key {item.public_key[:16]})"
        )


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


@app.command("projections")
def show_projections(
    tenant: str = TenantOption,
    since_day: str = typer.Option(
        None, "--since-day", help="Label counts from this UTC day (YYYY-MM-DD) on."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Print TENANT's read models: events per label and day, per control, per detector.

    They are kept up to date by every append; ``stale`` means events predate them (or rows
    were lost), and ``mapper audit rebuild-projections`` recomputes them from the chain.
    """

    settings = settings_or_exit(config)

    async def read(store: EventStore) -> dict[str, object]:
        # Read models are report data: a fresh read replica may serve them.
        router = read_router(settings, secret_provider(settings), store.engine)
        try:
            return await router.run(lambda engine: _read_models(engine, tenant, since_day))
        finally:
            if router.replica is not None:
                await router.replica.dispose()

    models = _run_with(settings, as_json, read)
    if as_json:
        print_json(models)
        return
    state = "STALE, run `mapper audit rebuild-projections`" if models["stale"] else "current"
    typer.echo(
        f"read models of {tenant}: seq {models['position']} of {models['head_seq']} ({state})"
    )
    typer.echo("labels (day, label, events):")
    for row in _rows(models["labels"]):
        typer.echo(f"  {row['day']}  {row['label']}  {row['events']}")
    typer.echo("controls (control, events, last seen):")
    for row in _rows(models["controls"]):
        typer.echo(f"  {row['control']}  {row['events']}  {row['last_seen_ts']}")
    typer.echo("detectors (detector, events, unknown, unknown rate):")
    for row in _rows(models["detectors"]):
        typer.echo(
            f"  {row['detector']}  {row['events']}  {row['unknown_events']}  "
            f"{row['unknown_rate']:.3f}"
        )


async def _read_models(
    engine: AsyncEngine, tenant: str, since_day: str | None
) -> dict[str, object]:
    """Head and read models from one engine, so ``stale`` compares like with like."""
    head = await EventStore(engine).head(tenant)
    folded = await projections.position(engine, tenant)
    return {
        "tenant": tenant,
        "position": folded,
        "head_seq": head[0] if head else 0,
        "stale": folded != (head[0] if head else 0),
        "labels": await projections.label_counts(engine, tenant, since_day),
        "controls": await projections.control_evidence(engine, tenant),
        "detectors": await projections.detector_quality(engine, tenant),
    }


def _rows(value: object) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else []


@app.command("rebuild-projections")
def rebuild_projections(
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Tenant to rebuild (default: every tenant)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Recompute the read models from the hash chain (after upgrading, restoring, or
    whenever ``mapper audit projections`` reports them stale)."""

    async def run(store: EventStore) -> int:
        return await projections.rebuild(store.engine, tenant)

    folded = _run(config, as_json, run)
    if as_json:
        print_json({"tenant": tenant, "folded": folded})
        return
    typer.echo(f"rebuilt read models of {tenant or 'every tenant'}: {folded} events folded")
