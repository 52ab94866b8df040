"""Helpers every command uses: loading settings, printing results and errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from llama_mapper.catalog import CatalogError
from llama_mapper.config.overlays import OverlayError
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.packs.model import PackError
from llama_mapper.service import MapperService, validation_message
from llama_mapper.taxonomy.frameworks import FrameworkError
from llama_mapper.taxonomy.model import TaxonomyError
from llama_mapper.yamlio import DataFileError

#: Errors caused by files the user controls; reported as one line, exit code 1.
USER_ERRORS = (
    CatalogError,
    DataFileError,
    FileNotFoundError,
    FrameworkError,
    OverlayError,
    PackError,
    TaxonomyError,
)

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML config file (default: $LLAMA_MAPPER_CONFIG).",
    exists=False,
    dir_okay=False,
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")
DataDirOption = typer.Option(
    None,
    "--data-dir",
    file_okay=False,
    help="Folder overriding the packaged taxonomy.yaml, frameworks.yaml and detectors/.",
)


def data_dir_override(data_dir: Path | None) -> dict[str, Any]:
    return {"data_dir": data_dir} if data_dir is not None else {}


def fail(message: str, *, as_json: bool = False, code: int = 1) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"message": message}}), err=True)
    else:
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ValidationError as exc:
        fail(f"invalid configuration: {validation_message(exc)}")
    except SettingsError as exc:  # an env var pydantic-settings cannot parse
        fail(f"invalid configuration: {exc}")
    except (DataFileError, FileNotFoundError) as exc:
        fail(str(exc))


def service_or_exit(config: Path | None, **overrides: Any) -> MapperService:
    settings = settings_or_exit(config, **overrides)
    try:
        return MapperService.from_settings(settings, config)
    except USER_ERRORS as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
