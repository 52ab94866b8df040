"""``mapper map``, ``detectors fix`` and ``evaluate`` with the learned tier on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llama_mapper.cli.main import app
from llama_mapper.model.artifact import DEFAULT_VERSION
from llama_mapper.packs.fix import LexicalSuggester, learned_suggester
from llama_mapper.taxonomy.model import Taxonomy

from .conftest import requires_ml

PACK = """\
detector: acme-scan
version: "1.0.0"
vendor: Acme
adapter: generic
threshold: 0.5
maps:
  toxic_speech: HARM.SPEECH.Toxicity
  mail: PII.Contact.Emial
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tier_on: None) -> CliRunner:
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LLAMA_MAPPER_AUDIT__ENABLED", "false")
    monkeypatch.delenv("LLAMA_MAPPER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@requires_ml
def test_map_uses_the_tier_for_unknown_labels(cli: CliRunner) -> None:
    result = cli.invoke(app, ["map", "-d", "acme-scan", "-o", "US Social Security No"])
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["taxonomy"] == ["PII.Identifier.SSN"]
    assert response["version_info"]["model"] == DEFAULT_VERSION


@requires_ml
def test_fix_takes_the_tiers_suggestions(cli: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "detectors").mkdir(parents=True)
    (data / "detectors" / "acme-scan.yaml").write_text(PACK)
    state = tmp_path / "state"
    state.mkdir()
    rows = [{"detector": "acme-scan", "label": "Passport No", "count": 3}]
    (state / "unmapped.json").write_text(json.dumps(rows))
    result = cli.invoke(app, ["detectors", "fix", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["suggester"] == DEFAULT_VERSION
    proposed = {p["vendor_label"]: p["proposed"] for p in report["proposals"]}
    assert proposed == {"mail": "PII.Contact.Email", "Passport No": "PII.Identifier.Passport"}


def test_fix_falls_back_to_the_lexical_ranking(tmp_path: Path) -> None:
    from llama_mapper.catalog import load_catalog

    taxonomy: Taxonomy = load_catalog().taxonomy

    class Silent:
        def rank(self, text: str, detector: str = "") -> list[tuple[str, float]]:
            return []

    lexical = LexicalSuggester(taxonomy)
    suggest = learned_suggester(Silent(), lexical)
    assert suggest("d", "social security number") == lexical("d", "social security number")


def test_fix_without_the_tier_says_it_ranked_lexically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "false")
    data = tmp_path / "data"
    (data / "detectors").mkdir(parents=True)
    (data / "detectors" / "acme-scan.yaml").write_text(PACK)
    result = CliRunner().invoke(app, ["detectors", "fix", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["suggester"] == "lexical, rules-only (learned.enabled=false)"
    assert report["proposals"][0]["proposed"] == "PII.Contact.Email"


@requires_ml
def test_evaluate_prints_metrics_and_draws_the_plot(cli: CliRunner, tmp_path: Path) -> None:
    plot = tmp_path / "rel.png"
    result = cli.invoke(app, ["evaluate", "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == DEFAULT_VERSION
    assert set(report["per_detector"]) == {
        "azure-content-safety",
        "detect-secrets",
        "llama-guard",
        "openai-moderation",
        "presidio",
    }
    overall = report["overall"]
    assert set(overall) >= {"top1_accuracy", "macro_f1", "ece", "coverage_at_threshold"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
