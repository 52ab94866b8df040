"""``mapper detectors``: lint, scaffold and repair detector packs."""

from __future__ import annotations

from pathlib import Path

import typer

from llama_mapper.adapters.registry import default_registry
from llama_mapper.catalog import PACKAGED_DATA
from llama_mapper.cli.common import (
    USER_ERRORS,
    ConfigOption,
    JsonOption,
    fail,
    print_json,
    settings_or_exit,
)
from llama_mapper.model.serving import serving_tier
from llama_mapper.packs.fix import (
    LexicalSuggester,
    Suggester,
    apply_proposals,
    learned_suggester,
    propose_fixes,
)
from llama_mapper.packs.lint import lint_pack
from llama_mapper.packs.loader import load_pack, pack_to_dict
from llama_mapper.packs.model import DETECTOR_NAME, DetectorPack
from llama_mapper.storage.unmapped_file import UnmappedFile
from llama_mapper.taxonomy.loader import load_taxonomy
from llama_mapper.taxonomy.model import Taxonomy
from llama_mapper.yamlio import dump_yaml

app = typer.Typer(help="Lint, scaffold and repair detector packs.", no_args_is_help=True)

DataDir = typer.Option(
    None,
    "--data-dir",
    help="Folder with detectors/*.yaml (and optionally taxonomy.yaml); default: the "
    "configured data_dir, else the packaged data.",
)


def _data_dir(explicit: Path | None, configured: Path | None) -> Path:
    return explicit or configured or PACKAGED_DATA


def _taxonomy(data_dir: Path) -> Taxonomy:
    own = data_dir / "taxonomy.yaml"
    return load_taxonomy(own if own.exists() else PACKAGED_DATA / "taxonomy.yaml")


def _pack_files(data_dir: Path) -> list[Path]:
    folder = data_dir / "detectors"
    if not folder.is_dir():
        fail(f"{folder} not found")
    return sorted(folder.glob("*.yaml"))


@app.command()
def lint(data_dir: Path = DataDir, config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Check every pack; exit 1 if any has errors."""
    data_dir = _data_dir(data_dir, settings_or_exit(config).data_dir)
    try:
        taxonomy = _taxonomy(data_dir)
    except USER_ERRORS as exc:
        fail(str(exc))
    adapters = frozenset(default_registry().names())
    report: list[dict[str, str]] = []
    for path in _pack_files(data_dir):
        try:
            pack = load_pack(path)
        except USER_ERRORS as exc:
            report.append({"file": path.name, "severity": "error", "problem": str(exc)})
            continue
        if path.stem != pack.detector:
            report.append(
                {
                    "file": path.name,
                    "severity": "warning",
                    "problem": f"file name differs from detector {pack.detector!r}",
                }
            )
        for issue in lint_pack(pack, taxonomy, adapters):
            report.append({"file": path.name, "severity": issue.severity, "problem": str(issue)})
    errors = sum(1 for row in report if row["severity"] == "error")
    if as_json:
        print_json({"issues": report, "errors": errors})
    else:
        for row in report:
            typer.echo(f"{row['file']}: {row['problem']}")
        typer.echo(
            f"{len(_pack_files(data_dir))} pack(s) checked, {errors} error(s), "
            f"{len(report) - errors} warning(s)"
        )
    if errors:
        raise typer.Exit(1)


@app.command()
def add(
    name: str = typer.Option(..., "--name", "-n", help="Detector name, e.g. my-pii-scanner."),
    output_dir: Path = typer.Option(
        ..., "--output-dir", help="Data folder (pack goes to detectors/)."
    ),
    vendor: str = typer.Option("custom", help="Who makes the detector."),
    adapter: str = typer.Option("generic", help="Native adapter name, or generic."),
) -> None:
    """Scaffold a new detector pack to fill in."""
    if not DETECTOR_NAME.match(name):
        fail("detector names are lowercase letters, digits, '.', '_' and '-' (max 64)")
    known = default_registry().names()
    if adapter != "generic" and adapter not in known:
        fail(f"unknown adapter {adapter!r}; known: generic, {', '.join(known)}")
    path = output_dir / "detectors" / f"{name}.yaml"
    if path.exists():
        fail(f"{path} exists")
    pack = DetectorPack(
        detector=name,
        version="0.1.0",
        vendor=vendor,
        adapter=adapter,
        description="TODO: what this detector finds and which version of its vocabulary this maps.",
        threshold=0.5,
        maps={"safe": ("OTHER.Safe",), "example_label": ("OTHER.Unknown",)},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Map every label the detector emits; run `mapper detectors lint` when done.\n"
        + dump_yaml(pack_to_dict(pack)),
        encoding="utf-8",
    )
    typer.echo(f"wrote {path}")


@app.command()
def fix(
    data_dir: Path = DataDir,
    apply: bool = typer.Option(False, "--apply", help="Write the confident proposals."),
    threshold: float = typer.Option(0.9, min=0.0, max=1.0, help="Least similarity to apply."),
    unmapped_file: Path = typer.Option(
        None,
        "--unmapped",
        exists=True,
        dir_okay=False,
        help="Unmapped-label counts (default: the state directory's).",
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Propose canonical labels for invalid pack targets and for unmapped vendor labels."""
    settings = settings_or_exit(config)
    if apply and data_dir is None and settings.data_dir is None:
        fail(
            "--apply needs --data-dir (or a configured data_dir): it will not rewrite the "
            "packaged data; copy it with your own packs into a data folder first"
        )
    data_dir = _data_dir(data_dir, settings.data_dir)
    try:
        taxonomy = _taxonomy(data_dir)
        paths = {path: load_pack(path) for path in _pack_files(data_dir)}
        store = UnmappedFile(unmapped_file or UnmappedFile.in_state_dir(settings.state_dir).path)
        counts = store.load()
    except (*USER_ERRORS, ValueError) as exc:
        fail(str(exc))
    detectors = {pack.detector for pack in paths.values()}
    unmapped = sorted(key for key in counts if key[0] in detectors)
    suggest: Suggester = LexicalSuggester(taxonomy)
    choice = serving_tier(settings)
    suggester = f"lexical, {choice.reason}"
    if choice.tier is not None:
        suggest, suggester = learned_suggester(choice.tier, suggest), choice.tier.version
    proposals = propose_fixes(paths.values(), taxonomy, unmapped, suggest)
    if choice.tier is not None and choice.tier.state == "failed":
        suggester = f"lexical, {choice.tier.status}"
    applied_total = 0
    if apply:
        for path, pack in paths.items():
            new_pack, applied = apply_proposals(pack, proposals, threshold)
            if applied:
                path.write_text(dump_yaml(pack_to_dict(new_pack)), encoding="utf-8")
                applied_total += len(applied)
    if as_json:
        print_json(
            {
                "proposals": [
                    {
                        "detector": p.detector,
                        "vendor_label": p.vendor_label,
                        "current": p.current,
                        "proposed": p.proposed,
                        "similarity": round(p.similarity, 3),
                        "reason": p.reason,
                        "applies": p.similarity >= threshold,
                    }
                    for p in proposals
                ],
                "applied": applied_total,
                "suggester": suggester,
            }
        )
        return
    for p in proposals:
        mark = "+" if p.similarity >= threshold else " "
        current = f" (now {p.current})" if p.current else ""
        typer.echo(
            f"{mark} {p.detector}: {p.vendor_label!r}{current} -> {p.proposed} "
            f"[{p.similarity:.2f}, {p.reason}]"
        )
    typer.echo(f"suggestions by {suggester}")
    if apply:
        typer.echo(f"applied {applied_total} proposal(s) at similarity >= {threshold}")
    else:
        typer.echo(f"{len(proposals)} proposal(s); nothing written (use --apply)")
