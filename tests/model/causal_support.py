"""The tiny generative mapper the causal tests share: its data, settings and training run.

``conftest.py`` trains it once per session (``trained``); the determinism and resume tests
call :func:`train` again for runs of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_mapper.catalog import Catalog
from llama_mapper.model.data import Splits, build_splits
from llama_mapper.model.tiny import TinyConfig


def small_splits(catalog: Catalog) -> Splits:
    full = build_splits(catalog.taxonomy, catalog.packs)
    # A spread of labels and detectors; evaluation: a few held-out detectors' labels.
    return Splits(full.train[::120], full.calibration[::15], full.evaluation[::60])


def config(epochs: int = 2) -> Any:
    from llama_mapper.model.causal_train import CausalTrainConfig

    # A smaller vocabulary than the default: labels then span several tokens, which the
    # scoring must handle.
    tiny = TinyConfig(vocab_size=640, hidden_size=64, intermediate_size=128, layers=2)
    return CausalTrainConfig(
        epochs=epochs,
        batch_size=8,
        seed=3,
        tiny=tiny,
        learning_rate=1e-2,
        pretrain_learning_rate=1e-2,
    )


@dataclass
class Trained:
    folder: Path
    splits: Splits
    losses: list[tuple[int, float]]
    card: dict[str, Any]


class Interrupted(Exception):
    """Stands in for a killed run."""


def train(
    catalog: Catalog, out: Path, *, resume: bool = False, stop_at: int | None = None
) -> Trained:
    from llama_mapper.model.causal_train import train_causal

    splits = small_splits(catalog)
    losses: list[tuple[int, float]] = []

    def on_step(step: int, total: int, loss: float) -> None:
        if step == stop_at:
            raise Interrupted
        losses.append((step, loss))

    result = train_causal(
        splits,
        catalog.taxonomy,
        out,
        None,
        config(),
        on_step=on_step,
        resume=resume,
        evaluate=False,
    )
    return Trained(out, splits, losses, result.card)
