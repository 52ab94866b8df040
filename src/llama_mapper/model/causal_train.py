"""LoRA SFT of a causal LM as the generative mapper; seeded, resumable, deterministic on CPU.

Each training example is the chat-templated :func:`~llama_mapper.model.prompt.training_messages`
and the loss covers only the answer tokens (the label and the end-of-turn token). The
instructions and label list open every example identically, so each batch computes their
KV cache once, with gradients, and runs only the per-example remainder on top of it: the
same tokens as the full sequences, at a fraction of the cost.

Determinism, resuming and calibration work as for the embedding mapper
(:mod:`llama_mapper.model.train`, whose helpers this module uses): per-epoch seeds,
deterministic algorithms, fixed threads, a checkpoint after every epoch, and a
temperature fitted on the calibration detectors, here over the labels' sequence
log-probabilities.

``base_dir=None`` trains on a tiny Llama created here (:mod:`llama_mapper.model.tiny`),
first briefly as a whole on the request/answer turns alone (a random network has nothing
for LoRA to adapt), then with LoRA on the full prompt like any base.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import torch

from llama_mapper.model import prompt
from llama_mapper.model.artifact import (
    ADAPTER_CONFIG,
    CALIBRATION,
    CAUSAL,
    LABELS,
    read_json,
    write_json,
)
from llama_mapper.model.causal import (
    CausalModel,
    PromptCodec,
    common_prefix,
    forward_suffixes,
    load_causal_base,
    prefix_cache,
    sequence_logprobs,
)
from llama_mapper.model.data import Example, Splits
from llama_mapper.model.embedding import LoraSettings, with_lora
from llama_mapper.model.evaluate import report, score_pairs
from llama_mapper.model.metrics import DEFAULT_COVERAGE_THRESHOLDS
from llama_mapper.model.tiny import TINY_NAME, TinyConfig, corpus, create_tiny_base, save_base
from llama_mapper.model.train import (
    CHECKPOINT,
    OnStep,
    TrainResult,
    _restore,
    _save_checkpoint,
    _schedule,
    _target_mask,
    begin_run,
    canonical_labels,
    data_facts,
    finish_run,
    fit_temperature,
    metrics_table,
)
from llama_mapper.taxonomy.model import Taxonomy

#: The projections of a Llama block (attention and MLP), as PEFT names them.
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TINY_BASE = "base"
PRETRAINING = "pretraining.json"
IGNORE = -100


@dataclass(frozen=True)
class CausalTrainConfig:
    seed: int = 0
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_share: float = 0.1
    threads: int = 1
    lora: LoraSettings = field(
        default_factory=lambda: LoraSettings(rank=8, alpha=16, dropout=0.05, targets=LLAMA_TARGETS)
    )
    #: Train on the first ``limit`` examples only (tests, quick runs).
    limit: int | None = None
    version: str = "causal-dev"
    device: str = "cpu"
    #: The tiny base (used when no base model folder is given) and its whole-model training.
    tiny: TinyConfig = field(default_factory=TinyConfig)
    pretrain_epochs: int = 1
    pretrain_learning_rate: float = 3e-3

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "warmup_share": self.warmup_share,
            "threads": self.threads,
            "limit": self.limit,
            "lora": self.lora.to_dict(),
        }

    def tiny_dict(self) -> dict[str, Any]:
        return {
            **self.tiny.to_dict(),
            "seed": self.seed,
            "pretrain_epochs": self.pretrain_epochs,
            "pretrain_learning_rate": self.pretrain_learning_rate,
            "batch_size": self.batch_size,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Encoded:
    """The training examples as ids: one shared prefix, then each example's remainder."""

    prefix: list[int]
    suffixes: list[list[int]]
    #: Index in each suffix where the answer starts.
    answer_starts: list[int]


def encode(codec: PromptCodec, examples: Sequence[Example]) -> Encoded:
    rows = [codec.training_ids(e.detector, e.text, e.label) for e in examples]
    prefix = common_prefix([codec.prefix, *(ids[:start] for ids, start in rows)])
    cut = len(prefix)
    return Encoded(prefix, [ids[cut:] for ids, _ in rows], [start - cut for _, start in rows])


def sft_loss(
    model: Any, encoded: Encoded, rows: Sequence[int], device: torch.device
) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens of ``rows`` (the prompt is context only)."""
    cache = prefix_cache(model, encoded.prefix, device)
    suffixes = [encoded.suffixes[i] for i in rows]
    logits = forward_suffixes(model, cache, len(encoded.prefix), suffixes, device)
    targets = torch.full(logits.shape[:2], IGNORE, dtype=torch.long, device=device)
    for row, i in enumerate(rows):
        start, suffix = encoded.answer_starts[i], encoded.suffixes[i]
        targets[row, start : len(suffix)] = torch.tensor(suffix[start:], dtype=torch.long)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        targets[:, 1:].reshape(-1),
        ignore_index=IGNORE,
    )


@dataclass
class _Phase:
    """One stretch of optimizer steps over the examples (whole-model or LoRA)."""

    model: Any
    encoded: Encoded
    config: CausalTrainConfig
    epochs: int
    learning_rate: float
    checkpoint: Path | None
    on_step: OnStep | None
    #: Steps reported before this phase and in all phases (for one progress bar).
    offset: int
    total: int

    def run(self, resume: bool) -> tuple[int, float]:
        """Train; returns the epoch it resumed after and the seconds spent stepping."""
        device = torch.device(self.config.device)
        size = self.config.batch_size
        count = len(self.encoded.suffixes)
        per_epoch = math.ceil(count / size)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=self.learning_rate, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _schedule(per_epoch * self.epochs, self.config.warmup_share)
        )
        start = 0
        if resume and self.checkpoint is not None and self.checkpoint.is_file():
            start = _restore(self.checkpoint, self.model, optimizer, scheduler, self.config)
        started = time.perf_counter()
        for epoch in range(start, self.epochs):
            self.model.train()
            generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
            torch.manual_seed(self.config.seed * 1000 + epoch)
            order = torch.randperm(count, generator=generator).tolist()
            for step in range(per_epoch):
                rows = order[step * size : (step + 1) * size]
                loss = sft_loss(self.model, self.encoded, rows, device)
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                scheduler.step()
                if self.on_step is not None:
                    done = self.offset + epoch * per_epoch + step + 1
                    self.on_step(done, self.total, float(loss.detach()))
            if self.checkpoint is not None:
                _save_checkpoint(
                    self.checkpoint, self.model, optimizer, scheduler, self.config, epoch + 1
                )
        return start, time.perf_counter() - started

    @property
    def steps(self) -> int:
        return math.ceil(len(self.encoded.suffixes) / self.config.batch_size) * self.epochs


def _examples(splits: Splits, config: CausalTrainConfig) -> list[Example]:
    """The training examples SFT can learn from: made-up labels without a target
    (``data.nonsense_examples``) have no answer to write, so they are left to the
    embedding mapper's uniform-target loss."""
    answered = [e for e in splits.train if e.targets]
    return answered[: config.limit] if config.limit else answered


def ensure_tiny_base(
    folder: Path,
    labels: Sequence[str],
    splits: Splits,
    config: CausalTrainConfig,
    on_step: OnStep | None,
    total: int,
) -> float:
    """Create and briefly train the tiny base in ``folder`` (kept when already made alike)."""
    marker = folder / PRETRAINING
    wanted = {"tiny": config.tiny_dict(), "data_hash": splits.data_hash()}
    if marker.is_file() and read_json(marker) == wanted:
        return 0.0
    train = _examples(splits, config)
    lines = corpus(labels, [e.text for e in splits.train], [e.detector for e in splits.train])
    tokenizer, model = create_tiny_base(folder, lines, config.tiny, config.seed)
    model.to(torch.device(config.device))
    # Without the ~300 tokens of instructions and labels: a random network's attention is
    # spread evenly, and over that long prefix it barely sees the vendor label. The user
    # turn ends every prompt, so what the base learns here about where the label sits
    # relative to the answer holds unchanged once LoRA tunes it on the full prompt.
    phase = _Phase(
        model,
        encode(PromptCodec(tokenizer, tuple(labels), instructions=False), train),
        config,
        config.pretrain_epochs,
        config.pretrain_learning_rate,
        None,
        on_step,
        0,
        total,
    )
    _, seconds = phase.run(resume=False)
    model.to(torch.device("cpu"))
    save_base(folder, tokenizer, model)
    write_json(marker, wanted)
    return seconds


def train_causal(
    splits: Splits,
    taxonomy: Taxonomy,
    output_dir: Path,
    base_dir: Path | None,
    config: CausalTrainConfig,
    *,
    on_step: OnStep | None = None,
    resume: bool = True,
    evaluate: bool = True,
) -> TrainResult:
    """LoRA SFT on ``splits.train``, calibrate on ``splits.calibration``, save, evaluate."""
    started = begin_run(output_dir, threads=config.threads, device=config.device, seed=config.seed)
    labels = canonical_labels(taxonomy)
    train = _examples(splits, config)
    lora_steps = math.ceil(len(train) / config.batch_size) * config.epochs
    pretrain_seconds = 0.0
    offset = 0
    tiny = base_dir is None
    if base_dir is None:
        offset = math.ceil(len(train) / config.batch_size) * config.pretrain_epochs
        base_dir = output_dir / TINY_BASE
        pretrain_seconds = ensure_tiny_base(
            base_dir, labels, splits, config, on_step, offset + lora_steps
        )
    tokenizer, base = load_causal_base(base_dir)
    codec = PromptCodec(tokenizer, labels)
    device = torch.device(config.device)
    encoded = encode(codec, train)
    # get_peft_model wraps ``base`` in place; it is not used on its own after this point.
    model = with_lora(base.to(device), config.lora)
    phase = _Phase(
        model,
        encoded,
        config,
        config.epochs,
        config.learning_rate,
        output_dir / CHECKPOINT,
        on_step,
        offset,
        offset + lora_steps,
    )
    resumed, lora_seconds = phase.run(resume)
    model.eval()
    temperature = fit_temperature(
        *_calibration_scores(model, codec, splits.calibration, labels, device)
    )
    base_path = TINY_BASE if tiny else str(base_dir.resolve())
    card = _save(model, output_dir, labels, temperature, splits, taxonomy, config, codec)
    card["base_model"] = TINY_NAME if tiny else base_dir.name
    card["base_model_path"] = base_path
    _record_base(output_dir, base_path)
    stepped = len(train) * (config.epochs - resumed)
    card["timing"] = {
        "pretrain_seconds": round(pretrain_seconds, 1),
        "lora_seconds": round(lora_seconds, 1),
        "lora_samples_per_second": round(stepped / lora_seconds, 2) if lora_seconds else None,
        "device": config.device,
    }
    metrics = partial(evaluate_causal, output_dir, splits.evaluation, threads=config.threads)
    seconds = finish_run(output_dir, card, started, metrics if evaluate else None, card_markdown)
    return TrainResult(output_dir, card, seconds, resumed)


@torch.no_grad()
def _calibration_scores(
    model: Any,
    codec: PromptCodec,
    examples: Sequence[Example],
    labels: Sequence[str],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    shared = prefix_cache(model, codec.prefix, device)
    rows = [
        sequence_logprobs(model, codec, codec.prompt_ids(e.detector, e.text), device, shared)
        for e in examples
    ]
    index = {label: i for i, label in enumerate(labels)}
    return torch.stack(rows), _target_mask(examples, index)


def evaluate_causal(
    folder: Path,
    examples: Sequence[Example],
    base_dir: Path | None = None,
    threads: int | None = None,
    thresholds: Sequence[float] = DEFAULT_COVERAGE_THRESHOLDS,
) -> dict[str, Any]:
    """Metrics of the saved generative mapper, loaded exactly as serving loads it."""
    loaded = CausalModel.load(folder, base_dir, threads)
    return report(score_pairs(loaded.rank_pairs, examples), thresholds)


def _save(
    model: Any,
    output_dir: Path,
    labels: Sequence[str],
    temperature: float,
    splits: Splits,
    taxonomy: Taxonomy,
    config: CausalTrainConfig,
    codec: PromptCodec,
) -> dict[str, Any]:
    model.save_pretrained(str(output_dir))
    # PEFT also writes a template README; MODEL_CARD.md is the real card.
    (output_dir / "README.md").unlink(missing_ok=True)
    write_json(output_dir / LABELS, list(labels))
    write_json(output_dir / CALIBRATION, {"method": "temperature", "temperature": temperature})
    return {
        "version": config.version,
        "kind": CAUSAL,
        "prompt_version": prompt.PROMPT_VERSION,
        "prompt_tokens": {
            "shared_prefix": len(codec.prefix),
            "longest_answer": max(len(a) for a in codec.answers),
        },
        "lora": config.lora.to_dict(),
        "training": config.to_dict(),
        "tiny_base": config.tiny_dict(),
        "calibration": {
            "method": "temperature over label sequence log-probs",
            "temperature": temperature,
        },
        "labels": len(labels),
        "seed": config.seed,
        **data_facts(splits, taxonomy),
    }


def _record_base(output_dir: Path, base_path: str) -> None:
    """The adapter config names the base as the card does (``base`` for the tiny one)."""
    adapter_config = output_dir / ADAPTER_CONFIG
    data = orjson.loads(adapter_config.read_bytes())
    data["base_model_name_or_path"] = base_path
    write_json(adapter_config, data)


def card_markdown(card: dict[str, Any]) -> str:
    lora = card["lora"]
    timing = card.get("timing", {})
    lines = [
        f"# {card['version']}",
        "",
        "Generative mapper of the llama-mapper learned tier: a causal LM with LoRA that "
        "scores every valid label as the answer to the shared prompt "
        f"(prompt version {card['prompt_version']}); the confidence is a calibrated "
        "softmax over the labels' sequence log-probabilities.",
        "",
        f"- Base model: {card['base_model']} ({card['base_model_path']})",
        f"- LoRA: rank {lora['rank']}, alpha {lora['alpha']}, dropout {lora['dropout']}, "
        f"on {', '.join(lora['target_modules'])}; {card['labels']} labels in the prompt "
        f"({card['prompt_tokens']['shared_prefix']} shared prompt tokens)",
        f"- Calibration: T = {card['calibration']['temperature']} on held-out detectors "
        f"{', '.join(card['heldout_detectors']['calibration'])}",
        f"- Taxonomy {card['taxonomy_version']}, data v{card['data_version']}, "
        f"data hash {card['data_hash']}",
        f"- Seed {card['seed']}, trained {card['date']} with torch {card['torch']} in "
        f"{card['training_seconds']} s on {timing.get('device', 'cpu')} "
        f"({timing.get('lora_samples_per_second')} LoRA samples/s)",
        "",
    ]
    if card["base_model_path"] == TINY_BASE:
        lines += [
            "The tiny base was created and trained here on the training split: this model "
            "demonstrates the code path, not what a real base model achieves.",
            "",
        ]
    return "\n".join(lines + metrics_table(card.get("metrics")))
