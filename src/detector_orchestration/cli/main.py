"""Entry point of the ``orch`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import ValidationError

from detector_orchestration.cli import policy_cmd, registry_cmd
from detector_orchestration.cli.common import (
    JsonOption,
    OrchConfigOption,
    orch_settings_or_exit,
    run_with_runtime,
)
from detector_orchestration.config import CONFIG_ENV
from detector_orchestration.runtime import OrchRuntime
from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.cli.common import fail, print_json
from llama_mapper.service import validation_message

app = typer.Typer(
    name="orch",
    help="Run AI-safety detectors over content under tenant policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(policy_cmd.app, name="policy")


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default: serving.host)."),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default: serving.port)."),
    workers: int = typer.Option(None, min=1, max=64, help="Worker processes."),
    config: Path = OrchConfigOption,
) -> None:
    """Run the orchestration API (OpenAPI at /docs); the mapper runs in-process unless
    ORCH_MAPPER__URL names a remote one."""
    import uvicorn

    from llama_mapper.cli.db_cmd import migrate_or_exit
    from llama_mapper.observability.logging import configure_logging

    settings = orch_settings_or_exit(config)
    mapper = _mapper_settings_or_exit(settings)
    configure_logging(mapper.observability)
    if mapper.database.auto_migrate:
        migrate_or_exit(mapper)
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    serving = settings.serving
    uvicorn.run(
        "detector_orchestration.api.app:create_app",
        factory=True,
        log_config=None,
        host=host or serving.host,
        port=port or serving.port,
        workers=workers or serving.workers,
        log_level="info",
        access_log=False,
    )


def _mapper_settings_or_exit(settings: Any) -> Any:
    from detector_orchestration.runtime import mapper_settings

    try:
        return mapper_settings(settings)
    except ValidationError as exc:
        fail(f"invalid mapper configuration: {validation_message(exc)}")
    except FileNotFoundError as exc:
        fail(str(exc))


@app.command("run")
def run_command(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id."),
    file: Path = typer.Option(None, "--file", "-f", help="Content file ('-' or unset: stdin)."),
    policy: str = typer.Option(None, "--policy", "-p", help="Bundle (default: the default)."),
    content_type: str = typer.Option("text/plain", "--content-type"),
    priority: str = typer.Option("normal", help="low, normal, high or critical."),
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """One orchestration from the terminal. The content is read from a file or stdin,
    never from the command line (argv is visible to every user of the machine)."""
    if file is None or str(file) == "-":
        raw = sys.stdin.buffer.read()
    else:
        if not file.is_file():
            fail(f"content file {file} not found", as_json=as_json)
        raw = file.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("the content is not UTF-8 text", as_json=as_json)
    try:
        request = OrchestrateRequest(
            content=content,
            tenant_id=tenant,
            policy_bundle=policy,
            content_type=content_type,
            priority=priority,
        )
    except ValidationError as exc:
        fail(f"invalid request: {validation_message(exc)}", as_json=as_json)

    async def work(runtime: OrchRuntime) -> tuple[int, dict[str, Any]]:
        outcome = await runtime.orchestrator.orchestrate(request)
        return outcome.status, outcome.body

    status, body = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_summary(body)
    for warning in body["warnings"]:
        typer.secho(f"warning: {warning['code']}: {warning['message']}", err=True)
    if status == 206:
        raise typer.Exit(2)


def _print_summary(body: dict[str, Any]) -> None:
    policy, coverage = body["policy"], body["coverage"]
    typer.echo(
        f"decision: {body['decision']}  (policy {policy['bundle']}@{policy['version']}, "
        f"coverage {coverage['achieved']:.2f})"
    )
    for finding in body["findings"]:
        span = finding["span"]
        where = f" [{span['start']}:{span['end']}]" if span else ""
        typer.echo(f"  {finding['label']:<32} {finding['score']:.2f}  {finding['detector']}{where}")
    for result in body["detector_results"]:
        error = f"  {result['error']}" if result["error"] else ""
        typer.echo(f"  detector {result['detector']}: {result['status']}{error}")
    if body["redacted_content"] is not None:
        typer.echo("redacted content:")
        typer.echo(body["redacted_content"])


def main() -> None:
    app()


if __name__ == "__main__":
    main()


__all__ = ["app", "print_json"]
