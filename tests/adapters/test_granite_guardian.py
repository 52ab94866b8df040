"""Granite Guardian verdicts as produced by IBM's model-card and cookbook examples."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.granite_guardian import GraniteGuardianAdapter

ADAPTER = GraniteGuardianAdapter()


def test_yes_emits_the_risk_with_its_probability():
    assert ADAPTER.parse({"risk": "harm", "label": "Yes", "probability": 0.915}) == [
        Signal("harm", 0.915)
    ]
    assert ADAPTER.parse({"risk_name": "social_bias", "result": "yes", "confidence": 0.8}) == [
        Signal("social_bias", 0.8)
    ]


def test_no_is_an_unscored_safe():
    assert ADAPTER.parse({"risk": "jailbreak", "label": "No", "probability": 0.02}) == [
        Signal("safe")
    ]


def test_textual_confidence_of_granite_guardian_3_2():
    verdicts = [
        {"risk_name": "harm", "label": "Yes", "confidence": "High"},
        {"risk_name": "violence", "label": "Yes", "confidence": "Low"},
        {"risk_name": "profanity", "label": "No", "confidence": "High"},
        {"risk_name": "groundedness", "label": "Yes"},
    ]
    assert ADAPTER.parse(verdicts) == [
        Signal("harm", 0.9),
        Signal("violence", 0.6),
        Signal("safe"),
        Signal("groundedness"),
    ]


@pytest.mark.parametrize(
    "output",
    ["Yes", ["harm"], {"label": "Yes", "probability": 0.9}, [{"label": "No"}], {"harm": 1}],
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"risk": "harm", "label": "Maybe alice@example.com"},
        {"risk": "harm"},
        {"risk": ["alice@example.com"], "label": "Yes"},
        {"risk": "harm", "label": "Yes", "probability": "alice@example.com"},
        {"risk": "harm", "label": "Yes", "confidence": "Medium"},
        [{"risk": "harm", "label": "No"}, "alice@example.com"],
    ],
)
def test_malformed_verdicts_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "alice@example.com" not in str(error.value)
