"""The generative mapper on a tiny Llama created and trained here (the code path, not accuracy).

One session-scoped training run serves most tests; the determinism and resume tests train
two more of the same size. Each run takes a few seconds on one CPU thread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llama_mapper.catalog import Catalog
from llama_mapper.cli.main import app
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.model import prompt
from llama_mapper.model.artifact import (
    ADAPTER_WEIGHTS,
    CALIBRATION,
    CARD,
    LABELS,
    ArtifactError,
    read_card,
    read_json,
    read_labels,
    read_temperature,
    write_json,
)
from llama_mapper.model.data import Splits, to_jsonl

from .causal_support import Interrupted, Trained, config, train
from .conftest import requires_ml

pytestmark = requires_ml

NEW_VENDOR = "acme-new-scanner"


def test_loss_goes_down(trained: Trained) -> None:
    first = trained.losses[0][1]
    last_epoch = [loss for _, loss in trained.losses[-4:]]
    assert sum(last_epoch) / len(last_epoch) < first * 0.85
    steps = [step for step, _ in trained.losses]
    assert steps == list(range(1, len(steps) + 1))  # one progress line per step


def test_folder_and_card(trained: Trained) -> None:
    card = read_card(trained.folder)
    assert card.kind == "causal"
    assert card.raw["prompt_version"] == prompt.PROMPT_VERSION
    assert card.raw["base_model_path"] == "base"
    assert (trained.folder / "base" / "config.json").is_file()
    assert card.raw["lora"]["target_modules"][0] == "q_proj"
    assert card.data_hash == trained.splits.data_hash()
    assert (trained.folder / ADAPTER_WEIGHTS).is_file()
    adapter = read_json(trained.folder / "adapter_config.json")
    assert adapter["base_model_name_or_path"] == "base"  # no local path of this machine
    assert not (trained.folder / "checkpoint.pt").exists()
    # What the HTTP backend needs, read without torch.
    assert len(read_labels(trained.folder)) == card.raw["labels"]
    assert read_temperature(trained.folder) > 0
    template = json.loads((trained.folder / "base" / "tokenizer_config.json").read_text())
    assert "<|start_header_id|>" in template["chat_template"]


def test_same_prompt_at_training_and_serving(loaded: Any, trained: Trained) -> None:
    from llama_mapper.model.causal_train import encode

    codec = loaded.codec
    example = trained.splits.train[0]
    served = codec.prompt_text(example.detector, example.text)
    trained_text = codec.training_text(example.detector, example.text, example.label)
    assert trained_text.startswith(served)
    assert trained_text[len(served) :].startswith(example.label)
    # The ids trained on are the tokenized training text, and begin with the served ids.
    encoded = encode(codec, [example])
    ids = encoded.prefix + encoded.suffixes[0]
    assert ids == codec.ids(trained_text)
    assert ids[: len(codec.prompt_ids(example.detector, example.text))] == codec.prompt_ids(
        example.detector, example.text
    )
    assert len(encoded.prefix) > 50  # instructions and labels: computed once per batch
    # The valid labels are listed in the prompt, in labels.json order.
    labels = read_labels(trained.folder)
    assert prompt.system_message(labels) in served


def test_answers_are_valid_labels_with_probabilities(loaded: Any, trained: Trained) -> None:
    labels = set(read_labels(trained.folder))
    pairs = [(e.detector, e.text) for e in trained.splits.evaluation] + [
        (NEW_VENDOR, "zxqv blorp"),
        (NEW_VENDOR, "Social Security No"),
    ]
    for ranked in loaded.rank_pairs(pairs, top=5):
        assert len(ranked) == 5
        assert {name for name, _ in ranked} <= labels
        confidences = [p for _, p in ranked]
        assert all(0.0 <= p <= 1.0 for p in confidences)
        assert sum(confidences) <= 1.0 + 1e-6
        assert confidences == sorted(confidences, reverse=True)


def test_confidence_is_a_softmax_of_exact_sequence_logprobs(loaded: Any) -> None:
    import torch

    codec = loaded.codec
    assert max(len(a) for a in codec.answers) > 2  # multi-token labels plus end of turn
    scores = loaded.logprobs(NEW_VENDOR, "E-Mail Addr")
    # The cached, batched scores equal a plain forward pass over prompt + answer.
    head = codec.prompt_ids(NEW_VENDOR, "E-Mail Addr")
    with torch.inference_mode():
        for index in (0, 7, len(codec.labels) - 1):
            answer = codec.answers[index]
            logits = loaded.model(input_ids=torch.tensor([head + answer])).logits[0]
            logprobs = logits.log_softmax(-1)
            expected = sum(
                float(logprobs[len(head) + i - 1, token]) for i, token in enumerate(answer)
            )
            assert math.isclose(float(scores[index]), expected, abs_tol=1e-3)
    expected_top = torch.softmax(scores / loaded.temperature, -1).max()
    confidence = loaded.rank_pairs([(NEW_VENDOR, "E-Mail Addr")], top=1)[0][0][1]
    assert math.isclose(confidence, float(expected_top), rel_tol=1e-6)


def test_training_is_deterministic_and_resumable(
    catalog: Catalog, trained: Trained, tmp_path: Path
) -> None:
    adapter = (trained.folder / ADAPTER_WEIGHTS).read_bytes()
    again = train(catalog, tmp_path / "again")
    assert (again.folder / ADAPTER_WEIGHTS).read_bytes() == adapter
    assert read_json(again.folder / CALIBRATION) == read_json(trained.folder / CALIBRATION)
    # Killed in the second LoRA epoch (after the first one's checkpoint), then resumed:
    # the same adapter as a run never interrupted, and only the missing epoch ran again.
    per_epoch = len(trained.losses) // 3  # whole-model epoch, then two LoRA epochs
    with pytest.raises(Interrupted):
        train(catalog, tmp_path / "resumed", stop_at=2 * per_epoch + 1)
    assert (tmp_path / "resumed" / "checkpoint.pt").is_file()
    resumed = train(catalog, tmp_path / "resumed", resume=True)
    assert (resumed.folder / ADAPTER_WEIGHTS).read_bytes() == adapter
    assert [s for s, _ in resumed.losses] == list(range(2 * per_epoch + 1, 3 * per_epoch + 1))


def test_engine_accepts_and_rejects_by_threshold(catalog: Catalog, trained: Trained) -> None:
    from llama_mapper.adapters.registry import default_registry
    from llama_mapper.model.causal_tier import CausalTier

    tier = CausalTier(trained.folder)
    assert tier.status.startswith(f"ok ({tier.version}, loads on the first")
    prediction = tier.predict(NEW_VENDOR, "Social Security No")
    assert prediction is not None
    assert tier.state == "loaded"
    assert prediction.label in read_labels(trained.folder)
    assert len(prediction.candidates) == 3
    low = MappingEngine(
        catalog, default_registry(), learned=tier, learned_threshold=prediction.confidence
    )
    accepted = low.map(NEW_VENDOR, "Social Security No")
    assert accepted.methods == {prediction.label: "model"}
    assert accepted.model == tier.version
    high = MappingEngine(
        catalog, default_registry(), learned=tier, learned_threshold=prediction.confidence + 1e-3
    )
    rejected = high.map(NEW_VENDOR, "Social Security No")
    assert rejected.labels == ("OTHER.Unknown",)
    assert rejected.candidates["Social Security No"][0] == (
        prediction.label,
        prediction.confidence,
    )
    assert tier.hits >= 2  # the engine's second and third questions came from the memo


def test_settings_pick_the_tier_by_the_cards_kind(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llama_mapper.config.settings import LearnedSettings
    from llama_mapper.model.causal_tier import CausalTier
    from llama_mapper.model.serving import tier_from_settings
    from llama_mapper.model.tier import EmbeddingTier

    causal = tier_from_settings(LearnedSettings(model_dir=trained.folder))
    assert isinstance(causal.tier, CausalTier)
    assert isinstance(tier_from_settings(LearnedSettings()).tier, EmbeddingTier)


def test_a_card_of_another_prompt_version_is_refused(trained: Trained, tmp_path: Path) -> None:
    import shutil

    from llama_mapper.config.settings import LearnedSettings
    from llama_mapper.model.serving import tier_from_settings

    copy = tmp_path / "copy"
    shutil.copytree(trained.folder, copy)
    card = read_json(copy / CARD)
    write_json(copy / CARD, {**card, "prompt_version": "0"})
    choice = tier_from_settings(LearnedSettings(model_dir=copy))
    assert choice.tier is None
    assert "tuned on prompt version 0" in str(choice.reason)
    (copy / ADAPTER_WEIGHTS).unlink()
    with pytest.raises(ArtifactError, match=r"lacks adapter_model\.safetensors"):
        read_card(copy)
    (copy / LABELS).unlink()
    with pytest.raises(ArtifactError, match=r"labels\.json"):
        read_card(copy)


def test_evaluate_works_on_a_causal_model(trained: Trained, tmp_path: Path) -> None:
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_bytes(to_jsonl(trained.splits.evaluation))
    plot = tmp_path / "rel.png"
    args = ["evaluate", "--model", str(trained.folder), "--eval-set", str(eval_set)]
    result = CliRunner().invoke(app, [*args, "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "causal"
    assert report["overall"]["examples"] == len(trained.splits.evaluation)
    assert set(report["per_detector"]) == {e.detector for e in trained.splits.evaluation}
    assert set(report["overall"]) >= {"top1_accuracy", "macro_f1", "ece", "coverage_at_threshold"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_cli_needs_a_base_model_for_causal(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--kind", "causal", "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "--base-model" in result.output
    missing = tmp_path / "nowhere"
    args = ["train", "--kind", "causal", "--base-model", str(missing), "-o", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "has no config.json" in result.output


def test_a_users_base_model_folder_trains_the_same_way(
    catalog: Catalog, trained: Trained, tmp_path: Path
) -> None:
    """``--base-model DIR``: a plain Hugging Face folder, here the tiny base saved above."""
    from llama_mapper.model.causal import CausalModel
    from llama_mapper.model.causal_train import train_causal

    splits = Splits(trained.splits.train[:8], trained.splits.calibration[:4], ())
    base = trained.folder / "base"
    result = train_causal(
        splits, catalog.taxonomy, tmp_path / "own", base, config(1), evaluate=False
    )
    assert result.card["base_model_path"] == str(base.resolve())
    assert not (tmp_path / "own" / "base").exists()
    ranked = CausalModel.load(tmp_path / "own").rank_pairs([(NEW_VENDOR, "Passport No")], 2)
    assert len(ranked[0]) == 2
