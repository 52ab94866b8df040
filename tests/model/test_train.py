"""Training is seeded and deterministic on CPU, resumable, and matches the shipped card."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llama_mapper.catalog import Catalog
from llama_mapper.cli.main import app
from llama_mapper.model.artifact import (
    ADAPTER_WEIGHTS,
    CALIBRATION,
    DEFAULT_MODEL_DIR,
    HEAD,
    read_card,
    read_json,
)
from llama_mapper.model.data import Splits, build_splits
from llama_mapper.model.evaluate import EVAL_SET_SHA256
from llama_mapper.model.lexicon import training_splits

from .conftest import requires_ml

pytestmark = requires_ml


def small_splits(catalog: Catalog) -> Splits:
    full = build_splits(catalog.taxonomy, catalog.packs)
    # Every 40th example: a spread of labels, small enough for a few seconds per epoch.
    return Splits(full.train[::40], full.calibration[::6], full.evaluation[:0])


def run(catalog: Catalog, out: Path, epochs: int, *, resume: bool = False) -> bytes:
    from llama_mapper.model.embedding import default_base_model_dir
    from llama_mapper.model.train import TrainConfig, train_embedding

    config = TrainConfig(epochs=epochs, batch_size=16, seed=7)
    train_embedding(
        small_splits(catalog),
        catalog.taxonomy,
        out,
        default_base_model_dir(),
        config,
        resume=resume,
        evaluate=False,
    )
    return (out / ADAPTER_WEIGHTS).read_bytes() + (out / HEAD).read_bytes()


def test_short_training_is_deterministic_and_resumable(catalog: Catalog, tmp_path: Path) -> None:
    first = run(catalog, tmp_path / "a", 2)
    assert first == run(catalog, tmp_path / "b", 2)
    temperature = read_json(tmp_path / "a" / CALIBRATION)["temperature"]
    assert temperature == read_json(tmp_path / "b" / CALIBRATION)["temperature"]
    # One epoch, then resume to two: the same weights as two epochs straight.
    run(catalog, tmp_path / "c", 1)
    assert run(catalog, tmp_path / "c", 2, resume=True) == first


def test_a_detector_context_model_reads_the_detector_name(catalog: Catalog, tmp_path: Path) -> None:
    from llama_mapper.model.embedding import default_base_model_dir
    from llama_mapper.model.loaded import LoadedModel
    from llama_mapper.model.tier import EmbeddingTier
    from llama_mapper.model.train import TrainConfig, train_embedding

    config = TrainConfig(epochs=1, batch_size=16, seed=7, detector_context=True)
    out = tmp_path / "context"
    splits = small_splits(catalog)
    train_embedding(splits, catalog.taxonomy, out, default_base_model_dir(), config, evaluate=False)
    card = read_card(out)
    assert card.uses_detector
    assert card.raw["training"]["detector_context"] is True
    loaded = LoadedModel.load(out, threads=1, backend="torch")
    label = "StripeDetector"
    named = loaded.rank_pairs([("acme-secret-scanner", label)])
    assert named == loaded.rank([label], detectors=["acme-secret-scanner"])
    assert named != loaded.rank([label])
    # The tier passes the emitting detector through (and memoizes per detector).
    tier = EmbeddingTier(out, threads=1)
    scanner, other = tier.predict("acme-secret-scanner", label), tier.predict("x-api", label)
    assert scanner is not None
    assert other is not None
    # One label alone or in a batch: the same answer up to float rounding.
    assert scanner.label == named[0][0][0]
    assert scanner.confidence == pytest.approx(named[0][0][1], abs=1e-5)
    assert scanner != other
    # The shipped model reads the label alone: the detector changes nothing.
    assert not read_card(DEFAULT_MODEL_DIR).uses_detector
    assert "detector_context" not in read_card(DEFAULT_MODEL_DIR).raw["training"]


def test_shipped_card_matches_the_data_and_evaluation_set(catalog: Catalog) -> None:
    card = read_card(DEFAULT_MODEL_DIR)
    assert card.data_hash == training_splits(catalog).data_hash()
    assert card.seed == 0
    assert card.kind == "embedding"
    assert card.raw["eval_set_sha256"] == EVAL_SET_SHA256
    assert card.raw["taxonomy_version"] == catalog.taxonomy.version
    overall = card.metrics["overall"]
    assert 0.0 <= overall["ece"] <= 1.0
    assert overall["examples"] > 0
    # The shipped adapter stays small enough to commit.
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size < 4_000_000


def test_unknown_kind_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--kind", "nope", "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown --kind" in result.output


def test_evaluate_with_a_missing_model_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "not found" in result.output


def test_a_row_with_no_target_is_pulled_towards_uniform() -> None:
    import torch

    from llama_mapper.model.train import multi_target_loss

    logits = torch.tensor([[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, False, False], [False, False, False]])
    loss = multi_target_loss(logits, mask)
    uniform_ce = -torch.log_softmax(logits[1], dim=-1).mean()
    target_ce = -torch.log_softmax(logits[0], dim=-1)[0]
    assert torch.isclose(loss, (uniform_ce + target_ce) / 2)
    loss.backward()  # type: ignore[no-untyped-call]
    assert logits.grad is not None
    assert logits.grad[1, 0] > 0 > logits.grad[1, 1]  # the confident logit comes down
