"""``orch policy validate|test|list|show|submit|approve|reject|rollback``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from detector_orchestration.cli.common import (
    JsonOption,
    OrchConfigOption,
    TenantOption,
    run_with_runtime,
    table,
)
from detector_orchestration.policy.engine import PolicyEngine
from detector_orchestration.policy.examples import run_examples
from detector_orchestration.policy.model import PolicyError, load_bundle_file
from detector_orchestration.policy.rego import RegoError, run_tests
from detector_orchestration.runtime import OrchRuntime
from llama_mapper.cli.common import fail, print_json

app = typer.Typer(help="Tenant policy bundles.", no_args_is_help=True)


@app.command("validate")
def validate_command(file: Path = typer.Argument(..., help="A YAML bundle.")) -> None:
    """Check one bundle (schema, and its Rego module compiles)."""
    try:
        _, bundle = load_bundle_file(file)
    except PolicyError as exc:
        fail(str(exc))
    typer.echo(
        f"{file}: valid bundle {bundle.name!r} ({len(bundle.detectors.required)} required, "
        f"{len(bundle.detectors.optional)} optional detectors, engine {bundle.decision.engine}, "
        f"{len(bundle.examples)} examples)"
    )


@app.command("test")
def run_tests_command(
    directory: Path = typer.Argument(..., help="Folder of *.yaml bundles and *.rego files."),
    as_json: bool = JsonOption,
) -> None:
    """Run the Rego test rules (test_*) and every bundle's examples; exit 1 on a failure."""
    if not directory.is_dir():
        fail(f"{directory} is not a folder")
    rows: list[dict[str, Any]] = []
    modules = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.rglob("*.rego"))}
    if modules:
        try:
            results = run_tests(modules)
        except RegoError as exc:
            fail(str(exc))
        rows += [
            {"kind": "rego", "file": r.file, "case": r.test, "passed": r.passed, "detail": r.error}
            for r in results
        ]
    engine = PolicyEngine()
    for path in sorted(directory.rglob("*.yaml")):
        try:
            _, bundle = load_bundle_file(path)
        except PolicyError as exc:
            rows.append(
                {"kind": "bundle", "file": path.name, "case": "<load>", "passed": False,
                 "detail": str(exc)}
            )  # fmt: skip
            continue
        for example in asyncio.run(run_examples(bundle, engine)):
            rows.append(
                {
                    "kind": "example",
                    "file": path.name,
                    "case": example.example,
                    "passed": example.passed,
                    "detail": None
                    if example.passed
                    else example.error or f"expected {example.expected}, got {example.got}",
                }
            )
    if not rows:
        fail(f"{directory}: no *.rego or *.yaml files")
    failed = [row for row in rows if not row["passed"]]
    if as_json:
        print_json({"results": rows, "passed": len(rows) - len(failed), "failed": len(failed)})
    else:
        for row in rows:
            mark = "PASS" if row["passed"] else "FAIL"
            detail = f"  ({row['detail']})" if row["detail"] else ""
            typer.echo(f"{mark}  {row['kind']:<7} {row['file']}: {row['case']}{detail}")
        typer.echo(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    tenant: str = TenantOption,
    bundle: str = typer.Option(None, help="Only this bundle."),
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Every stored version of the tenant's bundles."""

    async def work(runtime: OrchRuntime) -> list[dict[str, Any]]:
        return [v.summary() for v in await runtime.policy_store.list(tenant, bundle)]

    rows = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        print_json(rows)
    else:
        table(rows, ["bundle", "version", "status", "created_at", "decided_at", "digest"])


@app.command("show")
def show_command(
    bundle: str = typer.Argument(...),
    tenant: str = TenantOption,
    version: int = typer.Option(None, help="Default: the active version."),
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """A stored version's document (the active one by default)."""

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        store = runtime.policy_store
        found = (
            await store.get(tenant, bundle, version)
            if version is not None
            else await store.active(tenant, bundle)
        )
        if found is None:
            fail(f"bundle {bundle!r} has no active version for tenant {tenant!r}")
        return {**found.summary(), "document": found.document}

    shown = run_with_runtime(config, work, as_json=as_json)
    if as_json:
        print_json(shown)
    else:
        typer.echo(f"# {shown['bundle']} version {shown['version']} ({shown['status']})")
        typer.echo(shown["document"].rstrip())


@app.command("submit")
def submit_command(
    file: Path = typer.Argument(..., help="A YAML bundle."),
    tenant: str = TenantOption,
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Store the bundle as the next pending version (approve makes it active)."""
    try:
        document, _ = load_bundle_file(file)
    except PolicyError as exc:
        fail(str(exc), as_json=as_json)

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        return (await runtime.policy_store.submit(tenant, document)).summary()

    _report(run_with_runtime(config, work, as_json=as_json), as_json, "submitted")


@app.command("approve")
def approve_command(
    bundle: str = typer.Argument(...),
    version: int = typer.Argument(...),
    tenant: str = TenantOption,
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Make a pending version active (the active one becomes superseded)."""

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        return (await runtime.policy_store.approve(tenant, bundle, version)).summary()

    _report(run_with_runtime(config, work, as_json=as_json), as_json, "approved")


@app.command("reject")
def reject_command(
    bundle: str = typer.Argument(...),
    version: int = typer.Argument(...),
    tenant: str = TenantOption,
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Reject a pending version."""

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        return (await runtime.policy_store.reject(tenant, bundle, version)).summary()

    _report(run_with_runtime(config, work, as_json=as_json), as_json, "rejected")


@app.command("rollback")
def rollback_command(
    bundle: str = typer.Argument(...),
    tenant: str = TenantOption,
    config: Path = OrchConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Re-activate the previous approved version."""

    async def work(runtime: OrchRuntime) -> dict[str, Any]:
        return (await runtime.policy_store.rollback(tenant, bundle)).summary()

    _report(run_with_runtime(config, work, as_json=as_json), as_json, "rolled back to")


def _report(summary: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(summary)
    else:
        typer.echo(
            f"{verb} {summary['bundle']} version {summary['version']} "
            f"for tenant {summary['tenant_id']} (now {summary['status']})"
        )
