"""``mapper audit``: verify a tenant's evidence chain and export it for auditors.

The export is JSON Lines, one ``{"seq", "prev_hash", "hash", "event"}`` object per event,
which is everything needed to re-run the chain check offline without this package (see
``docs/audit-verification.md``); ``--to-store`` puts it, with its manifest, into the object
store. ``anchor`` signs the current heads into write-once objects outside the database,
and ``verify`` checks the latest one, so cutting off the newest events together with the
head row is caught too. ``rewrap`` and ``show-metadata`` manage and reveal the kept
(encrypted) metadata fields.
"""

from __future__ import annotations

import asyncio
import io
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
from llama_mapper.audit.exports import ExportManifest, build_manifest, manifest_path, store_export
from llama_mapper.audit.keys import RewrapResult, reveal_metadata, rewrap, tenants_with_keys
from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.cli.db_cmd import DB_ERRORS, checked_database, error_message
from llama_mapper.config.settings import Settings
from llama_mapper.crypto import key_wrapper
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.db.replica import read_router
from llama_mapper.storage.objects import ObjectStoreError, Protection

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
    except ObjectStoreError as exc:  # refused credentials, missing bucket, unreachable…
        fail(str(exc), as_json=as_json)
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
    anchors = _anchor_store(settings)

    async def check(
        store: EventStore,
    ) -> tuple[VerifyResult, tuple[int, str] | None, Anchor | None, tuple[bool, str]]:
        result = await store.verify(tenant, since=since)
        head = await store.head(tenant)
        # An invalid tenant id cannot name an anchor folder, so it simply has no anchor.
        anchor = await anchors.latest(tenant) if _is_folder_safe(tenant) else None
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


def _anchor_store(settings: Settings) -> AnchorStore:
    """The configured object store's anchors; a bad object_store section is one line."""
    try:
        return AnchorStore.for_settings(settings, secret_provider(settings))
    except ValueError as exc:
        fail(str(exc))


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
    """Sign each tenant's current chain head into the object store, write-once.

    The server does this every ``audit.anchor_interval_seconds``; run it by hand (or from
    cron when no server runs) to anchor now: every event up to an anchored head is then
    protected against deletion even together with the head row. A tenant whose chain does
    not verify is refused, so an anchor never blesses tampered evidence. The first line
    says how the store protects anchors (S3 Object Lock, or a weaker write-once).
    """
    settings = settings_or_exit(config)
    anchors = _anchor_store(settings)
    secrets = secret_provider(settings)

    async def write(store: EventStore) -> tuple[Protection, list[Anchor]]:
        protection = await anchors.objects.protection()
        tenants = [tenant] if tenant is not None else await list_tenants(store)
        return protection, await anchor_tenants(store, anchors, secrets, tenants)

    protection, written = _run_with(settings, as_json, write)
    if as_json:
        print_json(
            {
                "store": {
                    "backend": anchors.objects.backend,
                    "mechanism": protection.mechanism,
                    "locked": protection.locked,
                    "detail": protection.detail,
                },
                "anchored": [item.to_dict() for item in written],
            }
        )
        return
    typer.echo(f"store: {anchors.objects.backend}, write-once by {protection.describe()}")
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
    to_store: bool = typer.Option(
        False,
        "--to-store",
        help="Write the export (and its manifest) into the object store under "
        "exports/<tenant>/ and print the object key.",
    ),
    config: Path = ConfigOption,
) -> None:
    """Write TENANT's events as JSON Lines for offline verification.

    A time window becomes a run of consecutive seqs (see ``EventStore.iter_events``), so
    the file always verifies as one piece of the chain. With ``-o`` or ``--to-store`` a
    manifest goes next to it: the first event's ``prev_hash`` (the starting point) and the
    signed anchors inside the window, which let an auditor check that starting point.
    """
    if output is not None and to_store:
        fail("choose one of --output and --to-store")
    settings = settings_or_exit(config)
    anchors = _anchor_store(settings) if output is not None or to_store else None

    async def write(store: EventStore) -> tuple[int, ExportManifest | None, str | None]:
        if anchors is None:
            return await _write(store, tenant, start, end, sys.stdout.buffer), None, None
        if output is not None:
            with output.open("wb") as stream:
                count = await _write(store, tenant, start, end, stream)
            manifest = await build_manifest(store, anchors, tenant, start, end)
            manifest_path(output).write_bytes(manifest.to_json())
            return count, manifest, None
        buffer = io.BytesIO()
        count = await _write(store, tenant, start, end, buffer)
        if count == 0:
            raise ValueError(f"no events of {tenant} in that window: nothing exported")
        manifest = await build_manifest(store, anchors, tenant, start, end)
        key = await store_export(anchors.objects, manifest, buffer.getvalue())
        return count, manifest, key

    # A corrupt row is a ValueError, so it ends the export with one line like a DB error.
    count, manifest, key = _run_with(settings, False, write)
    if key is not None:
        typer.echo(key)
        typer.echo(f"exported {count} events of {tenant} to the object store", err=True)
    elif output is not None:
        typer.echo(f"exported {count} events of {tenant} to {output}", err=True)
    if manifest is not None:
        typer.echo(manifest.summary(), err=True)


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


@app.command("rewrap")
def rewrap_keys(
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Tenant to re-wrap (default: every tenant with kept data)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Re-wrap the data keys of kept metadata under the newest KEK.

    Run after rotating ``audit.metadata_kek_secret`` (or its transit key). Ciphertexts in
    the events are not touched, so chain hashes, exports and anchors stay valid.
    """
    settings = settings_or_exit(config)
    wrapper = key_wrapper(secret_provider(settings), settings.audit.metadata_kek_secret)

    async def run(store: EventStore) -> list[RewrapResult]:
        tenants = [tenant] if tenant is not None else await tenants_with_keys(store.engine)
        return [await rewrap(store.engine, wrapper, name) for name in tenants]

    results = _run_with(settings, as_json, run)
    if as_json:
        print_json(
            [
                {
                    "tenant": r.tenant_id,
                    "rewrapped": r.rewrapped,
                    "already_current": r.already_current,
                }
                for r in results
            ]
        )
        return
    if not results:
        typer.echo("no kept metadata: nothing to re-wrap")
    for result in results:
        typer.echo(
            f"{result.tenant_id}: re-wrapped {result.rewrapped} data keys "
            f"({result.already_current} already under the newest KEK)"
        )


@app.command("show-metadata")
def show_metadata(
    tenant: str = TenantOption,
    event_id: str = typer.Option(..., "--event-id", "-e", help="Event whose metadata to show."),
    config: Path = ConfigOption,
) -> None:
    """Decrypt and print the kept metadata of one event (JSON on stdout).

    The only place kept metadata is decrypted: nothing is logged, and a wrong or missing
    key fails with one line that never contains a value.
    """
    settings = settings_or_exit(config)
    wrapper = key_wrapper(secret_provider(settings), settings.audit.metadata_kek_secret)

    async def run(store: EventStore) -> dict[str, Any]:
        return await reveal_metadata(store, wrapper, tenant, event_id)

    print_json(
        {"tenant": tenant, "event_id": event_id, "metadata": _run_with(settings, False, run)}
    )


#: ``mapper projections show|rebuild``: the read models under their own name (the same
#: commands as ``mapper audit projections`` and ``mapper audit rebuild-projections``).
projections_app = typer.Typer(
    help="Read models built from the evidence chain: show them, or rebuild them from scratch.",
    no_args_is_help=True,
)
projections_app.command("show")(show_projections)
projections_app.command("rebuild")(rebuild_projections)
