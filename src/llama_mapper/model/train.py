"""Train, calibrate and save an embedding mapper; deterministic on CPU for a given seed.

Determinism: the seed fixes torch's generator, each epoch reseeds both the shuffle and the
dropout from ``(seed, epoch)``, deterministic algorithms are enforced and the number of
intra-op threads is fixed. A run resumed from its last epoch checkpoint therefore ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch

from llama_mapper.model.artifact import (
    ADAPTER_CONFIG,
    CALIBRATION,
    CARD,
    CARD_MARKDOWN,
    HEAD,
    INPUT_LABEL,
    INPUT_WITH_DETECTOR,
    LABELS,
    METRICS,
    write_json,
)
from llama_mapper.model.context import contexts, kind_free, kind_words
from llama_mapper.model.data import (
    DATA_VERSION,
    TAXONOMY_SOURCE,
    Example,
    Splits,
    sha256,
    to_jsonl,
)
from llama_mapper.model.embedding import (
    BASE_MODEL_NAME,
    LOGIT_SCALE,
    MAX_TOKENS,
    EmbeddingMapper,
    LoraSettings,
    configure_threads,
    embed_texts,
    load_base,
    logits_for,
    tokenize,
    with_lora,
)
from llama_mapper.model.evaluate import report, score_pairs
from llama_mapper.model.metrics import DEFAULT_COVERAGE_THRESHOLDS
from llama_mapper.taxonomy.model import UNKNOWN, Taxonomy

CHECKPOINT = "checkpoint.pt"
#: ``(step, total steps, loss)`` after each optimizer step.
OnStep = Callable[[int, int, float], None]
_TEMPERATURES = tuple(
    math.exp(math.log(0.05) + i * (math.log(20) - math.log(0.05)) / 399) for i in range(400)
)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    head_learning_rate: float = 5e-3
    warmup_share: float = 0.1
    threads: int = 1
    lora: LoraSettings = field(default_factory=LoraSettings)
    #: Train on the first ``limit`` examples only (quick determinism checks).
    limit: int | None = None
    version: str = "embedding-dev"
    #: Torch device; results are bit-reproducible on CPU only.
    device: str = "cpu"
    #: Show the model the detector's name (see :mod:`llama_mapper.model.context`). Off in
    #: the shipped model: measured, it did not help (docs/learned-tier.md).
    detector_context: bool = False
    #: With ``detector_context``: also kind-free labels with a kind-revealing made-up name.
    kind_free_share: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "head_learning_rate": self.head_learning_rate,
            "warmup_share": self.warmup_share,
            "threads": self.threads,
            "limit": self.limit,
            "max_tokens": MAX_TOKENS,
            "logit_scale": LOGIT_SCALE,
            # Named only when on: the shipped card's settings stay what they were.
            **(
                {"detector_context": True, "kind_free_share": self.kind_free_share}
                if self.detector_context
                else {}
            ),
        }


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    card: dict[str, Any]
    seconds: float
    resumed_from_epoch: int


def canonical_labels(taxonomy: Taxonomy) -> tuple[str, ...]:
    """What the head can answer: every canonical label but ``OTHER.Unknown``."""
    return tuple(sorted(name for name in taxonomy.labels if name != UNKNOWN))


def _prototypes(
    model: EmbeddingMapper, tokenizer: Any, labels: Sequence[str], train: Sequence[Example]
) -> torch.Tensor:
    """Mean embedding of each label's taxonomy texts (aliases, description, name words)."""
    texts: dict[str, list[str]] = {label: [] for label in labels}
    for example in train:
        if example.detector == TAXONOMY_SOURCE and not example.source.startswith("augmented"):
            texts.setdefault(example.label, []).append(example.text)
    rows = []
    for label in labels:
        own = texts.get(label) or [label.replace(".", " ")]
        rows.append(embed_texts(model, tokenizer, own).mean(dim=0))
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def _target_mask(examples: Sequence[Example], index: dict[str, int]) -> torch.Tensor:
    mask = torch.zeros(len(examples), len(index), dtype=torch.bool)
    for row, example in enumerate(examples):
        for target in example.targets:
            if target in index:
                mask[row, index[target]] = True
    return mask


def deterministic(device: str) -> None:
    """Deterministic kernels: enforced on CPU; on a GPU, warned about where none exist."""
    torch.use_deterministic_algorithms(True, warn_only=torch.device(device).type != "cpu")


def multi_target_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log of the probability given to any acceptable target.

    A row with no acceptable target (a nonsense label, :func:`data.nonsense_examples`)
    is pulled towards the uniform distribution instead: its loss is the cross-entropy
    with it, so the model learns to be unsure of words it does not know rather than to
    file them under whichever label has the most unfamiliar vocabulary."""
    hit = logits.masked_fill(~mask, float("-inf")).logsumexp(dim=-1)
    hit = torch.where(mask.any(dim=-1), hit, logits.mean(dim=-1))
    return (logits.logsumexp(dim=-1) - hit).mean()


def fit_temperature(logits: torch.Tensor, mask: torch.Tensor) -> float:
    """The temperature minimising held-out NLL (a deterministic grid search)."""
    best, best_loss = 1.0, float("inf")
    for temperature in _TEMPERATURES:
        loss = float(multi_target_loss(logits / temperature, mask))
        if loss < best_loss:
            best, best_loss = temperature, loss
    return round(best, 6)


def _schedule(total: int, warmup_share: float) -> Callable[[int], float]:
    warmup = max(1, int(total * warmup_share))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _trainable(model: EmbeddingMapper) -> list[torch.nn.Parameter]:
    return [p for n, p in model.named_parameters() if p.requires_grad and n != "prototypes"]


def train_embedding(
    splits: Splits,
    taxonomy: Taxonomy,
    output_dir: Path,
    base_dir: Path,
    config: TrainConfig,
    *,
    on_step: OnStep | None = None,
    resume: bool = True,
    evaluate: bool = True,
) -> TrainResult:
    """Train on ``splits.train``, calibrate on ``splits.calibration``, save to ``output_dir``."""
    started = begin_run(output_dir, threads=config.threads, device=config.device, seed=config.seed)
    labels = canonical_labels(taxonomy)
    index = {label: i for i, label in enumerate(labels)}
    train = list(splits.train[: config.limit] if config.limit else splits.train)
    tokenizer, encoder = load_base(base_dir)
    base = EmbeddingMapper(encoder, torch.zeros(len(labels), 1))
    prototypes = _prototypes(base, tokenizer, labels, splits.train)
    # get_peft_model wraps ``encoder`` in place; ``base`` is not used after this point.
    model = EmbeddingMapper(with_lora(encoder, config.lora), prototypes).to(config.device)
    optimizer = torch.optim.AdamW(
        [
            {"params": _trainable(model), "lr": config.learning_rate},
            {"params": [model.prototypes], "lr": config.head_learning_rate},
        ],
        weight_decay=0.0,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, config.warmup_share))
    start_epoch = 0
    checkpoint = output_dir / CHECKPOINT
    if resume and checkpoint.is_file():
        start_epoch = _restore(checkpoint, model, optimizer, scheduler, config)
    mask = _target_mask(train, index)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        torch.manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(train), generator=generator).tolist()
        shown = _epoch_inputs(train, taxonomy, config, epoch)
        for step in range(steps_per_epoch):
            rows = order[step * config.batch_size : (step + 1) * config.batch_size]
            texts = [shown[i][0] if shown else train[i].text for i in rows]
            context = [shown[i][1] for i in rows] if shown else None
            batch = tokenize(tokenizer, texts, context)
            loss = multi_target_loss(model(**batch), mask[rows].to(config.device))
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            scheduler.step()
            if on_step is not None:
                on_step(epoch * steps_per_epoch + step + 1, total, float(loss.detach()))
        _save_checkpoint(checkpoint, model, optimizer, scheduler, config, epoch + 1)
    temperature = _calibrate(model, tokenizer, splits.calibration, index, config)
    card = _save(model, output_dir, labels, temperature, splits, taxonomy, config)
    metrics = partial(evaluate_folder, output_dir, splits.evaluation, base_dir, config.threads)
    seconds = finish_run(output_dir, card, started, metrics if evaluate else None, card_markdown)
    return TrainResult(output_dir, card, seconds, start_epoch)


def begin_run(output_dir: Path, *, threads: int, device: str, seed: int) -> float:
    """What every training run (either kind) does first, so that it is reproducible:
    fixed threads (float sums depend on the split), deterministic kernels, the seed.
    Returns the start time for the card's ``training_seconds``."""
    started = time.perf_counter()
    configure_threads(threads)
    deterministic(device)
    torch.manual_seed(seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    return started


def finish_run(
    output_dir: Path,
    card: dict[str, Any],
    started: float,
    metrics: Callable[[], dict[str, Any]] | None,
    markdown: Callable[[dict[str, Any]], str],
) -> float:
    """Write the card, then (when asked) evaluate and write it again with the metrics, then
    the card for people; drop the checkpoint. The card is written before the evaluation so
    that a run whose evaluation fails still leaves a usable, described model."""
    seconds = time.perf_counter() - started
    card["training_seconds"] = round(seconds, 1)
    write_json(output_dir / CARD, card)
    if metrics is not None:
        card["metrics"] = metrics()
        write_json(output_dir / METRICS, card["metrics"])
        write_json(output_dir / CARD, card)
    (output_dir / CARD_MARKDOWN).write_text(markdown(card), encoding="utf-8")
    # Finished: the checkpoint (optimizer state, 3x the adapter) is no longer needed.
    (output_dir / CHECKPOINT).unlink(missing_ok=True)
    return seconds


def _epoch_inputs(
    train: Sequence[Example], taxonomy: Taxonomy, config: TrainConfig, epoch: int
) -> list[tuple[str, str | None]] | None:
    """Each example's text and detector name this epoch (``None``: the label text alone)."""
    if not config.detector_context:
        return None
    bare = kind_free(train, kind_words(taxonomy)) if config.kind_free_share else None
    return contexts(train, config.seed, epoch, bare)


def _calibrate(
    model: EmbeddingMapper,
    tokenizer: Any,
    calibration: Sequence[Example],
    index: dict[str, int],
    config: TrainConfig,
) -> float:
    """The temperature on the calibration detectors, each label with its detector's name."""
    named = [e.detector for e in calibration] if config.detector_context else None
    logits = logits_for(model, tokenizer, [e.text for e in calibration], detectors=named)
    return fit_temperature(logits.cpu(), _target_mask(calibration, index))


def card_markdown(card: dict[str, Any]) -> str:
    """The model card for people (``MODEL_CARD.md``); ``model_card.json`` is the source."""
    lora = card["lora"]
    lines = [
        f"# {card['version']}",
        "",
        "Embedding mapper of the llama-mapper learned tier: maps vendor labels the rules do "
        "not know to canonical labels, with a calibrated confidence.",
        "",
        f"- Base model: {card['base_model']}",
        f"- LoRA: rank {lora['rank']}, alpha {lora['alpha']}, dropout {lora['dropout']}, "
        f"on {', '.join(lora['target_modules'])}; cosine head over {card['labels']} labels",
        f"- Calibration: {card['calibration']['method']} "
        f"(T = {card['calibration']['temperature']}) on held-out detectors "
        f"{', '.join(card['heldout_detectors']['calibration'])}",
        f"- Taxonomy {card['taxonomy_version']}, data v{card['data_version']}, "
        f"data hash {card['data_hash']}",
        f"- Seed {card['seed']}, trained {card['date']} with torch {card['torch']} in "
        f"{card['training_seconds']} s",
        "",
    ]
    return "\n".join(lines + metrics_table(card.get("metrics")))


def metrics_table(metrics: dict[str, Any] | None) -> list[str]:
    """The leave-detectors-out table of a model card (empty without metrics)."""
    lines: list[str] = []
    if metrics:
        lines += [
            "## Leave-detectors-out evaluation",
            "",
            "| detectors | n | top-1 | macro-F1 | ECE |",
            "|---|---|---|---|---|",
        ]
        rows = [("all held out", metrics["overall"]), *metrics["per_detector"].items()]
        for name, row in rows:
            lines.append(
                f"| {name} | {row['examples']} | {row['top1_accuracy']:.3f} | "
                f"{row['macro_f1']:.3f} | {row['ece']:.3f} |"
            )
        lines.append("")
    return lines


def evaluate_folder(
    folder: Path,
    examples: Sequence[Example],
    base_dir: Path | None = None,
    threads: int | None = None,
    thresholds: Sequence[float] = DEFAULT_COVERAGE_THRESHOLDS,
) -> dict[str, Any]:
    """Metrics of the saved model, loaded as serving loads it.

    On torch, whatever is installed: onnxruntime gives the same logits to float rounding,
    but the card must come out byte for byte the same on every machine.
    """
    from llama_mapper.model.loaded import LoadedModel

    loaded = LoadedModel.load(folder, base_dir, threads, backend="torch")
    return report(score_pairs(loaded.rank_pairs, examples), thresholds)


def _save(
    model: EmbeddingMapper,
    output_dir: Path,
    labels: Sequence[str],
    temperature: float,
    splits: Splits,
    taxonomy: Taxonomy,
    config: TrainConfig,
) -> dict[str, Any]:
    from safetensors.torch import save_file

    model.encoder.save_pretrained(str(output_dir))  # type: ignore[operator]
    # PEFT also writes a template README; MODEL_CARD.md is the real card.
    (output_dir / "README.md").unlink(missing_ok=True)
    adapter_config = output_dir / ADAPTER_CONFIG
    # PEFT records the base model's local path; a committed artifact must not.
    import orjson

    data = orjson.loads(adapter_config.read_bytes())
    data["base_model_name_or_path"] = BASE_MODEL_NAME
    write_json(adapter_config, data)
    head = model.prototypes.detach().cpu().contiguous().clone()
    save_file({"prototypes": head}, str(output_dir / HEAD))
    write_json(output_dir / LABELS, list(labels))
    write_json(output_dir / CALIBRATION, {"method": "temperature", "temperature": temperature})
    return {
        "version": config.version,
        "kind": "embedding",
        "input": INPUT_WITH_DETECTOR if config.detector_context else INPUT_LABEL,
        "base_model": BASE_MODEL_NAME,
        "lora": config.lora.to_dict(),
        "training": config.to_dict(),
        "calibration": {"method": "temperature", "temperature": temperature},
        "labels": len(labels),
        "seed": config.seed,
        **data_facts(splits, taxonomy),
    }


def data_facts(splits: Splits, taxonomy: Taxonomy) -> dict[str, Any]:
    """What every model card says about its data, held-out detectors and toolchain."""
    return {
        "taxonomy_version": taxonomy.version,
        "data_version": DATA_VERSION,
        "data_hash": splits.data_hash(),
        "eval_set_sha256": sha256(to_jsonl(splits.evaluation)),
        "examples": {
            "train": len(splits.train),
            "calibration": len(splits.calibration),
            "evaluation": len(splits.evaluation),
        },
        "heldout_detectors": {
            "calibration": sorted({e.detector for e in splits.calibration}),
            "evaluation": sorted({e.detector for e in splits.evaluation}),
        },
        "date": datetime.now(UTC).date().isoformat(),
        "torch": torch.__version__,
    }


class _Settings(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def _save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: _Settings,
    epochs_done: int,
) -> None:
    state = {
        "epochs_done": epochs_done,
        "config": config.to_dict(),
        "trainable": {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        },
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
    }
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    partial.replace(path)


def _restore(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: _Settings,
) -> int:
    state = torch.load(path, weights_only=True)
    if state["config"] != config.to_dict():
        raise ValueError(
            f"{path} was written with other training settings; remove it or use the same ones"
        )
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["epochs_done"])
