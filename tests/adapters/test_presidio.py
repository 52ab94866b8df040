"""Presidio analyzer results, as in the presidio-analyzer README and REST API docs."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.presidio import PresidioAdapter

ADAPTER = PresidioAdapter()

# "John Smith drivers license is AC432223, mail alice@example.com"
RESULTS = [
    {
        "entity_type": "PERSON",
        "start": 0,
        "end": 10,
        "score": 0.85,
        "analysis_explanation": None,
        "recognition_metadata": {
            "recognizer_name": "SpacyRecognizer",
            "recognizer_identifier": "SpacyRecognizer_140262509378336",
        },
    },
    {
        "entity_type": "US_DRIVER_LICENSE",
        "start": 30,
        "end": 38,
        "score": 0.6499999999999999,
        "analysis_explanation": None,
        "recognition_metadata": {
            "recognizer_name": "UsLicenseRecognizer",
            "recognizer_identifier": "UsLicenseRecognizer_140262510092832",
        },
    },
    {"entity_type": "EMAIL_ADDRESS", "start": 45, "end": 62, "score": 1.0},
]


def test_emits_entity_types_with_scores_and_offsets():
    assert ADAPTER.parse(RESULTS) == [
        Signal("PERSON", 0.85, 0, 10),
        Signal("US_DRIVER_LICENSE", 0.6499999999999999, 30, 38),
        Signal("EMAIL_ADDRESS", 1.0, 45, 62),
    ]


def test_scores_are_clamped_to_probability():
    assert ADAPTER.parse([{"entity_type": "IN_AADHAAR", "start": 1, "end": 13, "score": 1.2}]) == [
        Signal("IN_AADHAAR", 1.0, 1, 13)
    ]


@pytest.mark.parametrize(
    "output",
    ["EMAIL_ADDRESS", ["EMAIL_ADDRESS"], [{"label": "x", "score": 0.5}], [], {"a": 1}, None],
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "result",
    [
        {"entity_type": "EMAIL_ADDRESS", "start": 0, "end": 17},
        {"entity_type": "EMAIL_ADDRESS", "start": 0, "score": 0.9},
        {"entity_type": "EMAIL_ADDRESS", "start": -1, "end": 17, "score": 0.9},
        {"entity_type": "EMAIL_ADDRESS", "start": 9, "end": 3, "score": 0.9},
        {"entity_type": "EMAIL_ADDRESS", "start": 0, "end": 17, "score": "alice@example.com"},
        {"entity_type": ["alice@example.com"], "start": 0, "end": 17, "score": 0.9},
    ],
)
def test_malformed_results_raise_without_echoing_values(result):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse([result])
    assert "alice@example.com" not in str(error.value)


def test_mixed_lists_are_malformed():
    with pytest.raises(OutputShapeError):
        ADAPTER.parse([RESULTS[0], "alice@example.com"])
