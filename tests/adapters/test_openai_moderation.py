"""OpenAI moderation responses shaped like the API reference's omni-moderation-latest example."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.openai_moderation import OpenAIModerationAdapter

ADAPTER = OpenAIModerationAdapter()

SCORES = {
    "harassment": 0.8189693396524255,
    "harassment/threatening": 0.804985420696006,
    "hate": 0.007562942636942845,
    "hate/threatening": 0.004208854591835476,
    "illicit": 0.030535955153511665,
    "illicit/violent": 0.008925306722380033,
    "self-harm": 0.012305162449746755,
    "self-harm/intent": 0.00023023930975076432,
    "self-harm/instructions": 0.0002293869201073356,
    "sexual": 1.573112165348997e-06,
    "sexual/minors": 5.920916517463734e-07,
    "violence": 0.9999992735124786,
    "violence/graphic": 0.843064871157054,
}
CATEGORIES = {name: score > 0.5 for name, score in SCORES.items()}
RESPONSE = {
    "id": "modr-0d9740456c391e43c445bf0f010940c7",
    "model": "omni-moderation-latest",
    "results": [
        {
            "flagged": True,
            "categories": CATEGORIES,
            "category_scores": SCORES,
            "category_applied_input_types": {
                name: ["text", "image"] if name.startswith("violence") else ["text"]
                for name in SCORES
            },
        }
    ],
}


def test_emits_every_category_score():
    signals = ADAPTER.parse(RESPONSE)
    assert signals == [Signal(name, score) for name, score in SCORES.items()]
    assert len(signals) == 13


def test_one_result_per_input_is_concatenated():
    second = {"flagged": False, "categories": {"hate": False}, "category_scores": {"hate": 0.01}}
    response = {**RESPONSE, "results": [*RESPONSE["results"], second]}
    signals = ADAPTER.parse(response)
    assert signals is not None
    assert signals[-1] == Signal("hate", 0.01)
    assert len(signals) == 14


def test_a_single_result_object_is_accepted():
    assert ADAPTER.parse({"categories": CATEGORIES, "category_scores": {"violence": 0.99}}) == [
        Signal("violence", 0.99)
    ]


def test_booleans_only_emit_the_flagged_categories_unscored():
    assert ADAPTER.parse({"results": [{"flagged": True, "categories": CATEGORIES}]}) == [
        Signal("harassment"),
        Signal("harassment/threatening"),
        Signal("violence"),
        Signal("violence/graphic"),
    ]


def test_null_scores_of_legacy_models_are_skipped():
    legacy = {"categories": {"illicit": None}, "category_scores": {"hate": 0.2, "illicit": None}}
    assert ADAPTER.parse({"results": [legacy]}) == [Signal("hate", 0.2)]


@pytest.mark.parametrize("output", ["violence", ["hate"], {"violence": 0.9}, [{"label": "x"}]])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"results": "alice@example.com"},
        {"results": ["alice@example.com"]},
        {"results": [{"flagged": True}]},
        {"results": [{"category_scores": {"hate": "alice@example.com"}}]},
        {"results": [{"category_scores": {"hate": True}}]},
        {"results": [{"categories": {"hate": "alice@example.com"}}]},
        {"category_scores": ["alice@example.com"]},
    ],
)
def test_malformed_responses_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "alice@example.com" not in str(error.value)
