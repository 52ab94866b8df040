"""Entry point of the ``mapper`` command."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import typer

from llama_mapper.audit import MappingEvent
from llama_mapper.audit.evidence import event_from_response
from llama_mapper.cli import (
    analytics_cmd,
    audit_cmd,
    auth_cmd,
    config_cmd,
    db_cmd,
    detectors_cmd,
    model_cmd,
    model_export_cmd,
    retention_cmd,
    taxonomy_cmd,
)
from llama_mapper.cli.batch import default_workers, run_batch
from llama_mapper.cli.common import (
    USER_ERRORS,
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_override,
    fail,
    print_json,
    service_or_exit,
)
from llama_mapper.cli.db_cmd import DB_ERRORS, error_message, migrate_or_exit
from llama_mapper.cli.evidence import CliEvidence
from llama_mapper.cli.model_registry_cmd import app as model_registry_app
from llama_mapper.cli.objects_cmd import app as objects_app
from llama_mapper.config.settings import CONFIG_ENV, Settings
from llama_mapper.errors import MapperError
from llama_mapper.observability.logging import configure_logging
from llama_mapper.service import MapperService
from llama_mapper.storage.thresholds import ThresholdFile
from llama_mapper.storage.unmapped_file import UnmappedFile

app = typer.Typer(
    name="mapper",
    help="Map AI-safety detector output to a canonical taxonomy and compliance controls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(taxonomy_cmd.app, name="taxonomy")
app.add_typer(detectors_cmd.app, name="detectors")
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(db_cmd.app, name="db")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(audit_cmd.projections_app, name="projections")
app.add_typer(analytics_cmd.app, name="analytics")
app.add_typer(objects_app, name="objects")
app.add_typer(model_registry_app, name="model")
app.add_typer(retention_cmd.app, name="retention")
config_cmd.register(app)
model_cmd.register(app)
model_export_cmd.register(model_registry_app)


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default: serving.host)."),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default: serving.port)."),
    workers: int = typer.Option(None, min=1, max=64, help="Worker processes."),
    data_dir: Path = DataDirOption,
    config: Path = ConfigOption,
) -> None:
    """Run the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    # Validate everything, and migrate the key database, before binding a port.
    service = service_or_exit(config, **data_dir_override(data_dir))
    settings = service.settings
    configure_logging(settings.observability)
    if (settings.auth.enabled or settings.audit.enabled) and settings.database.auto_migrate:
        migrate_or_exit(settings)
    serving = settings.serving
    # The app factory runs in uvicorn's worker processes: hand the choices over by env.
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if data_dir is not None:
        os.environ["LLAMA_MAPPER_DATA_DIR"] = str(data_dir.resolve())
    uvicorn.run(
        "llama_mapper.api.app:create_app",
        factory=True,
        log_config=None,  # configure_logging routes uvicorn's records through structlog
        host=host or serving.host,
        port=port or serving.port,
        workers=workers or serving.workers,
        timeout_worker_healthcheck=serving.worker_start_timeout_seconds,
        log_level="info",
        access_log=False,
    )


@app.command("map")
def map_command(
    detector: str = typer.Option(..., "--detector", "-d", help="Detector name."),
    output: str = typer.Option(..., "--output", "-o", help="Label(s) or the detector's JSON."),
    tenant: str = typer.Option(None, "--tenant", "-t", help="Tenant id (default: default_tenant)."),
    data_dir: Path = DataDirOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Map one detector output and print the MappingResponse."""
    service = service_or_exit(config, **data_dir_override(data_dir))
    parsed: Any = output
    if output.lstrip()[:1] in ("{", "[", '"'):
        try:
            parsed = orjson.loads(output)
        except orjson.JSONDecodeError:
            fail("--output starts like JSON but is not valid JSON", as_json=as_json)
    body = {
        "detector": detector,
        "output": parsed,
        "tenant_id": tenant or service.settings.default_tenant,
    }
    try:
        payload = service.parse_payload(body)
        response = service.map_payload(payload, route="cli:map")
    except MapperError as exc:
        fail(f"{exc.error_code}: {exc.message}", as_json=as_json)
    with _evidence_or_exit(service.settings) as evidence:
        if evidence is not None:
            _record_or_exit(evidence, [event_from_response(response, evidence.fingerprint(parsed))])
    _save_unmapped(service)
    print_json(response)


@app.command()
def batch(
    input_file: Path = typer.Argument(..., help="JSONL, one MapperPayload per line ('-' = stdin)."),
    output_file: Path = typer.Option(None, "--output", "-o", help="JSONL out (default stdout)."),
    workers: int = typer.Option(0, min=0, max=64, help="Processes (0: all cores for big files)."),
    data_dir: Path = DataDirOption,
    config: Path = ConfigOption,
) -> None:
    """Map a JSONL file: one MappingResponse or {"error": ...} per input line, in order."""
    service = service_or_exit(config, **data_dir_override(data_dir))
    stdin = str(input_file) == "-"
    if not stdin and not input_file.is_file():
        fail(f"input file {input_file} not found")
    size = None if stdin else input_file.stat().st_size
    source = sys.stdin.buffer if stdin else input_file.open("rb")
    sink = output_file.open("wb") if output_file else sys.stdout.buffer
    try:
        with _evidence_or_exit(service.settings) as evidence:
            total, errors = _run_with_progress(
                service, source, sink, workers or default_workers(size), size, evidence
            )
    finally:
        if not stdin:
            source.close()
        if output_file:
            sink.close()
    _save_unmapped(service)
    typer.echo(f"mapped {total - errors} of {total} lines ({errors} errors)", err=True)


def _save_unmapped(service: MapperService) -> None:
    """Add this run's unmapped-label counts to the state file; a bad file only warns."""
    counts = service.engine.unmapped.drain()
    try:
        UnmappedFile.in_state_dir(service.settings.state_dir).add(counts)
    except (OSError, ValueError) as exc:
        typer.secho(f"warning: unmapped labels not saved: {exc}", err=True)


@contextmanager
def _evidence_or_exit(settings: Settings) -> Iterator[CliEvidence | None]:
    """The evidence recorder (None when audit is off); a database problem is one line."""
    try:
        evidence = CliEvidence.open(settings)
    except DB_ERRORS as exc:
        fail(f"evidence store: {error_message(exc)}")
    try:
        yield evidence
    finally:
        if evidence is not None:
            evidence.close()


def _record_or_exit(evidence: CliEvidence, events: list[MappingEvent]) -> None:
    try:
        evidence.record(events)
    except DB_ERRORS as exc:
        fail(f"evidence store: {error_message(exc)}")


def _run_with_progress(
    service: Any,
    source: Any,
    sink: Any,
    workers: int,
    size: int | None,
    evidence: CliEvidence | None = None,
) -> tuple[int, int]:
    recording: dict[str, Any] = {}
    if evidence is not None:
        recording = {
            "fingerprint": evidence.fingerprint,
            "on_events": lambda events: _record_or_exit(evidence, events),
        }
    if not sys.stderr.isatty():
        return run_batch(service, source, sink, workers=workers, **recording)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("mapping", total=None)
        return run_batch(
            service,
            source,
            sink,
            workers=workers,
            on_progress=lambda n: progress.advance(task, n),
            **recording,
        )


@app.command("set-threshold")
def set_threshold(
    detector: str = typer.Option(..., "--detector", "-d"),
    threshold: float = typer.Option(..., min=0.0, max=1.0),
    label: str = typer.Option(None, "--label", "-l", help="One vendor label of the detector."),
    config: Path = ConfigOption,
) -> None:
    """Set the score threshold below which a detector's findings are dropped."""
    service = service_or_exit(config)
    if service.catalog.packs.get(detector) is None:
        typer.secho(f"warning: no detector pack named {detector!r}", err=True)
    try:
        ThresholdFile(service.settings.state_dir).set(detector, threshold, label)
    except (*USER_ERRORS, OSError) as exc:
        fail(str(exc))
    where = f"{detector} label {label!r}" if label else detector
    typer.echo(f"threshold for {where} set to {threshold}")


@app.command("show-thresholds")
def show_thresholds(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Effective thresholds per detector, with where each comes from."""
    service = service_or_exit(config)
    try:
        stored = ThresholdFile(service.settings.state_dir).load()
    except USER_ERRORS as exc:
        fail(str(exc))
    configured = service.settings.mapping
    rows: list[dict[str, Any]] = []
    for pack in service.catalog.packs:
        name = pack.detector
        value, source = pack.threshold, "pack"
        if name in stored.detectors:
            value, source = stored.detectors[name], "set-threshold"
        if name in configured.detector_thresholds:
            value, source = configured.detector_thresholds[name], "config"
        labels = {
            **pack.thresholds,
            **stored.labels.get(name, {}),
            **configured.label_thresholds.get(name, {}),
        }
        rows.append({"detector": name, "threshold": value, "source": source, "labels": labels})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['detector']:<24} {row['threshold']:<6} ({row['source']})")
        for label, value in row["labels"].items():
            typer.echo(f"    {label:<32} {value}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
