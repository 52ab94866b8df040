"""Rules engine behaviour: tiers, multi-label scores, thresholds, safe and unknown."""

from __future__ import annotations

import pytest

from llama_mapper.adapters import default_registry
from llama_mapper.adapters.base import Signal
from llama_mapper.catalog import Catalog
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.mapping.learned import Prediction
from llama_mapper.mapping.thresholds import ThresholdOverrides


@pytest.fixture
def engine(catalog: Catalog) -> MappingEngine:
    return MappingEngine(catalog, default_registry())


def test_exact_normalized_and_alias_tiers(engine: MappingEngine) -> None:
    exact = engine.map("openai-moderation", "harassment")
    assert exact.labels == ("HARM.SPEECH.Harassment",)
    assert exact.methods["HARM.SPEECH.Harassment"] == "exact"
    normalized = engine.map("openai-moderation", "HARASSMENT")
    assert normalized.methods["HARM.SPEECH.Harassment"] == "normalized"
    alias = engine.map("openai-moderation", "email address")
    assert alias.labels == ("PII.Contact.Email",)
    assert alias.methods["PII.Contact.Email"] == "alias"
    assert alias.confidence < exact.confidence


def test_camel_case_and_separators_normalize_alike(engine: MappingEngine) -> None:
    for spelling in ["SelfHarm", "self-harm", "SELF_HARM", "Self Harm"]:
        assert engine.map("azure-content-safety", spelling).labels == ("HARM.VIOLENCE.SelfHarm",)


def test_no_substring_matching(engine: MappingEngine) -> None:
    result = engine.map("deberta-toxicity", "non-toxic")
    assert result.labels == ("OTHER.Safe",)
    unknown = engine.map("some-detector", "toxicity-ish-thing")
    assert unknown.labels == ("OTHER.Unknown",)
    assert unknown.confidence == 0.0


def test_multi_label_keeps_the_max_score_per_canonical_label(engine: MappingEngine) -> None:
    signals = [Signal("toxic", 0.7), Signal("toxicity", 0.9), Signal("insult", 0.6)]
    result = engine.map_signals("detoxify", signals)
    assert result.scores["HARM.SPEECH.Toxicity"] == 0.9
    assert result.scores["HARM.SPEECH.Insult"] == 0.6
    assert result.labels[0] == "HARM.SPEECH.Toxicity"


def test_thresholds_drop_weak_findings_and_yield_safe(engine: MappingEngine) -> None:
    result = engine.map_signals("openai-moderation", [Signal("violence", 0.2)])
    assert result.labels == ("OTHER.Safe",)
    assert result.scores["OTHER.Safe"] == pytest.approx(0.8)
    assert result.methods["OTHER.Safe"] == "threshold"


def test_per_label_pack_threshold_beats_pack_default(engine: MappingEngine) -> None:
    # openai-moderation: default 0.5, sexual/minors 0.2
    result = engine.map_signals("openai-moderation", [Signal("sexual/minors", 0.3)])
    assert result.labels == ("HARM.VIOLENCE.ChildSexualAbuse",)


def test_operator_overrides(engine: MappingEngine) -> None:
    strict = ThresholdOverrides(detectors={"openai-moderation": 0.95})
    assert engine.map_signals("openai-moderation", [Signal("violence", 0.9)], strict).labels == (
        "OTHER.Safe",
    )
    per_label = ThresholdOverrides(labels={"openai-moderation": {"VIOLENCE": 0.1}})
    result = engine.map_signals("openai-moderation", [Signal("violence", 0.2)], per_label)
    assert result.labels == ("HARM.VIOLENCE.Physical",)


def test_benign_verdict_loses_to_findings(engine: MappingEngine) -> None:
    signals = [Signal("BENIGN", 0.6), Signal("JAILBREAK", 0.9)]
    result = engine.map_signals("prompt-guard", signals, ThresholdOverrides(default=0.0))
    assert result.labels == ("JAILBREAK.Attempt",)
    assert any("benign verdict overridden" in note for note in result.notes)


def test_empty_output_is_safe(engine: MappingEngine) -> None:
    result = engine.map("presidio", [])
    assert result.labels == ("OTHER.Safe",)
    assert result.methods["OTHER.Safe"] == "empty"


def test_unknown_labels_are_counted_and_reported(engine: MappingEngine) -> None:
    result = engine.map("presidio", "EMAIL_ADDRESS|FAVOURITE_COLOUR")
    assert set(result.labels) == {"PII.Contact.Email", "OTHER.Unknown"}
    assert result.unmapped == ("FAVOURITE_COLOUR",)
    assert engine.unmapped.snapshot() == {("presidio", "FAVOURITE_COLOUR"): 1}


def test_prose_as_label_is_never_retained(engine: MappingEngine) -> None:
    engine.map("presidio", "my card is 4111 1111 1111 1111 please keep it")
    assert list(engine.unmapped.snapshot()) == [("presidio", "<not-label-shaped>")]


def test_detector_without_pack_uses_taxonomy_aliases(engine: MappingEngine) -> None:
    result = engine.map("in-house-scanner", "ssn|email")
    assert set(result.labels) == {"PII.Identifier.SSN", "PII.Contact.Email"}
    assert result.detector_pack is None
    assert any("no detector pack" in note for note in result.notes)


def test_every_label_carries_its_controls(engine: MappingEngine, catalog: Catalog) -> None:
    result = engine.map("presidio", "US_SSN")
    assert result.frameworks["PII.Identifier.SSN"]
    for ref in result.frameworks["PII.Identifier.SSN"]:
        assert ref in catalog.frameworks.controls


class FixedModel:
    version = "test-model@1"

    def __init__(self, prediction: Prediction | None) -> None:
        self.prediction = prediction
        self.calls: list[tuple[str, str]] = []

    def predict(self, detector: str, label: str) -> Prediction | None:
        self.calls.append((detector, label))
        return self.prediction


def test_learned_tier_seam_accepts_confident_predictions(catalog: Catalog) -> None:
    model = FixedModel(Prediction("HARM.CRIME.Fraud", 0.93))
    engine = MappingEngine(catalog, default_registry(), learned=model, learned_threshold=0.8)
    result = engine.map("presidio", "EMAIL_ADDRESS|scam_attempt")
    assert set(result.labels) == {"PII.Contact.Email", "HARM.CRIME.Fraud"}
    assert result.methods["HARM.CRIME.Fraud"] == "model"
    assert result.model == "test-model@1"
    assert model.calls == [("presidio", "scam_attempt")]  # rules answered the other label


def test_learned_tier_below_threshold_falls_back_with_candidates(catalog: Catalog) -> None:
    model = FixedModel(Prediction("HARM.CRIME.Fraud", 0.4, (("OTHER.PolicyViolation", 0.3),)))
    engine = MappingEngine(catalog, default_registry(), learned=model, learned_threshold=0.8)
    result = engine.map("presidio", "scam_attempt")
    assert result.labels == ("OTHER.Unknown",)
    assert result.candidates["scam_attempt"][0] == ("HARM.CRIME.Fraud", 0.4)
