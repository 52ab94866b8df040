"""``mapper model``: the model registry (register, list, show, promote, rollback, history).

A refused operation (unknown version, not a model folder, a version registered with other
bytes, nothing to roll back) exits with code 2 and one line; an object store that cannot
be reached exits with 1, as ``mapper objects`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from llama_mapper.cli.common import ConfigOption, JsonOption, fail, print_json, settings_or_exit
from llama_mapper.model.registry import (
    DEFAULT_STAGE,
    Manifest,
    ModelRegistry,
    Promotion,
    RegistryError,
)
from llama_mapper.model.registry_serving import registry_from_settings
from llama_mapper.secrets import SecretError
from llama_mapper.storage.objects import ObjectStoreError

#: Exit code of a refused registry operation (a user mistake, not an outage).
REFUSED = 2
T = TypeVar("T")

app = typer.Typer(
    help="Model registry: versioned learned-tier models in the object store, promoted per stage.",
    no_args_is_help=True,
)
StageOption = typer.Option(DEFAULT_STAGE, "--stage", "-s", help="Serving stage.")


def _run(
    config: Path | None, as_json: bool, action: Callable[[ModelRegistry], Coroutine[Any, Any, T]]
) -> T:
    settings = settings_or_exit(config)
    try:
        registry = registry_from_settings(settings)
        return asyncio.run(action(registry))
    except RegistryError as exc:
        fail(str(exc), as_json=as_json, code=REFUSED)
    except (ObjectStoreError, SecretError, ValueError) as exc:
        fail(str(exc), as_json=as_json)


def _summary(manifest: Manifest, stages: tuple[str, ...] = ()) -> dict[str, Any]:
    data = manifest.to_dict()
    data.pop("schema")
    data["stages"] = list(stages)
    return data


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _record(record: Promotion) -> dict[str, Any]:
    data = record.to_dict()
    data.pop("schema")
    return data


@app.command("list")
def list_models(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Every registered version with kind, date, top-1, ECE, data hash and serving stages."""
    models = _run(config, as_json, lambda registry: registry.list())
    if as_json:
        print_json({"models": [_summary(m.manifest, m.stages) for m in models]})
        return
    typer.echo(
        f"{'VERSION':<24} {'KIND':<10} {'DATE':<10}  {'TOP-1':>6}  {'ECE':>6}  "
        f"{'STAGES':<16} {'DATA HASH':<12}  BASE MODEL"
    )
    for model in models:
        m = model.manifest
        typer.echo(
            f"{m.version:<24} {m.kind:<10} {m.date or '-':<10}  {_metric(m.top1_accuracy):>6}  "
            f"{_metric(m.ece):>6}  {','.join(model.stages) or '-':<16} {m.data_hash[:12]:<12}  "
            f"{m.base_model}"
        )
    typer.echo(f"{len(models)} versions", err=True)


@app.command("register")
def register(
    folder: Path = typer.Argument(..., help="Model folder (mapper train --output-dir)."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Upload a model folder as the version its card names, with a SHA-256 manifest."""
    result = _run(config, as_json, lambda registry: registry.register(folder))
    m = result.manifest
    if as_json:
        print_json({"created": result.created, "model": _summary(m)})
        return
    if result.created:
        size = sum(entry.size for entry in m.files)
        typer.echo(f"registered {m.version} ({m.kind}, {len(m.files)} files, {size} bytes)")
    else:
        typer.echo(f"{m.version} is already registered with these exact files; nothing to do")


@app.command("show")
def show(
    version: str = typer.Argument(..., help="A registered version."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Print a version's model card (verified against its manifest) and where it serves."""

    async def read(registry: ModelRegistry) -> tuple[Manifest, dict[str, Any], tuple[str, ...]]:
        manifest = await registry.manifest(version)
        card = await registry.card(version)
        current = await registry.current_all()
        return manifest, card, tuple(s for s, v in current.items() if v == version)

    manifest, card, stages = _run(config, as_json, read)
    if as_json:
        print_json({"model": _summary(manifest, stages), "card": card})
        return
    typer.echo(f"version:     {manifest.version} ({manifest.kind})")
    typer.echo(f"base model:  {manifest.base_model}")
    typer.echo(f"data hash:   {manifest.data_hash}")
    typer.echo(f"taxonomy:    {manifest.taxonomy_version}")
    typer.echo(f"date:        {manifest.date or '-'} (registered {manifest.registered_at})")
    typer.echo(f"top-1 / ECE: {_metric(manifest.top1_accuracy)} / {_metric(manifest.ece)}")
    typer.echo(f"serving on:  {', '.join(stages) or '-'}")
    for entry in manifest.files:
        typer.echo(f"  {entry.sha256[:16]}  {entry.size:>10}  {entry.path}")
    typer.echo("card:")
    print_json(card)


@app.command("promote")
def promote(
    version: str = typer.Argument(..., help="A registered version."),
    stage: str = StageOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Serve VERSION on the stage (appends to the stage's promotion history)."""
    change = _run(config, as_json, lambda registry: registry.promote(version, stage))
    if as_json:
        print_json({"changed": change.changed, "record": _record(change.record)})
    elif change.changed:
        was = change.record.previous or "nothing"
        typer.echo(f"{stage}: {change.record.version} (was {was})")
    else:
        typer.echo(f"{stage} already serves {version}; nothing to do")


@app.command("rollback")
def rollback(
    stage: str = StageOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Serve again the version the stage served before its latest promotion."""
    change = _run(config, as_json, lambda registry: registry.rollback(stage))
    if as_json:
        print_json({"changed": change.changed, "record": _record(change.record)})
        return
    typer.echo(f"{stage}: rolled back to {change.record.version} (was {change.record.previous})")


@app.command("history")
def history(
    stage: str = StageOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The stage's promotion records, oldest first (the last one serves)."""
    records = _run(config, as_json, lambda registry: registry.history(stage))
    if as_json:
        print_json({"stage": stage, "records": [_record(r) for r in records]})
        return
    for r in records:
        typer.echo(f"{r.seq:>6}  {r.at}  {r.action:<8}  {r.version}  (was {r.previous or '-'})")
    typer.echo(f"{len(records)} records", err=True)
