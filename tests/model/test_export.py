"""``mapper model export-merged``: the tiny generative mapper as one plain HF folder.

The exported folder must load with nothing of ours (``AutoModelForCausalLM`` and
``AutoTokenizer``, as vLLM and TGI do) and score every label exactly as the in-process
tier does; the HTTP backend must read its card, labels and calibration as they are.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llama_mapper.cli.main import app
from llama_mapper.config.settings import LearnedHttpSettings, LearnedSettings, SecretsSettings
from llama_mapper.model.artifact import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    DEFAULT_MODEL_DIR,
    ArtifactError,
    read_card,
    read_labels,
    read_temperature,
)
from llama_mapper.model.causal_tier import CausalTier

from .causal_support import Trained
from .conftest import requires_ml

pytestmark = requires_ml

VENDOR = "acme-new-scanner"


@pytest.fixture(scope="module")
def merged(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "merged"
    result = CliRunner().invoke(
        app, ["model", "export-merged", "--model", str(trained.folder), "--output-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "exported" in result.output
    return out


def test_the_folder_is_a_plain_hf_model_with_the_mappers_files(
    merged: Path, trained: Trained
) -> None:
    names = {p.name for p in merged.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert {"model_card.json", "labels.json", "calibration.json"} <= names
    assert ADAPTER_WEIGHTS not in names
    assert ADAPTER_CONFIG not in names
    assert read_labels(merged) == read_labels(trained.folder)
    assert read_temperature(merged) == read_temperature(trained.folder)
    source = json.loads((trained.folder / "model_card.json").read_text())
    card = json.loads((merged / "model_card.json").read_text())
    assert card["version"] == source["version"]
    assert card["export"]["format"] == "merged"
    assert {k: v for k, v in card.items() if k != "export"} == source
    template = json.loads((merged / "tokenizer_config.json").read_text())["chat_template"]
    base_template = json.loads((trained.folder / "base" / "tokenizer_config.json").read_text())
    assert template == base_template["chat_template"]


def test_plain_transformers_scores_every_label_as_the_causal_tier(
    merged: Path, trained: Trained, loaded: Any
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llama_mapper.model.causal import PromptCodec

    model = AutoModelForCausalLM.from_pretrained(str(merged), local_files_only=True)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(merged), local_files_only=True)
    labels = read_labels(merged)
    codec = PromptCodec(tokenizer, labels)
    assert codec.answers == loaded.codec.answers  # same tokenizer, same template
    tier = CausalTier(trained.folder)
    pairs = [(VENDOR, "E-Mail Addr"), (VENDOR, "Social Security No")]
    pairs += [(e.detector, e.text) for e in trained.splits.evaluation[:2]]
    with torch.inference_mode():
        for detector, label in pairs:
            head = codec.prompt_ids(detector, label)
            # One plain forward pass per label over prompt + answer: no cache, no batching.
            scores = []
            for answer in codec.answers:
                logprobs = model(input_ids=torch.tensor([head + answer])).logits[0].log_softmax(-1)
                scores.append(
                    sum(float(logprobs[len(head) + i - 1, t]) for i, t in enumerate(answer))
                )
            expected = loaded.logprobs(detector, label)
            assert max(abs(a - float(b)) for a, b in zip(scores, expected, strict=True)) < 1e-5
            # And the tier's answer is the merged model's best label, same confidence.
            best = max(range(len(scores)), key=scores.__getitem__)
            ranked = tier.ranked(detector, label)
            assert ranked[0][0] == labels[best]
            tempered = torch.softmax(torch.tensor(scores) / read_temperature(merged), -1)
            assert math.isclose(ranked[0][1], float(tempered.max()), abs_tol=1e-5)


def test_the_http_backend_reads_the_exported_folder(merged: Path, trained: Trained) -> None:
    from llama_mapper.model.serving import http_tier

    settings = LearnedSettings(
        enabled=True,
        backend="openai",
        model_dir=merged,
        http=LearnedHttpSettings(url="http://127.0.0.1:9"),  # type: ignore[arg-type]
    )
    tier = http_tier(settings, SecretsSettings())
    assert tier.labels == read_labels(trained.folder)
    assert tier.version == f"{read_card(trained.folder).version}@http"
    # The in-process tier needs the adapter: it refuses the merged folder, naming what lacks.
    with pytest.raises(ArtifactError, match="adapter"):
        read_card(merged)


def test_refusals_exit_2_with_one_line(trained: Trained, merged: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    again = runner.invoke(
        app, ["model", "export-merged", "-m", str(trained.folder), "-o", str(merged)]
    )
    assert again.exit_code == 2
    assert "not empty" in again.output
    assert "--force" in again.output
    twice = runner.invoke(
        app, ["model", "export-merged", "-m", str(merged), "-o", str(tmp_path / "x")]
    )
    assert twice.exit_code == 2  # a merged folder has no adapter to merge
    assert "lacks" in twice.output
    embedding = runner.invoke(
        app, ["model", "export-merged", "-m", str(DEFAULT_MODEL_DIR), "-o", str(tmp_path / "x")]
    )
    assert embedding.exit_code == 2
    assert "kind 'embedding'" in embedding.output
    assert not (tmp_path / "x").exists()
    missing = runner.invoke(
        app, ["model", "export-merged", "-m", str(tmp_path / "nope"), "-o", str(tmp_path / "y")]
    )
    assert missing.exit_code == 2
    assert "not found" in missing.output


def test_force_replaces_an_earlier_export(trained: Trained, tmp_path: Path) -> None:
    from llama_mapper.model.export import export_merged

    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.bin").write_bytes(b"old")
    with pytest.raises(ArtifactError, match="not empty"):
        export_merged(trained.folder, out)
    result = export_merged(trained.folder, out, overwrite=True)
    assert not (out / "stale.bin").exists()
    assert "model.safetensors" in result.files
    assert result.parameters > 0
