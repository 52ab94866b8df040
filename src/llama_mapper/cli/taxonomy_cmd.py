"""``mapper taxonomy``: list labels and migrate packs between taxonomy versions."""

from __future__ import annotations

from pathlib import Path

import typer

from llama_mapper.catalog import PACKAGED_DATA
from llama_mapper.cli.common import USER_ERRORS, JsonOption, fail, print_json
from llama_mapper.packs.loader import load_pack, pack_to_dict
from llama_mapper.taxonomy.loader import load_taxonomy
from llama_mapper.taxonomy.migrate import (
    MigrationError,
    MigrationPlan,
    apply_to_pack,
    explicit_mapping,
    plan_migration,
)
from llama_mapper.taxonomy.model import Taxonomy
from llama_mapper.yamlio import dump_yaml, load_yaml_file

app = typer.Typer(
    help="Inspect the canonical taxonomy and migrate between versions.", no_args_is_help=True
)

TaxonomyRef = typer.Option(
    ..., help="A taxonomy YAML file, or a packaged version name such as 2025.09 or 2026.11."
)


def resolve_taxonomy(ref: str) -> Taxonomy:
    """A path, or a version name of a taxonomy shipped with the package."""
    path = Path(ref)
    if not path.exists():
        current = load_taxonomy(PACKAGED_DATA / "taxonomy.yaml")
        if ref == current.version:
            return current
        path = PACKAGED_DATA / "migrations" / f"taxonomy-{ref}.yaml"
        if not path.exists():
            fail(f"taxonomy {ref!r} is neither a file nor a packaged version")
    try:
        return load_taxonomy(path)
    except USER_ERRORS as exc:
        fail(str(exc))


@app.command()
def labels(
    data_dir: Path = typer.Option(None, "--data-dir", help="Use this folder's taxonomy.yaml."),
    as_json: bool = JsonOption,
) -> None:
    """Print every canonical label, one per line."""
    own = data_dir / "taxonomy.yaml" if data_dir else None
    path = own if own is not None and own.exists() else PACKAGED_DATA / "taxonomy.yaml"
    taxonomy = resolve_taxonomy(str(path))
    if as_json:
        print_json(
            {
                "version": taxonomy.version,
                "labels": [
                    {"name": lb.name, "description": lb.description, "aliases": list(lb.aliases)}
                    for lb in taxonomy.labels.values()
                ],
            }
        )
        return
    for name in taxonomy:
        typer.echo(name)


PlanOption = typer.Option(
    None,
    "--plan",
    exists=True,
    dir_okay=False,
    help="An edited plan (or a flat old: new mapping) whose renames override the inferred ones.",
)


def _plan(from_taxonomy: str, to_taxonomy: str, plan_file: Path | None = None) -> MigrationPlan:
    old, new = resolve_taxonomy(from_taxonomy), resolve_taxonomy(to_taxonomy)
    try:
        explicit = (
            explicit_mapping(load_yaml_file(plan_file), str(plan_file)) if plan_file else None
        )
        return plan_migration(old, new, explicit)
    except (*USER_ERRORS, MigrationError) as exc:
        fail(str(exc))


@app.command("migrate-plan")
def migrate_plan(
    from_taxonomy: str = TaxonomyRef,
    to_taxonomy: str = TaxonomyRef,
    output: Path = typer.Option(None, "--output", "-o", help="Write the plan as YAML."),
    plan_file: Path = PlanOption,
    as_json: bool = JsonOption,
) -> None:
    """Show how labels of one taxonomy version map onto another."""
    plan = _plan(from_taxonomy, to_taxonomy, plan_file)
    data = plan.to_dict()
    if output:
        output.write_text(dump_yaml(data), encoding="utf-8")
    if as_json:
        print_json(data)
    else:
        typer.echo(dump_yaml(data), nl=False)


@app.command("migrate-apply")
def migrate_apply(
    data_dir: Path = typer.Option(
        ..., "--data-dir", help="Folder whose detectors/*.yaml to rewrite."
    ),
    from_taxonomy: str = TaxonomyRef,
    to_taxonomy: str = TaxonomyRef,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show changes, write nothing."),
    plan_file: Path = PlanOption,
) -> None:
    """Rename labels in detector packs according to the migration plan."""
    folder = data_dir / "detectors"
    if not folder.is_dir():
        fail(f"{folder} not found")
    plan = _plan(from_taxonomy, to_taxonomy, plan_file)
    changed = 0
    for path in sorted(folder.glob("*.yaml")):
        try:
            pack = load_pack(path)
        except USER_ERRORS as exc:
            fail(str(exc))
        new_pack, lines = apply_to_pack(pack, plan)
        for line in lines:
            typer.echo(f"{path.name}: {line}")
        if new_pack != pack:
            changed += 1
            if not dry_run:
                path.write_text(dump_yaml(pack_to_dict(new_pack)), encoding="utf-8")
    if dry_run:
        typer.echo(f"dry run: would change {changed} pack(s); nothing written")
    else:
        typer.echo(f"changed {changed} pack(s)")
