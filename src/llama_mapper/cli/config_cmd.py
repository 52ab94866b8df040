"""``validate-config``, ``show-config`` and ``init-config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr

from llama_mapper.catalog import load_catalog
from llama_mapper.cli.common import (
    USER_ERRORS,
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_override,
    fail,
    print_json,
    settings_or_exit,
)
from llama_mapper.config.overlays import TenantConfigs, apply_environment
from llama_mapper.config.settings import Settings
from llama_mapper.yamlio import dump_yaml

MASK = "**********"


def register(app: typer.Typer) -> None:
    app.command("validate-config")(validate_config)
    app.command("show-config")(show_config)
    app.command("init-config")(init_config)


def validate_config(config: Path = ConfigOption, data_dir: Path = DataDirOption) -> None:
    """Check the config file, overlays and reference data; exit 1 on any problem."""
    settings = settings_or_exit(config, **data_dir_override(data_dir))
    root = settings.overlay_root(config)
    try:
        settings = apply_environment(settings, root)
        catalog = load_catalog(settings.data_dir)
        tenants = TenantConfigs(settings.tenant_view(), root)
        tenant_files = sorted((root / "tenants").glob("*.yaml")) if root else []
        for path in tenant_files:
            tenants.for_tenant(path.stem)
    except USER_ERRORS as exc:
        fail(str(exc))
    for warning in catalog.warnings:
        typer.secho(f"warning: {warning}", err=True)
    typer.echo(
        f"configuration valid: taxonomy {catalog.taxonomy.version} "
        f"({len(catalog.taxonomy)} labels), "
        f"{len(catalog.packs)} detector packs, {len(tenant_files)} tenant overlay(s), "
        f"environment {settings.environment!r}"
    )


def show_config(
    tenant: str = typer.Option(None, "--tenant", "-t", help="Apply this tenant's overlay."),
    environment: str = typer.Option(None, "--environment", "-e", help="Apply this environment."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the effective configuration (secrets masked)."""
    overrides = {"environment": environment} if environment else {}
    settings = settings_or_exit(config, **overrides)
    root = settings.overlay_root(config)
    try:
        settings = apply_environment(settings, root)
        data = _masked(settings)
        if tenant:
            view = TenantConfigs(settings.tenant_view(), root).for_tenant(tenant)
            data.update(_masked_model(view.model_dump()))
            data["tenant"] = tenant
    except USER_ERRORS as exc:
        fail(str(exc))
    if as_json:
        print_json(data)
    else:
        typer.echo(dump_yaml(data), nl=False)


def init_config(
    output: Path = typer.Option(Path("llama-mapper.yaml"), "--output", "-o"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter config with every setting at its default."""
    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite")
    # model_construct: the declared defaults, not LLAMA_MAPPER_* values from this shell.
    defaults = _masked(Settings.model_construct())
    header = (
        "# llama-mapper configuration. Precedence: defaults < this file < LLAMA_MAPPER_* env vars\n"
        "# (nested with __, e.g. LLAMA_MAPPER_SERVING__MAX_PAYLOAD_KB=128)\n"
        "# < environments/<environment>.yaml < tenants/<tenant_id>.yaml (next to this file or in\n"
        "# config_dir; tenants may set only `mapping` and `guard`).\n"
    )
    defaults["privacy"]["hmac_key"] = None
    output.write_text(header + dump_yaml(defaults), encoding="utf-8")
    typer.echo(f"wrote {output}")


def _masked(settings: Settings) -> dict[str, Any]:
    masked: dict[str, Any] = _masked_model(settings.model_dump(mode="python"))
    return masked


def _masked_model(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _masked_model(v) for k, v in data.items()}
    if isinstance(data, SecretStr):
        return MASK
    if isinstance(data, Path):
        return str(data)
    return data
