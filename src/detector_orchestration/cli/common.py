"""What every orch command shares: settings, a runtime on the migrated database, and one
clear error line with a non-zero exit for anything the user can fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from detector_orchestration.config import OrchSettings, load_orch_settings
from detector_orchestration.policy.model import PolicyError
from detector_orchestration.policy.store import PolicyStoreError
from detector_orchestration.registry.factory import FactoryError
from detector_orchestration.registry.store import RegistryError
from detector_orchestration.runtime import OrchRuntime, build_orch_runtime, mapper_settings
from llama_mapper.cli.common import USER_ERRORS, fail
from llama_mapper.cli.db_cmd import DB_ERRORS, error_message
from llama_mapper.errors import MapperError
from llama_mapper.service import validation_message
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.yamlio import DataFileError

T = TypeVar("T")

OrchConfigOption = typer.Option(
    None, "--config", "-c", help="orch YAML config (default: $ORCH_CONFIG).", dir_okay=False
)
TenantOption = typer.Option(..., "--tenant", "-t", help="Tenant id.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")

#: Failures the user can act on, shown as one line.
EXPECTED = (
    PolicyError,
    PolicyStoreError,
    RegistryError,
    FactoryError,
    *USER_ERRORS,
)


def orch_settings_or_exit(config: Path | None) -> OrchSettings:
    try:
        return load_orch_settings(config)
    except ValidationError as exc:
        fail(f"invalid configuration: {validation_message(exc)}")
    except SettingsError as exc:
        fail(f"invalid configuration: {exc}")
    except (DataFileError, FileNotFoundError) as exc:
        fail(str(exc))


@asynccontextmanager
async def open_runtime(settings: OrchSettings) -> AsyncIterator[OrchRuntime]:
    runtime = build_orch_runtime(settings, mapper_settings(settings))
    try:
        if runtime.shared.settings.database.auto_migrate:
            await upgrade(runtime.shared.engine)
        if runtime.shared.events is not None:
            await runtime.shared.events.start()
        yield runtime
    finally:
        await runtime.aclose()


def run_with_runtime(
    config: Path | None, work: Callable[[OrchRuntime], Awaitable[T]], *, as_json: bool = False
) -> T:
    """Run ``work`` on a fresh runtime; every expected failure is one line, exit 1."""
    settings = orch_settings_or_exit(config)

    async def main() -> T:
        async with open_runtime(settings) as runtime:
            return await work(runtime)

    try:
        return asyncio.run(main())
    except MapperError as exc:
        fail(f"{exc.error_code}: {exc.message}", as_json=as_json)
    except EXPECTED as exc:
        fail(str(exc), as_json=as_json)
    except ValidationError as exc:
        fail(f"invalid configuration: {validation_message(exc)}", as_json=as_json)
    except DB_ERRORS as exc:
        fail(f"database: {error_message(exc)}", as_json=as_json)


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))
