"""``mapper model export-merged``: a generative mapper as one folder a server can load.

The logic is :func:`llama_mapper.model.export.export_merged`; this only parses, prints and
maps a refused input (not a causal folder, a non-empty target) to exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from llama_mapper.cli.common import JsonOption, fail, print_json
from llama_mapper.cli.model_cmd import _require_ml
from llama_mapper.model.artifact import ArtifactError

#: Exit code of a refused export (a user mistake), as the registry commands use.
REFUSED = 2


def register(app: typer.Typer) -> None:
    app.command("export-merged")(export_merged)


def export_merged(
    model: Path = typer.Option(
        ..., "--model", "-m", help="Causal model folder (mapper train --kind causal)."
    ),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", file_okay=False),
    base_model: Path = typer.Option(
        None, "--base-model", help="Base model folder (default: the one the card names)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
    as_json: bool = JsonOption,
) -> None:
    """Merge the LoRA adapter into its base: one HF folder for vLLM/TGI + card and labels."""
    _require_ml()
    from llama_mapper.model.export import export_merged as export

    try:
        result = export(model, output_dir, base_dir=base_model, overwrite=force)
    except (ArtifactError, OSError, ValueError) as exc:
        fail(str(exc), as_json=as_json, code=REFUSED)
    if as_json:
        print_json(
            {
                "output_dir": str(result.output_dir),
                "version": result.version,
                "parameters": result.parameters,
                "files": list(result.files),
            }
        )
        return
    typer.echo(
        f"exported {result.version} merged ({result.parameters} parameters) to "
        f"{result.output_dir}: {', '.join(result.files)}"
    )
