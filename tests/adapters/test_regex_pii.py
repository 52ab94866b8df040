"""Results of llama-mapper's built-in regex PII detector."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.regex_pii import RegexPiiAdapter

ADAPTER = RegexPiiAdapter()


def test_matches_keep_labels_scores_and_offsets():
    output = [
        {"label": "email", "start": 8, "end": 25, "score": 0.99},
        {"label": "credit_card", "start": 31, "end": 50, "score": 0.95},
        {"label": "ipv4", "start": 60, "end": 71, "score": None},
    ]
    assert ADAPTER.parse(output) == [
        Signal("email", 0.99, 8, 25),
        Signal("credit_card", 0.95, 31, 50),
        Signal("ipv4", None, 60, 71),
    ]


@pytest.mark.parametrize("output", ["email", ["email"], [{"label": "email", "score": 0.9}], []])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "match",
    [
        {"label": "email", "start": 8, "score": 0.9},
        {"start": 8, "end": 25, "score": 0.9, "text": "alice@example.com"},
        {"label": "email", "start": "alice@example.com", "end": 25},
        {"label": "email", "start": 30, "end": 25},
        {"label": "email", "start": 8, "end": 25, "score": "alice@example.com"},
        {"label": "alice@example.com" * 20, "start": 8, "end": 25},
    ],
)
def test_malformed_matches_raise_without_echoing_values(match):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse([match])
    assert "alice@example.com" not in str(error.value)
