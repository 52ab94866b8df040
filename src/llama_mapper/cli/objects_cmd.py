"""``mapper objects``: look into the configured object store (anchors, exports, reports).

Read-only on purpose: objects are written by the commands that own them (``mapper audit
anchor``, ``mapper audit export --to-store``) and write-once ones cannot be removed here.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.runtime import secret_provider
from llama_mapper.secrets import SecretError
from llama_mapper.storage.objects import (
    ObjectStore,
    ObjectStoreError,
    object_store_from_settings,
)

app = typer.Typer(
    help="Object store: list and read anchors, exports and other stored objects.",
    no_args_is_help=True,
)


def _store(config: Path | None) -> ObjectStore:
    settings = settings_or_exit(config)
    try:
        return object_store_from_settings(settings, secret_provider(settings))
    except (ValueError, SecretError) as exc:
        fail(str(exc))


@app.command("list")
def list_objects(
    prefix: str = typer.Option("", "--prefix", "-p", help="Only keys starting with this."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Print every object's key and size, in key order, and how the store protects them."""
    store = _store(config)

    async def read() -> tuple[str, list[tuple[str, int]]]:
        protection = await store.protection()
        listed = await store.list(prefix)
        return protection.describe(), [(info.key, info.size) for info in listed]

    try:
        protection, objects = asyncio.run(read())
    except ObjectStoreError as exc:
        fail(str(exc), as_json=as_json)
    if as_json:
        print_json(
            {
                "backend": store.backend,
                "protection": protection,
                "objects": [{"key": key, "size": size} for key, size in objects],
            }
        )
        return
    typer.echo(f"store: {store.backend}, write-once by {protection}", err=True)
    for key, size in objects:
        typer.echo(f"{size:>10}  {key}")
    typer.echo(f"{len(objects)} objects", err=True)


@app.command("get")
def get_object(
    key: str = typer.Argument(..., help="Object key, e.g. exports/acme/….jsonl"),
    output: Path = typer.Option(
        None, "--output", "-o", dir_okay=False, help="File to write (default: stdout)."
    ),
    config: Path = ConfigOption,
) -> None:
    """Write one object's bytes to stdout or a file (to hand an export to an auditor)."""
    store = _store(config)
    try:
        data = asyncio.run(store.get(key))
    except (ObjectStoreError, ValueError) as exc:
        fail(str(exc))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {len(data)} bytes to {output}", err=True)
