"""Hugging Face classifier outputs: Prompt Guard, DeBERTa toxicity models and Detoxify."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.registry import default_registry
from llama_mapper.adapters.vendors.hf_classifier import HfClassifierAdapter

ADAPTER = HfClassifierAdapter("prompt-guard")


def test_the_three_detector_names_are_registered():
    registry = default_registry()
    for name in ("prompt-guard", "deberta-toxicity", "detoxify"):
        adapter = registry.get(name)
        assert isinstance(adapter, HfClassifierAdapter)
        assert adapter.name == name


def test_pipeline_results():
    assert ADAPTER.parse([{"label": "JAILBREAK", "score": 0.9999}]) == [Signal("JAILBREAK", 0.9999)]
    batch = [
        [{"label": "LABEL_1", "score": 0.98}, {"label": "LABEL_0", "score": 0.02}],
        [{"label": "LABEL_0", "score": 0.99}, {"label": "LABEL_1", "score": 0.01}],
    ]
    assert ADAPTER.parse(batch) == [
        Signal("LABEL_1", 0.98),
        Signal("LABEL_0", 0.02),
        Signal("LABEL_0", 0.99),
        Signal("LABEL_1", 0.01),
    ]


def test_detoxify_scores_for_one_and_several_texts():
    detoxify = HfClassifierAdapter("detoxify")
    one = {
        "toxicity": 0.9813,
        "severe_toxicity": 0.0451,
        "obscene": 0.7942,
        "threat": 0.0021,
        "insult": 0.9127,
        "identity_attack": 0.0065,
    }
    assert detoxify.parse(one) == [Signal(key, value) for key, value in one.items()]
    several = {"toxicity": [0.9, 0.001], "insult": [0.7, 0.0005]}
    assert detoxify.parse(several) == [
        Signal("toxicity", 0.9),
        Signal("toxicity", 0.001),
        Signal("insult", 0.7),
        Signal("insult", 0.0005),
    ]


@pytest.mark.parametrize(
    "output",
    ["toxic", ["toxic", "insult"], {"label": "toxic", "score": 0.9}, {}, {"a": "b"}, None],
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        [{"label": "toxic", "score": None}],
        [{"label": "toxic", "score": "alice@example.com"}],
        [{"label": "toxic", "score": 0.9}, "alice@example.com"],
        [{"label": "toxic", "score": 10**400}],
        {"toxicity": [float("nan")]},
    ],
)
def test_malformed_outputs_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "alice@example.com" not in str(error.value)
