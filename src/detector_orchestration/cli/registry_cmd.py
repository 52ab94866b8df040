"""``orch registry list|add|remove|health``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from detector_orchestration.cli.common import JsonOption, OrchConfigOption, run_with_runtime, table
from detector_orchestration.registry.health import probe_all
from detector_orchestration.registry.model import DetectorSpec
from detector_orchestration.runtime import OrchRuntime
from llama_mapper.cli.common import fail, print_json
from llama_mapper.service import validation_message

app = typer.Typer(help="The detector registry.", no_args_is_help=True)


@app.command("list")
def list_command(config: Path = OrchConfigOption, as_json: bool = JsonOption) -> None:
    """Built-in and registered detectors."""

    async def work(runtime: OrchRuntime) -> list[dict[str, Any]]:
        rows = [{**row, "health": "-"} for row in runtime.catalog.builtin_rows()]
        return rows + [r.summary() for r in await runtime.registry.list()]

    rows = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        print_json(rows)
        return
    table(rows, ["name", "kind", "endpoint", "pack", "version", "timeout_ms", "retries", "health"])


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--setting takes KEY=VALUE (VALUE may be JSON), got {key or pair[:20]!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Unique detector name."),
    kind: str = typer.Option(..., help="fms, http-json, or a vendor client kind."),
    pack: str = typer.Option(..., help="Mapper detector pack that reads its output."),
    endpoint: str = typer.Option(None, help="Base URL (fms) or URL (http-json)."),
    timeout_ms: int = typer.Option(1000, min=1, max=120_000),
    retries: int = typer.Option(1, min=0, max=5),
    content_type: list[str] = typer.Option(["text/plain"], "--content-type"),
    auth_secret: str = typer.Option(None, help="Name of the secret holding its credential."),
    version: str = typer.Option("remote"),
    detector_id: str = typer.Option(None, help="fms: the detector-id header (default: name)."),
    setting: list[str] = typer.Option([], "--setting", help="KEY=VALUE (JSON allowed)."),
    replace: bool = typer.Option(False, help="Replace an existing registration."),
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Register a remote detector (the credential is referenced by secret name only)."""
    settings = _settings(setting)
    if detector_id:
        settings["detector_id"] = detector_id
    try:
        spec = DetectorSpec(
            name=name,
            kind=kind,
            pack=pack,
            endpoint=endpoint,
            timeout_ms=timeout_ms,
            retries=retries,
            content_types=content_type,
            auth_secret=auth_secret,
            version=version,
            settings=settings,
        )
    except ValidationError as exc:
        fail(f"invalid detector: {validation_message(exc)}", as_json=as_json)

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        from detector_orchestration.registry.factory import FactoryContext, build

        build(spec_record(spec), FactoryContext(runtime.http, runtime.shared.secrets))
        return (await runtime.registry.add(spec, replace=replace)).summary()

    record = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        print_json(record)
    else:
        typer.echo(f"registered {record['name']} ({record['kind']}, pack {record['pack']})")


def spec_record(spec: DetectorSpec) -> Any:
    from detector_orchestration.registry.model import DetectorRecord

    return DetectorRecord(**spec.model_dump())


@app.command("remove")
def remove_command(name: str = typer.Argument(...), config: Path = OrchConfigOption) -> None:
    """Remove a registered detector."""

    async def work(runtime: OrchRuntime) -> None:
        await runtime.registry.remove(name)

    run_with_runtime(config, work)
    typer.echo(f"removed {name}")


@app.command("health")
def health_command(config: Path = OrchConfigOption, as_json: bool = JsonOption) -> None:
    """Probe every detector once with a fixed text; record the result in the registry."""

    async def work(runtime: OrchRuntime) -> list[dict[str, Any]]:
        return await probe_all(runtime.catalog, runtime.registry)

    rows = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        print_json(rows)
    else:
        table(rows, ["name", "source", "version", "health", "latency_ms", "error"])
    if any(row["health"] != "healthy" for row in rows):
        raise typer.Exit(1)
